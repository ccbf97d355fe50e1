#!/usr/bin/env bash
# Makes (or reuses) a Debian Bookworm arm64 sysroot: the arm64 GStreamer, Mesa
# and C library files the player is linked against (build-arm64-deb.sh) and
# runs with under qemu-aarch64 (check-arm64.sh), unpacked into one directory
# with mmdebstrap. Prints the sysroot's path.
#
#   deploy/arm64-sysroot.sh [DIR]        (default: target/arm64-sysroot)
#
# Why a sysroot and not `dpkg --add-architecture arm64` on the build host:
# on Bookworm the :arm64 GStreamer dev packages cannot be installed beside the
# amd64 ones (apt removes libgstreamer-plugins-base1.0-dev:amd64 and
# gstreamer1.0-tools to make room), which breaks native builds and tests on
# the same machine. The sysroot leaves the host's packages alone and needs
# no root once made (mmdebstrap runs unprivileged where user namespaces are
# allowed).
set -euo pipefail

repo=$(cd -- "$(dirname -- "$0")/.." && pwd)
sysroot=${1:-$repo/target/arm64-sysroot}
readonly multiarch=aarch64-linux-gnu
readonly mirror=${EKRAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly security_mirror=${EKRAN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Build: headers, .pc files and link-time libraries. Run (check-arm64.sh):
# the plugins and drivers the player loads at run time, as on the box.
readonly packages=(
  libc6-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  libvulkan1 mesa-vulkan-drivers libegl1 libgles2 libwayland-client0 libxkbcommon0
)

die() {
  echo "arm64-sysroot: $*" >&2
  exit 1
}

# A sysroot made from the same package list is reused as it is.
stamp=$sysroot/.ekran-sysroot-packages
wanted="${packages[*]}"
if [[ -f $stamp && $(cat -- "$stamp") == "$wanted" ]]; then
  echo "$sysroot"
  exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap not found: apt install mmdebstrap"
rm -rf -- "$sysroot"
mkdir -p -- "$(dirname -- "$sysroot")"
include=$(IFS=,; echo "${packages[*]}")
# extract: unpack the packages and their dependencies, run no maintainer
# script (nothing arm64 executes here).
mmdebstrap --variant=extract --architectures=arm64 --include="$include" bookworm "$sysroot" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security_mirror bookworm-security main" >&2 ||
  die "mmdebstrap failed (network to $mirror?)"

# Links that maintainer scripts would have made with update-alternatives:
# libavcodec needs libblas.so.3 and liblapack.so.3 at their generic names.
for alternative in blas/libblas.so.3 lapack/liblapack.so.3; do
  target=$sysroot/usr/lib/$multiarch/$alternative
  link=$sysroot/usr/lib/$multiarch/$(basename -- "$alternative")
  if [[ -e $target && ! -e $link ]]; then
    ln -s -- "$alternative" "$link"
  fi
done

[[ -f $sysroot/usr/lib/$multiarch/pkgconfig/gstreamer-video-1.0.pc ]] ||
  die "the sysroot lacks gstreamer-video-1.0.pc"
echo "$wanted" >"$stamp"
echo "$sysroot"

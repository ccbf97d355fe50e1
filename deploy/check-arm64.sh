#!/usr/bin/env bash
# Checks a cross-built arm64 ekran binary on this amd64 Debian host under
# qemu-aarch64 user emulation, against Debian arm64 libraries:
#   1. `ekran --version` runs (the binary loads, its libraries resolve);
#   2. `ekran play --headless` plays a short generated H.264 clip to the end
#      through arm64 GStreamer and wgpu on arm64 lavapipe (Mesa's software Vulkan).
# Slow (everything is emulated, including the software GPU): a manual check
# after deploy/build-arm64-deb.sh, not part of `cargo test`.
#
#   deploy/check-arm64.sh [BINARY]     (default: target/aarch64-unknown-linux-gnu/release/ekran)
#       against the sysroot the build linked with (deploy/arm64-sysroot.sh);
#   deploy/check-arm64.sh --deb FILE   the packaged binary, against a fresh
#       Bookworm arm64 root holding only FILE and what its Depends pull in
#       (so a missing run-time dependency fails here, not on the box).
set -euo pipefail

repo=$(cd -- "$(dirname -- "$0")/.." && pwd)
binary=$repo/target/aarch64-unknown-linux-gnu/release/ekran
deb=
readonly multiarch=aarch64-linux-gnu
readonly mirror=${EKRAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly security_mirror=${EKRAN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

die() {
  echo "check-arm64: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 [BINARY | --deb FILE.deb]"
}

while (($#)); do
  case $1 in
    --deb) deb=${2:?--deb needs a .deb file}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option '$1'" ;;
    *) binary=$1; shift ;;
  esac
done

if [[ -n $deb ]]; then
  [[ -f $deb ]] || die "no package at $deb: run deploy/build-arm64-deb.sh first"
  deb=$(realpath -- "$deb")
else
  [[ -f $binary ]] || die "no binary at $binary: run deploy/build-arm64-deb.sh first"
fi

# The emulator, and the host's GStreamer to make a test clip. The arm64 side
# (loader, libraries, GStreamer plugins, lavapipe) is the sysroot the build
# linked against, or with --deb what the package's Depends install.
packages=(qemu-user gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-ugly python3)
[[ -z $deb ]] || packages+=(mmdebstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root once to install them"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -qq -y --no-install-recommends "${missing[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

if [[ -n $deb ]]; then
  # apt resolves the package's Depends against Bookworm arm64 and unpacks
  # them with it (no maintainer script runs: nothing arm64 executes here).
  # apt reads the .deb from inside the new root, at the path it has here:
  # the setup hook copies it there (mmdebstrap's file-mirror-automount hooks
  # would bind-mount it instead, and leave that mount behind with the
  # extract variant).
  root=$work/box-root
  echo "check-arm64: unpacking $(basename -- "$deb") and its dependencies (Bookworm arm64)"
  SECONDS=0
  export EKRAN_CHECK_DEB=$deb
  # shellcheck disable=SC2016 # mmdebstrap's hook shell expands these.
  mmdebstrap --variant=extract --architectures=arm64 \
    --setup-hook='mkdir -p "$1${EKRAN_CHECK_DEB%/*}" && cp -- "$EKRAN_CHECK_DEB" "$1$EKRAN_CHECK_DEB"' \
    --include="$deb" bookworm "$root" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main" >&2 ||
    die "the package's dependencies do not install on Bookworm arm64 (or no network to $mirror)"
  # Links update-alternatives would make: libavcodec needs libblas.so.3 and
  # liblapack.so.3 at their generic names.
  for alternative in blas/libblas.so.3 lapack/liblapack.so.3; do
    if [[ -e $root/usr/lib/$multiarch/$alternative && ! -e $root/usr/lib/$multiarch/${alternative#*/} ]]; then
      ln -s -- "$alternative" "$root/usr/lib/$multiarch/${alternative#*/}"
    fi
  done
  for needed in /usr/bin/ekran /usr/bin/cage /lib/systemd/system/ekran-player.service \
    /usr/lib/$multiarch/gstreamer-1.0/libgstvideo4linux2.so \
    /usr/lib/$multiarch/gstreamer-1.0/libgstv4l2codecs.so; do
    [[ -e $root$needed ]] || die "the installed package lacks $needed"
  done
  echo "check-arm64: $(du -sm "$root" | cut -f1) MB unpacked (${SECONDS} s)"
  binary=$root/usr/bin/ekran
else
  root=$("$repo/deploy/arm64-sysroot.sh")
fi

# One second of H.264, made by the host's GStreamer (before the environment
# below points GStreamer at the arm64 plugins). 8-bit 4:2:0 (I420) as real
# content is and as the Pi's hardware decoder requires: left to itself
# x264enc would pick 10-bit 4:4:4 from videotestsrc.
clip=$work/clip.mp4
gst-launch-1.0 -q videotestsrc num-buffers=24 pattern=smpte \
  ! video/x-raw,format=I420,width=320,height=240,framerate=24/1 \
  ! x264enc ! h264parse ! mp4mux ! filesink location="$clip"

# qemu opens every absolute path the arm64 program asks for under the
# arm64 root first (the loader, libraries, plugins, ICD files), then on the host
# (the clip, the stats file): paths below are the box's paths, unprefixed.
export QEMU_LD_PREFIX=$root
# GStreamer normally scans plugins in a helper process; that helper is an
# arm64 binary the kernel cannot start without binfmt_misc, so scan in-process,
# into a registry of its own (the host's amd64 registry must not be reused).
export GST_REGISTRY_FORK=no
export GST_REGISTRY_1_0=$work/gst-registry-arm64.bin
export GST_PLUGIN_SYSTEM_PATH_1_0=/usr/lib/$multiarch/gstreamer-1.0
# Only the arm64 lavapipe driver (Mesa's software Vulkan).
export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.aarch64.json
[[ -f $root$VK_ICD_FILENAMES ]] || die "$root lacks the arm64 lavapipe ICD $VK_ICD_FILENAMES"
# The graphics libraries probe for a Wayland display and complain without a
# runtime directory (as root over ssh there is none); headless needs none.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work}

echo "check-arm64: ekran --version"
SECONDS=0
version=$(timeout 120 qemu-aarch64 "$binary" --version)
[[ $version == ekran\ * ]] || die "unexpected --version output: $version"
echo "check-arm64: $version (${SECONDS} s)"

echo "check-arm64: ekran play --headless (emulated decode and rendering: minutes)"
stats=$work/stats.json
SECONDS=0
# The stall timer runs on the wall clock; 5 s fits a real box, not GStreamer
# loading libav's codecs under emulation on a busy machine.
timeout 1800 qemu-aarch64 "$binary" play --headless --size 320x240 --stall-seconds 300 \
  --stats "$stats" "$clip" ||
  die "ekran play --headless failed under emulation (exit $?)"
[[ -s $stats ]] || die "ekran play wrote no stats"
play_seconds=$SECONDS
python3 - "$stats" "$play_seconds" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
items = stats["items"]
assert len(items) == 1, f"expected one item, got {len(items)}"
item = items[0]
assert item["outcome"] == "completed", f"clip did not complete: {item}"
assert item["frames_presented"] > 0, f"no frame presented: {item}"
assert item["frames_dropped"] == 0, f"frames dropped: {item}"
print(f"check-arm64: played {item['frames_presented']} frames with {item['decoder']} in {sys.argv[2]} s")
PY
echo "check-arm64: ok"

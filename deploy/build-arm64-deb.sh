#!/usr/bin/env bash
# Builds the ekran-player package for Raspberry Pi OS / Debian Bookworm arm64
# on a Debian Bookworm amd64 host: cross-compiles the player
# (`--no-default-features --features player`) for aarch64-unknown-linux-gnu
# against Debian's arm64 GStreamer, then packages it with dpkg-deb.
#
#   deploy/build-arm64-deb.sh                        # build + package into target/deb/
#   deploy/build-arm64-deb.sh --output DIR           # put the .deb elsewhere
#   deploy/build-arm64-deb.sh --package-only BINARY  # package an already built binary
#
# Installs what the cross-build needs when it is missing (root required then):
# the aarch64 gcc (linker, and C compiler for crates with C code), mmdebstrap,
# the Rust target. The arm64 libraries come from a sysroot that
# deploy/arm64-sysroot.sh unpacks (target/arm64-sysroot), not from
# `dpkg --add-architecture arm64`: see that script for why.
# Check the result under emulation with deploy/check-arm64.sh.
set -euo pipefail

readonly target=aarch64-unknown-linux-gnu
readonly multiarch=aarch64-linux-gnu
repo=$(cd -- "$(dirname -- "$0")/.." && pwd)
readonly repo
output=$repo/target/deb
package_only=
config_example=$repo/deploy/player.toml

# What the box needs at run time. GStreamer: plugins-base (playbin parts,
# videoconvert, alsa via gstreamer1.0-alsa), good (v4l2h264dec: the Pi's H.264
# hardware decoder, qtdemux, matroska, vpx), bad (v4l2slh265dec: HEVC on the
# Pi 4/5, h264/h265 parsers), libav (software fallback decoders). Display:
# cage (the kiosk compositor), Mesa's Vulkan (v3dv) and GL/EGL (v3d) drivers
# and the loaders wgpu and winit open at run time (not ELF dependencies, so
# dpkg-shlibdeps would miss them). util-linux: setterm for the unit.
readonly runtime_depends="adduser, systemd, util-linux, libc6 (>= 2.36), libgcc-s1, \
libglib2.0-0, libgstreamer1.0-0 (>= 1.22), libgstreamer-plugins-base1.0-0 (>= 1.22), \
gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, \
gstreamer1.0-libav, gstreamer1.0-alsa, cage, mesa-vulkan-drivers, libgl1-mesa-dri, \
libvulkan1, libegl1, libgles2, libwayland-client0, libwayland-egl1, libwayland-cursor0, \
libxkbcommon0"

usage() {
  cat <<USAGE
usage: $0 [--output DIR] [--package-only BINARY] [--config-example FILE]
  --output DIR            where the .deb goes (default: target/deb)
  --package-only BINARY   skip the build; package this aarch64 ekran binary
  --config-example FILE   the commented default config to ship (default: deploy/player.toml)
USAGE
}

die() {
  echo "build-arm64-deb: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --output) output=${2:?--output needs a directory}; shift 2 ;;
    --package-only) package_only=${2:?--package-only needs a binary}; shift 2 ;;
    --config-example) config_example=${2:?--config-example needs a file}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

# Host packages the cross-build needs; the arm64 side is the sysroot.
install_build_deps() {
  local packages=(gcc-aarch64-linux-gnu mmdebstrap pkg-config)
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing build packages (${missing[*]}); run as root once to install them"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -qq -y --no-install-recommends "${missing[@]}"
  fi
  if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
  fi
}

cross_build() {
  local sysroot
  sysroot=$("$repo/deploy/arm64-sysroot.sh")
  # Linker and C compiler for the target, both looking in the sysroot for
  # headers and libraries; the host's own build scripts keep the host tools.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$multiarch-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$sysroot"
  export CC_aarch64_unknown_linux_gnu=$multiarch-gcc
  export AR_aarch64_unknown_linux_gnu=$multiarch-ar
  export CFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
  # pkg-config (gstreamer-sys, glib-sys) reads only the sysroot's arm64 .pc
  # files and prefixes their paths with the sysroot; for this target only.
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=$sysroot/usr/lib/$multiarch/pkgconfig:$sysroot/usr/share/pkgconfig
  export PKG_CONFIG_PATH_aarch64_unknown_linux_gnu=
  export PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu=$sysroot
  (cd -- "$repo" && cargo build --release --locked --no-default-features --features player --target "$target") >&2
  local binary=$repo/target/$target/release/ekran
  # Smaller package and faster start on an SD card; symbols stay in the target dir.
  "$multiarch-strip" --strip-unneeded -o "$repo/target/$target/release/ekran.stripped" "$binary"
  echo "$repo/target/$target/release/ekran.stripped"
}

# package_deb BINARY: stages the package tree and builds the .deb; prints its path.
package_deb() {
  local binary=$1
  [[ -f $binary ]] || die "binary $binary does not exist"
  [[ -f $config_example ]] || die "config example $config_example does not exist"
  local version
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n 1)
  [[ -n $version ]] || die "no version in $repo/Cargo.toml"

  local stage
  stage=$(mktemp -d)
  # The tree's root becomes the box's /: its mode must be the usual one.
  chmod 0755 "$stage"
  # package_deb runs in a command substitution (a subshell): EXIT is its end.
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory.
  trap "rm -rf -- '$stage'" EXIT
  install -D -m 0755 "$binary" "$stage/usr/bin/ekran"
  install -D -m 0644 "$repo/deploy/systemd/ekran-player.service" "$stage/lib/systemd/system/ekran-player.service"
  install -D -m 0644 "$repo/deploy/pam/ekran-player" "$stage/etc/pam.d/ekran-player"
  install -D -m 0644 "$config_example" "$stage/usr/share/ekran-player/player.toml"
  # On the box too, to change the server, rotation or mode later.
  install -D -m 0755 "$repo/deploy/pi/provision.sh" "$stage/usr/share/ekran-player/provision.sh"
  install -D -m 0644 "$repo/deploy/README.md" "$stage/usr/share/doc/ekran-player/README.md"
  mkdir -p "$stage/usr/share/doc/ekran-player"
  cat >"$stage/usr/share/doc/ekran-player/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ekran

Files: *
License: AGPL-3.0-or-later
 On Debian systems the GNU Affero General Public License version 3 is at
 https://www.gnu.org/licenses/agpl-3.0.txt (not shipped in common-licenses).
COPYRIGHT

  mkdir -p "$stage/DEBIAN"
  local installed_size
  installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  cat >"$stage/DEBIAN/control" <<CONTROL
Package: ekran-player
Version: $version
Architecture: arm64
Maintainer: Ekran maintainers <ekran@example.org>
Section: video
Priority: optional
Installed-Size: $installed_size
Depends: $runtime_depends
Description: Ekran digital signage player (screen box)
 Plays signed playlists from an Ekran server fullscreen on the box's first
 display, gaplessly, with hardware decoding, and keeps a signed proof-of-play
 journal. Runs as ekran-player.service under the cage kiosk compositor;
 configure it with /usr/share/ekran-player/provision.sh --server URL, then
 approve the pairing code shown on screen.
CONTROL
  echo /etc/pam.d/ekran-player >"$stage/DEBIAN/conffiles"

  cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# ekran-player: the system user the kiosk runs as, and a first config.
set -e
if [ "$1" = configure ]; then
    if ! getent passwd ekran >/dev/null; then
        adduser --system --group --home /var/lib/ekran-player --no-create-home \
            --gecos "Ekran signage player" ekran
    fi
    # Display (video: KMS, render: GPU render nodes), sound, input for cage.
    for group in video render audio input; do
        if getent group "$group" >/dev/null; then
            adduser --quiet ekran "$group"
        fi
    done
    # /etc/ekran/player.toml is written by provision.sh (server URL, state
    # directory, output) from /usr/share/ekran-player/player.toml, not here:
    # the package cannot know the server, and the unit waits for the file.
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        # An upgrade restarts a running kiosk on the new binary. New boxes are
        # enabled by provision.sh, not here: installing the package on a
        # desktop must not take its tty1 over.
        systemctl try-restart ekran-player.service || true
    fi
fi
exit 0
POSTINST

  cat >"$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop ekran-player.service || true
fi
exit 0
PRERM

  cat >"$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
case "$1" in
    remove)
        rm -f /etc/systemd/system/multi-user.target.wants/ekran-player.service
        ;;
    purge)
        rm -f /etc/systemd/system/multi-user.target.wants/ekran-player.service
        # The screen's identity key, journal and cache go with a purge, and
        # the config provision.sh wrote.
        rm -rf /var/lib/ekran-player
        rm -f /etc/ekran/player.toml /etc/ekran/player.toml.before-ekran
        rmdir /etc/ekran 2>/dev/null || true
        ;;
esac
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
POSTRM
  chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

  mkdir -p "$output"
  local deb
  deb=$(cd -- "$output" && pwd)/ekran-player_${version}_arm64.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  echo "$deb"
}

if [[ -n $package_only ]]; then
  deb=$(package_deb "$package_only")
else
  install_build_deps
  binary=$(cross_build)
  deb=$(package_deb "$binary")
fi
echo "build-arm64-deb: built $deb"

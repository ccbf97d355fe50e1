#!/usr/bin/env bash
# Installs the Debian packages that building and testing Ekran needs.
# Idempotent and quiet: installs only what is missing.
set -euo pipefail
packages=(
  pkg-config build-essential
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  mesa-vulkan-drivers libvulkan1 xvfb xauth libxkbcommon-x11-0 libx11-xcb1
  gstreamer1.0-x fonts-dejavu-core tzdata openssl sqlite3 python3-venv
)
# deploy/ checks (tests/it/deploy.rs): unit verification, shell lint,
# packaging, the reverse proxies' own config checks, backups.
packages+=(systemd shellcheck dpkg-dev nginx-light caddy postgresql-client rsync)
# The web dashboard's browser tests (tests/it/web_browser.rs): headless
# Chromium driven through chromedriver.
packages+=(chromium chromium-driver)
# …and Firefox ESR (tests/it/web_firefox.rs), through geckodriver below.
packages+=(firefox-esr)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  # nginx and caddy are here for their config checks only: keep their
  # packages from starting daemons that fight over ports 80/443 (as Debian's
  # container images do), unless a policy is already in place.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -qq -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# An independent DSSE implementation (securesystemslib) for the interop test
# tests/fixtures/dsse/verify_securesystemslib.py, in a venv at a fixed path.
# Created only when missing or incomplete.
dsse_venv=/opt/ekran-ci-venv
if ! "$dsse_venv/bin/python" -c 'import securesystemslib.dsse, cryptography' 2>/dev/null; then
  /usr/bin/python3 -m venv "$dsse_venv"
  "$dsse_venv/bin/pip" install -q 'securesystemslib[crypto]==1.6.0'
fi

# geckodriver, the WebDriver server for Firefox (tests/it/web_firefox.rs), is
# not packaged by Debian: built from crates.io into /usr/local/bin, only when
# missing (a few minutes on 2 cores, once per machine).
if ! command -v geckodriver >/dev/null 2>&1; then
  cargo install --locked --quiet --root /usr/local geckodriver@0.37.1
fi

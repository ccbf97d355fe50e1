#!/usr/bin/env bash
# Turns a fresh Raspberry Pi OS Lite (Bookworm, 64-bit) into an Ekran screen
# box: installs the ekran-player package, points its config at the server,
# sets up the HDMI output, turns console blanking and the cursor off, hands
# tty1 from the login prompt to the kiosk and enables ekran-player.service.
#
#   sudo ./provision.sh --server https://signage.example.org --package ./ekran-player_0.1.0_arm64.deb
#   sudo ./provision.sh --server URL --rotate 90 --hdmi-mode 1920x1080@60
#   ./provision.sh --server URL --dry-run                 # print every change, make none
#   ./provision.sh --server URL --root /mnt/sdcard-root   # edit a mounted image instead of this system
#
# Safe to run again: every edit replaces what an earlier run wrote (a marked
# block in config.txt, single tokens in cmdline.txt, single keys in
# player.toml), so a second run with the same options changes nothing.
set -euo pipefail

readonly hdmi_connector=HDMI-A-1
readonly player_unit=ekran-player.service
readonly login_unit=getty@tty1.service
readonly block_begin="# BEGIN ekran (written by ekran's provision.sh; edits inside this block are overwritten)"
readonly block_end="# END ekran"

server_url=
package=
rotate=
hdmi_mode=
root=/
dry_run=false
start_now=true

usage() {
  cat <<USAGE
usage: $0 --server URL [options]
  --server URL          the Ekran server the screen talks to (https://…)
  --package DEB|URL     install this ekran-player .deb first (a path or an http(s) URL)
  --rotate DEGREES      clockwise screen rotation for portrait mounting: 0, 90, 180, 270
  --hdmi-mode WxH[@HZ]  force this HDMI mode (also when the screen is off at boot),
                        e.g. 1920x1080@60; default: the screen's preferred mode
  --root DIR            provision the system mounted at DIR (an SD card's root
                        partition with its boot partition at DIR/boot/firmware)
                        instead of this one; packages are not installed there
  --dry-run             print every change (as diffs and commands) without making it
  --no-start            do not (re)start the player now
USAGE
}

die() {
  echo "provision: $*" >&2
  exit 1
}

say() {
  echo "provision: $*"
}

need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while (($#)); do
  case $1 in
    --server) need_value "$@"; server_url=$2; shift 2 ;;
    --package) need_value "$@"; package=$2; shift 2 ;;
    --rotate) need_value "$@"; rotate=$2; shift 2 ;;
    --hdmi-mode) need_value "$@"; hdmi_mode=$2; shift 2 ;;
    --root) need_value "$@"; root=$2; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --no-start) start_now=false; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

# --- validate everything before touching anything ------------------------

[[ -n $server_url ]] || { usage >&2; die "--server URL is required"; }
# The URL lands in a TOML string: no quotes, backslashes or spaces.
[[ $server_url =~ ^https?://[^[:space:]\"\\]+$ ]] ||
  die "--server '$server_url' is not an http(s):// URL"
server_url=${server_url%/}

if [[ -n $rotate ]]; then
  case $rotate in
    0 | 90 | 180 | 270) ;;
    *) die "--rotate must be 0, 90, 180 or 270, not '$rotate'" ;;
  esac
fi

hdmi_width=
hdmi_height=
hdmi_refresh=
if [[ -n $hdmi_mode ]]; then
  [[ $hdmi_mode =~ ^([0-9]{3,5})x([0-9]{3,5})(@([0-9]{2,3}))?$ ]] ||
    die "--hdmi-mode must look like 1920x1080 or 1920x1080@60, not '$hdmi_mode'"
  hdmi_width=${BASH_REMATCH[1]}
  hdmi_height=${BASH_REMATCH[2]}
  hdmi_refresh=${BASH_REMATCH[4]}
fi

[[ -d $root ]] || die "--root $root is not a directory"
root=$(cd -- "$root" && pwd)
# Paths below are "$root_prefix/etc/…": empty for this system.
root_prefix=
if [[ $root != / ]]; then
  root_prefix=$root
fi

if [[ -z $root_prefix && $dry_run == false && $(id -u) != 0 ]]; then
  die "run as root (sudo), or with --dry-run to see what would change"
fi

# Bookworm keeps the boot partition at /boot/firmware; older images at /boot.
boot_dir=
for candidate in "$root_prefix/boot/firmware" "$root_prefix/boot"; do
  if [[ -f $candidate/config.txt && -f $candidate/cmdline.txt ]]; then
    boot_dir=$candidate
    break
  fi
done
[[ -n $boot_dir ]] ||
  die "no config.txt and cmdline.txt in $root_prefix/boot/firmware or $root_prefix/boot: not a Raspberry Pi OS system (is the boot partition mounted?)"

if [[ -r $root_prefix/etc/os-release ]]; then
  codename=$(sed -n 's/^VERSION_CODENAME=//p' "$root_prefix/etc/os-release")
  [[ $codename == bookworm ]] ||
    say "warning: made for Raspberry Pi OS Bookworm, this is '${codename:-unknown}'; continuing"
fi

if [[ -n $package && -n $root_prefix ]]; then
  die "--package cannot install into --root $root (no package manager runs there); install it on the box, or drop --root"
fi

# --- change helpers: everything below goes through these -----------------

boot_files_changed=false
config_changed=false
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# apply_file TARGET NEW_CONTENT_FILE MODE: replaces TARGET with the new content
# if it differs (atomically: a temporary file in the same directory, renamed
# over it; the first time, the original is kept as TARGET.before-ekran).
# Returns 0 if it changed (or would change), 1 if already up to date.
apply_file() {
  local target=$1 new=$2 mode=$3
  if [[ -f $target ]] && cmp -s -- "$target" "$new"; then
    say "unchanged: $target"
    return 1
  fi
  if [[ $dry_run == true ]]; then
    say "would change: $target"
    if [[ -f $target ]]; then
      diff -u --label "$target" --label "$target (provisioned)" -- "$target" "$new" || true
    else
      diff -u --label /dev/null --label "$target (new)" -- /dev/null "$new" || true
    fi
    return 0
  fi
  mkdir -p -- "$(dirname -- "$target")"
  if [[ -f $target && ! -e $target.before-ekran ]]; then
    cp -p -- "$target" "$target.before-ekran"
  fi
  local tmp
  tmp=$(mktemp -- "$target.ekran-XXXXXX")
  cat -- "$new" >"$tmp"
  # The FAT boot partition has no modes; a failed chmod there is harmless.
  chmod "$mode" -- "$tmp" 2>/dev/null || true
  sync -- "$tmp"
  mv -f -- "$tmp" "$target"
  say "changed: $target"
  return 0
}

# run COMMAND…: runs it, or prints it under --dry-run.
run() {
  if [[ $dry_run == true ]]; then
    say "would run: $*"
  else
    say "running: $*"
    "$@"
  fi
}

systemctl_here() {
  if [[ -n $root_prefix ]]; then
    systemctl --root="$root_prefix" "$@"
  else
    systemctl "$@"
  fi
}

# toml_set FILE SECTION KEY VALUE: sets KEY = VALUE (VALUE already TOML) in
# [SECTION] ("" = top level). An existing KEY line is replaced; otherwise the
# new line goes right after a commented-out default ("# KEY = …") if the file
# has one, else at the end of the section (created if missing).
toml_set() {
  local file=$1 section=$2 key=$3 value=$4 out
  out=$(mktemp -- "$work/toml.XXXXXX")
  awk -v section="$section" -v key="$key" -v value="$value" '
    function header_name(line) {
      sub(/^[[:space:]]*\[/, "", line); sub(/\].*$/, "", line); gsub(/[[:space:]]/, "", line)
      return line
    }
    function is_header(line) { return line ~ /^[[:space:]]*\[[^]]+\][[:space:]]*(#.*)?$/ }
    function is_key(line, commented) {
      return line ~ ("^[[:space:]]*" (commented ? "#[[:space:]]*" : "") key "[[:space:]]*=")
    }
    # Pass 1: where the key, a commented default and the section end are.
    NR == FNR {
      if (is_header($0)) { current = header_name($0); if (current == section) { found = 1; last = FNR } ; next }
      if (current != section) next
      if (!active && is_key($0, 0)) active = FNR
      if (!commented && is_key($0, 1)) commented = FNR
      if ($0 ~ /[^[:space:]]/) last = FNR
      next
    }
    # Pass 2: write it out with the one line set.
    {
      if (FNR == 1 && section == "" && !active && !commented && !last) print key " = " value
      if (FNR == active) { print key " = " value; next }
      print
      if (!active && FNR == commented) print key " = " value
      else if (!active && !commented && FNR == last) print key " = " value
    }
    END {
      if (section != "" && !found) {
        if (FNR > 0) print ""
        print "[" section "]"
        print key " = " value
      } else if (section == "" && FNR == 0) {
        print key " = " value
      }
    }
  ' "$file" "$file" >"$out"
  mv -- "$out" "$file"
}

# --- 1. the package --------------------------------------------------------

if [[ -n $package ]]; then
  deb=$package
  if [[ $package =~ ^https?:// ]]; then
    deb=$work/ekran-player.deb
    if [[ $dry_run == true ]]; then
      say "would download: $package"
    else
      say "downloading $package"
      curl --fail --silent --show-error --location --output "$deb" -- "$package"
    fi
  else
    [[ -f $package ]] || die "--package $package: no such file"
    deb=$(cd -- "$(dirname -- "$package")" && pwd)/$(basename -- "$package")
  fi
  # apt resolves the runtime dependencies (GStreamer plugins, cage, Mesa).
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb"
elif [[ -z $root_prefix && ! -x /usr/bin/ekran && $dry_run == false ]]; then
  die "ekran-player is not installed: pass --package ekran-player_VERSION_arm64.deb"
fi

# --- 2. the player's configuration ----------------------------------------

config=$root_prefix/etc/ekran/player.toml
example=$root_prefix/usr/share/ekran-player/player.toml
new_config=$work/player.toml
if [[ -f $config ]]; then
  cp -- "$config" "$new_config"
elif [[ -f $example ]]; then
  # The package's commented example, with every default shown.
  cp -- "$example" "$new_config"
else
  : >"$new_config"
fi
toml_set "$new_config" "" server_url "\"$server_url\""
# Where ekran-player.service lets it write (StateDirectory=ekran-player).
toml_set "$new_config" "" data_dir '"/var/lib/ekran-player"'
if [[ -n $rotate ]]; then
  toml_set "$new_config" output rotation "$rotate"
fi
if [[ -n $hdmi_mode ]]; then
  toml_set "$new_config" output width "$hdmi_width"
  toml_set "$new_config" output height "$hdmi_height"
fi
if apply_file "$config" "$new_config" 0644; then
  config_changed=true
fi

# --- 3. config.txt: HDMI on even when the screen is off at boot -----------

config_txt=$boot_dir/config.txt
new_config_txt=$work/config.txt
# The file without an earlier run's block (so a rerun replaces it).
awk -v begin="$block_begin" -v end="$block_end" '
  $0 == begin { skipping = 1; next }
  skipping && $0 == end { skipping = 0; next }
  !skipping { print }
' "$config_txt" >"$new_config_txt"
# Drop the blank line an earlier run put before its block.
if [[ -s $new_config_txt && -z $(tail -n 1 -- "$new_config_txt") ]]; then
  sed -i '$ d' -- "$new_config_txt"
fi
kms_overlay_present=false
if grep -Eq '^[[:space:]]*dtoverlay=vc4-(f)?kms-v3d' -- "$new_config_txt"; then
  kms_overlay_present=true
fi
{
  echo
  echo "$block_begin"
  # [all]: earlier lines may sit under a model filter such as [cm4].
  echo "[all]"
  echo "# Drive HDMI even if no screen answers at boot (screens powered on after the box)."
  echo "hdmi_force_hotplug=1"
  echo "disable_overscan=1"
  # The player draws through KMS (cage, Mesa); Bookworm's image already has this.
  if [[ $kms_overlay_present == false ]]; then
    echo "dtoverlay=vc4-kms-v3d"
  fi
  echo "$block_end"
} >>"$new_config_txt"
if apply_file "$config_txt" "$new_config_txt" 0644; then
  boot_files_changed=true
fi

# --- 4. cmdline.txt: no console blanking, no cursor, the HDMI mode --------

cmdline_txt=$boot_dir/cmdline.txt
# cmdline_set TOKENS exact|prefix NAME TOKEN: replaces the first token that is
# NAME or NAME=… ("exact"), or that starts with NAME ("prefix"), by TOKEN (or
# appends TOKEN), dropping further matches; prints the new token list.
cmdline_set() {
  local mode=$2 name=$3 token=$4 placed=false out=() current=() t
  read -r -a current <<<"$1"
  for t in "${current[@]}"; do
    if [[ $t == "$name" || $t == "$name="* || ($mode == prefix && $t == "$name"*) ]]; then
      if [[ $placed == false ]]; then
        out+=("$token")
        placed=true
      fi
    else
      out+=("$t")
    fi
  done
  [[ $placed == true ]] || out+=("$token")
  echo "${out[*]}"
}
tokens=$(tr '\n' ' ' <"$cmdline_txt")
tokens=$(cmdline_set "$tokens" exact consoleblank consoleblank=0)
tokens=$(cmdline_set "$tokens" exact vt.global_cursor_default vt.global_cursor_default=0)
if [[ -n $hdmi_mode ]]; then
  # KMS: M = standard (CVT) timings, D = output on even with no screen detected;
  # rotate= turns the boot console; the player rotates its own output.
  video="video=$hdmi_connector:${hdmi_width}x${hdmi_height}M${hdmi_refresh:+@$hdmi_refresh}D"
  if [[ -n $rotate && $rotate != 0 ]]; then
    video+=",rotate=$rotate"
  fi
  tokens=$(cmdline_set "$tokens" prefix "video=$hdmi_connector:" "$video")
fi
new_cmdline=$work/cmdline.txt
# The firmware reads one line.
printf '%s\n' "$tokens" >"$new_cmdline"
if apply_file "$cmdline_txt" "$new_cmdline" 0644; then
  boot_files_changed=true
fi

# --- 5. the kiosk service on tty1 ------------------------------------------

if systemctl_here is-enabled --quiet "$login_unit" 2>/dev/null; then
  # The kiosk owns tty1; logins stay available on tty2-6 (Ctrl+Alt+F2) and ssh.
  if [[ -n $root_prefix ]]; then
    run systemctl --root="$root_prefix" disable "$login_unit"
  else
    run systemctl disable "$login_unit"
  fi
else
  say "unchanged: $login_unit is not enabled"
fi

if systemctl_here is-enabled --quiet "$player_unit" 2>/dev/null; then
  say "unchanged: $player_unit is enabled"
elif [[ -n $root_prefix ]]; then
  run systemctl --root="$root_prefix" enable "$player_unit"
else
  run systemctl enable "$player_unit"
fi

# --- 6. apply --------------------------------------------------------------

if [[ $boot_files_changed == true ]]; then
  say "boot settings changed: reboot to apply them (sudo reboot); the screen then shows the player"
elif [[ -z $root_prefix && $start_now == true ]]; then
  if [[ $config_changed == true ]] || ! systemctl is-active --quiet "$player_unit"; then
    run systemctl restart "$player_unit"
  fi
fi
if [[ $dry_run == true ]]; then
  say "dry run: nothing was changed"
else
  say "done; on a first start the screen shows a pairing code to approve on the server"
fi

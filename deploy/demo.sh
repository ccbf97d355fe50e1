#!/usr/bin/env bash
# The Ekran demo, in one command on a fresh Debian machine:
#   installs what is missing, builds, generates the sample media, starts
#   `ekran server` on its embedded SQLite, creates tokens and a venue, pushes
#   the sample playlists, starts a player that enrolls and is approved
#   automatically (in a window when a display exists, headless with PNG
#   snapshots otherwise), prints the airtime report after a minute, and keeps
#   running until Ctrl-C. Re-running reuses the data in target/demo.
#
# Environment: EKRAN_DEMO_DIR (default target/demo), EKRAN_DEMO_PORT (8737),
# EKRAN_DEMO_REPORT_AFTER (seconds before the report, default 60),
# EKRAN_DEMO_EXIT=1 to stop after printing the report (used by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash .ci/install-deps.sh
command -v cargo >/dev/null || { echo "demo: Rust is needed (https://rustup.rs)" >&2; exit 1; }
cargo build --locked --quiet --bin ekran
ekran=$root/target/debug/ekran
deploy/sample-media.sh >/dev/null

demo=${EKRAN_DEMO_DIR:-$root/target/demo}
port=${EKRAN_DEMO_PORT:-8737}
server_url=http://127.0.0.1:$port
report_after=${EKRAN_DEMO_REPORT_AFTER:-60}
mkdir -p "$demo"

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

# 1. The server, on SQLite in the demo dir.
RUST_LOG=${RUST_LOG:-info} "$ekran" server --data "$demo/server" --listen "127.0.0.1:$port" \
  >>"$demo/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "$server_url/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$server_url/healthz" >/dev/null || { echo "demo: server did not start, see $demo/server.log" >&2; exit 1; }
echo "demo: server on $server_url (data in $demo/server)"

# 2. Tokens, made once and kept.
if [[ ! -s "$demo/tokens.env" ]]; then
  admin=$("$ekran" token create --data "$demo/server" --role admin --name demo-admin | tail -1)
  manager=$("$ekran" token create --data "$demo/server" --role manager --name demo-manager | tail -1)
  viewer=$("$ekran" token create --data "$demo/server" --role viewer --name demo-viewer | tail -1)
  printf 'admin=%s\nmanager=%s\nviewer=%s\n' "$admin" "$manager" "$viewer" >"$demo/tokens.env"
  chmod 600 "$demo/tokens.env"
fi
# shellcheck disable=SC1091
source "$demo/tokens.env"

# 3. A venue in Dushanbe (idempotent) and the sample playlists.
curl -fsS -o /dev/null -X POST "$server_url/api/v1/venues" \
  -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"id":"dyu-korvon","name":"Korvon supermarket, Dushanbe","timezone":"Asia/Dushanbe"}' \
  || true
for playlist in playlists/*.toml; do
  "$ekran" push "$playlist" --server "$server_url" --token "$manager"
done

# 4. A player: window when a display exists, headless with snapshots otherwise.
player_dir=$demo/player
mkdir -p "$player_dir"
cat >"$demo/player.toml" <<TOML
# Written by deploy/demo.sh: a player on this machine talking to the demo server.
server_url = "$server_url"
data_dir = "$player_dir"

[sync]
heartbeat_interval = "10s"

[output]
width = 1280
height = 720
snapshot_dir = "$demo/snapshots"
TOML
player_args=(player --config "$demo/player.toml")
if [[ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  player_args+=(--headless --snapshot-every 5 --refresh 25)
  echo "demo: no display: the player renders headless, PNG snapshots every 5 s in $demo/snapshots"
fi
: >"$demo/player.log"
RUST_LOG=${RUST_LOG:-info} "$ekran" "${player_args[@]}" >>"$demo/player.log" 2>&1 &
pids+=($!)

# 5. First start: approve the pairing code the player shows (a restart skips this).
if [[ ! -s "$demo/approved" ]]; then
  code=
  for _ in $(seq 300); do
    code=$(grep -o 'pairing code on screen.*code=[A-Z0-9-]*' "$demo/player.log" | tail -1 | sed 's/.*code=//') || true
    [[ -n "$code" ]] && break
    sleep 0.2
  done
  [[ -n "$code" ]] || { echo "demo: the player showed no pairing code, see $demo/player.log" >&2; exit 1; }
  echo "demo: the player shows pairing code $code; approving it"
  "$ekran" screen approve "$code" --venue dyu-korvon --group supermarkets --id dyu-korvon-1 \
    --name "Korvon checkout screen" --server "$server_url" --token "$admin"
  date -u +%FT%TZ >"$demo/approved"
fi

# 6. After a while, the airtime report the server built from proof of play.
echo "demo: web dashboard at $server_url/ (sign in with a token from $demo/tokens.env)"
echo "demo: playing; the airtime report follows in ${report_after}s (logs: $demo/*.log)"
sleep "$report_after"
today=$(TZ=Asia/Dushanbe date +%F)
"$ekran" report airtime --server "$server_url" --token "$viewer" --from "$today" --to "$today" --format table
if [[ "${EKRAN_DEMO_EXIT:-0}" == 1 ]]; then
  exit 0
fi
echo "demo: running until Ctrl-C"
wait

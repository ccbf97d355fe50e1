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

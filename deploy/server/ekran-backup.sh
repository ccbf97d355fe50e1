#!/usr/bin/env bash
# Backs up an Ekran server host: a consistent database dump (pg_dump of the
# PostgreSQL database, or an online copy of the embedded SQLite file) plus the
# data directory (the server's signing key and the content-addressed media
# store). Run daily by ekran-backup.timer; safe to run by hand.
#
# Settings come from the environment (the units read /etc/ekran/server.env
# and /etc/ekran/backup.env):
#   DATABASE_URL             postgres://… : pg_dump it. Unset: SQLite in the data dir.
#   EKRAN_DATA_DIR           the server's --data directory   (/var/lib/ekran)
#   EKRAN_BACKUP_DIR         where backups go               (/var/backups/ekran)
#   EKRAN_BACKUP_KEEP_DAYS   database dumps older than this are deleted (14)
#   EKRAN_BACKUP_RSYNC_TO    optional rsync destination (host:/path) that
#                            receives a copy of EKRAN_BACKUP_DIR afterwards
#
# Layout: $EKRAN_BACKUP_DIR/db/<name>-<UTC time>.dump|.sqlite (one per run),
# $EKRAN_BACKUP_DIR/data/ (a mirror of the data directory without the SQLite
# files; media are content-addressed, so files are never rewritten, and files
# the server evicted stay in the backup until removed by hand).
set -euo pipefail

data_dir=${EKRAN_DATA_DIR:-/var/lib/ekran}
backup_dir=${EKRAN_BACKUP_DIR:-/var/backups/ekran}
keep_days=${EKRAN_BACKUP_KEEP_DAYS:-14}
rsync_to=${EKRAN_BACKUP_RSYNC_TO:-}

die() {
  echo "ekran-backup: $*" >&2
  exit 1
}

[[ -d $data_dir ]] || die "data directory $data_dir does not exist (set EKRAN_DATA_DIR)"
[[ $keep_days =~ ^[0-9]+$ ]] || die "EKRAN_BACKUP_KEEP_DAYS must be a number of days, not '$keep_days'"

umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$backup_dir/db" "$backup_dir/data"

# A dump is written under a temporary name and renamed when complete: a
# crashed or failed run never leaves a file that looks like a good backup.
publish() {
  local tmp=$1 final=$2
  sync -- "$tmp"
  mv -- "$tmp" "$final"
  echo "ekran-backup: wrote $final"
}

# SQLite files are recognised by their header, whatever they are named.
is_sqlite() {
  [[ -f $1 && "$(head -c 15 -- "$1" 2>/dev/null)" == "SQLite format 3" ]]
}

sqlite_files=()
for file in "$data_dir"/*; do
  if is_sqlite "$file"; then
    sqlite_files+=("$file")
  fi
done

case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*)
    command -v pg_dump >/dev/null || die "pg_dump not found: apt install postgresql-client"
    tmp="$backup_dir/db/.ekran-$stamp.dump.partial"
    # Custom format: compressed, restorable table by table with pg_restore.
    pg_dump --format=custom --no-owner --file="$tmp" --dbname="$DATABASE_URL" ||
      { rm -f -- "$tmp"; die "pg_dump failed"; }
    publish "$tmp" "$backup_dir/db/ekran-$stamp.dump"
    ;;
  "")
    ((${#sqlite_files[@]})) || die "no DATABASE_URL and no SQLite database in $data_dir"
    command -v sqlite3 >/dev/null || die "sqlite3 not found: apt install sqlite3"
    for db in "${sqlite_files[@]}"; do
      name=$(basename -- "$db")
      tmp="$backup_dir/db/.$name-$stamp.sqlite.partial"
      # The online backup API: a consistent copy while the server writes (WAL).
      sqlite3 "$db" ".backup '$tmp'" || { rm -f -- "$tmp"; die "sqlite3 .backup of $db failed"; }
      publish "$tmp" "$backup_dir/db/$name-$stamp.sqlite"
    done
    ;;
  *)
    die "DATABASE_URL is neither postgres:// nor unset; cannot back it up"
    ;;
esac

# The data directory minus the live SQLite files (copied consistently above).
excludes=()
for db in "${sqlite_files[@]}"; do
  name=$(basename -- "$db")
  excludes+=(--exclude "/$name" --exclude "/$name-wal" --exclude "/$name-shm" --exclude "/$name-journal")
done
rsync -a "${excludes[@]}" -- "$data_dir/" "$backup_dir/data/"
echo "ekran-backup: mirrored $data_dir to $backup_dir/data"

find "$backup_dir/db" -maxdepth 1 -type f \( -name '*.dump' -o -name '*.sqlite' \) -mtime "+$keep_days" -print -delete |
  sed 's/^/ekran-backup: deleted old /'

if [[ -n $rsync_to ]]; then
  rsync -a --delete -- "$backup_dir/" "$rsync_to/"
  echo "ekran-backup: copied $backup_dir to $rsync_to"
fi

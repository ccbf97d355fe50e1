#!/usr/bin/env bash
# Prepares PostgreSQL for the Ekran server: a login role, a database it owns,
# and DATABASE_URL in the server's environment file (read by
# ekran-server.service and ekran-server@.service). Safe to run again: the
# role and database are created only when missing, and the password already
# in the environment file is kept (--new-password makes a fresh one).
#
#   sudo deploy/server/postgres-setup.sh                 # local PostgreSQL, peer auth as postgres
#   deploy/server/postgres-setup.sh --admin-url postgres://postgres@db:5432/postgres \
#       --db-host db.internal --env-file ./server.env
set -euo pipefail

role=ekran
database=ekran
db_host=127.0.0.1
db_port=5432
env_file=/etc/ekran/server.env
admin_url=
new_password=false

usage() {
  cat <<USAGE
usage: $0 [options]
  --role NAME         login role for the server            (default: $role)
  --database NAME     database owned by that role          (default: $database)
  --db-host HOST      host the servers reach PostgreSQL at (default: $db_host)
  --db-port PORT      its port                             (default: $db_port)
  --env-file FILE     environment file to write DATABASE_URL to (default: $env_file)
  --admin-url URL     connect as a superuser with this URL (default: psql as the
                      postgres system user, over the local socket)
  --new-password      replace the role's password (servers need a restart)
USAGE
}

die() {
  echo "postgres-setup: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --role) role=${2:?--role needs a name}; shift 2 ;;
    --database) database=${2:?--database needs a name}; shift 2 ;;
    --db-host) db_host=${2:?--db-host needs a host}; shift 2 ;;
    --db-port) db_port=${2:?--db-port needs a port}; shift 2 ;;
    --env-file) env_file=${2:?--env-file needs a path}; shift 2 ;;
    --admin-url) admin_url=${2:?--admin-url needs a URL}; shift 2 ;;
    --new-password) new_password=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

# Names go into the URL unescaped: keep them to what needs no escaping.
for name in "$role" "$database"; do
  [[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || die "'$name' is not a plain lower-case SQL name ([a-z_][a-z0-9_]*)"
done
[[ $db_port =~ ^[0-9]+$ ]] || die "--db-port must be a number, not '$db_port'"

admin_psql() {
  if [[ -n $admin_url ]]; then
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --dbname="$admin_url" "$@"
  else
    runuser -u postgres -- psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 "$@"
  fi
}

# The password: the one already in the environment file unless told otherwise.
# Hex only, so it needs no escaping in the URL.
password=
if [[ $new_password == false && -r $env_file ]]; then
  password=$(sed -n "s|^DATABASE_URL=postgres://$role:\([0-9a-f]*\)@.*|\1|p" "$env_file" | tail -n 1)
fi
if [[ -z $password ]]; then
  password=$(openssl rand -hex 24)
fi

# psql variables (:'name') quote the values; \gexec runs the CREATE only when missing.
admin_psql --set role="$role" --set database="$database" --set password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'database', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'database') \gexec
SQL

url="postgres://$role:$password@$db_host:$db_port/$database"

# Rewrite the environment file with DATABASE_URL replaced (other lines kept),
# through a temporary file: a reader never sees it half-written. Readable by
# root and the ekran group only: it holds the password.
mkdir -p -- "$(dirname -- "$env_file")"
tmp=$(mktemp "$env_file.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
if [[ -f $env_file ]]; then
  grep -v '^DATABASE_URL=' -- "$env_file" >"$tmp" || true
fi
echo "DATABASE_URL=$url" >>"$tmp"
chmod 0640 -- "$tmp"
if getent group ekran >/dev/null && [[ $(id -u) == 0 ]]; then
  chgrp ekran -- "$tmp"
fi
mv -- "$tmp" "$env_file"
trap - EXIT
echo "postgres-setup: role $role and database $database ready; DATABASE_URL written to $env_file"

#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, in target/pg.
#   tools/postgres.sh        install Debian's postgresql if missing, create and
#                            start the cluster (127.0.0.1, trust auth), create
#                            database tagwatch_test, print its URL on stdout
#   tools/postgres.sh stop   stop the cluster
# Idempotent: when the cluster already runs it only prints the URL.
# Port: $TAGWATCH_PG_PORT or 55432; the next free one when that is taken.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$PWD/target/pg
DATA=$DIR/data
DB=tagwatch_test

log() { printf '==> %s\n' "$*" >&2; }

bindir() {
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$initdb" ] && dirname "$initdb"
}

# The server refuses to run as root: as root, run its tools as `postgres`.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url() { printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$(cat "$DIR/port")" "$DB"; }

BIN=$(bindir || true)

if [ "${1:-}" = stop ]; then
  if [ -n "$BIN" ] && running; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    log "PostgreSQL in $DATA stopped"
  fi
  exit 0
fi
[ $# -eq 0 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

if [ -z "$BIN" ]; then
  log "installing Debian's postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  BIN=$(bindir) || { log "postgresql installed but no initdb found"; exit 1; }
fi

if running && [ -f "$DIR/port" ]; then
  url
  exit 0
fi

mkdir -p "$DIR"
if [ ! -f "$DATA/PG_VERSION" ]; then
  log "creating a PostgreSQL cluster in $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
  chmod 700 "$DATA"
  # C locale: text sorts by bytes, as in SQLite.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --no-locale -E UTF8 >"$DIR/initdb.log"
fi

port=${TAGWATCH_PG_PORT:-55432}
for _ in $(seq 1 100); do
  port_taken "$port" || break
  port=$((port + 1))
done
port_taken "$port" && { log "no free port from ${TAGWATCH_PG_PORT:-55432} on"; exit 1; }
echo "$port" >"$DIR/port"

log "starting PostgreSQL on 127.0.0.1:$port"
touch "$DIR/server.log"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/server.log"
# No unix socket: its default directory may not exist, and paths under
# target/ can be longer than a socket path may be.
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c max_connections=200" \
  start >/dev/null || { tail -n 20 "$DIR/server.log" >&2; exit 1; }

psql_() { "$BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }
if [ -z "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  psql_ -d postgres -c "CREATE DATABASE $DB" >/dev/null
fi
url

#!/usr/bin/env bash
# A throwaway ClickHouse for the tests, in target/clickhouse.
#   tools/clickhouse.sh            install Debian's clickhouse-server if missing,
#                                  start one server (127.0.0.1 only, a free port),
#                                  print its URL on stdout:
#                                  clickhouse://127.0.0.1:PORT/tagwatch_test
#   tools/clickhouse.sh cluster    two servers, two shards of one cluster named
#                                  `tagwatch` (target/clickhouse-1, -2); prints
#                                  the two URLs, one a line (shard 1 first)
#   tools/clickhouse.sh stop       stop every server this script started
#   tools/clickhouse.sh stop N     stop shard N of the cluster (1 or 2)
#   tools/clickhouse.sh start N    start shard N again (same port and data)
# Idempotent: a server that already runs is kept and its URL printed.
# Ports: from $TAGWATCH_CH_PORT or 18123 on, the next free ones (below
# Linux's ephemeral range, 32768-60999 by default: a port in it can be
# taken by any outgoing connection between the check and the server's bind).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/target
DB=tagwatch_test
# A user with a password (crates/events/src/testing.rs: AUTH_USER, AUTH_PASSWORD).
AUTH_USER=tagwatch_auth
AUTH_PASSWORD='p@ss:w/rd?#%'
SERVER=/usr/sbin/clickhouse-server

log() { printf '==> %s\n' "$*" >&2; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The next free port from $1 on that no server of ours has claimed.
free_port() {
  local port=$1 claimed
  claimed=$(cat "$ROOT"/clickhouse*/ports 2>/dev/null || true)
  for _ in $(seq 1 200); do
    if ! port_taken "$port" && ! grep -qw "$port" <<<"$claimed"; then
      echo "$port"
      return
    fi
    port=$((port + 1))
  done
  log "no free port from $1 on"
  exit 1
}

running() {
  local dir=$1
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

http_port() { awk '{print $1}' "$1/ports"; }

answers() { curl -fsS --max-time 2 "http://127.0.0.1:$1/?query=SELECT%201" >/dev/null 2>&1; }

url() { printf 'clickhouse://127.0.0.1:%s/%s\n' "$(http_port "$1")" "$DB"; }

# config.xml for a server in $1 (ports in $1/ports);
# $2: the cluster's remote_servers block (empty: none).
write_config() {
  local dir=$1 remote=$2 http tcp inter
  read -r http tcp inter <"$dir/ports"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  cat >"$dir/config.xml" <<EOF
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog>
    <console>0</console>
  </logger>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <interserver_http_port>$inter</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
$remote
</yandex>
EOF
}

# users.xml for a server in $1: `default` without a password, and
# $AUTH_USER with $AUTH_PASSWORD (the tests of the client's credentials).
# Written at every start: ClickHouse rereads it, so a running server
# learns a user added here.
write_users() {
  cat >"$1/users.xml" <<EOF
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <$AUTH_USER>
      <password>$AUTH_PASSWORD</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </$AUTH_USER>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

# Starts the server in $1 (configured) and waits until it answers.
start() {
  local dir=$1 http
  http=$(http_port "$dir")
  write_users "$dir"
  if running "$dir"; then
    return
  fi
  local p
  for p in $(cat "$dir/ports"); do
    port_taken "$p" && { log "port $p (of $dir/ports) is taken; stop what holds it, or remove $dir to pick new ports"; exit 1; }
  done
  log "starting ClickHouse on 127.0.0.1:$http ($dir)"
  rm -f "$dir/pid"
  "$SERVER" --config-file="$dir/config.xml" --daemon --pid-file="$dir/pid" >/dev/null 2>&1 || {
    tail -n 20 "$dir/log/error.log" >&2 2>/dev/null
    exit 1
  }
  for _ in $(seq 1 600); do
    answers "$http" && break
    sleep 0.1
  done
  answers "$http" || { log "ClickHouse in $dir did not answer"; tail -n 20 "$dir/log/error.log" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:$http/" --data-binary "CREATE DATABASE IF NOT EXISTS $DB" >/dev/null
}

stop() {
  local dir=$1 pid
  running "$dir" || return 0
  pid=$(cat "$dir/pid")
  kill "$pid"
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$dir/pid"
  log "ClickHouse in $dir stopped"
}

install() {
  [ -x "$SERVER" ] && return
  log "installing Debian's clickhouse-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server >/dev/null
}

# Ports for a new server directory: HTTP, native TCP, interserver.
claim_ports() {
  local dir=$1 base=${TAGWATCH_CH_PORT:-18123} http tcp inter
  mkdir -p "$dir"
  http=$(free_port "$base")
  echo "$http" >"$dir/ports"
  tcp=$(free_port $((http + 1)))
  echo "$http $tcp" >"$dir/ports"
  inter=$(free_port $((tcp + 1)))
  echo "$http $tcp $inter" >"$dir/ports"
}

single() {
  local dir=$ROOT/clickhouse
  [ -f "$dir/ports" ] || claim_ports "$dir"
  [ -f "$dir/config.xml" ] || write_config "$dir" ""
  start "$dir"
  url "$dir"
}

# Two servers, two shards of cluster `tagwatch`, each knowing both.
cluster() {
  local n remote
  for n in 1 2; do
    [ -f "$ROOT/clickhouse-$n/ports" ] || claim_ports "$ROOT/clickhouse-$n"
  done
  remote="  <remote_servers>
    <tagwatch>"
  for n in 1 2; do
    remote="$remote
      <shard><replica><host>127.0.0.1</host><port>$(awk '{print $2}' "$ROOT/clickhouse-$n/ports")</port></replica></shard>"
  done
  remote="$remote
    </tagwatch>
  </remote_servers>"
  for n in 1 2; do
    [ -f "$ROOT/clickhouse-$n/config.xml" ] || write_config "$ROOT/clickhouse-$n" "$remote"
  done
  for n in 1 2; do start "$ROOT/clickhouse-$n"; done
  for n in 1 2; do url "$ROOT/clickhouse-$n"; done
}

shard_dir() {
  case "${1:-}" in
    1 | 2) echo "$ROOT/clickhouse-$1" ;;
    *) usage ;;
  esac
}

case "${1:-}" in
  "")
    install
    single
    ;;
  cluster)
    install
    cluster
    ;;
  stop)
    if [ $# -eq 2 ]; then
      stop "$(shard_dir "$2")"
    else
      for dir in "$ROOT"/clickhouse "$ROOT"/clickhouse-1 "$ROOT"/clickhouse-2; do stop "$dir"; done
    fi
    ;;
  start)
    [ $# -eq 2 ] || usage
    dir=$(shard_dir "$2")
    [ -f "$dir/config.xml" ] || { log "no cluster in $dir; run tools/clickhouse.sh cluster"; exit 1; }
    start "$dir"
    url "$dir"
    ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# Load test of the collector's POST /r with wrk (tools/wrk-report.lua), and in
# the same run of nginx answering 204 to POST /r on the same machine: the
# HTTP ceiling of this machine for the same requests. Run by `./build.sh bench`
# (which installs wrk, nginx and sqlite3 if missing); needs target/release/tagwatch.
#
#   tools/bench-load.sh                 # 2 threads, 32 connections, 10 s per target
#   THREADS=4 CONNECTIONS=64 DURATION=30s tools/bench-load.sh
#   PAGE_VIEWS=ascending tools/bench-load.sh  # page views ascending per wrk thread (the
#                                       # pattern of docs/benchmarks.md's figures before
#                                       # 2026-12-06's sixth round); the default draws them
#                                       # at random, as the monitor does (tools/wrk-report.lua)
#   PG=$(tools/postgres.sh) tools/bench-load.sh   # the collector on PostgreSQL
#                                       # (a fresh database on that server, dropped after)
#   CH=$(tools/clickhouse.sh) tools/bench-load.sh # the reports in ClickHouse (--events;
#                                       # a fresh database there, dropped after; sites in SQLite)
#
# Every request carries the golden batch byte for byte as the monitor sends it
# (tests/fixtures/golden/report-batch.sent.json) under a new page view, so each 204 is new
# rows committed. After the run the collector is stopped (SIGTERM: it finishes
# accepted batches) and the rows in its SQLite db are counted: every batch
# answered 204 must be stored whole. A few more may be stored than counted:
# batches in flight when wrk stopped, committed after wrk stopped listening.
# With PG set, the collector stores into a new database on that PostgreSQL
# server instead, and the rows are counted with psql.
# Everything (db, logs, nginx config) is in target/bench-load/, fresh per run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
PAGE_VIEWS=${PAGE_VIEWS:-random}
case $PAGE_VIEWS in ascending|random) ;; *) echo "bench-load: PAGE_VIEWS is ascending or random" >&2; exit 1 ;; esac
BIN=${TAGWATCH_BIN:-$ROOT/target/release/tagwatch}
ORIGIN=https://shop.example
OUT=$ROOT/target/bench-load

die() { echo "bench-load: $*" >&2; exit 1; }
. tools/collector-url.sh
PG=${PG:-}
CH=${CH:-}
BACKEND=SQLite; [ -z "$PG" ] || BACKEND=PostgreSQL
[ -z "$CH" ] || BACKEND="$BACKEND + ClickHouse (--events)"
TOOLS="wrk nginx node curl"
if [ -n "$PG" ]; then TOOLS="$TOOLS psql"; else TOOLS="$TOOLS sqlite3"; fi
for c in $TOOLS; do
  command -v "$c" >/dev/null || die "$c is missing (./build.sh bench installs wrk, nginx and sqlite3)"
done
[ -x "$BIN" ] || die "$BIN is missing: cargo build --release -p tagwatch"

rm -rf "$OUT"
mkdir -p "$OUT/nginx-tmp"

COLLECTOR_PID='' NGINX_PID='' PG_DB='' CH_DB=''
# ClickHouse's HTTP interface of $CH (clickhouse://HOST:PORT/DB).
ch_http() { printf 'http://%s/' "$(printf '%s' "$CH" | sed -E 's#^clickhouse://([^/]*)/.*#\1#')"; }
cleanup() {
  [ -z "$CH_DB" ] || curl -fsS "$(ch_http)" --data-binary "DROP DATABASE IF EXISTS $CH_DB" >/dev/null 2>&1 || true
  [ -z "$COLLECTOR_PID" ] || kill "$COLLECTOR_PID" 2>/dev/null || true
  [ -z "$NGINX_PID" ] || kill "$NGINX_PID" 2>/dev/null || true
  [ -z "$PG_DB" ] || psql -q "$PG" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The batch as the monitor sends it (one line); counts of its reports.
cp tests/fixtures/golden/report-batch.sent.json "$OUT/batch.json"
read -r REPORTS FINDINGS INVENTORIES BYTES < <(node -e '
  const fs = require("fs");
  const body = fs.readFileSync(process.argv[1], "utf8");
  const batch = JSON.parse(body);
  const n = (t) => batch.filter((r) => r.type === t).length;
  console.log(batch.length, n("tagwatch-finding"), n("tagwatch-inventory"), Buffer.byteLength(body));
' "$OUT/batch.json")
[ $((FINDINGS + INVENTORIES)) -eq "$REPORTS" ] || die "the golden batch has reports other than findings and inventories"

# run_wrk NAME URL: prints wrk's report, leaves its wrk-report line in $OUT/NAME.wrk.
run_wrk() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s tools/wrk-report.lua "$2" \
    -- "$OUT/batch.json" "$KEY" "$ORIGIN" "$PAGE_VIEWS" > "$OUT/$1.wrk"
  sed 's/^/  /' "$OUT/$1.wrk"
  grep -q '^wrk-report: ' "$OUT/$1.wrk" || die "no wrk-report line from wrk ($1)"
}
# field NAME KEY: a value from the wrk-report line.
field() { sed -n "s/^wrk-report: .*\b$2=\([0-9.]*\).*/\1/p" "$OUT/$1.wrk"; }

CPU=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "machine: $(nproc) CPUs ($CPU), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "page views: $PAGE_VIEWS"

# --- the collector -----------------------------------------------------------
if [ -n "$PG" ]; then
  PG_DB="tw_bench_load_$$"
  psql -q "$PG" -c "CREATE DATABASE $PG_DB" >/dev/null
  # The server's URL naming the new database instead.
  DB=$(printf '%s' "$PG" | sed -E "s#^([a-z]+://[^/]*)/[^?]*#\1/$PG_DB#")
  q() { psql -qtA "$DB" -c "$1"; }
else
  DB="sqlite:$OUT/tagwatch.db"
  q() { sqlite3 "$OUT/tagwatch.db" "$1"; }
fi
EVENTS=()
if [ -n "$CH" ]; then
  CH_DB="tw_bench_load_$$"
  EVENTS=(--events "$(printf '%s' "$CH" | sed -E "s#^(clickhouse://[^/]*)/[^?]*#\1/$CH_DB#")")
  q() { curl -fsS "$(ch_http)?database=$CH_DB" --data-binary "$1"; }
fi
KEY=$("$BIN" site add --origin "$ORIGIN" --db "$DB")
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
# The log exists before the collector starts (tools/collector-url.sh).
: > "$OUT/collector.log"
TAGWATCH_ADMIN_TOKEN=$TOKEN "$BIN" serve --listen 127.0.0.1:0 --db "$DB" "${EVENTS[@]}" \
  --rate 0 --client-rate 0 2> "$OUT/collector.log" &
COLLECTOR_PID=$!
COLLECTOR_URL=$(collector_url "$OUT/collector.log" "$COLLECTOR_PID") || exit 1

# CPU time (user + system, clock ticks) the collector used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$COLLECTOR_PID/stat"; }
# Bytes the collector handed to write system calls so far (SQLite's WAL and
# checkpoints, the answers): a figure the machine's load does not move.
written() { awk '$1 == "wchar:" { print $2 }' "/proc/$COLLECTOR_PID/io"; }

# With PG on this machine: CPU time of the server's processes (its
# backends, WAL writer, checkpointer; the ones this collector has open
# when sampled), 0 when the server is elsewhere.
pg_ticks() {
  [ -n "$PG" ] || { echo 0; return; }
  for pid in $(psql -qtA "$DB" -c "SELECT pid FROM pg_stat_activity"); do
    awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true
  done | awk '{ s += $1 } END { print s + 0 }'
}

echo "collector $COLLECTOR_URL ($BACKEND), POST /r ($REPORTS reports, $BYTES bytes a batch):"
CPU_BEFORE=$(cpu_ticks) WRITTEN_BEFORE=$(written) PG_BEFORE=$(pg_ticks)
run_wrk collector "$COLLECTOR_URL"
CPU_USED=$(( $(cpu_ticks) - CPU_BEFORE )) WRITTEN=$(( $(written) - WRITTEN_BEFORE ))
PG_USED=$(( $(pg_ticks) - PG_BEFORE ))

# Group commits so far (each one transaction): batches a commit is how much
# the writer's per-commit cost is shared.
METRICS=$(curl -s -H "Authorization: Bearer $TOKEN" "$COLLECTOR_URL/metrics")
COMMITS=$(printf '%s\n' "$METRICS" | sed -n 's/^tagwatch_write_duration_seconds_count \([0-9]*\).*/\1/p')
# Seconds spent in commits (the writer's whole transaction, first statement
# to the answer of COMMIT): the mean commit time.
COMMIT_SECONDS=$(printf '%s\n' "$METRICS" | sed -n 's/^tagwatch_write_duration_seconds_sum \([0-9.e+-]*\).*/\1/p')
kill -TERM "$COLLECTOR_PID"
wait "$COLLECTOR_PID" || die "the collector exited with $? on SIGTERM: $(cat "$OUT/collector.log")"
COLLECTOR_PID=''
grep -q '^tagwatch: stopped$' "$OUT/collector.log" || die "the collector did not report a clean stop"

if [ -n "$CH" ]; then
  # As the API counts them: findings by dedupe key, inventories by page view.
  STORED_FINDINGS=$(q "SELECT count() FROM (SELECT 1 FROM findings WHERE site = '$KEY' GROUP BY page_view, type, vendor, evidence)")
  STORED_INVENTORIES=$(q "SELECT uniqExact(page_view) FROM inventories WHERE site = '$KEY'")
  STORED_VIEWS=$(q "SELECT count(DISTINCT page_view) FROM findings WHERE site = '$KEY'")
else
  # The store is new and has this one site: every row is its (counted
  # without naming the site, which schema 15 keeps by id, so that builds
  # before and after it are counted alike).
  STORED_FINDINGS=$(q "SELECT count(*) FROM findings")
  STORED_INVENTORIES=$(q "SELECT count(*) FROM inventories")
  STORED_VIEWS=$(q "SELECT count(DISTINCT page_view) FROM findings")
fi

# --- nginx answering 204 -----------------------------------------------------
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
cat > "$OUT/nginx.conf" <<EOF
# Written by tools/bench-load.sh: POST /r answered 204, nothing else.
daemon off;
worker_processes auto;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_max_body_size 64k;
  client_body_temp_path $OUT/nginx-tmp/body;
  proxy_temp_path $OUT/nginx-tmp/proxy;
  fastcgi_temp_path $OUT/nginx-tmp/fastcgi;
  uwsgi_temp_path $OUT/nginx-tmp/uwsgi;
  scgi_temp_path $OUT/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$PORT;
    location = /r {
      if (\$request_method != POST) { return 405; }
      return 204;
    }
  }
}
EOF
nginx -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/nginx-error.log" &
NGINX_PID=$!
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "http://127.0.0.1:$PORT/r" || true)" = 204 ] && break
  kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$OUT/nginx-error.log")"
  sleep 0.1
done

echo "nginx $(nginx -v 2>&1 | sed 's|.*/||') http://127.0.0.1:$PORT, POST /r answered 204:"
run_wrk nginx "http://127.0.0.1:$PORT"

kill -TERM "$NGINX_PID"
wait "$NGINX_PID" || true
NGINX_PID=''

# --- results -----------------------------------------------------------------
awk -v reports="$REPORTS" -v threads="$THREADS" -v conns="$CONNECTIONS" -v dur="$DURATION" \
    -v c_ok="$(field collector status_204)" -v c_other="$(field collector other)" -v c_err="$(field collector errors)" \
    -v c_us="$(field collector duration_us)" -v c_p50="$(field collector p50_us)" -v c_p99="$(field collector p99_us)" \
    -v n_ok="$(field nginx status_204)" -v n_other="$(field nginx other)" -v n_err="$(field nginx errors)" \
    -v n_us="$(field nginx duration_us)" -v n_p50="$(field nginx p50_us)" -v n_p99="$(field nginx p99_us)" '
BEGIN {
  c_rps = c_ok / (c_us / 1e6); n_rps = n_ok / (n_us / 1e6)
  printf "\nwrk, %s threads, %s connections, %s per target; %d reports a batch\n", threads, conns, dur, reports
  printf "%-22s %9s %11s %8s %8s %12s\n", "target", "204/s", "reports/s", "p50 ms", "p99 ms", "other/errors"
  printf "%-22s %9.0f %11.0f %8.2f %8.2f %12s\n", "collector POST /r", c_rps, c_rps * reports, c_p50 / 1000, c_p99 / 1000, c_other "/" c_err
  printf "%-22s %9.0f %11.0f %8.2f %8.2f %12s\n", "nginx 204 POST /r", n_rps, n_rps * reports, n_p50 / 1000, n_p99 / 1000, n_other "/" n_err
  printf "%-22s %9.3f %11.3f %8.1f %8.1f\n", "collector / nginx", c_rps / n_rps, c_rps / n_rps, c_p50 / n_p50, c_p99 / n_p99
}'

OK=$(field collector status_204)
awk -v ticks="$CPU_USED" -v hz="$(getconf CLK_TCK)" -v ok="$OK" -v us="$(field collector duration_us)" -v written="$WRITTEN" -v commits="${COMMITS:-0}" -v commit_s="${COMMIT_SECONDS:-0}" -v pg_ticks="$PG_USED" 'BEGIN {
  cpu = ticks / hz
  printf "collector CPU: %.2f s in %.2f s of load (%.2f cores), %.3f ms a batch\n", cpu, us / 1e6, cpu / (us / 1e6), ok ? cpu * 1000 / ok : 0
  printf "collector writes: %.1f MB, %.1f KB a batch\n", written / 1e6, ok ? written / 1000 / ok : 0
  if (pg_ticks > 0) printf "PostgreSQL CPU (its processes on this machine): %.2f s (%.2f cores), %.3f ms a batch\n", pg_ticks / hz, pg_ticks / hz / (us / 1e6), ok ? pg_ticks / hz * 1000 / ok : 0
  if (commits) printf "group commits: %d, %.1f batches a commit, %.1f ms a commit (mean)\n", commits, ok / commits, commit_s * 1000 / commits
}'
SURPLUS=$((STORED_VIEWS - OK))
echo "stored: $STORED_VIEWS page views ($STORED_FINDINGS findings, $STORED_INVENTORIES inventories)" \
  "for $OK batches answered 204 ($((OK * FINDINGS)) findings, $OK inventories)"
if [ "$STORED_VIEWS" -lt "$OK" ] || [ "$STORED_FINDINGS" -ne $((STORED_VIEWS * FINDINGS)) ] ||
   [ "$STORED_INVENTORIES" -ne $((STORED_VIEWS * INVENTORIES)) ]; then
  die "LOST WRITES: not every batch answered 204 is stored whole (db: $OUT/tagwatch.db)"
fi
if [ "$SURPLUS" -gt "$CONNECTIONS" ]; then
  die "$SURPLUS more page views stored than 204s counted, more than the $CONNECTIONS connections could have in flight"
fi
echo "every accepted report is stored ($SURPLUS more batches stored than 204s counted: in flight when wrk stopped)"

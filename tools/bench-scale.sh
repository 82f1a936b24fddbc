#!/usr/bin/env bash
# The dashboard's queries on SQLite, PostgreSQL and ClickHouse (--events),
# filled with the same generated reports, timed through the collector's API.
# Run by `./build.sh bench`; needs target/release/tagwatch, sqlite3, psql, curl.
#
#   tools/bench-scale.sh                          # 10,000,000 findings, 1,000,000 inventories
#   FINDINGS=1000000 INVENTORIES=100000 tools/bench-scale.sh   # a tenth
#   RUNS=51 tools/bench-scale.sh                  # more timed requests per query
#   STORES=clickhouse KEEP=1 tools/bench-scale.sh # some stores; keep their data
#   OUT=target/bench-scale-ch tools/bench-scale.sh # another work directory (two runs at once)
#
# The data, shaped like page views: SITES sites (1,000), DAYS days (30, from
# 2026-03-01); one inventory per page view (3 vendors, 1 unclassified host),
# FINDINGS / INVENTORIES findings per page view (10), of 4 types and 5
# vendors on 50 pages. The same rows go into a fresh SQLite file, a fresh
# PostgreSQL database (tools/postgres.sh) and a fresh ClickHouse database
# (tools/clickhouse.sh), each generated in its own SQL. Then one collector per
# store answers, RUNS times each (sites in turn):
#   stats      GET /api/stats?site=…&since=…&until=…   (30 days: totals, types, vendors, top pages, days, consent)
#   findings   GET /api/findings?site=…&vendor=ga4&type=gpc_ignored&limit=1000
#   inventory  GET /api/inventory?site=…
# and the script prints p50 and p99 (the slowest for fewer than 100 runs) per
# store and query. One store at a time (fill, time, delete: at the full size
# SQLite and PostgreSQL take several GB each); everything is in
# target/bench-scale/, and the databases are dropped at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FINDINGS=${FINDINGS:-10000000}
INVENTORIES=${INVENTORIES:-1000000}
SITES=${SITES:-1000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-21}
BIN=${TAGWATCH_BIN:-$ROOT/target/release/tagwatch}
OUT=${OUT:-$ROOT/target/bench-scale}
DB_NAME=tw_bench_scale_$$

die() { echo "bench-scale: $*" >&2; exit 1; }
. tools/collector-url.sh
log() { printf '==> %s\n' "$*" >&2; }
for c in sqlite3 psql curl; do command -v "$c" >/dev/null || die "$c is missing"; done
[ -x "$BIN" ] || die "$BIN is missing: cargo build --release -p tagwatch"
[ $((FINDINGS % INVENTORIES)) -eq 0 ] || die "FINDINGS must be a multiple of INVENTORIES"
PER_VIEW=$((FINDINGS / INVENTORIES))

PG=$(tools/postgres.sh)
CH=$(tools/clickhouse.sh)
PG_URL=$(printf '%s' "$PG" | sed -E "s#^([a-z]+://[^/]*)/[^?]*#\1/$DB_NAME#")
CH_URL=$(printf '%s' "$CH" | sed -E "s#^(clickhouse://[^/]*)/.*#\1/$DB_NAME#")
CH_HTTP=$(printf '%s' "$CH" | sed -E 's#^clickhouse://([^/]*)/.*#http://\1/#')
ch() { curl -fsS "${CH_HTTP}?database=$DB_NAME" --data-binary "$1"; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && { echo "kept: $SQLITE, $PG_URL, $CH_URL" >&2; return; }
  psql -q "$PG" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  curl -fsS "$CH_HTTP" --data-binary "DROP DATABASE IF EXISTS $DB_NAME" >/dev/null 2>&1 || true
  rm -f "$OUT"/tagwatch.db*
}
trap cleanup EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
SQLITE="sqlite:$OUT/tagwatch.db"
CONTROL="sqlite:$OUT/control.db"
STORES=${STORES:-sqlite postgres clickhouse}

echo "machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $FINDINGS findings, $INVENTORIES inventories, $SITES sites, $DAYS days"

# --- schemas, made by tagwatch itself -------------------------------------------
psql -q "$PG" -c "CREATE DATABASE $DB_NAME" >/dev/null
"$BIN" site list --db "$SQLITE" >/dev/null
"$BIN" site list --db "$PG_URL" >/dev/null
"$BIN" purge --before 1970-01-02 --db "$CONTROL" --events "$CH_URL" 2>/dev/null

# --- the same rows, generated in each dialect ------------------------------------
# Finding n: page view n / PER_VIEW, whose site is (page view % SITES) and day
# (page view % DAYS); type n % 4, vendor (n / 3) % 5, evidence n % 7 (unique
# within a page view); count 1 + n % 3. Inventory n: page view n (its
# findings'), 3 vendors and 1 unclassified host. Times: day d from
# 2026-03-01, second of the day from the page view. Schema 15: rows name
# their site by its id in `names`; page view n has ordinal n + 1 (`page_views`).
# sql_fill: the INSERTs for SQLite and PostgreSQL; `key X`, `at X` and
# `series N` print the dialect's expressions (defined by fill_sqlite and
# fill_postgres).
sql_sites() {
  cat <<SQL
INSERT INTO sites (key, created_at) SELECT $(key n), '2026-01-01T00:00:00.000Z' FROM $(series "$SITES");
INSERT INTO site_origins (site, origin) SELECT key, 'https://shop.example' FROM sites;
INSERT INTO names (name) SELECT key FROM sites ORDER BY key;
SQL
}
sql_fill() {
  cat <<SQL
$(sql_sites)
INSERT INTO findings (site_id, page_view, page, type, vendor, category, evidence, consent, count, at, received_at, user_agent, raw, ordinal)
SELECT (SELECT id FROM names WHERE name = $(key "(n / $PER_VIEW) % $SITES")), 'pv' || (n / $PER_VIEW), 'https://shop.example/p' || (n % 50),
       CASE n % 4 WHEN 0 THEN 'script_before_consent' WHEN 1 THEN 'cookie_before_consent'
                  WHEN 2 THEN 'gpc_ignored' ELSE 'tracking_before_consent' END,
       CASE (n / 3) % 5 WHEN 0 THEN 'ga4' WHEN 1 THEN 'hotjar' WHEN 2 THEN 'meta' WHEN 3 THEN 'ttd' ELSE 'intercom' END,
       'marketing', '{"url":"https://x.example/' || (n % 7) || '"}',
       CASE (n / $PER_VIEW) % 3
         WHEN 0 THEN '{"analytics":false,"functional":true,"marketing":false,"necessary":true,"source":"tcf"}'
         WHEN 1 THEN '{"analytics":true,"functional":true,"marketing":true,"necessary":true,"source":"onetrust"}'
         ELSE '{"necessary":true,"source":"gpp"}' END,
       1 + n % 3, $(at "n / $PER_VIEW"), $(at "n / $PER_VIEW"), 'Mozilla/5.0', '{}', 1 + n / $PER_VIEW
FROM $(series "$FINDINGS");
INSERT INTO inventories (site_id, page_view, page, at, received_at, user_agent, raw, ordinal)
SELECT (SELECT id FROM names WHERE name = $(key "n % $SITES")), 'pv' || n, 'https://shop.example/p' || ((n * $PER_VIEW) % 50), $(at n), $(at n), 'Mozilla/5.0', '{}', 1 + n
FROM $(series "$INVENTORIES");
INSERT INTO page_views (ordinal, site_id, page_view)
SELECT 1 + n, (SELECT id FROM names WHERE name = $(key "n % $SITES")), 'pv' || n
FROM $(series "$INVENTORIES");
INSERT INTO inventory_vendors (inventory, vendor, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms, hosts, regions, cookies)
SELECT i.id, v.vendor, 3, 1, 20000, 8000, 120, v.hosts, '["US"]', v.cookies
FROM inventories i, (SELECT 'ga4' AS vendor, '["www.google-analytics.com"]' AS hosts, '["_ga"]' AS cookies
                     UNION ALL SELECT 'hotjar', '["static.hotjar.com"]', '["_hjSessionUser"]'
                     UNION ALL SELECT 'meta', '["connect.facebook.net"]', '["_fbp"]') v;
INSERT INTO inventory_hosts (inventory, host, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms)
SELECT id, 'cdn' || ((id + 1) % 20) || '.example', 2, 0, 5000, 2000, 40 FROM inventories;
SQL
}

timed() {
  local what=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "filled $what in $(($(date +%s) - start)) s"
}

# SQLite: one transaction, no journal and no fsync (a failed fill is
# thrown away), a 256 MB page cache.
fill_sqlite() {
  key() { echo "'tw_bench' || printf('%019d', $1)"; }
  at() { echo "strftime('%Y-%m-%dT%H:%M:%S.000Z', '2026-03-01', '+' || (($1) % $DAYS) || ' days', '+' || ((($1) * 7919) % 86400) || ' seconds')"; }
  series() { echo "(SELECT value - 1 AS n FROM generate_series(1, $1)) s"; }
  { echo "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY; BEGIN;"; sql_fill; echo "COMMIT; ANALYZE;"; } | sqlite3 "$OUT/tagwatch.db"
}

fill_postgres() {
  key() { echo "'tw_bench' || lpad(($1)::text, 19, '0')"; }
  at() { echo "to_char(timestamp '2026-03-01' + make_interval(days => (($1) % $DAYS)::int, secs => ((($1) * 7919) % 86400)::int), 'YYYY-MM-DD\"T\"HH24:MI:SS.000\"Z\"')"; }
  series() { echo "(SELECT n FROM generate_series(0::bigint, $1 - 1) AS n) s"; }
  { echo "SET synchronous_commit = off; BEGIN;"; sql_fill; echo "COMMIT; ANALYZE;"; } |
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null
}

# ClickHouse: the sites in a SQLite file of their own (the control plane),
# the events tables as tagwatch writes them (one row per
# finding; an inventory's vendors and hosts as arrays).
fill_clickhouse() {
  (
    key() { echo "'tw_bench' || printf('%019d', $1)"; }
    series() { echo "(SELECT value - 1 AS n FROM generate_series(1, $1)) s"; }
    sql_sites | sqlite3 "$OUT/control.db"
  )
  local key="concat('tw_bench', substring(toString(toUInt64(10000000000000000000) + ((X) % $SITES)), 2))"
  local at="concat(toString(toDate('2026-03-01') + ((X) % $DAYS)), 'T', substring(toString(toDateTime('2026-03-01 00:00:00', 'UTC') + (((X) * 7919) % 86400)), 12), '.000Z')"
  local pv="intDiv(n, $PER_VIEW)"
  ch "INSERT INTO findings (site, page_view, page, type, vendor, category, evidence, consent, count, at, received_at, user_agent, raw, token, day)
      SELECT ${key//X/$pv}, concat('pv', toString($pv)), concat('https://shop.example/p', toString(n % 50)),
             ['script_before_consent','cookie_before_consent','gpc_ignored','tracking_before_consent'][n % 4 + 1],
             ['ga4','hotjar','meta','ttd','intercom'][intDiv(n, 3) % 5 + 1],
             'marketing', concat('{\"url\":\"https://x.example/', toString(n % 7), '\"}'),
             ['{\"analytics\":false,\"functional\":true,\"marketing\":false,\"necessary\":true,\"source\":\"tcf\"}',
              '{\"analytics\":true,\"functional\":true,\"marketing\":true,\"necessary\":true,\"source\":\"onetrust\"}',
              '{\"necessary\":true,\"source\":\"gpp\"}'][$pv % 3 + 1],
             1 + n % 3, ${at//X/$pv}, ${at//X/$pv}, 'Mozilla/5.0', '{}', 0, toDate('2026-03-01') + ($pv % $DAYS)
      FROM (SELECT number AS n FROM numbers($FINDINGS))"
  ch "INSERT INTO inventories (site, page_view, page, at, received_at, user_agent, raw,
        v_vendor, v_requests, v_script_requests, v_transfer_bytes, v_encoded_bytes, v_duration_ms, v_hosts, v_regions, v_cookies,
        h_host, h_requests, h_script_requests, h_transfer_bytes, h_encoded_bytes, h_duration_ms, token, day)
      SELECT ${key//X/n}, concat('pv', toString(n)), concat('https://shop.example/p', toString((n * $PER_VIEW) % 50)),
             ${at//X/n}, ${at//X/n}, 'Mozilla/5.0', '{}',
             ['ga4','hotjar','meta'], [3,3,3], [1,1,1], [20000,20000,20000], [8000,8000,8000], [120,120,120],
             [['www.google-analytics.com'],['static.hotjar.com'],['connect.facebook.net']], [['US'],['US'],['US']],
             [['_ga'],['_hjSessionUser'],['_fbp']],
             [concat('cdn', toString((n + 1) % 20), '.example')], [2], [0], [5000], [2000], [40], 0,
             toDate('2026-03-01') + (n % $DAYS)
      FROM (SELECT number AS n FROM numbers($INVENTORIES))"
}

# --- one collector per store --------------------------------------------------------
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
start_collector() {
  local name=$1 url
  shift
  TAGWATCH_ADMIN_TOKEN=$TOKEN "$BIN" serve --listen 127.0.0.1:0 --skip-integrity-check "$@" 2>"$OUT/$name.log" &
  PIDS+=($!)
  collector_url "$OUT/$name.log" "$!" || die "the $name collector did not start"
}
stop_collectors() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

# time_query URL PATH (@SITE@ replaced): RUNS requests, sites in turn; p50 and p99 in ms.
time_query() {
  local base=$1 path=$2 i site times=()
  for i in $(seq 0 $((RUNS - 1))); do
    site="tw_bench$(printf '%019d' $(((i * 37) % SITES)))"
    times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$base${path//@SITE@/$site}")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 * 1000 } END {
    p99 = int(NR * 0.99 + 0.999); if (p99 > NR) p99 = NR
    printf "%9.1f %9.1f", t[int((NR + 1) / 2)], t[p99] }'
}

count() {
  case $1 in
    sqlite) sqlite3 "$OUT/tagwatch.db" "$2" ;;
    postgres) psql -qtA "$PG_URL" -c "$2" ;;
    clickhouse) ch "$2" ;;
  esac
}

# One store at a time: fill, check, time, then delete its data (at 10
# million findings SQLite and PostgreSQL take several GB each).
RESULTS=$OUT/results.txt
: >"$RESULTS"
for store in $STORES; do
  log "$store: filling"
  case $store in
    sqlite) timed SQLite fill_sqlite; echo "SQLite file: $(du -h "$OUT/tagwatch.db" | cut -f1)" ;;
    postgres) timed PostgreSQL fill_postgres; echo "PostgreSQL database: $(psql -qtA "$PG_URL" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")" ;;
    clickhouse) timed ClickHouse fill_clickhouse; echo "ClickHouse database: $(ch "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE active AND database = currentDatabase()")" ;;
    *) die "unknown store $store (STORES: sqlite postgres clickhouse)" ;;
  esac
  for q in "SELECT count(*) FROM findings:$FINDINGS" "SELECT count(*) FROM inventories:$INVENTORIES"; do
    n=$(count "$store" "${q%:*}")
    [ "$n" = "${q##*:}" ] || die "$store: ${q%:*} is $n, not ${q##*:}"
  done
  # (Not in a $(…): the collector would hold its pipe open.)
  case $store in
    sqlite) start_collector sqlite --db "$SQLITE" >"$OUT/url" ;;
    postgres) start_collector postgres --db "$PG_URL" >"$OUT/url" ;;
    clickhouse) start_collector clickhouse --db "$CONTROL" --events "$CH_URL" >"$OUT/url" ;;
  esac
  base=$(cat "$OUT/url")
  log "$store: timing"
  {
    printf '%-12s %-10s %s\n' "$store" stats "$(time_query "$base" '/api/stats?site=@SITE@&since=2026-03-01&until=2026-04-01')"
    printf '%-12s %-10s %s\n' "$store" findings "$(time_query "$base" '/api/findings?site=@SITE@&vendor=ga4&type=gpc_ignored&limit=1000')"
    printf '%-12s %-10s %s\n' "$store" inventory "$(time_query "$base" '/api/inventory?site=@SITE@')"
  } >>"$RESULTS"
  stop_collectors
  if [ -z "${KEEP:-}" ]; then
    case $store in
      sqlite) rm -f "$OUT"/tagwatch.db* ;;
      postgres) psql -q "$PG" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null ;;
    esac
  fi
done

echo
echo "$RUNS requests per query and store, sites in turn; ms (p99 of fewer than 100 runs: the slowest)"
printf '%-12s %-10s %9s %9s\n' store query p50 p99
cat "$RESULTS"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

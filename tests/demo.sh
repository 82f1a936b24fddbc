#!/usr/bin/env bash
# The demo behind `./build.sh demo`: the collector on embedded SQLite, the
# demo shop with an Intercom imitation (served over HTTPS under the real
# hostnames), one headless visit so findings are there at once, and where to
# look. Ctrl-C stops everything. Ports: TAGWATCH_DEMO_COLLECTOR_PORT (8787),
# TAGWATCH_DEMO_SHOP_PORT (8443).
set -euo pipefail
cd "$(dirname "$0")/.."
collector_port=${TAGWATCH_DEMO_COLLECTOR_PORT:-8787}
shop_port=${TAGWATCH_DEMO_SHOP_PORT:-8443}
state=target/demo
mkdir -p "$state"
db="sqlite:$state/tagwatch.db"
bin=target/release/tagwatch
export TAGWATCH_ADMIN_TOKEN=${TAGWATCH_ADMIN_TOKEN:-$(openssl rand -hex 16)}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# One site for the demo shop, kept across runs.
if [ ! -s "$state/site-key" ]; then
  "$bin" site add --origin https://shop.example --db "$db" > "$state/site-key"
fi
site=$(cat "$state/site-key")

"$bin" serve --listen "127.0.0.1:$collector_port" --db "$db" 2> "$state/collector.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$state/collector.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$state/collector.log" || { cat "$state/collector.log" >&2; exit 1; }

node tests/fixtures/fake-intercom/server.mjs --port "$shop_port" \
  --collector "http://127.0.0.1:$collector_port/r" --site "$site" > "$state/shop.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'chromium' "$state/shop.log" 2>/dev/null && break; sleep 0.1; done

echo "==> one headless visit to the demo shop (no consent given)" >&2
node www/demo/visit.mjs --port "$shop_port" >&2 || echo "(the headless visit failed; see above)" >&2

findings="http://127.0.0.1:$collector_port/api/findings?site=$site"
cat <<MSG

tagwatch demo is running (Ctrl-C stops it).

  Demo shop     https://shop.example/demo/   (served on 127.0.0.1:$shop_port under real hostnames; open it with
                chromium --user-data-dir=\$(mktemp -d) --ignore-certificate-errors \\
                  --host-resolver-rules="$(node -e "import('./tests/fixtures/fake-intercom/hosts.mjs').then(m=>console.log(m.hostResolverRules($shop_port)))")" \\
                  https://shop.example/demo/ )
  Dashboard     http://127.0.0.1:$collector_port/dashboard/   (paste the admin token below)
  Findings      $findings
                curl -s -H "Authorization: Bearer $TAGWATCH_ADMIN_TOKEN" '$findings'
  Admin token   $TAGWATCH_ADMIN_TOKEN
  Site key      $site
  Logs          $state/collector.log, $state/shop.log

MSG
curl -s -H "Authorization: Bearer $TAGWATCH_ADMIN_TOKEN" "$findings" | head -c 600; echo
wait

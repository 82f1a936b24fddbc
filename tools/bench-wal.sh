#!/usr/bin/env bash
# What each B-tree adds to the SQLite WAL a group commit under load
# (docs/benchmarks.md, "What a batch writes, B-tree by B-tree"): the
# collector is loaded as tools/bench-load.sh loads it (wrk, the golden batch
# under random page views), its WAL file is copied mid-run, and every frame
# of the copy's current generation (the salt of its header) is named by the
# B-tree its page belongs to (sqlite3's `dbstat` of the store after the run;
# a page the store freed or made since is counted as `?`). Prints frames a
# commit per B-tree and the batches a commit of the whole run; WAL frames are
# whole pages (4,096 bytes and a 24-byte header), so frames a batch × 4,120
# is the WAL's bytes a batch (checkpoints copy those pages again).
#
#   tools/bench-wal.sh                  # target/release/tagwatch, 6 s of load, copy at 4 s
#   TAGWATCH_BIN=… DURATION=10 AT=6 tools/bench-wal.sh
#
# Needs wrk, sqlite3 (built with dbstat, as Debian's is), python3, curl.
# Everything in target/bench-wal/, fresh per run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${TAGWATCH_BIN:-$ROOT/target/release/tagwatch}
DURATION=${DURATION:-6}
AT=${AT:-4}
ORIGIN=https://shop.example
OUT=$ROOT/target/bench-wal
die() { echo "bench-wal: $*" >&2; exit 1; }
. tools/collector-url.sh
for c in wrk sqlite3 python3 curl; do command -v "$c" >/dev/null || die "$c is missing"; done
[ -x "$BIN" ] || die "$BIN is missing: cargo build --release -p tagwatch"
[ "$AT" -lt "$DURATION" ] || die "AT ($AT s) must be before the end of the load ($DURATION s)"

rm -rf "$OUT"
mkdir -p "$OUT"
COLLECTOR_PID='' WRK_PID=''
cleanup() {
  [ -z "$WRK_PID" ] || kill "$WRK_PID" 2>/dev/null || true
  [ -z "$COLLECTOR_PID" ] || kill "$COLLECTOR_PID" 2>/dev/null || true
}
trap cleanup EXIT

cp tests/fixtures/golden/report-batch.sent.json "$OUT/batch.json"
DB="sqlite:$OUT/tagwatch.db"
KEY=$("$BIN" site add --origin "$ORIGIN" --db "$DB")
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
: > "$OUT/collector.log"
TAGWATCH_ADMIN_TOKEN=$TOKEN "$BIN" serve --listen 127.0.0.1:0 --db "$DB" \
  --rate 0 --client-rate 0 2> "$OUT/collector.log" &
COLLECTOR_PID=$!
URL=$(collector_url "$OUT/collector.log" "$COLLECTOR_PID") || exit 1

wrk -t2 -c32 -d"${DURATION}s" -s tools/wrk-report.lua "$URL" \
  -- "$OUT/batch.json" "$KEY" "$ORIGIN" random > "$OUT/wrk.txt" &
WRK_PID=$!
sleep "$AT"
cp "$OUT/tagwatch.db-wal" "$OUT/copy.wal"
wait "$WRK_PID" || die "wrk failed: $(cat "$OUT/wrk.txt")"
WRK_PID=''
COMMITS=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/metrics" |
  sed -n 's/^tagwatch_write_duration_seconds_count \([0-9]*\).*/\1/p')
kill -TERM "$COLLECTOR_PID"
wait "$COLLECTOR_PID" || die "the collector exited with $? on SIGTERM"
COLLECTOR_PID=''
BATCHES=$(sed -n 's/^wrk-report: .*\bstatus_204=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
[ -n "$BATCHES" ] && [ -n "$COMMITS" ] || die "no figures from wrk or /metrics"
sqlite3 "$OUT/tagwatch.db" "SELECT pageno, name FROM dbstat" > "$OUT/pages.txt"

python3 - "$OUT" "$BATCHES" "$COMMITS" <<'EOF'
import collections, struct, sys
out, batches, commits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tree = {}
for line in open(f"{out}/pages.txt"):
    page, name = line.rstrip("\n").split("|", 1)
    tree[int(page)] = name
wal = open(f"{out}/copy.wal", "rb").read()
_magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", wal[:32])
at, done, frames, pending = 32, 0, collections.Counter(), collections.Counter()
while at + 24 + page_size <= len(wal):
    page, size_after, s1, s2, _k1, _k2 = struct.unpack(">6I", wal[at:at + 24])
    if (s1, s2) != (salt1, salt2):
        break  # frames of an earlier generation of the WAL
    pending[tree.get(page, "?")] += 1
    if size_after:  # the commit's last frame
        done += 1
        frames.update(pending)
        pending.clear()
    at += 24 + page_size
if not done:
    sys.exit("bench-wal: no whole commit in the copy of the WAL (copy later: AT)")
per_commit = batches / commits
total = sum(frames.values())
print(f"run: {batches} batches in {commits} group commits, {per_commit:.1f} batches a commit")
print(f"WAL copy: {done} commits, {total / done:.1f} frames a commit "
      f"(≈ {total / done / per_commit:.2f} a batch at the run's batches a commit)")
print(f"{'B-tree':34s} {'frames a commit':>16s} {'share':>7s}")
for name, n in frames.most_common():
    print(f"{name:34s} {n / done:16.2f} {100 * n / total:6.1f}%")
EOF

# Sourced by the bench scripts (bench-load.sh, bench-wal.sh, bench-scale.sh):
# `collector_url LOG [PID]` prints the URL of a collector started with
# `--listen 127.0.0.1:0` once its log (LOG, its stderr) names it
# (`tagwatch: listening on URL`); without it within 60 s, or once PID has
# exited, it prints the log to stderr and returns 1. The caller's log must
# exist before the collector starts (`: > LOG`): the first read may come
# before the background job's redirection made it (seen at load 9–16).
collector_url() {
  local log=$1 pid=${2:-} url
  for _ in $(seq 600); do
    url=$(sed -n 's/^tagwatch: listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$url" ] && { echo "$url"; return 0; }
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the collector did not start: $(cat "$log")" >&2
  return 1
}

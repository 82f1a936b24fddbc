-- wrk script for tools/bench-load.sh: POST /r with a realistic report batch,
-- a new page view per request (so that the collector's dedupe never turns a
-- write into an update), and a count of the answers by status.
--
--   wrk -t2 -c32 -d10s --latency -s tools/wrk-report.lua http://HOST:PORT \
--       -- BATCH_FILE SITE_KEY ORIGIN
--
-- BATCH_FILE: a JSON report batch (tools/bench-load.sh copies the golden batch
-- as the monitor sends it, tests/fixtures/golden/report-batch.sent.json) whose page views are
-- all "0123456789abcdef" and whose site key is "tw_golden0000000000000000";
-- both are replaced here. The page view is 16 hex digits: 6 of a run nonce,
-- 2 of the wrk thread, 8 of a per-thread counter (ascending: each thread's
-- rows land at one place of the store's page-view indexes). With a fourth
-- argument "random" (bench-load.sh's PAGE_VIEWS=random): 2 of the wrk thread
-- and 14 random, as the monitor draws them (every batch lands at a random
-- leaf of those indexes; a collision in 2^56 is not expected in a run).
--
-- done() prints one machine-readable line for the shell:
--   wrk-report: requests=N status_204=N other=N errors=N duration_us=N rps=X p50_us=N p99_us=N max_us=N
-- (requests and status_204 are answers that arrived before wrk stopped;
-- errors are wrk's connect/read/write/timeout errors and non-2xx/3xx answers.)

local PAGE_VIEW = "0123456789abcdef"
local SITE = "tw_golden0000000000000000"

-- Main thread: give every wrk thread its number and the run nonce.
local threads = {}
local next_id = 0
local run_nonce = os.time() % 0x1000000

function setup(thread)
  thread:set("thread_id", next_id)
  thread:set("nonce", run_nonce)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Worker threads (one Lua state each); thread_id and nonce are globals set
-- by setup() before init() runs.
local parts      -- the batch split at its page views
local counter = 0
local prefix
local random_views -- page views drawn at random (4th argument "random")
ok = 0           -- globals, read by done() through thread:get
other = 0

local function split(s, sep)
  local out, from = {}, 1
  while true do
    local i, j = string.find(s, sep, from, true)
    if not i then out[#out + 1] = string.sub(s, from); return out end
    out[#out + 1] = string.sub(s, from, i - 1)
    from = j + 1
  end
end

function init(args)
  local file, site, origin = args[1], args[2], args[3]
  random_views = args[4] == "random"
  if not (file and site and origin) then
    error("usage: wrk ... -s tools/wrk-report.lua URL -- BATCH_FILE SITE_KEY ORIGIN")
  end
  local f = assert(io.open(file, "rb"))
  local batch = f:read("*a")
  f:close()
  batch = table.concat(split(batch, SITE), site)
  parts = split(batch, PAGE_VIEW)
  if #parts < 2 then error(file .. ": no page view " .. PAGE_VIEW .. " to replace") end
  prefix = string.format("%06x%02x", nonce, thread_id % 256)
  math.randomseed(nonce * 256 + thread_id)
  wrk.method = "POST"
  wrk.path = "/r"
  wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
  wrk.headers["Origin"] = origin
end

function request()
  counter = counter + 1
  local view
  if random_views then
    view = string.format("%02x%07x%07x", thread_id % 256,
      math.random(0, 0xfffffff), math.random(0, 0xfffffff))
  else
    view = prefix .. string.format("%08x", counter)
  end
  local body = table.concat(parts, view)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 204 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
  end
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format(
    "wrk-report: requests=%d status_204=%d other=%d errors=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, ok_total, other_total, errors, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max))
end

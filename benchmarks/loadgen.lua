-- wrk script for benchmarks/loadgen.py: one request shape, keep-alive, a JSON summary at the end.
--
-- Configured through the environment (read when wrk loads the script, before it
-- decides whether requests are static, so a fixed request is built only once):
--   LOADGEN_METHOD     GET or POST
--   LOADGEN_PATH       the path; every "{r}" is replaced per request by a random
--                      integer in [LOADGEN_LO, LOADGEN_HI] (uniform)
--   LOADGEN_BODY_FILE  file holding the body (JSON), or empty for none; several bodies may be
--                      given one per line (JSON bodies hold no raw newline): the requests of
--                      each thread then take them in turn
--   LOADGEN_TOKEN      bearer token, or empty for none

local method = os.getenv("LOADGEN_METHOD") or "GET"
local path = os.getenv("LOADGEN_PATH") or "/"
local body_file = os.getenv("LOADGEN_BODY_FILE") or ""
local token = os.getenv("LOADGEN_TOKEN") or ""
local lo = tonumber(os.getenv("LOADGEN_LO") or "0")
local hi = tonumber(os.getenv("LOADGEN_HI") or "0")

wrk.method = method
wrk.path = path
wrk.headers["Connection"] = "keep-alive"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local bodies = {}
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  for line in f:lines() do
    if line ~= "" then
      table.insert(bodies, line)
    end
  end
  f:close()
  wrk.body = bodies[1]
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

local random_path = string.find(path, "{r}", 1, true) ~= nil
local turn = 0

if random_path or #bodies > 1 then
  -- Defined only when requests differ: wrk then builds each request anew.
  function request()
    local p = path
    if random_path then
      p = string.gsub(path, "{r}", tostring(math.random(lo, hi)))
    end
    local body = nil
    if #bodies > 0 then
      turn = turn % #bodies + 1
      body = bodies[turn]
    end
    return wrk.format(nil, p, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOADGEN {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
  ))
end

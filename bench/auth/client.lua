-- wrk script for bench/auth/run.sh. Configured by the environment:
--   KEY     the bearer key sent with every request (a valid key), or
--   KEY_ID  flood mode: every request presents `aurum_<KEY_ID>_<64 random hex>`, a known key id
--           with a wrong secret that changes on each request;
--   BODY    a file holding a JSON body: POST it (without BODY: GET).
-- Each thread counts responses by status and by wall-clock second. A thread prints
-- `SEC <unix second> <responses>` when its clock moves into the next second (the last, partial
-- second of a run is never printed); done() prints `RESULT` and `STATUS` lines.

local key, key_id, body_file = os.getenv("KEY"), os.getenv("KEY_ID"), os.getenv("BODY")
local method, body = "GET", nil
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "r")); body = f:read("*a"); f:close()
  method = "POST"
end
local headers = { ["Content-Type"] = "application/json" }
if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
local fixed = nil

n2xx, n401, n429, nother = 0, 0, 0, 0
local cur_sec, in_sec = nil, 0

init = function(args)
  math.randomseed(os.time() * 1000 + (id or 0))
  if not (key_id and key_id ~= "") then fixed = wrk.format(method, nil, headers, body) end
end

request = function()
  if fixed then return fixed end
  local parts = {}
  for i = 1, 8 do parts[i] = string.format("%08x", math.random(0, 0x7fffffff)) end
  headers["Authorization"] = "Bearer aurum_" .. key_id .. "_" .. table.concat(parts)
  return wrk.format(method, nil, headers, body)
end

response = function(status, _, _)
  if status >= 200 and status < 300 then n2xx = n2xx + 1
  elseif status == 401 then n401 = n401 + 1
  elseif status == 429 then n429 = n429 + 1
  else nother = nother + 1 end
  local sec = os.time()
  if sec ~= cur_sec then
    if cur_sec then io.write(string.format("SEC %d %d\n", cur_sec, in_sec)) end
    cur_sec, in_sec = sec, 0
  end
  in_sec = in_sec + 1
end

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

done = function(summary, latency, _)
  local s = { n2xx = 0, n401 = 0, n429 = 0, nother = 0 }
  for _, t in ipairs(threads) do
    for k in pairs(s) do s[k] = s[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %.3f %.3f %d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    latency.max / 1000, e.connect + e.read + e.write + e.timeout))
  io.write(string.format("STATUS %d %d %d %d\n", s.n2xx, s.n401, s.n429, s.nother))
end

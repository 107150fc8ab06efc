-- A batch whose first answer is slow (issue 16 item 5): how long the other
-- items take, against the same batch without the slow item.
--
--   lua5.4 bench/slow_first.lua [items=1000] [slow=5] [concurrency=8] [rounds=3] [scheme=http|https]
--
-- Each round runs a batch of `items` Cal.com updates against the stand-in's
-- /static location twice on a fresh client (default options: http2 = true):
-- once as it is (the batch's time), once with the first request to reach
-- the stand-in held `slow` seconds (a delay fault); there it takes the time
-- at which all the other items were done. Prints both per round, their
-- medians, the ratio and PASS when the others took at most 1.1 times the
-- plain batch's time.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local H = require "helpers"
local S = H.stand_in

local opts = B.options(arg, { items = 1000, slow = 5, concurrency = 8, rounds = 3, scheme = "http" })

-- A fresh client on the chosen scheme, at /static (retries as toolzz's
-- default: a rare HTTP/2 stream error must not end the run).
local function new_client()
  local base = opts.scheme == "https" and H.env.tls_url or H.env.http_url
  return H.client { base_url = base .. "/static", ca_file = H.env.ca_file, timeout = opts.slow + 30, retries = 2 }
end

-- Run one batch; returns every item's finish time (seconds from the start, sorted).
local function run_batch(with_slow)
  S.reset()
  if with_slow then S.faults { { delay = opts.slow } } end
  local client = new_client()
  local list = {}
  for i = 1, opts.items do list[i] = { "calcom", B.UUID, B.calcom_body() } end
  local started, times = B.now(), {}
  local results = assert(client.batch(list, {
    concurrency = opts.concurrency,
    on_progress = function() times[#times + 1] = B.now() - started end,
  }))
  client:close()
  for i, r in ipairs(results) do
    if r.err then error(("item %d failed: %s"):format(i, tostring(r.err))) end
  end
  local answered = S.stats().requests
  if answered < opts.items then error(("the stand-in saw %d requests, not %d"):format(answered, opts.items)) end
  table.sort(times)
  return times
end

local unpack_list = table.unpack or unpack -- luacheck: ignore 113

-- The median of a list of numbers.
local function median(list)
  local sorted = { unpack_list(list) }
  table.sort(sorted)
  local n = #sorted
  return n % 2 == 1 and sorted[(n + 1) / 2] or (sorted[n / 2] + sorted[n / 2 + 1]) / 2
end

print(("%d items, concurrency %d, %s://, %s, first answer held %g s")
  :format(opts.items, opts.concurrency, opts.scheme, _VERSION .. (rawget(_G, "jit") and " (LuaJIT)" or ""), opts.slow))
print("round  batch alone (s)  the others, with the slow item (s)  slow item (s)")
local plain, others = {}, {}
for round = 1, opts.rounds do
  local alone = run_batch(false)
  local slowed = run_batch(true)
  plain[round] = alone[#alone]
  others[round] = slowed[#slowed - 1] -- all but the last to finish: the slow one
  print(("%5d  %15.3f  %34.3f  %13.3f"):format(round, plain[round], others[round], slowed[#slowed]))
end
local ratio = median(others) / median(plain)
print(("median: batch alone %.3f s, the other %d items %.3f s: %.2fx  %s (target: at most 1.1x)")
  :format(median(plain), opts.items - 1, median(others), ratio, ratio <= 1.1 and "PASS" or "MISS"))
B.result("slow_first", opts.scheme, opts.items, opts.concurrency, median(plain), median(others), ratio)

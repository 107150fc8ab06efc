-- Memory over many calls: one client makes `count` sequential updates against
-- the stand-in's /static (Cal.com and Google Calendar alternately) and the
-- process's RSS is read at the start (client made, no call yet), after the
-- first 1,000 calls (connections, buffers and caches warm) and at the end.
--
--   lua5.4 bench/memory.lua [count=100000] [seconds=90]
--
-- Stops after `count` calls or `seconds`. Prints
--   RESULT memory <calls> <seconds> <rss start> <rss after 1,000> <rss end> <lua heap after 1,000> <lua heap end>
-- sizes in KiB; the Lua heap is read after a full collection.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"

local opts = B.options(arg, { count = 100000, seconds = 90 })
local WARM_CALLS = 1000
local now = B.now

local client = assert(toolzz.new { token = B.token, base_url = B.http_url .. "/static" })
local calcom, gcal = client.calcom.update, client.gcal.update
local calcom_fields, gcal_fields, id = B.calcom_body(), B.gcal_body(), B.UUID

local function heap_kib()
  collectgarbage()
  return collectgarbage("count")
end

local rss_start = B.rss_kib()
local rss_warm, heap_warm
local calls, start = 0, now()
repeat
  local res, err
  if calls % 2 == 0 then
    res, err = calcom(id, calcom_fields)
  else
    res, err = gcal(id, gcal_fields)
  end
  if not res then error(tostring(err)) end
  calls = calls + 1
  if calls == WARM_CALLS then
    rss_warm, heap_warm = B.rss_kib(), heap_kib()
  end
until calls >= opts.count or now() - start >= opts.seconds
local elapsed = now() - start

local rss_end, heap_end = B.rss_kib(), heap_kib()
B.result("memory", calls, elapsed, rss_start, rss_warm or rss_end, rss_end, heap_warm or heap_end, heap_end)
client:close()

-- Run by spec/31-bounds_spec.lua in a process of its own: makes one plain
-- call, then calls that the stand-in answers with the faults the spec
-- queued, and prints how much the process grew, from /proc/self/status:
--
--   lua spec/bounds_child.lua single|batch N
--
-- prints "peak=<KiB> held=<KiB> kinds=<kind,...>": peak is the high-water
-- mark of the resident set during the calls above what it was before them,
-- held how much the Lua heap grew while the results are kept, after a full
-- collection (the resident set need not shrink when memory is freed).
package.path = "spec/?.lua;" .. package.path
local H = require "helpers"

local mode, n = arg[1], tonumber(arg[2] or "1")

local function status_kib(field)
  local f = assert(io.open("/proc/self/status", "r"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+) kB"))
end

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

local client = H.client { timeout = 30 }
-- warm up (the spec's first fault is a plain answer): libcurl, the
-- connection, the modules' own tables
assert(client.gcal.update(H.UUID, H.gcal_body()))

full_gc()
local before, heap_before = status_kib("VmRSS"), collectgarbage("count")
local reset = io.open("/proc/self/clear_refs", "w") -- 5: reset the high-water mark
assert(reset, "cannot reset VmHWM")
reset:write("5")
reset:close()

local kept, kinds = {}, {}
if mode == "single" then
  for i = 1, n do
    local res, err = client.gcal.update(H.UUID, H.gcal_body())
    kept[i] = res or err
    kinds[i] = err and err.kind or "ok"
  end
else
  local requests = {}
  for i = 1, n do requests[i] = { "gcal", H.UUID, H.gcal_body() } end
  local results = assert(client.batch(requests, { concurrency = n }))
  for i = 1, n do
    kept[i] = results[i]
    kinds[i] = results[i].err and results[i].err.kind or "ok"
  end
end
local peak = status_kib("VmHWM") - before
full_gc()
local held = math.floor(collectgarbage("count") - heap_before)
assert(#kept == n)
io.write(("peak=%d held=%d kinds=%s\n"):format(peak, held, table.concat(kinds, ",")))
client:close()

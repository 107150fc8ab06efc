-- Peak memory of one big batch of gets against the stand-in's /static, with
-- its results handed to on_result and released (keep_results = false), or
-- kept (keep=1, the default behaviour), for issue 16 item 7.
--
--   lua5.4 bench/stream.lua [count=100000] [concurrency=8] [keep=0]
--
-- Prints
--   RESULT stream <items> <seconds> <keep> <rss start> <rss with the list> <peak rss> <lua heap peak>
-- sizes in KiB. rss with the list: after the caller's list of items is built
-- (what the caller holds, not the library); peak rss: VmHWM at the end; lua
-- heap peak: the most collectgarbage("count") showed in on_result (garbage
-- included). peak rss - rss with the list is what the batch itself cost.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"

local opts = B.options(arg, { count = 100000, concurrency = 8, keep = 0 })
local keep = opts.keep == 1

local client = assert(toolzz.new { token = B.token, base_url = B.http_url .. "/static" })
local rss_start = B.rss_kib()
local list = {}
for i = 1, opts.count do list[i] = { "gcal.get", B.UUID } end
collectgarbage()
local rss_list = B.rss_kib()

local ok_count, heap_peak = 0, 0
local start = B.now()
local results = assert(client.batch(list, {
  concurrency = opts.concurrency, keep_results = keep,
  on_result = function(_, result)
    if not result.res then error("an item failed: " .. tostring(result.err)) end
    ok_count = ok_count + 1
    if ok_count % 1000 == 0 then
      local kib = collectgarbage("count")
      if kib > heap_peak then heap_peak = kib end
    end
  end,
}))
local elapsed = B.now() - start
assert(ok_count == opts.count, "on_result saw " .. ok_count .. " of " .. opts.count .. " items")
if not keep then assert(results.ok == opts.count, "the counts say " .. tostring(results.ok) .. " ok") end
B.result("stream", opts.count, elapsed, keep and 1 or 0, rss_start, rss_list, B.rss_kib(true), heap_peak)
client:close()

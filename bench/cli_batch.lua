-- Peak memory of the toolzz command running one big batch: `toolzz batch
-- FILE` of `count` gcal.get lines against the stand-in's /static, run by
-- toolzz.cli.main in this process (the command as bin/toolzz runs it, from
-- the checkout) with its result lines going to /dev/null. Issue 16 item 7:
-- 100k lines peaked at 404 MB before the command released printed results.
--
--   lua5.4 bench/cli_batch.lua [count=100000] [concurrency=8]
--
-- Prints
--   RESULT cli_batch <lines> <seconds> <exit status> <rss start> <peak rss>
-- sizes in KiB (peak: VmHWM at the end, the file's text and lines included).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local cli = require "toolzz.cli"

local opts = B.options(arg, { count = 100000, concurrency = 8 })

local file = os.tmpname()
local f = assert(io.open(file, "wb"))
local line = '{"op":"gcal.get","id":"' .. B.UUID .. '"}\n'
for _ = 1, opts.count do f:write(line) end
f:close()

local sys = cli.system()
sys.stdout = assert(io.open("/dev/null", "wb"))
sys.isatty = function() return false end -- no progress bar, no shell per test
sys.getenv = function(name)
  if name == "TOOLZZ_TOKEN" then return B.token end
  return nil
end
collectgarbage()
local rss_start = B.rss_kib()
local start = B.now()
local status = cli.main({ "--base-url", B.http_url .. "/static", "batch", file,
                          "--concurrency", tostring(opts.concurrency) }, sys)
local elapsed = B.now() - start
os.remove(file)
B.result("cli_batch", opts.count, elapsed, status, rss_start, B.rss_kib(true))

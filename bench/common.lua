-- Shared set-up for the benchmark scripts: module paths for the running Lua
-- (through spec/helpers.lua), the stand-in's address and token, the valid
-- example bodies, a monotonic clock, and the result lines bench/run collects.
--
--   package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
--   local B = require "common"
local script_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench"
local root = script_dir:match("^(.*)/bench$") or "."
package.path = root .. "/spec/?.lua;" .. package.path

local H = require "helpers" -- also sets package.path/cpath for lua/ and build/<flavour>/

local B = {
  root = root,
  flavour = H.flavour,
  token = H.env.token,
  http_url = H.env.http_url,
  cf_http_url = H.env.cf_http_url,
  -- the id of the records /static answers with: a patch refuses a GET that
  -- answers another record than the one asked for
  UUID = "5b8e2a1c-3d4f-4e6a-9b7c-0d1e2f3a4b5c",
  calcom_body = H.calcom_body,
  gcal_body = H.gcal_body,
}

-- Seconds on a monotonic clock (the C core's clock_gettime).
B.now = require("toolzz.core").now

-- API paths under the stand-in, with a prefix such as "/static" or "/delay/10/static".
function B.calcom_url(prefix)
  return B.http_url .. prefix .. "/api/v1/calcom/integration/" .. B.UUID
end

-- The same record's URL on the converflow host (where calcom.get reads it).
function B.calcom_get_url(prefix)
  return B.cf_http_url .. prefix .. "/api/v1/calcom/integration/" .. B.UUID
end

-- Command-line arguments as named options: key=value ...
function B.options(args, defaults)
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then error("bad argument '" .. a .. "' (want key=value)") end
    opts[k] = tonumber(v) or v
  end
  return opts
end

-- One result line for bench/run: RESULT key value [value ...]
function B.result(key, ...)
  local parts = { "RESULT", key }
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "number" then
      v = v == math.floor(v) and string.format("%d", v) or string.format("%.6f", v)
    end
    parts[#parts + 1] = tostring(v)
  end
  io.write(table.concat(parts, " "), "\n")
  io.stdout:flush()
end

-- Resident set size of this process in KiB (Linux), or nil; peak = true:
-- its highest so far (VmHWM).
function B.rss_kib(peak)
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match((peak and "VmHWM" or "VmRSS") .. ":%s*(%d+)"))
end

return B

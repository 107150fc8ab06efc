-- What the OpenResty specs share: the gateway's control script, its
-- address, and calls made through it (LuaSocket; any Lua).
local H = require "helpers"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"

local _M = {}

local CTL = H.root .. "/spec/openresty/ctl"

-- Run a shell command: its output and exit status (also on Lua 5.1).
function _M.sh(command)
  local pipe = assert(io.popen(command .. " 2>&1; echo \"exit=$?\""))
  local out = pipe:read("*a")
  pipe:close()
  local text, code = out:match("^(.-)exit=(%d+)%s*$")
  return text or out, tonumber(code)
end

function _M.shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function _M.ctl(verb)
  return _M.sh(_M.shell_quote(CTL) .. " " .. verb)
end

-- The gateway's address and error log, from `ctl env`.
function _M.gateway_env()
  local out = _M.ctl("env")
  local env = {}
  for name, value in out:gmatch("([%w_]+)=(%S+)") do env[name] = value end
  return env.TOOLZZ_GATEWAY_URL, env.TOOLZZ_GATEWAY_ERROR_LOG
end

-- (Re)start the gateway for a block of specs; returns its address (a spec
-- fails when it cannot start). For lazy_setup; lazy_teardown(R.stop_gateway).
function _M.start_gateway()
  local out, code = _M.ctl("restart")
  assert(code == 0, "cannot start the gateway: " .. out)
  local gateway = _M.gateway_env()
  assert(gateway, "ctl env gave no address")
  return gateway
end

function _M.stop_gateway() _M.ctl("stop") end

-- Lua 5.3+: whole numbers from cjson as integers.
local function integers(v)
  if type(v) == "number" and math.tointeger then return math.tointeger(v) or v end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  end
  return v
end
_M.integers = integers

-- POST a JSON request to the gateway: the decoded answer and its text.
function _M.post(gateway, path, request)
  local body = cjson.encode(request)
  local chunks = {}
  local saved = http.TIMEOUT
  http.TIMEOUT = 60
  local ok, code = http.request {
    url = gateway .. path, method = "POST",
    headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#body) },
    source = ltn12.source.string(body), sink = ltn12.sink.table(chunks),
  }
  http.TIMEOUT = saved
  assert(ok, "gateway POST " .. path .. " failed: " .. tostring(code))
  local text = table.concat(chunks)
  assert(code == 200, "gateway answered " .. tostring(code) .. ": " .. text)
  return integers(cjson.decode(text)), text
end

return _M

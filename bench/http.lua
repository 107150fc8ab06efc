-- Requests per second of one client against the stand-in, sequential PUTs of
-- the Cal.com example body (or batches of them), each answer decoded and
-- checked. One measurement per process; bench/run runs them in rounds.
--
--   lua5.4 bench/http.lua mode=toolzz|batch|luasocket|luacurl|curlcmd [op=update|get|patch]
--          [prefix=/static] [count=20000] [seconds=1] [warmup=100] [concurrency=8] [size=1000]
--          [label=name]
--
-- op (toolzz and batch modes): the Cal.com call made, `update` (a PUT of the
-- example body), `get` (a GET of the record from the converflow host) or
-- `patch` (a GET and a PUT of one changed field); the prefix goes in front of
-- both hosts' paths.
--
-- Stops after `count` timed calls or `seconds`, whichever comes first, and
-- prints: RESULT <label> <calls> <seconds> <CPU seconds of this process> <peak RSS KiB>
-- (os.clock: the curl processes of mode=curlcmd are not counted).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"

local opts = B.options(arg, {
  mode = "toolzz", op = "update", prefix = "/static", count = 20000, seconds = 1, warmup = 100,
  concurrency = 8, size = 1000,
})
local now = B.now
local url = B.calcom_url(opts.prefix)
local fields = B.calcom_body()

-- Each mode returns call(), which makes one call and raises on any failure,
-- or for batches call_many(n), which makes n calls at once.
local modes = {}

-- The toolzz call of opts.op: its name and its second argument.
local OPS = {
  update = { "calcom.update", fields },
  get = { "calcom.get" },
  patch = { "calcom.patch", { prompt = "Book 30-minute meetings only." } },
}
local op = OPS[opts.op] or error("unknown op " .. tostring(opts.op))

local function toolzz_client()
  local toolzz = require "toolzz"
  return assert(toolzz.new {
    token = B.token, base_url = B.http_url .. opts.prefix, converflow_url = B.cf_http_url .. opts.prefix,
  })
end

-- toolzz: validation + encode + HTTP + decode per call.
function modes.toolzz()
  local client = toolzz_client()
  local group, verb = op[1]:match("^(%w+)%.(%w+)$")
  local call, id, arg2 = client[group][verb], B.UUID, op[2]
  return function()
    local res, err = call(id, arg2)
    if not res then error(tostring(err)) end
    if type(res.id) ~= "string" then error("unexpected answer") end
  end
end

-- toolzz batches of opts.size items at opts.concurrency.
function modes.batch()
  local client = toolzz_client()
  local batch_opts = { concurrency = opts.concurrency }
  local lists = {}
  local function list_of(n)
    if not lists[n] then
      local list = {}
      for i = 1, n do list[i] = { op[1], B.UUID, op[2] } end
      lists[n] = list
    end
    return lists[n]
  end
  return nil, function(n)
    local results, err = client.batch(list_of(n), batch_opts)
    if not results then error(tostring(err)) end
    for i = 1, n do
      local r = results[i]
      if not (r and r.res and type(r.res.id) == "string") then error(tostring(r and r.err or "missing result")) end
    end
  end
end

local function peer_headers()
  return {
    "Authorization: Bearer " .. B.token,
    "Content-Type: application/json",
    "Accept: application/json",
  }
end

-- LuaSocket socket.http + lua-cjson: what most Lua code does (no keep-alive).
function modes.luasocket()
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  http.TIMEOUT = 10
  local cjson = require "cjson"
  local headers = {
    authorization = "Bearer " .. B.token,
    ["content-type"] = "application/json",
    accept = "application/json",
  }
  return function()
    local json = cjson.encode(fields)
    headers["content-length"] = tostring(#json)
    local chunks = {}
    local ok, code = http.request {
      url = url, method = "PUT", headers = headers,
      source = ltn12.source.string(json), sink = ltn12.sink.table(chunks),
    }
    if ok ~= 1 or code ~= 200 then error("luasocket: " .. tostring(code)) end
    local res = cjson.decode(table.concat(chunks))
    if type(res.id) ~= "string" then error("unexpected answer") end
  end
end

-- A libcurl binding + lua-cjson, one reused easy handle (keep-alive):
-- Lua-cURLv3 (module cURL) when installed, else Debian's lua-curl 0.3.0
-- (module curl, Lua 5.1/5.2 only).
function modes.luacurl()
  local cjson = require "cjson"
  local have_v3, cURL = pcall(require, "cURL")
  local chunks = {}
  local function sink(s)
    chunks[#chunks + 1] = s
    return #s
  end
  local perform
  if have_v3 then
    local easy = cURL.easy {
      url = url, customrequest = "PUT", httpheader = peer_headers(), writefunction = sink, timeout = 10,
    }
    perform = function(json)
      easy:setopt_postfields(json)
      easy:perform()
      local code = easy:getinfo_response_code()
      if code ~= 200 then error("Lua-cURLv3: HTTP " .. tostring(code)) end
    end
  else
    local curl = require "curl"
    local easy = curl.easy_init()
    easy:setopt(curl.OPT_URL, url)
    easy:setopt(curl.OPT_CUSTOMREQUEST, "PUT")
    easy:setopt(curl.OPT_HTTPHEADER, peer_headers())
    easy:setopt(curl.OPT_WRITEFUNCTION, sink)
    easy:setopt(curl.OPT_TIMEOUT, 10)
    perform = function(json)
      easy:setopt(curl.OPT_POSTFIELDS, json)
      local code, message = easy:perform()
      if code ~= 0 then error("lua-curl: " .. tostring(message)) end
    end
  end
  return function()
    for i = #chunks, 1, -1 do chunks[i] = nil end
    perform(cjson.encode(fields))
    local res = cjson.decode(table.concat(chunks))
    if type(res.id) ~= "string" then error("unexpected answer") end
  end
end

-- The curl command per call through io.popen, lua-cjson for the JSON.
function modes.curlcmd()
  local cjson = require "cjson"
  local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local head = { "curl -sS --fail --max-time 10 -X PUT" }
  for _, h in ipairs(peer_headers()) do head[#head + 1] = "-H " .. quote(h) end
  head = table.concat(head, " ")
  return function()
    local p = assert(io.popen(head .. " --data-binary " .. quote(cjson.encode(fields)) .. " " .. quote(url)))
    local out = p:read("*a")
    p:close()
    local res = cjson.decode(out)
    if type(res.id) ~= "string" then error("unexpected answer") end
  end
end

local make = modes[opts.mode]
if not make then error("unknown mode " .. tostring(opts.mode)) end
local call, call_many = make()

local calls, start, elapsed, cpu_start = 0
if call then
  for _ = 1, opts.warmup do call() end
  start, cpu_start = now(), os.clock()
  repeat
    call()
    calls = calls + 1
    elapsed = now() - start
  until calls >= opts.count or elapsed >= opts.seconds
else
  if opts.warmup > 0 then call_many(math.min(opts.size, math.max(opts.warmup, opts.concurrency))) end
  start, cpu_start = now(), os.clock()
  repeat
    local n = math.min(opts.size, opts.count - calls)
    call_many(n)
    calls = calls + n
    elapsed = now() - start
  until calls >= opts.count or elapsed >= opts.seconds
end
B.result(opts.label or opts.mode, calls, elapsed, os.clock() - cpu_start, B.rss_kib(true) or 0)

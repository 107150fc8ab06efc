-- Talks to the stand-in's /_control/ endpoints for the specs, independently of
-- the module under test (LuaSocket + lua-cjson; Lua 5.1, 5.4 and LuaJIT).
--
--   local stand_in = require "client"   -- with spec/server/?.lua on package.path
--   stand_in.reset()
--   stand_in.faults { { status = 503, headers = { ["Retry-After"] = "1" } } }
--   local last, stats = stand_in.last(), stand_in.stats()

local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local os_getenv, io_popen = os.getenv, io.popen
local error, type, tostring, next, pairs, ipairs = error, type, tostring, next, pairs, ipairs
local concat = table.concat

local _M = {}

local DEFAULT_PORT_HTTP = "18080"
local DEFAULT_PORT_TLS = "18443"
local DEFAULT_PORT_TLS_BAD = "18444"
local DEFAULT_PORT_CF_HTTP = "18081"
local DEFAULT_PORT_CF_TLS = "18445"
local DEFAULT_TOKEN = "test-token-0123456789abcdef"
local CONTROL_TIMEOUT = 10 -- seconds

-- Repository root, from where this file lives (<repo>/spec/server/client.lua).
local function repo_dir()
  local source = debug.getinfo(1, "S").source
  local file = source:sub(1, 1) == "@" and source:sub(2) or "spec/server/client.lua"
  local dir = file:match("^(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local cwd = os_getenv("PWD")
    if not cwd then
      local pipe = io_popen("pwd")
      if pipe then cwd = pipe:read("*l"); pipe:close() end
    end
    dir = (cwd or ".") .. "/" .. dir
  end
  dir = dir:gsub("/%./", "/"):gsub("/%.$", "")
  local root = dir:match("^(.*)/spec/server$")
  return root or (dir .. "/../..")
end

local function nonempty_env(name)
  local value = os_getenv(name)
  if value == "" then return nil end
  return value
end

-- Where the stand-in is: TOOLZZ_TEST_* environment variables, else the
-- defaults that spec/server/ctl uses.
function _M.env()
  local server_dir = nonempty_env("TOOLZZ_SERVER_DIR") or (repo_dir() .. "/build/stand-in")
  return {
    http_url = nonempty_env("TOOLZZ_TEST_HTTP_URL")
      or ("http://127.0.0.1:" .. (nonempty_env("TOOLZZ_PORT_HTTP") or DEFAULT_PORT_HTTP)),
    tls_url = nonempty_env("TOOLZZ_TEST_TLS_URL")
      or ("https://localhost:" .. (nonempty_env("TOOLZZ_PORT_TLS") or DEFAULT_PORT_TLS)),
    tls_bad_url = nonempty_env("TOOLZZ_TEST_TLS_BAD_URL")
      or ("https://localhost:" .. (nonempty_env("TOOLZZ_PORT_TLS_BAD") or DEFAULT_PORT_TLS_BAD)),
    cf_http_url = nonempty_env("TOOLZZ_TEST_CONVERFLOW_HTTP_URL")
      or ("http://127.0.0.1:" .. (nonempty_env("TOOLZZ_PORT_CF_HTTP") or DEFAULT_PORT_CF_HTTP)),
    cf_tls_url = nonempty_env("TOOLZZ_TEST_CONVERFLOW_TLS_URL")
      or ("https://localhost:" .. (nonempty_env("TOOLZZ_PORT_CF_TLS") or DEFAULT_PORT_CF_TLS)),
    ca_file = nonempty_env("TOOLZZ_TEST_CA_FILE") or (server_dir .. "/certs/ca.pem"),
    token = nonempty_env("TOOLZZ_TEST_TOKEN") or DEFAULT_TOKEN,
  }
end

local tointeger = math.tointeger -- Lua 5.3+: 2.0 from cjson becomes 2

local function integers(value)
  if type(value) == "number" and tointeger then
    return tointeger(value) or value
  elseif type(value) == "table" then
    for key, item in pairs(value) do value[key] = integers(item) end
  end
  return value
end

-- One control call; returns the decoded JSON answer (nil for JSON null).
-- Raises on transport errors and non-2xx answers: a broken stand-in must fail the spec.
local function control(method, path, payload)
  local url = _M.env().http_url .. path
  local body = payload
  local chunks = {}
  local saved_timeout = http.TIMEOUT
  http.TIMEOUT = CONTROL_TIMEOUT
  local ok, status = http.request {
    url = url,
    method = method,
    headers = {
      ["content-type"] = body and "application/json" or nil,
      ["content-length"] = tostring(body and #body or 0),
    },
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  http.TIMEOUT = saved_timeout
  if not ok then
    error("stand-in " .. method .. " " .. url .. " failed: " .. tostring(status)
      .. " (is it running? spec/server/ctl start)", 3)
  end
  local text = concat(chunks)
  if type(status) ~= "number" or status < 200 or status > 299 then
    error("stand-in " .. method .. " " .. url .. " answered " .. tostring(status) .. ": " .. text, 3)
  end
  if text == "ok" then return text end
  local decoded = cjson.decode(text)
  if decoded == cjson.null then return nil end
  return integers(decoded)
end

-- Encode a list of fault objects as a JSON array ([] when empty).
local function encode_list(list)
  if type(list) ~= "table" then error("faults: expected a list of fault tables", 3) end
  if next(list) == nil then return "[]" end
  if list[1] == nil then list = { list } end -- a single fault table
  local parts = {}
  for i = 1, #list do parts[i] = cjson.encode(list[i]) end
  return "[" .. concat(parts, ",") .. "]"
end

-- true when the stand-in answers.
function _M.ping()
  local ok, result = pcall(control, "GET", "/_control/ping")
  return ok and result == "ok"
end

-- The record of each kind that reset() leaves under SEED_ID, the id most
-- specs update (spec/helpers.lua's H.UUID): the stand-in answers 404 to an
-- update of an id it does not hold, as the API does. Its unit is one no spec
-- lists.
_M.SEED_ID = "6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab"
local SEED_UNIT = "5eed5eed-0000-4000-8000-000000000000"
local SEEDS = {
  calcom = { title = "Seed", unitId = SEED_UNIT, calcomUsername = "seed", timezone = "UTC",
             prompt = "Seed.", checkAvailabilityEnabled = true, createBookingEnabled = true,
             apiKey = "cal_seed_0123456789abcdef" },
  ["function"] = { name = "Seed", description = "Seed.", type = "google-calendar",
                   userId = SEED_UNIT, unityId = SEED_UNIT, googleCalendar = {
                     googleId = "1", calendarId = "primary", timezone = "UTC",
                     googleToken = "ya29.seed-token-0123456789",
                     googleUser = { name = "Seed", given_name = "Seed", family_name = "Seed",
                                    email = "seed@example.com" } } },
}

-- Forget the last request, counters, pending faults, config and records;
-- then store the seed records (unless opts.empty).
function _M.reset(opts)
  control("POST", "/_control/reset")
  if type(opts) == "table" and opts.empty then return end
  for _, kind in ipairs { "calcom", "function" } do
    control("POST", "/_control/records", cjson.encode { kind = kind, fields = SEEDS[kind], id = _M.SEED_ID })
  end
end

-- Queue faults (FIFO); each later API request consumes one. Returns the pending count.
function _M.faults(list)
  return control("POST", "/_control/faults", encode_list(list)).pending
end

-- Number of queued faults not yet consumed.
function _M.pending_faults()
  return control("GET", "/_control/faults").pending
end

-- The last recorded API request: { method, uri, headers, body, http_version, ... } or nil.
function _M.last()
  return control("GET", "/_control/last")
end

-- { requests = N, connections = M } since the last reset.
function _M.stats()
  local all = control("GET", "/_control/stats")
  return { requests = all.requests, connections = all.connections }
end

-- API requests with another method than GET (writes) since the last reset.
function _M.writes()
  return control("GET", "/_control/stats").writes
end

-- Store a record as the API would hold it (for shapes no client call can
-- make, such as a plain JavaScript function): kind "calcom" | "function",
-- fields as a create would send them (id optional). reshape (optional):
-- { drop = { path, ... }, set = { [path] = value } } serves the record off
-- its documented shape (paths dotted, indexes 1-based). Returns its id.
function _M.put_record(kind, fields, id, reshape)
  return control("POST", "/_control/records",
    cjson.encode { kind = kind, fields = fields, id = id, reshape = reshape }).id
end

-- The journal: "METHOD uri" of each API request in the order the stand-in
-- took them, since the last reset (only while config { journal = true }).
function _M.journal()
  return control("GET", "/_control/journal") or {}
end

-- Runtime configuration until the next reset, e.g. { token = "other" }.
function _M.config(settings)
  local fields = {}
  for key, value in pairs(settings) do fields[key] = value end
  control("POST", "/_control/config", cjson.encode(fields))
end

return _M

-- toolzz: manage ToolzzAI agent scheduling integrations from Lua.
--
--   local toolzz = require "toolzz"
--   local client = assert(toolzz.new { token = os.getenv("TOOLZZ_TOKEN") })
--   local res, err = client.calcom.update(integration_id, fields)
--   local res, err = client.gcal.update(function_id, fields)
--
-- Layers, one direction only: this file (public API) -> toolzz.validate
-- (defaults, validation) -> retry policy (toolzz.retry) -> a transport that
-- makes one attempt (the libcurl core, or toolzz.ngx inside nginx).
local core = require "toolzz.core"
local cjson = require "cjson"
local errors = require "toolzz.errors"
local schema = require "toolzz.schema"
local validate = require "toolzz.validate"
local retry = require "toolzz.retry"

local type, next, pairs, ipairs, pcall, tostring, tonumber, setmetatable, getmetatable, rawget =
  type, next, pairs, ipairs, pcall, tostring, tonumber, setmetatable, getmetatable, rawget
local find, match, lower, gsub = string.find, string.match, string.lower, string.gsub
local concat = table.concat
local floor = math.floor
local getenv = os.getenv
local encode = core.encode

local _M = {
  _VERSION = core.version,
  null = cjson.null,
  array_mt = core.array_mt,
  tzdata_version = validate.tzdata_version,
  schema = schema,
}

local DEFAULT_BASE_URL = "https://chat.api.toolzz.com.br"
local DEFAULTS = {
  timeout = 30,
  connect_timeout = 10,
  retries = 2,
  strict = true,
  max_response_bytes = 8 * 1024 * 1024,
  max_body_bytes = 1024 * 1024,
  transport = "auto",
  http2 = true,
}
_M.DEFAULTS = DEFAULTS
local MAX_RETRIES = 10

-- Option name -> Lua type it must have.
local OPTION_TYPES = {
  token = "string", base_url = "string", timeout = "number", connect_timeout = "number",
  retries = "number", defaults = "table", strict = "boolean", max_response_bytes = "number",
  max_body_bytes = "number", ca_file = "string", ca_path = "string", proxy = "string",
  user_agent = "string", on_request = "function", on_response = "function",
  transport = "string", http2 = "boolean",
}

-- Decoding uses a cjson instance of our own, whatever the application does
-- to the shared one.
local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
local decode = decoder.decode

local function log_warning(message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.log then
    ngx.log(ngx.WARN, "toolzz: ", message)
  else
    io.stderr:write("toolzz: ", message, "\n")
  end
end

-- ---- options ------------------------------------------------------------

local function is_loopback(host)
  host = lower(host)
  return host == "localhost" or host == "[::1]" or find(host, "^127%.%d+%.%d+%.%d+$") ~= nil
end

-- base_url -> normalised "scheme://authority/path" without trailing slash.
local function parse_base_url(url)
  if find(url, "[%c%s]") then return nil, "base_url must not contain spaces or control characters" end
  local scheme, authority, path = match(url, "^(%a[%w+.%-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "base_url must look like https://host[:port][/path]" end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then return nil, "base_url must use http or https" end
  if find(path, "[?#]") then return nil, "base_url must not have a query or a fragment" end
  if find(authority, "@", 1, true) then return nil, "base_url must not carry user info" end
  local host, port = match(authority, "^(%[[%x:%.]+%])(.*)$")
  if not host then host, port = match(authority, "^([%w%.%-]+)(.*)$") end
  if not host then return nil, "base_url has no valid host" end
  if port ~= "" then
    local p = tonumber(match(port, "^:(%d+)$"))
    if not p or p < 1 or p > 65535 then return nil, "base_url has an invalid port" end
  end
  if scheme == "http" and not is_loopback(host) then
    return nil, "plain http:// is allowed only to a loopback host (localhost, 127.0.0.0/8, [::1]); use https://"
  end
  return scheme .. "://" .. authority .. gsub(path, "/+$", ""), scheme, host
end
_M.parse_base_url = parse_base_url

-- A raw copy; only the array marker survives as a metatable.
local function deep_copy(v, depth)
  if type(v) ~= "table" or depth > 16 then return v end
  local out = {}
  for k, x in next, v do out[k] = deep_copy(x, depth + 1) end
  if getmetatable(v) == core.array_mt then setmetatable(out, core.array_mt) end
  return out
end

-- Check a client's options; returns the settings or nil, config error.
local function configure(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return nil, errors.config("options must be a table, got " .. type(opts)) end
  for name, value in next, opts do
    local want = OPTION_TYPES[name]
    if not want then return nil, errors.config("unknown option '" .. tostring(name) .. "'") end
    if type(value) ~= want then
      return nil, errors.config("option " .. name .. " must be a " .. want .. ", got " .. type(value))
    end
  end
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  for k, v in next, opts do cfg[k] = v end

  local token = opts.token or getenv("TOOLZZ_TOKEN")
  if token == nil or token == "" then
    return nil, errors.config("no token: pass the token option or set TOOLZZ_TOKEN")
  end
  if find(token, "[^\33-\126]") then
    return nil, errors.config("the token must be printable ASCII: no spaces, CR, LF, NUL or other control characters")
  end
  cfg.token = token

  local base_url, scheme_or_err, host = parse_base_url(opts.base_url or getenv("TOOLZZ_BASE_URL") or DEFAULT_BASE_URL)
  if not base_url then return nil, errors.config(scheme_or_err) end
  cfg.base_url, cfg.scheme, cfg.host = base_url, scheme_or_err, host

  for _, name in ipairs { "timeout", "connect_timeout" } do
    local v = cfg[name]
    if not (v > 0 and v < 86400) then return nil, errors.config(name .. " must be a number of seconds above 0") end
  end
  if cfg.retries < 0 or cfg.retries > MAX_RETRIES or floor(cfg.retries) ~= cfg.retries then
    return nil, errors.config("retries must be a whole number from 0 to " .. MAX_RETRIES)
  end
  for _, name in ipairs { "max_response_bytes", "max_body_bytes" } do
    local v = cfg[name]
    if not (v >= 1 and floor(v) == v and v < 2 ^ 40) then
      return nil, errors.config(name .. " must be a whole number of bytes above 0")
    end
  end
  if cfg.ca_file then
    local f = io.open(cfg.ca_file, "rb")
    if not f then return nil, errors.config("ca_file cannot be read: " .. cfg.ca_file) end
    f:close()
  end
  if cfg.user_agent and find(cfg.user_agent, "%c") then
    return nil, errors.config("user_agent must not contain control characters")
  end
  if cfg.transport ~= "auto" and cfg.transport ~= "curl" and cfg.transport ~= "ngx" then
    return nil, errors.config("transport must be \"auto\", \"curl\" or \"ngx\"")
  end
  if cfg.transport == "ngx" and type(rawget(_G, "ngx")) ~= "table" then
    return nil, errors.config("transport \"ngx\" works only inside nginx (lua-nginx-module)")
  end
  cfg.defaults = deep_copy(opts.defaults, 0)
  return cfg
end

local function user_agent(cfg)
  local jit = rawget(_G, "jit")
  local ua = "toolzz-lua/" .. core.version .. " (" .. (jit and jit.version or _VERSION)
    .. "; libcurl/" .. core.curl_version .. ")"
  if cfg.user_agent and cfg.user_agent ~= "" then ua = ua .. " " .. cfg.user_agent end
  return ua
end

-- ---- responses ------------------------------------------------------------

local REASONS = {
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [413] = "Content Too Large", [422] = "Unprocessable Content", [425] = "Too Early",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- The server's own words from a JSON error body, if it said any.
local function server_message(data)
  local m = data.message
  if type(m) == "string" and m ~= "" then return m end
  if type(m) == "table" then
    local parts = {}
    for _, x in ipairs(m) do
      if type(x) == "string" then parts[#parts + 1] = x end
    end
    if #parts > 0 then return concat(parts, "; ") end
  end
  if type(data.error) == "string" and data.error ~= "" then return data.error end
  return nil
end

local function request_id_of(headers)
  return headers and (headers["x-request-id"] or headers["request-id"]) or nil
end

-- Turn one attempt's transport outcome into (result) or (nil, err).
-- Transport outcome: status, body, headers | nil, kind, message, elapsed, headers.
local function interpret(status, body, headers, _, fail_headers)
  if not status then
    return nil, errors.new(body, headers, { request_id = request_id_of(fail_headers) })
  end
  local request_id = request_id_of(headers)
  if status >= 200 and status < 300 then
    if status == 204 then return {} end
    local ok, data = pcall(decode, body)
    if ok and type(data) == "table" then return data end
    local why = ok and "a JSON " .. type(data) .. ", not an object or array" or "not JSON"
    if body == "" then why = "empty" end
    return nil, errors.new("decode", "the " .. status .. " response body is " .. why,
      { body = body, request_id = request_id }) -- cut to errors.BODY_CAP once scrubbed (errors.redact)
  end
  local data
  if body ~= "" then
    local ok, d = pcall(decode, body)
    if ok and type(d) == "table" then data = d end
  end
  local message = data and server_message(data) or ("HTTP " .. status .. (REASONS[status] and (" " .. REASONS[status]) or ""))
  local err = errors.new("http", message, {
    status = status, body = body, data = data, request_id = request_id, -- body: as above
  })
  local retry_after = headers["retry-after"]
  if retry_after then err.retry_after = retry.parse_retry_after(retry_after) end
  return nil, err
end
_M._interpret = interpret

-- ---- transports -------------------------------------------------------------

local ngx_transport -- toolzz.ngx, loaded on first use inside nginx
local KEEP_HEADERS = { "x-request-id", "request-id", "retry-after" }

-- The transport for this call and how to sleep: cosockets where nginx allows
-- them, else the client's libcurl transport.
local function pick_transport(state)
  if state.cfg.transport ~= "curl" and rawget(_G, "ngx") then
    ngx_transport = ngx_transport or require("toolzz.ngx")
    if state.cfg.transport == "ngx" or ngx_transport.usable() then
      state.ngx = state.ngx or ngx_transport.new(state.cfg, state.headers)
      return state.ngx, ngx_transport.sleep
    end
  end
  local t = state.curl
  if not t then
    local cfg = state.cfg
    t = core.transport {
      headers = state.curl_headers, timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
      max_response_bytes = cfg.max_response_bytes, ca_file = cfg.ca_file, ca_path = cfg.ca_path,
      proxy = cfg.proxy, http2 = cfg.http2,
      keep_headers = KEEP_HEADERS, -- the layers above read no others
    }
    state.curl = t
  end
  return t, core.sleep
end

-- ---- calls -------------------------------------------------------------------

local function call_hook(state, name, info, secrets)
  local ok, failure = pcall(state.cfg[name], info)
  if not ok then
    log_warning(name .. " hook failed: " .. errors.scrub(tostring(failure), secrets))
  end
end

-- Before an attempt: tell on_request.
local function announce(state, method, url, attempt, secrets)
  if state.cfg.on_request then
    call_hook(state, "on_request", { method = method, url = url, attempt = attempt }, secrets)
  end
end

-- After an attempt (the transport's outcome follows `secrets`): interpret it,
-- tell on_response, and decide. Returns res, or nil, err, wait where wait is
-- the seconds before the next attempt, or nil when this error is final.
local function conclude(state, method, url, attempt, secrets, status, rbody, headers, elapsed, extra)
  local res, err = interpret(status, rbody, headers, elapsed, extra)
  if err then
    err.attempts = attempt
    errors.redact(err, secrets)
  end
  if state.cfg.on_response then
    local request_id = err and err.request_id
    if status and not err then request_id = request_id_of(headers) end
    call_hook(state, "on_response", {
      method = method, url = url, attempt = attempt, elapsed = elapsed,
      status = status or nil, request_id = request_id, error = err and tostring(err) or nil,
    }, secrets)
  end
  if res then return res end
  if attempt > state.cfg.retries or not retry.retryable(err) then return nil, err end
  return nil, err, retry.delay(attempt, err.retry_after)
end

-- One call: attempts with retries. Returns the decoded response or nil, err.
local function perform(state, method, url, body, secrets)
  local transport, sleep = pick_transport(state)
  local attempt = 0
  while true do
    if state.closed then return nil, errors.config("the client is closed") end -- by a hook
    attempt = attempt + 1
    announce(state, method, url, attempt, secrets)
    local res, err, wait = conclude(state, method, url, attempt, secrets, transport:request(method, url, body))
    if res then return res end
    if not wait then return nil, err end
    sleep(wait)
  end
end

-- Merge encoder problems into the validator's, skipping paths already reported.
local function merge_problems(problems, more)
  local seen = {}
  for _, p in ipairs(problems) do seen[p.path] = true end
  for _, p in ipairs(more) do
    local covered, path = false, p.path
    while path do
      if seen[path] then covered = true break end
      path = match(path, "^(.*)[%.%[]") -- the parent path
    end
    if not covered and not seen[""] then problems[#problems + 1] = p end
  end
  return problems
end

-- Validate and encode a call's body; returns json and the secrets to scrub
-- from errors, or nil, validation error.
local function build(state, spec, id, fields, secrets)
  secrets = secrets or (spec.has_secrets and { state.cfg.token }) or state.secrets
  local problems = {}
  if not validate.is_uuid(id) then
    problems[1] = {
      path = "id",
      message = type(id) == "string" and "must be a UUID (8-4-4-4-12 hexadecimal digits)"
        or ("must be a UUID string, got " .. type(id)),
    }
  end
  if type(fields) ~= "table" then
    problems[#problems + 1] = { path = "", message = "the body must be a table, got " .. type(fields) }
    return nil, errors.validation(problems)
  end
  local cfg = state.cfg
  local body = validate.prepare(spec, fields, cfg.defaults)
  validate.check(spec, body, cfg.strict, problems, secrets)
  local json, encode_problems = encode(body, cfg.max_body_bytes)
  if encode_problems then merge_problems(problems, encode_problems) end
  if #problems > 0 then return nil, errors.redact(errors.validation(problems), secrets) end
  return json, secrets
end
_M._build = build

local function update(state, spec, id, fields)
  if state.closed then return nil, errors.config("the client is closed") end
  local json, secrets = build(state, spec, id, fields)
  if not json then return nil, secrets end
  return perform(state, "PUT", state.prefix[spec] .. id, json, secrets)
end

-- ---- clients -------------------------------------------------------------------

local Client = {}
Client.__index = Client
local private = setmetatable({}, { __mode = "k" }) -- client -> state (holds the token)

function Client.__tostring(client)
  local state = private[client]
  return "toolzz.client(" .. (state and state.cfg.base_url or "?")
    .. (state and state.closed and ", closed" or "") .. ")"
end

-- Close the client's connections; later calls fail with a config error.
function Client.close(client)
  local state = private[client]
  if not state or state.closed then return true end
  state.closed = true
  if state.curl then state.curl:close() end
  if state.ngx and state.ngx.close then state.ngx:close() end
  return true
end
Client.__close = Client.close

-- An endpoint object: update(id, fields), callable with a dot or a colon.
local function endpoint(state, spec)
  local ep = {}
  function ep.update(a, b, c)
    if a == ep then a, b = b, c end
    return update(state, spec, a, b)
  end
  return ep
end

-- What toolzz.batch needs of this layer.
local batch_api = {
  build = build, announce = announce, conclude = conclude, perform = perform,
  pick_transport = pick_transport, log_warning = log_warning,
  endpoints = { calcom = schema.calcom, gcal = schema.gcal },
}

-- client.batch(requests [, opts]): many updates concurrently (see toolzz.batch).
local function batch_method(client, state)
  return function(a, b, c)
    if a == client then a, b = b, c end
    return require("toolzz.batch").run(batch_api, state, a, b)
  end
end

function _M.new(opts)
  local cfg, err = configure(opts)
  if not cfg then return nil, err end
  local ua = user_agent(cfg)
  local state = {
    cfg = cfg,
    secrets = { cfg.token }, -- what errors are scrubbed of when the body has no secret
    prefix = { -- URL of each endpoint, but for the id
      [schema.calcom] = cfg.base_url .. schema.calcom.path,
      [schema.gcal] = cfg.base_url .. schema.gcal.path,
    },
    headers = { -- for the cosocket transport
      ["Authorization"] = "Bearer " .. cfg.token,
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["User-Agent"] = ua,
    },
    curl_headers = {
      "Authorization: Bearer " .. cfg.token,
      "Content-Type: application/json",
      "Accept: application/json",
      "User-Agent: " .. ua,
      "Expect:", -- never wait for 100-continue
    },
  }
  validate.compile(schema.calcom)
  validate.compile(schema.gcal)
  local client = setmetatable({
    base_url = cfg.base_url,
    calcom = endpoint(state, schema.calcom),
    gcal = endpoint(state, schema.gcal),
  }, Client)
  private[client] = state
  client.batch = batch_method(client, state)
  return client
end

-- For tests, benchmarks and fuzzing: the private state of a client.
function _M._state(client)
  return private[client]
end

-- ---- module-level calls (default client from the environment) ---------------

local default_client

local function module_endpoint(name)
  local ep = {}
  function ep.update(a, b, c)
    if a == ep then a, b = b, c end
    if not default_client then
      local client, err = _M.new()
      if not client then return nil, err end
      default_client = client
    end
    return default_client[name].update(a, b)
  end
  return ep
end
_M.calcom = module_endpoint("calcom")
_M.gcal = module_endpoint("gcal")

-- Mark a table so it is always written as a JSON array, even when empty.
function _M.array(t)
  return setmetatable(t or {}, core.array_mt)
end

return _M

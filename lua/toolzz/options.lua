-- toolzz.options: a client's options, checked once when the client is made.
--
-- configure(opts) returns the settings every later layer reads (cfg), or
-- nil, config error. Nothing here sends a byte.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local raw_copy = require("toolzz.tables").raw_copy

local type, next, pairs, ipairs, tonumber, rawget =
  type, next, pairs, ipairs, tonumber, rawget
local find, match, lower, gsub, sub = string.find, string.match, string.lower, string.gsub, string.sub
local floor = math.floor
local getenv = os.getenv

local _M = {}

-- The two API hosts: option, environment variable, default.
local HOSTS = {
  { option = "base_url", env = "TOOLZZ_BASE_URL", default = "https://chat.api.toolzz.com.br" },
  { option = "converflow_url", env = "TOOLZZ_CONVERFLOW_URL",
    default = "https://converflow.api.prod.toolzz.media" },
}
_M.HOSTS = HOSTS

local DEFAULTS = {
  timeout = 30,
  connect_timeout = 10,
  retries = 2,
  strict = true,
  max_response_bytes = 8 * 1024 * 1024,
  max_body_bytes = 1024 * 1024,
  transport = "auto",
  http2 = true,
  dry_run = false,
}
_M.DEFAULTS = DEFAULTS
local MAX_RETRIES = 10

-- Option name -> Lua type it must have.
local OPTION_TYPES = {
  token = "string", base_url = "string", timeout = "number", connect_timeout = "number",
  retries = "number", defaults = "table", strict = "boolean", max_response_bytes = "number",
  max_body_bytes = "number", ca_file = "string", ca_path = "string", proxy = "string",
  user_agent = "string", on_request = "function", on_response = "function",
  transport = "string", http2 = "boolean", converflow_url = "string", dry_run = "boolean",
}
_M.OPTION_TYPES = OPTION_TYPES

-- Is host a loopback host: localhost, [::1], or 127.x.y.z written as an
-- address (each part 0-255, no leading zero)? Anything else, 127.0.0.300
-- included, is a name that a resolver could point anywhere.
local function is_loopback(host)
  host = lower(host)
  if host == "localhost" or host == "[::1]" then return true end
  local a, b, c, d = match(host, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a ~= "127" then return false end
  for _, part in ipairs { b, c, d } do
    if #part > 3 or tonumber(part) > 255 or (#part > 1 and sub(part, 1, 1) == "0") then return false end
  end
  return true
end
_M.is_loopback = is_loopback

-- The one URL splitter (toolzz.url): options, the proxy rule
-- (toolzz.transports) and the cosocket transport (toolzz.ngxconn) all read
-- URLs with it.
local split_url = require("toolzz.url").split

-- A base URL (option `name`, "base_url" by default) -> normalised
-- "scheme://authority/path" without trailing slash, scheme, host; or nil,
-- the message of a config error.
local function parse_base_url(url, name)
  name = name or "base_url"
  if find(url, "[%c%s]") then return nil, name .. " must not contain spaces or control characters" end
  local parts = split_url(url)
  if not parts then return nil, name .. " must look like https://host[:port][/path]" end
  local scheme, authority, host, path = parts.scheme, parts.authority, parts.host, parts.path
  if scheme ~= "http" and scheme ~= "https" then return nil, name .. " must use http or https" end
  if find(path, "[?#]") then return nil, name .. " must not have a query or a fragment" end
  if find(authority, "@", 1, true) then return nil, name .. " must not carry user info" end
  if not host then return nil, name .. " has no valid host" end
  if parts.port == false then return nil, name .. " has an invalid port" end
  if scheme == "http" and not is_loopback(host) then
    return nil, name .. ": plain http:// is allowed only to a loopback host (localhost, 127.0.0.0/8, [::1]); use https://"
  end
  return scheme .. "://" .. authority .. gsub(path, "/+$", ""), scheme, host
end
_M.parse_base_url = parse_base_url

-- An option's name for a message, whatever the caller used as a key.
local function option_name(name)
  if type(name) ~= "string" then return "a " .. type(name) .. " key" end
  if #name > 64 then name = sub(name, 1, 64) .. "..." end
  return "'" .. name .. "'"
end

-- Check a client's options; returns the settings or nil, config error.
-- opts is read raw: no __index or __pairs of the caller's runs.
function _M.configure(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return nil, errors.config("options must be a table, got " .. type(opts)) end
  for name, value in next, opts do
    local want = OPTION_TYPES[name]
    if not want then return nil, errors.config("unknown option " .. option_name(name)) end
    if type(value) ~= want then
      return nil, errors.config("option " .. name .. " must be a " .. want .. ", got " .. type(value))
    end
  end
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  for k, v in next, opts do cfg[k] = v end

  local token = rawget(opts, "token") or getenv("TOOLZZ_TOKEN")
  if token == nil or token == "" then
    return nil, errors.config("no token: pass the token option or set TOOLZZ_TOKEN")
  end
  if find(token, "[^\33-\126]") then
    return nil, errors.config("the token must be printable ASCII: no spaces, CR, LF, NUL or other control characters")
  end
  cfg.token = token

  for _, h in ipairs(HOSTS) do -- independent: one never changes the other
    local given, from_env = rawget(opts, h.option), nil
    if given == nil then
      from_env = getenv(h.env) -- set but empty is an error too: never fall back to the default host
      given = from_env or h.default
    end
    local url, why = parse_base_url(given, h.option)
    if not url then
      if from_env then why = h.env .. " (" .. h.option .. " from the environment): " .. why end
      return nil, errors.config(why)
    end
    cfg[h.option] = url
  end

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
  for _, name in ipairs { "proxy", "ca_file", "ca_path", "user_agent" } do
    if cfg[name] and find(cfg[name], "%c") then -- CR, LF, NUL: libcurl would refuse it on every call
      return nil, errors.config(name .. " must not contain control characters")
    end
  end
  if cfg.ca_file then
    local f = io.open(cfg.ca_file, "rb")
    if not f then return nil, errors.config("ca_file cannot be read: " .. cfg.ca_file) end
    f:close()
  end
  if cfg.transport ~= "auto" and cfg.transport ~= "curl" and cfg.transport ~= "ngx" then
    return nil, errors.config("transport must be \"auto\", \"curl\" or \"ngx\"")
  end
  if cfg.transport == "ngx" and type(rawget(_G, "ngx")) ~= "table" then
    return nil, errors.config("transport \"ngx\" works only inside nginx (lua-nginx-module)")
  end
  cfg.defaults = raw_copy(rawget(opts, "defaults"))
  return cfg
end

-- The User-Agent header: ours, then the caller's.
function _M.user_agent(cfg)
  local jit = rawget(_G, "jit")
  local ua = "toolzz-lua/" .. core.version .. " (" .. (jit and jit.version or _VERSION)
    .. "; libcurl/" .. core.curl_version .. ")"
  if cfg.user_agent and cfg.user_agent ~= "" then ua = ua .. " " .. cfg.user_agent end
  return ua
end

return _M

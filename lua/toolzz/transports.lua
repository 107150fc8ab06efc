-- toolzz.transports: which transport a client's attempts go to, and making it.
--
-- for_state(state) -> transport, sleep: cosockets (toolzz.ngx) where nginx
-- allows them, else the client's libcurl transport (toolzz.core); each is
-- made once per client, with the client's headers, and kept in its state
-- (state.ngx, state.curl). Both transports make one attempt and return the
-- same outcome (see toolzz.attempts).
local core = require "toolzz.core"
local options = require "toolzz.options"
local split_url = require("toolzz.url").split

local ipairs, rawget, getenv = ipairs, rawget, os.getenv
local match, gsub = string.match, string.gsub

local _M = {}

local ngx_transport -- toolzz.ngx, loaded on first use inside nginx
local KEEP_HEADERS = { "x-request-id", "request-id", "retry-after" } -- the layers above read no others
local CONTENT_TYPE = "application/json" -- sent with a body only
local NGX_OPTIONS = { content_type = CONTENT_TYPE }

-- cfg -> the headers of every request, name -> value, for the cosocket
-- transport (which adds Host, Content-Type and Content-Length itself).
function _M.ngx_headers(cfg)
  return {
    ["Authorization"] = "Bearer " .. cfg.token,
    ["Accept"] = "application/json",
    ["User-Agent"] = options.user_agent(cfg),
  }
end

-- cfg -> the same headers as "Name: value" lines for libcurl, which also
-- gets an empty `Expect:` so that it never waits for 100-continue.
function _M.curl_headers(cfg)
  return {
    "Authorization: Bearer " .. cfg.token,
    "Accept: application/json",
    "User-Agent: " .. options.user_agent(cfg),
    "Expect:",
  }
end

-- cfg -> libcurl's noproxy setting: the hosts it must never reach through a
-- proxy (the proxy option or the proxy environment variables). Loopback
-- ones, where plain http is allowed, so that the token never goes in clear
-- to a proxy (the client's own loopback hosts by name too, for a libcurl
-- without CIDR support, < 7.86); plus those of the environment's no_proxy,
-- which this setting replaces.
local LOOPBACK_HOSTS = "localhost,127.0.0.0/8,::1"
function _M.noproxy(cfg)
  local from_env = getenv("no_proxy") or getenv("NO_PROXY")
  if from_env then from_env = gsub(from_env, "%c", "") end -- CR, LF, NUL: libcurl refuses the whole setting
  if from_env == "*" then return "*" end
  local hosts = LOOPBACK_HOSTS
  for _, url in ipairs { cfg.base_url, cfg.converflow_url } do
    local parts = split_url(url or "")
    local host = parts and parts.host
    if host and options.is_loopback(host) then
      hosts = hosts .. "," .. (match(host, "^%[(.*)%]$") or host) -- no brackets, no port
    end
  end
  if from_env and from_env ~= "" then hosts = hosts .. "," .. from_env end
  return hosts
end

-- state (a client's) -> its libcurl transport, made on first use.
local function curl_transport(state)
  local t = state.curl
  if t then return t end
  local cfg = state.cfg
  t = core.transport {
    headers = _M.curl_headers(cfg), content_type = CONTENT_TYPE, timeout = cfg.timeout,
    connect_timeout = cfg.connect_timeout, max_response_bytes = cfg.max_response_bytes,
    ca_file = cfg.ca_file, ca_path = cfg.ca_path, proxy = cfg.proxy, noproxy = _M.noproxy(cfg),
    http2 = cfg.http2, keep_headers = KEEP_HEADERS,
  }
  state.curl = t
  return t
end

-- state -> the transport for this call and the function to sleep with:
-- cosockets where nginx allows them (or transport = "ngx"), else libcurl.
function _M.for_state(state)
  if state.cfg.transport ~= "curl" and rawget(_G, "ngx") then
    ngx_transport = ngx_transport or require("toolzz.ngx")
    if state.cfg.transport == "ngx" or ngx_transport.usable() then
      state.ngx = state.ngx or ngx_transport.new(state.cfg, _M.ngx_headers(state.cfg), NGX_OPTIONS)
      return state.ngx, ngx_transport.sleep
    end
  end
  return curl_transport(state), core.sleep
end

return _M

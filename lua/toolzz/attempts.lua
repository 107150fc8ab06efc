-- toolzz.attempts: one request, attempted until it succeeds or retrying ends.
--
-- A request is { op =, method =, url =, body = json | nil, secrets =,
-- idempotent = }. Each attempt goes to a transport (the client's libcurl
-- transport, or cosockets inside nginx), the hooks are told, the outcome is
-- interpreted (toolzz.responses) and the retry policy (toolzz.retry)
-- decides whether and when to try again. Single calls and batch items share
-- announce/conclude; a batch only drives the transport differently.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local responses = require "toolzz.responses"
local retry = require "toolzz.retry"
local options = require "toolzz.options"

local type, pcall, tostring, rawget, ipairs = type, pcall, tostring, rawget, ipairs
local match, gsub = string.match, string.gsub
local interpret, unwrap, request_id_of = responses.interpret, responses.unwrap, responses.request_id_of

local _M = {}

local function log_warning(message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.log then
    ngx.log(ngx.WARN, "toolzz: ", message)
  else
    io.stderr:write("toolzz: ", message, "\n")
  end
end
_M.log_warning = log_warning

local ngx_transport -- toolzz.ngx, loaded on first use inside nginx
local KEEP_HEADERS = { "x-request-id", "request-id", "retry-after" }
local CONTENT_TYPE = "application/json" -- sent with a body only
local NGX_OPTIONS = { content_type = CONTENT_TYPE }

-- Hosts libcurl must never reach through a proxy (the proxy option or the
-- proxy environment variables): loopback ones, where plain http is allowed,
-- so that the token never goes in clear to a proxy (the client's own
-- loopback hosts by name too, for a libcurl without CIDR support, < 7.86);
-- plus those of the environment's no_proxy, which this setting replaces.
local LOOPBACK_HOSTS = "localhost,127.0.0.0/8,::1"
function _M.noproxy(cfg)
  local from_env = os.getenv("no_proxy") or os.getenv("NO_PROXY")
  if from_env then from_env = gsub(from_env, "%c", "") end -- CR, LF, NUL: libcurl refuses the whole setting
  if from_env == "*" then return "*" end
  local hosts = LOOPBACK_HOSTS
  for _, url in ipairs { cfg.base_url, cfg.converflow_url } do
    local authority = match(url or "", "^%a+://([^/]*)") or ""
    local host = match(authority, "^(%[.*%])") or match(authority, "^([^:]*)")
    if host ~= "" and options.is_loopback(host) then
      hosts = hosts .. "," .. (match(host, "^%[(.*)%]$") or host) -- no brackets, no port
    end
  end
  if from_env and from_env ~= "" then hosts = hosts .. "," .. from_env end
  return hosts
end

-- The transport for this call and how to sleep: cosockets where nginx allows
-- them, else the client's libcurl transport.
function _M.transport_for(state)
  if state.cfg.transport ~= "curl" and rawget(_G, "ngx") then
    ngx_transport = ngx_transport or require("toolzz.ngx")
    if state.cfg.transport == "ngx" or ngx_transport.usable() then
      state.ngx = state.ngx or ngx_transport.new(state.cfg, state.headers, NGX_OPTIONS)
      return state.ngx, ngx_transport.sleep
    end
  end
  local t = state.curl
  if not t then
    local cfg = state.cfg
    t = core.transport {
      headers = state.curl_headers, content_type = CONTENT_TYPE, timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
      max_response_bytes = cfg.max_response_bytes, ca_file = cfg.ca_file, ca_path = cfg.ca_path,
      proxy = cfg.proxy, noproxy = _M.noproxy(cfg), http2 = cfg.http2,
      keep_headers = KEEP_HEADERS, -- the layers above read no others
    }
    state.curl = t
  end
  return t, core.sleep
end

-- Run a hook; a hook that fails is logged (scrubbed), never raised.
local function call_hook(state, name, info, secrets)
  local ok, failure = pcall(state.cfg[name], info)
  if not ok then
    log_warning(name .. " hook failed: " .. errors.scrub(errors.describe(failure), secrets))
  end
end

-- Before an attempt: tell on_request.
function _M.announce(state, request, attempt)
  if state.cfg.on_request then
    call_hook(state, "on_request", { method = request.method, url = request.url, attempt = attempt },
      request.secrets)
  end
end

-- After an attempt (the transport's outcome follows `attempt`: status, body,
-- headers, elapsed, version | nil, kind, message, elapsed, headers, sent):
-- interpret it, tell on_response, and decide. Returns res, or nil, err, wait
-- where wait is the seconds before the next attempt, or nil when this error
-- is final.
function _M.conclude(state, request, attempt, status, rbody, headers, elapsed, extra, sent)
  local secrets = request.secrets
  local res, err = interpret(status, rbody, headers, elapsed, extra)
  local rule = res and request.op.unwrap
  if rule then res, err = unwrap(rule, res, rbody, headers) end
  if err then
    err.attempts = attempt
    errors.redact(err, secrets)
  end
  if state.cfg.on_response then
    local request_id = err and err.request_id
    if status and not err then -- an error's was scrubbed with it; this one is the server's too
      request_id = request_id_of(headers)
      if request_id then request_id = errors.scrub(request_id, secrets) end
    end
    call_hook(state, "on_response", {
      method = request.method, url = request.url, attempt = attempt, elapsed = elapsed,
      status = status or nil, request_id = request_id, error = err and tostring(err) or nil,
    }, secrets)
  end
  if res then return res end
  if attempt > state.cfg.retries or not retry.retryable(err, request.idempotent, sent) then
    return nil, err
  end
  return nil, err, retry.delay(attempt, err.retry_after)
end

-- Sleep `seconds` with sleep, asking should_stop at least every
-- STOP_POLL_SECONDS; true when it never answered true.
local STOP_POLL_SECONDS = 0.1
local function sleep_unless_stopped(sleep, seconds, should_stop)
  local wake = core.now() + seconds
  while not should_stop() do
    local left = wake - core.now()
    if left <= 0 then return true end
    sleep(left < STOP_POLL_SECONDS and left or STOP_POLL_SECONDS)
  end
  return false
end

-- One request: attempts with retries. Returns the decoded response or nil, err.
-- should_stop (a batch's, optional): once it answers true, no retry is made
-- and the last attempt's error is returned.
function _M.perform(state, request, should_stop)
  local transport, sleep = _M.transport_for(state)
  local announce, conclude = _M.announce, _M.conclude
  local method, url, body = request.method, request.url, request.body
  local fresh = not request.idempotent -- never sent twice by the transport
  local attempt = 0
  while true do
    if state.closed then return nil, errors.config("the client is closed") end -- by a hook
    attempt = attempt + 1
    announce(state, request, attempt)
    local res, err, wait = conclude(state, request, attempt, transport:request(method, url, body, fresh))
    if res then return res end
    if not wait then return nil, err end
    if not should_stop then
      sleep(wait)
    elseif not sleep_unless_stopped(sleep, wait, should_stop) then
      return nil, err
    end
  end
end

return _M

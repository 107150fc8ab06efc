-- toolzz.attempts: one request, attempted until it succeeds or retrying ends.
--
-- A request is { op =, method =, url =, body = json | nil, secrets =,
-- idempotent = } (toolzz.calls). Each attempt goes to the client's
-- transport (toolzz.transports), which answers in one shape, the same for
-- libcurl (src/transport*.c) and cosockets (toolzz.ngx):
--   status, body, headers, elapsed, version      an HTTP answer
--   nil, kind, message, elapsed, headers, sent   a failure (sent: whether
--                                                the server may have got it)
-- settle() is the one place that reads that shape: it interprets the
-- outcome (toolzz.responses), unwraps a list answer, scrubs the error of
-- the request's secrets and tells on_response; retry_delay() asks the retry
-- policy (toolzz.retry). perform() runs the attempts of a single call;
-- a batch over curl multi uses notify_request / settle / retry_delay
-- itself (toolzz.batch_drive).
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local responses = require "toolzz.responses"
local retry = require "toolzz.retry"
local transports = require "toolzz.transports"

local type, pcall, tostring, rawget = type, pcall, tostring, rawget
local interpret_answer, interpret_failure = responses.interpret_answer, responses.interpret_failure
local unwrap, request_id_of = responses.unwrap, responses.request_id_of

local _M = {}

-- message -> nothing; written to nginx's error log (WARN) inside nginx,
-- else to stderr.
local function log_warning(message)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.log then
    ngx.log(ngx.WARN, "toolzz: ", message)
  else
    io.stderr:write("toolzz: ", message, "\n")
  end
end
_M.log_warning = log_warning

-- Run the hook cfg[name](info); a hook that fails is logged (scrubbed of
-- secrets), never raised. Returns nothing.
local function call_hook(state, name, info, secrets)
  local ok, failure = pcall(state.cfg[name], info)
  if not ok then
    log_warning(name .. " hook failed: " .. errors.scrub(errors.describe(failure), secrets))
  end
end

-- Before attempt number `attempt` of request: tell on_request. Returns nothing.
function _M.notify_request(state, request, attempt)
  if state.cfg.on_request then
    call_hook(state, "on_request", { method = request.method, url = request.url, attempt = attempt },
      request.secrets)
  end
end

-- After an attempt: tell on_response (status: the answer's, or nil after a
-- failure; headers: the answer's; err: the attempt's error, or nil).
-- Returns nothing.
local function notify_response(state, request, attempt, status, headers, elapsed, err)
  local secrets = request.secrets
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

-- Attempt number `attempt` of request ended with the transport's outcome
-- (the shape at the top of this file; `sent` is not read here): returns the
-- result (unwrapped as the operation says), or nil, err (err.attempts set,
-- scrubbed of the request's secrets), after on_response was told.
function _M.settle(state, request, attempt, status, body_or_kind, headers_or_message, elapsed, failure_headers)
  local res, err, headers
  if status then
    local body = body_or_kind
    headers = headers_or_message
    res, err = interpret_answer(status, body, headers)
    local rule = res and request.op.unwrap
    if rule then res, err = unwrap(rule, res, body, headers) end
  else
    err = interpret_failure(body_or_kind, headers_or_message, failure_headers)
  end
  if err then
    err.attempts = attempt
    errors.redact(err, request.secrets)
  end
  if state.cfg.on_response then notify_response(state, request, attempt, status, headers, elapsed, err) end
  if res then return res end
  return nil, err
end

-- After attempt number `attempt` of request failed with err (sent: the
-- transport's word that the server may have got it; nil after an answer):
-- the seconds to wait before the next attempt, or nil when err is final.
function _M.retry_delay(state, request, attempt, err, sent)
  if attempt > state.cfg.retries or not retry.retryable(err, request.idempotent, sent) then return nil end
  return retry.delay(attempt, err.retry_after)
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

-- One request, attempted with retries -> the result, or nil, err.
-- should_stop (a batch's, optional): once it answers true, no retry is made
-- and the last attempt's error is returned.
function _M.perform(state, request, should_stop)
  local transport, sleep = transports.for_state(state)
  local notify_request, settle, retry_delay = _M.notify_request, _M.settle, _M.retry_delay
  local method, url, body = request.method, request.url, request.body
  local fresh = not request.idempotent -- never sent twice by the transport
  local attempt = 0
  while true do
    if state.closed then return nil, errors.config("the client is closed") end -- by a hook
    attempt = attempt + 1
    notify_request(state, request, attempt)
    local status, body_or_kind, headers_or_message, elapsed, version_or_headers, sent =
      transport:request(method, url, body, fresh)
    local res, err = settle(state, request, attempt, status, body_or_kind, headers_or_message, elapsed,
      version_or_headers)
    if res then return res end
    local wait = retry_delay(state, request, attempt, err, sent)
    if not wait then return nil, err end
    if not should_stop then
      sleep(wait)
    elseif not sleep_unless_stopped(sleep, wait, should_stop) then
      return nil, err
    end
  end
end

return _M

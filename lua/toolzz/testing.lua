-- toolzz.testing: internals for the project's own tests, benchmarks and
-- fuzzing. Not part of the public API; applications never need it.
local client = require "toolzz.client"
local calls = require "toolzz.calls"
local operations = require "toolzz.operations"
local responses = require "toolzz.responses"
local transports = require "toolzz.transports"

local _M = {
  operations = operations.by_name,
}

-- A transport's outcome (status, body, headers | nil, kind, message,
-- elapsed, headers) -> the answer, or nil, err (toolzz.responses), as one
-- attempt reads it before any operation's unwrapping.
function _M.interpret(status, body_or_kind, headers_or_message, _, failure_headers)
  if status then return responses.interpret_answer(status, body_or_kind, headers_or_message) end
  return nil, responses.interpret_failure(body_or_kind, headers_or_message, failure_headers)
end

-- Which transport(s) a client has made: "ngx", "curl", "both" or "none".
function _M.transport_of(c)
  local state = client.state_of(c)
  if not state then return "none" end
  if state.ngx and state.curl then return "both" end
  return state.ngx and "ngx" or state.curl and "curl" or "none"
end

-- The two hosts a client calls: base_url, converflow_url.
function _M.urls(c)
  local cfg = client.state_of(c).cfg
  return cfg.base_url, cfg.converflow_url
end

-- The libcurl transport of a client (nil before its first call).
function _M.curl_transport(c)
  local state = client.state_of(c)
  return state and state.curl
end

-- The request headers a client's libcurl transport sends (token included).
function _M.curl_headers(c)
  return transports.curl_headers(client.state_of(c).cfg)
end

-- The request a call would make: { method, url, body, ... } or nil, err.
function _M.request(c, op_name, a, b)
  return calls.request(client.state_of(c), operations.by_name[op_name], a, b)
end

-- A call as a job without a transport (benchmarks of the library's own work):
-- start(c, op_name, a, b) -> job; advance(c, job, res, err) -> job, whose
-- .request is the next to perform, or .res / .err its end (toolzz.calls).
function _M.start(c, op_name, a, b)
  return calls.start(client.state_of(c), operations.by_name[op_name], a, b)
end
function _M.advance(c, job, res, err)
  return calls.advance(client.state_of(c), job, res, err)
end

return _M

-- toolzz.testing: internals for the project's own tests, benchmarks and
-- fuzzing. Not part of the public API; applications never need it.
local client = require "toolzz.client"
local calls = require "toolzz.calls"
local operations = require "toolzz.operations"
local responses = require "toolzz.responses"

local _M = {
  interpret = responses.interpret,
  operations = operations.by_name,
}

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
  return client.state_of(c).curl_headers
end

-- The request a call would make: { method, url, body, ... } or nil, err.
function _M.request(c, op_name, a, b)
  return calls.request(client.state_of(c), operations.by_name[op_name], a, b)
end

return _M

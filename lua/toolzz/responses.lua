-- toolzz.responses: what one attempt's outcome means.
--
-- interpret_answer(status, body, headers) -> the decoded answer, or nil,
-- err (http, decode); interpret_failure(kind, message, headers) -> the err
-- of a transport failure; unwrap(rule, res, body, headers) -> a list
-- answer's records, or nil, err. Nothing here knows an operation's name or
-- the retry policy.
local cjson = require "cjson"
local errors = require "toolzz.errors"
local retry = require "toolzz.retry"

local type, ipairs, pcall, next = type, ipairs, pcall, next
local concat = table.concat

local _M = {}

-- Decoding uses a cjson instance of our own, whatever the application does
-- to the shared one.
local decoder = cjson.new()
decoder.decode_invalid_numbers(false)
local decode = decoder.decode
_M.decode = decode

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

-- An error body is decoded into err.data only up to this size: an API's
-- error body is small, and decoding a large one of tiny objects would hold
-- about 30 times its size in Lua tables for an error.
local MAX_ERROR_DATA_BYTES = 64 * 1024

-- Response headers (or nil) -> the server's request id, or nil.
local function request_id_of(headers)
  return headers and (headers["x-request-id"] or headers["request-id"]) or nil
end
_M.request_id_of = request_id_of

-- A transport failure (kind: network, timeout, tls, limit, config; the
-- transport's message; the response headers read before it, or nil) ->
-- its err.
function _M.interpret_failure(kind, message, headers)
  return errors.new(kind, message, { request_id = request_id_of(headers) })
end

-- An HTTP answer (status, body, headers) -> the decoded answer (a table;
-- {} for a 204), or nil, err: decode for a 2xx that is not a JSON object
-- or array, http for any other status (with retry_after when sent).
function _M.interpret_answer(status, body, headers)
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
  if body ~= "" and #body <= MAX_ERROR_DATA_BYTES then
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

-- A list answer unwrapped by an operation's rule: the records under
-- rule.key, only those of rule.type when it says so. Another shape is a
-- decode error (with the body and request id, like any decode error).
function _M.unwrap(rule, res, body, headers)
  local list, why = res[rule.key], nil
  if type(list) ~= "table" then
    why = "has no \"" .. rule.key .. "\" list"
  else
    for k, record in next, list do
      if type(k) ~= "number" then why = "has an object as \"" .. rule.key .. "\", not a list" break end
      if type(record) ~= "table" then why = "has a " .. type(record) .. " in \"" .. rule.key .. "\", not a record" break end
    end
  end
  if why then
    return nil, errors.new("decode", "the answer " .. why,
      { body = body, request_id = request_id_of(headers) }) -- cut once scrubbed (errors.redact)
  end
  local out = {}
  for i = 1, #list do
    local record = list[i]
    if not rule.type or record.type == rule.type then out[#out + 1] = record end
  end
  return out
end

return _M

-- toolzz.errors: the error objects every failure comes back as.
--
-- An error is a plain table { kind =, message =, ... } with a metatable whose
-- __tostring reads as one line. Secrets (the bearer token, a googleToken from
-- the request) are scrubbed from every string in it before it reaches the
-- caller: see redact().
local setmetatable, getmetatable, tostring, type, pairs, ipairs =
  setmetatable, getmetatable, tostring, type, pairs, ipairs
local concat = table.concat
local find, sub, gsub = string.find, string.sub, string.gsub

local _M = {}

local BODY_CAP = 8192 -- bytes of a response body kept in err.body
_M.BODY_CAP = BODY_CAP

local KINDS = {
  validation = true, config = true, http = true, network = true,
  timeout = true, tls = true, decode = true, limit = true,
}
_M.KINDS = KINDS

local Error = {}
Error.__index = Error
_M.Error = Error

local function one_line(s)
  return (gsub(tostring(s), "[%c]+", " "))
end

function Error.__tostring(err)
  local parts = { "toolzz: " }
  if err.op then parts[#parts + 1] = one_line(err.op) .. (err.step and (" (" .. one_line(err.step) .. ")") or "") .. ": " end
  parts[#parts + 1] = err.kind
  if err.status then parts[#parts + 1] = " " .. err.status end
  parts[#parts + 1] = ": "
  parts[#parts + 1] = one_line(err.message or "")
  local notes = {}
  if err.request_id then notes[#notes + 1] = "request id " .. one_line(err.request_id) end
  if err.attempts and err.attempts > 1 then notes[#notes + 1] = err.attempts .. " attempts" end
  if err.retry_after then notes[#notes + 1] = "retry after " .. err.retry_after .. " s" end
  if #notes > 0 then parts[#parts + 1] = " (" .. concat(notes, ", ") .. ")" end
  return concat(parts)
end

-- An error of one kind; extra fields are copied in.
function _M.new(kind, message, extra)
  local err = { kind = kind, message = message }
  if extra then
    for k, v in pairs(extra) do err[k] = v end
  end
  return setmetatable(err, Error)
end

function _M.is_error(value)
  return type(value) == "table" and getmetatable(value) == Error
end

-- A validation error from a list of { path =, message = } problems.
function _M.validation(fields)
  local shown = {}
  for i, f in ipairs(fields) do
    if i > 5 then
      shown[#shown + 1] = "and " .. (#fields - 5) .. " more"
      break
    end
    shown[#shown + 1] = (f.path ~= "" and f.path or "(body)") .. ": " .. f.message
  end
  local message = (#fields == 1 and "1 invalid field: " or (#fields .. " invalid fields: "))
    .. concat(shown, "; ")
  return _M.new("validation", message, { fields = fields })
end

function _M.config(message)
  return _M.new("config", message)
end

-- Keep at most BODY_CAP bytes of a response body.
function _M.cap_body(body)
  if type(body) == "string" and #body > BODY_CAP then return sub(body, 1, BODY_CAP) end
  return body
end

-- Secrets shorter than this are not scrubbed: they would match ordinary text.
local MIN_SECRET = 8
_M.MIN_SECRET = MIN_SECRET

-- Replace every occurrence of each secret in s by "[REDACTED]".
local function scrub(s, secrets)
  for i = 1, #secrets do
    local secret = secrets[i]
    local start = #secret >= MIN_SECRET and find(s, secret, 1, true)
    if start then
      local out, pos = {}, 1
      while start do
        out[#out + 1] = sub(s, pos, start - 1)
        out[#out + 1] = "[REDACTED]"
        pos = start + #secret
        start = find(s, secret, pos, true)
      end
      out[#out + 1] = sub(s, pos)
      s = concat(out)
    end
  end
  return s
end
_M.scrub = scrub

local function redact_value(v, secrets, depth)
  local t = type(v)
  if t == "string" then return scrub(v, secrets) end
  if t ~= "table" or depth > 32 then return v end
  local copy = {}
  for k, x in pairs(v) do
    copy[redact_value(k, secrets, depth + 1)] = redact_value(x, secrets, depth + 1)
  end
  return setmetatable(copy, getmetatable(v))
end

-- Scrub secrets from every string an error carries (in place) and return it.
function _M.redact(err, secrets)
  if not secrets or #secrets == 0 then return err end
  for k, v in pairs(err) do
    if type(v) == "string" then
      err[k] = scrub(v, secrets)
    elseif type(v) == "table" then
      err[k] = redact_value(v, secrets, 0)
    end
  end
  return err
end

return _M

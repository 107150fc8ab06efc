-- toolzz.calls: an operation and its arguments -> a request -> its result.
--
-- request() validates the arguments (the id, the body against the
-- operation's schema with defaults) and encodes the body; run() performs
-- the request (toolzz.attempts) and unwraps the answer. Single calls and
-- batch items both come through here.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local validate = require "toolzz.validate"
local attempts = require "toolzz.attempts"

local type, ipairs = type, ipairs
local match = string.match
local encode = core.encode

local _M = {}

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

local function id_problem(id)
  return {
    path = "id",
    message = type(id) == "string" and "must be a UUID (8-4-4-4-12 hexadecimal digits)"
      or ("must be a UUID string, got " .. type(id)),
  }
end

-- Validate and encode a body for spec; returns json and the secrets to
-- scrub from errors, or nil, validation error. problems may hold earlier ones.
local function encode_body(state, spec, fields, problems)
  local secrets = spec.has_secrets and { state.cfg.token } or state.secrets
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
_M.encode_body = encode_body

-- The request of one call: { op, method, url, body, secrets, idempotent },
-- or nil, validation error. An operation with `{id}` in its path takes the
-- id first; one with a schema takes the body next.
function _M.request(state, op, a, b)
  local problems, id, fields = {}, nil, a
  if op.after then
    id, fields = a, b
    if not validate.is_uuid(id) then problems[1] = id_problem(id) end
  end
  local body, secrets
  if op.schema then
    body, secrets = encode_body(state, op.schema, fields, problems)
    if not body then return nil, secrets end
  elseif #problems > 0 then
    return nil, errors.validation(problems)
  else
    secrets = state.secrets
  end
  local prefix = state.prefix[op]
  return {
    op = op, method = op.method, url = id and (prefix .. id .. op.after) or prefix,
    body = body, secrets = secrets, idempotent = op.idempotent,
  }
end

-- Perform a single call; returns the result or nil, err (with err.op).
function _M.run(state, op, a, b)
  if state.closed then return nil, errors.config("the client is closed") end
  local request, err = _M.request(state, op, a, b)
  if not request then return nil, err end
  return attempts.perform(state, request)
end

return _M

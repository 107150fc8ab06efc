-- toolzz.calls: an operation and its arguments -> requests -> its result.
--
-- A call is a job: start() validates the arguments (the id, the body
-- against the operation's schema, with defaults) and makes the job's first
-- request; after each request is performed (toolzz.attempts), advance()
-- either gives the job its next request (a patch: the GET, then the PUT) or
-- ends it with its result, unwrapped as the operation says. Single calls and
-- batch items both go through start/advance; only the driving differs.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local validate = require "toolzz.validate"
local attempts = require "toolzz.attempts"
local patch = require "toolzz.patch"

local type, ipairs, setmetatable = type, ipairs, setmetatable
local match = string.match
local encode = core.encode

local _M = {}

-- Merge encoder problems into the validator's, skipping paths already reported.
-- Paths are cut to what an error shows first, so that walking up a path
-- costs little whatever the caller's keys.
local function merge_problems(problems, more)
  local seen, bounded = {}, errors.bounded_problem
  for _, p in ipairs(problems) do seen[bounded(p).path] = true end
  for _, p in ipairs(more) do
    local covered, path = false, bounded(p).path
    while path do
      if seen[path] then covered = true break end
      path = match(path, "^(.*)[%.%[]") -- the parent path
    end
    if not covered and not seen[""] then problems[#problems + 1] = p end
  end
  return problems
end

local function id_problem(id, name)
  return {
    path = name or "id",
    message = type(id) == "string" and "must be a UUID (8-4-4-4-12 hexadecimal digits)"
      or ("must be a UUID string, got " .. type(id)),
  }
end

local function not_a_table(what, v)
  return { path = "", message = what .. " must be a table, got " .. type(v) }
end

-- Validate and encode a body for spec (client defaults applied unless
-- no_defaults); returns json and the secrets to scrub from errors, or nil,
-- validation error. problems (a list or nil) may hold earlier ones.
local function encode_body(state, spec, fields, problems, no_defaults)
  -- a fresh list when the body may carry secrets (never state.secrets itself)
  local secrets = (spec.has_secrets or not state.cfg.strict) and { state.cfg.token } or state.secrets
  if type(fields) ~= "table" then
    problems = problems or {}
    problems[#problems + 1] = not_a_table("the body", fields)
    return nil, errors.validation(problems)
  end
  local cfg = state.cfg
  local body = validate.prepare(spec, fields, not no_defaults and cfg.defaults or nil)
  problems = validate.problems(spec, body, cfg.strict, problems, secrets)
  local json, encode_problems = encode(body, cfg.max_body_bytes)
  if encode_problems then problems = merge_problems(problems or {}, encode_problems) end
  if problems and #problems > 0 then return nil, errors.redact(errors.validation(problems), secrets) end
  return json, secrets
end

-- The request of op: { op, method, url, body, secrets, idempotent }.
local function new_request(state, op, id, body, secrets)
  local prefix = state.prefix[op]
  return {
    op = op, method = op.method, url = id and (prefix .. id .. op.after) or prefix,
    body = body, secrets = secrets or state.secrets, idempotent = op.idempotent,
  }
end

-- The parts of a plain (not patch) call: true, id, json body, secrets, or
-- false, validation error. An operation with `{id}` in its path takes the
-- id first; one with a schema takes the body next.
local function plain_parts(state, op, a, b)
  local problems, id, fields = nil, nil, a
  if op.after then
    id, fields = a, b
    if not validate.is_uuid(id) then problems = { id_problem(id, op.id_name) } end
  end
  local body, secrets
  if op.schema then
    body, secrets = encode_body(state, op.schema, fields, problems)
    if not body then return false, secrets end
  elseif problems then
    return false, errors.validation(problems)
  end
  return true, id, body, secrets
end

-- The request of a plain call, or nil, validation error.
local function plain_request(state, op, a, b)
  local ok, id, body, secrets = plain_parts(state, op, a, b)
  if not ok then return nil, id end
  return new_request(state, op, id, body, secrets)
end
_M.request = plain_request

-- A write in dry-run mode: what would be sent, nothing sent.
-- Each result made here is remembered (weakly), so that a printer can tell
-- it from a server record that merely looks like one (toolzz.cli).
local dry_results = setmetatable({}, { __mode = "k" })
local function dry_result(request)
  local res = { dry_run = true, method = request.method, url = request.url, body = request.body or "" }
  dry_results[res] = true
  return res
end
function _M.is_dry_result(v) return dry_results[v] == true end

-- End a job with a result or an error (marked with the call and step).
local function finish(job, res, err)
  job.request = nil
  if err then
    err.op = job.op.name
    err.step = job.step
    job.err = err
  else
    job.res = res
  end
  return job
end

local function new_job(op)
  return { op = op, step = op.patch and "get" or nil, request = nil, res = nil } -- sized for what comes
end

-- The first half of start(), for a batch that judges every item before it
-- sends any and makes each one's request only when the item starts:
-- nil, id, body, secrets when the call can start (its body validated and
-- encoded; for a patch, body is the checked copy of the changes), else the
-- call's final job (invalid, closed client, dry-run write).
local function judge(state, op, a, b)
  if state.closed then return finish(new_job(op), nil, errors.config("the client is closed")) end
  if op.patch then
    local problems = {}
    if not validate.is_uuid(a) then problems[1] = id_problem(a) end
    local changes = b
    if type(b) ~= "table" then
      problems[#problems + 1] = not_a_table("changes", b)
    else
      changes = patch.raw_copy(b)
      validate.check_changes(op.patch.write.schema, changes, state.cfg.strict, problems)
      patch.masked_changes(op.patch.write.schema, changes, problems)
      local _, json_problems = encode(changes, state.cfg.max_body_bytes) -- what JSON cannot carry
      if json_problems then merge_problems(problems, json_problems) end
    end
    if #problems > 0 then
      return finish(new_job(op), nil, errors.redact(errors.validation(problems), state.secrets))
    end
    return nil, a, changes
  end
  local ok, id, body, secrets = plain_parts(state, op, a, b)
  if not ok then return finish(new_job(op), nil, id) end
  if op.writes and state.cfg.dry_run then
    return finish(new_job(op), dry_result(new_request(state, op, id, body, secrets)))
  end
  return nil, id, body, secrets
end
_M.judge = judge

-- The second half: the job of a call judge() let start, with its first request.
local function begin(state, op, id, body, secrets)
  local job = new_job(op)
  if op.patch then
    job.id, job.changes = id, body
    job.request = new_request(state, op.patch.read, id)
  else
    job.request = new_request(state, op, id, body, secrets)
  end
  return job
end
_M.begin = begin

-- Start a call: a job whose .request is to be performed next, or whose
-- .res / .err is already final (validation failed, dry-run write).
function _M.start(state, op, a, b)
  local job, id, body, secrets = judge(state, op, a, b)
  if job then return job end
  return begin(state, op, id, body, secrets)
end

-- A call that ends before it starts, with err (a batch's queued item when
-- the batch stops): the job start() would have ended the same way.
function _M.failed(op, err)
  return finish(new_job(op), nil, err)
end

-- After the job's request was performed with (res | nil, err): the job's
-- next request, or its end.
function _M.advance(state, job, res, err)
  if err then return finish(job, nil, err) end
  local op = job.op
  if job.step ~= "get" then return finish(job, res) end
  -- a patch whose GET answered: the record asked for? merge, validate, and PUT
  local other = patch.other_record(res, job.id)
  if other then return finish(job, nil, errors.new("decode", other)) end
  job.step = "update"
  local write = op.patch.write
  local problems = patch.unfit(write.schema, res)
  if #problems > 0 then return finish(job, nil, errors.redact(errors.validation(problems), state.secrets)) end
  local base = patch.body_of(write.schema, res)
  local read = patch.secrets_of(write.schema, base, {}) -- kept secret even when changed
  patch.masked_reads(write.schema, res, base, job.changes, problems)
  local body = patch.merge(write.schema, base, job.changes, problems)
  if #problems > 0 then
    for i = 1, #state.secrets do read[#read + 1] = state.secrets[i] end
    return finish(job, nil, errors.redact(errors.validation(problems), read))
  end
  local json, secrets_or_err = encode_body(state, write.schema, body, nil, true)
  if not json then return finish(job, nil, errors.redact(secrets_or_err, read)) end
  local secrets = secrets_or_err
  if secrets == state.secrets then secrets = { state.cfg.token } end
  for i = 1, #read do secrets[#secrets + 1] = read[i] end
  local request = new_request(state, write, job.id, json, secrets)
  if state.cfg.dry_run then return finish(job, dry_result(request)) end
  job.request = request
  return job
end

-- Perform a single call; returns the result or nil, err.
function _M.run(state, op, a, b)
  local job = _M.start(state, op, a, b)
  while job.request do
    _M.advance(state, job, attempts.perform(state, job.request))
  end
  if job.err then return nil, job.err end
  return job.res
end

return _M

-- toolzz.calls: an operation and its arguments -> requests -> its result.
--
-- A call is a job { op, step, request, res, err }. Read top to bottom:
--   run(state, op, a, b)  -> res | nil, err: start, then drive
--   start(...)            -> job: check() the arguments (the id, the body
--                            against the operation's schema, with defaults,
--                            encoded), then begin() its first request
--   drive(state, job)     -> job, ended: perform each request
--                            (toolzz.attempts) and advance()
--   advance(state, job, res | nil, err) -> job: its next request (a patch:
--                            the GET, then the PUT) or its end
-- A batch checks every item first (check, dry_run_result) and begins each
-- one only when it starts (toolzz.batch, toolzz.batch_drive).
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local validate = require "toolzz.validate"
local attempts = require "toolzz.attempts"
local patch = require "toolzz.patch"
local raw_copy = require("toolzz.tables").raw_copy

local type, ipairs, setmetatable, rawget, pcall, tostring = type, ipairs, setmetatable, rawget, pcall, tostring
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

-- A bad id (of the argument named name, "id" by default) -> its problem.
local function id_problem(id, name)
  return {
    path = name or "id",
    message = type(id) == "string" and "must be a UUID (8-4-4-4-12 hexadecimal digits)"
      or ("must be a UUID string, got " .. type(id)),
  }
end

-- what (the argument's name), v -> the problem of v not being a table.
local function not_a_table(what, v)
  return { path = "", message = what .. " must be a table, got " .. type(v) }
end

-- state, op -> the list of secrets to scrub from the errors of a call of
-- op: a fresh list holding the token when its body may carry secrets
-- (check() appends them), else the client's shared { token }.
local function secrets_for(state, op)
  local spec = op.schema
  if spec and (spec.has_secrets or not state.cfg.strict) then return { state.cfg.token } end
  return state.secrets
end
_M.secrets_for = secrets_for

-- Validate and encode a body for spec (client defaults applied unless
-- no_defaults): returns its JSON, or nil, validation error. The body's
-- secrets are appended to secrets; problems (a list or nil) may hold
-- earlier ones.
local function encode_body(state, spec, fields, secrets, problems, no_defaults)
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
  return json
end

-- The changes of a patch (id, changes) -> the checked raw copy of changes,
-- or nil, validation error.
local function check_patch(state, op, id, changes)
  local problems = {}
  if not validate.is_uuid(id) then problems[1] = id_problem(id) end
  if type(changes) ~= "table" then
    problems[#problems + 1] = not_a_table("changes", changes)
  else
    changes = raw_copy(changes)
    local schema = op.patch.write.schema
    validate.check_changes(schema, changes, state.cfg.strict, problems)
    patch.masked_changes(schema, changes, problems)
    local _, json_problems = encode(changes, state.cfg.max_body_bytes) -- what JSON cannot carry
    if json_problems then merge_problems(problems, json_problems) end
  end
  if #problems > 0 then return nil, errors.redact(errors.validation(problems), state.secrets) end
  return changes
end

-- Check a call of op before anything is made for it: id (nil when op takes
-- none) and fields (the body, or a patch's changes; nil when op takes
-- none). Returns what the call sends: the JSON body (false when op has
-- none), for a patch the checked copy of the changes; or nil, err
-- (validation; config when the client is closed). The body's secrets are
-- appended to secrets (secrets_for(state, op)).
local function check(state, op, id, fields, secrets)
  if state.closed then return nil, errors.config("the client is closed") end
  if op.patch then return check_patch(state, op, id, fields) end
  local problems
  if op.after and not validate.is_uuid(id) then problems = { id_problem(id, op.id_name) } end
  if op.schema then return encode_body(state, op.schema, fields, secrets, problems) end
  if problems then return nil, errors.validation(problems) end
  return false
end
_M.check = check

-- The request of op: { op, method, url, body, secrets, idempotent }.
local function new_request(state, op, id, body, secrets)
  local prefix = state.prefix[op]
  return {
    op = op, method = op.method, url = id and (prefix .. id .. op.after) or prefix,
    body = body or nil, secrets = secrets or state.secrets, idempotent = op.idempotent,
  }
end

-- The request of a plain (not patch) call of op with arguments a, b, or
-- nil, validation error (for toolzz.testing: what a call would send).
function _M.request(state, op, a, b)
  local id, fields = nil, a
  if op.takes_id then id, fields = a, b end
  local secrets = secrets_for(state, op)
  local body, err = check(state, op, id, fields, secrets)
  if body == nil then return nil, err end
  return new_request(state, op, id, body, secrets)
end

-- A write in dry-run mode: what would be sent, nothing sent.
-- Each result made here is remembered (weakly), so that a printer can tell
-- it from a server record that merely looks like one (toolzz.cli).
local dry_results = setmetatable({}, { __mode = "k" })
-- request -> its dry-run result (remembered).
local function dry_result(request)
  local res = { dry_run = true, method = request.method, url = request.url, body = request.body or "" }
  dry_results[res] = true
  return res
end
-- v -> true only for a dry-run result made here.
function _M.is_dry_result(v) return dry_results[v] == true end

-- A checked plain call (id, body, secrets as check() left them) -> its
-- dry-run result when it is a write and the client is in dry-run mode,
-- else nil (the call is to be sent). A patch's dry run ends after its GET.
local function dry_run_result(state, op, id, body, secrets)
  if op.patch or not (op.writes and state.cfg.dry_run) then return nil end
  return dry_result(new_request(state, op, id, body, secrets))
end
_M.dry_run_result = dry_run_result

-- End a job with a result or an error (marked with the call and step).
-- Returns the job.
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

-- op -> a new job, not started.
local function new_job(op)
  return { op = op, step = op.patch and "get" or nil, request = nil, res = nil } -- sized for what comes
end

-- A private hook of the patch path, for toolzz.sync.apply: a batch item
-- { "calcom.patch", id, changes, guard } whose guard table holds a function
-- under this key (guard[GUARD] = function(record) -> body | nil, err) has
-- that function make the PUT's whole body from the record its GET read, in
-- place of body_of + merge (changes are then not used); nil, err ends the
-- item with err, no PUT. Not part of the public API: only code that holds
-- this key can make such an item.
local GUARD = setmetatable({}, { __tostring = function() return "toolzz.calls.GUARD" end })
_M.GUARD = GUARD

-- A batch item's 4th element -> its guard function, or nil (anything else).
function _M.guard_of(v)
  if type(v) ~= "table" then return nil end
  local f = rawget(v, GUARD)
  if type(f) ~= "function" then return nil end
  return f
end

-- A checked call (check() gave body) -> its job, with its first request.
-- guard: a patch's guard function (see GUARD), or nil.
local function begin(state, op, id, body, secrets, guard)
  local job = new_job(op)
  if op.patch then
    job.id, job.changes, job.guard = id, body, guard
    job.request = new_request(state, op.patch.read, id)
  else
    job.request = new_request(state, op, id, body, secrets)
  end
  return job
end
_M.begin = begin

-- A call that ends before it starts, with err (invalid, or a batch's queued
-- item when the batch stops) -> the job start() would have ended the same way.
local function failed(op, err)
  return finish(new_job(op), nil, err)
end
_M.failed = failed

-- Start a call of op with arguments a, b -> a job whose .request is to be
-- performed next, or whose .res / .err is already final (invalid, closed
-- client, dry-run write).
function _M.start(state, op, a, b)
  local id, fields = nil, a
  if op.takes_id then id, fields = a, b end
  local secrets = secrets_for(state, op)
  local body, err = check(state, op, id, fields, secrets)
  if body == nil then return failed(op, err) end
  local dry = state.cfg.dry_run and dry_run_result(state, op, id, body, secrets)
  if dry then return finish(new_job(op), dry) end
  return begin(state, op, id, body, secrets)
end

-- A guarded patch's record read (res) -> the body its guard makes, or
-- nil, err (the guard's refusal, or its failure as a config error,
-- scrubbed of the secrets read and the client's).
local function guarded_body(state, job, res, read)
  local ok, body, err = pcall(job.guard, res)
  if ok and type(body) == "table" then return body end
  for i = 1, #state.secrets do read[#read + 1] = state.secrets[i] end
  if ok and type(err) == "table" then return nil, errors.redact(err, read) end
  return nil, errors.new("config", errors.scrub("the patch's guard failed: " .. tostring(ok and err or body), read))
end

-- A patch whose GET answered res -> the job with its PUT as next request,
-- or ended (another record, unfit, invalid merge, a guard's refusal, or a
-- dry run).
local function advance_patch(state, job, res)
  local other = patch.other_record(res, job.id)
  if other then return finish(job, nil, errors.new("decode", other)) end
  job.step = "update"
  local write = job.op.patch.write
  local body, read
  if job.guard then -- the guard judges the record's shape itself
    read = patch.secrets_of(write.schema, patch.body_of(write.schema, res), {})
    local refusal
    body, refusal = guarded_body(state, job, res, read)
    if not body then return finish(job, nil, refusal) end
  else
    local problems = patch.unfit(write.schema, res)
    if #problems > 0 then return finish(job, nil, errors.redact(errors.validation(problems), state.secrets)) end
    local base = patch.body_of(write.schema, res)
    read = patch.secrets_of(write.schema, base, {}) -- kept secret even when changed
    patch.masked_reads(write.schema, res, base, job.changes, problems)
    body = patch.merge(write.schema, base, job.changes, problems)
    if #problems > 0 then
      for i = 1, #state.secrets do read[#read + 1] = state.secrets[i] end
      return finish(job, nil, errors.redact(errors.validation(problems), read))
    end
  end
  local secrets = { state.cfg.token }
  local json, err = encode_body(state, write.schema, body, secrets, nil, true)
  if not json then return finish(job, nil, errors.redact(err, read)) end
  for i = 1, #read do secrets[#secrets + 1] = read[i] end
  local request = new_request(state, write, job.id, json, secrets)
  if state.cfg.dry_run then return finish(job, dry_result(request)) end
  job.request = request
  return job
end

-- After the job's request was performed with (res | nil, err): the job,
-- with its next request, or ended.
function _M.advance(state, job, res, err)
  if err then return finish(job, nil, err) end
  if job.step ~= "get" then return finish(job, res) end
  return advance_patch(state, job, res)
end

-- Perform the job's requests one after another (toolzz.attempts), each
-- with its retries, until it ends -> the job, ended. should_stop (a
-- batch's, optional) is handed to the attempts; once it answers true, a
-- next request is not sent and the job ends with unsent(job).
local function drive(state, job, should_stop, unsent)
  local perform, advance = attempts.perform, _M.advance
  while job.request do
    advance(state, job, perform(state, job.request, should_stop))
    if job.request and should_stop and should_stop() then advance(state, job, nil, unsent(job)) end
  end
  return job
end
_M.drive = drive

-- Perform a single call -> the result, or nil, err.
function _M.run(state, op, a, b)
  local job = drive(state, _M.start(state, op, a, b))
  if job.err then return nil, job.err end
  return job.res
end

return _M

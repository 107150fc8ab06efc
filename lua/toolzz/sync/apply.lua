-- toolzz.sync.apply: make the changes of a plan (CONTRACT Part 3, "Apply").
--
-- Before any write: the plan's checksum (a saved plan's is recomputed from
-- its content; opts.checksum must match), failed matches (always refused),
-- the safety limits and the wrong-unit guard (opts.force overrides), the
-- secret references it sends (resolved now: a missing one is a config
-- error), and, for a saved plan, a re-read of what it updates and a
-- re-list of where it creates (anything changed: refused as stale). Then
-- the updates, as one depth-first batch of guarded patches (toolzz.calls
-- GUARD) at opts.concurrency: each re-reads its record and, when it did
-- not change since the plan, PUTs it at once (its read and write one round
-- trip apart, with no wave to wait for); a changed one is skipped, no PUT.
-- Then creates, each sent once. Every change gets an outcome in the report.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local kinds = require "toolzz.sync.kinds"
local load = require "toolzz.sync.load"
local diff = require "toolzz.sync.diff"
local patch = require "toolzz.patch"
local calls = require "toolzz.calls"
local planner = require "toolzz.sync.plan"
local raw_copy = require("toolzz.tables").raw_copy

local type, ipairs, pairs, setmetatable, pcall, tostring, tonumber, rawget =
  type, ipairs, pairs, setmetatable, pcall, tostring, tonumber, rawget
local ceil, max = math.ceil, math.max
local concat = table.concat
local getenv = os.getenv

local _M = {}

local by_name = kinds.by_name
local array_mt = core.array_mt
_M.DEFAULT_CONCURRENCY = 4

-- kind, message, extra fields -> nil, an error of sync.apply
local function refuse(kind, message, extra)
  extra = extra or {}
  extra.op = "sync.apply"
  return nil, errors.new(kind, message, extra)
end

-- A saved plan's changes, checked for the shape apply reads: nil when fine,
-- else a message.
local function plan_shape_problem(plan)
  if plan.toolzz_plan ~= 1 then return "toolzz_plan must be 1" end
  if type(plan.checksum) ~= "string" then return "the plan has no checksum" end
  for _, name in ipairs { "changes", "failed", "unmanaged" } do
    if type(plan[name]) ~= "table" then return "the plan has no " .. name .. " list" end
  end
  if type(plan.summary) ~= "table" then return "the plan has no summary" end
  local safety = plan.safety
  if safety ~= nil and (type(safety) ~= "table" or (safety.maxUpdates ~= nil and type(safety.maxUpdates) ~= "number")) then
    return "safety must be an object with a number maxUpdates"
  end
  if plan.unmatched ~= nil and type(plan.unmatched) ~= "table" then return "unmatched must be a list" end
  for _, name in ipairs { "failed", "unmatched" } do -- what the refusals read
    for i, entry in ipairs(plan[name] or {}) do
      if type(entry) ~= "table" then return name .. "[" .. i .. "] is not an entry" end
    end
  end
  for i, c in ipairs(plan.changes) do
    local kind = type(c) == "table" and by_name[c.kind]
    if not kind or type(c.unit) ~= "string" or type(c.key) ~= "string" then
      return "changes[" .. i .. "] is not a change of this toolzz"
    end
    if c.action == "update" then
      if type(c.id) ~= "string" or type(c.diff) ~= "table" or type(c.fingerprint) ~= "string" then
        return "changes[" .. i .. "] is an update without id, diff or fingerprint"
      end
      for j, entry in ipairs(c.diff) do
        if type(entry) ~= "table" or type(entry.path) ~= "string" or entry.path == "" then
          return "changes[" .. i .. "].diff[" .. j .. "] has no path"
        end
      end
    elseif c.action == "create" then
      if type(c.fields) ~= "table" then return "changes[" .. i .. "] is a create without fields" end
    else
      return "changes[" .. i .. "].action must be create or update"
    end
  end
end

-- The secret values the changes send: resolved[change][dotted path] =
-- value; or nil, a config error naming every reference that cannot be read.
local function resolve_secrets(changes)
  local resolved, problems = {}, {}
  -- a reference ({ env } / { file }) -> its value, or nil (the problem noted)
  local function value_of(ref, where)
    if type(ref) ~= "table" or (type(ref.env) ~= "string" and type(ref.file) ~= "string") then
      problems[#problems + 1] = where .. ": a secret that is not a reference ({ env } or { file })"
      return nil
    end
    if type(ref.env) == "string" then
      local v = getenv(ref.env)
      if v == nil or v == "" then problems[#problems + 1] = where .. ": environment variable " .. ref.env .. " is not set" end
      return v
    end
    local v, why = load.read_text(ref.file)
    if not v or v == "" then
      problems[#problems + 1] = where .. ": cannot read " .. ref.file .. (why and (": " .. why) or " (empty)")
    end
    return v
  end
  for _, c in ipairs(changes) do
    local kind, values = by_name[c.kind], {}
    local where = c.unit .. " " .. c.kind .. " " .. c.key
    if c.action == "create" then
      for i, path in ipairs(kind.secret_paths) do
        local ref = kinds.get(c.fields, path)
        if ref ~= nil then values[kind.secret_names[i]] = value_of(ref, where) end
      end
    else
      for _, entry in ipairs(c.diff) do
        if entry.secret then values[entry.path] = value_of(entry.new, where) end
      end
    end
    resolved[c] = values
  end
  if #problems > 0 then
    return nil, errors.new("config", "secret references cannot be resolved: " .. concat(problems, "; "), { op = "sync.apply" })
  end
  return resolved
end

-- Refusals before any write: checksum, failed matches, safety, guard.
local function refusal(plan, opts)
  if opts.checksum ~= nil and opts.checksum ~= plan.checksum then
    return refuse("stale", "the plan's checksum is " .. tostring(plan.checksum) .. ", not "
      .. tostring(opts.checksum) .. ": this is not the plan that was reviewed")
  end
  if #plan.failed > 0 then
    return refuse("unsafe", #plan.failed .. " record(s) could not be matched (" .. tostring(plan.failed[1].reason)
      .. "): fix the file first", { failed = plan.failed })
  end
  if opts.force then return true end
  local updates = 0
  for _, c in ipairs(plan.changes) do
    if c.action == "update" then updates = updates + 1 end
  end
  local matched = (tonumber(plan.summary.update) or 0) + (tonumber(plan.summary.unchanged) or 0)
  local limit = plan.safety and tonumber(plan.safety.maxUpdates) or max(5, ceil(0.3 * matched))
  if updates > limit then
    return refuse("unsafe", "the plan updates " .. updates .. " existing records, more than the limit of " .. limit
      .. " (safety.maxUpdates): use force to apply it", { updates = updates, limit = limit })
  end
  local guard = plan.unmatched
  if type(guard) == "table" and #guard > 0 then
    return refuse("unsafe", "unit " .. tostring(guard[1].unit) .. " has " .. tostring(guard[1].kind)
      .. " records on the server and in the file, and not one matched: probably the wrong unit (use force if not)",
      { unmatched = guard })
  end
  return true
end

-- Does the re-read server record still match what the plan saw?
local function unchanged_since_plan(change, kind, record)
  local body, odd = diff.normalize(kind, record)
  if #odd > 0 then return nil end
  if diff.fingerprint(kind, body) ~= change.fingerprint then return nil end
  if change.updatedAt and kind.updated_at and record[kind.updated_at] ~= change.updatedAt then return nil end
  return body
end

-- A saved plan: re-read what it updates and re-list where it creates; nil
-- when nothing changed, else a stale error (or the read's error).
local function stale_check(client, plan, concurrency)
  local items, what, listed = {}, {}, {}
  for _, c in ipairs(plan.changes) do
    local kind = by_name[c.kind]
    if c.action == "update" then
      items[#items + 1] = { kind.ops.get, c.id }
      what[#what + 1] = c
    elseif not listed[c.unit .. c.kind] then
      listed[c.unit .. c.kind] = true
      items[#items + 1] = { kind.ops.list, c.unit }
      what[#what + 1] = { list = true, unit = c.unit, kind = c.kind }
    end
  end
  if #items == 0 then return nil end
  local results, err = client.batch(items, { concurrency = concurrency })
  if not results then return err end
  local stale, names = {}, {}
  for i, result in ipairs(results) do
    local w = what[i]
    local kind = by_name[w.kind]
    if result.err and not (result.err.status == 404 and not w.list) then return result.err end
    if w.list then
      local present = {}
      for _, item in ipairs(result.res) do
        if type(item) == "table" then present[item[kind.natural_key] or false] = item.id or true end
      end
      for _, c in ipairs(plan.changes) do
        if c.action == "create" and c.unit == w.unit and c.kind == w.kind and present[c.fields[kind.natural_key]] then
          stale[#stale + 1] = { unit = c.unit, kind = c.kind, key = c.key, reason = "exists now" }
        end
      end
    elseif result.err or not unchanged_since_plan(w, kind, result.res) then
      stale[#stale + 1] = { unit = w.unit, kind = w.kind, key = w.key, id = w.id, reason = "changed since the plan" }
    end
  end
  if #stale == 0 then return nil end
  for i, s in ipairs(stale) do names[i] = s.key .. " (" .. s.reason .. ")" end
  return errors.new("stale", "the server changed since the plan was made: " .. concat(names, ", ")
    .. ": make a new plan", { op = "sync.apply", records = stale })
end

-- An error as the report shows it, scrubbed of every secret value this
-- apply handled (a server may echo another record's token in an error).
local function error_entry(err, secret_values)
  if type(err) ~= "table" then return { kind = "config", message = errors.scrub(tostring(err), secret_values) } end
  local message, request_id = err.message, err.request_id
  if type(message) == "string" then message = errors.scrub(message, secret_values) end
  if type(request_id) == "string" then request_id = errors.scrub(request_id, secret_values) end
  return { kind = err.kind, status = err.status, message = message, request_id = request_id }
end

-- A copy of a create's fields with its secret references' values in.
local function create_body(kind, fields, values)
  local body = {}
  for k, v in pairs(fields) do body[k] = v end
  for i, path in ipairs(kind.secret_paths) do
    if values[kind.secret_names[i]] ~= nil then
      local t, src = body, fields
      for j = 1, #path - 1 do
        local copy = {}
        for k, v in pairs(src[path[j]]) do copy[k] = v end
        t[path[j]] = copy
        t, src = copy, src[path[j]]
      end
      t[path[#path]] = values[kind.secret_names[i]]
    end
  end
  return body
end

-- Marks the error of an update skipped at its re-read (stale).
local STALE = setmetatable({}, { __tostring = function() return "stale at its re-read" end })

-- The guard of change c's patch (toolzz.calls.GUARD): the record its GET
-- read -> the body apply writes (the read record as an update body with
-- the plan's differences written in, secrets resolved from values), or nil,
-- a stale error when the record changed since the plan (fingerprint,
-- updatedAt, shape), or a validation error when it holds a secret masked
-- that the plan does not replace: no PUT then. The secrets it read go to
-- secret_values.
local function guard(c, kind, values, secret_values)
  return { [calls.GUARD] = function(record)
    local body = unchanged_since_plan(c, kind, record)
    if not body then
      return nil, errors.new("stale", "the record changed since the plan was made: not written", { [STALE] = true })
    end
    patch.secrets_of(kind.schema, body, secret_values)
    -- a token the record holds masked is never sent back (it would overwrite
    -- the real one), unless the plan sends a new one (--update-secrets)
    local given = {}
    for _, d in ipairs(c.diff or {}) do
      if d.secret then kinds.set(given, kinds.split(d.path), "") end
    end
    local problems = patch.masked_reads(kind.schema, record, body, given, {})
    if #problems > 0 then return nil, errors.validation(problems) end
    return diff.apply_diff(kind, body, c.diff, values)
  end }
end

-- The outcome of a create that ended with err.
local function create_outcome(err)
  if (err.kind == "network" or err.kind == "timeout") and not err.status then return "unknown" end
  return "failed"
end

-- Run the writes of plan; returns the report.
local function write_all(client, plan, secrets, opts)
  local concurrency = opts.concurrency or _M.DEFAULT_CONCURRENCY
  local entries, updates, creates = {}, {}, {}
  local total, done = #plan.changes, 0
  for i, c in ipairs(plan.changes) do
    entries[i] = { unit = c.unit, kind = c.kind, key = c.key, action = c.action, id = c.id }
    if c.action == "update" then updates[#updates + 1] = i else creates[#creates + 1] = i end
  end
  local secret_values = {} -- every secret value sent or read back, to scrub errors of
  for _, values in pairs(secrets) do
    for _, v in pairs(values) do secret_values[#secret_values + 1] = v end
  end
  -- record the i-th change's outcome (and error, new id); tell on_progress
  local function finish(i, outcome, err, id)
    local e = entries[i]
    e.outcome = outcome
    if id then e.id = id end
    if err then e.error = error_entry(err, secret_values) end
    done = done + 1
    if opts.on_progress then pcall(opts.on_progress, done, total, i, e) end
  end
  if #updates > 0 then -- one depth-first batch of guarded patches: each PUT one round trip after its GET
    local items = {}
    for j, i in ipairs(updates) do
      local c = plan.changes[i]
      local kind = by_name[c.kind]
      items[j] = { kind.ops.patch, c.id, {}, guard(c, kind, secrets[c], secret_values) }
    end
    local _, err = client.batch(items, { concurrency = concurrency, keep_results = false,
      on_result = function(j, r)
        if not r.err then finish(updates[j], "applied")
        elseif rawget(r.err, STALE) then finish(updates[j], "skipped", r.err)
        else finish(updates[j], "failed", r.err) end
      end })
    if err then
      for _, i in ipairs(updates) do
        if not entries[i].outcome then finish(i, "failed", err) end
      end
    end
  end
  if #creates > 0 then
    local items = {}
    for j, i in ipairs(creates) do
      local c = plan.changes[i]
      local kind = by_name[c.kind]
      items[j] = { kind.ops.create, create_body(kind, c.fields, secrets[c]) }
    end
    local results, err = client.batch(items, { concurrency = concurrency })
    for j, i in ipairs(creates) do
      local r = results and results[j] or { err = err }
      if r.err then finish(i, create_outcome(r.err), r.err)
      else finish(i, "applied", nil, type(r.res) == "table" and type(r.res.id) == "string" and r.res.id or nil) end
    end
  end
  local summary = { applied = 0, failed = 0, skipped = 0, unknown = 0 }
  for _, e in ipairs(entries) do summary[e.outcome] = summary[e.outcome] + 1 end
  return { toolzz_report = 1, ok = summary.applied == total, summary = summary,
           changes = setmetatable(entries, array_mt) }
end

-- client.sync.apply(plan_or_desired, opts) -> report, or nil, err (stale,
-- unsafe, config, validation, or a read's error; nothing written then).
-- opts: checksum, force, update_secrets, concurrency (4), on_progress,
-- base_dir (for a desired table's { file } paths).
function _M.apply(client, input, opts)
  if opts ~= nil and type(opts) ~= "table" then return refuse("config", "opts must be a table, got " .. type(opts)) end
  opts = opts or {}
  local c = opts.concurrency
  if c ~= nil and (type(c) ~= "number" or c < 1 or c > 256 or c ~= math.floor(c)) then
    return refuse("config", "concurrency must be a whole number from 1 to 256")
  end
  if opts.on_progress ~= nil and type(opts.on_progress) ~= "function" then
    return refuse("config", "on_progress must be a function")
  end
  if type(input) ~= "table" then
    return refuse("validation", "apply takes a plan or a desired table, got " .. type(input))
  end
  local plan
  local saved = rawget(input, "toolzz_plan") ~= nil
  if saved then
    plan = raw_copy(input) -- read raw: no metamethod of the caller's runs
    local problem = plan_shape_problem(plan)
    if problem then return nil, errors.new("validation", "not a plan: " .. problem, { op = "sync.apply",
      fields = { { path = "", message = problem } } }) end
    if planner.checksum(plan) ~= plan.checksum then
      return refuse("stale", "the plan's content does not match its checksum: it was changed after it was made")
    end
  else
    local err
    plan, err = planner.plan(client, input, { concurrency = opts.plan_concurrency, base_dir = opts.base_dir,
      update_secrets = opts.update_secrets })
    if not plan then return nil, err end
  end
  local ok, err = refusal(plan, opts)
  if not ok then return nil, err end
  local secrets
  secrets, err = resolve_secrets(plan.changes)
  if not secrets then return nil, err end
  if saved then
    err = stale_check(client, plan, opts.concurrency or _M.DEFAULT_CONCURRENCY)
    if err then return nil, err end
  end
  local report = write_all(client, plan, secrets, opts)
  report.checksum = plan.checksum
  return report
end

return _M

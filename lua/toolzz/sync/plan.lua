-- toolzz.sync.plan: a desired table and the server's lists -> the plan, a
-- table that is also its JSON form (CONTRACT Part 3, "The plan"). Reading
-- the lists (one list call per kind and unit, all in one batch) is
-- separate from building the plan from them, so each can be used alone.
local core = require "toolzz.core"
local null = require("cjson").null
local errors = require "toolzz.errors"
local kinds = require "toolzz.sync.kinds"
local load = require "toolzz.sync.load"
local match = require "toolzz.sync.match"
local diff = require "toolzz.sync.diff"
local canonical = require "toolzz.sync.canonical"

local type, ipairs, setmetatable = type, ipairs, setmetatable

local _M = {}

local array_mt = core.array_mt
_M.DEFAULT_CONCURRENCY = 8

-- a new empty table written as a JSON array
local function array()
  return setmetatable({}, array_mt)
end

-- The entry a plan's `failed` list holds for a match that failed.
local function failed_entry(unit_id, kind, f)
  local entry = { unit = unit_id, kind = kind.name, key = f.key, reason = f.reason }
  if f.id then entry.id = f.id end
  if f.ids then entry.ids = setmetatable(f.ids, array_mt) end
  if f.paths then entry.paths = setmetatable(f.paths, array_mt) end
  if f.problems then entry.problems = setmetatable(f.problems, array_mt) end
  return entry
end

-- The plan's checksum: the digest of its content without the checksum.
function _M.checksum(plan)
  local saved = plan.checksum
  plan.checksum = nil
  local digest = canonical.digest(plan)
  plan.checksum = saved
  return digest
end

-- Plan one unit and kind into plan (its lists and counters).
local function plan_kind(plan, unit, kind, items, update_secrets)
  local records = unit[kind.name] or {}
  local m = match.match(kind, records, items)
  local summary = plan.summary
  for _, i in ipairs(m.bad_items) do
    local f = { reason = "unexpected-shape", paths = { "[" .. i .. "].id" } }
    plan.failed[#plan.failed + 1] = failed_entry(unit.unit, kind, f)
  end
  for _, f in ipairs(m.failed) do plan.failed[#plan.failed + 1] = failed_entry(unit.unit, kind, f) end
  for _, pair in ipairs(m.matched) do
    local record, server = pair.record, pair.server
    local body, odd = diff.normalize(kind, server)
    if #odd > 0 then
      plan.failed[#plan.failed + 1] = failed_entry(unit.unit, kind,
        { key = record.key, reason = "unexpected-shape", id = server.id, paths = odd })
    else
      local changes = diff.diff(kind, record, body, update_secrets)
      if #changes == 0 then
        summary.unchanged = summary.unchanged + 1
      else
        summary.update = summary.update + 1
        local change = { unit = unit.unit, kind = kind.name, key = record.key, action = "update", id = server.id,
          adopted = pair.adopted, fingerprint = diff.fingerprint(kind, body),
          diff = setmetatable(changes, array_mt) }
        local stamp = kind.updated_at and server[kind.updated_at]
        if type(stamp) == "string" then change.updatedAt = stamp end
        plan.changes[#plan.changes + 1] = change
      end
      for _, name in ipairs(kind.create_only) do
        if record[name] ~= nil then
          plan.notes[#plan.notes + 1] = { unit = unit.unit, kind = kind.name, key = record.key, path = name,
            message = name .. " is sent only when a record is created: the existing record keeps its own" }
        end
      end
    end
  end
  for _, record in ipairs(m.creates) do
    local fields = diff.create_fields(kind, record, unit.unit)
    local problems = diff.create_problems(kind, fields)
    if #problems > 0 then
      plan.failed[#plan.failed + 1] = failed_entry(unit.unit, kind,
        { key = record.key, reason = "invalid", problems = problems })
    else
      summary.create = summary.create + 1
      plan.changes[#plan.changes + 1] = { unit = unit.unit, kind = kind.name, key = record.key, action = "create",
        fields = fields }
    end
  end
  for _, server in ipairs(m.unmanaged) do
    local name = server[kind.natural_key]
    local entry = { unit = unit.unit, kind = kind.name, id = server.id }
    entry[kind.natural_key] = type(name) == "string" and core.utf8_valid(name) and name or null
    if unit.exclusive then entry.exclusive = true end
    plan.unmanaged[#plan.unmanaged + 1] = entry
    summary.unmanaged = summary.unmanaged + 1
  end
  -- the wrong-unit guard: records on the server and in the file, and not one matched
  if #records > 0 and #m.matched == 0 and (#m.unmanaged > 0 or #m.bad_items > 0) then
    plan.unmatched[#plan.unmatched + 1] = { unit = unit.unit, kind = kind.name, server = #items, file = #records }
  end
end

-- A checked desired table and lists[u][kind name] (the server's list for
-- the u-th unit) -> the plan. opts.update_secrets: every record with a
-- secret reference sends it (an update).
function _M.build(desired, lists, opts)
  local update_secrets = type(opts) == "table" and opts.update_secrets == true
  local plan = {
    toolzz_plan = 1, desired = canonical.digest(desired),
    summary = { create = 0, update = 0, unchanged = 0, unmanaged = 0, failed = 0 },
    changes = array(), failed = array(), unmanaged = array(), notes = array(), unmatched = array(),
  }
  if desired.safety and desired.safety.maxUpdates then plan.safety = { maxUpdates = desired.safety.maxUpdates } end
  for u, unit in ipairs(desired.units) do
    for _, kind in ipairs(kinds.list) do
      plan_kind(plan, unit, kind, lists[u][kind.name], update_secrets)
    end
  end
  plan.summary.failed = #plan.failed
  plan.checksum = _M.checksum(plan)
  return plan
end

-- The list calls a plan makes: one per kind and unit, as batch items, and
-- where each one's answer goes.
function _M.list_requests(desired)
  local items, slots = {}, {}
  for u, unit in ipairs(desired.units) do
    for _, kind in ipairs(kinds.list) do
      items[#items + 1] = { kind.ops.list, unit.unit }
      slots[#slots + 1] = { u, kind.name }
    end
  end
  return items, slots
end

-- Read the lists of desired's units with client (batch, concurrency) ->
-- lists[u][kind name], or nil, err (the first list that failed).
function _M.read_lists(client, desired, opts)
  local items, slots = _M.list_requests(desired)
  local lists = {}
  for u = 1, #desired.units do lists[u] = {} end
  if #items == 0 then return lists end
  local results, err = client.batch(items, { concurrency = opts.concurrency or _M.DEFAULT_CONCURRENCY,
    on_progress = opts.on_progress })
  if not results then return nil, err end
  for i, result in ipairs(results) do
    if result.err then return nil, result.err end
    lists[slots[i][1]][slots[i][2]] = result.res
  end
  return lists
end

-- client.sync.plan(desired, opts) -> plan, or nil, err. desired is a table
-- (decoded or built; checked again here, `{ file }` paths from
-- opts.base_dir). opts: concurrency (8), update_secrets, on_progress.
function _M.plan(client, desired, opts)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, errors.new("config", "opts must be a table, got " .. type(opts), { op = "sync.plan" })
  end
  opts = opts or {}
  local checked, err = load.check(desired, opts.base_dir)
  if not checked then
    err.op = "sync.plan"
    return nil, err
  end
  local lists
  lists, err = _M.read_lists(client, checked, opts)
  if not lists then return nil, err end
  return _M.build(checked, lists, opts)
end

return _M

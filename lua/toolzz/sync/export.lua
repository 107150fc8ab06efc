-- toolzz.sync.export: what exists in some units -> a desired table that
-- plans with no change (CONTRACT Part 3, "Export"): every in-scope record
-- with its id pinned, a key made from its title/name (unique in the file),
-- its update fields, secrets as `{ "env": … }` placeholders (never the value
-- the server echoes), no create-only fields. Units keep the order given;
-- records are sorted by natural key, then id, so the same state exports to
-- the same bytes (toolzz.sync.canonical).
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local validate = require "toolzz.validate"
local kinds = require "toolzz.sync.kinds"
local diff = require "toolzz.sync.diff"
local planner = require "toolzz.sync.plan"

local type, ipairs, pairs, setmetatable = type, ipairs, pairs, setmetatable
local sort, concat = table.sort, table.concat
local lower, gsub, upper = string.lower, string.gsub, string.upper

local _M = {}

local array_mt = core.array_mt

-- A key from a title: lowercase letters and digits, words joined by "-";
-- made unique in used by a "-2", "-3", … suffix.
local function key_of(name, fallback, used)
  local base = gsub(gsub(lower(type(name) == "string" and name or ""), "[^%w]+", "-"), "^%-*(.-)%-*$", "%1")
  if base == "" then base = fallback end
  local key, n = base, 1
  while used[key] do
    n = n + 1
    key = base .. "-" .. n
  end
  used[key] = true
  return key
end

-- The environment variable a secret's placeholder names.
local function env_name(key, path)
  local last = path[#path]
  return upper(gsub("TOOLZZ_" .. last .. "_" .. key, "[^%w]", "_"))
end

-- One server record -> its file record (key assigned by the caller).
local function file_record(kind, body, id, key)
  local record = { key = key, id = id }
  for name, value in pairs(body) do record[name] = value end
  record[kind.unit_field] = nil
  for _, path in ipairs(kind.secret_paths) do
    if kind.schema.fields[path[1]] and type(kinds.get(record, { path[1] })) == "table" then
      kinds.set(record, path, { env = env_name(key, path) })
    else
      kinds.set(record, path, nil)
    end
  end
  return record
end

-- unit ids and the lists read for them -> the desired table, or nil, err
-- (a record without the documented shape: never exported from a guess).
function _M.build(unit_ids, lists)
  local doc = { toolzz = 1, units = setmetatable({}, array_mt) }
  local used, odd = {}, {}
  for u, unit_id in ipairs(unit_ids) do
    local unit = { unit = unit_id }
    for _, kind in ipairs(kinds.list) do
      local rows = {}
      for i, item in ipairs(lists[u][kind.name]) do
        local body, problems = diff.normalize(kind, item)
        if type(item) ~= "table" or type(item.id) ~= "string" then
          odd[#odd + 1] = unit_id .. " " .. kind.name .. " [" .. i .. "]: no id"
        elseif #problems > 0 then
          odd[#odd + 1] = unit_id .. " " .. kind.name .. " " .. item.id .. ": " .. concat(problems, ", ")
        else
          local name = item[kind.natural_key]
          rows[#rows + 1] = { name = type(name) == "string" and name or "", id = item.id, body = body }
        end
      end
      sort(rows, function(a, b)
        if a.name ~= b.name then return a.name < b.name end
        return a.id < b.id
      end)
      local records = setmetatable({}, array_mt)
      for i, row in ipairs(rows) do
        records[i] = file_record(kind, row.body, row.id, key_of(row.name, kind.name, used))
      end
      unit[kind.name] = records
    end
    doc.units[u] = unit
  end
  if #odd > 0 then
    return nil, errors.new("decode", "records without the documented shape (not exported): " .. concat(odd, "; "),
      { op = "sync.export" })
  end
  return doc
end

-- client.sync.export(unit_ids, opts) -> desired table, or nil, err.
-- opts: concurrency (8), on_progress.
function _M.export(client, unit_ids, opts)
  opts = type(opts) == "table" and opts or {}
  if type(unit_ids) == "string" then unit_ids = { unit_ids } end
  if type(unit_ids) ~= "table" or #unit_ids == 0 then
    return nil, errors.new("validation", "export takes a list of unit ids", { op = "sync.export",
      fields = { { path = "", message = "must be a non-empty list of unit ids" } } })
  end
  local problems, seen = {}, {}
  for i, id in ipairs(unit_ids) do
    if not validate.is_uuid(id) then problems[#problems + 1] = { path = "[" .. i .. "]", message = "must be a UUID (a unit id)" }
    elseif seen[id] then problems[#problems + 1] = { path = "[" .. i .. "]", message = "is listed twice" } end
    seen[id] = true
  end
  if #problems > 0 then
    local err = errors.validation(problems)
    err.op = "sync.export"
    return nil, err
  end
  local desired = { units = {} }
  for i, id in ipairs(unit_ids) do desired.units[i] = { unit = id } end
  local lists, err = planner.read_lists(client, desired, opts)
  if not lists then return nil, err end
  return _M.build(unit_ids, lists)
end

return _M

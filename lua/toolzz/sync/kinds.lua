-- toolzz.sync.kinds: what a desired-state file record of each kind may hold,
-- derived from the catalogue's kinds (toolzz.operations) and the schemas
-- (toolzz.schema): no field name of a kind is written here.
local operations = require "toolzz.operations"
local validate = require "toolzz.validate"

local pairs, ipairs, type = pairs, ipairs, type
local sort = table.sort

local _M = {}

-- The names a record holds besides its kind's fields.
_M.RESERVED = { key = true, id = true, ignore = true, note = true }

-- The paths (lists of names) of the secret fields of spec.
local function secret_paths(spec, prefix, out)
  for name, field in pairs(spec.fields) do
    local path = {}
    for i = 1, #prefix do path[i] = prefix[i] end
    path[#path + 1] = name
    if field.secret then out[#out + 1] = path
    elseif field.type == "object" then secret_paths(field, path, out) end
  end
  return out
end

-- The schema of a file record: the update schema, plus the create schema's
-- secret fields that the update does not take (written at create only).
local function record_schema(kind)
  local fields, create_only = {}, {}
  for name, field in pairs(kind.schema.fields) do fields[name] = field end
  for name, field in pairs(kind.create_schema.fields) do
    if not fields[name] and field.secret then
      fields[name] = field
      create_only[#create_only + 1] = name
    end
  end
  sort(create_only)
  return validate.compile({ name = kind.name, title = kind.schema.title, fields = fields }), create_only
end

-- { "a", "b" } -> "a.b"
local function dotted(path)
  local s = path[1]
  for i = 2, #path do s = s .. "." .. path[i] end
  return s
end

-- Every kind, in catalogue order, with what the sync pieces read: the
-- record schema, its secret paths (lists and dotted), create-only names.
_M.list = {}
_M.by_name = {} -- name -> kind, for names read from outside (a saved plan)
for _, kind in ipairs(operations.kinds) do
  local spec, create_only = record_schema(kind)
  validate.compile(kind.schema)
  validate.compile(kind.create_schema)
  local paths = secret_paths(spec, {}, {})
  sort(paths, function(a, b) return dotted(a) < dotted(b) end)
  local dotted_paths = {}
  for i, p in ipairs(paths) do dotted_paths[i] = dotted(p) end
  local read_only = {}
  for _, name in ipairs(kind.read_only or {}) do
    if not spec.fields[name] then read_only[name] = true end
  end
  local entry = {
    name = kind.name, ops = { list = kind.list, get = kind.get, create = kind.create, update = kind.update,
            patch = kind.patch },
    schema = kind.schema, create_schema = kind.create_schema, record_schema = spec,
    unit_field = kind.unit_field, natural_key = kind.natural_key, updated_at = kind.updated_at,
    read_only = read_only, secret_paths = paths, secret_names = dotted_paths, create_only = create_only,
  }
  _M.list[#_M.list + 1] = entry
  _M.by_name[kind.name] = entry
  _M[kind.name] = entry
end

-- The value at a path (list of names) in t, or nil.
function _M.get(t, path)
  for i = 1, #path do
    if type(t) ~= "table" then return nil end
    t = t[path[i]]
  end
  return t
end

-- Set the value at a path (list of names) in t, making objects on the way.
function _M.set(t, path, value)
  for i = 1, #path - 1 do
    local next_t = t[path[i]]
    if type(next_t) ~= "table" then
      if value == nil then return end
      next_t = {}
      t[path[i]] = next_t
    end
    t = next_t
  end
  t[path[#path]] = value
end

-- "a.b.c" -> { "a", "b", "c" }
function _M.split(dotted_path)
  local out = {}
  for part in dotted_path:gmatch("[^.]+") do out[#out + 1] = part end
  return out
end

return _M

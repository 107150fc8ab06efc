-- toolzz.validate: defaults and validation, driven by toolzz.schema.
--
-- prepare() builds the body that will be sent (the caller's fields, client
-- defaults and schema defaults filled in where absent, the caller's tables
-- left untouched); check() walks it against the schema, collects every
-- problem as { path =, message = } and the values of secret fields. Each
-- schema is compiled once: a sorted field list for the walk that explains
-- problems, and a plan for the C core's quick test (core.valid, src/check.c)
-- that only answers "is this body valid?". A valid body, the common case, is
-- checked by the quick test alone; any other is walked again to collect
-- every problem with its message.
local core = require "toolzz.core"
local schema = require "toolzz.schema"
local tzdata = require "toolzz.tzdata"
local checks = require "toolzz.checks" -- each: value, field spec -> nil or a message
local hints = require "toolzz.hints"
local errors = require "toolzz.errors"
local null = require("cjson").null

local type, pairs, ipairs, next, setmetatable, getmetatable, tostring, assert =
  type, pairs, ipairs, next, setmetatable, getmetatable, tostring, assert
local find, sort, concat = string.find, table.sort, table.concat
local array_mt = core.array_mt

local _M = {}

local uuid_valid, utf8_valid, quick_valid = core.uuid_valid, core.utf8_valid, core.valid

_M.is_uuid = uuid_valid -- any value: false unless a UUID string

local zone_set = checks.zone_set
_M.is_zone = checks.is_zone
_M.tzdata_version = tzdata.version

-- ---- compilation --------------------------------------------------------

-- The kinds of src/check.c's plan entries, numbered from core.KIND_STRING.
local KINDS = {}
for i, kind in ipairs { "string", "boolean", "uuid", "timezone", "email", "url", "digits", "const", "array", "object" } do
  KINDS[kind] = core.KIND_STRING + i - 1
end

-- The plan of an object spec for core.valid, flat (src/check.c): for the
-- i-th field in field order, plan[3i-2] = its name, plan[3i-1] = kind * 4 +
-- flags (1 required, 2 nullable), plan[3i] = its const value, sub-plan or
-- zones table; plan.n = the number of fields.
local function plan_of(spec)
  local plan = { n = #spec.order }
  for i, name in ipairs(spec.order) do
    local field = spec.fields[name]
    local extra
    if field.type == "const" then extra = field.value
    elseif field.type == "object" then extra = field.plan
    elseif field.type == "timezone" then extra = zone_set()
    end
    plan[3 * i - 2] = name
    plan[3 * i - 1] = KINDS[field.type] * 4 + (field.required and 1 or 0) + (field.nullable and 2 or 0)
    plan[3 * i] = extra
  end
  return plan
end

-- In non-strict mode an unknown field is sent as it is: a string under a
-- secret field's name (an apiKey sent through an update), at its level or
-- anywhere inside it, is kept as a secret too.
local SECRET_NAMES, secret_strings = schema.SECRET_NAMES, require("toolzz.tables").secret_strings
local function unknown_field_secrets(k, v, secrets)
  if type(v) == "string" then
    if SECRET_NAMES[k] then secrets[#secrets + 1] = v end
  elseif type(v) == "table" then
    secret_strings(v, secrets)
  end
end

-- The paths of secret fields, in the order check_object meets them.
local function secret_paths(spec, prefix, out)
  for _, name in ipairs(spec.order) do
    local field = spec.fields[name]
    local path = {}
    for i = 1, #prefix do path[i] = prefix[i] end
    path[#path + 1] = name
    if field.type == "object" then secret_paths(field, path, out)
    elseif field.secret then out[#out + 1] = path end
  end
  return out
end

-- Give each object spec a sorted field list and its plan, once.
local function compile(spec)
  if spec.order then return spec end
  local order, filled, objects = {}, {}, {}
  for name, field in pairs(spec.fields) do
    order[#order + 1] = name
    assert(checks[field.type], "unknown field type " .. tostring(field.type))
    if field.type == "object" then
      compile(field)
      objects[#objects + 1] = name
    end
    if field.default == schema.NULL then field.default = null end
    if field.default == schema.EMPTY_ARRAY then field.default = setmetatable({}, array_mt) end
    if field.default ~= nil or field.type == "array" then filled[#filled + 1] = name end
  end
  sort(order)
  sort(filled)
  sort(objects)
  local has_secrets = false
  for _, field in pairs(spec.fields) do
    if field.secret or field.has_secrets then has_secrets = true end
  end
  spec.order, spec.filled, spec.objects, spec.has_secrets = order, filled, objects, has_secrets
  spec.plan = plan_of(spec)
  spec.secret_paths = secret_paths(spec, {}, {})
  return spec
end
_M.compile = compile

-- ---- defaults -------------------------------------------------------------

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Would sending fields as they are miss a default or an empty array's marker?
-- A table with a metatable is always copied (raw), so that no __index or
-- __pairs of the caller's ever runs while validating.
local function needs_copy(spec, fields)
  if getmetatable(fields) ~= nil then return true end
  local filled, known = spec.filled, spec.fields
  for i = 1, #filled do
    local name = filled[i]
    local value = fields[name]
    if value == nil or (known[name].type == "array" and type(value) == "table" and next(value) == nil) then
      return true
    end
  end
  local objects = spec.objects
  for i = 1, #objects do
    local value = fields[objects[i]]
    if type(value) == "table" and needs_copy(known[objects[i]], value) then return true end
  end
  return false
end

-- The body to send: the caller's table itself when nothing needs filling in
-- (the common case, and no copy), else a copy of fields (one level per schema
-- object) with defaults filled in where absent. The caller's tables are never
-- changed.
local function prepare(spec, fields, defaults)
  if type(defaults) ~= "table" then
    defaults = nil
    if not needs_copy(spec, fields) then return fields end
  end
  local out = {}
  for k, v in next, fields do out[k] = v end
  local order, known = spec.order, spec.fields
  for i = 1, #order do
    local name = order[i]
    local field, value = known[name], out[name]
    if field.type == "object" then
      local d = defaults and defaults[name]
      if value == nil and type(d) == "table" then value = {} end
      if type(value) == "table" then value = prepare(field, value, d) end
    elseif value == nil then
      if defaults then value = defaults[name] end
      if value == nil then value = field.default end
    end
    if field.type == "array" and type(value) == "table" and next(value) == nil then
      value = field.default or setmetatable({}, array_mt) -- written as [] even when empty
    end
    out[name] = value
  end
  return out
end

function _M.prepare(spec, fields, defaults)
  return prepare(compile(spec), fields, defaults)
end

-- ---- validation -----------------------------------------------------------

-- The shape of a table given for an array in a patch's changes: "array" (a
-- sequence, empty included: it replaces the array read), "edits" (string
-- keys: item numbers, { ["2"] = { … } }, editing items of the array read),
-- "sparse" (number keys with holes) or "mixed".
local function array_shape(v)
  local numbers, strings, max = 0, 0, 0
  for k in next, v do
    if type(k) == "number" then
      numbers = numbers + 1
      if k > max then max = k end
    else
      strings = strings + 1
    end
  end
  if strings == 0 then return (max == numbers and (numbers == 0 or v[numbers] ~= nil)) and "array" or "sparse" end
  return numbers == 0 and "edits" or "mixed"
end

local check_object

-- The problems of item edits { ["2"] = { description = "X" } } against
-- the array field's items: each key an item number, each edit an object of
-- item fields (null removes one). Whether the items exist is known only
-- after the GET (toolzz.patch.merge).
local function check_item_edits(field, edits, path, strict, problems)
  local items, keys = compile(field.items), {}
  for k in next, edits do keys[#keys + 1] = k end
  sort(keys)
  for _, k in ipairs(keys) do
    local edit, at = edits[k], join(path, utf8_valid(k) and k or "(key that is not UTF-8)")
    if not find(k, "^[1-9]%d*$") or #k > 9 then
      problems[#problems + 1] = { path = at, message = 'is not an item number ("1", "2", ...)' }
    elseif type(edit) ~= "table" or edit == null or type(next(edit) or "") ~= "string" then
      problems[#problems + 1] = { path = at, message = "must be an object: the fields of item " .. k
        .. " to change (to add or remove items, give the whole array)" }
    else
      check_object(items, edit, at, strict, problems, nil, true)
    end
  end
end

-- The message of a table given for an array in a patch's changes, or nil
-- (item edits add their own problems).
local function check_changed_array(field, value, path, strict, problems)
  local shape = array_shape(value)
  if shape == "edits" then return check_item_edits(field, value, path, strict, problems) end
  if shape == "sparse" then
    return 'is a sparse array: to edit items of the array read, key them by number as strings, '
      .. '{ ["2"] = { ... } }; a sequence replaces the whole array'
  end
  if shape == "mixed" then return "must be an array, or an object of item numbers, not both" end
  for i = 1, #value do
    if value[i] == null then -- null does not keep an item: the array replaces the one read
      return "has a null item " .. i .. ": to keep items of the array read and edit others, key the edits "
        .. 'by number ({ ["2"] = { ... } }); a sequence replaces the whole array'
    end
  end
end

-- The one problem of the fields of a record as read (spec.read_only) in a
-- body: they are no typos, so no hint towards another field. Its message
-- starts with READ_ONLY (the command tells it by that).
local READ_ONLY = "has fields of the record as read, not of "
_M.READ_ONLY = READ_ONLY
local function read_only_problem(names, prefix, partial, spec)
  sort(names)
  local what = partial and "changes: give only the fields to change"
    or spec.create and "a create body" or "the update body: use patch to change some fields"
  return errors.ranked({ path = prefix, message = READ_ONLY .. what .. ": " .. concat(names, ", ") }, 1)
end

-- partial: obj holds changes to a body (a patch), so nothing is required,
-- and null removes an optional field.
function check_object(spec, obj, prefix, strict, problems, secrets, partial)
  local order, known = spec.order, spec.fields
  for i = 1, #order do
    local name = order[i]
    local field, value = known[name], obj[name]
    local message
    if value == nil then
      if field.required and not partial then
        problems[#problems + 1] = errors.ranked({ path = join(prefix, name), message = "is required" }, 3)
      end
    elseif value == null then
      if not partial and not field.nullable then
        message = "must not be null"
      elseif partial and field.required and not field.nullable then
        message = "is required: null cannot remove it"
      end
    elseif partial and field.type == "array" and field.items and type(value) == "table" then
      message = check_changed_array(field, value, join(prefix, name), strict, problems)
    else
      message = checks[field.type](value, field)
      if not message then
        if field.type == "object" then
          check_object(field, value, join(prefix, name), strict, problems, secrets, partial)
        elseif field.secret and secrets then
          secrets[#secrets + 1] = value
        end
      end
    end
    if message then problems[#problems + 1] = { path = join(prefix, name), message = message } end
  end
  if not strict and secrets then
    for k, v in next, obj do
      if not known[k] then unknown_field_secrets(k, v, secrets) end
    end
  end
  if strict then
    local unknown, read_only, as_read = nil, nil, spec.read_only
    for k in next, obj do
      if type(k) ~= "string" then
        problems[#problems + 1] = errors.ranked({ path = prefix, message = "has a key that is not a string" }, 1)
      elseif not known[k] then
        if as_read and as_read[k] then
          read_only = read_only or {}
          read_only[#read_only + 1] = k
        elseif utf8_valid(k) then
          unknown = unknown or {}
          unknown[#unknown + 1] = k
        else -- keep its bytes out of messages, as the encoder does
          problems[#problems + 1] = errors.ranked({ path = join(prefix, "(key that is not UTF-8)"),
            message = "key is not valid UTF-8" }, 1)
        end
      end
    end
    if read_only then problems[#problems + 1] = read_only_problem(read_only, prefix, partial, spec) end
    if unknown then
      sort(unknown)
      for i = 1, #unknown do
        problems[#problems + 1] = errors.ranked({
          path = join(prefix, unknown[i]),
          message = "is not a field of this endpoint" .. (i <= hints.MAX_KEYS and hints.field(unknown[i], order) or ""),
        }, 1)
      end
    end
  end
  return problems
end

-- In a valid non-strict body, what unknown fields hold under a secret
-- field's name, at every object level, as check_object collects them.
local function unknown_secrets(spec, obj, secrets)
  local known = spec.fields
  for k, v in next, obj do
    local field = known[k]
    if field then
      if field.type == "object" and type(v) == "table" then unknown_secrets(field, v, secrets) end
    else
      unknown_field_secrets(k, v, secrets)
    end
  end
end

-- Does body pass the quick test? When it does, the values of its secret
-- fields are appended to secrets (when given), as check_object collects them.
local function passes(spec, body, strict, secrets)
  if not quick_valid(spec.plan, body, strict, null) then return false end
  if secrets then
    local paths = spec.secret_paths
    for i = 1, #paths do
      local v, path = body, paths[i]
      for j = 1, #path do
        if type(v) ~= "table" then v = nil break end
        v = v[path[j]]
      end
      if type(v) == "string" then secrets[#secrets + 1] = v end
    end
    if not strict then unknown_secrets(spec, body, secrets) end
  end
  return true
end

-- The quick test in C (src/check.c) runs on PUC Lua only: LuaJIT compiles
-- the walk into machine code that a C call cannot beat (figures:
-- bench/README.md, levers).
local QUICK = not rawget(_G, "jit")

-- The problems of body (appended to problems), or problems itself (nil when
-- none were given) when there are none; the values of secret fields are
-- appended to secrets.
function _M.problems(spec, body, strict, problems, secrets)
  compile(spec)
  if QUICK and passes(spec, body, strict, secrets) then return problems end
  local found = check_object(spec, body, "", strict, problems or {}, secrets)
  if #found == 0 then return problems end
  return found
end

-- For tests and benchmarks: the problems of body as a list ({} when none).
function _M.check(spec, body, strict, problems, secrets)
  return _M.problems(spec, body, strict, problems, secrets) or {}
end
-- For tests: the quick test alone (true when body passes), and the walk
-- alone (its problems).
function _M.valid(spec, body, strict)
  return quick_valid(compile(spec).plan, body, strict, null)
end
function _M.walk(spec, body, strict, problems, secrets)
  return check_object(compile(spec), body, "", strict, problems or {}, secrets)
end

-- The same for the changes of a patch: any subset of the fields, where
-- null removes an optional field (or sets a nullable one to null).
function _M.check_changes(spec, changes, strict, problems, secrets)
  return check_object(compile(spec), changes, "", strict, problems or {}, secrets, true)
end

return _M

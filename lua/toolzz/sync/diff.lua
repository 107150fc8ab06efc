-- toolzz.sync.diff: comparing one file record with one server record.
--
-- The server record is turned into the update body as `patch` does
-- (toolzz.patch.body_of: iconFileId "" is null, outputs lose their server
-- ids), then each field the file record gives is compared with it: objects
-- key by key (only the keys the file gives), arrays and scalars whole.
-- Secrets are never compared; fields in `ignore` neither compared nor
-- written. All driven by the kind's schema (toolzz.sync.kinds).
local core = require "toolzz.core"
local null = require("cjson").null
local patch = require "toolzz.patch"
local validate = require "toolzz.validate"
local kinds = require "toolzz.sync.kinds"
local canonical = require "toolzz.sync.canonical"

local type, pairs, ipairs, next, setmetatable = type, pairs, ipairs, next, setmetatable
local sort = table.sort
local sub = string.sub

local _M = {}

local array_mt = core.array_mt
local SECRET_PLACEHOLDER = "(secret)"

-- Are a and b the same JSON value? (absent and null are the same.)
local function same(a, b)
  if a == nil then a = null end
  if b == nil then b = null end
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in next, a do
    if not same(v, b[k]) then return false end
  end
  for k, v in next, b do
    if a[k] == nil and v ~= null then return false end
  end
  return true
end
_M.same = same

-- Mark the arrays of body (per spec) so that they are written as arrays.
local function mark_arrays(spec, body)
  for name, field in pairs(spec.fields) do
    local v = body[name]
    if type(v) == "table" then
      if field.type == "array" then setmetatable(v, array_mt)
      elseif field.type == "object" then mark_arrays(field, v) end
    end
  end
  return body
end

-- An array's items reduced to their request fields (schema `items`), as
-- body_of does for a server record.
local function reduce_items(field, list)
  local fields = field.items and field.items.fields
  if not fields or type(list) ~= "table" then return list end
  local out = setmetatable({}, array_mt)
  for i = 1, #list do
    local item = list[i]
    if type(item) == "table" then
      local kept = {}
      for name in pairs(fields) do
        if item[name] ~= nil and item[name] ~= null then kept[name] = item[name] end
      end
      item = kept
    end
    out[i] = item
  end
  return out
end

-- Append to problems the paths of v's strings (keys too) that are not
-- UTF-8: a plan holding one would not be JSON, nor load again once saved.
local function not_utf8(v, path, problems)
  if type(v) == "string" then
    if not core.utf8_valid(v) then problems[#problems + 1] = path == "" and "(record)" or path end
  elseif type(v) == "table" then
    for k, item in pairs(v) do
      local at = type(k) == "number" and (path .. "[" .. k .. "]")
        or (type(k) == "string" and core.utf8_valid(k) and (path == "" and k or path .. "." .. k))
      if not at then problems[#problems + 1] = (path == "" and "(record)" or path) .. " (a key)"
      else not_utf8(item, at, problems) end
    end
  end
end

-- A server record of kind -> its update body (the normalized record), and
-- the paths that make it unfit for a diff (a list, empty when none): a
-- missing or mistyped update field, another `type`, no plugin row.
function _M.normalize(kind, record)
  local problems = {}
  if type(record) ~= "table" then return nil, { "(record)" } end
  local schema = kind.schema
  for _, p in ipairs(patch.unfit(schema, record)) do problems[#problems + 1] = p.path end
  local body = mark_arrays(schema, patch.body_of(schema, record))
  if #problems == 0 then
    -- check with secret values stood in for: a token the server does not echo is not a shape problem
    local saved = {}
    for i, path in ipairs(kind.secret_paths) do
      saved[i] = kinds.get(body, path)
      if saved[i] == nil and kinds.get(body, { path[1] }) ~= nil then kinds.set(body, path, SECRET_PLACEHOLDER) end
    end
    for _, p in ipairs(validate.check(schema, body, false)) do problems[#problems + 1] = p.path end
    for i, path in ipairs(kind.secret_paths) do
      if saved[i] == nil then kinds.set(body, path, nil) end
    end
    not_utf8(body, "", problems)
    local stamp = kind.updated_at and record[kind.updated_at]
    if type(stamp) == "string" and not core.utf8_valid(stamp) then problems[#problems + 1] = kind.updated_at end
  end
  sort(problems)
  return body, problems
end

-- body -> hex digest of it without its secret fields (what staleness is
-- judged by: a secret value is never digested).
function _M.fingerprint(kind, body)
  local saved = {}
  for i, path in ipairs(kind.secret_paths) do
    saved[i] = kinds.get(body, path)
    if saved[i] ~= nil then kinds.set(body, path, nil) end
  end
  local digest = canonical.digest(body)
  for i, path in ipairs(kind.secret_paths) do
    if saved[i] ~= nil then kinds.set(body, path, saved[i]) end
  end
  return digest
end

-- Is path (dotted) in ignore, or under one of its entries?
local function ignored(ignore, path)
  if not ignore then return false end
  for i = 1, #ignore do
    local p = ignore[i]
    if p == path or sub(path, 1, #p + 1) == p .. "." then return true end
  end
  return false
end

-- a dotted prefix and a name -> the dotted path
local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Append the differences of obj (file values under spec) from base to out.
local function compare(spec, obj, base, prefix, ignore, out)
  local names = {}
  for name in pairs(obj) do
    if spec.fields[name] then names[#names + 1] = name end
  end
  sort(names)
  for _, name in ipairs(names) do
    local field, value, path = spec.fields[name], obj[name], join(prefix, name)
    local old
    if type(base) == "table" then old = base[name] end
    if field.secret or ignored(ignore, path) then -- luacheck: ignore 542
      -- never compared
    elseif field.type == "object" and type(value) == "table" then
      compare(field, value, old, path, ignore, out)
    else
      if field.type == "array" then value = reduce_items(field, value) end
      if not same(value, old) then
        out[#out + 1] = { path = path, old = old, new = value }
      end
    end
  end
  return out
end

-- A file record and the server record's body -> the list of differences
-- { path =, old =, new = } (old absent when the server has none), in path
-- order; with update_secrets, a { path =, secret = true, new = reference }
-- for each secret the record references (its value is never read here).
function _M.diff(kind, record, body, update_secrets)
  local out = compare(kind.record_schema, record, body, "", record.ignore, {})
  if update_secrets then
    for i, path in ipairs(kind.secret_paths) do
      local ref = kinds.get(record, path)
      local name = kind.secret_names[i]
      if type(ref) == "table" and kind.schema.fields[path[1]] and not ignored(record.ignore, name) then
        out[#out + 1] = { path = name, secret = true, new = ref }
      end
    end
  end
  sort(out, function(a, b) return a.path < b.path end)
  return out
end

-- fields without the nulls the spec does not allow (an optional field set
-- to null is a field a create leaves out), objects copied.
local function without_nulls(spec, fields)
  local out = {}
  for name, value in pairs(fields) do
    local field = spec.fields[name]
    if value == null and field and not field.nullable then -- luacheck: ignore 542
      -- left out
    elseif field and field.type == "object" and type(value) == "table" then
      out[name] = without_nulls(field, value)
    else
      out[name] = value
    end
  end
  return out
end

-- A file record of kind in unit -> the fields a create sends: the record's
-- fields (key, id, ignore and note left out; null on a field that cannot
-- be null left out), the unit's id, secrets as their references.
function _M.create_fields(kind, record, unit_id)
  local fields = {}
  for name, value in pairs(record) do
    if not kinds.RESERVED[name] then fields[name] = value end
  end
  fields = without_nulls(kind.create_schema, fields)
  fields[kind.unit_field] = unit_id
  return fields
end

-- The problems (list of { path, message }) a create of fields would meet,
-- with secret references stood in for by a string.
function _M.create_problems(kind, fields)
  local body = {}
  for k, v in pairs(fields) do body[k] = v end
  for _, path in ipairs(kind.secret_paths) do
    if type(kinds.get(fields, path)) == "table" then
      -- copy the objects on the way so that the plan's fields keep their references
      local t, src = body, fields
      for i = 1, #path - 1 do
        local copy = {}
        for k, v in pairs(src[path[i]]) do copy[k] = v end
        t[path[i]] = copy
        t, src = copy, src[path[i]]
      end
      t[path[#path]] = SECRET_PLACEHOLDER
    end
  end
  local prepared = validate.prepare(kind.create_schema, body)
  return validate.check(kind.create_schema, prepared, true)
end

-- The body an update sends: the re-read server body with the plan's
-- differences written in (null removes an optional field or sets a
-- nullable one); secret entries take their resolved value from secrets
-- (path -> value).
function _M.apply_diff(kind, body, diff, secrets)
  for _, entry in ipairs(diff) do
    local path = kinds.split(entry.path)
    local value = entry.new
    if entry.secret then
      value = secrets and secrets[entry.path]
    elseif value == null then
      local field = kind.schema
      for i = 1, #path do field = field and field.fields and field.fields[path[i]] end
      if not (field and field.nullable) then value = nil end
    end
    kinds.set(body, path, value)
  end
  return body
end

return _M

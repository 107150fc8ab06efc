-- toolzz.patch: a record read from the API -> the update body it stands
-- for, and a caller's changes merged into that body. Both are driven by the
-- update schema (toolzz.schema): no field list is written here.
local null = require("cjson").null

local type, next, pairs = type, next, pairs

local _M = {}

-- The Lua type a field's value has in a request, by schema type.
local LUA_TYPE = {
  string = "string", uuid = "string", timezone = "string", email = "string", url = "string",
  digits = "string", const = "string", boolean = "boolean", array = "table", object = "table",
}

-- The value at a path of keys and indexes (schema `from`), or nil.
local function at(record, path)
  local v = record
  for i = 1, #path do
    if type(v) ~= "table" then return nil end
    v = v[path[i]]
  end
  return v
end

-- A copy of decoded JSON data (the record is the caller's result too).
local function copy(v, depth)
  if type(v) ~= "table" or depth > 64 then return v end
  local out = {}
  for k, x in next, v do out[k] = copy(x, depth + 1) end
  return out
end

-- A raw copy of a caller's changes, so that no __index or __pairs of theirs
-- runs while they are validated and merged; toolzz.array's marker is kept.
-- A cycle stays a cycle (the encoder then reports it as one).
_M.raw_copy = require("toolzz.options").raw_copy

-- An array's items reduced to their request fields (schema `items`).
local function reduce_items(items, list)
  local out = {}
  for i = 1, #list do
    local item = list[i]
    if type(item) == "table" and items.fields then
      local kept = {}
      for name in pairs(items.fields) do
        local v = item[name]
        if v ~= nil and v ~= null then kept[name] = copy(v, 0) end
      end
      out[i] = kept
    else
      out[i] = copy(item, 0)
    end
  end
  return out
end

-- The update body a record stands for. A field the record leaves null or
-- absent is left out where the request field is optional (a nullable one,
-- such as iconFileId, is null, also for ""); an optional field whose value
-- has another type than the request takes is left out too.
local function body_of(spec, record)
  local out = {}
  for name, field in pairs(spec.fields) do
    local value
    if field.from then value = at(record, field.from) else value = record[name] end
    if value == nil or value == null or (field.nullable and value == "") then
      if field.nullable then out[name] = null end
    elseif not field.required and type(value) ~= LUA_TYPE[field.type] then -- luacheck: ignore 542
      -- e.g. notificationContent that is not a string: not a request value
    elseif field.type == "object" and type(value) == "table" then
      out[name] = body_of(field, value)
    elseif field.type == "array" and type(value) == "table" and field.items then
      out[name] = reduce_items(field.items, value)
    else
      out[name] = copy(value, 0)
    end
  end
  return out
end
_M.body_of = body_of

-- Problems that make a record unfit for this schema before any merge: a
-- `const` field holding another value (a function of another type), a
-- required object the record does not have (no plugin row).
function _M.unfit(spec, record)
  local problems, order = {}, spec.order -- compiled (toolzz.validate): sorted names
  for i = 1, #order do
    local name = order[i]
    local field = spec.fields[name]
    if field.type == "const" and record[name] ~= field.value then -- the server's value is not quoted
      problems[#problems + 1] = { path = name, message = 'is not "' .. field.value
        .. '": this record cannot be patched as a ' .. (spec.title or spec.name) }
    elseif field.type == "object" and field.required and field.from and type(at(record, field.from)) ~= "table" then
      problems[#problems + 1] = { path = name, message = "the record has no " .. field.from[1]
        .. " row to read it from" }
    end
  end
  return problems
end

-- The values of the secret fields of body (schema `secret`), appended to
-- out: what a record read held, to scrub from every later error even when
-- the changes replace it (a rotated googleToken).
local function secrets_of(spec, body, out)
  for name, field in pairs(spec.fields) do
    local v = body[name]
    if field.secret and type(v) == "string" then
      out[#out + 1] = v
    elseif field.type == "object" and type(v) == "table" then
      secrets_of(field, v, out)
    end
  end
  return out
end
_M.secrets_of = secrets_of

-- Merge changes into body (in place): objects the schema knows merge key by
-- key, arrays and scalars replace, null removes an optional field or sets a
-- nullable one to null. changes were validated as a partial body before.
local function merge(spec, body, changes)
  local known = spec and spec.fields
  for k, change in next, changes do
    local field = known and known[k]
    if change == null then
      if field and field.nullable then body[k] = null else body[k] = nil end
    elseif field and field.type == "object" and type(change) == "table" and type(body[k]) == "table" then
      merge(field, body[k], change)
    else
      body[k] = change
    end
  end
  return body
end
_M.merge = merge

return _M

-- toolzz.patch: a record read from the API -> the update body it stands
-- for, and a caller's changes merged into that body. Both are driven by the
-- update schema (toolzz.schema): no field list is written here.
local null = require("cjson").null
local uuid_valid = require("toolzz.core").uuid_valid

local type, next, pairs, ipairs, tonumber = type, next, pairs, ipairs, tonumber
local setmetatable = setmetatable
local find, lower, sort, concat = string.find, string.lower, table.sort, table.concat
local unpack = table.unpack or unpack -- luacheck: ignore 143

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

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Item edits { ["2"] = { description = "X" } } applied to the array read
-- (body[name], its items already copies): each item merged key by key,
-- null removing a key. An item the array read does not have is a problem.
local function edit_items(body, name, edits, path, problems)
  local list, numbers = body[name], {}
  if type(list) ~= "table" then list = {} end
  for k in next, edits do numbers[#numbers + 1] = k end
  sort(numbers)
  for _, k in ipairs(numbers) do
    local item = list[tonumber(k)]
    if type(item) ~= "table" then
      problems[#problems + 1] = { path = join(path, k), message = (item == nil
        and ("is past the array read (it has " .. #list .. " items): to add or remove items, give the whole array")
        or "is not an object in the record read: give the whole array") }
    else
      for key, v in next, edits[k] do
        if v == null then item[key] = nil else item[key] = copy(v, 0) end
      end
    end
  end
  body[name] = list
end

-- Merge changes into body (in place): objects the schema knows merge key by
-- key, item edits (an object of item numbers for an array) edit items of
-- the array read, other arrays and scalars replace, null removes an
-- optional field or sets a nullable one to null. changes were validated as
-- a partial body before. Returns body and the problems found (items the
-- array read does not have), appended to problems.
local function merge(spec, body, changes, problems, prefix)
  local known = spec and spec.fields
  problems, prefix = problems or {}, prefix or ""
  for k, change in next, changes do
    local field = known and known[k]
    if change == null then
      if field and field.nullable then body[k] = null else body[k] = nil end
    elseif field and field.type == "object" and type(change) == "table" and type(body[k]) == "table" then
      merge(field, body[k], change, problems, join(prefix, k))
    elseif field and field.type == "array" and type(change) == "table" and type(next(change)) == "string" then
      edit_items(body, k, change, join(prefix, k), problems)
    else
      body[k] = change
    end
  end
  return body, problems
end
_M.merge = merge

-- A message when the record a GET of id answered is another one: its id
-- present and another than id (in any case); nil when it is id or has none.
function _M.other_record(record, id)
  local got = type(record) == "table" and record.id or nil
  if got == nil or got == null or got == id or (type(got) == "string" and lower(got) == lower(id)) then return nil end
  return "the GET of " .. id .. " answered another record ("
    .. (uuid_valid(got) and ("id " .. got) or "an id that is not a UUID") .. "): nothing was written"
end

-- Does a secret's value look masked: a run of `*` (the API masks an apiKey
-- as cal_****), or toolzz's own [REDACTED]?
local function looks_masked(v)
  return type(v) == "string" and (find(v, "**", 1, true) ~= nil or v == "[REDACTED]")
end

-- The secret fields of spec, once per spec: a list of { path = "a.b", keys =
-- { "a", "b" }, field =, from = the `from` of the object that holds it }.
local secret_lists = setmetatable({}, { __mode = "k" })
local function secret_fields(spec)
  local list = secret_lists[spec]
  if list then return list end
  list = {}
  local function walk(object, keys, from)
    for name, field in pairs(object.fields) do
      local here = { unpack(keys) }
      here[#here + 1] = name
      if field.secret then
        list[#list + 1] = { path = concat(here, "."), keys = here, field = field, from = from }
      elseif field.type == "object" then
        walk(field, here, field.from or from)
      end
    end
  end
  walk(spec, {}, nil)
  secret_lists[spec] = list
  return list
end

-- Problems of the secret fields of changes (a patch's) whose value looks
-- masked: a mask is never a new secret.
function _M.masked_changes(spec, changes, problems)
  local list = secret_fields(spec)
  for i = 1, #list do
    if looks_masked(at(changes, list[i].keys)) then
      problems[#problems + 1] = { path = list[i].path, message = "looks masked (a run of * or [REDACTED]): "
        .. "give the real value" }
    end
  end
  return problems
end

-- Problems of the secret fields of body (made from record) that the record
-- holds masked, when changes give no new value: the value looks masked, or
-- the record or the row the field is read from carries the field's
-- `masked_flag` (isTokenMasked). Sending one back would overwrite the real
-- secret with its mask.
function _M.masked_reads(spec, record, body, changes, problems)
  local list = secret_fields(spec)
  for i = 1, #list do
    local secret = list[i]
    local flag, row = secret.field.masked_flag, secret.from and at(record, secret.from)
    if type(at(changes, secret.keys)) ~= "string" and (looks_masked(at(body, secret.keys)) or (flag
        and (record[flag] == true or (type(row) == "table" and row[flag] == true)))) then
      problems[#problems + 1] = { path = secret.path, message = "is masked in the record read: sending it back "
        .. "would overwrite the real one; give a new one in the changes (the command: --set-file " .. secret.path
        .. "=FILE)" }
    end
  end
  return problems
end

return _M

-- toolzz.sync.load: a desired-state file (CONTRACT Part 3, version 1) ->
-- the checked desired table, or one validation error listing every problem
-- of the file with its path (units[2].gcal[1].googleCalendar.timezone).
-- `{ "file": PATH }` text fields are read here; secret references are kept
-- as references (a file's PATH made absolute), never read.
local core = require "toolzz.core"
local null = require("cjson").null
local errors = require "toolzz.errors"
local validate = require "toolzz.validate"
local hints = require "toolzz.hints"
local kinds = require "toolzz.sync.kinds"
local json = require "toolzz.sync.json"
local canonical = require "toolzz.sync.canonical"
local raw_copy = require("toolzz.tables").raw_copy

local type, pairs, ipairs, next, tostring, setmetatable, getmetatable, pcall, math_floor =
  type, pairs, ipairs, next, tostring, setmetatable, getmetatable, pcall, math.floor
local sort = table.sort
local find, sub, match = string.find, string.sub, string.match
local open = io.open

local _M = {}

local array_mt = core.array_mt
local VERSION = 1

-- String-typed schema fields: where `{ "file": PATH }` may stand for text.
local TEXT_TYPES = { string = true, uuid = true, timezone = true, email = true, url = true, digits = true }

local TOP_FIELDS = { "safety", "toolzz", "units" }
local UNIT_FIELDS = { "exclusive", "unit" }
for _, kind in ipairs(kinds.list) do UNIT_FIELDS[#UNIT_FIELDS + 1] = kind.name end
sort(UNIT_FIELDS)
local SAFETY_FIELDS = { "maxUpdates" }

-- a list -> a set of its values
local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local TOP_SET, UNIT_SET, SAFETY_SET = set_of(TOP_FIELDS), set_of(UNIT_FIELDS), set_of(SAFETY_FIELDS)

-- a dotted prefix and a name -> the dotted path
local function join(prefix, name)
  name = tostring(name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- is v a table that reads as a JSON object (empty included)?
local function is_object(v)
  if type(v) ~= "table" or getmetatable(v) == array_mt then return false end
  local k = next(v)
  return k == nil or type(k) == "string"
end

-- is v a table that reads as a JSON array (marked, or integer keys only)?
local function is_array(v)
  if type(v) ~= "table" then return false end
  if getmetatable(v) == array_mt then return true end
  for k in pairs(v) do
    if type(k) ~= "number" then return false end
  end
  return true
end

-- v's JSON type, for messages
local function type_of(v)
  if v == null then return "null" end
  if is_array(v) and next(v) ~= nil then return "array" end
  if type(v) == "table" then return "object" end
  return type(v)
end

-- Report the keys of obj that are not in known (a set; order: the sorted list).
local function unknown_keys(obj, known, order, prefix, problems)
  local unknown = {}
  for k in pairs(obj) do
    if not known[k] then unknown[#unknown + 1] = tostring(k) end
  end
  sort(unknown)
  for _, k in ipairs(unknown) do
    problems[#problems + 1] = { path = join(prefix, k), message = "is not a field here" .. hints.field(k, order) }
  end
end

-- A directory and a relative path -> one absolute path.
local function absolute(base_dir, path)
  if sub(path, 1, 1) == "/" then return path end
  local dir = base_dir or "."
  if sub(dir, 1, 1) ~= "/" then
    local cwd = os.getenv("PWD") or "."
    dir = dir == "." and cwd or (cwd .. "/" .. dir)
  end
  path = path:gsub("^%./", "")
  return (dir:gsub("/+$", "")) .. "/" .. path
end
_M.absolute = absolute

-- Largest `{ "file": PATH }` read (text or secret): more is refused, not
-- read until memory runs out (/dev/zero).
local MAX_FILE_BYTES = 16 * 1024 * 1024
_M.MAX_FILE_BYTES = MAX_FILE_BYTES

-- The text of a regular file, one trailing newline removed, or nil, why.
-- With root, a file outside the folder root (links and `..` followed) is
-- refused: a desired file under review must not print /proc/self/environ
-- or a secret file in its plan. A FIFO, a device or a directory is refused
-- (never a hang); so is a file over MAX_FILE_BYTES. A third value names
-- the file read ("device:inode").
local function read_text(path, root)
  local text, why = core.read_file(path, MAX_FILE_BYTES, root)
  if not text then return nil, why end
  if sub(text, -1) == "\n" then text = sub(text, 1, -2) end
  return text, nil, why
end
_M.read_text = read_text

-- Is v a secret reference { env = NAME } or { file = PATH }? true, or nil, why.
local function secret_reference(v)
  if type(v) ~= "table" or not is_object(v) then return nil end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if count == 1 and type(v.env) == "string" then
    if find(v.env, "^[%a_][%w_]*$") then return true end
    return nil, '"env" must name an environment variable (letters, digits, _)'
  end
  if count == 1 and type(v.file) == "string" then
    if v.file ~= "" then return true end
    return nil, '"file" must be a path'
  end
  return nil
end
_M.secret_reference = secret_reference

local SECRET_HINT = 'is a secret: write it as { "env": "NAME" } or { "file": "PATH" }, never its value'

-- A record's fields (obj under spec, at prefix; names in skip left out)
-- resolved: { file } text read, secret references checked and kept (file
-- paths made absolute), read-only fields refused. Returns the resolved
-- copy; each secret reference's place in it is appended to slots as
-- { table, key } (the validator sees a placeholder there), and slots.files
-- notes the files of secret references and of texts read (by identity).
-- { table, key } (the validator sees a placeholder there).
local function resolve(spec, obj, prefix, base_dir, problems, skip, read_only, slots)
  local resolved = {}
  for k, v in pairs(obj) do
    local field = type(k) == "string" and spec.fields[k]
    if skip and skip[k] then -- luacheck: ignore 542
      -- the record's own names (key, id, …)
    elseif read_only and read_only[k] then
      problems[#problems + 1] = { path = join(prefix, k), message = "is set by the server, not by the file: remove it" }
    elseif field and field.secret then
      local ok, why = secret_reference(v)
      if ok then
        if v.file then
          resolved[k] = { file = absolute(base_dir, v.file) }
          local id = core.file_id(resolved[k].file) -- not read: plan never reads a secret
          if id then slots.files.secrets[id] = true end
        else
          resolved[k] = { env = v.env }
        end
        slots[#slots + 1] = { resolved, k }
      else
        problems[#problems + 1] = { path = join(prefix, k), message = why or SECRET_HINT }
      end
    elseif field and field.type == "array" and is_array(v) then
      local list = setmetatable({}, array_mt) -- written as an array again, even when empty
      for i = 1, #v do list[i] = v[i] end
      resolved[k] = list
      local ok, why = pcall(canonical.compact, list) -- its items are not checked by the schema
      if not ok then
        problems[#problems + 1] = { path = join(prefix, k), message = "cannot be written as JSON: " .. tostring(why) }
      end
    elseif field and field.type == "object" and is_object(v) then
      resolved[k] = resolve(field, v, join(prefix, k), base_dir, problems, nil, nil, slots)
    elseif field and TEXT_TYPES[field.type] and is_object(v) and v.file ~= nil then
      local count, path = 0, join(prefix, k)
      for _ in pairs(v) do count = count + 1 end
      if count ~= 1 or type(v.file) ~= "string" or v.file == "" then
        problems[#problems + 1] = { path = path, message = '{ "file": PATH } must hold one string path and nothing else' }
      else
        local text, why, id = read_text(absolute(base_dir, v.file), absolute(base_dir, "."))
        if not text then
          problems[#problems + 1] = { path = path, message = "cannot read " .. v.file .. ": " .. tostring(why) }
        elseif not core.utf8_valid(text) then
          problems[#problems + 1] = { path = path, message = v.file .. " is not UTF-8 text" }
        else
          resolved[k] = text
          slots.files.texts[#slots.files.texts + 1] = { id = id, path = path, name = v.file }
        end
      end
    elseif field and is_object(v) and v.env ~= nil then
      problems[#problems + 1] = { path = join(prefix, k), message = '{ "env": NAME } is only for secret fields' }
    else
      resolved[k] = v
    end
  end
  return resolved
end

-- Is dotted a path of fields of spec? true, or nil, hint.
local function known_path(spec, dotted)
  local s = spec
  for part in dotted:gmatch("[^.]+") do
    local field = s and s.fields and s.fields[part]
    if not field then return nil, hints.field(part, s and s.order or {}) end
    s = field
  end
  return true
end

-- Check one record of kind at prefix; returns its resolved copy.
local function check_record(kind, record, prefix, unit_id, base_dir, problems, files)
  if not is_object(record) or next(record) == nil then
    problems[#problems + 1] = { path = prefix, message = "must be an object with at least a key, got " .. type_of(record) }
    return nil
  end
  local out = {}
  local key = record.key
  if key == nil then
    problems[#problems + 1] = { path = join(prefix, "key"), message = "is required: a name for this record, unique in the file" }
  elseif type(key) ~= "string" or key == "" then
    problems[#problems + 1] = { path = join(prefix, "key"), message = "must be a non-empty string" }
  else
    out.key = key
  end
  if record.id ~= nil then
    if validate.is_uuid(record.id) then out.id = record.id
    else problems[#problems + 1] = { path = join(prefix, "id"), message = "must be a UUID (the server record's id)" } end
  end
  if record.note ~= nil then
    if type(record.note) == "string" then out.note = record.note
    else problems[#problems + 1] = { path = join(prefix, "note"), message = "must be a string" } end
  end
  if record.ignore ~= nil then
    if not is_array(record.ignore) then
      problems[#problems + 1] = { path = join(prefix, "ignore"), message = "must be an array of field paths" }
    else
      out.ignore = setmetatable({}, array_mt)
      for i, p in ipairs(record.ignore) do
        local ok, hint
        if type(p) == "string" and p ~= "" then ok, hint = known_path(kind.record_schema, p) end
        if ok then out.ignore[#out.ignore + 1] = p
        else
          problems[#problems + 1] = { path = prefix .. ".ignore[" .. i .. "]",
            message = "is not a field path of this kind" .. (hint or "") }
        end
      end
    end
  end
  local unit_value = record[kind.unit_field]
  local mismatch = unit_value ~= nil and unit_value ~= unit_id
  if mismatch then
    problems[#problems + 1] = { path = join(prefix, kind.unit_field),
      message = "must be absent or equal to the unit's id (" .. tostring(unit_id) .. ")" }
  end
  local slots = { files = files }
  local resolved = resolve(kind.record_schema, record, prefix, base_dir, problems, kinds.RESERVED, kind.read_only, slots)
  if mismatch then resolved[kind.unit_field] = nil end
  -- the validator sees a placeholder string where a secret reference is
  for _, slot in ipairs(slots) do slot[1][slot[2]], slot[3] = "(secret reference)", slot[1][slot[2]] end
  local found = validate.check_changes(kind.record_schema, resolved, true, {})
  for _, slot in ipairs(slots) do slot[1][slot[2]] = slot[3] end
  for _, p in ipairs(found) do
    local message = p.message:gsub("of this endpoint", "of a " .. kind.name .. " record")
    problems[#problems + 1] = { path = join(prefix, p.path), message = message }
  end
  for k, v in pairs(out) do resolved[k] = v end -- key, id, ignore, note
  return resolved
end

-- Two records of one kind and unit that pin one id, or that have no id and
-- one natural key; and keys used twice in the file.
local function check_duplicates(records, problems, keys_seen)
  local by_id, by_name = {}, {}
  for _, entry in ipairs(records) do
    local r, path, kind = entry.record, entry.path, entry.kind
    if r.key then
      local other = keys_seen[r.key]
      if other then
        problems[#problems + 1] = { path = path .. ".key",
          message = '"' .. r.key .. '" is the key of ' .. other .. " too: keys are unique in the file" }
      else
        keys_seen[r.key] = path
      end
    end
    if r.id then
      if by_id[r.id] then
        problems[#problems + 1] = { path = path .. ".id", message = "pins the same record as " .. by_id[r.id] }
      else
        by_id[r.id] = path
      end
    else
      local name = r[kind.natural_key]
      if type(name) == "string" then
        if by_name[name] then
          problems[#problems + 1] = { path = path .. "." .. kind.natural_key, message = 'has no id and the same '
            .. kind.natural_key .. ' as ' .. by_name[name] .. ": both would match one record; pin an id" }
        else
          by_name[name] = path
        end
      end
    end
  end
end

-- Check a unit entry at prefix; returns its resolved copy.
local function check_unit(unit, prefix, base_dir, problems, keys_seen, units_seen, files)
  if not is_object(unit) then
    problems[#problems + 1] = { path = prefix, message = "must be an object, got " .. type_of(unit) }
    return nil
  end
  unknown_keys(unit, UNIT_SET, UNIT_FIELDS, prefix, problems)
  local out = { unit = unit.unit }
  if not validate.is_uuid(unit.unit) then
    problems[#problems + 1] = { path = join(prefix, "unit"), message = unit.unit == nil and "is required: the unit's id"
      or "must be a UUID (the unit's id)" }
  elseif units_seen[unit.unit] then
    problems[#problems + 1] = { path = join(prefix, "unit"), message = "is listed twice (" .. units_seen[unit.unit] .. ")" }
  else
    units_seen[unit.unit] = prefix
  end
  if unit.exclusive ~= nil then
    if type(unit.exclusive) ~= "boolean" then
      problems[#problems + 1] = { path = join(prefix, "exclusive"), message = "must be a boolean" }
    else
      out.exclusive = unit.exclusive
    end
  end
  for _, kind in ipairs(kinds.list) do
    local list = unit[kind.name]
    if list ~= nil then
      local path = join(prefix, kind.name)
      if not is_array(list) then
        problems[#problems + 1] = { path = path, message = "must be an array of records, got " .. type_of(list) }
      else
        local records, entries = setmetatable({}, array_mt), {}
        for i, record in ipairs(list) do
          local rpath = path .. "[" .. i .. "]"
          local r = check_record(kind, record, rpath, unit.unit, base_dir, problems, files)
          if r then
            records[#records + 1] = r
            entries[#entries + 1] = { record = r, path = rpath, kind = kind }
          end
        end
        check_duplicates(entries, problems, keys_seen)
        out[kind.name] = records
      end
    end
  end
  return out
end

-- A desired table (decoded JSON, or a caller's table) -> its checked,
-- resolved copy, or nil, a validation error with every problem. base_dir
-- is where `{ "file": PATH }` paths start. problems may hold problems
-- found before (a repeated JSON key); own: doc is toolzz.sync.json's, read
-- as it is (a caller's table is copied raw first).
function _M.check(doc, base_dir, problems, own)
  problems = problems or {}
  if not own then doc = raw_copy(doc) end -- no __index, __pairs or __len of a caller's runs
  if not is_object(doc) then
    problems[#problems + 1] = { path = "", message = "the file must hold a JSON object, got " .. type_of(doc) }
    return nil, errors.validation(problems)
  end
  unknown_keys(doc, TOP_SET, TOP_FIELDS, "", problems)
  local out = { toolzz = VERSION }
  if doc.toolzz ~= VERSION then
    problems[#problems + 1] = { path = "toolzz", message = doc.toolzz == nil and "is required: 1 (the file format's version)"
      or "must be 1: this toolzz reads version 1 files" }
  end
  if doc.safety ~= nil then
    if not is_object(doc.safety) then
      problems[#problems + 1] = { path = "safety", message = "must be an object" }
    else
      unknown_keys(doc.safety, SAFETY_SET, SAFETY_FIELDS, "safety", problems)
      local m = doc.safety.maxUpdates
      if m ~= nil then
        if type(m) ~= "number" or m < 0 or m ~= math_floor(m) or m >= 2 ^ 53 then
          problems[#problems + 1] = { path = "safety.maxUpdates", message = "must be a whole number, 0 or more" }
        else
          out.safety = { maxUpdates = m }
        end
      end
    end
  end
  out.units = setmetatable({}, array_mt)
  if doc.units == nil then
    problems[#problems + 1] = { path = "units", message = "is required: an array of units" }
  elseif not is_array(doc.units) then
    problems[#problems + 1] = { path = "units", message = "must be an array of units, got " .. type_of(doc.units) }
  else
    local keys_seen, units_seen, files = {}, {}, { secrets = {}, texts = {} }
    for i, unit in ipairs(doc.units) do
      local u = check_unit(unit, "units[" .. i .. "]", base_dir, problems, keys_seen, units_seen, files)
      if u then out.units[#out.units + 1] = u end
    end
    -- a text that is a secret's file would show the secret in the plan
    for _, t in ipairs(files.texts) do
      if files.secrets[t.id] then
        problems[#problems + 1] = { path = t.path, message = t.name .. " is the file of a secret reference: "
          .. "a secret is never shown, write the text in a file of its own" }
      end
    end
  end
  if #problems > 0 then return nil, errors.validation(problems) end
  return out
end

-- JSON text of a desired-state file -> the checked desired table, or nil,
-- a validation error (syntax, repeated keys and every other problem). A
-- saved plan (an object with `toolzz_plan`) comes back as it is, for
-- client.sync.apply, which checks it.
function _M.decode(text, base_dir)
  if type(text) ~= "string" then
    return nil, errors.validation { { path = "", message = "the file's text must be a string, got " .. type(text) } }
  end
  local doc, duplicates = json.decode(text)
  if doc == nil then
    return nil, errors.validation { { path = "", message = "not JSON: " .. duplicates } }
  end
  if is_object(doc) and doc.toolzz_plan ~= nil then -- a saved plan: client.sync.apply checks it
    if #duplicates > 0 then return nil, errors.validation(duplicates) end
    return doc
  end
  return _M.check(doc, base_dir, duplicates, true) -- our own reader's tables: no copy needed
end

-- A file's path -> its checked desired table, or nil, err (config: cannot
-- read it; validation: its problems).
function _M.load(path)
  if type(path) ~= "string" then return nil, errors.config("the desired-state file's path must be a string") end
  local f, why = open(path, "rb")
  if not f then return nil, errors.config("cannot read " .. path .. ": " .. tostring(why)) end
  local text = f:read("*a")
  f:close()
  local dir = match(path, "^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local base_dir = absolute(dir, "."):gsub("/%.$", "")
  return _M.decode(text or "", base_dir)
end

return _M

-- toolzz.cli.input: what the toolzz command reads. A body from a JSON file
-- or stdin, the --set PATH=VALUE and --set-file PATH=FILE assignments laid
-- over it, and the lines of a batch file.
--
-- Every function returns its result, or nil and a message for the user:
-- nothing here raises on bad input.
local core = require "toolzz.core"
local validate = require "toolzz.validate"
local cjson = require "cjson"

local type, pcall, tonumber, tostring, next, ipairs, setmetatable, getmetatable, rawget =
  type, pcall, tonumber, tostring, next, ipairs, setmetatable, getmetatable, rawget
local find, match, gsub, gmatch, sub = string.find, string.match, string.gsub, string.gmatch, string.sub
local concat = table.concat

local _M = {}

local null = cjson.null

-- A decoder of our own: JSON null is toolzz.null, NaN and Infinity are not JSON.
local decoder = cjson.new()
decoder.decode_invalid_numbers(false)

-- lua-cjson decodes [] and {} alike, as an empty table. So that an empty
-- array the user wrote is sent as [], each [] (outside strings) is decoded
-- as a one-item array holding EMPTY, then made an empty toolzz.array.
local EMPTY = "\0toolzz:empty-array\0"
local EMPTY_JSON = '["\\u0000toolzz:empty-array\\u0000"]'

local function mark_empty_arrays(text)
  if not find(text, "%[[ \t\r\n]*%]") then return text end
  local out, from, i = {}, 1, 1
  while true do
    local at = find(text, '["%[]', i)
    if not at then break end
    if sub(text, at, at) == '"' then -- skip the string, escapes included
      local j = at + 1
      while true do
        local q = find(text, '[\\"]', j)
        if not q then return text end -- unterminated: let the decoder say so
        if sub(text, q, q) == "\\" then j = q + 2 else i = q + 1 break end
      end
    else
      local close = match(text, "^%[[ \t\r\n]*()%]", at)
      if close then
        out[#out + 1] = sub(text, from, at - 1)
        out[#out + 1] = EMPTY_JSON
        from = close + 1
        i = close + 1
      else
        i = at + 1
      end
    end
  end
  out[#out + 1] = sub(text, from)
  return concat(out)
end

local function is_empty_marker(v)
  return type(v) == "table" and rawget(v, 1) == EMPTY and next(v, 1) == nil
end

local function restore_empty_arrays(value)
  if is_empty_marker(value) then return setmetatable({}, core.array_mt) end
  local stack, seen = { value }, {}
  while #stack > 0 do
    local t = stack[#stack]
    stack[#stack] = nil
    if type(t) == "table" and not seen[t] then
      seen[t] = true
      for k, v in next, t do
        if is_empty_marker(v) then t[k] = setmetatable({}, core.array_mt)
        elseif type(v) == "table" then stack[#stack + 1] = v end
      end
    end
  end
  return value
end

-- JSON text -> value, or nil, message. Empty arrays come back as toolzz.array.
local function decode(text)
  local ok, value = pcall(decoder.decode, mark_empty_arrays(text))
  if ok then return restore_empty_arrays(value) end
  local _, why = pcall(decoder.decode, text) -- the message about the user's own text
  return nil, (gsub(tostring(why), "^.-:%d+: ", ""))
end
_M.decode = decode

-- Schema field types whose values are JSON strings.
local STRING_TYPES = {
  string = true, uuid = true, timezone = true, email = true, url = true, digits = true, const = true,
}

-- The spec of the field at `keys` in an object schema, or nil.
local function field_spec(spec, keys)
  for i = 1, #keys do
    local fields = type(spec) == "table" and spec.fields
    if type(fields) ~= "table" then return nil end
    spec = rawget(fields, keys[i])
  end
  return spec
end
_M.field_spec = field_spec

-- The value of --set PATH=TEXT: TEXT as JSON when it parses as JSON, else
-- TEXT itself. Where the schema says the field holds a string, a JSON number
-- or boolean is taken as its text (googleId=109876543210987654321 stays
-- exact); `null` is always toolzz.null. `[]` is written back as an array.
function _M.parse_value(text, spec)
  local value = decode(text)
  if value == nil then return text end
  if value == null or type(value) == "string" then return value end
  if type(spec) == "table" and STRING_TYPES[spec.type] and type(value) ~= "table" then
    return text
  end
  if type(value) == "table" and next(value) == nil and find(text, "^%s*%[") then
    setmetatable(value, core.array_mt)
  end
  return value
end

-- "a.b.c=value" -> { "a", "b", "c" }, "value"; or nil, message.
-- A key of digits is an array index (outputs.1.type): see set_path.
function _M.split_assignment(text)
  local path, value = match(text, "^([^=]*)=(.*)$")
  if not path then return nil, "'" .. text .. "' is not PATH=VALUE" end
  if path == "" then return nil, "'" .. text .. "' has no path before '='" end
  local keys = {}
  for key in gmatch(path .. ".", "([^.]*)%.") do
    if key == "" then return nil, "'" .. path .. "' has an empty key" end
    local index = match(key, "^[1-9]%d*$") and tonumber(key)
    keys[#keys + 1] = index or key
  end
  return keys, value
end

-- Is t an array: a sequence, or an empty table marked as an array?
local function is_array(t)
  return rawget(t, 1) ~= nil or (next(t) == nil and getmetatable(t) == core.array_mt)
end

-- The key an index takes in node: an array's own index (which must be an
-- item of it, or the one after its last); else (an object, or one made on
-- the way) the item number as a string, the item edit of a patch
-- ({ ["2"] = { … } }: change that item of the array read), never a new
-- array that would replace the one read. nil, message when out of range.
local function index_key(node, index, path)
  if not is_array(node) then return tostring(index) end
  if index > #node + 1 then
    return nil, "'" .. path .. "' has " .. #node .. " items: there is no item " .. index
  end
  return index
end

-- Set body[keys[1]][keys[2]]... = value, making the objects on the way; an
-- index (a number key) goes through index_key. Returns true, or nil,
-- message when a step is not an object or an index is out of range.
function _M.set_path(body, keys, value)
  local node = body
  for i = 1, #keys do
    local key, why = keys[i]
    if type(key) == "number" then
      local where = {}
      for k = 1, i - 1 do where[k] = tostring(keys[k]) end
      key, why = index_key(node, key, concat(where, "."))
      if not key then return nil, why end
    end
    if i == #keys then
      node[key] = value
      return true
    end
    local child = node[key]
    if child == nil then
      child = {}
      node[key] = child
    elseif type(child) ~= "table" then
      local where = {}
      for k = 1, i do where[k] = tostring(keys[k]) end
      return nil, "'" .. concat(where, ".") .. "' is not an object"
    end
    node = child
  end
  return true
end

-- A reader of files named on the command line, where "-" is stdin (read once).
function _M.reader(stdin)
  local stdin_used = false
  return function(path)
    local file, why, content
    if path == "-" then
      if stdin_used then return nil, "stdin ('-') can be read only once" end
      stdin_used = true
      content = stdin:read("*a")
      if content == nil then return nil, "stdin cannot be read" end
      return content
    end
    file, why = io.open(path, "rb")
    if not file then return nil, why end
    content, why = file:read("*a")
    file:close()
    if content == nil then return nil, path .. ": " .. tostring(why) end
    return content
  end
end

-- A JSON object from a file; the file's name is in every message.
function _M.read_object(read, path)
  local text, why = read(path)
  if not text then return nil, why end
  local value
  value, why = decode(text)
  local name = path == "-" and "stdin" or path
  if value == nil then return nil, name .. ": not JSON: " .. why end
  if type(value) ~= "table" or (next(value) ~= nil and value[1] ~= nil) then
    return nil, name .. ": not a JSON object"
  end
  return value
end

-- The body (or changes) a command sends: the object in `file` if one is
-- given, then each assignment in command-line order. An assignment is
-- { "set", "PATH=VALUE" } or { "set_file", "PATH=FILE" }; `spec` (the
-- endpoint's schema) tells which fields hold strings. Returns the body and
-- the values read by --set-file (secrets to keep out of any output), or nil,
-- message.
function _M.build_body(read, file, assignments, spec)
  local body, why = {}
  if file then
    body, why = _M.read_object(read, file)
    if not body then return nil, why end
  end
  local from_files = {}
  for _, assignment in ipairs(assignments or {}) do
    local option, text = assignment[1], assignment[2]
    local keys, raw = _M.split_assignment(text)
    if not keys then return nil, "--" .. gsub(option, "_", "-") .. " " .. raw end
    local value
    if option == "set_file" then
      value, why = read(raw)
      if not value then return nil, "--set-file " .. text .. ": " .. why end
      value = gsub(value, "\r?\n$", "")
      from_files[#from_files + 1] = value
    else
      value = _M.parse_value(raw, field_spec(spec, keys))
    end
    local ok
    ok, why = _M.set_path(body, keys, value)
    if not ok then return nil, "--" .. gsub(option, "_", "-") .. " " .. text .. ": " .. why end
  end
  return body, from_files
end

-- The line that follows the validation error of an update whose body held
-- fields of a record as read (`get` output sent back): the exact patch
-- command that changes some fields and keeps the rest. nil for any other
-- error. id is shown only when it is a UUID (it is the user's argument).
local EXAMPLE_FIELD = { calcom = "prompt", gcal = "description" }
function _M.patch_advice(endpoint, op, id, err)
  if op ~= "update" or type(err) ~= "table" or err.kind ~= "validation" or type(err.fields) ~= "table" then
    return nil
  end
  for _, f in ipairs(err.fields) do
    if type(f) == "table" and type(f.message) == "string" and find(f.message, validate.READ_ONLY, 1, true) == 1 then
      return "toolzz: to change some fields of a record, send only those to patch (it reads the record and keeps "
        .. "the rest): toolzz " .. endpoint .. " patch " .. (core.uuid_valid(id) and id or "ID") .. " --set "
        .. (EXAMPLE_FIELD[endpoint] or "FIELD") .. "=VALUE (or -f FILE holding only the changed fields)"
    end
  end
  return nil
end

-- ---- batch files --------------------------------------------------------------

-- The keys a batch line may have.
local LINE_KEYS = { op = true, id = true, fields = true }

-- One line of a batch file -> the client.batch item, or nil, message.
-- `operations` maps an op name to { takes_id =, takes_body = }.
function _M.batch_item(text, operations)
  local line, why = decode(text)
  if line == nil then return nil, "not JSON: " .. why end
  if type(line) ~= "table" or line[1] ~= nil then return nil, "not a JSON object" end
  for key in next, line do
    if not LINE_KEYS[key] then
      return nil, "unknown key '" .. tostring(key) .. "' (a line has op, id and fields)"
    end
  end
  local op = line.op
  local operation = type(op) == "string" and operations[op]
  if not operation then
    return nil, (op == nil and "no op" or ("unknown op " .. (type(op) == "string" and "'" .. op .. "'" or type(op))))
  end
  local item = { op }
  if operation.takes_id then
    if line.id == nil then return nil, op .. " needs an id" end
    item[#item + 1] = line.id
  elseif line.id ~= nil then
    return nil, op .. " takes no id"
  end
  if operation.takes_body then
    if line.fields == nil then return nil, op .. " needs fields" end
    item[#item + 1] = line.fields
  elseif line.fields ~= nil then
    return nil, op .. " takes no fields"
  end
  return item
end

-- The lines of a batch file: a list of { number =, text = }, blank lines left out.
function _M.batch_lines(text)
  local lines, number = {}, 0
  for line in gmatch(text, "([^\n]*)\n?") do
    number = number + 1
    line = gsub(line, "\r$", "")
    if find(line, "%S") then lines[#lines + 1] = { number = number, text = line } end
  end -- (the empty match after a final newline is blank, so left out)
  return lines
end

_M.null = null

return _M

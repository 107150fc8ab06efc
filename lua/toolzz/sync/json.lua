-- toolzz.sync.json: a JSON reader for desired-state files that notices what
-- lua-cjson hides: a key repeated inside one object (cjson keeps the last one
-- silently). Arrays come back marked with core.array_mt (written as arrays
-- again even when empty), null as cjson.null. Written for this module; it
-- reads one document of ordinary size (a file a person keeps in git).
local core = require "toolzz.core"
local null = require("cjson").null

local byte, sub, find, char, format = string.byte, string.sub, string.find, string.char, string.format
local concat = table.concat
local tonumber, setmetatable, floor, type = tonumber, setmetatable, math.floor, type
local tointeger = math.tointeger -- nil before 5.3

local _M = {}

local MAX_DEPTH = 200 -- nesting levels read (a file deeper than this is not a desired-state file)

local array_mt = core.array_mt

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t" }

-- A code point as UTF-8 bytes.
local function utf8_bytes(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64, 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- The line and column of byte position pos in text.
local function where(text, pos)
  local line, start = 1, 1
  while true do
    local nl = find(text, "\n", start, true)
    if not nl or nl >= pos then break end
    line, start = line + 1, nl + 1
  end
  return "line " .. line .. ", column " .. (pos - start + 1)
end

-- The path of the value being read, from the stack of keys (strings) and
-- 1-based indexes (numbers) above it: units[1].calcom[2].title. Built only
-- when a problem is reported.
local function path_of(stack, n)
  local parts = {}
  for i = 1, n do
    local step = stack[i]
    if type(step) == "number" then parts[#parts + 1] = "[" .. step .. "]"
    else parts[#parts + 1] = (#parts > 0 and "." or "") .. step end
  end
  return concat(parts)
end

-- text -> value, duplicates | nil, message. duplicates is a list of
-- { path =, message = } for every key repeated inside one object (the
-- value kept is the first one's); message names the line and column of a
-- syntax error.
function _M.decode(text)
  if not core.utf8_valid(text) then return nil, "the file is not valid UTF-8 text" end
  local pos = 1
  local duplicates = {}
  local stack = {} -- keys and indexes from the root to the value being read
  local fail -- set by error(): a message

  -- end the read with message, at the current position
  local function stop(message)
    fail = where(text, pos) .. ": " .. message
    error(fail, 0)
  end

  -- move past whitespace
  local function skip()
    pos = find(text, "[^ \t\r\n]", pos) or #text + 1
  end

  -- the string at pos (escapes decoded); pos moves past it
  local function read_string()
    local start = pos + 1
    local j = find(text, '["\\%z\1-\31]', start)
    if j and byte(text, j) == 34 then -- no escape: the common case, no table made
      pos = j + 1
      return sub(text, start, j - 1)
    end
    local parts, i = {}, start
    while true do
      j = find(text, '["\\%z\1-\31]', i)
      if not j then pos = #text + 1 stop("a string is not closed") end
      local c = byte(text, j)
      if c == 34 then
        parts[#parts + 1] = sub(text, i, j - 1)
        pos = j + 1
        return concat(parts)
      elseif c == 92 then
        parts[#parts + 1] = sub(text, i, j - 1)
        local e = byte(text, j + 1)
        if e == 117 then
          local hex = sub(text, j + 2, j + 5)
          if not find(hex, "^%x%x%x%x$") then pos = j stop("bad \\u escape in a string") end
          local cp = tonumber(hex, 16)
          local after = j + 6
          if cp >= 0xD800 and cp <= 0xDBFF then
            local low = find(text, "^\\u[dD][c-fC-F]%x%x", after) and tonumber(sub(text, after + 2, after + 5), 16)
            if not low then pos = j stop("a lone UTF-16 surrogate in a \\u escape") end
            cp = 0x10000 + (cp - 0xD800) * 1024 + (low - 0xDC00)
            after = after + 6
          elseif cp >= 0xDC00 and cp <= 0xDFFF then
            pos = j stop("a lone UTF-16 surrogate in a \\u escape")
          end
          parts[#parts + 1] = utf8_bytes(cp)
          i = after
        elseif e and ESCAPES[e] then
          parts[#parts + 1] = ESCAPES[e]
          i = j + 2
        else
          pos = j stop("bad escape in a string")
        end
      else
        pos = j stop("a control character inside a string (write it as an escape)")
      end
    end
  end

  -- the number at pos (an integer where 5.3+ has them); pos moves past it
  local function read_number()
    local s, e = find(text, "^-?%d+", pos)
    if not s or find(text, "^-?0%d", pos) then stop("bad number") end
    local integer = true
    local fs, fe = find(text, "^%.%d+", e + 1)
    if fs then e, integer = fe, false end
    local xs, xe = find(text, "^[eE][-+]?%d+", e + 1)
    if xs then e, integer = xe, false end
    local n = tonumber(sub(text, pos, e))
    if integer and tointeger then n = tointeger(n) or n end
    pos = e + 1
    return n
  end

  local read_value

  -- the object at pos; a repeated key is noted, its first value kept
  local function read_object(depth)
    pos = pos + 1
    local obj, seen = {}, {}
    skip()
    if byte(text, pos) == 125 then pos = pos + 1 return obj end
    while true do
      if byte(text, pos) ~= 34 then stop("expected a key in double quotes") end
      local key = read_string()
      skip()
      if byte(text, pos) ~= 58 then stop("expected ':' after a key") end
      pos = pos + 1
      skip()
      stack[depth] = key
      local value = read_value(depth + 1)
      if seen[key] then
        duplicates[#duplicates + 1] = { path = path_of(stack, depth),
          message = 'the key "' .. key .. '" appears more than once in this object (only one can count): remove the others' }
      else
        seen[key] = true
        obj[key] = value
      end
      skip()
      local c = byte(text, pos)
      if c == 125 then pos = pos + 1 return obj end
      if c ~= 44 then stop("expected ',' or '}' in an object") end
      pos = pos + 1
      skip()
    end
  end

  -- the array at pos, marked as an array
  local function read_array(depth)
    pos = pos + 1
    local arr = setmetatable({}, array_mt)
    skip()
    if byte(text, pos) == 93 then pos = pos + 1 return arr end
    local n = 0
    while true do
      n = n + 1
      stack[depth] = n
      arr[n] = read_value(depth + 1)
      skip()
      local c = byte(text, pos)
      if c == 93 then pos = pos + 1 return arr end
      if c ~= 44 then stop("expected ',' or ']' in an array") end
      pos = pos + 1
      skip()
    end
  end

  -- any value at pos, depth levels down
  function read_value(depth)
    if depth > MAX_DEPTH then stop("nested more than " .. MAX_DEPTH .. " levels deep") end
    local c = byte(text, pos)
    if c == 123 then return read_object(depth) end
    if c == 91 then return read_array(depth) end
    if c == 34 then return read_string() end
    if c == 45 or (c and c >= 48 and c <= 57) then return read_number() end
    if find(text, "^true", pos) then pos = pos + 4 return true end
    if find(text, "^false", pos) then pos = pos + 5 return false end
    if find(text, "^null", pos) then pos = pos + 4 return null end
    if not c then stop("the text ends where a value was expected") end
    stop(format("unexpected %q where a value was expected", sub(text, pos, pos)))
  end

  local ok, value = pcall(function()
    skip()
    local v = read_value(1)
    skip()
    if pos <= #text then stop("more text after the JSON value") end
    return v
  end)
  if not ok then
    if fail then return nil, fail end
    error(value, 0) -- not ours: a bug, not data
  end
  return value, duplicates
end

return _M

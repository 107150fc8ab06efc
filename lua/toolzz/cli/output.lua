-- toolzz.cli.output: what the toolzz command prints. JSON (one line, or
-- indented by two spaces for people), aligned tables of records, error
-- tables for batch results, and the redaction of secrets in all of them.
local core = require "toolzz.core"
local cjson = require "cjson"
local errors = require "toolzz.errors"
local schema = require "toolzz.schema"

local type, pairs, ipairs, next, tostring, pcall, getmetatable, setmetatable =
  type, pairs, ipairs, next, tostring, pcall, getmetatable, setmetatable
local find, sub, rep, gsub, format, byte = string.find, string.sub, string.rep, string.gsub, string.format, string.byte
local concat = table.concat
local floor, huge = math.floor, math.huge
local math_type, tointeger = math.type, math.tointeger -- nil on 5.1 and LuaJIT

local _M = {}

local null = cjson.null
local array_mt = core.array_mt
_M.REDACTED = "[REDACTED]"
local MAX_OUTPUT_BYTES = 2 ^ 40

-- ---- text safe for a terminal -------------------------------------------------------

-- Code points a terminal acts on rather than shows: the C1 controls
-- (U+0080-U+009F: U+009B is CSI on some terminals) and the bidi controls
-- that reorder what follows (U+202A-U+202E, U+2066-U+2069; and the marks
-- U+061C, U+200E, U+200F).
local function is_terminal_control(cp)
  return cp <= 0x9F or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
    or cp == 0x200E or cp == 0x200F or cp == 0x061C
end

-- The code point of the UTF-8 character at the start of run (a byte >= 0x80
-- and the continuation bytes after it), and its length; nil when the run
-- does not start with a well-formed character (stray continuation byte,
-- bad lead, truncated, overlong, surrogate, above U+10FFFF).
local function first_character(run)
  local b, n = byte(run, 1), #run
  local need, cp
  if b >= 0xC2 and b <= 0xDF then need, cp = 2, b - 0xC0
  elseif b >= 0xE0 and b <= 0xEF then need, cp = 3, b - 0xE0
  elseif b >= 0xF0 and b <= 0xF4 then need, cp = 4, b - 0xF0
  else return nil end
  if n < need then return nil end
  for i = 2, need do cp = cp * 64 + (byte(run, i) - 0x80) end
  if (need == 3 and (cp < 0x800 or (cp >= 0xD800 and cp <= 0xDFFF))) or (need == 4 and (cp < 0x10000 or cp > 0x10FFFF)) then
    return nil
  end
  return cp, need
end

-- s with its bytes >= 0x80 made safe: a well-formed UTF-8 character stays,
-- unless it is a terminal control (then control(cp) replaces it); every
-- byte outside a well-formed character becomes `invalid`.
local function neutralise(s, control, invalid)
  if not find(s, "[\128-\255]") then return s end
  return (gsub(s, "[\128-\255][\128-\191]*", function(run)
    local cp, length = first_character(run)
    if not cp then return rep(invalid, #run) end
    local rest = #run - length
    if not is_terminal_control(cp) then
      if rest == 0 then return nil end -- (kept as it is)
      return sub(run, 1, length) .. rep(invalid, rest)
    end
    return control(cp) .. rep(invalid, rest)
  end))
end

local REPLACEMENT = "\239\191\189" -- U+FFFD
local function space() return " " end

-- Text fit for one line of a terminal: control characters (C0, DEL, C1)
-- and bidi controls become spaces, bytes outside UTF-8 become U+FFFD.
local function one_line(s)
  return neutralise((gsub(s, "%c", " ")), space, REPLACEMENT)
end
_M.one_line = one_line

-- ---- which keys are secrets, which hold arrays ----------------------------------

-- Field names marked `secret` in any schema, and those marked `array`.
local function schema_fields(kind_of)
  local names = {}
  local function walk(spec, depth)
    if type(spec) ~= "table" or depth > 8 or type(spec.fields) ~= "table" then return end
    for name, field in pairs(spec.fields) do
      if type(field) == "table" then
        if kind_of(field) then names[name] = true end
        walk(field, depth + 1)
      end
    end
  end
  for _, spec in pairs(schema) do walk(spec, 0) end
  return names
end

-- Secret fields: the schema's, and those the contract names (a Cal.com
-- apiKey comes back masked, but is a secret all the same).
local SECRET_KEYS = schema_fields(function(field) return field.secret == true end)
SECRET_KEYS.googleToken, SECRET_KEYS.apiKey = true, true
_M.SECRET_KEYS = SECRET_KEYS

-- Keys whose empty value is an empty JSON array: the schema's arrays and the
-- response's lists (JSON decoding cannot tell [] from {}).
local ARRAY_KEYS = schema_fields(function(field) return field.type == "array" end)
for _, key in ipairs { "googleCalendarPlugin", "discordPlugin", "telegramPlugin", "data", "items" } do
  ARRAY_KEYS[key] = true
end
_M.ARRAY_KEYS = ARRAY_KEYS

-- ---- values to print ----------------------------------------------------------------

-- A copy of `value` fit to print: secret fields replaced by "[REDACTED]"
-- (unless show_secrets), every `secrets` string scrubbed from every string,
-- whole floats written as integers (5.4 decodes 0 as 0.0), known lists as [].
-- A secret field's value is redacted whatever its type (an object too);
-- keys are scrubbed like values; what lies deeper than MAX_PRINT_DEPTH
-- levels is replaced by TOO_DEEP, never printed some other way.
local MAX_PRINT_DEPTH = 64
_M.TOO_DEEP = "[nested too deep]"
function _M.printable(value, secrets, show_secrets)
  secrets = secrets or {}
  local function copy(v, key, depth)
    local t = type(v)
    if key ~= nil and not show_secrets and SECRET_KEYS[key] and v ~= null then
      return _M.REDACTED
    end
    if t == "string" then return errors.scrub(v, secrets) end
    if t == "number" then
      if math_type and math_type(v) == "float" and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
        return tointeger(v)
      end
      return v
    end
    if t ~= "table" then return v end
    if depth > MAX_PRINT_DEPTH then return _M.TOO_DEEP end
    local out = {}
    for k, x in pairs(v) do
      out[type(k) == "string" and errors.scrub(k, secrets) or k] = copy(x, k, depth + 1)
    end
    if getmetatable(v) == array_mt or (next(out) == nil and ARRAY_KEYS[key]) then
      setmetatable(out, array_mt)
    end
    return out
  end
  return copy(value, nil, 0)
end

-- One line of JSON, keys sorted. Never fails: what the strict encoder
-- refuses (a server's invalid UTF-8) goes through lua-cjson instead.
-- The text is terminal-safe (see terminal_safe_json).
function _M.encode(value)
  local text = core.encode(value, MAX_OUTPUT_BYTES)
  if not text then
    local ok, fallback = pcall(cjson.encode, value)
    text = ok and fallback or cjson.encode(tostring(value))
  end
  return _M.terminal_safe_json(text)
end

local function json_escape(cp) return format("\\u%04x", cp) end

-- JSON text made safe to show on a terminal, meaning unchanged: C1 and
-- bidi controls in its strings written as \u escapes; a byte outside UTF-8
-- (which JSON cannot hold; lua-cjson passes a server's through) as \ufffd.
function _M.terminal_safe_json(text)
  return neutralise(text, json_escape, "\\ufffd")
end

-- Compact JSON text (as encode writes it: no spaces) indented by two spaces.
function _M.pretty(text)
  local out, depth, i, n = {}, 0, 1, #text
  while i <= n do
    local c = sub(text, i, i)
    if c == '"' then
      local j = i + 1
      while true do
        local q = find(text, '["\\]', j)
        if not q then j = n break end
        if sub(text, q, q) == "\\" then j = q + 2 else j = q break end
      end
      out[#out + 1] = sub(text, i, j)
      i = j + 1
    elseif c == "{" or c == "[" then
      local close = c == "{" and "}" or "]"
      if sub(text, i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 2
      else
        depth = depth + 1
        out[#out + 1] = c .. "\n" .. rep("  ", depth)
        i = i + 1
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      out[#out + 1] = "\n" .. rep("  ", depth) .. c
      i = i + 1
    elseif c == "," then
      out[#out + 1] = ",\n" .. rep("  ", depth)
      i = i + 1
    elseif c == ":" then
      out[#out + 1] = ": "
      i = i + 1
    else -- a number, true, false or null
      local j = find(text, '[,:%]}]', i) or n + 1
      out[#out + 1] = sub(text, i, j - 1)
      i = j
    end
  end
  return concat(out)
end

-- Replace the string value of each secret key in compact JSON text by
-- "[REDACTED]", leaving every other byte as it was.
function _M.redact_json_text(text)
  for key in pairs(SECRET_KEYS) do
    local pattern = '"' .. key .. '":"'
    local start = find(text, pattern, 1, true)
    while start do
      local value_start = start + #pattern
      local j = value_start
      while true do
        local q = find(text, '["\\]', j)
        if not q then return text end -- not JSON: leave it
        if sub(text, q, q) == "\\" then j = q + 2 else j = q break end
      end
      text = sub(text, 1, value_start - 1) .. _M.REDACTED .. sub(text, j)
      start = find(text, pattern, value_start + #_M.REDACTED, true)
    end
  end
  return text
end

-- ---- tables for people ------------------------------------------------------------------

-- Display width of a UTF-8 string (one column per character).
local function width(s)
  local _, count = gsub(s, "[^\128-\191]", "")
  return count
end


local function cell(v)
  if v == nil or v == null then return "-" end
  if v == true then return "yes" end
  if v == false then return "no" end
  return one_line(tostring(v))
end

-- The columns of a record of either kind.
local COLUMNS = {
  { "ID", function(r) return r.id end },
  { "NAME", function(r) if r.title ~= nil then return r.title end return r.name end },
  { "UNIT", function(r) if r.unitId ~= nil then return r.unitId end return r.unityId end },
  { "TIMEZONE", function(r)
      if r.timezone ~= nil then return r.timezone end
      local plugin = type(r.googleCalendarPlugin) == "table" and r.googleCalendarPlugin[1]
      return type(plugin) == "table" and plugin.timezone or nil
    end },
  { "ACTIVE", function(r) if r.isActive ~= nil then return r.isActive end return r.isActivated end },
}

-- A list of records (or one record) as an aligned table, one line per record.
function _M.table_view(records)
  if type(records) == "table" and records.id ~= nil then records = { records } end
  local rows, widths = {}, {}
  local header = {}
  for c, column in ipairs(COLUMNS) do
    header[c] = column[1]
    widths[c] = width(column[1])
  end
  rows[1] = header
  for _, record in ipairs(records) do
    local row = {}
    for c, column in ipairs(COLUMNS) do
      local value
      if type(record) == "table" then value = column[2](record) end
      row[c] = cell(value)
      if width(row[c]) > widths[c] then widths[c] = width(row[c]) end
    end
    rows[#rows + 1] = row
  end
  local lines = {}
  for r, row in ipairs(rows) do
    local parts = {}
    for c = 1, #row do
      parts[c] = c < #row and row[c] .. rep(" ", widths[c] - width(row[c])) or row[c]
    end
    lines[r] = concat(parts, "  ")
  end
  return concat(lines, "\n") .. "\n"
end

-- ---- errors ----------------------------------------------------------------------------------

local ERROR_FIELDS = { "kind", "message", "op", "step", "status", "fields", "request_id",
                       "attempts", "retry_after", "data" }

-- An error as a plain table for JSON output.
function _M.error_table(err)
  if type(err) ~= "table" then return { kind = "error", message = tostring(err) } end
  local t = {}
  for _, k in ipairs(ERROR_FIELDS) do t[k] = err[k] end
  return t
end

-- The lines an error is printed as on stderr: one, or for a validation
-- error one per field path.
function _M.error_lines(err, secrets)
  if type(err) ~= "table" then return { "toolzz: " .. errors.scrub(tostring(err), secrets or {}) } end
  local lines = {}
  local prefix = "toolzz: " .. (err.op and (err.op .. ": ") or "")
  if err.kind == "validation" and type(err.fields) == "table" and #err.fields > 0 then
    for _, f in ipairs(err.fields) do
      local path = f.path ~= "" and f.path or "(body)"
      lines[#lines + 1] = prefix .. "validation: " .. path .. ": " .. tostring(f.message)
    end
  else
    lines[1] = tostring(err)
  end
  for i = 1, #lines do lines[i] = errors.scrub(one_line(lines[i]), secrets or {}) end
  return lines
end

-- Elapsed seconds as whole milliseconds.
function _M.ms(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds == huge then return "?" end
  return format("%d", floor(seconds * 1000 + 0.5))
end

return _M

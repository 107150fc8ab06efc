-- toolzz.sync.canonical: canonical JSON for desired-state files, plans and
-- reports (keys sorted bytewise, two-space indent, one trailing newline), so
-- that the same content is the same bytes on every run and Lua version, and
-- a compact form of the same for digests.
local core = require "toolzz.core"
local null = require("cjson").null

local type, pairs, next, getmetatable, tostring, tonumber, pcall, error =
  type, pairs, next, getmetatable, tostring, tonumber, pcall, error
local sort, concat = table.sort, table.concat
local format, gsub, rep, byte, find = string.format, string.gsub, string.rep, string.byte, string.find
local floor, huge = math.floor, math.huge
local math_type = math.type -- nil before 5.3

local _M = {}

local array_mt = core.array_mt

local SHORT = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
-- a character that JSON escapes -> its escape
local function escape_char(c)
  return SHORT[c] or format("\\u%04x", byte(c))
end

-- a string -> its JSON form, quoted (most strings need no escape: no copy)
local function quote(s)
  if not find(s, '[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. gsub(s, '[%c"\\]', escape_char) .. '"'
end

-- Object keys repeat (field names): their quoted forms, kept (up to
-- KEYS_KEPT of them; then the cache starts again).
local KEYS_KEPT = 512
local quoted_keys, keys_kept = {}, 0
local function quote_key(k)
  local q = quoted_keys[k]
  if not q then
    q = quote(k)
    if keys_kept >= KEYS_KEPT then quoted_keys, keys_kept = {}, 0 end
    quoted_keys[k] = q
    keys_kept = keys_kept + 1
  end
  return q
end

-- A number as JSON: integers without a fraction, others in the shortest
-- form that reads back as the same number.
local function number(n)
  if n ~= n or n == huge or n == -huge then error("a number JSON cannot hold: " .. tostring(n), 0) end
  if math_type then
    if math_type(n) == "integer" then return format("%d", n) end
  end
  if n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return format("%.0f", n) end
  for digits = 14, 17 do
    local s = format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
  return format("%.17g", n)
end

-- Is t written as an array? Marked ones always; an unmarked one when it
-- has keys 1..n only (n > 0).
local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in next, t do count = count + 1 end
  return count == n
end

-- an object -> its keys, sorted bytewise (each must be a string)
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("an object key that is not a string: " .. tostring(k), 0) end
    keys[#keys + 1] = k
  end
  sort(keys)
  return keys
end

local sha256 = core.sha256
local DIGEST_PIECES = 4096 -- pieces of text hashed at a time while a digest is written
local digest_state -- the digest so far while one is written (else nil)

-- While a digest is written: hash the pieces in out so far, and empty it.
local function digest_step(out)
  digest_state = sha256(digest_state .. concat(out))
  for i = #out, 1, -1 do out[i] = nil end
end

-- Append the JSON of v to out; indent is nil for the compact form, where
-- an empty table is [] whether it is marked or not (a plan read back with
-- lua-cjson has {} where it had [], and must keep its checksum).
local function write(v, out, indent, depth)
  local t = type(v)
  if v == null then out[#out + 1] = "null"
  elseif t == "string" then out[#out + 1] = quote(v)
  elseif t == "number" then out[#out + 1] = number(v)
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif t == "table" then
    if depth > 100 then error("nested too deep (a cycle?)", 0) end
    local pad = indent and ("\n" .. rep(indent, depth + 1)) or ""
    local close = indent and ("\n" .. rep(indent, depth)) or ""
    local sep = indent and ": " or ":"
    if not indent and next(v) == nil then out[#out + 1] = "[]" return end
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]" return end
      out[#out + 1] = "["
      for i = 1, #v do
        out[#out + 1] = i > 1 and ("," .. pad) or pad
        write(v[i], out, indent, depth + 1)
        if digest_state and #out >= DIGEST_PIECES then digest_step(out) end
      end
      out[#out + 1] = close .. "]"
    else
      local keys = sorted_keys(v)
      if #keys == 0 then out[#out + 1] = "{}" return end
      out[#out + 1] = "{"
      for i = 1, #keys do
        out[#out + 1] = i > 1 and ("," .. pad) or pad
        out[#out + 1] = quote_key(keys[i])
        out[#out + 1] = sep
        write(v[keys[i]], out, indent, depth + 1)
        if digest_state and #out >= DIGEST_PIECES then digest_step(out) end
      end
      out[#out + 1] = close .. "}"
    end
  else
    error("a value JSON cannot hold: " .. t, 0)
  end
end

-- doc -> canonical JSON text (two-space indent, trailing newline), or nil,
-- message for what JSON cannot hold (a function, a cycle, NaN).
function _M.encode(doc)
  local out = {}
  local ok, err = pcall(write, doc, out, "  ", 0)
  if not ok then return nil, err end
  out[#out + 1] = "\n"
  return concat(out)
end

-- value -> the same canonical content without whitespace (what digests read).
function _M.compact(value)
  local out = {}
  write(value, out, nil, 0)
  return concat(out)
end

-- value -> hex digest of its compact canonical form: SHA-256 chained over
-- chunks of the text (each step hashes the digest so far and the next
-- chunk), so that a plan of 10,000 records never holds its whole text.
-- The same content always makes the same chunks, so the same digest.
function _M.digest(value)
  local out = {}
  digest_state = ""
  local ok, err = pcall(write, value, out, nil, 0)
  local state = digest_state
  digest_state = nil
  if not ok then error(err, 0) end
  return sha256(state .. concat(out))
end

return _M

-- toolzz.tables: reading a caller's tables safely.
--
-- raw_copy(v) -> a copy made without running the caller's metamethods;
-- secret_strings(v, out) -> out, with every string found under a secret
-- field's name appended. Both read raw and visit each table once.
local core = require "toolzz.core"
local schema = require "toolzz.schema"

local type, next, setmetatable, getmetatable = type, next, setmetatable, getmetatable

local _M = {}

-- A raw copy (no __index or __pairs of the caller's runs while it is made);
-- only the array marker survives as a metatable. Each table is copied once:
-- a table shared many times, or a cycle, stays shared (a naive copy of one
-- shared k times per level costs k^depth); below 64 levels tables are kept
-- as they are (the encoder refuses such depth anyway).
local function raw_copy(v, depth, seen)
  if type(v) ~= "table" or depth > 64 then return v end
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in next, v do out[k] = raw_copy(x, depth + 1, seen) end
  if getmetatable(v) == core.array_mt then setmetatable(out, core.array_mt) end
  return out
end

-- v (any value) -> its raw copy (see above).
function _M.raw_copy(v) return raw_copy(v, 0, {}) end

-- Append to out every string held under a secret field's name
-- (schema.SECRET_NAMES) anywhere in v (read raw, each table once): what a
-- lax body's unknown objects, a result or client defaults may carry.
-- Returns out.
local SECRET_NAMES = schema.SECRET_NAMES
function _M.secret_strings(v, out)
  local seen, stack = {}, { v }
  while #stack > 0 do
    local t = stack[#stack]
    stack[#stack] = nil
    if type(t) == "table" and not seen[t] then
      seen[t] = true
      for k, x in next, t do
        if type(x) == "string" then
          if SECRET_NAMES[k] then out[#out + 1] = x end
        elseif type(x) == "table" then
          stack[#stack + 1] = x
        end
      end
    end
  end
  return out
end

return _M

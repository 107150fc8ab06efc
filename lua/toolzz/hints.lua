-- toolzz.hints: the "did you mean" of validation messages. A field name
-- close to an unknown key (a typo), a time zone whose name differs from the
-- caller's only in case. Hints name only what toolzz knows (fields of the
-- schema, zones of the shipped database), never the caller's value.
local tzdata = require "toolzz.tzdata"

local byte, lower, gmatch = string.byte, string.lower, string.gmatch

local _M = {}

-- Only for keys this short (a typo of a field name is short), and for this
-- many unknown keys of an object at most, so that their cost stays a small
-- constant per key.
local HINT_MAX_KEY = 64
_M.MAX_KEYS = 16
local HINT_MAX_DISTANCE = 3

-- Edit distance between a and b when it is at most limit, else limit + 1;
-- only the cells within limit of the diagonal are computed.
local function distance(a, b, limit)
  local la, lb = #a, #b
  if la - lb > limit or lb - la > limit then return limit + 1 end
  local over = limit + 1
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j <= limit and j or over end
  for i = 1, la do
    local lo, hi = i - limit, i + limit
    if lo < 1 then lo = 1 end
    if hi > lb then hi = lb end
    cur[lo - 1] = (lo == 1 and i <= limit) and i or over
    local best = cur[lo - 1]
    local ai = byte(a, i)
    for j = lo, hi do
      local d = prev[j - 1] + ((ai == byte(b, j)) and 0 or 1)
      local up = prev[j] == nil and over or prev[j] + 1
      local left = cur[j - 1] + 1
      if up < d then d = up end
      if left < d then d = left end
      if d > over then d = over end
      cur[j] = d
      if d < best then best = d end
    end
    if hi < lb then cur[hi + 1] = over end
    if best > limit then return over end
    prev, cur = cur, prev
  end
  return prev[lb] > over and over or prev[lb]
end

-- ' (did you mean "x"?)' for the name in order (a sorted list) closest to
-- name, or "".
function _M.field(name, order)
  if #name > HINT_MAX_KEY then return "" end
  local best, best_d
  name = lower(name)
  for i = 1, #order do
    local d = distance(name, lower(order[i]), HINT_MAX_DISTANCE)
    if d <= HINT_MAX_DISTANCE and (not best_d or d < best_d) then best, best_d = order[i], d end
  end
  return best and (' (did you mean "' .. best .. '"?)') or ""
end

-- The zones of the database by their lower-case names, built on first use.
local zones_by_lower
-- ' (did you mean "America/Sao_Paulo"?)' when a zone's name differs from
-- name only in case, else "".
function _M.zone(name)
  if #name > HINT_MAX_KEY then return "" end -- zone names are short; keep a long value's cost nil
  if not zones_by_lower then
    zones_by_lower = {}
    for z in gmatch(tzdata.names, "[^\n]+") do zones_by_lower[lower(z)] = z end
  end
  local zone = zones_by_lower[lower(name)]
  return zone and (' (did you mean "' .. zone .. '"?)') or ""
end

return _M

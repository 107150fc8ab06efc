-- toolzz.sync.match: which server record each file record stands for, with
-- no state file (CONTRACT Part 3, "Matching"): by pinned id, else by the
-- kind's natural key (title / name); what no file record matches is
-- unmanaged.
local utf8_valid = require("toolzz.core").utf8_valid

local type, ipairs = type, ipairs

local _M = {}

-- kind (toolzz.sync.kinds), the file's records of one unit and kind, and
-- the server's list for them -> {
--   matched = { { record =, server =, adopted = bool } ... } (file order),
--   creates = { record ... }, failed = { { key =, reason =, ids = } ... },
--   unmanaged = { server ... } (list order),
--   bad_items = { index ... } (list items without an id, or not UTF-8) }
function _M.match(kind, records, items)
  local by_id, by_name, claimed = {}, {}, {}
  local out = { matched = {}, creates = {}, failed = {}, unmanaged = {}, bad_items = {} }
  for i, item in ipairs(items) do
    if type(item) ~= "table" or type(item.id) ~= "string" or item.id == "" or not utf8_valid(item.id) then
      out.bad_items[#out.bad_items + 1] = i
    else
      by_id[item.id] = item
      local name = item[kind.natural_key]
      if type(name) == "string" then
        local list = by_name[name]
        if not list then
          list = {}
          by_name[name] = list
        end
        list[#list + 1] = item
      end
    end
  end
  local result = {} -- record -> its entry, to keep file order
  for _, record in ipairs(records) do -- pinned ids first: adoption never takes a pinned record
    if record.id then
      local item = by_id[record.id]
      if item and not claimed[item] then
        claimed[item] = true
        result[record] = { record = record, server = item, adopted = false }
      else
        result[record] = { failed = { key = record.key, reason = "missing", id = record.id } }
      end
    end
  end
  for _, record in ipairs(records) do
    if not record.id then
      local name = record[kind.natural_key]
      local candidates = {}
      for _, item in ipairs(type(name) == "string" and by_name[name] or {}) do
        if not claimed[item] then candidates[#candidates + 1] = item end
      end
      if #candidates == 1 then
        claimed[candidates[1]] = true
        result[record] = { record = record, server = candidates[1], adopted = true }
      elseif #candidates == 0 then
        result[record] = { create = true }
      else
        local ids = {}
        for i, item in ipairs(candidates) do ids[i] = item.id end
        result[record] = { failed = { key = record.key, reason = "ambiguous", ids = ids } }
      end
    end
  end
  for _, record in ipairs(records) do
    local r = result[record]
    if r.failed then out.failed[#out.failed + 1] = r.failed
    elseif r.create then out.creates[#out.creates + 1] = record
    else out.matched[#out.matched + 1] = r end
  end
  for _, item in ipairs(items) do
    if type(item) == "table" and by_id[item.id] == item and not claimed[item] then
      out.unmanaged[#out.unmanaged + 1] = item
    end
  end
  return out
end

return _M

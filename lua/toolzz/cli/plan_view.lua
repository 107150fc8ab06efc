-- toolzz.cli.plan_view: a sync plan or apply report (plain tables in the
-- shape of their JSON form, CONTRACT Part 3) as text for a terminal. Pure
-- functions: the plan is data, this only renders it (toolzz.cli.plan_markdown
-- renders the same model as Markdown).
--
--   plan_view.plan_text(plan, { color = true, secrets = { token } })
--   plan_view.report_text(report, { color = false })
--
-- Every string that came from a server or a file is made terminal-safe
-- (safe_text); a secret is shown as "(secret)", never its value or reference.
local toolzz = require "toolzz"
local errors = require "toolzz.errors"
local output = require "toolzz.cli.output"
local diff_lines = require "toolzz.cli.line_diff"

local type, pairs, ipairs, next, tostring, tonumber, getmetatable, sort =
  type, pairs, ipairs, next, tostring, tonumber, getmetatable, table.sort
local byte, sub, find, gsub, format, rep = string.byte, string.sub, string.find, string.gsub, string.format, string.rep
local concat = table.concat

local _M = {}

local null = toolzz.null
_M.SECRET = "(secret)"
_M.ARROW = "\226\134\146" -- U+2192

-- ---- terminal-safe text -------------------------------------------------------------

-- Code points a terminal must never receive from data: C1 controls (U+009B
-- starts an escape sequence on some terminals), bidi embeddings, overrides,
-- isolates and marks (they reorder what is shown: "Trojan Source"), line and
-- paragraph separators, and the byte-order mark.
local function hostile_code_point(cp)
  return (cp >= 0x80 and cp <= 0x9F) or cp == 0x61C or cp == 0x200E or cp == 0x200F
    or (cp >= 0x2028 and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069) or cp == 0xFEFF
end

-- The length and code point of the UTF-8 character at s[i], or nil when the
-- bytes there are not one (overlong forms and surrogates included).
local function utf8_at(s, i)
  local b1, b2, b3, b4 = byte(s, i, i + 3)
  if b1 >= 0xC2 and b1 <= 0xDF and b2 and b2 >= 0x80 and b2 <= 0xBF then
    return 2, (b1 - 0xC0) * 64 + (b2 - 0x80)
  end
  if b1 >= 0xE0 and b1 <= 0xEF and b2 and b3 and b3 >= 0x80 and b3 <= 0xBF
      and b2 >= (b1 == 0xE0 and 0xA0 or 0x80) and b2 <= (b1 == 0xED and 0x9F or 0xBF) then
    return 3, ((b1 - 0xE0) * 64 + (b2 - 0x80)) * 64 + (b3 - 0x80)
  end
  if b1 >= 0xF0 and b1 <= 0xF4 and b2 and b3 and b4 and b3 >= 0x80 and b3 <= 0xBF
      and b4 >= 0x80 and b4 <= 0xBF and b2 >= (b1 == 0xF0 and 0x90 or 0x80) and b2 <= (b1 == 0xF4 and 0x8F or 0xBF) then
    return 4, (((b1 - 0xF0) * 64 + (b2 - 0x80)) * 64 + (b3 - 0x80)) * 64 + (b4 - 0x80)
  end
end

-- s with every control character (C0 including tab and newline, DEL, C1),
-- bidi control, separator and byte that is not UTF-8 written as a visible
-- escape (\u001b, \u202e, \xff): nothing in it can move the cursor, change
-- colours or reorder the line, and a hidden character in a diff shows.
local function safe_text(s)
  s = tostring(s)
  if not find(s, "[%z\1-\31\127-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = find(s, "[%z\1-\31\127-\255]", i)
    if not j then out[#out + 1] = sub(s, i) break end
    out[#out + 1] = sub(s, i, j - 1)
    local b = byte(s, j)
    if b < 0x80 then
      out[#out + 1] = format("\\u%04x", b)
      i = j + 1
    else
      local len, cp = utf8_at(s, j)
      if not len then
        out[#out + 1] = format("\\x%02x", b)
        i = j + 1
      else
        out[#out + 1] = hostile_code_point(cp) and format("\\u%04x", cp) or sub(s, j, j + len - 1)
        i = j + len
      end
    end
  end
  return concat(out)
end
_M.safe_text = safe_text

-- JSON text with each hostile code point (see above) inside its strings
-- written as a \u escape: the same JSON value, safe on a terminal.
function _M.json_safe(text)
  return (gsub(text, "[\194\216\226\239][\128-\191][\128-\191]?", function(seq)
    local len, cp = utf8_at(seq, 1)
    if len and hostile_code_point(cp) then
      return format("\\u%04x", cp) .. sub(seq, len + 1)
    end
  end))
end

-- ---- values ---------------------------------------------------------------------------

-- Whether a dotted field path names a secret field (googleToken, apiKey).
local function secret_path(path)
  local last = tostring(path):match("([^%.]+)$")
  return last ~= nil and output.SECRET_KEYS[last] == true
end
_M.secret_path = secret_path

-- A value on one line: JSON (strings quoted, tables as JSON with secrets
-- redacted, an empty list as []), terminal-safe. path: the field it is in.
local function value_text(v, path)
  if v == nil then return "(none)" end
  local name = tostring(path or ""):match("([^%.]+)$") or ""
  return safe_text(output.encode(output.printable({ [name] = v })[name]))
end
_M.value_text = value_text

local function is_multiline(v)
  return type(v) == "string" and find(v, "\n", 1, true) ~= nil
end

local function split_lines(s)
  local lines = {}
  for line in (s .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  return lines
end
_M.split_lines = split_lines

local line_diff, with_context = diff_lines.diff, diff_lines.with_context
_M.line_diff, _M.with_context = line_diff, with_context

-- ---- the model both views render --------------------------------------------------------

local function str(v)
  if v == nil or v == null then return "" end
  return safe_text(v)
end

local function is_array(t)
  return getmetatable(t) == toolzz.array_mt or t[1] ~= nil
end

-- The field items of a create's fields, flattened to dotted paths (arrays
-- stay whole), sorted by path.
local function create_items(fields, prefix, items)
  items = items or {}
  if type(fields) ~= "table" then return items end
  local names = {}
  for k in pairs(fields) do names[#names + 1] = tostring(k) end
  sort(names)
  for _, name in ipairs(names) do
    local v, path = fields[name], prefix and (prefix .. "." .. name) or name
    if secret_path(path) then
      items[#items + 1] = { path = safe_text(path), secret = true }
    elseif type(v) == "table" and next(v) ~= nil and not is_array(v) then
      create_items(v, path, items)
    elseif is_multiline(v) then
      items[#items + 1] = { path = safe_text(path), diff = line_diff({}, split_lines(v)) }
    else
      items[#items + 1] = { path = safe_text(path), new = value_text(v, path) }
    end
  end
  return items
end

-- The field items of an update: { path, secret } | { path, diff } | { path, old, new }.
local function update_items(diff)
  local items = {}
  for _, d in ipairs(type(diff) == "table" and diff or {}) do
    if type(d) == "table" then
      local path = tostring(d.path)
      local item = { path = safe_text(path) }
      if d.secret == true or secret_path(path) then
        item.secret = true
      elseif is_multiline(d.old) or is_multiline(d.new) then
        item.diff = with_context(line_diff(split_lines(type(d.old) == "string" and d.old or ""),
          split_lines(type(d.new) == "string" and d.new or "")), 3)
      else
        item.old, item.new = value_text(d.old, path), value_text(d.new, path)
      end
      if type(d.note) == "string" then item.note = safe_text(d.note) end
      items[#items + 1] = item
    end
  end
  return items
end

local function list_of(t)
  return type(t) == "table" and t or {}
end

-- What the failure of a match says: its reason and, where given, the ids
-- to pin, the odd paths or a message.
local function failure_text(f)
  local parts = { str(f.reason ~= nil and f.reason or "failed") }
  local ids = {}
  for _, id in ipairs(list_of(f.ids)) do ids[#ids + 1] = str(id) end
  if #ids > 0 then parts[#parts + 1] = "ids " .. concat(ids, ", ") end
  local paths = {}
  for _, p in ipairs(list_of(f.paths)) do paths[#paths + 1] = str(p) end
  if #paths > 0 then parts[#parts + 1] = "paths " .. concat(paths, ", ") end
  local problems = {}
  for _, p in ipairs(list_of(f.problems)) do
    problems[#problems + 1] = type(p) == "table" and (str(p.path) .. " " .. str(p.message)) or str(p)
  end
  if #problems > 0 then parts[#parts + 1] = concat(problems, "; ") end
  if f.message ~= nil then parts[#parts + 1] = str(f.message) end
  return concat(parts, ": ")
end

local MARK = { create = "+", update = "~" }

-- The plan as units in order of first mention, each with its rows:
-- { mark, kind, key, id, what, note, change = the change entry, items }.
function _M.model(plan)
  local units, by_id = {}, {}
  local function unit_of(entry)
    local id = str(entry.unit)
    if not by_id[id] then
      by_id[id] = { id = id, rows = {} }
      units[#units + 1] = by_id[id]
    end
    return by_id[id].rows
  end
  for _, c in ipairs(list_of(plan.changes)) do
    if type(c) == "table" then
      local rows, action = unit_of(c), str(c.action)
      local row = { mark = MARK[action] or "~", kind = str(c.kind), key = str(c.key), id = str(c.id),
                    what = action, change = c }
      if c.adopted == true then row.note = "adopted: matched by name, not by id" end
      row.items = action == "create" and create_items(c.fields) or update_items(c.diff)
      rows[#rows + 1] = row
    end
  end
  for _, f in ipairs(list_of(plan.failed)) do
    if type(f) == "table" then
      local rows = unit_of(f)
      rows[#rows + 1] = { mark = "!", kind = str(f.kind), key = str(f.key), id = str(f.id),
                          what = "failed", note = failure_text(f) }
    end
  end
  for _, u in ipairs(list_of(plan.unmanaged)) do
    if type(u) == "table" then
      local rows = unit_of(u)
      local name = u.title ~= nil and u.title or u.name
      rows[#rows + 1] = { mark = "?", kind = str(u.kind), key = "", id = str(u.id), what = "unmanaged",
                          note = name ~= nil and value_text(name) or nil }
    end
  end
  return units
end

-- The plan's remarks, as lines: its notes ({ unit, kind, key, path,
-- message }, e.g. an apiKey that is sent only at create) and the units
-- where not one record matched ({ unit, kind, server, file }: probably the
-- wrong unit, which apply refuses without force).
function _M.remarks(plan)
  local lines = {}
  for _, n in ipairs(list_of(plan.notes)) do
    if type(n) == "table" then
      lines[#lines + 1] = "unit " .. str(n.unit) .. " " .. str(n.kind) .. " " .. str(n.key) .. ": "
        .. (n.message ~= nil and str(n.message) or str(n.path))
    end
  end
  for _, u in ipairs(list_of(plan.unmatched)) do
    if type(u) == "table" then
      lines[#lines + 1] = "unit " .. str(u.unit) .. " " .. str(u.kind) .. ": " .. str(u.server) .. " on the server, "
        .. str(u.file) .. " in the file, not one matched (the wrong unit?): apply refuses this without --force"
    end
  end
  return lines
end

local SUMMARY_ORDER = { "create", "update", "unchanged", "unmanaged", "failed" }

-- The plan's counts as "1 to create, 2 to update, 5 unchanged, ...".
function _M.summary_line(plan)
  local s = type(plan.summary) == "table" and plan.summary or {}
  local parts = {}
  for _, name in ipairs(SUMMARY_ORDER) do
    local n = tonumber(s[name]) or 0
    parts[#parts + 1] = format((name == "create" or name == "update") and "%d to %s" or "%d %s", n, name)
  end
  return concat(parts, ", ")
end

-- Whether the plan has differences: changes, failed matches, or unmanaged
-- records of a unit that is exclusive (marked so on the entry, or named in
-- exclusive_units, a set of unit ids from the desired file).
function _M.has_differences(plan, exclusive_units)
  if #list_of(plan.changes) > 0 or #list_of(plan.failed) > 0 then return true end
  exclusive_units = exclusive_units or {}
  for _, u in ipairs(list_of(plan.unmanaged)) do
    if type(u) == "table" and (u.exclusive == true or exclusive_units[u.unit]) then return true end
  end
  return false
end

-- ---- shared by the views ------------------------------------------------------------------

-- Display width of a UTF-8 string (one column per character).
function _M.width(s)
  local _, count = gsub(s, "[^\128-\191]", "")
  return count
end

-- s padded with spaces to n columns.
function _M.pad(s, n)
  return s .. rep(" ", n - _M.width(s))
end

-- A copy of a plan or report to render: every string the caller named in
-- opts.secrets scrubbed from its strings (before any escaping could hide
-- it), {} when it is not a table.
function _M.scrubbed(t, opts)
  if type(t) ~= "table" then return {} end
  return output.printable(t, opts.secrets or {}, true)
end

-- The lines as one text, without trailing blanks, with every secret the
-- caller named scrubbed from it.
function _M.finish(lines, opts)
  for i = 1, #lines do lines[i] = gsub(lines[i], " +$", "") end
  return errors.scrub(concat(lines, "\n") .. "\n", opts.secrets or {})
end

-- ---- the apply report -------------------------------------------------------------------

local OUTCOMES = { "applied", "failed", "skipped", "unknown" }
_M.OUTCOMES = OUTCOMES

_M.OUTCOME_NOTE = {
  skipped = "changed since it was read (stale): not written",
  unknown = "sent, no answer: never re-sent; the next plan adopts it by name",
}

-- What went wrong with one change: kind, status, message, request id.
function _M.error_text(e)
  if type(e) ~= "table" then return e ~= nil and str(e) or "" end
  local parts = {}
  if e.kind ~= nil then parts[#parts + 1] = str(e.kind) end
  if e.status ~= nil then parts[#parts + 1] = "status " .. str(e.status) end
  local head = concat(parts, " ")
  if e.message ~= nil then head = head .. (head ~= "" and ": " or "") .. str(e.message) end
  if e.request_id ~= nil then head = head .. " (request id " .. str(e.request_id) .. ")" end
  return head
end

-- The report's counts as "3 applied, 1 failed, 0 skipped, 0 unknown",
-- counted from its changes (what the lines above the count show).
function _M.report_summary_line(report)
  local counts = {}
  for _, c in ipairs(list_of(report.changes)) do
    if type(c) == "table" and c.outcome ~= nil then counts[c.outcome] = (counts[c.outcome] or 0) + 1 end
  end
  local parts = {}
  for _, name in ipairs(OUTCOMES) do parts[#parts + 1] = format("%d %s", counts[name] or 0, name) end
  return concat(parts, ", ")
end

-- The report's changes as units in order of first mention, each with its
-- rows: { mark, action, kind, key, id, outcome, why }.
function _M.report_model(report)
  local units, by_id = {}, {}
  for _, c in ipairs(list_of(report.changes)) do
    if type(c) == "table" then
      local id = str(c.unit)
      if not by_id[id] then
        by_id[id] = { id = id, rows = {} }
        units[#units + 1] = by_id[id]
      end
      local outcome = str(c.outcome)
      local rows = by_id[id].rows
      rows[#rows + 1] = { mark = MARK[c.action] or "~", action = str(c.action), kind = str(c.kind), key = str(c.key),
                          id = str(c.id), outcome = outcome,
                          why = c.error ~= nil and _M.error_text(c.error) or _M.OUTCOME_NOTE[outcome] }
    end
  end
  return units
end

return _M

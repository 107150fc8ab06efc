-- toolzz.cli.plan_text: a sync plan and an apply report as text for a
-- terminal (what `toolzz plan` and `toolzz apply` print by default), from
-- the model toolzz.cli.plan_view builds. ANSI colours only when asked.
--
--   plan_text.plan(plan, { color = true, secrets = { token } })
--   plan_text.report(report, { color = false })
local view = require "toolzz.cli.plan_view"

local ipairs, format = ipairs, string.format

local _M = {}

local COLOUR = { ["+"] = "32", ["~"] = "33", ["!"] = "31", ["?"] = "36", ["-"] = "31", bold = "1", dim = "2",
                 applied = "32", failed = "31", skipped = "33", unknown = "35" }

-- A function(what, s) that colours s as `what` when opts.color, else leaves it.
local function painter(opts)
  if not opts.color then return function(_, s) return s end end
  return function(what, s)
    local code = COLOUR[what]
    return code and ("\27[" .. code .. "m" .. s .. "\27[0m") or s
  end
end

local pad, width, safe_text = view.pad, view.width, view.safe_text

-- The lines of one field item, indented by `indent`, appended to lines.
local function item_lines(item, paint, indent, lines)
  if item.secret then
    lines[#lines + 1] = indent .. item.path .. ": " .. view.SECRET
  elseif item.diff then
    lines[#lines + 1] = indent .. item.path .. ":"
    for _, d in ipairs(item.diff) do
      if d[1] == "..." then
        lines[#lines + 1] = indent .. "    "
          .. paint("dim", format("... %d unchanged line%s", d[2], d[2] == 1 and "" or "s"))
      elseif d[1] == " " then
        lines[#lines + 1] = indent .. "    " .. safe_text(d[2])
      else
        lines[#lines + 1] = indent .. "  " .. paint(d[1], d[1] .. " " .. safe_text(d[2]))
      end
    end
  elseif item.old then
    lines[#lines + 1] = indent .. item.path .. ": " .. paint("-", item.old) .. " " .. view.ARROW .. " "
      .. paint("+", item.new)
  else
    lines[#lines + 1] = indent .. item.path .. ": " .. item.new
  end
  if item.note then lines[#lines + 1] = indent .. "  (" .. item.note .. ")" end
end

-- The plan as text: a summary per unit (+ create, ~ update, ! failed,
-- ? unmanaged, with keys and ids), the totals, then each change's fields
-- (old → new, a line diff for multi-line text, (secret) for secrets) and
-- the checksum. opts: color (ANSI colours), secrets (strings to scrub).
function _M.plan(plan, opts)
  opts = opts or {}
  plan = view.scrubbed(plan, opts)
  local paint, lines = painter(opts), {}
  local units = view.model(plan)
  for _, unit in ipairs(units) do
    lines[#lines + 1] = paint("bold", "unit " .. unit.id)
    local key_width = 0
    for _, row in ipairs(unit.rows) do
      if width(row.key) > key_width then key_width = width(row.key) end
    end
    for _, row in ipairs(unit.rows) do
      local line = "  " .. paint(row.mark, row.mark .. " " .. pad(row.what, 9)) .. " " .. pad(row.kind, 6)
        .. " " .. pad(row.key, key_width)
      if row.id ~= "" then line = line .. "  id " .. row.id end
      if row.note then line = line .. "  " .. row.note end
      lines[#lines + 1] = line
    end
  end
  if #units > 0 then lines[#lines + 1] = "" end
  lines[#lines + 1] = "Plan: " .. view.summary_line(plan) .. "."
  if #units == 0 then lines[#lines + 1] = "No changes: the server matches the file." end
  local remarks = view.remarks(plan)
  if #remarks > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Notes:"
    for _, remark in ipairs(remarks) do lines[#lines + 1] = "  " .. remark end
  end
  for _, unit in ipairs(units) do
    for _, row in ipairs(unit.rows) do
      if row.change then
        lines[#lines + 1] = ""
        lines[#lines + 1] = paint(row.mark, row.mark .. " " .. row.what .. " " .. row.kind .. " " .. row.key)
          .. "  (unit " .. unit.id .. (row.id ~= "" and (", id " .. row.id) or "") .. ")"
        for _, item in ipairs(row.items) do item_lines(item, paint, "    ", lines) end
      end
    end
  end
  if plan.checksum ~= nil then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "checksum " .. safe_text(plan.checksum)
  end
  return view.finish(lines, opts)
end

-- The report as text: per unit, one line per change with its outcome
-- (applied, failed with the error's kind, status, message and request id,
-- skipped, unknown), then the totals. opts as for plan.
function _M.report(report, opts)
  opts = opts or {}
  report = view.scrubbed(report, opts)
  local paint, lines = painter(opts), {}
  for _, unit in ipairs(view.report_model(report)) do
    lines[#lines + 1] = paint("bold", "unit " .. unit.id)
    for _, row in ipairs(unit.rows) do
      local line = "  " .. paint(row.outcome, pad(row.outcome, 8)) .. " " .. row.mark .. " " .. pad(row.action, 6)
        .. " " .. pad(row.kind, 6) .. " " .. row.key
      if row.id ~= "" then line = line .. "  id " .. row.id end
      if row.why and row.why ~= "" then line = line .. "  " .. row.why end
      lines[#lines + 1] = line
    end
  end
  lines[#lines + 1] = "Apply: " .. view.report_summary_line(report) .. "."
  return view.finish(lines, opts)
end

return _M

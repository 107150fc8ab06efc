-- toolzz.cli.plan_markdown: a sync plan and an apply report as Markdown
-- (GitHub-flavoured), for a pull-request comment (`toolzz plan --markdown`),
-- from the model toolzz.cli.plan_view builds. Text from a server or a file
-- is terminal-safe first, then every ASCII punctuation character in it is
-- backslash-escaped, so it cannot open a link, an image, HTML, a table cell
-- or emphasis; diffs go in fences longer than any backtick run they hold.
--
--   plan_markdown.plan(plan, { secrets = { token } })
--   plan_markdown.report(report)
local view = require "toolzz.cli.plan_view"

local ipairs, format, gsub, rep, max = ipairs, string.format, string.gsub, string.rep, math.max
local gmatch = string.gmatch

local _M = {}

-- Text (already terminal-safe) with its Markdown-significant characters
-- escaped: every ASCII punctuation character gets a backslash.
local function escape(s)
  return (gsub(s, "%p", "\\%0"))
end
_M.escape = escape

-- A table cell: escaped, "-" when empty.
local function cell(s)
  if s == nil or s == "" then return "" end
  return escape(s)
end

-- A fence longer than every run of backticks in lines (at least three).
local function fence_for(lines)
  local longest = 0
  for _, line in ipairs(lines) do
    for run in gmatch(line, "`+") do longest = max(longest, #run) end
  end
  return rep("`", max(3, longest + 1))
end

-- The lines of a fenced diff block of a line diff, indented by `indent`.
local function diff_block(diff, indent, lines)
  local body = {}
  for _, d in ipairs(diff) do
    if d[1] == "..." then
      body[#body + 1] = format("  ... %d unchanged line%s", d[2], d[2] == 1 and "" or "s")
    else
      body[#body + 1] = d[1] .. " " .. view.safe_text(d[2])
    end
  end
  local fence = fence_for(body)
  lines[#lines + 1] = ""
  lines[#lines + 1] = indent .. fence .. "diff"
  for _, line in ipairs(body) do lines[#lines + 1] = indent .. line end
  lines[#lines + 1] = indent .. fence
  lines[#lines + 1] = ""
end

-- The list item(s) of one field item.
local function item_lines(item, lines)
  local head = "- " .. escape(item.path) .. ": "
  if item.secret then
    lines[#lines + 1] = head .. escape(view.SECRET)
  elseif item.diff then
    lines[#lines + 1] = head
    diff_block(item.diff, "  ", lines)
  elseif item.old then
    lines[#lines + 1] = head .. escape(item.old) .. " " .. view.ARROW .. " " .. escape(item.new)
  else
    lines[#lines + 1] = head .. escape(item.new)
  end
  if item.note then lines[#lines + 1] = "  " .. escape("(" .. item.note .. ")") end
end

-- The plan as Markdown: a heading with the totals, a table of every record
-- in the plan (change, failed match, unmanaged), then each change's fields
-- and the checksum. opts: secrets (strings to scrub).
function _M.plan(plan, opts)
  opts = opts or {}
  plan = view.scrubbed(plan, opts)
  local lines = { "### toolzz plan", "", view.summary_line(plan), "" }
  local units = view.model(plan)
  if #units == 0 then
    lines[#lines + 1] = "No changes: the server matches the file."
  else
    lines[#lines + 1] = "| | Unit | Kind | Key | Id | Note |"
    lines[#lines + 1] = "|---|---|---|---|---|---|"
    for _, unit in ipairs(units) do
      for _, row in ipairs(unit.rows) do
        lines[#lines + 1] = format("| %s %s | %s | %s | %s | %s | %s |", escape(row.mark), row.what, cell(unit.id),
          cell(row.kind), cell(row.key), cell(row.id), cell(row.note))
      end
    end
    for _, unit in ipairs(units) do
      for _, row in ipairs(unit.rows) do
        if row.change then
          lines[#lines + 1] = ""
          lines[#lines + 1] = "#### " .. escape(row.mark) .. " " .. row.what .. " " .. cell(row.kind) .. " "
            .. cell(row.key)
          lines[#lines + 1] = ""
          lines[#lines + 1] = "Unit " .. cell(unit.id) .. (row.id ~= "" and (", id " .. cell(row.id)) or "")
          lines[#lines + 1] = ""
          for _, item in ipairs(row.items) do item_lines(item, lines) end
        end
      end
    end
  end
  local remarks = view.remarks(plan)
  if #remarks > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "**Notes**"
    lines[#lines + 1] = ""
    for _, remark in ipairs(remarks) do lines[#lines + 1] = "- " .. escape(remark) end
  end
  if plan.checksum ~= nil then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Checksum: " .. cell(view.safe_text(plan.checksum))
  end
  return view.finish(lines, opts)
end

-- The report as Markdown: a heading with the totals and a table of every
-- change with its outcome and error (kind, status, message, request id).
function _M.report(report, opts)
  opts = opts or {}
  report = view.scrubbed(report, opts)
  local lines = { "### toolzz apply", "", view.report_summary_line(report), "" }
  local units = view.report_model(report)
  if #units > 0 then
    lines[#lines + 1] = "| Outcome | Change | Unit | Kind | Key | Id | Details |"
    lines[#lines + 1] = "|---|---|---|---|---|---|---|"
    for _, unit in ipairs(units) do
      for _, row in ipairs(unit.rows) do
        lines[#lines + 1] = format("| %s | %s %s | %s | %s | %s | %s | %s |", cell(row.outcome), escape(row.mark),
          cell(row.action), cell(unit.id), cell(row.kind), cell(row.key), cell(row.id), cell(row.why))
      end
    end
  end
  return view.finish(lines, opts)
end

return _M

-- toolzz.cli.line_diff: the difference of two lists of lines, for the plan
-- views' diffs of multi-line text (a prompt, a description).
--
--   line_diff.diff({ "a", "b" }, { "a", "c" })  --> { { " ", "a" }, { "-", "b" }, { "+", "c" } }
--   line_diff.with_context(diff, 3)             --  long unchanged runs cut to { "...", count }
local _M = {}

local MAX_LCS_CELLS = 250000 -- beyond this (500 × 500 lines) the middle is shown as all removed, all added

-- The lines of a and b as a diff: a list of { " " | "-" | "+", line }. The
-- common head and tail are kept aside, the middle compared by longest
-- common subsequence.
local function line_diff(a, b)
  local head, a_end, b_end = 0, #a, #b
  while head < a_end and head < b_end and a[head + 1] == b[head + 1] do head = head + 1 end
  while a_end > head and b_end > head and a[a_end] == b[b_end] do a_end, b_end = a_end - 1, b_end - 1 end
  local out = {}
  for i = 1, head do out[#out + 1] = { " ", a[i] } end
  local n, m = a_end - head, b_end - head
  if n * m > MAX_LCS_CELLS then
    for i = head + 1, a_end do out[#out + 1] = { "-", a[i] } end
    for j = head + 1, b_end do out[#out + 1] = { "+", b[j] } end
  else
    -- lcs[i][j]: common length of a[head+i..a_end] and b[head+j..b_end].
    local lcs = {}
    for i = n + 1, 1, -1 do
      local row, below = {}, lcs[i + 1]
      for j = m + 1, 1, -1 do
        if i > n or j > m then row[j] = 0
        elseif a[head + i] == b[head + j] then row[j] = below[j + 1] + 1
        else
          local down, right = below[j], row[j + 1]
          row[j] = down >= right and down or right
        end
      end
      lcs[i] = row
    end
    local i, j = 1, 1
    while i <= n or j <= m do
      if i <= n and j <= m and a[head + i] == b[head + j] then
        out[#out + 1] = { " ", a[head + i] }
        i, j = i + 1, j + 1
      elseif j > m or (i <= n and lcs[i + 1][j] >= lcs[i][j + 1]) then
        out[#out + 1] = { "-", a[head + i] }
        i = i + 1
      else
        out[#out + 1] = { "+", b[head + j] }
        j = j + 1
      end
    end
  end
  for i = a_end + 1, #a do out[#out + 1] = { " ", a[i] } end
  return out
end
_M.diff = line_diff

-- The diff with runs of unchanged lines longer than 2 × context cut to
-- their ends and a { "…", count } marker.
local function with_context(diff, context)
  local out, i = {}, 1
  while i <= #diff do
    if diff[i][1] ~= " " then
      out[#out + 1] = diff[i]
      i = i + 1
    else
      local j = i
      while j + 1 <= #diff and diff[j + 1][1] == " " do j = j + 1 end
      local keep_before = i == 1 and 0 or context
      local keep_after = j == #diff and 0 or context
      if j - i + 1 > keep_before + keep_after + 1 then
        for k = i, i + keep_before - 1 do out[#out + 1] = diff[k] end
        out[#out + 1] = { "...", j - i + 1 - keep_before - keep_after }
        for k = j - keep_after + 1, j do out[#out + 1] = diff[k] end
      else
        for k = i, j do out[#out + 1] = diff[k] end
      end
      i = j + 1
    end
  end
  return out
end
_M.with_context = with_context

return _M

-- Turns the lines bench/run collected into the report: the requests/s table,
-- the CPU-cost table, the 10 ms-server comparison, memory, and PASS/MISS per
-- target. Reads the results file named on the command line:
--
--   INFO <key> <text>                      machine and run facts
--   LABEL <row> <text>                     a row's display name, in table order
--   HTTP <round> <row> <calls> <seconds> <CPU seconds>   one throughput measurement
--   FAIL <row> <text>                      a measurement that could not run
--   DELAY <round> <row> <calls> <seconds> <CPU seconds>  the 10 ms-server runs (seq, batch32)
--   RESULT layer <name> <CPU µs per call> <wall µs per call>
--   RESULT cpu <endpoint> <case> <median µs> <best µs>
--   RESULT memory <calls> <seconds> <rss start> <rss warm> <rss end> <heap warm> <heap end>
--
-- Every throughput row was measured between two baseline runs in the same
-- round; its ratio is the median over rounds of its requests/s over the mean
-- of those two baselines.
local format, concat = string.format, table.concat

local path = assert(arg[1], "usage: report.lua RESULTS")
local info, labels, row_order = {}, {}, {}
local http, fails, delay, cpu, layers, memory = {}, {}, {}, {}, {}, nil

local function words(line)
  local out = {}
  for w in line:gmatch("%S+") do out[#out + 1] = w end
  return out
end

for line in io.lines(path) do
  local w = words(line)
  local kind = w[1]
  if kind == "INFO" then
    info[w[2]] = line:match("^INFO%s+%S+%s+(.*)$") or ""
  elseif kind == "LABEL" then
    if not labels[w[2]] then row_order[#row_order + 1] = w[2] end
    labels[w[2]] = line:match("^LABEL%s+%S+%s+(.*)$")
  elseif kind == "HTTP" then
    http[#http + 1] = { round = tonumber(w[2]), row = w[3], rps = tonumber(w[4]) / tonumber(w[5]),
                        cpu_us = w[6] and tonumber(w[6]) / tonumber(w[4]) * 1e6 }
  elseif kind == "FAIL" then
    fails[w[2]] = line:match("^FAIL%s+%S+%s+(.*)$") or "failed"
  elseif kind == "DELAY" then
    delay[#delay + 1] = { round = tonumber(w[2]), row = w[3], calls = tonumber(w[4]), seconds = tonumber(w[5]) }
  elseif kind == "RESULT" and w[2] == "cpu" then
    cpu[w[3] .. "/" .. w[4]] = { median = tonumber(w[5]), best = tonumber(w[6]) }
  elseif kind == "RESULT" and w[2] == "layer" then
    layers[w[3]] = { cpu = tonumber(w[4]), wall = tonumber(w[5]) }
  elseif kind == "RESULT" and w[2] == "memory" then
    memory = {
      calls = tonumber(w[3]), seconds = tonumber(w[4]), rss_start = tonumber(w[5]),
      rss_warm = tonumber(w[6]), rss_end = tonumber(w[7]), heap_warm = tonumber(w[8]), heap_end = tonumber(w[9]),
    }
  end
end

local function median(list)
  if #list == 0 then return nil end
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function pad(s, width, right)
  s = tostring(s)
  local len = utf8 and utf8.len(s) or #s
  local fill = string.rep(" ", math.max(0, width - len))
  return right and fill .. s or s .. fill
end

-- A ratio to the baseline: two decimals, three below 0.1.
local function times(r)
  if not r then return "-" end
  return format(r < 0.1 and "%.3f×" or "%.2f×", r)
end

local function rule(title)
  print("")
  print("== " .. title)
end

-- ---- machine --------------------------------------------------------------

print("toolzz benchmarks — " .. (info.date or ""))
for _, key in ipairs { "machine", "os", "cpu", "lua", "libcurl", "load_start", "load_end", "server", "rounds" } do
  if info[key] then print(format("  %-11s %s", key, info[key])) end
end

-- ---- throughput -----------------------------------------------------------

-- Per round, the baseline measurements in order, and each row's neighbours.
local by_round = {}
for i, m in ipairs(http) do
  m.seq = i
  by_round[m.round] = by_round[m.round] or {}
  local list = by_round[m.round]
  list[#list + 1] = m
end

local stats = {} -- row -> { rps = {...}, ratios = {...}, cpu_us = {...} }
for _, list in pairs(by_round) do
  for i, m in ipairs(list) do
    local st = stats[m.row] or { rps = {}, ratios = {}, cpu_us = {}, by_round = {} }
    stats[m.row] = st
    st.rps[#st.rps + 1] = m.rps
    st.cpu_us[#st.cpu_us + 1] = m.cpu_us
    if m.row == "baseline" then
      st.ratios[#st.ratios + 1] = 1
    else
      local before, after
      for j = i - 1, 1, -1 do if list[j].row == "baseline" then before = list[j].rps break end end
      for j = i + 1, #list do if list[j].row == "baseline" then after = list[j].rps break end end
      local base = before and after and (before + after) / 2 or before or after
      if base then
        st.ratios[#st.ratios + 1] = m.rps / base
        st.by_round[m.round] = m.rps / base
      end
    end
  end
end

local function ratio_of(row)
  return stats[row] and median(stats[row].ratios)
end

-- In how many rounds test(ratio of row a[, ratio of row b]) held: "k of n rounds".
local function rounds_where(a, b, test)
  local k, n = 0, 0
  local ra = stats[a] and stats[a].by_round or {}
  local rb = b and stats[b] and stats[b].by_round or {}
  for round, r in pairs(ra) do
    if not b or rb[round] then
      n = n + 1
      if test(r, rb[round]) then k = k + 1 end
    end
  end
  return format("%d of %d rounds", k, n)
end

rule("Requests/s, sequential PUTs of the Cal.com body to the stand-in's /static (HTTP/1.1, 127.0.0.1)")
local widths = { 52, 9, 15, 8, 10 }
print(pad("name", widths[1]) .. pad("req/s", widths[2], true) .. pad("(min–max)", widths[3], true)
  .. pad("ratio", widths[4], true) .. pad("CPU µs", widths[5], true))
for _, row in ipairs(row_order) do
  local st = stats[row]
  if st then
    local lo, hi = math.huge, 0
    for _, v in ipairs(st.rps) do lo, hi = math.min(lo, v), math.max(hi, v) end
    print(pad(labels[row], widths[1]) .. pad(format("%.0f", median(st.rps)), widths[2], true)
      .. pad(format("%.0f–%.0f", lo, hi), widths[3], true)
      .. pad(times(ratio_of(row)), widths[4], true)
      .. pad(#st.cpu_us > 0 and format("%.1f", median(st.cpu_us)) or "-", widths[5], true))
  else
    print(pad(labels[row], widths[1]) .. "  not run: " .. (fails[row] or "unavailable"))
  end
end
print("req/s: median over rounds; ratio: median over rounds of req/s ÷ the mean of the baseline runs")
print("just before and after it in the same round (the baseline is 1.00× by definition); CPU µs: the")
print("client process's CPU time per call (os.clock/clock(); for the curl command without the curl processes).")

-- ---- CPU cost -----------------------------------------------------------------

local CPU_CASES = {
  { "total", "toolzz validate + encode + decode" },
  { "cjson", "lua-cjson encode + decode alone" },
  { "prepare", "  toolzz: prepare (copy + defaults)" },
  { "check", "  toolzz: check (validation)" },
  { "encode", "  toolzz: encode (C)" },
  { "build", "  toolzz: build = prepare + check + encode" },
  { "decode", "  toolzz: decode (interpret: cjson + status)" },
}
rule("CPU cost per call without the network (µs of CPU time; best round, median in brackets)")
print(pad("", 46) .. pad("Cal.com", 17, true) .. pad("Google Calendar", 19, true))
for _, c in ipairs(CPU_CASES) do
  local cells = {}
  for _, endpoint in ipairs { "calcom", "gcal" } do
    local m = cpu[endpoint .. "/" .. c[1]]
    cells[#cells + 1] = m and format("%.2f (%.2f)", m.best, m.median) or "-"
  end
  print(pad(c[2], 46) .. pad(cells[1], 17, true) .. pad(cells[2], 19, true))
end
local cpu_ratio = {}
for _, endpoint in ipairs { "calcom", "gcal" } do
  local t, j = cpu[endpoint .. "/total"], cpu[endpoint .. "/cjson"]
  if t and j then cpu_ratio[#cpu_ratio + 1] = format("%s %.1f×", endpoint, t.best / j.best) end
end
print("toolzz ÷ cjson alone (best rounds): " .. concat(cpu_ratio, ", "))
print("Rounds of 5,000 calls, interleaved. The best round is the cost on this machine when nothing else")
print("runs (as timeit advises); the median shows how much other processes slowed the rest.")

-- ---- layers ------------------------------------------------------------------------

rule("Where a sequential toolzz call's time goes (Lua 5.4, Cal.com, /static; µs per call, median)")
if layers.update then
  local base = stats.baseline and median(stats.baseline.cpu_us)
  local function row(text, c, wall)
    print(pad(text, 58) .. pad(c and format("%.1f", c) or "-", 10, true) .. pad(wall and format("%.1f", wall) or "", 10, true))
  end
  print(pad("", 58) .. pad("CPU", 10, true) .. pad("wall", 10, true))
  row("update(): the whole call", layers.update.cpu, layers.update.wall)
  row("  transport:request() alone (libcurl + Lua strings/headers)", layers.transport.cpu, layers.transport.wall)
  row("  decode: interpret() of the answer", layers.decode.cpu, layers.decode.wall)
  row("  build: validate + encode", layers.build.cpu, layers.build.wall)
  row("  the rest: update/perform glue, secrets, URL, GC", layers.rest.cpu, layers.rest.wall)
  if base then row("raw libcurl baseline (C), CPU from the table above", base) end
  print("Each layer timed alone in turn, 1,000 calls, 15 rounds; decode and the rest are differences")
  print("taken within a round (medians), so estimates that noise can push a little below zero.")
else
  print("  not run: " .. (fails.layers or "no result"))
end

-- ---- 10 ms server ----------------------------------------------------------------

rule("Against a server taking 10 ms per answer (/delay/10/static), 1,000 updates")
local seq_per_call, batch_secs, speedups = {}, {}, {}
local seq_by_round, batch_by_round = {}, {}
for _, d in ipairs(delay) do
  if d.row == "seq" then
    seq_per_call[#seq_per_call + 1] = d.seconds / d.calls
    seq_by_round[d.round] = d.seconds / d.calls
  else
    batch_secs[#batch_secs + 1] = d.seconds * 1000 / d.calls
    batch_by_round[d.round] = d.seconds * 1000 / d.calls
  end
end
for r, per_call in pairs(seq_by_round) do
  if batch_by_round[r] then speedups[#speedups + 1] = per_call * 1000 / batch_by_round[r] end
end
local speedup = median(speedups)
if speedup then
  print(format("  toolzz sequential:          %6.2f s for 1,000 (timed %d calls, %.2f ms each, extrapolated)",
    median(seq_per_call) * 1000, delay[1] and delay[1].calls or 0, median(seq_per_call) * 1000))
  print(format("  toolzz batch, concurrency 32: %4.2f s for 1,000", median(batch_secs)))
  print(format("  speed-up: %.1f× (median of %d rounds; ideal ≈ 32× minus per-call overhead)", speedup, #speedups))
else
  print("  not run: " .. (fails.delay or "no result"))
end

-- ---- memory --------------------------------------------------------------------

rule("Memory of one client over sequential calls (RSS, KiB)")
local memory_ok
if memory then
  print(format("  %d calls in %.1f s (Cal.com and Google Calendar alternately)", memory.calls, memory.seconds))
  print(format("  RSS at start %d, after 1,000 calls %d, at end %d: %+d KiB from 1,000 to the end",
    memory.rss_start, memory.rss_warm, memory.rss_end, memory.rss_end - memory.rss_warm))
  print(format("  Lua heap after 1,000 calls %.0f KiB, at end %.0f KiB", memory.heap_warm, memory.heap_end))
  memory_ok = memory.calls >= 100000 and memory.rss_end - memory.rss_warm <= 1024
    and memory.heap_end - memory.heap_warm <= 64
else
  print("  not run: " .. (fails.memory or "no result"))
end

-- ---- targets ---------------------------------------------------------------------

rule("Targets")
local function verdict(ok, text, detail)
  local word = ok == nil and "N/A " or (ok and "PASS" or "MISS")
  print(format("  %s  %s%s", word, text, detail and (" — " .. detail) or ""))
end

local seq = ratio_of("seq")
verdict(seq and seq >= 0.85, "toolzz sequential ≥ 0.85× the raw libcurl baseline",
  seq and format("%.3f× (≥ 0.85 in %s)", seq, rounds_where("seq", nil, function(r) return r >= 0.85 end))
  or "not measured")

local cpu_ok, cpu_detail = nil, {}
for _, endpoint in ipairs { "calcom", "gcal" } do
  local t = cpu[endpoint .. "/total"]
  if t then
    cpu_ok = (cpu_ok ~= false) and t.best <= 25
    cpu_detail[#cpu_detail + 1] = format("%s %.1f µs (median %.1f)", endpoint, t.best, t.median)
  end
end
verdict(cpu_ok, "validation + encoding + decoding ≤ 25 µs per call", concat(cpu_detail, ", "))

verdict(speedup and speedup >= 20, "10 ms server: batch of 1,000 at concurrency 32 ≥ 20× sequential",
  speedup and format("%.1f×", speedup) or "not measured")

local peers = {}
for _, row in ipairs(row_order) do
  if row == "luasocket" or row == "luacurl" or row == "curlcmd" then peers[#peers + 1] = row end
end
local fastest_peer
for _, row in ipairs(peers) do
  local r = ratio_of(row)
  if r and (not fastest_peer or r > fastest_peer.r) then fastest_peer = { row = row, r = r } end
end
local peer_ok, peer_lines = nil, {}
if fastest_peer then
  for _, row in ipairs { "seq", "batch1", "batch8", "batch32" } do
    local r = ratio_of(row)
    if r then
      local wins = r > fastest_peer.r
      peer_ok = (peer_ok ~= false) and wins
      peer_lines[#peer_lines + 1] = format("        %-48s %.2f× %s; ahead in %s", labels[row], r,
        wins and "faster" or "SLOWER", rounds_where(row, fastest_peer.row, function(x, y) return x > y end))
    end
  end
end
verdict(peer_ok, "faster than every Lua peer, sequential and batch",
  fastest_peer and format("fastest peer: %s %.2f×", labels[fastest_peer.row], fastest_peer.r)
  or "peers not measured")
for _, line in ipairs(peer_lines) do print(line) end
if ratio_of("seq_lua51") and ratio_of("luacurl") then
  print(format("        same interpreter: toolzz sequential on Lua 5.1 %.2f× vs %s %.2f×",
    ratio_of("seq_lua51"), labels.luacurl, ratio_of("luacurl")))
end

verdict(memory_ok, "memory flat over 100,000 calls (RSS growth ≤ 1 MiB and Lua heap ≤ 64 KiB after warm-up)",
  memory and format("RSS %d → %d KiB, heap %.0f → %.0f KiB", memory.rss_warm, memory.rss_end,
    memory.heap_warm, memory.heap_end) or "not measured")

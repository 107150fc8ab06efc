-- Turns the lines bench/run collected into the report: the requests/s table,
-- the CPU-cost table, the 10 ms-server comparison, memory, and PASS/MISS per
-- target. Reads the results file named on the command line:
--
--   INFO <key> <text>                      machine and run facts
--   LABEL <row> <text>                     a row's display name, in table order
--   HTTP <round> <row> <calls> <seconds> <CPU seconds>   one throughput measurement
--   FAIL <row> <text>                      a measurement that could not run
--   PINNED <round> <row> <calls> <seconds> <CPU seconds>  the same, pinned to cores (baseline, seq, luacurl)
--   DELAY <round> <row> <calls> <seconds> <CPU seconds> <peak RSS KiB>  the 10 ms-server runs
--                                          (seq, batch32, patch_seq, patch_batch32, batch32_10k)
--   RESULT instr <row> <instructions per call> <N1> <N2>   callgrind (bench/instructions.sh)
--   RESULT layer <name> <CPU µs per call> <wall µs per call>
--   RESULT cpu <endpoint> <case> <median µs> <best µs>
--   RESULT memory <calls> <seconds> <rss start> <rss warm> <rss end> <heap warm> <heap end>
--
-- Every throughput row was measured between two baseline runs in the same
-- round; its ratio is the median over rounds of its requests/s over the mean
-- of those two baselines (raw libcurl PUTs, or GETs for the get rows).
-- With a second argument, writes the data of bench/results.gp there.
local format, concat = string.format, table.concat

local path = assert(arg[1], "usage: report.lua RESULTS [PLOT_DATA]")
local plot_path = arg[2]
local info, labels, row_order = {}, {}, {}
local http, fails, delay, cpu, layers, memory = {}, {}, {}, {}, {}, nil
local pinned, instr = {}, {}

-- The baseline a row is compared with.
local BASE_OF = { get = "baseline_get", get_luajit = "baseline_get", baseline_get = "baseline_get" }
local function base_of(row) return BASE_OF[row] or "baseline" end

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
    delay[#delay + 1] = { round = tonumber(w[2]), row = w[3], calls = tonumber(w[4]), seconds = tonumber(w[5]),
                          hwm = tonumber(w[7]) }
  elseif kind == "PINNED" then
    pinned[#pinned + 1] = { round = tonumber(w[2]), row = w[3], rps = tonumber(w[4]) / tonumber(w[5]) }
  elseif kind == "RESULT" and w[2] == "instr" then
    instr[w[3]] = tonumber(w[4])
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
    local base_row = base_of(m.row)
    if m.row == base_row then
      st.ratios[#st.ratios + 1] = 1
    else
      local before, after
      for j = i - 1, 1, -1 do if list[j].row == base_row then before = list[j].rps break end end
      for j = i + 1, #list do if list[j].row == base_row then after = list[j].rps break end end
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
print("just before and after it in the same round (the baseline is 1.00× by definition; the get rows use")
print("the GET baseline); CPU µs: the client process's CPU time per call (os.clock/clock(); for the curl")
print("command without the curl processes).")

-- ---- pinned -------------------------------------------------------------------

-- Per round, each pinned row's req/s over the mean of the baselines around it.
local pinned_ratio = {}
do
  local by = {}
  for _, m in ipairs(pinned) do
    by[m.round] = by[m.round] or {}
    local list = by[m.round]
    list[#list + 1] = m
  end
  for round, list in pairs(by) do
    for i, m in ipairs(list) do
      if m.row ~= "baseline" then
        local before = list[i - 1] and list[i - 1].row == "baseline" and list[i - 1].rps
        local after = list[i + 1] and list[i + 1].row == "baseline" and list[i + 1].rps
        local base = before and after and (before + after) / 2 or before or after
        if base then
          pinned_ratio[m.row] = pinned_ratio[m.row] or {}
          pinned_ratio[m.row][round] = m.rps / base
        end
      end
    end
  end
end
local function pinned_median(row)
  local list = {}
  for _, r in pairs(pinned_ratio[row] or {}) do list[#list + 1] = r end
  return median(list), #list
end
rule("Pinned: the stand-in on CPU 0, the client on CPU 1 (sequential PUTs, ratio to raw libcurl)")
if next(pinned_ratio) then
  for _, row in ipairs { "seq", "luacurl" } do
    local r, n = pinned_median(row)
    if r then
      local rounds = {}
      for round = 1, 5 do
        local x = pinned_ratio[row][round]
        rounds[#rounds + 1] = x and format("%.2f", x) or "-"
      end
      print(format("  %-50s %s (median of %d rounds: %s)", labels[row] or row, times(r), n, concat(rounds, " ")))
    end
  end
else
  print("  not run: " .. (fails.pinned or "no result"))
end

-- ---- CPU cost -----------------------------------------------------------------

local CPU_CASES = {
  { "total", "toolzz validate + encode + decode" },
  { "cjson", "lua-cjson encode + decode alone" },
  { "prepare", "  toolzz: prepare (copy + defaults)" },
  { "check", "  toolzz: check (validation)" },
  { "encode", "  toolzz: encode (C)" },
  { "build", "  toolzz: build = prepare + check + encode" },
  { "decode", "  toolzz: decode (interpret: cjson + status)" },
  { "patch", "toolzz patch: map + merge + validate + encode + decode" },
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

rule("Against a server taking 10 ms per answer (/delay/10/static)")
-- row -> round -> seconds per call; row -> list of peak RSS
local per_call, hwm = {}, {}
for _, d in ipairs(delay) do
  per_call[d.row] = per_call[d.row] or {}
  per_call[d.row][d.round] = d.seconds / d.calls
  if d.hwm and d.hwm > 0 then
    hwm[d.row] = hwm[d.row] or {}
    hwm[d.row][#hwm[d.row] + 1] = d.hwm
  end
end
-- The median over rounds of a(round) / b(round).
local function round_ratio(a, b)
  local list = {}
  for round, x in pairs(per_call[a] or {}) do
    local y = per_call[b] and per_call[b][round]
    if y then list[#list + 1] = x / y end
  end
  return median(list), #list
end
local function median_of(row)
  local list = {}
  for _, x in pairs(per_call[row] or {}) do list[#list + 1] = x end
  return median(list)
end
local speedup, patch_speedup, scale, per_item_kib
if per_call.seq and per_call.batch32 then
  local n
  speedup, n = round_ratio("seq", "batch32")
  print(format("  1,000 updates sequential:        %6.2f s (100 timed, %.2f ms each, extrapolated)",
    median_of("seq") * 1000, median_of("seq") * 1000))
  print(format("  1,000 updates, batch at c32:     %6.2f s", median_of("batch32") * 1000))
  print(format("  speed-up: %.1f× (median of %d rounds; ideal 31.25×: 32 rounds of up to 32, less per-round overhead)",
    speedup, n))
end
if per_call.patch_seq and per_call.patch_batch32 then
  local n
  patch_speedup, n = round_ratio("patch_seq", "patch_batch32")
  print(format("  1,000 patches sequential:        %6.2f s (50 timed, %.2f ms each: a GET and a PUT, extrapolated)",
    median_of("patch_seq") * 1000, median_of("patch_seq") * 1000))
  print(format("  1,000 patches, batch at c32:     %6.2f s", median_of("patch_batch32") * 1000))
  print(format("  speed-up: %.1f× (median of %d rounds)", patch_speedup, n))
end
if per_call.batch32_10k and per_call.batch32 then
  local n
  scale, n = round_ratio("batch32_10k", "batch32")
  scale = scale * 10 -- per call -> whole batch of 10× the items
  print(format("  10,000 updates, batch at c32:    %6.2f s = %.2f× the time of 1,000 (median of %d rounds; linear = 10×)",
    median_of("batch32_10k") * 10000, scale, n))
  if hwm.batch32_10k and hwm.batch32 then
    local big, small = median(hwm.batch32_10k), median(hwm.batch32)
    per_item_kib = (big - small) / 9000
    print(format("  peak RSS: %d KiB with 10,000 items, %d KiB with 1,000: %.2f KiB per queued item", big, small,
      per_item_kib))
  end
end
if not speedup and not patch_speedup then
  print("  not run: " .. (fails.delay or "no result"))
end

-- ---- instructions ---------------------------------------------------------------

local INSTR_ROWS = {
  { "raw_put", "raw libcurl PUT, C (baseline)" }, { "update", "toolzz update sequential (Lua 5.4)", "raw_put" },
  { "update_luajit", "toolzz update sequential (LuaJIT)", "raw_put" },
  { "update_lua51", "toolzz update sequential (Lua 5.1)", "raw_put" },
  { "batch1", "toolzz batch, concurrency 1, per item (Lua 5.4)", "raw_put" },
  { "batch8", "toolzz batch, concurrency 8, per item (Lua 5.4)", "raw_put" },
  { "batch32", "toolzz batch, concurrency 32, per item (Lua 5.4)", "raw_put" },
  { "luasocket", "LuaSocket socket.http + lua-cjson (Lua 5.4)", "raw_put" },
  { "luacurl", "lua-curl + lua-cjson", "raw_put" },
  { "curlcmd", "curl command per call (shell and curl counted)", "raw_put" },
  { "raw_get", "raw libcurl GET, C (baseline for GETs)" }, { "get", "toolzz get sequential (Lua 5.4)", "raw_get" },
  { "get_luajit", "toolzz get sequential (LuaJIT)", "raw_get" },
}
rule("Instructions per call, client side (callgrind: (Ir(N2) − Ir(N1)) ÷ (N2 − N1), bench/instructions.sh)")
if next(instr) then
  for _, r in ipairs(INSTR_ROWS) do
    local n = instr[r[1]]
    if n then
      local base = r[3] and instr[r[3]]
      print(pad(r[2], 52) .. pad(format("%.0f", n), 12, true)
        .. (base and pad(format("%.2f× %s", n / base, r[3]), 16, true) or ""))
    end
  end
else
  print("  not run: " .. (fails.instr or "no result"))
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

local get = ratio_of("get")
verdict(get and get >= 0.85, "toolzz get sequential ≥ 0.85× raw libcurl GETs",
  get and format("%.3f× (≥ 0.85 in %s)", get, rounds_where("get", nil, function(r) return r >= 0.85 end))
  or "not measured")

for _, t in ipairs {
  { "update", "raw_put", "instructions per sequential update ≤ 1.5× raw libcurl (Lua 5.4)" },
  { "get", "raw_get", "instructions per sequential get ≤ 1.5× raw libcurl (Lua 5.4)" },
} do
  local n, base = instr[t[1]], instr[t[2]]
  local jit = instr[t[1] .. "_luajit"]
  verdict(n and base and n <= 1.5 * base, t[3], n and base and format("%.0f ÷ %.0f = %.2f×%s", n, base, n / base,
    jit and format("; LuaJIT %.0f = %.2f×", jit, jit / base) or "") or "not measured")
end

for _, t in ipairs { { "calcom", 3 }, { "gcal", 6 } } do
  local m = cpu[t[1] .. "/total"]
  verdict(m and m.best <= t[2], format("%s validate + encode + decode ≤ %d µs", t[1], t[2]),
    m and format("%.2f µs (median %.2f)", m.best, m.median) or "not measured")
end
local patch_ok, patch_detail = nil, {}
for _, endpoint in ipairs { "calcom", "gcal" } do
  local m = cpu[endpoint .. "/patch"]
  if m then
    patch_ok = (patch_ok ~= false) and m.best <= 30
    patch_detail[#patch_detail + 1] = format("%s %.1f µs (median %.1f)", endpoint, m.best, m.median)
  end
end
verdict(patch_ok, "library work of one patch (map + merge + validate + encode + decode) ≤ 30 µs",
  #patch_detail > 0 and concat(patch_detail, ", ") or "not measured")

local pinned_seq, pinned_peer = pinned_median("seq"), pinned_median("luacurl")
verdict(pinned_seq and pinned_seq >= 0.95, "pinned: sequential update ≥ 0.95× raw libcurl",
  pinned_seq and format("%.3f×", pinned_seq) or "not measured")
verdict(pinned_seq and pinned_peer and pinned_seq > pinned_peer, "pinned: ahead of " .. (labels.luacurl or "lua-curl"),
  pinned_seq and pinned_peer and format("toolzz %.3f×, peer %.3f×", pinned_seq, pinned_peer) or "not measured")

verdict(speedup and speedup >= 30, "10 ms server: 1,000 updates at concurrency 32 ≥ 30× sequential",
  speedup and format("%.1f×", speedup) or "not measured")
verdict(patch_speedup and patch_speedup >= 20, "10 ms server: 1,000 patches at concurrency 32 ≥ 20× sequential",
  patch_speedup and format("%.1f×", patch_speedup) or "not measured")
verdict(scale and scale <= 10.5, "10,000 items take ≤ 10.5× the time of 1,000",
  scale and format("%.2f×", scale) or "not measured")
verdict(per_item_kib and per_item_kib <= 2, "memory per queued item ≤ 2 KiB (peak RSS, 10,000 items over 1,000)",
  per_item_kib and format("%.2f KiB", per_item_kib) or "not measured")

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

-- ---- declarative sync (bench/sync.lua, its lines kept as INFO sync1..) ---------------

if info.sync1 then
  rule("declarative sync (bench/sync.lua: 10 ms server, concurrency 32 against 1)")
  for n = 1, 20 do
    local line = info["sync" .. n]
    if not line then break end
    print("  " .. line)
    local what, times_faster = line:match("^(%a+) [^:]*: concurrency 32 .*: ([%d.]+)x$")
    if what then
      verdict(tonumber(times_faster) >= 20, what .. " at concurrency 32 ≥ 20× faster than one after another",
        times_faster .. "×")
    end
  end
end

-- ---- the picture's data -------------------------------------------------------------

-- One line per row: "label" req/s instructions-per-call (NaN where not measured).
local INSTR_OF = {
  baseline = "raw_put", seq = "update", batch1 = "batch1", batch8 = "batch8", batch32 = "batch32",
  seq_luajit = "update_luajit", seq_lua51 = "update_lua51", luasocket = "luasocket", luacurl = "luacurl",
  curlcmd = "curlcmd", baseline_get = "raw_get", get = "get", get_luajit = "get_luajit",
}
-- Short names for the picture's axis.
local SHORT = {
  baseline = "raw libcurl PUT", seq = "toolzz (5.4)", batch1 = "batch c1", batch8 = "batch c8",
  batch32 = "batch c32", seq_luajit = "toolzz (LuaJIT)", seq_lua51 = "toolzz (5.1)", luasocket = "LuaSocket",
  luacurl = "lua-curl", curlcmd = "curl command", baseline_get = "raw libcurl GET", get = "get (5.4)",
  get_luajit = "get (LuaJIT)",
}
if plot_path then
  local f = assert(io.open(plot_path, "w"))
  f:write("# label\treq/s\tinstructions per call\n")
  for _, row in ipairs(row_order) do
    local st = stats[row]
    local n = instr[INSTR_OF[row] or row]
    f:write(format("%q\t%s\t%s\n", (SHORT[row] or labels[row] or row):gsub('"', "'"),
      st and format("%.0f", median(st.rps)) or "NaN", n and format("%.0f", n) or "NaN"))
  end
  f:close()
end

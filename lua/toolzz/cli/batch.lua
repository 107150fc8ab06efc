-- toolzz.cli.batch: toolzz batch FILE.jsonl, many calls from a JSON Lines
-- file run concurrently by client.batch, results printed as JSON Lines in
-- input order. A command module (see toolzz.cli).
local operations = require "toolzz.operations"
local errors = require "toolzz.errors"
local input = require "toolzz.cli.input"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local common = require "toolzz.cli.common"
local EXIT = require("toolzz.cli").EXIT

local type, ipairs, pairs, tostring, rawget, pcall, error = type, ipairs, pairs, tostring, rawget, pcall, error
local collectgarbage = collectgarbage
local concat = table.concat
local format, gmatch, gsub, find = string.format, string.gmatch, string.gsub, string.find

local _M = {}

-- The collector's pause while a batch runs (Lua's default: 200).
local GC_PAUSE = 120

-- What common.mark_list needs to know of a list operation.
local LIST_OPERATION = { unwrap = true }

-- What a batch line may name: every operation, by its name or an alias
-- (the Part 1 forms, which mean update) -> its catalogue entry (takes_id,
-- takes_body).
local BATCH_OPERATIONS = {}
for _, op in ipairs(operations.list) do BATCH_OPERATIONS[op.name] = op end
for alias, name in pairs(operations.aliases) do BATCH_OPERATIONS[alias] = operations.by_name[name] end
_M.BATCH_OPERATIONS = BATCH_OPERATIONS

-- The help text: a group name and its verbs per group, and the op of its
-- example line (the last patch of the catalogue).
local function help_text()
  local verbs, groups, example = {}, {}, nil
  for _, op in ipairs(operations.list) do
    if not verbs[op.group] then
      verbs[op.group] = {}
      groups[#groups + 1] = op.group
    end
    local list = verbs[op.group]
    list[#list + 1] = op.verb
    if op.patch then example = op.name end
  end
  for i, group in ipairs(groups) do groups[i] = group .. "." .. concat(verbs[group], "|") end
  return format([[Each line is one call: {"op":"%s","id":"...","fields":{...}}, where op is
%s
(id is the unit's id for list; fields is the body, or the changes of a patch).
Results are printed as JSON Lines in input order: {"line":N,"ok":true,"res":...}
or {"line":N,"ok":false,"error":{...}}. A malformed line fails alone.]], example, concat(groups, " or "))
end

-- Add the batch command; -> its name.
function _M.add_to_parser(parser)
  local batch = parser:command("batch", "Run many calls from a JSON Lines file, concurrently.", help_text())
  batch:argument("file", "The JSON Lines file (- for stdin)."):argname("FILE.jsonl")
  batch:option("--concurrency", "Calls in flight at once."):argname("N")
    :convert(common.whole_number("--concurrency", 1, 256)):default("8")
  return { "batch" }
end

-- The lines of a batch file (path, or - for stdin), one at a time: an
-- iterator giving each line's text (its \r\n or \n taken off), or nil and
-- a message when it cannot be read. The file is never held whole: a line
-- is parsed and dropped before the next is read. (Lines are numbered as
-- toolzz.cli.input.batch_lines numbers them: every line counts, blank ones
-- are left out by the caller.)
local function each_line(sys, path)
  local file, why
  if path == "-" then
    if io.type(sys.stdin) ~= "file" then -- a stand-in for stdin (tests): read it whole
      local text = sys.stdin:read("*a")
      if text == nil then return nil, "stdin cannot be read" end
      local next_line = gmatch(text, "([^\n]*)\n?")
      return function() return next_line() end
    end
    file = sys.stdin
  else
    file, why = io.open(path, "rb")
    if not file then return nil, why end
  end
  local failure
  return function()
    if not file then return nil end
    local line, problem = file:read("*l")
    if line == nil then
      failure = problem
      if file ~= sys.stdin then file:close() end
      file = nil
    end
    return line
  end, function() return failure end
end

-- Read a batch file -> the list of its non-blank lines' numbers, the
-- client.batch items, which line each item is, and the outcomes of the
-- malformed lines (said on stderr meanwhile); or nil, message.
local function read_items(sys, path)
  local next_line, failure = each_line(sys, path)
  if not next_line then return nil, failure end
  local numbers, items, line_of_item, outcomes = {}, {}, {}, {}
  local number = 0
  for text in next_line do
    number = number + 1
    text = gsub(text, "\r$", "")
    if find(text, "%S") then
      local i = #numbers + 1
      numbers[i] = number
      local item, problem = input.batch_item(text, BATCH_OPERATIONS)
      if item then
        items[#items + 1] = item
        line_of_item[#items] = i
      else
        outcomes[i] = { err = errors.new("validation", "malformed line: " .. problem) }
        common.say(sys, "toolzz: line " .. number .. ": " .. output.one_line(problem))
      end
    end
  end
  local problem = failure and failure()
  if problem then return nil, path .. ": " .. tostring(problem) end
  return numbers, items, line_of_item, outcomes
end

-- The result line of a batch line (number) with its outcome ({ res = } or { err = }).
local function result_line(sys, args, number, outcome)
  local head = '{"line":' .. number
  if outcome.err == nil and outcome.res ~= nil then
    return head .. ',"ok":true,"res":' .. common.result_json(outcome.res, sys.secrets, args.show_secrets) .. "}\n"
  end
  local e = outcome.err or errors.new("config", "no result")
  return head .. ',"ok":false,"error":'
    .. output.encode(output.printable(output.error_table(e), sys.secrets, args.show_secrets)) .. "}\n"
end

-- Whether an outcome is one the batch's stop gave (the call never ran to its end).
local function was_stopped(outcome)
  return type(outcome.err) == "table" and rawget(outcome.err, "stopped") == true
end

-- Run toolzz batch FILE.jsonl: -> true when every line succeeded, else an
-- exit status (EXIT.failed, EXIT.output, 128 + the signal), the results
-- printed; or nil, err, or nil, usage message.
--
-- Result lines go out in input order, each as soon as it and every line
-- before it are done, and are then released (memory stays flat). On
-- SIGINT or SIGTERM (sys.trap_signals) the batch starts nothing new, every
-- finished line is printed at once (out of order, each with its number),
-- the writes in flight end and are printed, and one line on stderr says so.
-- A failed write to stdout stops the batch the same way.
function _M.command(args, sys)
  if args.output == "table" or args.output == "pretty" then
    return nil, "--output " .. args.output .. " is for single calls: a batch prints JSON Lines (--output json)"
  end
  local opts, err = common.client_options(args, sys)
  if not opts then return nil, err end
  -- The command owns the process: a collector that runs sooner keeps the
  -- garbage of reading and judging 100,000 lines from doubling the heap
  -- (Lua 5.1's peak of 100,000 lines went 78 -> 58 MB; bench/cli_batch.lua).
  local pause = collectgarbage("setpause", GC_PAUSE)
  local lines, items, line_of_item, outcomes = read_items(sys, args.file)
  if not lines then return nil, "batch file: " .. tostring(items) end
  local total = #lines
  local malformed = 0
  for _ in pairs(outcomes) do malformed = malformed + 1 end
  local failed = malformed
  -- for an empty list to print as [], as the list command's does
  local is_list = {}
  for k = 1, #items do
    if BATCH_OPERATIONS[items[k][1]].unwrap then is_list[k] = true end
  end

  local bar
  local stdout_tty = sys.isatty(1)
  local hooks = { before_line = function() if bar then bar:clear() end end }
  local client
  client, err = common.new_client(opts, sys, args, hooks)
  if not client then return nil, err end
  local started = sys.now()
  local done = malformed
  if sys.isatty(2) and total > 0 then
    bar = progress.new(sys.stderr, total, sys.now)
    bar:update(done, failed, true)
  end

  local written, reported_ok, reported_failed, not_run, lost, refused = 0, 0, 0, 0, 0, 0
  local in_order = true -- false once stopped: each finished line goes out at once
  local stop_reason, signal_number
  -- Print what is ready (in order; or, once stopped, everything finished).
  local function write_ready()
    local round = 0
    local function emit(i)
      local outcome = outcomes[i]
      outcomes[i] = false
      if was_stopped(outcome) then
        not_run = not_run + 1
        return
      end
      if round == 0 and bar and stdout_tty then bar:clear() end
      round = round + 1
      if outcome.err == nil and outcome.res ~= nil then
        reported_ok = reported_ok + 1
      else
        reported_failed = reported_failed + 1
        if type(outcome.err) == "table" and rawget(outcome.err, "status") == 401 then refused = refused + 1 end
      end
      common.write_out(sys, result_line(sys, args, lines[i], outcome))
    end
    while written < total and outcomes[written + 1] ~= nil do
      written = written + 1
      if outcomes[written] then emit(written) end
    end
    if not in_order then
      for i = written + 1, total do
        if outcomes[i] then emit(i) end
      end
    end
    if round > 0 then
      -- a round is flushed whole: when stdout fails, count all its lines lost
      if not common.flush_out(sys) then lost = lost + round end
      if bar and stdout_tty then bar:update(done, failed, true) end
    end
  end
  local function should_stop()
    if stop_reason then return true end
    local number, name
    if sys.caught_signal then number, name = sys.caught_signal() end
    if number then
      stop_reason, signal_number = name, number
    elseif sys.stdout_error then
      stop_reason = "stdout"
    else
      return false
    end
    in_order = false
    write_ready()
    return true
  end
  local function on_result(k, result)
    local i = line_of_item[k]
    line_of_item[k], items[k] = nil, nil -- the item is done with
    if type(result) ~= "table" then result = {} end
    if is_list[k] then
      is_list[k] = nil
      common.mark_list(LIST_OPERATION, result.res)
    end
    done = done + 1
    if result.err ~= nil or result.res == nil then failed = failed + 1 end
    outcomes[i] = result
    write_ready()
    if bar then bar:update(done, failed) end
  end

  write_ready() -- malformed lines at the start
  local counts = { ok = 0 }
  local count = #items
  if count > 0 then
    if sys.trap_signals then sys.trap_signals() end
    local ok
    ok, counts, err = pcall(client.batch, items, {
      concurrency = args.concurrency, keep_results = false, on_result = on_result, should_stop = should_stop,
    })
    if not stop_reason and sys.caught_signal and sys.caught_signal() then should_stop() end
    if sys.restore_signals then sys.restore_signals() end
    if not ok then error(counts, 0) end
  end
  client:close()
  if not counts then
    if bar then bar:finish(done, failed) end
    return nil, err
  end
  for i = 1, total do -- none left without a line
    if outcomes[i] == nil then outcomes[i] = { err = errors.new("config", "no result") } end
  end
  write_ready()
  if bar then bar:finish(done, failed) end

  collectgarbage("setpause", pause)
  local elapsed = sys.now() - started
  local summary = format("%d line%s, %d ok, %d failed", total, total == 1 and "" or "s", reported_ok, reported_failed)
  if not_run > 0 then summary = summary .. format(", %d not run", not_run) end
  local hint = ""
  if refused > 0 and sys.token_source then
    hint = format("; the API refused the token (401) %d time%s: check the token in %s", refused,
      refused == 1 and "" or "s", output.one_line(sys.token_source))
  end
  if sys.stdout_error then
    summary = summary .. format("; %d result%s lost: cannot write to stdout (%s)", lost, lost == 1 and "" or "s",
      output.one_line(tostring(sys.stdout_error)))
    sys.stdout_reported = true
  end
  if signal_number then
    common.say(sys, format("toolzz: batch interrupted by %s after %.2f s: %s%s", stop_reason, elapsed, summary, hint))
    return 128 + signal_number
  end
  common.say(sys, format("toolzz: batch: %s in %.2f s%s", summary, elapsed, hint))
  if sys.stdout_error then return EXIT.output end
  return (reported_failed == 0 and not_run == 0) or EXIT.failed
end

return _M

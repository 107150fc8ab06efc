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
local concat = table.concat
local format = string.format

local _M = {}

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

-- The lines of a batch file -> a list of { number =, item = } | { number
-- =, err = } (the item, or a malformed line's error, said on stderr
-- meanwhile), each line's text released as it is read.
local function read_items(sys, text)
  local lines = input.batch_lines(text)
  for i = 1, #lines do
    local line = lines[i]
    local item, problem = input.batch_item(line.text, BATCH_OPERATIONS)
    if item then
      lines[i] = { number = line.number, item = item }
    else
      lines[i] = { number = line.number, err = errors.new("validation", "malformed line: " .. problem) }
      common.say(sys, "toolzz: line " .. line.number .. ": " .. output.one_line(problem))
    end
  end
  return lines
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
  local text, why = input.reader(sys.stdin)(args.file)
  if not text then return nil, "batch file: " .. tostring(why) end
  local lines = read_items(sys, text)
  text = nil -- luacheck: ignore 311
  local total = #lines
  local items, line_of_item = {}, {}
  local outcomes = {} -- line -> its outcome until printed, then false
  local malformed = 0
  for i = 1, total do
    local line = lines[i]
    if line.item then
      items[#items + 1] = line.item
      line_of_item[#items] = i
      line.item = nil
    else
      outcomes[i] = { err = line.err }
      line.err = nil
      malformed = malformed + 1
    end
    lines[i] = line.number -- all that is kept of a line
  end
  local failed = malformed

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

  local written, reported_ok, reported_failed, not_run, lost = 0, 0, 0, 0, 0
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
      end
      if not common.write_out(sys, result_line(sys, args, lines[i], outcome)) then lost = lost + 1 end
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
      local before = sys.stdout_error
      if not common.flush_out(sys) and not before then lost = lost + round end
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
    local i, item = line_of_item[k], items[k]
    items[k], line_of_item[k] = nil, nil -- the item is done with
    if type(result) ~= "table" then result = {} end
    common.mark_list(BATCH_OPERATIONS[item[1]], result.res) -- an empty list prints as [], as list's does
    done = done + 1
    if result.err ~= nil or result.res == nil then failed = failed + 1 end
    outcomes[i] = result
    write_ready()
    if bar then bar:update(done, failed) end
  end

  write_ready() -- malformed lines at the start
  local counts = { ok = 0 }
  if #items > 0 then
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

  local elapsed = sys.now() - started
  local summary = format("%d line%s, %d ok, %d failed", total, total == 1 and "" or "s", reported_ok, reported_failed)
  if not_run > 0 then summary = summary .. format(", %d not run", not_run) end
  if sys.stdout_error then
    summary = summary .. format("; %d result%s lost: cannot write to stdout (%s)", lost, lost == 1 and "" or "s",
      output.one_line(tostring(sys.stdout_error)))
    sys.stdout_reported = true
  end
  if signal_number then
    common.say(sys, format("toolzz: batch interrupted by %s after %.2f s: %s", stop_reason, elapsed, summary))
    return 128 + signal_number
  end
  common.say(sys, format("toolzz: batch: %s in %.2f s", summary, elapsed))
  if sys.stdout_error then return EXIT.output end
  return (reported_failed == 0 and not_run == 0) or EXIT.failed
end

return _M

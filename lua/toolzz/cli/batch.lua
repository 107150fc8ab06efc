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

local type, ipairs, pairs = type, ipairs, pairs
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

-- Run toolzz batch FILE.jsonl: -> true when every line succeeded, else
-- EXIT.failed (the results printed), or nil, err, or nil, usage message.
function _M.command(args, sys)
  local opts, err = common.client_options(args, sys)
  if not opts then return nil, err end
  local text, why = input.reader(sys.stdin)(args.file)
  if not text then return nil, "batch file: " .. tostring(why) end
  local lines = input.batch_lines(text)
  local items, line_of_item, outcomes = {}, {}, {}
  local malformed = 0
  for i, line in ipairs(lines) do
    local item, problem = input.batch_item(line.text, BATCH_OPERATIONS)
    if item then
      items[#items + 1] = item
      line_of_item[#items] = i
    else
      malformed = malformed + 1
      outcomes[i] = { err = errors.new("validation", "malformed line: " .. problem) }
      common.say(sys, "toolzz: line " .. line.number .. ": " .. output.one_line(problem))
    end
  end

  local bar
  local hooks = { before_line = function() if bar then bar:clear() end end }
  local client
  client, err = common.new_client(opts, sys, args, hooks)
  if not client then return nil, err end
  local started = sys.now()
  local failed, done = malformed, malformed
  if sys.isatty(2) and #lines > 0 then
    bar = progress.new(sys.stderr, #lines, sys.now)
    bar:update(done, failed, true)
  end
  -- Result lines go out in input order, each as soon as it and every line
  -- before it are done: an interrupted batch has reported what it did.
  local written = 0
  local function write_ready()
    while written < #lines and outcomes[written + 1] ~= nil do
      if bar then bar:clear() end
      written = written + 1
      local outcome, head = outcomes[written], '{"line":' .. lines[written].number
      if outcome.err == nil and outcome.res ~= nil then
        sys.stdout:write(head, ',"ok":true,"res":', common.result_json(outcome.res, sys.secrets, args.show_secrets),
          "}\n")
      else
        local e = outcome.err or errors.new("config", "no result")
        sys.stdout:write(head, ',"ok":false,"error":',
          output.encode(output.printable(output.error_table(e), sys.secrets, args.show_secrets)), "}\n")
      end
    end
    sys.stdout:flush()
  end
  local function settle(k, result)
    if type(result) ~= "table" then result = {} end
    outcomes[line_of_item[k]] = result
    -- an empty list prints as [], as the list command's does
    common.mark_list(BATCH_OPERATIONS[items[k][1]], result.res)
  end
  write_ready() -- malformed lines at the start
  local results = {}
  if #items > 0 then
    results, err = client.batch(items, {
      concurrency = args.concurrency,
      on_progress = function(finished, _, k, result)
        done = malformed + finished
        if type(result) == "table" and result.err then failed = failed + 1 end
        settle(k, result)
        write_ready()
        if bar then bar:update(done, failed) end
      end,
    })
  end
  client:close()
  if not results then
    if bar then bar:finish(done, failed) end
    return nil, err
  end
  for k, result in pairs(results) do settle(k, result) end
  for i = 1, #lines do outcomes[i] = outcomes[i] or {} end -- none left without a line
  write_ready()

  failed = 0
  for i = 1, #lines do
    local outcome = outcomes[i]
    if not (outcome.err == nil and outcome.res ~= nil) then failed = failed + 1 end
  end
  sys.stdout:flush()
  if bar then bar:finish(#lines, failed) end
  common.say(sys, format("toolzz: batch: %d line%s, %d ok, %d failed in %.2f s", #lines, #lines == 1 and "" or "s",
    #lines - failed, failed, sys.now() - started))
  return failed == 0 or EXIT.failed
end

return _M

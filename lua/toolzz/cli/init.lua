-- toolzz.cli: the `toolzz` command (bin/toolzz is only its launcher).
--
--   os.exit(require("toolzz.cli").main(arg))
--
-- One subcommand per call of the client (toolzz calcom get ID, toolzz gcal
-- patch ID --set k=v, ...) and `toolzz batch FILE.jsonl`. Arguments are
-- parsed by argparse; bodies and batch lines are read by toolzz.cli.input,
-- results printed by toolzz.cli.output. main() returns the exit status:
-- 0 success, 1 the API or the network failed, 2 usage, 3 validation,
-- 4 configuration; a batch is 0 only when every line succeeded.
local argparse = require "argparse"
local toolzz = require "toolzz"
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local schema = require "toolzz.schema"
local operations = require "toolzz.operations"
local calls = require "toolzz.calls"
local input = require "toolzz.cli.input"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local sync = require "toolzz.cli.sync"

local type, tostring, tonumber, ipairs, pairs, getmetatable, setmetatable, rawget =
  type, tostring, tonumber, ipairs, pairs, getmetatable, setmetatable, rawget
local floor = math.floor
local concat = table.concat
local format, gsub = string.format, string.gsub
local unpack = table.unpack or unpack -- luacheck: ignore 143

local _M = {}

_M.EXIT = sync.EXIT -- 0 ok, 1 failed, 2 usage, 3 validation, 4 config; 5, 6, 7: plan and apply
local EXIT = _M.EXIT

-- ---- the operations, as data -------------------------------------------------------

-- Each subcommand: endpoint, operation, the argument it takes (its name in
-- help), whether it sends a body, its help line and an example.
local OPERATIONS = {
  { "calcom", "get", id = "ID", summary = "Show one Cal.com integration." },
  { "calcom", "list", id = "UNIT_ID", summary = "List the Cal.com integrations of a unit.",
    example = "toolzz --output table calcom list UNIT_ID" },
  { "calcom", "create", body = "fields", summary = "Create a Cal.com integration.",
    example = "toolzz calcom create -f integration.json --set-file apiKey=cal-api-key.txt" },
  { "calcom", "update", id = "ID", body = "fields",
    summary = "Replace a Cal.com integration (PUT: every required field).",
    example = "toolzz calcom update ID -f integration.json" },
  { "calcom", "patch", id = "ID", body = "changes",
    summary = "Change some fields of a Cal.com integration (get, merge, update).",
    example = "toolzz calcom patch ID --set createBookingEnabled=false --set prompt=\"30 min only\"" },
  { "gcal", "get", id = "ID", summary = "Show one Google Calendar function." },
  { "gcal", "list", id = "UNITY_ID", summary = "List the Google Calendar functions of a unit.",
    example = "toolzz --output table gcal list UNITY_ID" },
  { "gcal", "create", body = "fields", summary = "Create a Google Calendar function.",
    example = "toolzz gcal create -f function.json --set-file googleCalendar.googleToken=token.txt" },
  { "gcal", "update", id = "ID", body = "fields",
    summary = "Replace a Google Calendar function (PUT: every required field).",
    example = "toolzz gcal update ID -f function.json" },
  { "gcal", "patch", id = "ID", body = "changes",
    summary = "Change some fields of a Google Calendar function (get, merge, update).",
    example = "toolzz gcal patch ID --set googleCalendar.timezone=Europe/Lisbon -f changes.json" },
  { "gcal", "duplicate", id = "ID", summary = "Copy a Google Calendar function." },
}
_M.OPERATIONS = OPERATIONS

local ENDPOINTS = {
  calcom = "Cal.com integrations (create, get and list go to the converflow host).",
  gcal = "Google Calendar functions.",
}

-- What a batch line may name: "calcom.get", ..., and the Part 1 forms
-- "calcom" and "gcal", which mean update.
local BATCH_OPERATIONS = {}
for _, o in ipairs(OPERATIONS) do
  BATCH_OPERATIONS[o[1] .. "." .. o[2]] = { takes_id = o.id ~= nil, takes_body = o.body ~= nil }
end
BATCH_OPERATIONS.calcom = BATCH_OPERATIONS["calcom.update"]
BATCH_OPERATIONS.gcal = BATCH_OPERATIONS["gcal.update"]
_M.BATCH_OPERATIONS = BATCH_OPERATIONS

-- The schema a body of this operation is read against (for --set values):
-- the catalogue's, else the endpoint's.
local function schema_of(endpoint, op)
  local entry = operations.by_name[endpoint .. "." .. op]
  return entry and entry.schema or schema[endpoint]
end
_M.schema_of = schema_of

-- ---- the parser ---------------------------------------------------------------------

local EPILOG = [[
The token comes from TOOLZZ_TOKEN or --token-file, never from an argument.
Environment: TOOLZZ_TOKEN, TOOLZZ_BASE_URL, TOOLZZ_CONVERFLOW_URL.
Exit status: 0 success; 1 the API or the network failed (http, network,
timeout, tls, decode, limit); 2 usage; 3 validation; 4 configuration; 5, 6, 7:
see plan --help and apply --help. A batch exits 0 only when every line succeeded.]]

local function whole_number(name, low, high)
  return function(text)
    local n = tonumber(text)
    if n and n >= low and n <= high and floor(n) == n then return floor(n) end
    return nil, format("%s must be a whole number from %d to %d, got '%s'", name, low, high, text)
  end
end

local function seconds(text)
  local n = tonumber(text)
  if n and n > 0 and n < 86400 then return n end
  return nil, "--timeout must be a number of seconds above 0, got '" .. text .. "'"
end

local function refuse_token()
  return nil, "the token is never taken from an argument (other users can read a process's arguments): "
    .. "set TOOLZZ_TOKEN or use --token-file PATH"
end

-- Keep --set and --set-file in one list, in command-line order.
local function assignment(name)
  return function(result, _, value)
    local list = result.assignments or {}
    result.assignments = list
    list[#list + 1] = { name, value }
  end
end

local function add_body_options(command, what)
  command:option("-f --file", "Read the " .. what .. " from FILE (JSON; - for stdin)."):argname("FILE")
  command:option("--set", "Set one field: a dotted path and a JSON value, else a string "
      .. "(null removes an optional field). Repeatable.")
    :argname("PATH=VALUE"):count("*"):action(assignment("set"))
  command:option("--set-file", "Set one field to the contents of FILE, trailing newline stripped "
      .. "(for secrets such as a googleToken). Repeatable.")
    :argname("PATH=FILE"):count("*"):action(assignment("set_file"))
end

function _M.version_text()
  local jit = rawget(_G, "jit")
  return format("toolzz %s (%s; libcurl/%s; argparse %s)", tostring(toolzz._VERSION),
    jit and jit.version or _VERSION, tostring(core.curl_version), tostring(argparse.version))
end

-- The argparse parser of the whole command.
function _M.parser()
  local parser = argparse("toolzz",
      "Manage ToolzzAI Cal.com integrations and Google Calendar functions from a shell.")
    :epilog(EPILOG)
    :command_target("endpoint")
    :help_max_width(100)
    :help_description_margin(30)
    :usage_max_width(90)
  parser:flag("--version", "Print the version and exit."):action(function()
    io.stdout:write(_M.version_text(), "\n")
    os.exit(0)
  end)
  parser:option("--token-file", "Read the API token from PATH (else TOOLZZ_TOKEN)."):argname("PATH")
  parser:option("--token"):hidden(true):convert(refuse_token)
  parser:option("--base-url", "Base URL of the API (else TOOLZZ_BASE_URL)."):argname("URL")
  parser:option("--converflow-url", "Base URL of the converflow host (else TOOLZZ_CONVERFLOW_URL)."):argname("URL")
  parser:option("--timeout", "Seconds one attempt may take."):argname("SECONDS"):convert(seconds)
  parser:option("--retries", "Extra attempts after the first."):argname("N"):convert(whole_number("--retries", 0, 10))
  parser:option("--ca-file", "Extra CA certificates (PEM) to trust."):argname("PATH")
  parser:flag("--dry-run", "Validate and print the request a write would send; send no write.")
  parser:flag("-v --verbose", "One line on stderr per attempt: method, URL, status, ms, request id.")
  parser:flag("--show-secrets", "Print googleToken and apiKey values instead of [REDACTED].")
  parser:option("-o --output", "json (one line), pretty (indented) or table (lists, for people); "
      .. "default: pretty on a terminal, else json."):argname("FORMAT"):choices { "json", "pretty", "table" }

  local commands = {}
  for _, name in ipairs { "calcom", "gcal" } do
    commands[name] = parser:command(name, ENDPOINTS[name]):command_target("op")
  end
  for _, o in ipairs(OPERATIONS) do
    local command = commands[o[1]]:command(o[2], o.summary, o.example and ("Example: " .. o.example))
    if o.id then command:argument("id", o.id == "ID" and "Its id (a UUID)." or "The unit's id (a UUID)."):argname(o.id) end
    if o.body then add_body_options(command, o.body) end
  end

  local batch = parser:command("batch", "Run many calls from a JSON Lines file, concurrently.",
    [[Each line is one call: {"op":"gcal.patch","id":"...","fields":{...}}, where op is
calcom.get|list|create|update|patch or gcal.get|list|create|update|patch|duplicate
(id is the unit's id for list; fields is the body, or the changes of a patch).
Results are printed as JSON Lines in input order: {"line":N,"ok":true,"res":...}
or {"line":N,"ok":false,"error":{...}}. A malformed line fails alone.]])
  batch:argument("file", "The JSON Lines file (- for stdin)."):argname("FILE.jsonl")
  batch:option("--concurrency", "Calls in flight at once."):argname("N")
    :convert(whole_number("--concurrency", 1, 256)):default("8")
  sync.add_to_parser(parser)
  return parser
end

-- ---- the system around a run (replaceable in tests) ---------------------------------------

-- Whether file descriptor fd of this process is a terminal.
local function isatty(fd)
  local status = os.execute("test -t " .. fd)
  return status == true or status == 0
end

function _M.system()
  return {
    stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
    getenv = os.getenv, isatty = isatty, now = core.now,
  }
end

-- ---- a run ---------------------------------------------------------------------------------

local function exit_code(err)
  if type(err) == "table" then
    if err.kind == "validation" then return EXIT.validation end
    if err.kind == "config" then return EXIT.config end
  end
  return EXIT.failed
end
_M.exit_code = exit_code

local function say(sys, line)
  sys.stderr:write(line, "\n")
end

local function fail(sys, err, secrets)
  for _, line in ipairs(output.error_lines(err, secrets)) do say(sys, line) end
  return exit_code(err)
end

local COMMAND_WORDS = { calcom = true, gcal = true, batch = true, plan = true, apply = true, export = true }
local function usage_error(sys, message, argv)
  -- Name the subcommand whose help would explain it.
  local words = {}
  for i = 1, #argv do
    local w = argv[i]
    if COMMAND_WORDS[w] or (#words > 0 and words[1] ~= "batch"
        and #words == 1 and BATCH_OPERATIONS[words[1] .. "." .. w]) then
      words[#words + 1] = w
    end
  end
  words[#words + 1] = "--help"
  say(sys, "toolzz: " .. output.one_line(message) .. " (see: toolzz " .. concat(words, " ") .. ")")
  return EXIT.usage
end

-- The client options from the command line, and the secrets no output may
-- show; or nil, config error.
local function client_options(args, sys)
  local opts = { base_url = args.base_url, timeout = args.timeout, retries = args.retries, ca_file = args.ca_file }
  if args.converflow_url then opts.converflow_url = args.converflow_url end
  if args.dry_run then opts.dry_run = true end
  local token = sys.getenv("TOOLZZ_TOKEN")
  if args.token_file then
    local file, why = io.open(args.token_file, "rb")
    if not file then return nil, errors.config("--token-file cannot be read: " .. tostring(why)) end
    token = file:read("*a") or ""
    file:close()
    token = gsub(token, "[\r\n]+$", "")
    if token == "" then return nil, errors.config("--token-file " .. args.token_file .. " is empty") end
  end
  opts.token = token -- nil: toolzz.new says there is none
  return opts, { token }
end

-- The --verbose line of one attempt, from on_response.
function _M.attempt_line(info)
  local parts = { "toolzz:", tostring(info.method), tostring(info.url) }
  if info.status then
    parts[#parts + 1] = tostring(info.status)
  elseif info.error then
    parts[#parts + 1] = "failed (" .. tostring(info.error) .. ")"
  end
  parts[#parts + 1] = output.ms(info.elapsed) .. " ms"
  if info.attempt then parts[#parts + 1] = "attempt " .. tostring(info.attempt) end
  if info.request_id then parts[#parts + 1] = "request-id " .. tostring(info.request_id) end
  return output.one_line(concat(parts, " "))
end

-- The JSON text of a result: a dry run's request with its body as sent
-- (secret values redacted), else the response made printable.
local function result_json(res, secrets, show_secrets)
  if calls.is_dry_result(res) then -- toolzz's own, never a server record shaped like one
    local body = "null"
    if type(res.body) == "string" and res.body ~= "" then
      body = show_secrets and res.body or output.redact_json_text(res.body)
      body = errors.scrub(body, secrets)
    end
    return '{"dry_run":true,"method":' .. output.encode(res.method) .. ',"url":'
      .. output.encode(errors.scrub(tostring(res.url), secrets)) .. ',"body":' .. body .. "}"
  end
  return output.encode(output.printable(res, secrets, show_secrets))
end
_M.result_json = result_json

-- A list call's result is a JSON array, even when empty (decoded JSON
-- cannot tell [] from {}). op: "list" or a full name such as "gcal.list".
local function mark_list(op, res)
  if type(op) == "string" and (op == "list" or op:match("%.list$")) and type(res) == "table"
    and getmetatable(res) == nil then
    setmetatable(res, core.array_mt)
  end
end

local function write_result(sys, args, res, secrets)
  if args.output == "table" and type(res) == "table" and not calls.is_dry_result(res) then
    sys.stdout:write(output.table_view(output.printable(res, secrets, args.show_secrets)))
    return
  end
  local text = result_json(res, secrets, args.show_secrets)
  if args.output == "pretty" or (args.output == nil and sys.isatty(1)) then text = output.pretty(text) end
  sys.stdout:write(text, "\n")
end

local function new_client(opts, sys, args, secrets, hooks)
  if args.verbose then
    opts.on_response = function(info)
      if hooks.before_line then hooks.before_line() end
      say(sys, errors.scrub(_M.attempt_line(info), secrets))
    end
  end
  return toolzz.new(opts)
end

-- One call: toolzz <endpoint> <op> ...
local function run_call(args, sys, opts, secrets)
  local endpoint, op = args.endpoint, args.op
  local operation
  for _, o in ipairs(OPERATIONS) do
    if o[1] == endpoint and o[2] == op then operation = o end
  end
  local call_args = {}
  if operation.id then call_args[1] = args.id end
  if operation.body then
    if not args.file and not args.assignments then
      return usage_error(sys, "nothing to send: give -f FILE and/or --set PATH=VALUE", { endpoint, op })
    end
    local body, from_files = input.build_body(input.reader(sys.stdin), args.file, args.assignments,
      schema_of(endpoint, op))
    if not body then return usage_error(sys, from_files, { endpoint, op }) end
    if not args.show_secrets then
      for _, s in ipairs(from_files) do secrets[#secrets + 1] = s end
    end
    call_args[#call_args + 1] = body
  end
  local client, err = new_client(opts, sys, args, secrets, {})
  if not client then return fail(sys, err, secrets) end
  local call = client[endpoint][op]
  if type(call) ~= "function" then
    client:close()
    return fail(sys, errors.config("this toolzz module has no " .. endpoint .. "." .. op), secrets)
  end
  local res
  res, err = call(unpack(call_args, 1, operation.id and operation.body and 2 or 1))
  client:close()
  if res == nil then return fail(sys, err, secrets) end
  mark_list(op, res)
  write_result(sys, args, res, secrets)
  return EXIT.ok
end

-- toolzz batch FILE.jsonl
local function run_batch(args, sys, opts, secrets)
  local text, why = input.reader(sys.stdin)(args.file)
  if not text then return usage_error(sys, "batch file: " .. tostring(why), { "batch" }) end
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
      say(sys, "toolzz: line " .. line.number .. ": " .. output.one_line(problem))
    end
  end

  local bar
  local hooks = { before_line = function() if bar then bar:clear() end end }
  local client, err = new_client(opts, sys, args, secrets, hooks)
  if not client then return fail(sys, err, secrets) end
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
        sys.stdout:write(head, ',"ok":true,"res":', result_json(outcome.res, secrets, args.show_secrets), "}\n")
      else
        local e = outcome.err or errors.new("config", "no result")
        sys.stdout:write(head, ',"ok":false,"error":',
          output.encode(output.printable(output.error_table(e), secrets, args.show_secrets)), "}\n")
      end
    end
    sys.stdout:flush()
  end
  local function settle(k, result)
    if type(result) ~= "table" then result = {} end
    outcomes[line_of_item[k]] = result
    mark_list(items[k][1], result.res) -- an empty list prints as [], as the list command's does
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
    return fail(sys, err, secrets)
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
  say(sys, format("toolzz: batch: %d line%s, %d ok, %d failed in %.2f s", #lines, #lines == 1 and "" or "s",
    #lines - failed, failed, sys.now() - started))
  return failed == 0 and EXIT.ok or EXIT.failed
end

-- For the command modules (toolzz.cli.sync).
_M.whole_number, _M.usage_error, _M.client_options, _M.new_client =
  whole_number, usage_error, client_options, new_client

-- Run the command with arguments argv (a list of strings); returns the exit status.
function _M.main(argv, sys)
  sys = sys or _M.system()
  local args_list = {}
  for i = 1, #(argv or {}) do args_list[i] = argv[i] end
  local ok, args = _M.parser():pparse(args_list)
  if not ok then return usage_error(sys, args, args_list) end
  if sync.handles(args) then return sync.command(args, sys) end
  local opts, secrets = client_options(args, sys)
  if not opts then return fail(sys, secrets, {}) end
  if args.endpoint == "batch" then return run_batch(args, sys, opts, secrets) end
  return run_call(args, sys, opts, secrets)
end

return _M

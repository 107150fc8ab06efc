-- toolzz.cli: the `toolzz` command (bin/toolzz is only its launcher).
--
--   os.exit(require("toolzz.cli").main(arg))
--
-- This file keeps the parser and its global options, the list of command
-- modules, dispatch, the exit-code table and the crash handler. The
-- commands live one family per file: toolzz.cli.call (toolzz calcom get
-- ID, toolzz gcal patch ID --set k=v, ... one per operation of the
-- catalogue), toolzz.cli.batch (toolzz batch FILE.jsonl), toolzz.cli.doctor,
-- toolzz.cli.sync (toolzz plan, apply, export). Shared pieces
-- are in toolzz.cli.common; bodies and batch lines are read by
-- toolzz.cli.input, results printed by toolzz.cli.output.
--
-- A command module (add its name to COMMAND_MODULES below; nothing else):
--
--   add_to_parser(parser) -> list of names
--       adds its command(s) to the argparse parser and returns their names
--       (the value args.command takes when one of them runs).
--   command(args, sys) -> true | exit code | nil, err[, exit code]
--       runs it. args: the parsed arguments (the global options too: use
--       toolzz.cli.common.client_options(args, sys) for a client's).
--       sys: stdin, stdout, stderr, getenv, isatty(fd), now() and
--       `secrets`, the run's list of strings no output may show (add any
--       secret you read). true: exit 0. A number: that exit status, the
--       command has printed what it had to. nil, err: err an error table
--       (printed by toolzz.cli.output.error_lines, secrets scrubbed; exit by
--       its kind) or a string (a usage message, printed with its --help
--       hint; exit 2); a third value overrides the exit status; a fourth
--       is one more line of advice printed after the error.
--   A Lua error it raises is caught: one line on stderr, exit 70.
--   Make calls through the public API (require "toolzz"), never its
--   internals (toolzz.calls, ...); read operations from the catalogue
--   (toolzz.operations); error tables come from toolzz.errors.
local argparse = require "argparse"
local toolzz = require "toolzz"
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local operations = require "toolzz.operations"
local output = require "toolzz.cli.output"
local common = require "toolzz.cli.common"

local type, tostring, tonumber, ipairs, rawget, setmetatable, require, pcall, xpcall =
  type, tostring, tonumber, ipairs, rawget, setmetatable, require, pcall, xpcall
local concat = table.concat
local format, gsub = string.format, string.gsub

local _M = {}

-- The exit statuses of the command.
_M.EXIT = {
  ok = 0,
  failed = 1,      -- the API or the network failed (http, network, timeout, tls, decode, limit)
  usage = 2,
  validation = 3,
  config = 4,
  differences = 5, -- plan --detailed-exitcode: the API differs from the file (CONTRACT Part 3)
  partial = 6,     -- apply: some changes were not applied (failed, skipped, unknown)
  refused = 7,     -- apply: refused before writing (stale, checksum, unsafe, failed matches, cancelled)
  output = 74,     -- stdout could not be written (EX_IOERR): results were lost
  internal = 70,   -- a bug: an unexpected Lua error (EX_SOFTWARE)
}
local EXIT = _M.EXIT

-- The command modules, in the order help lists their commands.
local COMMAND_MODULES = {
  "toolzz.cli.call",
  "toolzz.cli.batch",
  "toolzz.cli.doctor",
  "toolzz.cli.sync",
}
_M.COMMAND_MODULES = COMMAND_MODULES

-- ---- the parser ---------------------------------------------------------------------

local EPILOG = [[
The token comes from TOOLZZ_TOKEN or --token-file, never from an argument.
Environment: TOOLZZ_TOKEN, TOOLZZ_BASE_URL, TOOLZZ_CONVERFLOW_URL.
Exit status: 0 success; 1 the API or the network failed (http, network,
timeout, tls, decode, limit); 2 usage; 3 validation; 4 configuration;
5, 6, 7 plan --detailed-exitcode differences, apply partly applied,
apply refused (see plan --help, apply --help); 74 stdout could not be
written; 130 interrupted (SIGINT), 143 (SIGTERM).
A batch exits 0 only when every line succeeded, else 1.]]

local function seconds(text)
  local n = tonumber(text)
  if n and n > 0 and n < 86400 then return n end
  return nil, "--timeout must be a number of seconds above 0, got '" .. text .. "'"
end

local function refuse_token()
  return nil, "the token is never taken from an argument (other users can read a process's arguments): "
    .. "set TOOLZZ_TOKEN or use --token-file PATH"
end

-- The --version line.
function _M.version_text()
  local jit = rawget(_G, "jit")
  return format("toolzz %s (%s; libcurl/%s; argparse %s)", tostring(toolzz._VERSION),
    jit and jit.version or _VERSION, tostring(core.curl_version), tostring(argparse.version))
end

-- The global options, as every subcommand's help lists them (its errors
-- send people to that help): the names in `toolzz --help`'s order.
local GLOBAL_HELP = [[
Global options (before or after the command; see toolzz --help):
  --token-file PATH, --base-url URL, --converflow-url URL,
  --timeout SECONDS (default: %s), --retries N (default: %s), --ca-file PATH,
  --dry-run, -v --verbose, --show-secrets, -o --output json|pretty|table.
The token comes from TOOLZZ_TOKEN or --token-file, never from an argument.]]

-- Print p's help on stdout and exit: 0, or EXIT.output when stdout failed.
local function print_help(p)
  local ok, why = io.stdout:write(p:get_help(), "\n")
  if ok then ok, why = io.stdout:flush() end
  if not ok then
    io.stderr:write("toolzz: cannot write to stdout (", output.one_line(tostring(why)), ")\n")
    os.exit(EXIT.output)
  end
  os.exit(0)
end

-- Append GLOBAL_HELP to the help of every command below parser, and make
-- every --help report a failed write (argparse keeps a parser's commands
-- in _commands, its epilog in _epilog, its options in _options and its
-- help flag's place among them in _help_option_idx).
local function finish_help(parser)
  local text = format(GLOBAL_HELP, toolzz.DEFAULTS.timeout, toolzz.DEFAULTS.retries)
  local function walk(p)
    local help = p._help_option_idx and p._options and p._options[p._help_option_idx]
    if help then help:action(function() print_help(p) end) end
    for _, command in ipairs(p._commands or {}) do
      command:epilog(command._epilog and (command._epilog .. "\n\n" .. text) or text)
      walk(command)
    end
  end
  walk(parser)
end

-- The argparse parser of the whole command, and a table: command name ->
-- its module. modules: a list of command modules (default: COMMAND_MODULES).
function _M.parser(modules)
  local parser = argparse("toolzz",
      "Manage ToolzzAI Cal.com integrations and Google Calendar functions from a shell.")
    :epilog(EPILOG)
    :command_target("command")
    :help_max_width(100)
    :help_description_margin(30)
    :usage_max_width(90)
  parser:flag("--version", "Print the version and exit."):action(function()
    local ok, why = io.stdout:write(_M.version_text(), "\n")
    if ok then ok, why = io.stdout:flush() end
    if not ok then
      io.stderr:write("toolzz: cannot write to stdout (", output.one_line(tostring(why)), ")\n")
      os.exit(EXIT.output)
    end
    os.exit(0)
  end)
  parser:option("--token-file", "Read the API token from PATH (else TOOLZZ_TOKEN)."):argname("PATH")
  parser:option("--token"):hidden(true):convert(refuse_token)
  parser:option("--base-url", "Base URL of the API (else TOOLZZ_BASE_URL)."):argname("URL")
  parser:option("--converflow-url", "Base URL of the converflow host (else TOOLZZ_CONVERFLOW_URL)."):argname("URL")
  parser:option("--timeout", "Seconds one attempt may take (default: " .. toolzz.DEFAULTS.timeout .. ")."):argname("SECONDS")
    :convert(seconds)
  parser:option("--retries", "Extra attempts after the first (default: " .. toolzz.DEFAULTS.retries .. ")."):argname("N")
    :convert(common.whole_number("--retries", 0, 10))
  parser:option("--ca-file", "Extra CA certificates (PEM) to trust."):argname("PATH")
  parser:flag("--dry-run", "Validate and print the request a write would send; send no write.")
  parser:flag("-v --verbose", "One line on stderr per attempt: method, URL, status, ms, request id.")
  parser:flag("--show-secrets", "Print googleToken and apiKey values instead of [REDACTED].")
  parser:option("-o --output", "json (one line), pretty (indented) or table (lists, for people); "
      .. "default: pretty on a terminal, else json."):argname("FORMAT"):choices { "json", "pretty", "table" }

  local module_of = {}
  for _, name in ipairs(modules or COMMAND_MODULES) do
    local module = type(name) == "table" and name or require(name)
    for _, command in ipairs(module.add_to_parser(parser)) do module_of[command] = module end
  end
  finish_help(parser)
  return parser, module_of
end

-- ---- the system around a run (replaceable in tests) ---------------------------------------

-- Whether file descriptor fd of this process is a terminal.
local function isatty(fd)
  local status = os.execute("test -t " .. fd)
  return status == true or status == 0
end

-- The real system: standard streams, environment, terminal test, clock.
function _M.system()
  return {
    stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
    getenv = os.getenv, isatty = isatty, now = core.now,
    trap_signals = core.trap_signals, caught_signal = core.caught_signal, restore_signals = core.restore_signals,
  }
end

-- ---- failures and exit statuses -------------------------------------------------------------

-- An error table -> its exit status (validation 3, config 4, else 1).
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

-- A usage message -> one line naming the help that explains it; exit 2.
-- words: the command (and subcommand) whose --help to name.
local function usage_line(sys, message, words)
  words[#words + 1] = "--help"
  message = gsub(tostring(message), "([^%.%?!:])\n", "%1. ") -- argparse's "...'lsit'\nDid you mean" is two sentences
  say(sys, "toolzz: " .. output.one_line(message) .. " (see: toolzz " .. concat(words, " ") .. ")")
  return EXIT.usage
end

-- The words of argv that name a command and its subcommand (for the hint).
local function command_words(argv, module_of)
  local words = {}
  for i = 1, #argv do
    local w = argv[i]
    if module_of[w] or (#words == 1 and operations.by_name[words[1] .. "." .. w]) then
      words[#words + 1] = w
    end
  end
  return words
end

-- What a command returned -> the exit status, its failure printed on
-- stderr (secrets scrubbed). The one place failures become statuses.
local function conclude(sys, args, ok, err, code, advice)
  if ok == true then return EXIT.ok end
  if type(ok) == "number" then return ok end
  if type(err) == "string" then
    usage_line(sys, err, { args.command, args.op })
    return code or EXIT.usage
  end
  for _, line in ipairs(output.error_lines(err, sys.secrets)) do say(sys, line) end
  if type(err) == "table" and err.status == 401 and sys.token_source then
    say(sys, "toolzz: the API refused the token (401): check the token in " .. output.one_line(sys.token_source))
  end
  if type(advice) == "string" then say(sys, output.one_line(advice)) end
  return code or exit_code(err)
end

-- An unexpected Lua error -> one line on stderr, no traceback, no secret; 70.
-- (Ctrl-C outside a batch, raised by the interpreter as "interrupted!": 130.)
local function crash(sys, problem)
  local ok, text = pcall(tostring, problem)
  if not ok or type(text) ~= "string" then text = "(an error value that cannot be printed)" end
  if text:find("interrupted!$") then
    pcall(say, sys, "toolzz: interrupted")
    return 130
  end
  local secrets = {}
  for i, s in ipairs(sys.secrets) do secrets[i] = s end
  local ok_env, token = pcall(sys.getenv, "TOOLZZ_TOKEN")
  if ok_env and type(token) == "string" then secrets[#secrets + 1] = token end
  text = errors.scrub(text, secrets)
  pcall(say, sys, "toolzz: internal error (a bug, please report it): " .. output.one_line(text):sub(1, 400))
  return EXIT.internal
end

-- ---- a run ---------------------------------------------------------------------------------

-- Whether stdout is a closed file descriptor (`>&-`) -> its error, or nil.
-- A command then runs nothing: what it printed would be lost, or land in
-- whatever file the descriptor is given to next (a socket, say).
local EBADF = 9
local function stdout_closed(sys)
  local stdout = sys.stdout
  if io.type(stdout) ~= "file" then return nil end
  local ok, why, code = stdout:seek("cur", 0)
  if ok == nil and code == EBADF then return tostring(why) end
  return nil
end

-- Parse argv and run the command it names -> exit status.
local function run(argv, sys, modules)
  local args_list = {}
  for i = 1, #(argv or {}) do args_list[i] = argv[i] end
  local parser, module_of = _M.parser(modules)
  local ok, args = parser:pparse(args_list)
  if not ok then return usage_line(sys, args, command_words(args_list, module_of)) end
  local closed = stdout_closed(sys)
  if closed then
    say(sys, "toolzz: stdout is closed (" .. output.one_line(closed) .. "): nothing was run")
    return EXIT.output
  end
  local status = conclude(sys, args, module_of[args.command].command(args, sys))
  if not common.flush_out(sys) and not sys.stdout_reported then
    say(sys, "toolzz: cannot write to stdout (" .. output.one_line(sys.stdout_error) .. "): the result was lost")
    if status == EXIT.ok or status == EXIT.failed then status = EXIT.output end
  end
  return status
end

-- Run the command with arguments argv (a list of strings); returns the exit
-- status. sys: the system (default: _M.system()); modules: the command
-- modules (default: COMMAND_MODULES; a test may add its own).
function _M.main(argv, sys, modules)
  sys = setmetatable({ secrets = {} }, { __index = sys or _M.system() })
  local status
  local ok, problem = xpcall(function() status = run(argv, sys, modules) end,
    function(e) return e end)
  if not ok then return crash(sys, problem) end
  return status
end

return _M

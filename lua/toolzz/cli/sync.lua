-- toolzz.cli.sync: the commands of declarative sync (CONTRACT Part 3),
-- `toolzz plan`, `toolzz apply` and `toolzz export`, as one command family.
--
--   sync.add_to_parser(parser)     -- adds the three subcommands
--   sync.command(args, sys)        -- runs the one parsed; returns the exit status
--
-- Built on the public API only: toolzz.sync (load, decode, encode) and a
-- client's sync.plan, sync.apply and sync.export. Rendering is separate:
-- toolzz.cli.plan_text and toolzz.cli.plan_markdown show the plan table the
-- library returns, --json prints that table as it is (canonical JSON).
-- Exit status, extending the command's: 5 plan --detailed-exitcode found
-- differences; apply: 6 some changes not applied, 7 refused before writing.
local errors = require "toolzz.errors"
local input = require "toolzz.cli.input"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local view = require "toolzz.cli.plan_view"
local plan_text = require "toolzz.cli.plan_text"
local plan_markdown = require "toolzz.cli.plan_markdown"

local type, pairs, ipairs, tostring, pcall, require = type, pairs, ipairs, tostring, pcall, require
local match, find, gsub = string.match, string.find, string.gsub
local open, rename, remove = io.open, os.rename, os.remove

local _M = {}

_M.EXIT = { ok = 0, failed = 1, usage = 2, validation = 3, config = 4, differences = 5, partial = 6, refused = 7 }
local EXIT = _M.EXIT

-- The command's shared parts (client options, client, failures), required
-- when first used: toolzz.cli requires this module.
local function cli()
  return require "toolzz.cli"
end

-- ---- the parser ---------------------------------------------------------------------------

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function unit_id(text)
  if match(text, UUID) then return text end
  return nil, "--unit must be a unit id (a UUID), got '" .. output.one_line(text) .. "'"
end

local function hex(text)
  if match(text, "^%x+$") then return text end
  return nil, "--checksum must be the hex checksum `toolzz plan` prints, got '" .. output.one_line(text) .. "'"
end

local function concurrency_option(command, default)
  command:option("--concurrency", "Requests in flight at once (default " .. default .. ")."):argname("N")
    :convert(cli().whole_number("--concurrency", 1, 256))
end

local PLAN_HELP = [[Reads the desired-state file (JSON, "toolzz": 1) and the lists of each unit it
names, and shows what apply would change: + create, ~ update, ! failed match,
? unmanaged. Nothing is written. Exit status: 0, or with --detailed-exitcode
5 when there are differences (changes, failed matches, unmanaged records of an
exclusive unit); 3 a bad file (every problem listed); 4 configuration.]]

local APPLY_HELP = [[Applies a desired-state file, or a plan saved by `plan --out`. Given a file on
a terminal it shows the plan and asks for "yes"; without a terminal it needs
--yes, --checksum or a saved plan. A saved plan is refused (nothing written) if
a record changed since. Exit status: 0 all applied or nothing to do; 7 refused
before writing (stale, checksum, unsafe, failed matches); 1 every change failed;
6 otherwise (some failed, skipped or unknown: see the report).]]

local EXPORT_HELP = [[Writes what exists in the units as a desired-state file: every record pinned by
id, canonical JSON (two exports of the same state are byte-identical).
googleToken becomes an {"env": ...} placeholder; apiKey is left out.]]

-- Add the plan, apply and export subcommands to the command's parser.
function _M.add_to_parser(parser)
  local function mark(name) return function(result) result.sync_command = name end end

  local plan = parser:command("plan", "Show how the API differs from a desired-state file.", PLAN_HELP)
    :action(mark("plan"))
  plan:argument("file", "The desired-state file (- for stdin)."):argname("FILE")
  plan:mutex(plan:flag("--json", "Print the plan as JSON (what --out saves)."),
             plan:flag("--markdown", "Print the plan as Markdown, for a pull-request comment."))
  plan:option("--out", "Also save the plan to PLAN, for `toolzz apply PLAN`."):argname("PLAN")
  plan:flag("--detailed-exitcode", "Exit 5 when there are differences, 0 when there are none.")
  plan:flag("--update-secrets", "Send each googleToken reference on update too (kept otherwise).")
  concurrency_option(plan, 8)

  local apply = parser:command("apply", "Make the API match a desired-state file or a saved plan.", APPLY_HELP)
    :action(mark("apply"))
  apply:argument("file", "The desired-state file or a saved plan (- for stdin)."):argname("FILE|PLAN")
  apply:flag("--yes", "Apply without asking.")
  apply:option("--checksum", "Apply only if the plan has this checksum (from `toolzz plan`)."):argname("HEX"):convert(hex)
  apply:flag("--force", "Override the safety limits (maxUpdates, the wrong-unit guard).")
  apply:flag("--update-secrets", "Send each googleToken reference on update too (kept otherwise).")
  apply:flag("--json", "Print the report as JSON.")
  concurrency_option(apply, 4)

  local export = parser:command("export", "Write the records of units as a desired-state file.", EXPORT_HELP)
    :action(mark("export"))
  export:option("--unit", "A unit to export (repeatable)."):argname("ID"):count("1+"):convert(unit_id)
  export:option("--out", "Write to FILE instead of stdout."):argname("FILE")
end

-- ---- pieces of a run ----------------------------------------------------------------------

-- The toolzz.sync module, or nil, config error.
local function sync_module()
  local ok, sync = pcall(require, "toolzz.sync")
  if ok and type(sync) == "table" then return sync end
  return nil, errors.config("this toolzz has no sync module (toolzz.sync): "
    .. output.one_line(match(tostring(sync), "^[^\n]*")))
end

-- The exit status of a failure of the library: stale and unsafe are
-- refusal_status (7 in apply), validation 3, config 4, the rest 1.
local function exit_of(err, refusal_status)
  local kind = type(err) == "table" and err.kind
  if kind == "stale" or kind == "unsafe" then return refusal_status or EXIT.failed end
  return cli().exit_code(err)
end
_M.exit_of = exit_of

-- Print err on stderr (its lines terminal-safe: bidi controls too) and
-- return its exit status.
local function fail(sys, err, secrets, refusal_status)
  for _, line in ipairs(output.error_lines(err, secrets)) do sys.stderr:write(view.safe_text(line), "\n") end
  return exit_of(err, refusal_status)
end

-- The folder of a path ("." for a bare name).
local function folder_of(path)
  return match(path, "^(.*)/[^/]*$") or "."
end

-- The text of FILE and, when it is a saved plan (JSON with "toolzz_plan"),
-- that plan; or nil, validation error (exit 3: a bad file).
local function read_given(sys, path)
  local text, why = input.reader(sys.stdin)(path)
  if not text then return nil, errors.new("validation", tostring(why)) end
  local value = input.decode(text)
  if type(value) == "table" and value.toolzz_plan ~= nil then return text, value end
  return text
end

-- The desired table of a desired-state file (read by toolzz.sync, which
-- reports every problem at once), or nil, err.
local function load_desired(sync, path, text)
  if path == "-" then return sync.decode(text, ".") end
  return sync.load(path)
end

-- Write text to path through a temporary file, so that a reader never
-- sees half a plan; or nil, config error.
local function write_file(path, text)
  local temporary = path .. ".tmp"
  local file, why = open(temporary, "wb")
  if file then
    local ok, write_why = file:write(text)
    local closed = file:close()
    if ok and closed and rename(temporary, path) then return true end
    why = write_why or "cannot write or rename it"
    remove(temporary)
  end
  return nil, errors.config("cannot write " .. path .. ": " .. tostring(why))
end

-- Text for stdout: JSON written to a terminal gets its bidi and C1
-- characters as \u escapes (the same JSON value).
local function json_out(sys, text)
  if sys.isatty(1) then text = view.json_safe(text) end
  sys.stdout:write(text, find(text, "\n$") and "" or "\n")
end

-- Whether output to stdout gets colours: a terminal, and NO_COLOR unset or empty.
local function colour(sys)
  local no_color = sys.getenv("NO_COLOR")
  return sys.isatty(1) == true and (no_color == nil or no_color == "")
end
_M.colour = colour

-- The values of the secret references ({"env": NAME} or {"file": PATH}
-- under apiKey or googleToken, or in a diff item marked secret) in a desired
-- table or plan, appended to `secrets`: what apply will send is scrubbed from
-- everything the command prints, should any message ever carry it. A
-- relative PATH is read from `folder`. Only apply calls this: plan never
-- reads a secret reference.
function _M.add_secret_values(secrets, value, sys, folder)
  local function reference_value(ref)
    if type(ref) ~= "table" then return end
    if type(ref.env) == "string" then return sys.getenv(ref.env) end
    if type(ref.file) == "string" then
      local path = find(ref.file, "^/") and ref.file or (folder .. "/" .. ref.file)
      local file = open(path, "rb")
      if not file then return end
      local text = file:read("*a")
      file:close()
      return text and (gsub(text, "\r?\n$", ""))
    end
  end
  local function walk(node, depth)
    if type(node) ~= "table" or depth > 16 then return end
    for k, v in pairs(node) do
      local secret = output.SECRET_KEYS[k] or (node.secret == true and (k == "new" or k == "old"))
      local found = secret and reference_value(v)
      if type(found) == "string" and found ~= "" then secrets[#secrets + 1] = found end
      walk(v, depth + 1)
    end
  end
  walk(value, 0)
  return secrets
end

-- A client and the call options for progress: on a terminal, a bar once a
-- run has at least PROGRESS_MIN steps; --verbose lines rub it out first.
local PROGRESS_MIN = 10
local function client_for(args, sys, opts, secrets)
  local bar
  local client, err = cli().new_client(opts, sys, args, secrets,
    { before_line = function() if bar then bar:clear() end end })
  if not client then return nil, err end
  local run, failed = {}, 0
  function run.on_progress(done, total, _, result)
    if type(result) == "table" and (result.outcome == "failed" or result.err ~= nil) then failed = failed + 1 end
    if not bar and sys.isatty(2) and type(total) == "number" and total >= PROGRESS_MIN then
      bar = progress.new(sys.stderr, total, sys.now)
    end
    if bar then bar:update(done, failed) end
  end
  function run.done()
    if bar then bar:clear() end
    bar, failed = nil, 0
  end
  return client, run
end

-- The canonical JSON text of a plan, report or desired table, or nil, err.
local function encoded(sync, value)
  local text, why = sync.encode(value)
  if type(text) == "string" then return text end
  return nil, errors.config("cannot write it as JSON: " .. tostring(why))
end

-- The client's sync calls, or nil, config error.
local function sync_calls(client)
  if type(client.sync) ~= "table" then return nil, errors.config("this toolzz client has no sync calls") end
  return client.sync
end

-- ---- plan ---------------------------------------------------------------------------------

local function run_plan(args, sys, opts, secrets)
  local text, saved = read_given(sys, args.file)
  if not text then return fail(sys, saved, secrets) end
  if saved then
    return cli().usage_error(sys, output.one_line(args.file) .. " is a saved plan: apply it with `toolzz apply "
      .. output.one_line(args.file) .. "`", { "plan" })
  end
  local sync, err = sync_module()
  if not sync then return fail(sys, err, secrets) end
  local desired
  desired, err = load_desired(sync, args.file, text)
  if not desired then return fail(sys, err, secrets) end
  local client, run = client_for(args, sys, opts, secrets)
  if not client then return fail(sys, run, secrets) end
  local calls
  calls, err = sync_calls(client)
  local plan
  if calls then
    plan, err = calls.plan(desired, { concurrency = args.concurrency, update_secrets = args.update_secrets,
                                      on_progress = run.on_progress })
  end
  run.done()
  client:close()
  if not plan then return fail(sys, err, secrets) end
  local json
  if args.out or args.json then
    json, err = encoded(sync, plan)
    if not json then return fail(sys, err, secrets) end
  end
  if args.out then
    local ok, write_err = write_file(args.out, json)
    if not ok then return fail(sys, write_err, secrets) end
  end
  if args.json then
    json_out(sys, errors.scrub(json, secrets))
  elseif args.markdown then
    sys.stdout:write(plan_markdown.plan(plan, { secrets = secrets }))
  else
    sys.stdout:write(plan_text.plan(plan, { color = colour(sys), secrets = secrets }))
  end
  if args.detailed_exitcode and view.has_differences(plan) then -- unmanaged of exclusive units are marked so
    return EXIT.differences
  end
  return EXIT.ok
end

-- ---- apply --------------------------------------------------------------------------------

-- The exit status of a report: 0 all applied (or nothing to do), 1 every
-- change failed, 6 otherwise.
function _M.report_status(report)
  local changes = type(report) == "table" and type(report.changes) == "table" and report.changes or {}
  local applied, failed = 0, 0
  for _, c in ipairs(changes) do
    if type(c) == "table" and c.outcome == "applied" then applied = applied + 1 end
    if type(c) == "table" and c.outcome == "failed" then failed = failed + 1 end
  end
  if applied == #changes then return EXIT.ok end
  if failed == #changes then return EXIT.failed end
  return EXIT.partial
end

-- The length of a list from a plan (0 when it is not a table).
local function count(list)
  return type(list) == "table" and #list or 0
end

-- Ask on the terminal whether to apply; true only for the answer "yes".
local function confirmed(sys)
  sys.stderr:write("Apply these changes? Only 'yes' is accepted: ")
  sys.stderr:flush()
  local answer = sys.stdin:read("*l")
  return type(answer) == "string" and gsub(answer, "%s+$", "") == "yes"
end

local function run_apply(args, sys, opts, secrets)
  if args.dry_run then -- a dry-run client would report writes it never made as applied
    return cli().usage_error(sys, "apply has no --dry-run: `toolzz plan FILE` shows what apply would do", { "apply" })
  end
  local text, saved = read_given(sys, args.file)
  if not text then return fail(sys, saved, secrets) end
  local ask = saved == nil and not args.yes and not args.checksum
  if ask and not (sys.isatty(0) and sys.isatty(2) and args.file ~= "-") then
    return cli().usage_error(sys, "apply FILE without a terminal needs --yes, --checksum HEX "
      .. "or a plan saved by `toolzz plan FILE --out PLAN`", { "apply" })
  end
  local sync, err = sync_module()
  if not sync then return fail(sys, err, secrets) end
  local desired
  if not saved then
    desired, err = load_desired(sync, args.file, text)
    if not desired then return fail(sys, err, secrets) end
  end
  _M.add_secret_values(secrets, saved or desired, sys, args.file == "-" and "." or folder_of(args.file))
  local client, run = client_for(args, sys, opts, secrets)
  if not client then return fail(sys, run, secrets) end
  local calls
  calls, err = sync_calls(client)
  local function finish(status_err)
    run.done()
    client:close()
    return fail(sys, status_err, secrets, EXIT.refused)
  end
  if not calls then return finish(err) end
  local target = saved or desired
  if ask then
    local plan
    plan, err = calls.plan(desired, { concurrency = args.concurrency, update_secrets = args.update_secrets,
                                      on_progress = run.on_progress })
    run.done()
    if not plan then return finish(err) end
    sys.stdout:write(plan_text.plan(plan, { color = colour(sys), secrets = secrets }))
    local failed = count(plan.failed)
    if count(plan.changes) == 0 and failed == 0 then
      client:close()
      sys.stdout:write("Nothing to apply.\n")
      return EXIT.ok
    end
    if failed == 0 and not confirmed(sys) then -- with failed matches apply refuses: no question
      client:close()
      sys.stderr:write("toolzz: apply cancelled: nothing was written\n")
      return EXIT.refused
    end
    target = plan -- the plan shown is the plan applied: a record changed since is skipped, not overwritten
  end
  local report
  report, err = calls.apply(target, { checksum = args.checksum, force = args.force,
                                      update_secrets = args.update_secrets, concurrency = args.concurrency,
                                      on_progress = run.on_progress })
  if not report then return finish(err) end
  run.done()
  client:close()
  if args.json then
    local json
    json, err = encoded(sync, report)
    if not json then return fail(sys, err, secrets) end
    json_out(sys, errors.scrub(json, secrets))
  else
    sys.stdout:write(plan_text.report(report, { color = colour(sys), secrets = secrets }))
  end
  return _M.report_status(report)
end

-- ---- export -------------------------------------------------------------------------------

local function run_export(args, sys, opts, secrets)
  local client, run = client_for(args, sys, opts, secrets)
  if not client then return fail(sys, run, secrets) end
  local sync, err = sync_module()
  if not sync then
    client:close()
    return fail(sys, err, secrets)
  end
  local calls, doc
  calls, err = sync_calls(client)
  if calls then doc, err = calls.export(args.unit) end
  run.done()
  client:close()
  if not doc then return fail(sys, err, secrets) end
  local text
  text, err = encoded(sync, doc)
  if not text then return fail(sys, err, secrets) end
  text = errors.scrub(text, secrets)
  if args.out then
    local ok, write_err = write_file(args.out, text)
    if not ok then return fail(sys, write_err, secrets) end
    return EXIT.ok
  end
  json_out(sys, text)
  return EXIT.ok
end

-- ---- the command --------------------------------------------------------------------------

local RUN = { plan = run_plan, apply = run_apply, export = run_export }

-- Run the sync subcommand parsed into args (as argparse left it, with the
-- command's global options); returns the exit status.
function _M.command(args, sys)
  local opts, secrets = cli().client_options(args, sys)
  if not opts then return fail(sys, secrets, {}) end
  return RUN[args.sync_command](args, sys, opts, secrets)
end

-- Whether parsed args are for one of these commands.
function _M.handles(args)
  return RUN[args.sync_command] ~= nil
end

return _M

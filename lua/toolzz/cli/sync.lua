-- toolzz.cli.sync: the commands of declarative sync (CONTRACT Part 3),
-- `toolzz plan`, `toolzz apply` and `toolzz export`, as one command family.
-- A command module (see toolzz.cli).
--
-- Built on the public API: toolzz.sync (load, decode, encode) and a
-- client's sync.plan, sync.apply and sync.export; toolzz.errors only for its
-- own error tables and to scrub secrets from what it prints (toolzz has no
-- public scrub). Rendering is separate:
-- toolzz.cli.plan_text and toolzz.cli.plan_markdown show the plan table the
-- library returns, --json prints that table as it is (canonical JSON).
-- Exit status (toolzz.cli's EXIT): 5 plan --detailed-exitcode found
-- differences; apply: 6 some changes not applied, 7 refused before writing.
local toolzz = require "toolzz"
local errors = require "toolzz.errors"
local input = require "toolzz.cli.input"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local common = require "toolzz.cli.common"
local view = require "toolzz.cli.plan_view"
local plan_text = require "toolzz.cli.plan_text"
local plan_markdown = require "toolzz.cli.plan_markdown"
local EXIT = require("toolzz.cli").EXIT
local read_text = toolzz.sync.read_text

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local match, find, gsub = string.match, string.find, string.gsub
local open, rename, remove = io.open, os.rename, os.remove

local sync = toolzz.sync

local _M = {}

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
    :convert(common.whole_number("--concurrency", 1, 256))
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

-- Add the plan, apply and export commands to the command's parser; -> their names.
function _M.add_to_parser(parser)
  local plan = parser:command("plan", "Show how the API differs from a desired-state file.", PLAN_HELP)
  plan:argument("file", "The desired-state file (- for stdin)."):argname("FILE")
  plan:mutex(plan:flag("--json", "Print the plan as JSON (what --out saves)."),
             plan:flag("--markdown", "Print the plan as Markdown, for a pull-request comment."))
  plan:option("--out", "Also save the plan to PLAN, for `toolzz apply PLAN`."):argname("PLAN")
  plan:flag("--detailed-exitcode", "Exit 5 when there are differences, 0 when there are none.")
  plan:flag("--update-secrets", "Send each googleToken reference on update too (kept otherwise).")
  concurrency_option(plan, 8)

  local apply = parser:command("apply", "Make the API match a desired-state file or a saved plan.", APPLY_HELP)
  apply:argument("file", "The desired-state file or a saved plan (- for stdin)."):argname("FILE|PLAN")
  apply:flag("--yes", "Apply without asking.")
  apply:option("--checksum", "Apply only if the plan has this checksum (from `toolzz plan`)."):argname("HEX"):convert(hex)
  apply:flag("--force", "Override the safety limits (maxUpdates, the wrong-unit guard).")
  apply:flag("--update-secrets", "Send each googleToken reference on update too (kept otherwise).")
  apply:flag("--json", "Print the report as JSON.")
  concurrency_option(apply, 4)

  local export = parser:command("export", "Write the records of units as a desired-state file.", EXPORT_HELP)
  export:option("--unit", "A unit to export (repeatable)."):argname("ID"):count("1+"):convert(unit_id)
  export:option("--out", "Write to FILE instead of stdout."):argname("FILE")
  return { "plan", "apply", "export" }
end

-- ---- pieces of a run ----------------------------------------------------------------------

-- The exit status of apply's failure err when the library refused before
-- writing (stale, unsafe: 7), else nil (toolzz.cli judges it by its kind).
function _M.refusal_status(err)
  local kind = type(err) == "table" and err.kind
  if kind == "stale" or kind == "unsafe" then return EXIT.refused end
  return nil
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
  if type(value) == "table" and value.toolzz_plan ~= nil then
    -- read again by toolzz.sync's reader: lua-cjson keeps the last of a
    -- repeated key, so a plan could show one "changes" and apply another
    local plan, err = sync.decode(text)
    if not plan then return nil, err end
    return text, plan
  end
  return text
end

-- The desired table of a desired-state file (read by toolzz.sync, which
-- reports every problem at once), or nil, err.
-- FILE is read once (read_given): a process substitution <(…) is a pipe
-- that a second open finds empty.
local function load_desired(path, text)
  if path == "-" then return sync.decode(text, ".") end
  local folder = folder_of(path)
  return sync.decode(text, folder == "" and "/" or folder)
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

-- JSON text on stdout, its secrets scrubbed: written to a terminal, its
-- bidi and C1 characters become \u escapes (the same JSON value).
local function json_out(sys, text)
  text = errors.scrub(text, sys.secrets)
  if sys.isatty(1) then text = view.json_safe(text) end
  common.write_out(sys, text, find(text, "\n$") and "" or "\n")
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
      return read_text(path) -- what apply sends; a FIFO or a device is refused there, never a hang here
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
local function client_for(args, sys, opts)
  local bar
  local client, err = common.new_client(opts, sys, args,
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
local function encoded(value)
  local text, why = sync.encode(value)
  if type(text) == "string" then return text end
  return nil, errors.config("cannot write it as JSON: " .. tostring(why))
end

-- ---- plan ---------------------------------------------------------------------------------

-- Print the plan on stdout as args asks: --json, --markdown or text.
local function print_plan(sys, args, plan, json)
  if args.json then
    json_out(sys, json)
  elseif args.markdown then
    common.write_out(sys, plan_markdown.plan(plan, { secrets = sys.secrets }))
  else
    common.write_out(sys, plan_text.plan(plan, { color = colour(sys), secrets = sys.secrets }))
  end
end

-- toolzz plan FILE -> exit status, or nil, err.
local function run_plan(args, sys, opts)
  local text, saved = read_given(sys, args.file)
  if not text then return nil, saved end
  if saved then
    return nil, output.one_line(args.file) .. " is a saved plan: apply it with `toolzz apply "
      .. output.one_line(args.file) .. "`"
  end
  local desired, err = load_desired(args.file, text)
  if not desired then return nil, err end
  local client, run = client_for(args, sys, opts)
  if not client then return nil, run end
  local plan
  plan, err = client.sync.plan(desired, { concurrency = args.concurrency, update_secrets = args.update_secrets,
                                          on_progress = run.on_progress })
  run.done()
  client:close()
  if not plan then return nil, err end
  local json
  if args.out or args.json then
    json, err = encoded(plan)
    if not json then return nil, err end
  end
  if args.out then
    local ok, write_err = write_file(args.out, errors.scrub(json, sys.secrets))
    if not ok then return nil, write_err end
  end
  print_plan(sys, args, plan, json)
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

-- On a terminal, without --yes or --checksum: plan desired, show the plan
-- and ask. -> the plan to apply; or an exit status (nothing to apply: 0,
-- cancelled: 7); or nil, err.
local function reviewed_plan(args, sys, calls, desired, run)
  local plan, err = calls.plan(desired, { concurrency = args.concurrency, update_secrets = args.update_secrets,
                                          on_progress = run.on_progress })
  run.done()
  if not plan then return nil, err end
  common.write_out(sys, plan_text.plan(plan, { color = colour(sys), secrets = sys.secrets }))
  local failed = count(plan.failed)
  if count(plan.changes) == 0 and failed == 0 then
    common.write_out(sys, "Nothing to apply.\n")
    return EXIT.ok
  end
  if failed == 0 and not confirmed(sys) then -- with failed matches apply refuses: no question
    common.say(sys, "toolzz: apply cancelled: nothing was written")
    return EXIT.refused
  end
  return plan -- the plan shown is the plan applied: a record changed since is skipped, not overwritten
end

-- toolzz apply FILE|PLAN -> exit status, or nil, err[, exit status].
local function run_apply(args, sys, opts)
  if args.dry_run then -- a dry-run client would report writes it never made as applied
    return nil, "apply has no --dry-run: `toolzz plan FILE` shows what apply would do"
  end
  local text, saved = read_given(sys, args.file)
  if not text then return nil, saved end
  local ask = saved == nil and not args.yes and not args.checksum
  if ask and not (sys.isatty(0) and sys.isatty(2) and args.file ~= "-") then
    return nil, "apply FILE without a terminal needs --yes, --checksum HEX "
      .. "or a plan saved by `toolzz plan FILE --out PLAN`"
  end
  local desired, err
  if not saved then
    desired, err = load_desired(args.file, text)
    if not desired then return nil, err end
  end
  _M.add_secret_values(sys.secrets, saved or desired, sys, args.file == "-" and "." or folder_of(args.file))
  local client, run = client_for(args, sys, opts)
  if not client then return nil, run end
  local target = saved or desired
  if ask then
    target, err = reviewed_plan(args, sys, client.sync, desired, run)
    if type(target) ~= "table" then
      client:close()
      return target, err, _M.refusal_status(err)
    end
  end
  local report
  report, err = client.sync.apply(target, { checksum = args.checksum, force = args.force,
                                            update_secrets = args.update_secrets, concurrency = args.concurrency,
                                            on_progress = run.on_progress })
  run.done()
  client:close()
  if not report then return nil, err, _M.refusal_status(err) end
  if args.json then
    local json
    json, err = encoded(report)
    if not json then return nil, err end
    json_out(sys, json)
  else
    common.write_out(sys, plan_text.report(report, { color = colour(sys), secrets = sys.secrets }))
  end
  return _M.report_status(report)
end

-- ---- export -------------------------------------------------------------------------------

-- toolzz export --unit ID ... -> exit status, or nil, err.
local function run_export(args, sys, opts)
  local client, run = client_for(args, sys, opts)
  if not client then return nil, run end
  local doc, err = client.sync.export(args.unit)
  run.done()
  client:close()
  if not doc then return nil, err end
  local text
  text, err = encoded(doc)
  if not text then return nil, err end
  if args.out then
    local ok, write_err = write_file(args.out, errors.scrub(text, sys.secrets))
    if not ok then return nil, write_err end
    return EXIT.ok
  end
  json_out(sys, text)
  return EXIT.ok
end

-- ---- the command --------------------------------------------------------------------------

local RUN = { plan = run_plan, apply = run_apply, export = run_export }

-- Run the plan, apply or export command parsed into args -> an exit status,
-- or nil, err[, exit status] (see toolzz.cli).
function _M.command(args, sys)
  local opts, err = common.client_options(args, sys)
  if not opts then return nil, err end
  return RUN[args.command](args, sys, opts)
end

return _M

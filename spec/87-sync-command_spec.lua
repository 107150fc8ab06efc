-- The plan, apply and export commands (CONTRACT Part 3, "Commands"), in
-- process through toolzz.cli.main with a captured system: argument
-- handling, usage errors, apply's terminal rule (checked before any request
-- to the stand-in), and the exit statuses of plans, reports and refusals.
local H = require "helpers"
local cjson = require "cjson"
local cli = require "toolzz.cli"
local sync_cli = require "toolzz.cli.sync"
local stand_in = H.stand_in

local TOKEN = "sync-cli-token-DISTINCTIVE-42"
local UNIT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

-- A file with these contents, removed after the test.
local function temp_file(contents)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(contents)
  f:close()
  finally(function() os.remove(name) end)
  return name
end

local function desired_file()
  return temp_file(cjson.encode { toolzz = 1, units = { { unit = UNIT, calcom = { { key = "sales", title = "Sales" } } } } })
end

-- A system for cli.main that captures output; tty: which descriptors are terminals.
local function fake_system(over, tty)
  local out, err = {}, {}
  tty = tty or {}
  local sys = {
    stdin = { read = function() return "yes" end },
    stdout = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end, flush = function() end },
    stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
    getenv = function(name) return name == "TOOLZZ_TOKEN" and TOKEN or nil end,
    isatty = function(fd) return tty[fd] == true end,
    now = function() return 0 end,
  }
  for k, v in pairs(over or {}) do sys[k] = v end
  return sys, function() return table.concat(out) end, function() return table.concat(err) end
end

-- The command's arguments for the stand-in, then argv.
local function against_stand_in(argv)
  local all = { "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url }
  for _, a in ipairs(argv) do all[#all + 1] = a end
  return all
end

describe("toolzz plan/apply/export arguments", function()
  it("are listed in the help with the exit statuses 5, 6 and 7", function()
    local help = cli.parser():get_help()
    for _, word in ipairs { "plan", "apply", "export", "5, 6, 7" } do assert.matches(word, help, 1, true) end
    local parser = cli.parser()
    local ok, args = parser:pparse { "plan", "f.json", "--markdown", "--out", "p.json", "--detailed-exitcode",
                                     "--update-secrets", "--concurrency", "32" }
    assert.is_true(ok, args)
    assert.equal("plan", args.command)
    assert.equal("f.json", args.file)
    assert.is_true(args.markdown)
    assert.equal("p.json", args.out)
    assert.is_true(args.detailed_exitcode)
    assert.is_true(args.update_secrets)
    assert.equal(32, args.concurrency)
    ok, args = cli.parser():pparse { "apply", "p.json", "--yes", "--checksum", "5d41402a", "--force", "--json",
                                     "--update-secrets", "--concurrency", "4" }
    assert.is_true(ok, args)
    assert.equal("apply", args.command)
    assert.same({ "p.json", true, "5d41402a", true, true, true, 4 },
      { args.file, args.yes, args.checksum, args.force, args.json, args.update_secrets, args.concurrency })
    ok, args = cli.parser():pparse { "export", "--unit", UNIT, "--unit", H.UNIT, "--out", "units.json" }
    assert.is_true(ok, args)
    assert.equal("export", args.command)
    assert.same({ UNIT, H.UNIT }, args.unit)
    assert.equal("units.json", args.out)
  end)

  it("exit 2 with a usage line naming the subcommand's help, and never send a request", function()
    stand_in.reset()
    local file = desired_file()
    local cases = {
      { { "plan" }, "missing argument 'file'", "toolzz plan --help" },
      { { "plan", file, "--json", "--markdown" }, "can not be used together", "toolzz plan --help" },
      { { "plan", file, "--concurrency", "0" }, "--concurrency must be a whole number", "toolzz plan --help" },
      { { "plan", file, "--yes" }, "unknown option '--yes'", "toolzz plan --help" },
      { { "apply" }, "missing argument 'file'", "toolzz apply --help" },
      { { "apply", file, "--checksum", "not-hex" }, "--checksum must be the hex checksum", "toolzz apply --help" },
      { { "apply", file, "--markdown" }, "unknown option '--markdown'", "toolzz apply --help" },
      { { "--dry-run", "apply", file, "--yes" }, "apply has no --dry-run: `toolzz plan FILE` shows what apply would do",
        "toolzz apply --help" },
      { { "export" }, "missing option '--unit'", "toolzz export --help" },
      { { "export", "--unit", "not-a-uuid" }, "--unit must be a unit id (a UUID), got 'not-a-uuid'",
        "toolzz export --help" },
      { { "export", "--unit", UNIT .. "\27[2J" }, "got '" .. UNIT .. " [2J'", "toolzz export --help" },
    }
    for _, case in ipairs(cases) do
      local sys, out, err = fake_system()
      assert.equal(2, cli.main(against_stand_in(case[1]), sys), table.concat(case[1], " "))
      assert.equal("", out())
      assert.matches(case[2], err(), 1, true)
      assert.matches("(see: " .. case[3] .. ")", err(), 1, true)
      assert.is_nil(err():find("\27", 1, true))
      assert.is_nil(err():find(TOKEN, 1, true))
    end
    assert.equal(0, stand_in.stats().requests)
  end)

  it("apply FILE without a terminal needs --yes, --checksum or a saved plan: exit 2, no request", function()
    stand_in.reset()
    local file = desired_file()
    -- neither stdin nor stderr a terminal; one of the two only; stdout alone
    for _, tty in ipairs { {}, { [0] = true }, { [2] = true }, { [1] = true } } do
      local sys, out, err = fake_system(nil, tty)
      assert.equal(2, cli.main(against_stand_in { "apply", file }, sys))
      assert.equal("", out())
      assert.matches("apply FILE without a terminal needs --yes, --checksum HEX or a plan saved by "
        .. "`toolzz plan FILE --out PLAN` (see: toolzz apply --help)", err(), 1, true)
    end
    -- with --force or --json but still no consent
    for _, extra in ipairs { "--force", "--json", "--update-secrets" } do
      local sys = fake_system()
      assert.equal(2, cli.main(against_stand_in { "apply", file, extra }, sys))
    end
    -- stdin is the file: it cannot also answer the question
    local sys, _, err = fake_system({ stdin = { read = function() return "{}" end } }, { [0] = true, [2] = true })
    assert.equal(2, cli.main(against_stand_in { "apply", "-" }, sys))
    assert.matches("needs --yes", err(), 1, true)
    assert.equal(0, stand_in.stats().requests)
    assert.equal(0, stand_in.writes())
  end)

  it("a file that cannot be read is a bad file: exit 3, no request", function()
    stand_in.reset()
    for _, argv in ipairs { { "plan", "/nonexistent/desired.json" }, { "apply", "/nonexistent/desired.json", "--yes" } } do
      local sys, out, err = fake_system()
      assert.equal(3, cli.main(against_stand_in(argv), sys))
      assert.equal("", out())
      assert.matches("/nonexistent/desired.json", err(), 1, true)
    end
    -- a file name that would reorder the line is shown escaped
    local sys, _, err = fake_system()
    assert.equal(3, cli.main(against_stand_in { "plan", "/nonexistent/\226\128\174nosj.json" }, sys))
    assert.matches("/nonexistent/ nosj.json", err(), 1, true)
    assert.is_nil(err():find("\226\128\174", 1, true))
    assert.equal(0, stand_in.stats().requests)
  end)

  it("plan refuses a saved plan (apply it instead): exit 2, no request", function()
    stand_in.reset()
    local saved = temp_file(cjson.encode { toolzz_plan = 1, checksum = "ab", changes = {} })
    local sys, _, err = fake_system()
    assert.equal(2, cli.main(against_stand_in { "plan", saved }, sys))
    assert.matches("is a saved plan: apply it with `toolzz apply " .. saved .. "`", err(), 1, true)
    assert.equal(0, stand_in.stats().requests)
  end)

  it("a stdout that cannot be written: exit 74, one line on stderr", function()
    stand_in.reset()
    local file = desired_file()
    for _, argv in ipairs { { "plan", file }, { "plan", file, "--json" }, { "plan", file, "--markdown" },
                            { "export", "--unit", UNIT } } do
      local sys, _, err = fake_system { stdout = { write = function() return nil, "No space left on device" end,
                                                   flush = function() return true end },
                                        getenv = function(name) return name == "TOOLZZ_TOKEN" and H.env.token or nil end }
      assert.equal(74, cli.main(against_stand_in(argv), sys), table.concat(argv, " ") .. err())
      assert.equal("toolzz: cannot write to stdout (No space left on device): the result was lost\n", err())
    end
  end)

  it("without a token: exit 4, no request", function()
    stand_in.reset()
    local sys, _, err = fake_system { getenv = function() return nil end }
    assert.equal(4, cli.main(against_stand_in { "export", "--unit", UNIT }, sys))
    assert.matches("token", err())
    sys, _, err = fake_system()
    assert.equal(4, cli.main(against_stand_in { "--token-file", "/nonexistent/token", "plan", desired_file() }, sys))
    assert.matches("--token-file cannot be read", err(), 1, true)
    assert.equal(0, stand_in.stats().requests)
  end)
end)

describe("toolzz apply and secret references", function()
  it("collects the values apply will send, to scrub them from everything it prints", function()
    local folder = os.tmpname()
    os.remove(folder)
    assert(os.execute("mkdir -p '" .. folder .. "/secrets'"))
    finally(function() os.execute("rm -rf '" .. folder .. "'") end)
    local f = assert(io.open(folder .. "/secrets/gtoken", "wb"))
    f:write("ya29.file-token-value-0001\n")
    f:close()
    local env = { GCAL_TOKEN = "ya29.env-token-value-0002", CAL_KEY = "cal_live_env-key-0003", PLAN_TOKEN = "ya29.plan-0004" }
    local sys = { getenv = function(name) return env[name] end }
    local desired = { toolzz = 1, units = { {
      unit = UNIT,
      calcom = { { key = "a", title = "A", apiKey = { env = "CAL_KEY" }, prompt = { env = "NOT_A_SECRET" } } },
      gcal = { { key = "b", name = "B", googleCalendar = { googleToken = { file = "secrets/gtoken" } } },
               { key = "c", name = "C", googleCalendar = { googleToken = { env = "GCAL_TOKEN" } } },
               { key = "d", name = "D", googleCalendar = { googleToken = { env = "UNSET" } } } } } } }
    local found = sync_cli.add_secret_values({ "api-token" }, desired, sys, folder)
    table.sort(found)
    assert.same({ "api-token", "cal_live_env-key-0003", "ya29.env-token-value-0002", "ya29.file-token-value-0001" }, found)
    local plan = { toolzz_plan = 1, changes = {
      { action = "update", diff = { { path = "googleCalendar.googleToken", secret = true, new = { env = "PLAN_TOKEN" } } } },
      { action = "create", fields = { googleCalendar = { googleToken = { file = folder .. "/secrets/gtoken" } } } } } }
    found = sync_cli.add_secret_values({}, plan, sys, "/nonexistent")
    table.sort(found)
    assert.same({ "ya29.file-token-value-0001", "ya29.plan-0004" }, found)
  end)
end)

describe("toolzz plan/apply exit statuses", function()
  local function report(...)
    local changes = {}
    for i, outcome in ipairs { ... } do
      changes[i] = { unit = UNIT, kind = "calcom", key = "k" .. i, action = "update", id = H.UUID, outcome = outcome }
    end
    return { toolzz_report = 1, ok = false, changes = changes }
  end

  it("apply: 0 all applied or nothing to do, 1 every change failed, 6 otherwise", function()
    assert.equal(0, sync_cli.report_status(report()))
    assert.equal(0, sync_cli.report_status(report("applied")))
    assert.equal(0, sync_cli.report_status(report("applied", "applied", "applied")))
    assert.equal(1, sync_cli.report_status(report("failed")))
    assert.equal(1, sync_cli.report_status(report("failed", "failed")))
    assert.equal(6, sync_cli.report_status(report("applied", "failed")))
    assert.equal(6, sync_cli.report_status(report("applied", "skipped")))
    assert.equal(6, sync_cli.report_status(report("skipped")))
    assert.equal(6, sync_cli.report_status(report("unknown")))
    assert.equal(6, sync_cli.report_status(report("failed", "unknown")))
    assert.equal(6, sync_cli.report_status(report("failed", "skipped")))
  end)

  it("apply: 7 when the library refused before writing (stale, unsafe), 3 validation, 4 config, else 1", function()
    local function err(kind) return { kind = kind, message = kind } end
    assert.equal(7, sync_cli.refusal_status(err("stale")))
    assert.equal(7, sync_cli.refusal_status(err("unsafe")))
    for _, kind in ipairs { "validation", "config", "http", "network", "timeout", "tls", "decode", "limit" } do
      assert.is_nil(sync_cli.refusal_status(err(kind)))
    end
    assert.equal(3, cli.exit_code(err("validation")))
    assert.equal(4, cli.exit_code(err("config")))
    for _, kind in ipairs { "http", "network", "timeout", "tls", "decode", "limit" } do
      assert.equal(1, cli.exit_code(err(kind)))
    end
    -- one table of exit statuses, the command's
    assert.same({ ok = 0, failed = 1, usage = 2, validation = 3, config = 4, differences = 5, partial = 6, refused = 7,
                  output = 74, internal = 70 }, cli.EXIT)
  end)

  it("plan --detailed-exitcode: differences are changes, failed matches and unmanaged records of exclusive units", function()
    local view = require "toolzz.cli.plan_view"
    local empty = { changes = {}, failed = {}, unmanaged = {} }
    assert.is_false(view.has_differences(empty))
    assert.is_true(view.has_differences { changes = { { unit = UNIT, action = "create", key = "a" } } })
    assert.is_true(view.has_differences { failed = { { unit = UNIT, reason = "missing", key = "a" } } })
    local unmanaged = { unmanaged = { { unit = UNIT, kind = "calcom", id = H.UUID, title = "x" } } }
    assert.is_false(view.has_differences(unmanaged))
    assert.is_false(view.has_differences(unmanaged, { [H.UNIT] = true }))
    assert.is_true(view.has_differences(unmanaged, { [UNIT] = true }))
    unmanaged.unmanaged[1].exclusive = true
    assert.is_true(view.has_differences(unmanaged))
  end)
end)

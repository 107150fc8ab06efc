-- The plan, apply and export commands end to end (CONTRACT Part 3,
-- "Commands"), in process through toolzz.cli.main with a captured system,
-- against the stand-in with the library (toolzz.sync): the README's worked
-- example, the terminal prompt, --checksum, exit statuses 5, 6, 7 and 1,
-- the progress bar, and a distinctive secret searched for in every output.
local H = require "helpers"
local cjson = require "cjson"
local cli = require "toolzz.cli"
local install = require "cli_install"
local stand_in = H.stand_in

local SECRET = "ya29.E2E-DISTINCTIVE-google-token-5d1c"

-- A unit id of its own for each test (the stand-in keeps records across resets).
local function new_unit()
  return (("xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx"):gsub("x", function()
    local digit = math.random(1, 16)
    return ("0123456789abcdef"):sub(digit, digit)
  end))
end

-- A folder removed after the test.
local function temp_dir()
  local dir, remove = H.temp_dir("prompts", "secrets")
  finally(remove)
  return dir
end
local write = H.write_file

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Everything any run printed, and every file written, for the secret search.
local printed = {}

-- Run the command: argv after the stand-in's options; tty: which fds are
-- terminals; answer: the line stdin gives; env: more variables than
-- TOOLZZ_TOKEN. Returns code, stdout, stderr.
local function toolzz(argv, tty, answer, env)
  local out, err = {}, {}
  tty = tty or {}
  local sys = {
    stdin = { read = function() return answer end },
    stdout = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end, flush = function() end },
    stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
    getenv = function(name)
      if name == "TOOLZZ_TOKEN" then return H.env.token end
      return env and env[name] or nil
    end,
    isatty = function(fd) return tty[fd] == true end,
    now = require("toolzz.core").now,
  }
  local all = { "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url, "--retries", "0" }
  for _, a in ipairs(argv) do all[#all + 1] = a end
  local code = cli.main(all, sys)
  out, err = table.concat(out), table.concat(err)
  printed[#printed + 1] = out
  printed[#printed + 1] = err
  return code, out, err
end

-- A Cal.com integration in the unit; returns its id.
local function calcom_in(unit, title, over)
  local client = H.client()
  local body = H.calcom_create_body { unitId = unit, title = title,
    prompt = "Offer 30-minute calls.\nAsk for the company name.\nConfirm by e-mail." }
  for k, v in pairs(over or {}) do body[k] = v end
  return assert(client.calcom.create(body)).id
end

local function assert_secret_never_shown()
  for i, text in ipairs(printed) do
    assert.is_nil(text:find(SECRET, 1, true), "output " .. i)
    assert.is_nil(text:find("E2E-DISTINCTIVE", 1, true), "output " .. i)
    if #H.env.token >= 8 then assert.is_nil(text:find(H.env.token, 1, true), "output " .. i) end
  end
end

-- Every command in every mode, with secrets the server echoes back, run
-- through run(argv, tty, answer, env) -> code, stdout, stderr (in process or
-- the installed command). ref(name, value) -> the secret reference to put in
-- the file for a secret of this value, and env its variables (if any).
-- Returns the paths of the files written (saved plans, the export).
local function every_mode(run, ref, env, terminal_prompt)
  local unit, dir = new_unit(), temp_dir()
  local ENV_TOKEN, API_KEY = "ya29.E2E-DISTINCTIVE-second-token-77aa", "cal_live_E2E-DISTINCTIVE-api-key-31"
  local file = dir .. "/agents.json"
  local function gcal(key, name, token)
    return { key = key, name = name, description = "Book " .. key .. " calls.", userId = H.USER,
      googleCalendar = { googleId = "109876543210", calendarId = key .. "@acme.com", timezone = "America/Sao_Paulo",
        googleToken = token, googleUser = { name = "Acme", given_name = "Acme", family_name = "Desk",
                                            email = key .. "@acme.com" } } }
  end
  write(file, cjson.encode { toolzz = 1, units = { { unit = unit,
    calcom = { { key = "sales", title = "Sales", calcomUsername = "acme-sales", timezone = "America/Sao_Paulo",
                 prompt = "Offer 30-minute calls.", checkAvailabilityEnabled = true, createBookingEnabled = true,
                 apiKey = ref(dir, "CALCOM_KEY_SALES", API_KEY) } },
    gcal = { gcal("support", "Support meetings", ref(dir, "GCAL_TOKEN_SUPPORT", SECRET)),
             gcal("desk", "Desk meetings", ref(dir, "GCAL_TOKEN_DESK", ENV_TOKEN)) } } } })
  local saved, exported = dir .. "/plan.json", dir .. "/export.json"
  local code, out, err
  -- plan in every mode, before anything exists
  for _, argv in ipairs { { "plan", file }, { "plan", file, "--json" }, { "plan", file, "--markdown" },
                          { "-v", "plan", file, "--out", saved, "--detailed-exitcode" } } do
    code, out, err = run(argv, nil, nil, env)
    assert.equal(argv[#argv] == "--detailed-exitcode" and 5 or 0, code, err)
  end
  assert.matches("(secret)", out, 1, true)
  run({ "plan", file }, true, nil, env)
  printed[#printed + 1] = read(saved)
  -- a saved plan whose creates the server refuses, echoing the secrets (text, then --json -v)
  local echo = '{"message":"rejected ' .. SECRET .. " " .. ENV_TOKEN .. " " .. API_KEY .. '"}'
  for _, argv in ipairs { { "apply", saved, "--concurrency", "1" },
                          { "-v", "apply", saved, "--json", "--concurrency", "1" } } do
    stand_in.faults { {}, {}, { status = 422, body = echo }, { status = 422, body = echo }, { status = 422, body = echo } }
    code, out, err = run(argv, nil, nil, env)
    assert.equal(1, code, out .. err)
    assert.matches("REDACTED", out, 1, true) -- the echo reached the report, scrubbed
  end
  assert.equal(0, stand_in.pending_faults())
  local w0 = stand_in.writes()
  -- apply on a terminal: the plan, the question (when stdin can answer), the report
  if terminal_prompt then
    code, out, err = run({ "-v", "apply", file }, true, "yes", env)
  else
    code, out, err = run({ "-v", "apply", file, "--yes" }, true, nil, env)
  end
  assert.equal(0, code, out .. err)
  assert.matches("Apply: 3 applied", out, 1, true)
  assert.matches("\27[", out, 1, true)
  assert.equal(3, stand_in.writes() - w0)
  -- the server now holds (and echoes) the tokens: export, plan and apply again in every mode
  for _, argv in ipairs { { "export", "--unit", unit }, { "-v", "export", "--unit", unit, "--out", exported } } do
    code, out, err = run(argv, nil, nil, env)
    assert.equal(0, code, err)
    assert.equal(argv[1] == "-v" and "" or '"googleToken": {', out:match('"googleToken": {') or "")
  end
  printed[#printed + 1] = read(exported)
  assert.matches('"googleToken": {', printed[#printed], 1, true)
  run({ "export", "--unit", unit }, true, nil, env)
  for _, argv in ipairs { { "--show-secrets", "export", "--unit", unit }, { "--show-secrets", "plan", file, "--json" },
                          { "--show-secrets", "-v", "plan", file, "--update-secrets" } } do
    code, out, err = run(argv, nil, nil, env) -- --show-secrets is for single calls: sync never shows a value
    assert.equal(0, code, err)
    assert.matches(argv[#argv] == "--json" and "checksum" or "googleToken", out, 1, true)
  end
  for _, argv in ipairs { { "plan", file, "--update-secrets" }, { "plan", file, "--json", "--update-secrets" },
                          { "plan", file, "--markdown", "--update-secrets" },
                          { "-v", "plan", file, "--update-secrets", "--out", saved } } do
    code, out, err = run(argv, nil, nil, env)
    assert.equal(0, code, err)
    assert.matches("googleToken", out, 1, true)
  end
  printed[#printed + 1] = read(saved)
  run({ "plan", file, "--update-secrets" }, true, nil, env)
  if terminal_prompt then run({ "apply", file, "--update-secrets" }, true, "no", env) end
  code, out, err = run({ "-v", "apply", saved }, nil, nil, env)
  assert.equal(0, code, out .. err)
  assert.matches("Apply: 2 applied", out, 1, true) -- both tokens sent again
  code, out, err = run({ "-v", "apply", file, "--yes", "--json", "--update-secrets" }, nil, nil, env)
  assert.equal(0, code, out .. err)
  code, out, err = run({ "-v", "plan", file, "--detailed-exitcode" }, nil, nil, env)
  assert.equal(0, code, out .. err)
  return file
end

describe("toolzz export, plan, apply #no_valgrind", function()
  setup(function() math.randomseed(math.floor(require("toolzz.core").now() * 1000) % 2147483647) end)
  before_each(function()
    stand_in.reset()
    printed = {}
  end)
  lazy_teardown(function() install.cleanup() end)

  it("runs the README's worked example: export, edit, plan (5), apply a saved plan, plan (0), never the secret", function()
    local unit, dir = new_unit(), temp_dir()
    local id = calcom_in(unit, "Sales")
    local w0 = stand_in.writes()
    local file = dir .. "/agents.json"
    local code, out, err = toolzz { "export", "--unit", unit, "--out", file }
    assert.equal(0, code, err)
    assert.equal("", out)
    local exported = read(file)
    printed[#printed + 1] = exported
    local _, second = toolzz { "export", "--unit", unit }
    assert.equal(exported, second) -- byte-identical, canonical
    local doc = cjson.decode(exported)
    assert.equal(id, doc.units[1].calcom[1].id)

    code, out = toolzz { "plan", file, "--detailed-exitcode" }
    assert.equal(0, code)
    assert.matches("No changes: the server matches the file.", out, 1, true)

    -- edit: a field, a prompt from a file, a new function whose token is a file reference
    write(dir .. "/prompts/sales.md", "Offer 45-minute calls.\nAsk for the company name.\nConfirm by e-mail.\n")
    write(dir .. "/secrets/gtoken", SECRET .. "\n")
    local sales = doc.units[1].calcom[1]
    sales.timezone, sales.prompt = "America/Recife", { file = "prompts/sales.md" }
    doc.units[1].gcal = { { key = "support", name = "Support meetings", description = "Book support calls.",
      userId = H.USER, googleCalendar = { googleId = "109876543210", calendarId = "support@acme.com",
        timezone = "America/Sao_Paulo", googleToken = { file = "secrets/gtoken" },
        googleUser = { name = "Acme Support", given_name = "Acme", family_name = "Support",
                       email = "support@acme.com" } } } }
    write(file, cjson.encode(doc))

    local saved = dir .. "/plan.json"
    code, out, err = toolzz { "plan", file, "--detailed-exitcode", "--out", saved }
    assert.equal(5, code, err)
    assert.matches("  ~ update    calcom sales    id " .. id, out, 1, true)
    assert.matches("  + create    gcal   support", out, 1, true)
    assert.matches('    timezone: "America/Sao_Paulo" \226\134\146 "America/Recife"', out, 1, true)
    assert.matches("      - Offer 30-minute calls.\n      + Offer 45-minute calls.\n        Ask for the company name.",
      out, 1, true)
    assert.matches("    googleCalendar.googleToken: (secret)", out, 1, true)
    assert.is_nil(out:find("\27", 1, true)) -- not a terminal: no colour
    local plan_file = read(saved)
    printed[#printed + 1] = plan_file
    local plan = cjson.decode(plan_file)
    assert.equal(1, plan.toolzz_plan)
    assert.matches("checksum " .. plan.checksum, out, 1, true)

    local json
    code, json = toolzz { "plan", file, "--json" }
    assert.equal(0, code)
    assert.equal(plan.checksum, cjson.decode(json).checksum)
    local md
    code, md = toolzz { "plan", file, "--markdown" }
    assert.equal(0, code)
    assert.matches("### toolzz plan", md, 1, true)
    assert.matches("googleCalendar\\.googleToken: \\(secret\\)", md, 1, true)

    -- no terminal and no consent: nothing happens
    code = toolzz { "apply", file }
    assert.equal(2, code)
    assert.equal(0, stand_in.writes() - w0)

    code, out, err = toolzz { "-v", "apply", saved }
    assert.equal(0, code, err)
    assert.matches("  applied  ~ update calcom sales  id " .. id, out, 1, true)
    assert.matches("Apply: 2 applied, 0 failed, 0 skipped, 0 unknown.", out, 1, true)
    assert.matches("toolzz: PUT ", err, 1, true)
    assert.matches("toolzz: POST ", err, 1, true)
    assert.equal(2, stand_in.writes() - w0)
    assert.equal("America/Recife", assert(H.client().calcom.get(id)).timezone)

    code, out = toolzz { "plan", file, "--detailed-exitcode" }
    assert.equal(0, code, out)
    assert.matches("Plan: 0 to create, 0 to update, 2 unchanged", out, 1, true)

    -- the same saved plan again: stale, refused before any write
    code, _, err = toolzz { "apply", saved }
    assert.equal(7, code)
    assert.matches("stale", err, 1, true)
    assert.equal(2, stand_in.writes() - w0)

    code, json = toolzz { "apply", file, "--yes", "--json", "--update-secrets" }
    assert.equal(0, code)
    local report = cjson.decode(json)
    assert.equal(1, report.toolzz_report)
    assert.equal("applied", report.changes[1].outcome) -- the token, sent again
    assert_secret_never_shown()
  end)

  it("never shows a secret value in any mode, in process: plan, saved plan, report, export, stderr, -v", function()
    -- in process the library resolves {"env"} from the real environment: file references here
    local function ref(dir, name, value)
      write(dir .. "/secrets/" .. name, value .. "\n")
      return { file = "secrets/" .. name }
    end
    local function run(argv, tty, answer, env)
      return toolzz(argv, tty and { [0] = true, [1] = true, [2] = true } or nil, answer, env)
    end
    local file = every_mode(run, ref, nil, true)
    -- an unreadable secret file: a config error before any write, naming the file only
    os.remove(file:match("^(.*)/") .. "/secrets/GCAL_TOKEN_DESK")
    local w0 = stand_in.writes()
    local code, _, err = toolzz { "apply", file, "--yes", "--update-secrets" }
    assert.equal(4, code)
    assert.matches("GCAL_TOKEN_DESK", err, 1, true)
    assert.equal(w0, stand_in.writes())
    assert.is_true(#printed > 30)
    assert_secret_never_shown()
  end)

  it("never shows a secret value in any mode, from the installed command with {env} references", function()
    local env = {}
    local function ref(_, name, value)
      env[name] = value
      return { env = name }
    end
    local function run(argv, tty, answer, more)
      local all = { "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url, "--retries", "0" }
      for _, a in ipairs(argv) do all[#all + 1] = a end
      local r = install.run { args = all, env = more, tty = tty, stdin = answer and (answer .. "\n") }
      printed[#printed + 1] = r.out
      printed[#printed + 1] = r.err
      return r.code, r.out, r.err
    end
    local file = every_mode(run, ref, env, false)
    -- a variable not set: a config error before any write, naming the variable only
    local w0 = stand_in.writes()
    local code, _, err = run({ "apply", file, "--yes", "--update-secrets" }, nil, nil,
                             { CALCOM_KEY_SALES = env.CALCOM_KEY_SALES, GCAL_TOKEN_SUPPORT = env.GCAL_TOKEN_SUPPORT })
    assert.equal(4, code)
    assert.matches("GCAL_TOKEN_DESK", err, 1, true)
    assert.equal(w0, stand_in.writes())
    assert_secret_never_shown()
  end)

  it("apply FILE on a terminal shows the plan and asks: anything but yes writes nothing (7), yes applies", function()
    local unit = new_unit()
    local id = calcom_in(unit, "Desk")
    local w0 = stand_in.writes()
    local file = temp_dir() .. "/desk.json"
    write(file, cjson.encode { toolzz = 1, units = { { unit = unit,
      calcom = { { key = "desk", id = id, timezone = "UTC" } } } } })
    local terminal = { [0] = true, [1] = true, [2] = true }
    for _, answer in ipairs { "no", "y", "YES", "" } do
      local code, out, err = toolzz({ "apply", file }, terminal, answer)
      assert.equal(7, code)
      assert.matches("~ update", out, 1, true)
      assert.matches("\27[33m", out, 1, true) -- colour on a terminal
      assert.matches("Apply these changes? Only 'yes' is accepted: ", err, 1, true)
      assert.matches("apply cancelled: nothing was written", err, 1, true)
    end
    assert.equal(0, stand_in.writes() - w0)
    local code, out = toolzz({ "apply", file }, terminal, "yes")
    assert.equal(0, code)
    assert.matches("Apply: 1 applied", out, 1, true)
    assert.equal("UTC", assert(H.client().calcom.get(id)).timezone)
    code, out = toolzz({ "apply", file }, terminal, "yes")
    assert.equal(0, code)
    assert.matches("Nothing to apply.", out, 1, true)
    assert.equal(1, stand_in.writes() - w0)
  end)

  it("--checksum applies only the plan that was reviewed", function()
    local unit = new_unit()
    local id = calcom_in(unit, "Front")
    local w0 = stand_in.writes()
    local file = temp_dir() .. "/front.json"
    write(file, cjson.encode { toolzz = 1, units = { { unit = unit,
      calcom = { { key = "front", id = id, timezone = "UTC" } } } } })
    local _, json = toolzz { "plan", file, "--json" }
    local checksum = cjson.decode(json).checksum
    local code, _, err = toolzz { "apply", file, "--checksum", ("0"):rep(#checksum) }
    assert.equal(7, code)
    assert.matches("stale", err, 1, true)
    assert.equal(0, stand_in.writes() - w0)
    code = toolzz { "apply", file, "--checksum", checksum }
    assert.equal(0, code)
    assert.equal(1, stand_in.writes() - w0)
  end)

  it("exits 6 when some changes failed and 1 when all did, listing every record's outcome", function()
    local unit = new_unit()
    local a, b = calcom_in(unit, "A"), calcom_in(unit, "B")
    local dir = temp_dir()
    local file = dir .. "/ab.json"
    write(file, cjson.encode { toolzz = 1, units = { { unit = unit, calcom = {
      { key = "a", id = a, timezone = "UTC" }, { key = "b", id = b, timezone = "UTC" } } } } })
    local saved = dir .. "/plan.json"
    assert.equal(0, (toolzz { "plan", file, "--out", saved }))
    -- the saved plan's two re-reads, then GET a, PUT a (fails), GET b, PUT b
    stand_in.faults { {}, {}, {}, { status = 500, request_id = "req-e2e-500" } }
    local code, out = toolzz { "apply", saved, "--concurrency", "1" }
    assert.equal(6, code, out)
    assert.matches("  failed   ~ update calcom a  id " .. a .. "  http status 500", out, 1, true)
    assert.matches("(request id req-e2e-500)", out, 1, true)
    assert.matches("  applied  ~ update calcom b  id " .. b, out, 1, true)
    assert.matches("Apply: 1 applied, 1 failed, 0 skipped, 0 unknown.", out, 1, true)
    -- now only a differs; its PUT fails: every change failed
    assert.equal(0, (toolzz { "plan", file, "--out", saved }))
    stand_in.faults { {}, {}, { status = 503 } }
    code, out = toolzz { "apply", saved }
    assert.equal(1, code, out)
    assert.matches("Apply: 0 applied, 1 failed, 0 skipped, 0 unknown.", out, 1, true)
  end)

  it("failed matches and unmanaged records of an exclusive unit are differences; apply refuses the first (7)", function()
    local unit = new_unit()
    calcom_in(unit, "Stray")
    local w0 = stand_in.writes()
    local dir = temp_dir()
    local exclusive = dir .. "/exclusive.json"
    write(exclusive, cjson.encode { toolzz = 1, units = { { unit = unit, exclusive = true } } })
    local code, out = toolzz { "plan", exclusive, "--detailed-exitcode" }
    assert.equal(5, code)
    assert.matches('  ? unmanaged calcom', out, 1, true)
    assert.matches('"Stray"', out, 1, true)
    code = toolzz { "apply", exclusive, "--yes" }
    assert.equal(0, code) -- nothing to apply
    assert.equal(0, stand_in.writes() - w0)
    local missing = dir .. "/missing.json"
    write(missing, cjson.encode { toolzz = 1, units = { { unit = unit, calcom = {
      { key = "gone", id = H.UUID, timezone = "UTC" } } } } })
    code, out = toolzz { "plan", missing, "--detailed-exitcode" }
    assert.equal(5, code)
    assert.matches("  ! failed    calcom gone", out, 1, true)
    local _, err
    code, _, err = toolzz { "apply", missing, "--yes", "--force" }
    assert.equal(7, code)
    assert.matches("unsafe", err, 1, true)
    assert.equal(0, stand_in.writes() - w0)
  end)

  it("a bad file: every problem with its path, exit 3, no request", function()
    local file = temp_dir() .. "/bad.json"
    write(file, '{"toolzz":1,"units":[{"unit":"' .. new_unit() .. '","calcom":[{"key":"a","titel":"x"},'
      .. '{"key":"a","timezone":5}]}]}')
    local code, out, err = toolzz { "plan", file }
    assert.equal(3, code)
    assert.equal("", out)
    assert.matches("units[1].calcom[1]", err, 1, true)
    assert.matches("units[1].calcom[2]", err, 1, true)
    assert.equal(0, stand_in.stats().requests)
  end)

  it("shows a progress bar on a terminal while planning many units, and none otherwise", function()
    local units = {}
    for i = 1, 5 do units[i] = { unit = new_unit(), calcom = {}, gcal = {} } end
    local file = temp_dir() .. "/many.json"
    write(file, cjson.encode { toolzz = 1, units = units })
    local code, out, err = toolzz({ "plan", file }, { [2] = true })
    assert.equal(0, code)
    assert.matches("\r\27[K[", err, 1, true)
    assert.matches("10/10 100%", err, 1, true)
    assert.is_nil(out:find("\27", 1, true)) -- stdout is not a terminal: no colour
    code, out, err = toolzz { "plan", file }
    assert.equal(0, code)
    assert.equal("", err)
    assert.matches("Plan: 0 to create, 0 to update, 0 unchanged", out, 1, true)
  end)
end)

-- The recipes of README's "Command line" section, run exactly as written
-- (extracted from README.md) with the installed toolzz command against the
-- stateful stand-in, and their effect checked through the library.
-- Tagged no_valgrind: the work happens in child processes.
local H = require "helpers"
local cli = require "cli_install"

-- name -> the shell text of each <!-- recipe: name --> block in README.md.
local function readme_recipes()
  local f = assert(io.open(H.root .. "/README.md", "rb"))
  local text = f:read("*a")
  f:close()
  local recipes = {}
  for name, body in text:gmatch("<!%-%- recipe: ([%w%-]+) %-%->\n```sh\n(.-)\n```") do
    recipes[name] = body .. "\n"
  end
  return recipes
end

describe("README command line recipes #no_valgrind", function()
  local recipes = readme_recipes()
  local client, unit, other_unit

  setup(function() cli.install() end)
  teardown(function()
    if client then client:close() end
    cli.cleanup()
  end)

  -- Two Cal.com integrations and two Google Calendar functions in a fresh
  -- unit, and one of each in another unit that no recipe may touch.
  before_each(function()
    H.stand_in.reset()
    client = client or H.client()
    unit, other_unit = cli.uuid(), cli.uuid()
    for _, u in ipairs { unit, unit, other_unit } do
      assert(client.calcom.create(H.calcom_create_body { unitId = u }))
      assert(client.gcal.create(H.gcal_body { unityId = u }))
    end
  end)

  local function calcom_of(u) return assert(client.calcom.list(u)) end
  local function gcal_of(u) return assert(client.gcal.list(u)) end

  it("are all there", function()
    for _, name in ipairs { "bookings-off", "rotate-google-token", "move-time-zone", "sync-round-trip" } do
      assert.is_string(recipes[name], "README has no recipe " .. name)
    end
  end)

  it("bookings-off turns bookings off for every Cal.com integration of the unit", function()
    local r = cli.shell(recipes["bookings-off"], { UNIT = unit })
    assert.equal(0, r.code, r.err)
    assert.equal(2, select(2, r.out:gsub('"ok":true', "")))
    assert.matches("toolzz: batch: 2 lines, 2 ok, 0 failed", r.err, 1, true)
    for _, rec in ipairs(calcom_of(unit)) do assert.equal(false, rec.createBookingEnabled) end
    assert.equal(true, calcom_of(other_unit)[1].createBookingEnabled)
  end)

  it("rotate-google-token puts the token from a file into every function of the unit", function()
    local new_token = "ya29.rotated-" .. cli.uuid()
    local google_token_file = cli.write_file(cli.work() .. "/google-token", new_token .. "\n")
    local token_file = cli.write_file(cli.work() .. "/api-token", H.env.token .. "\n")
    local r = cli.shell(recipes["rotate-google-token"], {
      UNIT = unit, GOOGLE_TOKEN_FILE = google_token_file, TOOLZZ_TOKEN_FILE = token_file, TOOLZZ_TOKEN = "",
    })
    assert.equal(0, r.code, r.err)
    assert.equal("", r.out .. r.err)
    local functions = gcal_of(unit)
    assert.equal(2, #functions)
    for _, fn in ipairs(functions) do
      assert.equal(new_token, assert(client.gcal.get(fn.id)).googleCalendarPlugin[1].googleToken)
    end
    assert.equal(H.GOOGLE_TOKEN, gcal_of(other_unit)[1].googleCalendarPlugin[1].googleToken)
  end)

  it("move-time-zone moves every agent of the unit", function()
    local r = cli.shell(recipes["move-time-zone"], { UNIT = unit, NEW_TZ = "Europe/Lisbon" })
    assert.equal(0, r.code, r.err)
    assert.matches("toolzz: batch: 4 lines, 4 ok, 0 failed", r.err, 1, true)
    for _, rec in ipairs(calcom_of(unit)) do assert.equal("Europe/Lisbon", rec.timezone) end
    for _, fn in ipairs(gcal_of(unit)) do
      assert.equal("Europe/Lisbon", fn.googleCalendarPlugin[1].timezone)
    end
    assert.equal("America/Sao_Paulo", calcom_of(other_unit)[1].timezone)
  end)

  it("sync-round-trip exports, edits, plans, applies the saved plan and plans again with no change", function()
    local token = "ya29.sync-recipe-" .. cli.uuid()
    local before = calcom_of(unit)
    local r = cli.shell(recipes["sync-round-trip"], { UNIT = unit, GCAL_TOKEN_SUPPORT = token })
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("", r.err)
    assert.matches("  + create    gcal   support", r.out, 1, true)
    assert.matches('    timezone: "America/Sao_Paulo" \226\134\146 "America/Recife"', r.out, 1, true)
    assert.matches("Apply: 2 applied, 0 failed, 0 skipped, 0 unknown.", r.out, 1, true)
    assert.matches("Plan: 0 to create, 0 to update, 5 unchanged, 0 unmanaged, 0 failed.\nNo changes", r.out, 1, true)
    assert.is_nil(r.out:find(token, 1, true))
    -- what the recipe meant to change, and only that
    local changed = 0
    for _, rec in ipairs(calcom_of(unit)) do
      if rec.timezone == "America/Recife" then
        changed = changed + 1
        assert.equal("Offer 45-minute calls.\nNever book on Sundays.", rec.prompt)
      end
    end
    assert.equal(1, changed)
    assert.equal(#before, #calcom_of(unit))
    local support
    for _, fn in ipairs(gcal_of(unit)) do
      if fn.name == "Support meetings" then support = fn end
    end
    assert.is_table(support)
    assert.equal(token, assert(client.gcal.get(support.id)).googleCalendarPlugin[1].googleToken)
    assert.equal(1, #gcal_of(other_unit))
    assert.equal("America/Sao_Paulo", calcom_of(other_unit)[1].timezone)
  end)
end)

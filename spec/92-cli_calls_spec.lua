-- The installed toolzz command's Part 2 subcommands against the stateful
-- stand-in (both hosts): create, get, list, patch, duplicate for Cal.com and
-- Google Calendar, dry-run patches, table output, and batch lines of every
-- kind. Each test works in a unit of its own. Tagged no_valgrind: the work
-- happens in child processes.
local H = require "helpers"
local cli = require "cli_install"
local cjson = require "cjson"
local stand_in = H.stand_in

local toolzz, uuid = cli.toolzz, cli.uuid

local file = cli.input_file

local decode, lines_of = cli.decode, cli.lines_of

-- Run and expect success; returns the decoded stdout.
local function ok_json(args, opts)
  local r = toolzz(args, opts)
  assert.equal(0, r.code, table.concat(args, " ") .. "\n" .. r.err)
  return decode(r.out), r
end

local API_KEY = "cal_live_0123456789abcdefSECRET"

local function create_calcom(unit, title)
  local body = H.calcom_body { unitId = unit, title = title or "Calcom" }
  return ok_json { "calcom", "create", "-f", file(cjson.encode(body)), "--set-file", "apiKey=" .. file(API_KEY .. "\n") }
end

local function create_gcal(unit, name)
  local body = H.gcal_body { unityId = unit, name = name or "Google Calendar" }
  return ok_json({ "gcal", "create", "-f", "-" }, { stdin = cjson.encode(body) })
end

describe("toolzz command, Part 2 calls #no_valgrind", function()
  local unit
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function()
    stand_in.reset()
    unit = uuid()
  end)

  describe("calcom", function()
    it("creates on the converflow host with a secret apiKey from a file, never printed", function()
      local r
      local created
      created, r = create_calcom(unit, "Agenda")
      assert.is_true(require("toolzz.validate").is_uuid(created.id))
      assert.equal("Agenda", created.title)
      assert.equal("[REDACTED]", created.apiKey)
      assert.not_matches(API_KEY, r.out .. r.err, 1, true)
      r = toolzz { "-v", "--dry-run", "calcom", "create", "-f", file(cjson.encode(H.calcom_body { unitId = unit })),
                   "--set-file", "apiKey=" .. file(API_KEY) }
      assert.equal(0, r.code, r.err)
      local req = decode(r.out)
      assert.equal("POST", req.method)
      assert.equal(H.env.cf_http_url .. "/api/v1/calcom/integration", req.url)
      assert.equal("[REDACTED]", req.body.apiKey)
      assert.not_matches(API_KEY, r.out .. r.err, 1, true)
    end)

    it("gets, lists (JSON array or table) and patches", function()
      local a = create_calcom(unit, "First")
      local b = create_calcom(unit, "Second")
      local got = ok_json { "calcom", "get", a.id }
      assert.equal("First", got.title)
      local list, r = ok_json { "calcom", "list", unit }
      assert.matches("^%[", r.out)
      local ids = {}
      for _, rec in ipairs(list) do ids[rec.id] = rec.title end
      assert.same({ [a.id] = "First", [b.id] = "Second" }, ids)
      r = toolzz { "--output", "table", "calcom", "list", unit }
      assert.equal(0, r.code, r.err)
      local rows = lines_of(r.out)
      assert.equal(3, #rows)
      assert.matches("^ID%s+NAME%s+UNIT%s+TIMEZONE%s+ACTIVE$", rows[1])
      assert.matches(a.id .. "  First ", r.out, 1, true)

      local patched = ok_json { "calcom", "patch", a.id, "--set", "createBookingEnabled=false",
                                "--set", "prompt=30 min only" }
      assert.equal(false, patched.createBookingEnabled)
      got = ok_json { "calcom", "get", a.id }
      assert.equal(false, got.createBookingEnabled)
      assert.equal("30 min only", got.prompt)
      assert.equal("First", got.title)
    end)

    it("lists an empty unit as []", function()
      local _, r = ok_json { "calcom", "list", unit }
      assert.equal("[]\n", r.out)
      r = toolzz { "--output", "table", "gcal", "list", unit }
      assert.equal(0, r.code)
      assert.equal(1, #lines_of(r.out))
    end)

    it("exits 1 for an unknown id and 3 for bad changes, sending nothing then", function()
      local r = toolzz { "calcom", "get", uuid() }
      assert.equal(1, r.code)
      assert.matches("^toolzz: calcom%.get: http 404: ", r.err)
      stand_in.reset()
      r = toolzz { "calcom", "patch", uuid(), "--set", "createBookingEnable=false" }
      assert.equal(3, r.code)
      assert.matches("^toolzz: calcom%.patch: validation: createBookingEnable: ", r.err)
      assert.equal(0, stand_in.stats().requests)
      local a = create_calcom(unit)
      r = toolzz { "calcom", "patch", a.id, "--set", "unitId=null" }
      assert.equal(3, r.code)
      assert.matches("validation: unitId: ", r.err)
    end)

    it("fails with exit 1 when the converflow host is wrong (404 on the other host)", function()
      local a = create_calcom(unit)
      local r = toolzz { "--converflow-url", H.env.http_url, "calcom", "get", a.id }
      assert.equal(1, r.code)
      assert.matches("http 404", r.err)
    end)
  end)

  describe("gcal", function()
    it("creates, gets, lists, patches with -f and --set, and duplicates", function()
      local created = create_gcal(unit, "Agenda")
      assert.equal("Agenda", created.name)
      local got = ok_json { "gcal", "get", created.id }
      assert.equal("google-calendar", got.type)
      assert.equal("[REDACTED]", got.googleCalendarPlugin[1].googleToken)

      local changes = file(cjson.encode { description = "Only mornings." })
      local patched = ok_json { "gcal", "patch", created.id, "--set", "googleCalendar.timezone=Europe/Lisbon",
                                "-f", changes, "--set", "googleCalendar.googleUser.hd=null" }
      assert.equal("Only mornings.", patched.description)
      got = ok_json { "--show-secrets", "gcal", "get", created.id }
      assert.equal("Europe/Lisbon", got.googleCalendarPlugin[1].timezone)
      assert.equal(H.GOOGLE_TOKEN, got.googleCalendarPlugin[1].googleToken) -- kept by the patch
      assert.equal("Agenda", got.name)
      assert.is_nil(got.googleCalendarPlugin[1].googleUser.hd)

      local copy = ok_json { "gcal", "duplicate", created.id }
      assert.not_equal(created.id, copy.id)
      local list = ok_json { "gcal", "list", unit }
      assert.equal(2, #list)
    end)

    it("dry-run patch reads and prints the PUT it would send, secrets redacted", function()
      local created = create_gcal(unit)
      local before = stand_in.stats().requests
      local r = toolzz { "-v", "--dry-run", "gcal", "patch", created.id, "--set", "googleCalendar.timezone=UTC" }
      assert.equal(0, r.code, r.err)
      local req = decode(r.out)
      assert.equal("PUT", req.method)
      assert.equal(H.env.http_url .. "/api/v1/functions/" .. created.id, req.url)
      assert.equal("UTC", req.body.googleCalendar.timezone)
      assert.equal("[REDACTED]", req.body.googleCalendar.googleToken)
      assert.not_matches(H.GOOGLE_TOKEN, r.out .. r.err, 1, true)
      assert.equal(before + 1, stand_in.stats().requests) -- the GET
      assert.matches("^toolzz: GET ", r.err)
      assert.equal(1, #lines_of(r.err))
      assert.equal("America/Sao_Paulo", ok_json({ "gcal", "get", created.id }).googleCalendarPlugin[1].timezone)
    end)

    it("dry-run duplicate prints a request without a body", function()
      local created = create_gcal(unit)
      local req = ok_json { "--dry-run", "gcal", "duplicate", created.id }
      assert.equal("POST", req.method)
      assert.equal(cjson.null, req.body)
      assert.equal(1, #ok_json { "gcal", "list", unit })
    end)
  end)

  describe("batch", function()
    it("with --dry-run reads, and prints the writes it would send", function()
      local fn = create_gcal(unit, "Fn")
      local before = stand_in.stats().requests
      local lines = {
        cjson.encode { op = "gcal.patch", id = fn.id, fields = { name = "Renamed" } },
        cjson.encode { op = "gcal.duplicate", id = fn.id },
      }
      local r = toolzz({ "--dry-run", "batch", "-" }, { stdin = table.concat(lines, "\n") })
      assert.equal(0, r.code, r.err)
      local results = {}
      for _, l in ipairs(lines_of(r.out)) do results[#results + 1] = decode(l) end
      assert.equal("PUT", results[1].res.method)
      assert.equal("Renamed", results[1].res.body.name)
      assert.equal("[REDACTED]", results[1].res.body.googleCalendar.googleToken)
      assert.equal("POST", results[2].res.method)
      assert.equal(before + 1, stand_in.stats().requests) -- the patch's GET only
      assert.equal("Fn", ok_json({ "gcal", "get", fn.id }).name)
      assert.equal(1, #ok_json { "gcal", "list", unit })
    end)

    it("runs lines of every kind, in input order", function()
      local cal = create_calcom(unit, "Cal")
      local fn = create_gcal(unit, "Fn")
      local lines = {
        cjson.encode { op = "calcom.get", id = cal.id },
        cjson.encode { op = "calcom.list", id = unit },
        cjson.encode { op = "calcom.patch", id = cal.id, fields = { createBookingEnabled = false } },
        cjson.encode { op = "gcal.patch", id = fn.id, fields = { googleCalendar = { timezone = "Asia/Tokyo" } } },
        cjson.encode { op = "gcal.get", id = fn.id },
        cjson.encode { op = "gcal.list", id = unit },
        cjson.encode { op = "gcal.duplicate", id = fn.id },
        cjson.encode { op = "gcal.patch", id = uuid(), fields = { description = "x" } },
      }
      local r = toolzz({ "batch", "-", "--concurrency", "1" }, { stdin = table.concat(lines, "\n") })
      assert.equal(1, r.code, r.err) -- the last line: unknown id
      local results = {}
      for _, l in ipairs(lines_of(r.out)) do results[#results + 1] = decode(l) end
      assert.equal(8, #results)
      for i = 1, 7 do assert.is_true(results[i].ok, i .. ": " .. lines_of(r.out)[i]) end
      assert.equal("Cal", results[1].res.title)
      assert.equal(1, #results[2].res)
      assert.equal(false, results[3].res.createBookingEnabled)
      assert.equal("Fn", results[5].res.name)
      assert.equal(1, #results[6].res)
      assert.not_equal(fn.id, results[7].res.id)
      assert.is_false(results[8].ok)
      assert.equal("http", results[8].error.kind)
      assert.equal(404, results[8].error.status)
      assert.equal("gcal.patch", results[8].error.op)
      assert.equal("get", results[8].error.step)
      assert.not_matches(H.GOOGLE_TOKEN, r.out .. r.err, 1, true)
    end)
  end)
end)

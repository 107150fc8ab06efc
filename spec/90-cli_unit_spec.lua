-- The toolzz command's pure parts, in process: --set parsing, bodies from
-- files, batch lines, JSON and table output, redaction, the progress bar,
-- argument parsing and exit statuses. (91-cli_command_spec.lua runs the
-- installed command against the stand-in.)
local H = require "helpers"
local toolzz = require "toolzz"
local cjson = require "cjson"
local input = require "toolzz.cli.input"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local cli = require "toolzz.cli"

local encode = require("toolzz.core").encode

-- A file with these contents, removed after the test.
local function temp_file(contents)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(contents)
  f:close()
  finally(function() os.remove(name) end)
  return name
end

-- A stand-in for io.stdin.
local function stdin_of(text)
  return { read = function() local t = text text = "" return t end }
end

-- A sys table for cli.main that captures output.
local function fake_system(over)
  local out, err = {}, {}
  local sys = {
    stdin = stdin_of(""),
    stdout = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end, flush = function() end },
    stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
    getenv = function(name) return name == "TOOLZZ_TOKEN" and "unit-test-token-0123456789" or nil end,
    isatty = function() return false end,
    now = function() return 0 end,
  }
  for k, v in pairs(over or {}) do sys[k] = v end
  return sys, function() return table.concat(out) end, function() return table.concat(err) end
end

describe("cli --set", function()
  it("splits dotted paths, with digits as array indices", function()
    local keys, value = input.split_assignment("googleCalendar.googleUser.email=a=b@example.com")
    assert.same({ "googleCalendar", "googleUser", "email" }, keys)
    assert.equal("a=b@example.com", value) -- only the first '=' splits
    keys = input.split_assignment("outputs.2.type=string")
    assert.same({ "outputs", 2, "type" }, keys)
    assert.same({ "prompt" }, (input.split_assignment("prompt=")))
  end)

  it("refuses what is not PATH=VALUE", function()
    for _, text in ipairs { "prompt", "=x", "a..b=1", ".a=1", "a.=1" } do
      local keys, why = input.split_assignment(text)
      assert.is_nil(keys, text)
      assert.is_string(why)
    end
  end)

  it("reads values as JSON when they are JSON, else as strings", function()
    assert.equal(true, input.parse_value("true"))
    assert.equal(false, input.parse_value("false"))
    assert.equal(30, input.parse_value("30"))
    assert.equal(toolzz.null, input.parse_value("null"))
    assert.equal("30 min only", input.parse_value("30 min only"))
    assert.equal("30", input.parse_value('"30"'))
    assert.equal("Europe/Lisbon", input.parse_value("Europe/Lisbon"))
    assert.same({ a = 1 }, input.parse_value('{"a":1}'))
    assert.equal('{"a":[]}', encode({ a = input.parse_value("[]") }))
    assert.equal("[1,2]", (encode(input.parse_value("[1,2]")):gsub("%.0", "")))
    assert.equal("{oops", input.parse_value("{oops"))
  end)

  it("keeps the text of a number or boolean where the schema wants a string", function()
    local spec = input.field_spec(toolzz.schema.gcal, { "googleCalendar", "googleId" })
    assert.equal("digits", spec.type)
    assert.equal("109876543210987654321", input.parse_value("109876543210987654321", spec))
    local prompt = input.field_spec(toolzz.schema.calcom, { "prompt" })
    assert.equal("true", input.parse_value("true", prompt))
    assert.equal(toolzz.null, input.parse_value("null", prompt))
    local flag = input.field_spec(toolzz.schema.calcom, { "createBookingEnabled" })
    assert.equal(false, input.parse_value("false", flag))
    assert.is_nil(input.field_spec(toolzz.schema.calcom, { "nope", "deeper" }))
  end)

  it("sets nested paths, making objects on the way", function()
    local body = { googleCalendar = { calendarId = "primary" } }
    assert.is_true(input.set_path(body, { "googleCalendar", "googleUser", "email" }, "a@b.co"))
    assert.same({ googleCalendar = { calendarId = "primary", googleUser = { email = "a@b.co" } } }, body)
    local ok, why = input.set_path(body, { "googleCalendar", "calendarId", "x" }, 1)
    assert.is_nil(ok)
    assert.matches("'googleCalendar.calendarId' is not an object", why, 1, true)
  end)
end)

describe("cli bodies", function()
  it("lays --set and --set-file over -f in command-line order", function()
    local file = temp_file('{"title":"From file","prompt":"old","createBookingEnabled":true}')
    local secret = temp_file("ya29.fresh-token-from-a-file\n")
    local body, from_files = input.build_body(input.reader(stdin_of("")), file, {
      { "set", "prompt=30 min only" },
      { "set", "createBookingEnabled=false" },
      { "set_file", "googleCalendar.googleToken=" .. secret },
      { "set", "title=Last wins" },
    }, toolzz.schema.calcom)
    assert.same({
      title = "Last wins", prompt = "30 min only", createBookingEnabled = false,
      googleCalendar = { googleToken = "ya29.fresh-token-from-a-file" },
    }, body)
    assert.same({ "ya29.fresh-token-from-a-file" }, from_files)
  end)

  it("strips one trailing newline from --set-file, nothing else", function()
    local file = temp_file("  two lines\nsecond\r\n\n")
    local body = input.build_body(input.reader(stdin_of("")), nil, { { "set_file", "prompt=" .. file } })
    assert.equal("  two lines\nsecond\r\n", body.prompt)
  end)

  it("reads - from stdin, once", function()
    local read = input.reader(stdin_of('{"prompt":"from stdin"}'))
    assert.same({ prompt = "from stdin" }, input.read_object(read, "-"))
    local value, why = read("-")
    assert.is_nil(value)
    assert.matches("only once", why)
  end)

  it("says which file is not JSON, or not an object", function()
    local read = input.reader(stdin_of(""))
    local bad = temp_file("{not json")
    local body, why = input.build_body(read, bad, {})
    assert.is_nil(body)
    assert.matches(bad .. ": not JSON", why, 1, true)
    body, why = input.build_body(read, temp_file("[1,2]"), {})
    assert.is_nil(body)
    assert.matches("not a JSON object", why)
    body, why = input.build_body(read, "/nonexistent/changes.json", {})
    assert.is_nil(body)
    assert.matches("/nonexistent/changes.json", why, 1, true)
    body, why = input.build_body(read, nil, { { "set", "prompt" } })
    assert.is_nil(body)
    assert.matches("^%-%-set 'prompt' is not PATH=VALUE", why)
  end)
end)

describe("cli batch lines", function()
  local ops = require("toolzz.cli.batch").BATCH_OPERATIONS

  it("turns each line into a client.batch item", function()
    assert.same({ "gcal.patch", H.UUID, { googleCalendar = { timezone = "UTC" } } },
      input.batch_item('{"op":"gcal.patch","id":"' .. H.UUID .. '","fields":{"googleCalendar":{"timezone":"UTC"}}}', ops))
    assert.same({ "calcom.list", H.UNIT }, input.batch_item('{"op":"calcom.list","id":"' .. H.UNIT .. '"}', ops))
    assert.same({ "gcal.create", { name = "x" } }, input.batch_item('{"op":"gcal.create","fields":{"name":"x"}}', ops))
    assert.same({ "calcom", H.UUID, { title = "t" } },
      input.batch_item('{"op":"calcom","id":"' .. H.UUID .. '","fields":{"title":"t"}}', ops))
    local item = input.batch_item('{"op":"calcom.patch","id":"x","fields":{"unitId":null}}', ops)
    assert.equal(toolzz.null, item[3].unitId)
  end)

  it("says what is wrong with a bad line", function()
    local cases = {
      { "{oops", "not JSON" },
      { "[1]", "not a JSON object" },
      { '"text"', "not a JSON object" },
      { '{"id":"x"}', "no op" },
      { '{"op":"calcom.delete","id":"x"}', "unknown op 'calcom.delete'" },
      { '{"op":"calcom.get"}', "calcom.get needs an id" },
      { '{"op":"calcom.get","id":"x","fields":{}}', "calcom.get takes no fields" },
      { '{"op":"gcal.create","id":"x","fields":{}}', "gcal.create takes no id" },
      { '{"op":"gcal.update","id":"x"}', "gcal.update needs fields" },
      { '{"op":"gcal.update","id":"x","fields":{},"feilds":1}', "unknown key 'feilds'" },
    }
    for _, case in ipairs(cases) do
      local item, why = input.batch_item(case[1], ops)
      assert.is_nil(item, case[1])
      assert.matches(case[2], why, 1, true)
    end
  end)

  it("numbers lines as the file does, leaving blank ones out", function()
    local lines = input.batch_lines('{"a":1}\r\n\n   \n{"b":2}\n{"c":3}')
    assert.same({ { number = 1, text = '{"a":1}' }, { number = 4, text = '{"b":2}' }, { number = 5, text = '{"c":3}' } },
      lines)
    assert.same({}, input.batch_lines(""))
  end)
end)

describe("cli output", function()
  it("indents JSON by two spaces without touching strings", function()
    local text = encode { b = { 1, 2 }, a = 'x,{"y":[1]}\\"', c = {}, d = toolzz.array(), e = { f = toolzz.null } }
    local pretty = output.pretty(text)
    assert.equal(table.concat({
      "{",
      '  "a": "x,{\\"y\\":[1]}\\\\\\"",',
      '  "b": [',
      "    1,",
      "    2",
      "  ],",
      '  "c": {},',
      '  "d": [],',
      '  "e": {',
      '    "f": null',
      "  }",
      "}",
    }, "\n"), pretty)
    assert.same(cjson.decode(text), cjson.decode(pretty))
  end)

  it("redacts secret fields at any depth unless asked, and scrubs known secrets everywhere", function()
    local record = {
      name = "x", notificationDelayMs = 0,
      googleCalendarPlugin = { { googleToken = H.GOOGLE_TOKEN, timezone = "UTC" } },
      apiKey = "cal_****************", outputs = {}, discordPlugin = {},
      note = "token unit-test-token-0123456789 leaked",
    }
    local text = output.encode(output.printable(record, { "unit-test-token-0123456789" }))
    assert.not_matches(H.GOOGLE_TOKEN, text, 1, true)
    assert.not_matches("unit-test-token", text, 1, true)
    assert.matches('"googleToken":"[REDACTED]"', text, 1, true)
    assert.matches('"apiKey":"[REDACTED]"', text, 1, true)
    assert.matches('"notificationDelayMs":0,', text, 1, true) -- not 0.0 on 5.4
    assert.matches('"outputs":[]', text, 1, true)
    assert.matches('"discordPlugin":[]', text, 1, true)
    local shown = output.encode(output.printable(record, {}, true))
    assert.matches(H.GOOGLE_TOKEN, shown, 1, true)
    assert.equal(H.GOOGLE_TOKEN, record.googleCalendarPlugin[1].googleToken) -- the original is untouched
  end)

  it("knows googleToken as a secret from the schema", function()
    assert.is_true(output.SECRET_KEYS.googleToken)
    assert.is_true(output.SECRET_KEYS.apiKey)
    assert.is_true(output.ARRAY_KEYS.outputs)
  end)

  it("redacts secret values in JSON text and leaves every other byte", function()
    local body = encode(H.gcal_body { description = 'say "googleToken":"no"' })
    local redacted = output.redact_json_text(body)
    assert.not_matches(H.GOOGLE_TOKEN, redacted, 1, true)
    assert.equal(body:gsub(H.GOOGLE_TOKEN:gsub("%p", "%%%0"), "[REDACTED]"), redacted)
    local tricky = '{"googleToken":"a\\"b\\\\","x":1}'
    assert.equal('{"googleToken":"[REDACTED]","x":1}', output.redact_json_text(tricky))
  end)

  it("prints records as an aligned table", function()
    local text = output.table_view {
      { id = "a1", title = "Cal", unitId = "u1", timezone = "UTC", isActive = true },
      { id = "b22", name = "Agenda São Paulo", unityId = "u2", isActivated = false,
        googleCalendarPlugin = { { timezone = "America/Sao_Paulo" } } },
      { id = "c", name = "multi\nline" },
    }
    assert.equal(table.concat({
      "ID   NAME              UNIT  TIMEZONE           ACTIVE",
      "a1   Cal               u1    UTC                yes",
      "b22  Agenda São Paulo  u2    America/Sao_Paulo  no",
      "c    multi line        -     -                  -",
    }, "\n") .. "\n", text)
    assert.equal("ID  NAME  UNIT  TIMEZONE  ACTIVE\n", output.table_view({}))
  end)

  it("prints a validation error as one line per field path", function()
    local err = require("toolzz.errors").validation {
      { path = "createBookingEnabled", message = "must be a boolean, got string" },
      { path = "googleCalendar.timezone", message = "not\na zone" },
    }
    err.op = "gcal.patch"
    assert.same({
      "toolzz: gcal.patch: validation: createBookingEnabled: must be a boolean, got string",
      "toolzz: gcal.patch: validation: googleCalendar.timezone: not a zone",
    }, output.error_lines(err))
    local http = require("toolzz.errors").new("http", "secret-value-123456 rejected", { status = 401 })
    assert.same({ "toolzz: http 401: [REDACTED] rejected" }, output.error_lines(http, { "secret-value-123456" }))
  end)
end)

describe("cli progress bar", function()
  it("shows done/total, rate, time left and failures", function()
    assert.equal("[############............] 10/20  50%  5.0/s  ETA 0:02  3 failed", progress.render(10, 20, 3, 2))
    assert.equal("[........................] 0/5   0%  0.0/s  ETA --:--", progress.render(0, 5, 0, 0))
    assert.equal("[########################] 5/5 100%  2.5/s  ETA 0:00", progress.render(5, 5, 0, 2))
    assert.equal("1:01:01", progress.clock(3661))
  end)

  it("redraws at most every 0.1 s, and always the last frame", function()
    local frames, t = {}, 0
    local out = { write = function(_, ...) frames[#frames + 1] = table.concat { ... } end, flush = function() end }
    local bar = progress.new(out, 3, function() return t end)
    bar:update(1, 0)
    t = 0.05
    bar:update(2, 0) -- too soon
    t = 0.06
    bar:finish(3, 1)
    assert.equal(3, #frames) -- first frame, last frame, newline
    assert.matches("1/3", frames[1], 1, true)
    assert.matches("3/3.*1 failed", frames[2])
    assert.equal("\n", frames[3])
  end)
end)

describe("cli arguments", function()
  local function parse(argv) return cli.parser():pparse(argv) end

  it("parses subcommands, with global options before or after them", function()
    local ok, args = parse { "--dry-run", "gcal", "patch", H.UUID, "--set", "a=1", "--set-file", "b=f",
                             "-f", "-", "--set", "c=2", "--timeout", "2.5", "--output", "table" }
    assert.is_true(ok, args)
    assert.equal("gcal", args.command)
    assert.equal("patch", args.op)
    assert.equal(H.UUID, args.id)
    assert.equal("-", args.file)
    assert.is_true(args.dry_run)
    assert.equal(2.5, args.timeout)
    assert.equal("table", args.output)
    assert.same({ { "set", "a=1" }, { "set_file", "b=f" }, { "set", "c=2" } }, args.assignments)
    ok, args = parse { "batch", "-", "--concurrency", "3" }
    assert.is_true(ok)
    assert.equal(3, args.concurrency)
    assert.equal(8, select(2, parse { "batch", "f.jsonl" }).concurrency)
  end)

  it("refuses bad arguments, and a token as an argument", function()
    local cases = {
      { { "calcom", "get" }, "missing argument 'ID'" },
      { { "calcom", "delete", H.UUID }, "unknown command 'delete'" },
      { { "batch", "f", "--concurrency", "0" }, "--concurrency must be a whole number from 1 to 256" },
      { { "--retries", "x", "calcom", "get", H.UUID }, "--retries must be a whole number" },
      { { "--timeout=-1", "calcom", "get", H.UUID }, "--timeout must be a number of seconds" },
      { { "--output", "yaml", "calcom", "get", H.UUID }, "must be one of 'json', 'pretty', 'table'" },
      { { "--token", "abc", "calcom", "get", H.UUID }, "never taken from an argument" },
      { { "calcom", "get", H.UUID, "--set", "a=1" }, "unknown option '--set'" },
    }
    for _, case in ipairs(cases) do
      local ok, why = parse(case[1])
      assert.is_false(ok, table.concat(case[1], " "))
      assert.matches(case[2], why, 1, true)
      assert.not_matches("abc", why, 1, true)
    end
  end)

  it("maps error kinds to exit statuses", function()
    local errors = require "toolzz.errors"
    for kind, code in pairs { validation = 3, config = 4, http = 1, network = 1, timeout = 1, tls = 1,
                              decode = 1, limit = 1 } do
      assert.equal(code, cli.exit_code(errors.new(kind, "x")), kind)
    end
  end)

  it("writes one --verbose line per attempt", function()
    local common = require "toolzz.cli.common"
    assert.equal("toolzz: PUT https://h/api/v1/functions/x 503 12 ms attempt 2 request-id abc",
      common.attempt_line { method = "PUT", url = "https://h/api/v1/functions/x", status = 503, elapsed = 0.0121,
                         attempt = 2, request_id = "abc" })
    assert.equal("toolzz: GET https://h/x failed (toolzz: network: refused) 3 ms attempt 1",
      common.attempt_line { method = "GET", url = "https://h/x", error = "toolzz: network: refused", elapsed = 0.003,
                         attempt = 1 })
  end)
end)

describe("cli subcommands", function()
  it("are the catalogue's calls, taking what each call takes", function()
    local operations = require "toolzz.operations"
    local parser = cli.parser()
    for _, op in ipairs(operations.list) do
      local argv = { op.group, op.verb }
      if op.takes_id then argv[#argv + 1] = H.UUID end
      if op.takes_body then argv[#argv + 1] = "--set" argv[#argv + 1] = "title=x" end
      local ok, args = parser:pparse(argv)
      assert.is_true(ok, op.name .. ": " .. tostring(args))
      assert.equal(op.group, args.command)
      assert.equal(op.verb, args.op)
      assert.equal(op.takes_id and H.UUID or nil, args.id)
      if op.takes_id then -- the id is required
        table.remove(argv, 3)
        assert.is_false((parser:pparse(argv)), op.name)
      end
      if not op.takes_body then -- no body options
        argv[#argv + 1] = "--set" argv[#argv + 1] = "title=x"
        assert.is_false((parser:pparse(argv)), op.name)
      end
    end
    local batch_ops = require("toolzz.cli.batch").BATCH_OPERATIONS
    for _, op in ipairs(operations.list) do
      assert.equal(op, batch_ops[op.name])
      assert.equal(op.takes_id == true, op.after ~= nil or op.patch ~= nil, op.name)
      assert.equal(op.takes_body == true, op.schema ~= nil or op.patch ~= nil, op.name)
    end
    assert.equal(operations.by_name["calcom.update"], batch_ops.calcom)
    assert.equal(operations.by_name["gcal.update"], batch_ops.gcal)
  end)

  it("read --set values against the call's schema (create schemas for create)", function()
    local call = require "toolzz.cli.call"
    assert.equal(toolzz.schema.gcal_create, call.schema_of("gcal", "create"))
    assert.equal(toolzz.schema.calcom, call.schema_of("calcom", "patch"))
    local id = input.field_spec(call.schema_of("gcal", "create"), { "googleCalendar", "googleUser", "id" })
    assert.equal("123456789012345678901", input.parse_value("123456789012345678901", id))
  end)
end)

describe("cli main", function()
  it("exits 2 with one line on stderr for a usage error", function()
    local sys, out, err = fake_system()
    assert.equal(2, cli.main({ "calcom", "get" }, sys))
    assert.equal("", out())
    assert.equal("toolzz: missing argument 'ID' (see: toolzz calcom get --help)\n", err())
  end)

  it("exits 2 when a body command has nothing to send", function()
    local sys, _, err = fake_system()
    assert.equal(2, cli.main({ "calcom", "update", H.UUID }, sys))
    assert.matches("nothing to send", err())
  end)

  it("exits 4 without a token, and when --token-file cannot be read", function()
    local sys, _, err = fake_system { getenv = function() return nil end }
    assert.equal(4, cli.main({ "calcom", "update", H.UUID, "--set", "title=x" }, sys))
    assert.matches("^toolzz: config: no token", err())
    sys, _, err = fake_system()
    assert.equal(4, cli.main({ "--token-file", "/nonexistent/token", "calcom", "get", H.UUID }, sys))
    assert.matches("^toolzz: config: %-%-token%-file cannot be read", err())
  end)

  it("exits 3 with one line per field for a validation error, sending nothing", function()
    local sys, out, err = fake_system()
    local code = cli.main({ "--base-url", "http://127.0.0.1:9", "calcom", "update", "not-a-uuid",
                            "--set", "createBookingEnabled=yes", "--set", "title=x" }, sys)
    assert.equal(3, code)
    assert.equal("", out())
    local lines = {}
    for line in err():gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("validation: id: must be a UUID", lines[1])
    assert.matches("validation: createBookingEnabled: ", err())
    for _, line in ipairs(lines) do assert.matches("^toolzz: ", line) end
    assert.truthy(#lines >= 6) -- id, createBookingEnabled and the missing required fields
  end)
end)

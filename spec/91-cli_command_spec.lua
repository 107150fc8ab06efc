-- The installed toolzz command (luarocks make into a throwaway tree), run as
-- a subprocess against the stand-in: every subcommand, --set parsing,
-- stdin, dry runs, exit statuses of each error kind, secrets, --verbose,
-- batch files and the progress bar. Tagged no_valgrind: the work happens in
-- child processes.
local H = require "helpers"
local cli = require "cli_install"
local cjson = require "cjson"
local stand_in = H.stand_in

local run, toolzz = cli.run, cli.toolzz

local file = cli.input_file

local function json_file(value)
  return file(cjson.encode(value))
end

local decode, lines_of = cli.decode, cli.lines_of

-- The body the stand-in was last sent, decoded.
local function last_body()
  local last = stand_in.last()
  return last and decode(last.body), last
end

local CALCOM_ARGS = {
  "--set", "title=Calcom", "--set", "unitId=" .. H.UNIT, "--set", "calcomUsername=ana-silva",
  "--set", "timezone=America/Sao_Paulo", "--set", "prompt=30 min only",
  "--set", "checkAvailabilityEnabled=true", "--set", "createBookingEnabled=false",
}

-- An argument list from strings and lists of strings.
local function argv(...)
  local out = {}
  for _, part in ipairs { ... } do
    if type(part) == "table" then
      for _, v in ipairs(part) do out[#out + 1] = v end
    else
      out[#out + 1] = part
    end
  end
  return out
end

describe("toolzz command #no_valgrind", function()
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function() stand_in.reset() end)

  describe("help", function()
    it("prints help and the version, exit 0", function()
      local r = toolzz { "--help" }
      assert.equal(0, r.code)
      for _, word in ipairs { "calcom", "gcal", "batch", "--token-file", "--dry-run", "--verbose",
                              "--output", "--show-secrets", "Exit status" } do
        assert.matches(word, r.out, 1, true)
      end
      r = toolzz { "gcal", "patch", "--help" }
      assert.equal(0, r.code)
      assert.matches("Usage: toolzz gcal patch", r.out, 1, true)
      assert.matches("--set-file PATH=FILE", r.out, 1, true)
      r = toolzz { "batch", "--help" }
      assert.matches("--concurrency", r.out, 1, true)
      r = toolzz { "--version" }
      assert.equal(0, r.code)
      assert.matches("^toolzz " .. require("toolzz")._VERSION:gsub("%.", "%%.") .. " %(Lua 5%.4; libcurl/", r.out)
    end)
  end)

  describe("update", function()
    it("sends the -f file, with --set laid over it, and prints one line of JSON", function()
      local body = H.calcom_body { createBookingEnabled = true, title = "From file" }
      local r = toolzz { "calcom", "update", H.UUID, "-f", json_file(body), "--set", "createBookingEnabled=false" }
      assert.equal(0, r.code, r.err)
      assert.equal("", r.err)
      assert.equal(1, #lines_of(r.out))
      local res = decode(r.out)
      assert.equal(H.UUID, res.id)
      assert.equal(false, res.createBookingEnabled)
      local sent, last = last_body()
      assert.equal("PUT", last.method)
      assert.equal("/api/v1/calcom/integration/" .. H.UUID, last.uri)
      assert.equal(false, sent.createBookingEnabled)
      assert.equal("From file", sent.title)
    end)

    it("reads the body from stdin with -f -", function()
      local r = toolzz({ "gcal", "update", H.UUID, "-f", "-" }, { stdin = cjson.encode(H.gcal_body()) })
      assert.equal(0, r.code, r.err)
      assert.equal(H.UUID, decode(r.out).id)
      assert.equal("Google Calendar", last_body().name)
    end)

    it("parses --set values: types, nesting, null (where the schema allows it), digits kept exact", function()
      local r = toolzz({ "gcal", "update", H.UUID, "-f", "-",
        "--set", "googleCalendar.timezone=Europe/Lisbon",
        "--set", "googleCalendar.googleId=109876543210987654321987",
        "--set", "iconFileId=null",
        "--set", 'outputs=[{"property":"p","type":"string","description":"d","required":true}]',
        "--set", "description=true" }, { stdin = cjson.encode(H.gcal_body()) })
      assert.equal(0, r.code, r.err)
      local sent, last = last_body()
      assert.equal("Europe/Lisbon", sent.googleCalendar.timezone)
      assert.equal("109876543210987654321987", sent.googleCalendar.googleId)
      assert.equal(cjson.null, sent.iconFileId)
      assert.matches('"iconFileId":null', last.body, 1, true)
      assert.equal(true, sent.outputs[1].required)
      assert.equal("true", sent.description) -- a string field keeps the text
    end)

    it("builds a whole body from --set alone", function()
      local r = toolzz(argv("calcom", "update", H.UUID, CALCOM_ARGS))
      assert.equal(0, r.code, r.err)
      assert.same(H.calcom_body { prompt = "30 min only", createBookingEnabled = false }, (last_body()))
    end)

    it("takes a secret from --set-file and never prints it", function()
      local secret = "ya29.rotated-token-from-a-file-0987654321"
      local token_file = file(secret .. "\n")
      local body = H.gcal_body()
      body.googleCalendar.googleToken = nil
      local r = toolzz { "-v", "gcal", "update", H.UUID, "-f", json_file(body),
                         "--set-file", "googleCalendar.googleToken=" .. token_file }
      assert.equal(0, r.code, r.err)
      assert.equal(secret, last_body().googleCalendar.googleToken)
      assert.not_matches(secret, r.out .. r.err, 1, true)
      assert.matches('"googleToken":"[REDACTED]"', r.out, 1, true)
      r = toolzz { "--show-secrets", "gcal", "update", H.UUID, "-f", json_file(body),
                   "--set-file", "googleCalendar.googleToken=" .. token_file }
      assert.matches(secret, r.out, 1, true)
    end)

    it("prints pretty JSON with --output pretty and on a terminal, one line in a pipe", function()
      local r = toolzz(argv("--output", "pretty", "calcom", "update", H.UUID, CALCOM_ARGS))
      assert.equal(0, r.code, r.err)
      assert.matches('^{\n  "apiKey": "%[REDACTED%]",\n  "botId": null,\n', r.out)
      assert.same(decode(r.out).id, H.UUID)
      r = run { args = argv({ "calcom", "update", H.UUID }, CALCOM_ARGS), tty = true }
      assert.equal(0, r.code, r.out)
      assert.matches('{\r?\n  "apiKey": "%[REDACTED%]",\r?\n', r.out)
    end)
  end)

  describe("dry run", function()
    it("sends no write and prints the request with secrets redacted", function()
      local r = toolzz({ "--dry-run", "gcal", "update", H.UUID, "-f", "-" }, { stdin = cjson.encode(H.gcal_body()) })
      assert.equal(0, r.code, r.err)
      assert.equal(0, stand_in.stats().requests)
      local req = decode(r.out)
      assert.equal(true, req.dry_run)
      assert.equal("PUT", req.method)
      assert.equal(H.env.http_url .. "/api/v1/functions/" .. H.UUID, req.url)
      assert.equal("[REDACTED]", req.body.googleCalendar.googleToken)
      assert.equal("Google Calendar", req.body.name)
      assert.matches('"outputs":[]', r.out, 1, true)
      assert.not_matches(H.GOOGLE_TOKEN, r.out .. r.err, 1, true)
      r = toolzz({ "--dry-run", "--show-secrets", "gcal", "update", H.UUID, "-f", "-" },
        { stdin = cjson.encode(H.gcal_body()) })
      assert.equal(H.GOOGLE_TOKEN, decode(r.out).body.googleCalendar.googleToken)
      assert.equal(0, stand_in.stats().requests)
    end)
  end)

  describe("exit statuses", function()
    local update = argv({ "calcom", "update", H.UUID }, CALCOM_ARGS)

    local function expect(code, kind_pattern, r)
      assert.equal(code, r.code, r.out .. r.err)
      assert.equal("", r.out)
      local lines = lines_of(r.err)
      assert.truthy(#lines >= 1)
      assert.matches(kind_pattern, lines[1])
      for _, line in ipairs(lines) do assert.matches("^toolzz: ", line) end
    end

    it("is 1 for http, network, timeout, tls, decode and limit errors, with one line on stderr", function()
      stand_in.faults { status = 404 }
      local r = toolzz(update)
      expect(1, "^toolzz: calcom%.update: http 404: ", r)
      assert.equal(1, #lines_of(r.err))

      local closed = "http://127.0.0.1:" .. H.closed_port()
      expect(1, "^toolzz: calcom%.update: network: ", toolzz(argv({ "--base-url", closed }, update)))

      stand_in.faults { delay = 3 }
      expect(1, "^toolzz: calcom%.update: timeout: ", toolzz(argv({ "--timeout", "0.5", "--retries", "0" }, update)))

      expect(1, "^toolzz: calcom%.update: tls: ",
        toolzz(argv({ "--base-url", H.env.tls_bad_url, "--ca-file", H.env.ca_file }, update)))

      stand_in.faults { body = "not json" }
      expect(1, "^toolzz: calcom%.update: decode: ", toolzz(update))

      stand_in.faults { big = 9 * 1024 * 1024 }
      expect(1, "^toolzz: calcom%.update: limit: ", toolzz(update))
    end)

    it("is 0 over TLS with --ca-file", function()
      local r = toolzz(argv({ "--base-url", H.env.tls_url, "--ca-file", H.env.ca_file }, update))
      assert.equal(0, r.code, r.err)
    end)

    it("is 3 for validation, one line per field path, nothing sent", function()
      local r = toolzz { "gcal", "update", "not-a-uuid", "-f", json_file(H.gcal_body { userId = "x" }),
                         "--set", "googleCalendar.timezone=Mars/Olympus" }
      expect(3, "^toolzz: gcal%.update: validation: id: ", r)
      assert.matches("validation: userId: ", r.err)
      assert.matches("validation: googleCalendar.timezone: ", r.err)
      assert.equal(3, #lines_of(r.err))
      assert.equal(0, stand_in.stats().requests)
    end)

    it("is 4 for configuration errors", function()
      expect(4, "^toolzz: config: no token", toolzz(update, { env = { TOOLZZ_TOKEN = false } }))
      expect(4, "^toolzz: config: ", toolzz(argv({ "--base-url", "http://example.com" }, update)))
      expect(4, "^toolzz: config: %-%-token%-file", toolzz(argv({ "--token-file", "/nonexistent" }, update)))
    end)

    it("is 2 for usage errors, with one line", function()
      for _, args in ipairs {
        { "calcom" }, { "calcom", "get" }, { "calcom", "remove", H.UUID }, { "--retries", "many", "calcom", "get", H.UUID },
        { "calcom", "update", H.UUID }, { "calcom", "update", H.UUID, "--set", "title" },
        { "calcom", "update", H.UUID, "-f", "/nonexistent.json" }, { "batch", "/nonexistent.jsonl" },
        { "calcom", "update", H.UUID, "-f", "-", "--set-file", "prompt=-" },
      } do
        local r = toolzz(args)
        assert.equal(2, r.code, table.concat(args, " ") .. ": " .. r.err)
        assert.equal(1, #lines_of(r.err), r.err)
        assert.matches("^toolzz: .*%(see: toolzz .*%-%-help%)\n$", r.err)
      end
    end)
  end)

  describe("the token", function()
    it("is never taken from an argument, nor echoed", function()
      local r = toolzz { "--token", "argument-token-0123456789", "calcom", "get", H.UUID }
      assert.equal(2, r.code)
      assert.matches("never taken from an argument", r.err, 1, true)
      assert.not_matches("argument-token-0123456789", r.out .. r.err, 1, true)
    end)

    it("comes from --token-file", function()
      local r = toolzz(argv("--token-file", file(H.env.token .. "\n"), "calcom", "update", H.UUID, CALCOM_ARGS),
        { env = { TOOLZZ_TOKEN = false } })
      assert.equal(0, r.code, r.err)
      assert.equal("Bearer " .. H.env.token, stand_in.last().headers.authorization)
    end)

    it("never shows in output, errors or --verbose", function()
      local token = "wrong-token-abcdef0123456789"
      local r = toolzz(argv({ "-v", "calcom", "update", H.UUID }, CALCOM_ARGS),
        { env = { TOOLZZ_TOKEN = token } })
      assert.equal(1, r.code)
      assert.matches("http 401", r.err)
      assert.not_matches(token, r.out .. r.err, 1, true)
      r = toolzz(argv({ "-v", "--dry-run", "calcom", "update", H.UUID }, CALCOM_ARGS))
      assert.not_matches(H.env.token, r.out .. r.err, 1, true)
    end)
  end)

  describe("--verbose", function()
    it("writes one stderr line per attempt: method, URL, status, ms, request id", function()
      stand_in.faults { { status = 503, headers = { ["Retry-After"] = "0" }, request_id = "req-one" } }
      local r = toolzz(argv({ "-v", "--retries", "1", "calcom", "update", H.UUID }, CALCOM_ARGS))
      assert.equal(0, r.code, r.err)
      local lines = lines_of(r.err)
      assert.equal(2, #lines, r.err)
      local url = H.env.http_url .. "/api/v1/calcom/integration/" .. H.UUID
      assert.matches("^toolzz: PUT " .. url:gsub("%p", "%%%0") .. " 503 %d+ ms attempt 1 request%-id req%-one$", lines[1])
      assert.matches("^toolzz: PUT " .. url:gsub("%p", "%%%0") .. " 200 %d+ ms attempt 2 request%-id %x+$", lines[2])
    end)
  end)

  describe("batch", function()
    local function line(op, id, fields)
      return cjson.encode { op = op, id = id, fields = fields }
    end

    it("prints JSON Lines in input order; a bad line fails alone; exit 1", function()
      local text = table.concat({
        line("calcom", H.UUID, H.calcom_body { title = "First" }),
        "",
        "{not json",
        line("gcal", H.UUID, H.gcal_body()),
        line("calcom", "not-a-uuid", H.calcom_body()),
        '{"op":"calcom.remove","id":"' .. H.UUID .. '"}',
        line("calcom", H.UUID, H.calcom_body { title = "Last" }),
      }, "\n") .. "\n"
      local r = toolzz { "batch", file(text), "--concurrency", "2" }
      assert.equal(1, r.code, r.err)
      local results = {}
      for _, l in ipairs(lines_of(r.out)) do results[#results + 1] = decode(l) end
      assert.same({ 1, 3, 4, 5, 6, 7 }, { results[1].line, results[2].line, results[3].line, results[4].line,
                                           results[5].line, results[6].line })
      assert.same({ true, false, true, false, false, true }, { results[1].ok, results[2].ok, results[3].ok,
                                                              results[4].ok, results[5].ok, results[6].ok })
      assert.equal("First", results[1].res.title)
      assert.equal("Last", results[6].res.title)
      assert.equal("validation", results[2].error.kind)
      assert.matches("not JSON", results[2].error.message)
      assert.equal("validation", results[4].error.kind)
      assert.equal("id", results[4].error.fields[1].path)
      assert.matches("unknown op 'calcom.remove'", results[5].error.message, 1, true)
      assert.equal("[REDACTED]", results[3].res.googleCalendarPlugin[1].googleToken)
      assert.not_matches(H.GOOGLE_TOKEN, r.out .. r.err, 1, true)
      assert.matches('^{"line":1,"ok":true,"res":{', r.out)
      assert.matches('\n{"line":3,"ok":false,"error":{', r.out)
      -- stderr: the malformed lines, then the summary; no progress bar in a pipe
      assert.matches("toolzz: line 3: not JSON", r.err, 1, true)
      assert.matches("toolzz: batch: 6 lines, 3 ok, 3 failed in [%d.]+ s\n$", r.err)
      assert.not_matches("ETA", r.err, 1, true)
      assert.not_matches("\r", r.err, 1, true)
    end)

    it("reads - from stdin and exits 0 when every line succeeds", function()
      local text = line("calcom", H.UUID, H.calcom_body()) .. "\r\n" .. line("gcal", H.UUID, H.gcal_body())
      local r = toolzz({ "batch", "-" }, { stdin = text })
      assert.equal(0, r.code, r.err)
      assert.equal(2, #lines_of(r.out))
      assert.equal(2, stand_in.stats().requests)
    end)

    it("draws a progress bar on a terminal's stderr, with failures so far", function()
      local items = {}
      for i = 1, 12 do
        items[i] = i % 4 == 0 and line("calcom", "bad-id", H.calcom_body()) or line("calcom", H.UUID, H.calcom_body())
      end
      local out = cli.work() .. "/progress.jsonl"
      local r = run { args = { "batch", file(table.concat(items, "\n")), "--concurrency", "1" }, tty = true,
                      shell = ">" .. cli.quote(out) }
      assert.equal(1, r.code, r.out)
      assert.matches("\r\27%[K%[#+%] 12/12 100%%", r.out)
      assert.matches("ETA", r.out, 1, true)
      assert.matches("3 failed", r.out, 1, true)
      assert.matches("toolzz: batch: 12 lines, 9 ok, 3 failed", r.out, 1, true)
      assert.equal(12, #lines_of(cli.read_file(out)))
    end)
  end)

  describe("client.batch on_progress", function()
    it("gets each item's index and result", function()
      local client = H.client()
      local seen = {}
      local results = client.batch({ { "calcom", H.UUID, H.calcom_body() }, { "calcom", "bad", H.calcom_body() } },
        { on_progress = function(done, total, index, result) seen[#seen + 1] = { done, total, index, result } end })
      client:close()
      assert.equal(2, #seen)
      local by_index = {}
      for _, s in ipairs(seen) do by_index[s[3]] = s end
      assert.equal(results[1], by_index[1][4])
      assert.equal(results[2], by_index[2][4])
      assert.equal("validation", by_index[2][4].err.kind)
      assert.equal(2, seen[2][1])
      assert.equal(2, seen[1][2])
    end)
  end)
end)

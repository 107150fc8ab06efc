-- A second hostile review (review2): each spec here failed on main when it
-- was written and names the defect it shows. Hostile answers are played back
-- by the stand-in's faults. The command's specs run the installed `toolzz`
-- (cli_install) as a subprocess; they are tagged no_valgrind.
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in

-- Text with its control characters shown as \ddd (never sent to the terminal).
local function shown(text)
  return (text:gsub("%c", function(c) return "\\" .. c:byte() end))
end

describe("review2", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  -- the library ---------------------------------------------------------------

  it("client.batch does not silently skip the items after a nil hole in the list", function()
    local id = S.put_record("function", H.gcal_body())
    local before = S.stats().requests
    local results, err = client.batch({ { "gcal.get", id }, nil, { "gcal.duplicate", id } })
    if results == nil then -- refusing the whole list is a fix too: then nothing is sent
      assert.equals("validation", err.kind)
      assert.equals(before, S.stats().requests)
      return
    end
    assert.is_table(results[1].res)
    -- the hole is not a call: an error of its own at [2], never a silent gap
    assert.is_table(results[2], "results[2] is missing: the hole got no error")
    assert.equals("validation", results[2].err and results[2].err.kind)
    -- and the item after it ran like any other (here a write: a duplicate)
    assert.is_table(results[3], "results[3] is missing: the third item (a write) was never run, and no error says so")
    assert.is_table(results[3].res)
    assert.equals(before + 2, S.stats().requests)
  end)

  it("client.batch refuses a list with more holes than items (a key of 1e9) as a validation error, sending nothing", function()
    local before = S.stats().requests
    local results, err = client.batch({ { "calcom.get", H.UUID }, [1e9] = { "calcom.get", H.UUID } })
    assert.is_nil(results)
    assert.equals("validation", err.kind)
    assert.equals(before, S.stats().requests)
  end)

  it("a call made from a finaliser while another call's body is encoded does not corrupt that body", function()
    -- The encoder kept its buffers in one scratch userdata; a finaliser that
    -- runs during a GC step inside core.encode and encodes too (any toolzz
    -- call) reset them under the outer call. valgrind showed a read of freed
    -- key memory in put_string (json.c) as well. (Lua 5.1 allocates nothing
    -- while encoding this body, so no finaliser runs inside it there.)
    -- It runs in a fresh interpreter (the same one, with this one's paths and
    -- environment: under ASan, ASan too): the collector is made to run
    -- constantly, which costs in proportion to the heap, and the whole
    -- suite's heap made it take minutes under ASan.
    local code = [[
      local H = require "helpers"
      local c = H.client { dry_run = true, strict = false }
      local outer = H.gcal_body { name = "outer" }
      for i = 1, 800 do outer[("extraField%03d_"):format(i) .. ("x"):rep(48)] = i end -- long keys: fresh strings
      collectgarbage("stop")
      local expected = assert(c.gcal.update(H.UUID, outer)).body
      collectgarbage("restart")
      local inner_calls = 0
      local function arm()
        local function finaliser()
          inner_calls = inner_calls + 1
          local other = H.gcal_body { name = "from-finaliser" }
          for i = 1, 80 do other[("other%d_%d_"):format(inner_calls, i) .. ("z"):rep(48)] = i end
          c.gcal.update(H.UUID, other)
        end
        if rawget(_G, "newproxy") then
          getmetatable(newproxy(true)).__gc = finaliser
        else
          setmetatable({}, { __gc = finaliser })
        end
      end
      collectgarbage("setpause", 1)
      collectgarbage("setstepmul", 1000)
      local corrupt = 0
      for _ = 1, 80 do
        for _ = 1, 5 do arm() end
        local res = c.gcal.update(H.UUID, outer)
        if not res or res.body ~= expected then corrupt = corrupt + 1 end
      end
      c:close()
      io.write("corrupt ", corrupt, " inner ", inner_calls, "\n")
    ]]
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(("package.path = %q; package.cpath = %q\n"):format(package.path, package.cpath), code)
    f:close()
    local p = assert(io.popen(H.flavour .. " " .. script .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    local corrupt, inner_calls = out:match("corrupt (%d+) inner (%d+)")
    assert.is_string(corrupt, out)
    assert.is_true(tonumber(inner_calls) > 0, "no finaliser ran during the test")
    assert.equals(0, tonumber(corrupt), corrupt .. " of 80 bodies came out corrupted (" .. inner_calls .. " finaliser calls)")
  end)

  describe("an option string with CR, LF or NUL is a config error of toolzz.new, not a Lua error raised by every call", function()
    for _, case in ipairs {
      { "proxy", "http://proxy.example:3128\r\nX-Injected: 1" },
      { "ca_path", "/etc/ssl/certs\n" },
      { "ca_file", "\0" }, -- io.open stops at the NUL
    } do
      it(case[1], function()
        local toolzz = require "toolzz"
        local opts = { token = H.env.token, base_url = H.env.http_url, converflow_url = H.env.cf_http_url,
                       retries = 0, timeout = 2 }
        opts[case[1]] = case[2]
        if case[1] == "ca_file" then opts.ca_file = H.env.ca_file .. case[2] end
        local c, err = toolzz.new(opts)
        if not c then
          assert.equals("config", err.kind)
          return
        end
        local ok, res, call_err = pcall(c.gcal.get, H.UUID)
        c:close()
        assert.is_true(ok, "the call raised: " .. tostring(res))
        assert.is_nil(res)
        assert.equals("config", call_err and call_err.kind)
      end)
    end
  end)

  it("retry jitter differs between processes (5.1/LuaJIT never seed math.random: every process waits alike)", function()
    -- Two fresh processes of this interpreter (as two cron jobs, or nginx
    -- workers forked from one master) pick their backoff waits.
    local code = ("package.path = %q; package.cpath = %q; local r = require('toolzz.retry'); "
      .. "io.write(r.backoff(4), ' ', r.backoff(5), ' ', r.backoff(6))"):format(package.path, package.cpath)
    local function waits()
      local p = assert(io.popen(H.flavour .. " -e '" .. code:gsub("'", "'\\''") .. "'"))
      local out = p:read("*a")
      p:close()
      assert.matches("^[%d%.e%-]+ [%d%.e%-]+ [%d%.e%-]+$", out)
      return out
    end
    local first, second = waits(), waits()
    assert.are_not.equal(first, second, "two processes chose the same 'random' waits: " .. first)
  end)

  it("retry jitter neither draws from nor reseeds the application's math.random; waits stay in [0, ceiling)", function()
    local retry = require "toolzz.retry"
    math.randomseed(42)
    local expected = { math.random(), math.random() }
    math.randomseed(42)
    for attempt = 1, 200 do
      local w = retry.backoff(attempt % 6 + 1)
      local ceiling = math.min(retry.MAX_DELAY, retry.BASE_DELAY * 2 ^ (attempt % 6))
      assert.is_true(w >= 0 and w < ceiling)
    end
    assert.same(expected, { math.random(), math.random() })
  end)

  it("cosockets: a handshake failure without a certificate verdict is network ('18: handshake failed' too)", function()
    local kind = require("toolzz.ngx").handshake_failure_kind
    assert.equals("network", kind("handshake failed"))
    assert.equals("network", kind("18: handshake failed")) -- seen from lua-nginx-module after a reset
    assert.equals("network", kind("closed"))
    assert.equals("tls", kind("18: self-signed certificate"))
    assert.equals("tls", kind("20: unable to get local issuer certificate"))
    assert.equals("tls", kind("certificate host mismatch"))
  end)

  it("non-strict: an apiKey inside an unknown object is a secret too (scrubbed from the error)", function()
    local c = H.client { strict = false }
    S.faults { { status = 400, body = cjson.encode { message = "bad apiKey " .. H.API_KEY } } }
    local res, err = c.calcom.update(H.UUID, H.calcom_body { meta = { apiKey = H.API_KEY } })
    c:close()
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.is_nil(H.contains_secret(err, { H.API_KEY }), "the error carries the apiKey: " .. tostring(err))
  end)

  it("a connection reset during the TLS handshake (a network fault, no certificate problem) is retried for a GET", function()
    -- a peer that reads a few bytes of the ClientHello and resets the connection
    local port, stop = H.handshake_reset_server()
    local attempts = 0
    local c = H.client { base_url = "https://localhost:" .. tostring(port), ca_file = H.env.ca_file,
                         retries = 2, on_request = function() attempts = attempts + 1 end }
    local res, err = c.gcal.get(H.UUID)
    c:close()
    stop()
    assert.is_nil(res)
    assert.equals(3, attempts, "attempts made (retries = 2); the error: " .. tostring(err))
    assert.equals(3, err.attempts)
    assert.equals("network", err.kind) -- "connection reset" (CONTRACT: network), not a handshake that failed on its merits
  end)
end)

describe("review2: the toolzz command #no_valgrind", function()
  local cli = require "cli_install"
  local ID = H.UUID
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function() S.reset() end)

  -- A record the server answers to a GET that looks like a dry-run result:
  -- its "body" holds terminal escapes and a forged result line.
  local FORGED_LINE = '{"line":2,"ok":true,"res":{"forged":true}}'
  local function forged_record()
    return cjson.encode {
      dry_run = true, method = "PUT", url = "x",
      body = "\27]0;owned\7\27[31mred\27[0m\n" .. FORGED_LINE,
    }
  end

  it("a server record shaped like a dry-run result is not printed raw (terminal escapes, forged lines)", function()
    S.faults { { body = forged_record() } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find("\27", 1, true), "an ESC byte from the server reached stdout: " .. shown(r.out))
    assert.is_nil(r.out:find("\7", 1, true), "a BEL byte from the server reached stdout")
    assert.equals(1, #cli.lines_of(r.out), "one record printed as more than one line: " .. shown(r.out))
    local printed = cli.decode(r.out)
    assert.equals("table", type(printed))
  end)

  it("C1 control characters from the server (U+009B, a CSI on some terminals) never reach a table or an error line", function()
    local CSI = "\194\155"
    S.faults { { body = cjson.encode { id = ID, name = "x" .. CSI .. "31mred", unityId = ID } } }
    local r = cli.toolzz { "--output", "table", "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find(CSI, 1, true), "U+009B reached the table: " .. shown(r.out))
    S.faults { { status = 400, body = cjson.encode { message = "bad" .. CSI .. "2Jname" } } }
    r = cli.toolzz { "gcal", "get", ID }
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("bad", 1, true), r.err)
    assert.is_nil(r.err:find(CSI, 1, true), "U+009B reached the error line: " .. shown(r.err))
  end)

  it("a batch result shaped like a dry-run result cannot forge result lines", function()
    S.faults { { body = forged_record() } }
    local r = cli.toolzz({ "batch", "-" }, { stdin = cjson.encode { op = "gcal.get", id = ID } .. "\n" })
    local lines = cli.lines_of(r.out)
    assert.equals(1, #lines, "a one-line batch printed " .. #lines .. " result lines: " .. shown(r.out))
    assert.is_nil(r.out:find(FORGED_LINE, 1, true))
    assert.is_nil(r.out:find("\27", 1, true), "an ESC byte from the server reached stdout")
    assert.equals(1, cli.decode(lines[1]).line)
  end)

  it("a batch prints an empty list result as [] like the list command does (not {})", function()
    local unit = cli.uuid()
    local lines = cjson.encode { op = "calcom.list", id = unit } .. "\n" .. cjson.encode { op = "gcal.list", id = unit } .. "\n"
    local r = cli.toolzz({ "batch", "-" }, { stdin = lines })
    assert.equals(0, r.code, r.err)
    local out = cli.lines_of(r.out)
    assert.equals(2, #out)
    assert.equals('{"line":1,"ok":true,"res":[]}', out[1])
    assert.equals('{"line":2,"ok":true,"res":[]}', out[2])
    assert.equals("[]\n", cli.toolzz({ "calcom", "list", unit }).out) -- as the list command prints it
  end)

  it("an empty JSON array the user wrote inside a -f body is sent as [] (not turned into {})", function()
    local body = H.gcal_body()
    body.outputs = { { property = "slots", type = "array", description = "free slots", required = true, enum = {} } }
    local text = cjson.encode(body):gsub('"enum":{}', '"enum":[]')
    assert.truthy(text:find('"enum":[]', 1, true))
    local r = cli.toolzz { "gcal", "update", ID, "-f", cli.input_file(text) }
    assert.equals(0, r.code, r.err)
    local sent = S.last().body
    assert.truthy(sent:find('"enum":[]', 1, true), "the user's [] was sent as: " .. tostring(sent:match('"enum":[^,}]*.')))
  end)

  describe("README recipes exit non-zero when their list call fails (the pipe into jq hides it)", function()
    local f = assert(io.open(H.root .. "/README.md", "rb"))
    local readme = f:read("*a")
    f:close()
    for _, name in ipairs { "bookings-off", "rotate-google-token", "move-time-zone" } do
      it(name, function()
        local recipe = readme:match("<!%-%- recipe: " .. name:gsub("%-", "%%-") .. " %-%->\n```sh\n(.-)\n```")
        assert.is_string(recipe, "README has no recipe " .. name)
        local wrong = "expired-api-token-0123456789" -- the stand-in answers 401 Unauthorized
        local r = cli.shell(recipe .. "\n", {
          UNIT = cli.uuid(), NEW_TZ = "UTC", TOOLZZ_TOKEN = wrong,
          TOOLZZ_TOKEN_FILE = cli.write_file(cli.work() .. "/wrong-token", wrong .. "\n"),
          GOOGLE_TOKEN_FILE = cli.write_file(cli.work() .. "/google-token", "ya29.fresh-google-token-000\n"),
        })
        assert.matches("401", r.err, 1, true) -- the list call did fail
        assert.are_not.equal(0, r.code, name .. " exits 0 although its list call failed: " .. r.err)
      end)
    end
  end)

  it("the API token in a key of a response is never printed", function()
    local answer = '{"id":"' .. ID .. '","sessions":{"Bearer ' .. H.env.token .. '":{"ok":true}}}'
    S.faults { { body = answer } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil((r.out .. r.err):find(H.env.token, 1, true), "the token was printed: " .. r.out)
  end)

  it("a googleToken field whose value is an object (not a string) is still printed [REDACTED]", function()
    local answer = cjson.encode { id = ID, googleCalendarPlugin = { { googleToken = { access_token = H.GOOGLE_TOKEN } } } }
    S.faults { { body = answer } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find(H.GOOGLE_TOKEN, 1, true), "the googleToken was printed: " .. r.out)
  end)

  it("a googleToken and the API token nested deeper than 64 levels in a response are never printed", function()
    local deep = { googleToken = H.GOOGLE_TOKEN, note = "Bearer " .. H.env.token }
    for _ = 1, 70 do deep = { inner = deep } end
    S.faults { { body = cjson.encode { id = ID, deep = deep } } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.is_nil((r.out .. r.err):find(H.GOOGLE_TOKEN, 1, true), "the googleToken was printed")
    assert.is_nil((r.out .. r.err):find(H.env.token, 1, true), "the API token was printed")
  end)
end)

describe("review2: toolzz batch output", function()
  before_each(function() S.reset() end)

  it("writes each result line as soon as it and the lines before it are done, not only at the end", function()
    local cli = require "toolzz.cli"
    local core = require "toolzz.core"
    local id = H.UUID
    S.faults {
      { status = 200, body = '{"id":"first"}' },
      { delay = 0.8, status = 200, body = '{"id":"second"}' },
    }
    local batch = ('{"op":"gcal.get","id":"%s"}\n{"op":"gcal.get","id":"%s"}\n'):format(id, id)
    local writes = {}
    local env = { TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = H.env.http_url,
                  TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url }
    local sys = {
      stdin = { read = function() local t = batch batch = "" return t end },
      stdout = { write = function(_, ...) writes[#writes + 1] = { text = table.concat { ... }, at = core.now() } end,
                 flush = function() end },
      stderr = { write = function() end, flush = function() end },
      getenv = function(name) return env[name] end,
      isatty = function() return false end,
      now = core.now,
    }
    local code = cli.main({ "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url,
                            "batch", "--concurrency", "1", "-" }, sys)
    local ended = core.now()
    local all = {}
    for _, w in ipairs(writes) do all[#all + 1] = w.text end
    assert.equals(0, code, table.concat(all))
    local first
    for _, w in ipairs(writes) do
      if w.text:find('"line":1', 1, true) then first = w break end
    end
    assert.is_table(first, "no line 1 was written")
    assert.truthy(first.text:find("first", 1, true), first.text)
    assert.is_true(ended - first.at > 0.5,
      ("line 1 was written %.2f s before the batch ended (the second item took 0.8 s)"):format(ended - first.at))
  end)
end)

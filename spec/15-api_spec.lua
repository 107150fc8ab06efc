-- The public surface: toolzz.new and its options, module-level calls from the
-- environment, both call forms, what a success returns, defaults, closing.
local H = require "helpers"
local toolzz = require "toolzz"
local cjson = require "cjson"

local stand_in = H.stand_in
local TOKEN = H.env.token
local HTTP_URL = H.env.http_url
local PORT = HTTP_URL:match(":(%d+)$")

-- ---- helpers ----------------------------------------------------------------

-- toolzz.new that must fail with a config error (and not raise).
local function config_error(opts)
  local ok, client, err = pcall(toolzz.new, opts)
  assert.is_true(ok, "toolzz.new raised: " .. tostring(client))
  assert.is_nil(client)
  assert.is_table(err)
  assert.equals("config", err.kind, tostring(err))
  assert.is_string(err.message)
  assert.is_nil(tostring(err):find("[\r\n]"))
  return err
end

-- toolzz.new that must succeed.
local function new_ok(opts)
  local ok, client, err = pcall(toolzz.new, opts)
  assert.is_true(ok, "toolzz.new raised: " .. tostring(client))
  assert.is_nil(err, err and tostring(err))
  assert.is_table(client)
  return client
end

local function options(over)
  local o = { token = TOKEN, base_url = HTTP_URL, retries = 0, timeout = 5 }
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

-- One call that must succeed; returns the response, the raw wire body and the request.
local function call_ok(fn, ...)
  stand_in.reset()
  local ok, res, err = pcall(fn, ...)
  assert.is_true(ok, "the call raised: " .. tostring(res))
  assert.is_nil(err, err and tostring(err))
  assert.is_table(res)
  local last = stand_in.last()
  assert.equals(1, stand_in.stats().requests)
  return res, last.body, last
end

local function show(v)
  if type(v) == "string" then
    return '"' .. v:gsub("%c", function(c) return "\\" .. c:byte() end) .. '"'
  end
  return type(v) == "table" and "a table" or tostring(v)
end

-- ---- child processes (module-level calls read the environment) --------------

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local cwd = os.getenv("PWD")
  if not cwd then
    local p = io.popen("pwd")
    cwd = p:read("*l")
    p:close()
  end
  return cwd .. "/" .. path
end

local ROOT = absolute(H.root)
local CPATH_DIR = absolute(os.getenv("TOOLZZ_CPATH_DIR") or (H.root .. "/build/" .. H.flavour))
local INTERPRETER = H.flavour -- lua5.4, lua5.1 or luajit: the one running these specs

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- What every child script starts with: load toolzz, report results as lines.
local PRELUDE = [[
local toolzz = require "toolzz"
local function report(label, ok, res, err)
  if not ok then io.write(label, " raised\n") return end
  if res then io.write(label, " ok ", tostring(res.id), "\n")
  else io.write(label, " err ", tostring(err and err.kind), " ", (tostring(err):gsub("\n", " ")), "\n") end
end
local UUID = "]] .. H.UUID .. [["
local CALCOM = { title = "T", unitId = "]] .. H.UNIT .. [[", calcomUsername = "ana", timezone = "UTC",
  prompt = "p", checkAvailabilityEnabled = true, createBookingEnabled = true }
]]

-- Run code in a fresh interpreter with TOOLZZ_TOKEN and TOOLZZ_BASE_URL unset
-- except as env says; returns { label = "ok <id>" | "err <kind> ..." | "raised" }.
local function run_child(env, code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(PRELUDE, code)
  f:close()
  local parts = { "env", "-u", "TOOLZZ_TOKEN", "-u", "TOOLZZ_BASE_URL", "-u", "TOOLZZ_CONVERFLOW_URL",
    "-u", "LUA_PATH_5_4", "-u", "LUA_CPATH_5_4",
    shell_quote("LUA_PATH=" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
    shell_quote("LUA_CPATH=" .. CPATH_DIR .. "/?.so;;") }
  for name, value in pairs(env) do parts[#parts + 1] = shell_quote(name .. "=" .. value) end
  parts[#parts + 1] = INTERPRETER
  parts[#parts + 1] = shell_quote(script)
  parts[#parts + 1] = "2>&1"
  local pipe = assert(io.popen(table.concat(parts, " ")))
  local out = pipe:read("*a")
  pipe:close()
  os.remove(script)
  local results = {}
  for label, rest in out:gmatch("(%S+) ([^\n]*)\n") do results[label] = rest end
  results._output = out
  return results
end

local function child_ok(results, label, id)
  assert.equals("ok " .. (id or H.UUID), results[label], results._output)
end

local function child_err(results, label, kind)
  assert.matches("^err " .. kind .. " ", results[label] or "", nil, false)
  assert.is_truthy(results[label], results._output)
end

-- ---- specs ----------------------------------------------------------------------

describe("toolzz.new", function()
  it("returns a client with both endpoints", function()
    local client = new_ok(options())
    assert.is_function(client.calcom.update)
    assert.is_function(client.gcal.update)
    client:close()
  end)

  it("refuses an unknown option with a config error naming it", function()
    local err = config_error(options { tiemout = 5 })
    assert.matches("tiemout", err.message)
    config_error(options { Token = TOKEN })
  end)

  it("refuses options that are not a table", function()
    config_error("token")
    config_error(42)
    config_error(true)
  end)

  describe("token", function()
    it("refuses an empty token", function()
      config_error(options { token = "" })
    end)

    it("refuses a token that is not a string", function()
      config_error(options { token = 12345 })
      config_error(options { token = { TOKEN } })
    end)

    for _, token in ipairs { "secret-tok\r", "secret-tok\n", "secret-tok\r\nX-Injected: 1", "secret\0tok",
      "secret\ttok", "secret\27tok", "secret\1tok", "\nsecret-tok", "secret\127tok" } do
      it("refuses the token " .. show(token) .. " with CR, LF, NUL or another control character", function()
        local err = config_error(options { token = token })
        assert.is_nil(tostring(err):find("secret", 1, true))
        assert.is_nil(err.message:find("secret", 1, true))
      end)
    end
  end)

  describe("base_url", function()
    for _, url in ipairs { "", "not a url", "chat.api.toolzz.com.br", "//chat.api.toolzz.com.br",
      "ftp://localhost", "file:///etc/passwd", "https://", "https:// chat.api.toolzz.com.br",
      "https://chat.api.toolzz.com.br:0", "https://chat.api.toolzz.com.br:99999", "https://chat.api.toolzz.com.br:abc",
      "https://chat.api.toolzz.com.br/api?x=1", "https://chat.api.toolzz.com.br/#frag",
      "https://user:pw@chat.api.toolzz.com.br", "https://chat.api.toolzz.com.br\r\n", "https://chat\0.example.com" } do
      it("refuses the malformed " .. show(url), function()
        config_error(options { base_url = url })
      end)
    end

    for _, url in ipairs { "http://chat.api.toolzz.com.br", "http://example.com:80", "http://10.0.0.1",
      "http://192.168.1.10:8080", "http://0.0.0.0:" .. PORT, "http://127.0.0.1.example.com",
      "http://localhost.example.com", "http://[::2]:80", "http://127.0.0.1@example.com" } do
      it("refuses plain http to the non-loopback " .. url, function()
        config_error(options { base_url = url })
      end)
    end

    for _, url in ipairs { "http://localhost:" .. PORT, "http://127.0.0.1:" .. PORT, "http://127.9.8.7:1",
      "http://[::1]:1", "http://localhost", "https://chat.api.toolzz.com.br", "https://example.com:8443/prefix" } do
      it("accepts " .. url, function()
        new_ok(options { base_url = url }):close()
      end)
    end

    it("really talks to http://localhost", function()
      local client = new_ok(options { base_url = "http://localhost:" .. PORT })
      local res = call_ok(client.calcom.update, H.UUID, H.calcom_body())
      assert.equals(H.UUID, res.id)
      client:close()
    end)

    it("ignores a trailing slash", function()
      local client = new_ok(options { base_url = HTTP_URL .. "/" })
      local _, _, last = call_ok(client.gcal.update, H.UUID, H.gcal_body())
      assert.equals("/api/v1/functions/" .. H.UUID, last.uri)
      client:close()
    end)
  end)

  describe("other options must have the right type and range", function()
    local bad = {
      { timeout = "30" }, { timeout = 0 }, { timeout = -1 }, { timeout = 0 / 0 }, { timeout = true },
      { connect_timeout = "10" }, { connect_timeout = -5 }, { connect_timeout = 0 },
      { retries = "2" }, { retries = -1 }, { retries = 1.5 }, { retries = 0 / 0 },
      { strict = "false" }, { strict = 0 }, { defaults = "unitId" }, { defaults = 1 },
      { max_response_bytes = 0 }, { max_response_bytes = -1 }, { max_response_bytes = "8M" },
      { on_request = "print" }, { on_response = {} }, { user_agent = 1 }, { user_agent = "app\r\nX-Evil: 1" },
      { ca_file = 1 }, { ca_path = false }, { proxy = true },
    }
    for _, over in ipairs(bad) do
      local name, value = next(over)
      it("refuses " .. name .. " = " .. show(value), function()
        local err = config_error(options(over))
        assert.matches(name, err.message, 1, true)
      end)
    end

    it("accepts every documented option with a sensible value", function()
      local client = new_ok {
        token = TOKEN, base_url = HTTP_URL, timeout = 5, connect_timeout = 2, retries = 0,
        defaults = {}, strict = false, max_response_bytes = 1024 * 1024,
        ca_file = H.env.ca_file, proxy = "", user_agent = "my-app/1.0",
        on_request = function() end, on_response = function() end,
      }
      local res = call_ok(client.calcom.update, H.UUID, H.calcom_body())
      assert.equals(H.UUID, res.id)
      client:close()
    end)
  end)
end)

describe("module-level calls (default client from the environment)", function()
  it("cover every call of Part 2, reading TOOLZZ_CONVERFLOW_URL for Cal.com reads and creates", function()
    stand_in.reset { empty = true } -- no seed record: the gcal get of UUID is a 404
    local results = run_child({ TOOLZZ_TOKEN = TOKEN, TOOLZZ_BASE_URL = HTTP_URL,
                                TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url }, [[
      local body = { apiKey = "cal_live_key_0123456789" }
      for k, v in pairs(CALCOM) do body[k] = v end
      local created = assert(toolzz.calcom.create(body))
      report("create", pcall(function() return created end))
      report("get", pcall(toolzz.calcom.get, created.id))
      report("colon_get", pcall(function() return toolzz.calcom:get(created.id) end))
      report("list", pcall(function()
        local list, err = toolzz.calcom.list(CALCOM.unitId)
        return list and { id = #list } or nil, err
      end))
      report("patch", pcall(toolzz.calcom.patch, created.id, { prompt = "new" }))
      report("gcal_get", pcall(toolzz.gcal.get, UUID))
    ]])
    assert.matches("^ok ", results.create or "", nil, false)
    local id = results.create:match("^ok (%S+)")
    child_ok(results, "get", id)
    child_ok(results, "colon_get", id)
    child_ok(results, "list", "1")
    child_ok(results, "patch", id)
    child_err(results, "gcal_get", "http") -- never created: 404 from the base_url host
  end)


  it("use TOOLZZ_TOKEN and TOOLZZ_BASE_URL", function()
    stand_in.reset()
    local results = run_child({ TOOLZZ_TOKEN = TOKEN, TOOLZZ_BASE_URL = HTTP_URL }, [[
      io.write("flavour ", rawget(_G, "jit") and "luajit" or _VERSION, "\n")
      report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
      report("colon", pcall(function() return toolzz.calcom:update(UUID, CALCOM) end))
      report("new", pcall(function()
        local c, err = toolzz.new()
        if not c then return nil, err end
        return c.calcom.update(UUID, CALCOM)
      end))
    ]])
    assert.equals(rawget(_G, "jit") and "luajit" or _VERSION, results.flavour, results._output)
    child_ok(results, "calcom")
    child_ok(results, "colon")
    child_ok(results, "new")
    assert.equals(3, stand_in.stats().requests)
    assert.equals("Bearer " .. TOKEN, stand_in.last().headers.authorization)
  end)

  it("send the token from the environment (a wrong one gets a 401)", function()
    stand_in.reset()
    local results = run_child({ TOOLZZ_TOKEN = "not-the-right-token", TOOLZZ_BASE_URL = HTTP_URL }, [[
      report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
    ]])
    child_err(results, "calcom", "http")
    assert.equals("Bearer not-the-right-token", stand_in.last().headers.authorization)
  end)

  it("fail with a config error, not a Lua error, when TOOLZZ_TOKEN is missing", function()
    stand_in.reset()
    local results = run_child({ TOOLZZ_BASE_URL = HTTP_URL }, [[
      report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
      report("gcal", pcall(toolzz.gcal.update, UUID, {}))
      report("new", pcall(toolzz.new))
      report("new_empty", pcall(toolzz.new, {}))
    ]])
    child_err(results, "calcom", "config")
    child_err(results, "gcal", "config")
    child_err(results, "new", "config")
    child_err(results, "new_empty", "config")
    assert.equals(0, stand_in.stats().requests)
  end)

  it("refuse a TOOLZZ_TOKEN with CR/LF", function()
    stand_in.reset()
    local results = run_child({ TOOLZZ_TOKEN = TOKEN .. "\r\nX-Injected: 1", TOOLZZ_BASE_URL = HTTP_URL }, [[
      report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
    ]])
    child_err(results, "calcom", "config")
    assert.equals(0, stand_in.stats().requests)
  end)

  it("refuse a TOOLZZ_BASE_URL with plain http to a remote host", function()
    local results = run_child({ TOOLZZ_TOKEN = TOKEN, TOOLZZ_BASE_URL = "http://example.com" }, [[
      report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
    ]])
    child_err(results, "calcom", "config")
  end)

  it("refuse an empty or bad TOOLZZ_BASE_URL / TOOLZZ_CONVERFLOW_URL, naming the variable (never the default host)", function()
    for _, case in ipairs {
      { TOOLZZ_BASE_URL = "" }, { TOOLZZ_CONVERFLOW_URL = "" }, { TOOLZZ_BASE_URL = "chat.api.toolzz.com.br" },
    } do
      local name = next(case)
      case.TOOLZZ_TOKEN = TOKEN
      local results = run_child(case, [[
        local c, err = toolzz.new()
        io.write("new ", c and "ok" or ("err " .. err.kind .. " " .. err.message), "\n")
      ]])
      assert.matches("^err config ", results.new or "", nil, false)
      assert.matches(name, results.new, 1, true)
      assert.matches("environment", results.new, 1, true)
    end
  end)

  it("survive a no_proxy / NO_PROXY with CR or LF in it (libcurl would refuse the setting on every call)", function()
    for _, name in ipairs { "no_proxy", "NO_PROXY" } do
      local results = run_child({ TOOLZZ_TOKEN = TOKEN, TOOLZZ_BASE_URL = HTTP_URL, [name] = "example.com\r\nX: 1" }, [[
        report("calcom", pcall(toolzz.calcom.update, UUID, CALCOM))
      ]])
      child_ok(results, "calcom")
    end
  end)

  it("default to https://chat.api.toolzz.com.br without TOOLZZ_BASE_URL", function()
    local results = run_child({ TOOLZZ_TOKEN = TOKEN }, [[
      local c = toolzz.new()
      io.write("url ", tostring(c and c.base_url), "\n")
      io.write("str ", tostring(c), "\n")
    ]])
    assert.equals("https://chat.api.toolzz.com.br", results.url, results._output)
    assert.matches("chat.api.toolzz.com.br", results.str, 1, true)
  end)

  it("lose to explicit token and base_url options", function()
    stand_in.reset()
    local results = run_child({ TOOLZZ_TOKEN = "wrong-token", TOOLZZ_BASE_URL = "http://example.com" }, [[
      report("new", pcall(function()
        local c, err = toolzz.new { token = "]] .. TOKEN .. [[", base_url = "]] .. HTTP_URL .. [[" }
        if not c then return nil, err end
        return c.calcom.update(UUID, CALCOM)
      end))
    ]])
    child_ok(results, "new")
    assert.equals("Bearer " .. TOKEN, stand_in.last().headers.authorization)
  end)
end)

describe("calls", function()
  local client
  before_each(function() client = H.client() end)
  after_each(function() client:close() end)

  it("work in the dot and the colon form", function()
    local res, _, last = call_ok(client.calcom.update, H.UUID, H.calcom_body { title = "dot" })
    assert.equals("dot", res.title)
    assert.equals("/api/v1/calcom/integration/" .. H.UUID, last.uri)
    res, _, last = call_ok(function() return client.calcom:update(H.UUID, H.calcom_body { title = "colon" }) end)
    assert.equals("colon", res.title)
    assert.equals("PUT", last.method)
    res, _, last = call_ok(client.gcal.update, H.UUID, H.gcal_body { name = "dot" })
    assert.equals("dot", res.name)
    assert.equals("/api/v1/functions/" .. H.UUID, last.uri)
    res = call_ok(function() return client.gcal:update(H.UUID, H.gcal_body { name = "colon" }) end)
    assert.equals("colon", res.name)
  end)

  it("return the decoded response as a table", function()
    local res = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    assert.equals(H.UUID, res.id)
    assert.equals("Calcom", res.title)
    assert.equals("America/Sao_Paulo", res.timezone)
    assert.is_true(res.createBookingEnabled)
    assert.is_true(res.isActive)
    assert.equals(H.UNIT, res.unitId)
  end)

  it("decode JSON null to toolzz.null (cjson.null)", function()
    local res = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    assert.equals(toolzz.null, res.botId)
    assert.equals(cjson.null, res.botId)
    assert.equals(toolzz.null, res.defaultEventTypeId)
    assert.equals(toolzz.null, res.defaultEventTypeSlug)
    res = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    assert.equals(toolzz.null, res.iconFileId)
    assert.equals(toolzz.null, res.googleCalendarPlugin[1].notificationType)
  end)

  it("decode arrays to sequences and an empty array to an empty table", function()
    local res = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    assert.equals(1, #res.googleCalendarPlugin)
    assert.equals("109876543210987654321", res.googleCalendarPlugin[1].googleId)
    for _, name in ipairs { "discordPlugin", "telegramPlugin", "outputs" } do
      assert.is_table(res[name], name)
      assert.is_nil(next(res[name]), name)
    end
  end)

  it("accept a response edited and sent back, outputs still [] on the wire", function()
    local res = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    local plugin = res.googleCalendarPlugin[1]
    local body = {
      name = res.name .. " (edited)", description = res.description, iconFileId = res.iconFileId,
      outputs = res.outputs, type = res.type, userId = res.userId, unityId = res.unityId,
      googleCalendar = {
        googleId = plugin.googleId, calendarId = plugin.calendarId, timezone = "UTC",
        notificationContent = plugin.notificationContent, googleToken = plugin.googleToken,
        googleUser = plugin.googleUser,
      },
    }
    local again, raw = call_ok(client.gcal.update, res.id, body)
    assert.truthy(raw:find('"outputs":[]', 1, true), raw)
    assert.falsy(raw:find('"outputs":{}', 1, true), raw)
    assert.truthy(raw:find('"iconFileId":null', 1, true), raw)
    assert.equals("Google Calendar (edited)", again.name)
    assert.equals("UTC", again.googleCalendarPlugin[1].timezone)
    assert.same(plugin.googleUser, again.googleCalendarPlugin[1].googleUser)
  end)

  it("accept an edited Cal.com response's fields sent back", function()
    local res = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    local again = call_ok(client.calcom.update, res.id, {
      title = res.title, unitId = res.unitId, calcomUsername = res.calcomUsername, timezone = res.timezone,
      prompt = res.prompt .. " Edited.", checkAvailabilityEnabled = not res.checkAvailabilityEnabled,
      createBookingEnabled = res.createBookingEnabled,
    })
    assert.equals(res.prompt .. " Edited.", again.prompt)
    assert.is_false(again.checkAvailabilityEnabled)
  end)

  it("leave the caller's tables untouched", function()
    local body = H.gcal_body()
    local before = H.gcal_body()
    call_ok(client.gcal.update, H.UUID, body)
    assert.same(before, body)
    assert.is_nil(body.type)
    assert.is_nil(body.outputs)
    assert.is_nil(body.iconFileId)
  end)
end)

describe("Google Calendar defaults", function()
  local client
  before_each(function() client = H.client() end)
  after_each(function() client:close() end)

  it("put type, outputs = [] and iconFileId = null on the wire when absent", function()
    local _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    assert.truthy(raw:find('"type":"google-calendar"', 1, true), raw)
    assert.truthy(raw:find('"outputs":[]', 1, true), raw)
    assert.truthy(raw:find('"iconFileId":null', 1, true), raw)
  end)

  it("write an empty outputs as [] however it was made", function()
    for _, outputs in ipairs { {}, toolzz.array(), setmetatable({}, toolzz.array_mt), cjson.decode("[]") } do
      local _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body { outputs = outputs })
      assert.truthy(raw:find('"outputs":[]', 1, true), raw)
    end
  end)

  it("keep the caller's outputs, type and iconFileId", function()
    local _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body {
      outputs = { "date", "time" }, type = "google-calendar", iconFileId = H.UUID,
    })
    local wire = cjson.decode(raw)
    assert.same({ "date", "time" }, wire.outputs)
    assert.equals(H.UUID, wire.iconFileId)
  end)

  it("are not added to a Cal.com body", function()
    local _, raw = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    local wire = cjson.decode(raw)
    assert.is_nil(wire.type)
    assert.is_nil(wire.outputs)
    assert.is_nil(wire.iconFileId)
  end)
end)

describe("client defaults", function()
  local function without(body, ...)
    for _, name in ipairs { ... } do body[name] = nil end
    return body
  end

  it("fill a Cal.com body and are ignored by a Google Calendar body", function()
    local client = H.client { defaults = { unitId = H.UNIT, timezone = "UTC" } }
    local _, raw = call_ok(client.calcom.update, H.UUID, without(H.calcom_body(), "unitId", "timezone"))
    local wire = cjson.decode(raw)
    assert.equals(H.UNIT, wire.unitId)
    assert.equals("UTC", wire.timezone)
    _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    wire = cjson.decode(raw)
    assert.is_nil(wire.unitId)
    assert.is_nil(wire.timezone)
    assert.equals("America/Sao_Paulo", wire.googleCalendar.timezone)
    client:close()
  end)

  it("fill nested fields (googleCalendar.timezone), deep and per object", function()
    local client = H.client { defaults = {
      googleCalendar = { timezone = "Europe/Lisbon", googleUser = { hd = "toolzz.example" } },
      unitId = H.UNIT,
    } }
    local body = H.gcal_body()
    body.googleCalendar.timezone = nil
    body.googleCalendar.googleUser.hd = nil
    local _, raw = call_ok(client.gcal.update, H.UUID, body)
    local wire = cjson.decode(raw)
    assert.equals("Europe/Lisbon", wire.googleCalendar.timezone)
    assert.equals("toolzz.example", wire.googleCalendar.googleUser.hd)
    assert.equals("primary", wire.googleCalendar.calendarId)
    assert.equals("Ana Silva", wire.googleCalendar.googleUser.name)
    assert.is_nil(wire.unitId)
    _, raw = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    assert.is_nil(cjson.decode(raw).googleCalendar)
    client:close()
  end)

  it("lose to the caller's values", function()
    local client = H.client { defaults = {
      unitId = H.USER, timezone = "UTC", googleCalendar = { timezone = "UTC" }, iconFileId = H.UUID,
    } }
    local _, raw = call_ok(client.calcom.update, H.UUID, H.calcom_body())
    local wire = cjson.decode(raw)
    assert.equals(H.UNIT, wire.unitId)
    assert.equals("America/Sao_Paulo", wire.timezone)
    _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body { iconFileId = toolzz.null })
    wire = cjson.decode(raw)
    assert.equals("America/Sao_Paulo", wire.googleCalendar.timezone)
    assert.equals(cjson.null, wire.iconFileId)
    client:close()
  end)

  it("fill gcal iconFileId before the schema's null", function()
    local client = H.client { defaults = { iconFileId = H.UUID } }
    local _, raw = call_ok(client.gcal.update, H.UUID, H.gcal_body())
    assert.equals(H.UUID, cjson.decode(raw).iconFileId)
    client:close()
  end)

  it("are reported like a caller's value when invalid, and nothing is sent", function()
    local client = H.client { defaults = {
      timezone = "Mars/Olympus_Mons", unitId = 42,
      googleCalendar = { googleUser = { email = "not-an-email" } },
    } }
    stand_in.reset()
    local res, err = client.calcom.update(H.UUID, without(H.calcom_body(), "timezone", "unitId"))
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    local paths = {}
    for _, f in ipairs(err.fields) do paths[f.path] = true end
    assert.same({ timezone = true, unitId = true }, paths)

    local body = H.gcal_body()
    body.googleCalendar.googleUser.email = nil
    res, err = client.gcal.update(H.UUID, body)
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals(1, #err.fields)
    assert.equals("googleCalendar.googleUser.email", err.fields[1].path)
    assert.equals(0, stand_in.stats().requests)

    -- a caller's valid value still wins over the invalid default
    call_ok(client.calcom.update, H.UUID, H.calcom_body())
    client:close()
  end)
end)

describe("the client object", function()
  it("does not show the token in tostring or any reachable string", function()
    local client = H.client()
    local s = tostring(client)
    assert.is_string(s)
    assert.is_nil(s:find(TOKEN, 1, true))
    assert.is_nil(H.contains_secret(client, { TOKEN }))
    client:close()
    assert.is_nil(tostring(client):find(TOKEN, 1, true))
  end)

  it("refuses calls after close with a config error, sending nothing", function()
    local client = H.client()
    call_ok(client.calcom.update, H.UUID, H.calcom_body())
    assert.is_true(pcall(client.close, client))
    stand_in.reset()
    for _, endpoint in ipairs { "calcom", "gcal" } do
      local body = endpoint == "calcom" and H.calcom_body() or H.gcal_body()
      local ok, res, err = pcall(client[endpoint].update, H.UUID, body)
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.equals("config", err.kind)
      ok, res, err = pcall(function() return client[endpoint]:update(H.UUID, body) end)
      assert.is_true(ok, tostring(res))
      assert.equals("config", err.kind)
    end
    assert.equals(0, stand_in.stats().requests)
  end)

  it("can be closed twice, and closing an unused client is safe", function()
    local client = H.client()
    assert.is_true(pcall(client.close, client))
    assert.is_true(pcall(client.close, client))
    local used = H.client()
    call_ok(used.gcal.update, H.UUID, H.gcal_body())
    assert.is_true(pcall(used.close, used))
    assert.is_true(pcall(used.close, used))
  end)

  it("keeps clients independent: closing one leaves another working", function()
    local a, b = H.client(), H.client()
    a:close()
    local res = call_ok(b.calcom.update, H.UUID, H.calcom_body())
    assert.equals(H.UUID, res.id)
    b:close()
  end)
end)

describe("no call raises a Lua error for bad input", function()
  local cyclic = {}
  cyclic.self = cyclic
  local deep = {}
  do
    local cur = deep
    for _ = 1, 10000 do
      cur[1] = {}
      cur = cur[1]
    end
  end
  local weird_key = {}
  weird_key[{}] = 1
  weird_key[print] = 2
  local inputs = {
    { nil, nil }, { H.UUID, nil }, { nil, {} }, { {}, {} }, { print, print }, { H.UUID, "body" },
    { H.UUID, 42 }, { H.UUID, cyclic }, { H.UUID, { outputs = deep } }, { H.UUID, deep },
    { H.UUID, weird_key }, { H.UUID, { [1] = 1, [3] = 3 } }, { H.UUID, { googleCalendar = cyclic } },
    { H.UUID, { title = io.stdout, prompt = coroutine.create(function() end) } },
    { H.UUID, { title = 0 / 0, googleCalendar = { googleUser = { email = math.huge } } } },
    { H.UUID, setmetatable({}, { __index = function() error("boom") end }) },
    { H.UUID, { title = "\192\175", ["\255"] = 1 } },
    { string.rep("a", 100000), H.calcom_body { prompt = string.rep("x", 2 * 1024 * 1024) } },
  }

  it("through either endpoint, in either form", function()
    local client = H.client()
    stand_in.reset()
    for i, args in ipairs(inputs) do
      for _, endpoint in ipairs { "calcom", "gcal" } do
        local ok, res, err = pcall(client[endpoint].update, args[1], args[2])
        assert.is_true(ok, "input " .. i .. " raised on " .. endpoint .. ": " .. tostring(res))
        assert.is_nil(res, "input " .. i)
        assert.equals("validation", err and err.kind, "input " .. i .. " on " .. endpoint)
        ok, res = pcall(function() return client[endpoint]:update(args[1], args[2]) end)
        assert.is_true(ok, "input " .. i .. " raised on " .. endpoint .. " (colon form): " .. tostring(res))
      end
    end
    local ok, res = pcall(client.calcom.update)
    assert.is_true(ok, tostring(res))
    assert.equals(0, stand_in.stats().requests)
    client:close()
  end)

  it("when calling toolzz.new with odd options", function()
    for _, opts in ipairs {
      { token = TOKEN, base_url = HTTP_URL, defaults = cyclic },
      { token = TOKEN, base_url = HTTP_URL, defaults = deep },
      { token = TOKEN, [1] = "positional" },
      { token = TOKEN, [print] = true },
      { token = string.rep("t", 1024 * 1024), base_url = HTTP_URL },
      { token = TOKEN, base_url = string.rep("h", 100000) },
    } do
      local ok, res = pcall(toolzz.new, opts)
      assert.is_true(ok, tostring(res))
      if res then res:close() end
    end
  end)
end)

describe("caller tables with metatables", function()
  it("never runs the caller's __index or __pairs, at any depth", function()
    local trap = { __index = function() error("__index ran") end, __pairs = function() error("__pairs ran") end }
    local client = H.client()
    local body = H.gcal_body()
    body.googleCalendar = setmetatable(body.googleCalendar, trap)
    body.googleCalendar.googleUser = setmetatable(body.googleCalendar.googleUser, trap)
    local ok, res, err = pcall(client.gcal.update, H.UUID, setmetatable(body, trap))
    assert.is_true(ok, tostring(res))
    assert.is_nil(err)
    assert.equals(H.UUID, res.id)
  end)
end)

describe("caller tables with a __pairs that raises", function()
  it("are read raw: outputs, defaults and options", function()
    local trap = { __pairs = function() error("__pairs ran") end }
    local client, cerr = toolzz.new(setmetatable({
      token = H.env.token, base_url = H.env.http_url, retries = 0,
      defaults = setmetatable({ googleCalendar = setmetatable({ timezone = "UTC" }, trap) }, trap),
    }, trap))
    assert.is_nil(cerr)
    local body = H.gcal_body { outputs = setmetatable({ "a", "b" }, trap) }
    body.googleCalendar.timezone = nil
    local ok, res, err = pcall(client.gcal.update, H.UUID, body)
    assert.is_true(ok, tostring(res))
    assert.is_nil(err)
    assert.same({ "a", "b" }, res.outputs)
    assert.equals("UTC", res.googleCalendarPlugin[1].timezone)
    local ok2, results = pcall(client.batch, { { "gcal", H.UUID, body } }, setmetatable({ concurrency = 2 }, trap))
    assert.is_true(ok2, tostring(results))
    assert.is_table(results[1].res)
  end)
end)

describe("ca_file", function()
  it("that cannot be read is a config error when the client is made", function()
    local client, err = require("toolzz").new { token = H.env.token, ca_file = "/nonexistent/ca.pem" }
    assert.is_nil(client)
    assert.equals("config", err.kind)
    assert.matches("ca_file", err.message, 1, true)
  end)
end)

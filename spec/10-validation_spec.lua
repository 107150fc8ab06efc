-- Validation (before any byte is sent), through the public API:
-- client.calcom.update(id, fields) and client.gcal.update(id, fields).
local H = require "helpers"
local toolzz = require "toolzz"
local cjson = require "cjson"

local stand_in = H.stand_in
local client = H.client()
local lax = H.client { strict = false }

local REMOVE = setmetatable({}, { __tostring = function() return "REMOVE" end })

-- Set dotted paths of a body ("googleCalendar.googleUser.email"); REMOVE deletes.
local function with(body, changes)
  for path, value in pairs(changes) do
    local t, last = body, nil
    for name in path:gmatch("[^.]+") do
      if last then t = t[last] end
      last = name
    end
    if value == REMOVE then t[last] = nil else t[last] = value end
  end
  return body
end

local function calcom(changes) return with(H.calcom_body(), changes or {}) end
local function gcal(changes) return with(H.gcal_body(), changes or {}) end

local function describe_value(v)
  if type(v) == "string" then
    return '"' .. v:gsub("%c", function(c) return "\\" .. c:byte() end) .. '"'
  end
  if v == toolzz.null then return "null" end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return "a " .. type(v)
end

-- Run an update that must be refused by validation: never raises, returns
-- nil + a validation error, and sends nothing. Returns the error.
local function refused(endpoint, id, body, c)
  stand_in.reset()
  local ok, res, err = pcall((c or client)[endpoint].update, id, body)
  assert.is_true(ok, "the call raised: " .. tostring(res))
  assert.is_nil(res)
  assert.is_table(err)
  assert.equals("validation", err.kind, tostring(err))
  assert.is_table(err.fields)
  assert.is_true(#err.fields >= 1)
  for _, f in ipairs(err.fields) do
    assert.is_string(f.path)
    assert.is_string(f.message)
    assert.is_true(#f.message > 0)
  end
  assert.equals(0, stand_in.stats().requests, "a refused call sent a request")
  return err
end

-- Run an update that must succeed; returns the response and the decoded wire body.
local function accepted(endpoint, id, body, c)
  stand_in.reset()
  local ok, res, err = pcall((c or client)[endpoint].update, id, body)
  assert.is_true(ok, "the call raised: " .. tostring(res))
  assert.is_nil(err, err and tostring(err))
  assert.is_table(res)
  local last = stand_in.last()
  assert.equals(1, stand_in.stats().requests)
  return res, cjson.decode(last.body), last
end

local function paths(err)
  local set = {}
  for _, f in ipairs(err.fields) do set[f.path] = true end
  return set
end

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

-- Refused with exactly these paths (a list).
local function refused_at(expected, endpoint, id, body, c)
  local err = refused(endpoint, id, body, c)
  assert.same(set_of(expected), paths(err))
  return err
end

local function message_at(err, path)
  for _, f in ipairs(err.fields) do
    if f.path == path then return f.message end
  end
  return nil
end

describe("validation", function()
  teardown(function()
    client:close()
    lax:close()
  end)

  it("accepts the helpers' bodies (the baseline)", function()
    accepted("calcom", H.UUID, calcom())
    accepted("gcal", H.UUID, gcal())
  end)

  describe("ids: a UUID in 8-4-4-4-12 hex form, either case", function()
    it("accepts upper-case and mixed-case UUIDs", function()
      for _, id in ipairs { H.UUID:upper(), "6F1C2F0E-1d2b-4C3A-9e8f-0123456789AB" } do
        local _, _, last = accepted("calcom", id, calcom())
        assert.equals("/api/v1/calcom/integration/" .. id, last.uri)
        _, _, last = accepted("gcal", id, gcal())
        assert.equals("/api/v1/functions/" .. id, last.uri)
      end
    end)

    local bad_ids = {
      12345, 6.5, true, {}, "", "12345", "../", "../" .. H.UUID, "../../etc/passwd",
      H.UUID:sub(1, 33) .. "../", " " .. H.UUID, H.UUID .. " ", H.UUID:sub(1, 35) .. " ",
      "6f1c2f0e 1d2b-4c3a-9e8f-0123456789ab", "%2e%2e", "%2e%2e%2f" .. H.UUID, H.UUID:sub(1, 30) .. "%2e%2e",
      H.UUID .. "?x=1", H.UUID:sub(1, 35) .. "?", H.UUID .. "#", H.UUID:sub(1, 35) .. "#",
      H.UUID .. "\n", H.UUID:sub(1, 35) .. "\0", H.UUID:sub(1, 35) .. "\n", "\n" .. H.UUID:sub(2),
      "6f1c2f0e1d2b4c3a9e8f0123456789ab", "{" .. H.UUID .. "}", "urn:uuid:" .. H.UUID,
      "6f1c2f0e-1d2b-4c3a-9e8f-0123456789ag", "6f1c2f0e-1d2b-4c3a-9e8f0-123456789ab",
      -- unicode look-alikes, same byte length as a real UUID
      "\239\188\150c2f0e-1d2b-4c3a-9e8f-0123456789ab",           -- FULLWIDTH DIGIT SIX for "6f1"
      "6f1c2f0e-1d2b-4c3a-9e8f-0123456789\208\176",              -- CYRILLIC SMALL A for "ab"
      "6f1c2f0\208\181-1d2b-4c3a-9e8f-0123456789a",             -- CYRILLIC SMALL IE for "e"
      "\239\188\144\239\188\144000000-0000-0000-0000-000000000", -- fullwidth zeros
    }
    for _, id in ipairs(bad_ids) do
      it("refuses id " .. describe_value(id) .. " and sends nothing", function()
        local err = refused_at({ "id" }, "calcom", id, calcom())
        assert.matches("UUID", message_at(err, "id"))
        refused_at({ "id" }, "gcal", id, gcal())
      end)
    end

    it("refuses a missing id", function()
      refused_at({ "id" }, "calcom", nil, calcom())
      refused_at({ "id" }, "gcal", nil, gcal())
    end)
  end)

  describe("every required field must be present", function()
    for _, name in ipairs { "title", "unitId", "calcomUsername", "timezone", "prompt",
      "checkAvailabilityEnabled", "createBookingEnabled" } do
      it("Cal.com: refuses a body without " .. name, function()
        local err = refused_at({ name }, "calcom", H.UUID, calcom { [name] = REMOVE })
        assert.matches("required", message_at(err, name))
      end)
    end

    for _, path in ipairs { "name", "description", "userId", "unityId", "googleCalendar",
      "googleCalendar.googleId", "googleCalendar.calendarId", "googleCalendar.timezone",
      "googleCalendar.googleToken", "googleCalendar.googleUser", "googleCalendar.googleUser.name",
      "googleCalendar.googleUser.given_name", "googleCalendar.googleUser.family_name",
      "googleCalendar.googleUser.email" } do
      it("Google Calendar: refuses a body without " .. path, function()
        refused_at({ path }, "gcal", H.UUID, gcal { [path] = REMOVE })
      end)
    end

    it("Google Calendar: optional fields may be left out", function()
      accepted("gcal", H.UUID, gcal {
        iconFileId = REMOVE, outputs = REMOVE, type = REMOVE,
        ["googleCalendar.notificationContent"] = REMOVE,
        ["googleCalendar.googleUser.picture"] = REMOVE, ["googleCalendar.googleUser.hd"] = REMOVE,
      })
    end)

    it("refuses an empty body listing every required field", function()
      refused_at({ "title", "unitId", "calcomUsername", "timezone", "prompt",
        "checkAvailabilityEnabled", "createBookingEnabled" }, "calcom", H.UUID, {})
      refused_at({ "name", "description", "userId", "unityId", "googleCalendar" }, "gcal", H.UUID, {})
    end)
  end)

  describe("types must match exactly", function()
    local cases = {
      { "calcom", "checkAvailabilityEnabled", "true" },
      { "calcom", "createBookingEnabled", "false" },
      { "calcom", "createBookingEnabled", 1 },
      { "calcom", "createBookingEnabled", 0 },
      { "calcom", "title", 42 },
      { "calcom", "title", true },
      { "calcom", "prompt", { "a", "b" } },
      { "calcom", "calcomUsername", false },
      { "calcom", "unitId", 12345 },
      { "calcom", "timezone", -3 },
      { "calcom", "title", toolzz.null },
      { "calcom", "checkAvailabilityEnabled", toolzz.null },
      { "gcal", "name", false },
      { "gcal", "description", 7 },
      { "gcal", "googleCalendar", "primary" },
      { "gcal", "googleCalendar", { "a", "b" } },
      { "gcal", "googleCalendar", toolzz.null },
      { "gcal", "googleCalendar.googleUser", "Ana Silva" },
      { "gcal", "googleCalendar.googleToken", 123 },
      { "gcal", "googleCalendar.calendarId", true },
      { "gcal", "googleCalendar.notificationContent", false },
      { "gcal", "googleCalendar.googleUser.hd", 1 },
      { "gcal", "outputs", "none" },
      { "gcal", "outputs", 5 },
      { "gcal", "outputs", { name = "x" } },
      { "gcal", "type", true },
      { "gcal", "userId", toolzz.null },
    }
    for _, case in ipairs(cases) do
      local endpoint, path, value = case[1], case[2], case[3]
      it(endpoint .. ": refuses " .. path .. " = " .. describe_value(value), function()
        local body = endpoint == "calcom" and calcom { [path] = value } or gcal { [path] = value }
        refused_at({ path }, endpoint, H.UUID, body)
      end)
    end

    it("accepts false for the booleans", function()
      local _, wire = accepted("calcom", H.UUID, calcom { checkAvailabilityEnabled = false, createBookingEnabled = false })
      assert.is_false(wire.checkAvailabilityEnabled)
      assert.is_false(wire.createBookingEnabled)
    end)
  end)

  describe("unknown fields, at any depth, are refused in strict mode", function()
    it("catches the typo createBookingEnable and suggests the right name", function()
      local err = refused_at({ "createBookingEnable", "createBookingEnabled" }, "calcom", H.UUID,
        calcom { createBookingEnabled = REMOVE, createBookingEnable = true })
      assert.matches('createBookingEnabled', message_at(err, "createBookingEnable"), 1, true)
      assert.matches("required", message_at(err, "createBookingEnabled"))
    end)

    it("refuses an extra top-level field even when the right one is present", function()
      local err = refused_at({ "createBookingEnable" }, "calcom", H.UUID, calcom { createBookingEnable = true })
      assert.matches("createBookingEnabled", message_at(err, "createBookingEnable"), 1, true)
    end)

    it("refuses unknown fields nested in objects", function()
      refused_at({ "googleCalendar.calendarID", "googleCalendar.googleUser.locale", "apiKey" }, "gcal", H.UUID,
        gcal { ["googleCalendar.calendarID"] = "primary", ["googleCalendar.googleUser.locale"] = "pt-BR",
               apiKey = "cal_x" })
    end)

    it("refuses response-only fields sent back as they came (id, isActive) as one problem", function()
      local err = refused_at({ "" }, "calcom", H.UUID, calcom { id = H.UUID, isActive = true })
      assert.matches("use patch to change some fields: id, isActive$", err.fields[1].message)
    end)

    it("refuses a key that is not a string", function()
      local body = calcom()
      body[1] = "x"
      local err = refused("calcom", H.UUID, body)
      assert.same({ [""] = true }, paths(err))
      body = gcal()
      body.googleCalendar.googleUser[true] = 1
      err = refused("gcal", H.UUID, body)
      assert.truthy(paths(err)["googleCalendar.googleUser"])
    end)

    describe("with strict = false", function()
      it("sends unknown fields, top-level and nested, unvalidated", function()
        local _, wire = accepted("calcom", H.UUID, calcom { createBookingEnable = "yes", extra = { n = 1 } }, lax)
        assert.equals("yes", wire.createBookingEnable)
        assert.equals(1, wire.extra.n)
        _, wire = accepted("gcal", H.UUID, gcal {
          ["googleCalendar.googleUser.locale"] = "pt-BR", ["googleCalendar.colorId"] = "7", color = "blue",
        }, lax)
        assert.equals("pt-BR", wire.googleCalendar.googleUser.locale)
        assert.equals("7", wire.googleCalendar.colorId)
        assert.equals("blue", wire.color)
      end)

      it("still validates the fields it knows", function()
        refused_at({ "timezone", "createBookingEnabled" }, "calcom", H.UUID,
          calcom { timezone = "Mars/Base", createBookingEnabled = "true", extra = 1 }, lax)
        refused_at({ "googleCalendar.googleUser.email" }, "gcal", H.UUID,
          gcal { ["googleCalendar.googleUser.email"] = "nope", extra = 1 }, lax)
      end)

      it("still refuses values JSON cannot carry in unknown fields, with their path", function()
        refused_at({ "extra.fn" }, "calcom", H.UUID, calcom { extra = { fn = print } }, lax)
        refused_at({ "googleCalendar.extra[2]" }, "gcal", H.UUID,
          gcal { ["googleCalendar.extra"] = { 1, 0 / 0 } }, lax)
        refused_at({ "extra" }, "calcom", H.UUID, calcom { extra = { [1] = 1, [3] = 3 } }, lax)
        refused_at({ "extra" }, "calcom", H.UUID, calcom { extra = "\192\175" }, lax)
      end)
    end)
  end)

  describe("strings must be valid UTF-8", function()
    it("accepts any language, emoji, quotes and newlines, sent byte for byte", function()
      local prompt = 'Diga "olá" 👋 e \'tchau\'\nLinha 2\t— “aspas” «guillemets» \\ 日本語 العربية 🇧🇷\r\nfim'
      local _, wire = accepted("calcom", H.UUID, calcom { prompt = prompt, title = "Agenda 📅 \"Ana\"" })
      assert.equals(prompt, wire.prompt)
      assert.equals("Agenda 📅 \"Ana\"", wire.title)
      _, wire = accepted("gcal", H.UUID, gcal {
        description = prompt, ["googleCalendar.googleUser.name"] = "Zoë Ñúñez 李",
        ["googleCalendar.notificationContent"] = "Nova reunião às 10h ⏰\n\"confirmada\"",
      })
      assert.equals(prompt, wire.description)
      assert.equals("Zoë Ñúñez 李", wire.googleCalendar.googleUser.name)
      assert.equals("Nova reunião às 10h ⏰\n\"confirmada\"", wire.googleCalendar.notificationContent)
    end)

    it("reports a key that is not UTF-8 once", function()
      local body = calcom()
      body["bad\255key"] = true
      local err = refused("calcom", H.UUID, body)
      assert.equals(1, #err.fields, "one bad key reported " .. #err.fields .. " times")
      body = gcal()
      body.googleCalendar["\192\175"] = 1
      err = refused("gcal", H.UUID, body, lax)
      assert.equals(1, #err.fields)
      assert.matches("^googleCalendar%.", err.fields[1].path)
    end)

    it("keeps the bytes of a key that is not UTF-8 out of the error text", function()
      local body = calcom()
      body["bad\255key"] = true
      local err = refused("calcom", H.UUID, body)
      assert.is_true(require("toolzz.core").utf8_valid(tostring(err)), tostring(err))
    end)

    for name, bytes in pairs {
      overlong = "\192\175", surrogate = "\237\160\128", truncated = "abc\226\130",
      ["above U+10FFFF"] = "\244\144\128\128", ["stray continuation"] = "a\128b", ["Latin-1"] = "reuni\227o",
    } do
      it("refuses " .. name .. " bytes with the field's path", function()
        refused_at({ "prompt" }, "calcom", H.UUID, calcom { prompt = bytes })
        refused_at({ "googleCalendar.googleUser.name" }, "gcal", H.UUID,
          gcal { ["googleCalendar.googleUser.name"] = bytes })
      end)
    end
  end)

  describe("UUID fields (unitId, userId, unityId, iconFileId when not null)", function()
    it("accepts upper-case UUIDs and a null iconFileId", function()
      local _, wire = accepted("calcom", H.UUID, calcom { unitId = H.UNIT:upper() })
      assert.equals(H.UNIT:upper(), wire.unitId)
      _, wire = accepted("gcal", H.UUID, gcal { userId = H.USER:upper(), unityId = H.UNIT:upper(),
        iconFileId = H.UUID:upper() })
      assert.equals(H.UUID:upper(), wire.iconFileId)
      _, wire = accepted("gcal", H.UUID, gcal { iconFileId = toolzz.null })
      assert.equals(cjson.null, wire.iconFileId)
    end)

    local cases = {
      { "calcom", "unitId", "not-a-uuid" },
      { "calcom", "unitId", "" },
      { "calcom", "unitId", "0b6f1f5e-8a2c-4d3e-9f10-aabbccddee\208\181" }, -- Cyrillic "е"
      { "calcom", "unitId", " " .. H.UNIT },
      { "gcal", "userId", "123" },
      { "gcal", "userId", "9d7a3b1c2e4f4a6b8c0d112233445566" },
      { "gcal", "unityId", "../" .. H.UNIT },
      { "gcal", "unityId", "\239\188\144b6f1f5e-8a2c-4d3e-9f10-aabbccddee" }, -- fullwidth zero
      { "gcal", "iconFileId", "icon.png" },
      { "gcal", "iconFileId", "" },
      { "gcal", "iconFileId", 42 },
    }
    for _, case in ipairs(cases) do
      local endpoint, path, value = case[1], case[2], case[3]
      it(endpoint .. ": refuses " .. path .. " = " .. describe_value(value), function()
        local body = endpoint == "calcom" and calcom { [path] = value } or gcal { [path] = value }
        refused_at({ path }, endpoint, H.UUID, body)
      end)
    end
  end)

  describe("timezone fields are IANA time zone names", function()
    for _, zone in ipairs { "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "Etc/GMT+3", "Etc/GMT-14",
      "UTC", "Europe/Lisbon", "Asia/Kolkata", "Pacific/Chatham" } do
      it("accepts " .. zone, function()
        local _, wire = accepted("calcom", H.UUID, calcom { timezone = zone })
        assert.equals(zone, wire.timezone)
        _, wire = accepted("gcal", H.UUID, gcal { ["googleCalendar.timezone"] = zone })
        assert.equals(zone, wire.googleCalendar.timezone)
      end)
    end

    for _, zone in ipairs { "Mars/Olympus_Mons", "America/Atlantis", "Sao_Paulo", "America/Sao Paulo",
      "America/Sao_Paulo ", "GMT+3", "Etc/GMT+15", "", "UTC\n", "../../../etc/passwd", "America/",
      "America/Sao_Paulo/Centro", "-03:00", "BRT" } do
      it("refuses the made-up name " .. describe_value(zone), function()
        refused_at({ "timezone" }, "calcom", H.UUID, calcom { timezone = zone })
        refused_at({ "googleCalendar.timezone" }, "gcal", H.UUID, gcal { ["googleCalendar.timezone"] = zone })
      end)
    end
  end)

  describe("googleUser.email is a plausible e-mail address", function()
    for _, email in ipairs { "ana@example.com", "first.last+tag@mail.example.com.br", "ANA@EXAMPLE.COM",
      "a_b-c@sub-domain.example.org" } do
      it("accepts " .. email, function()
        local _, wire = accepted("gcal", H.UUID, gcal { ["googleCalendar.googleUser.email"] = email })
        assert.equals(email, wire.googleCalendar.googleUser.email)
      end)
    end

    for _, email in ipairs { "ana", "ana@", "@example.com", "ana@@example.com", "a@b@example.com",
      "ana @example.com", "ana@exa mple.com", "ana@example.com\n", "ana@example..com", "ana@.example.com",
      "", "ana@example.com, bob@example.com", "<ana@example.com>", 42 } do
      it("refuses " .. describe_value(email), function()
        refused_at({ "googleCalendar.googleUser.email" }, "gcal", H.UUID,
          gcal { ["googleCalendar.googleUser.email"] = email })
      end)
    end
  end)

  describe("googleUser.picture, when given, is an http(s) URL", function()
    for _, url in ipairs { "https://lh3.googleusercontent.com/a/photo.jpg", "http://example.com/p.png",
      "HTTPS://EXAMPLE.COM/x", "https://example.com:8443/p?sz=96#top" } do
      it("accepts " .. url, function()
        local _, wire = accepted("gcal", H.UUID, gcal { ["googleCalendar.googleUser.picture"] = url })
        assert.equals(url, wire.googleCalendar.googleUser.picture)
      end)
    end

    for _, url in ipairs { "ftp://example.com/p.png", "javascript:alert(1)", "data:image/png;base64,AAAA",
      "lh3.googleusercontent.com/a.jpg", "//example.com/a.jpg", "https://", "https:// example.com/a",
      "https://exa mple.com/a", "file:///etc/passwd", "", "https://example.com/a\nb", 42, true } do
      it("refuses " .. describe_value(url), function()
        refused_at({ "googleCalendar.googleUser.picture" }, "gcal", H.UUID,
          gcal { ["googleCalendar.googleUser.picture"] = url })
      end)
    end
  end)

  describe("googleId is a string of digits", function()
    it("accepts digits", function()
      local _, wire = accepted("gcal", H.UUID, gcal { ["googleCalendar.googleId"] = "1" })
      assert.equals("1", wire.googleCalendar.googleId)
    end)

    for _, id in ipairs { "abc", "12a3", "", " 123", "123 ", "-123", "1.5", "1e5", "0x1F",
      "\239\188\145\239\188\146\239\188\147", -- fullwidth 123
      "\217\161\217\162\217\163",             -- Arabic-Indic 123
      123, 1.5, true } do
      it("refuses " .. describe_value(id), function()
        refused_at({ "googleCalendar.googleId" }, "gcal", H.UUID, gcal { ["googleCalendar.googleId"] = id })
      end)
    end
  end)

  describe('type is "google-calendar" when given', function()
    it('accepts "google-calendar"', function()
      local _, wire = accepted("gcal", H.UUID, gcal { type = "google-calendar" })
      assert.equals("google-calendar", wire.type)
    end)

    for _, t in ipairs { "calcom", "Google-Calendar", "google-calendar ", "google_calendar", "", toolzz.null } do
      it("refuses " .. describe_value(t), function()
        refused_at({ "type" }, "gcal", H.UUID, gcal { type = t })
      end)
    end
  end)

  describe("values JSON cannot carry are refused with their path", function()
    local function cyclic()
      local t = { name = "loop" }
      t.self = t
      return t
    end
    local function nested(n)
      local root = {}
      local cur = root
      for _ = 1, n do
        cur[1] = {}
        cur = cur[1]
      end
      return root
    end

    local cases = {
      { "calcom", "prompt", print, "prompt" },
      { "calcom", "title", io.stdout, "title" },
      { "calcom", "calcomUsername", coroutine.create(function() end), "calcomUsername" },
      { "calcom", "checkAvailabilityEnabled", 0 / 0, "checkAvailabilityEnabled" },
      { "gcal", "googleCalendar.notificationContent", io.stdout, "googleCalendar.notificationContent" },
      { "gcal", "outputs", { print }, "outputs[1]" },
      { "gcal", "outputs", { "a", coroutine.create(function() end) }, "outputs[2]" },
      { "gcal", "outputs", { 0 / 0 }, "outputs[1]" },
      { "gcal", "outputs", { math.huge }, "outputs[1]" },
      { "gcal", "outputs", { -math.huge }, "outputs[1]" },
      { "gcal", "outputs", { { name = "x", run = print } }, "outputs[1].run" },
      { "gcal", "outputs", { { name = "x", limits = { max = math.huge } } }, "outputs[1].limits.max" },
      { "gcal", "outputs", { [1] = "a", [3] = "c" }, "outputs" },
      { "gcal", "outputs", { "a", name = "x" }, "outputs" },
      { "gcal", "outputs", { { [1] = 1, key = "v" } }, "outputs[1]" },
      { "gcal", "outputs", { cyclic() }, "outputs[1].self" },
      { "gcal", "outputs", { { [true] = 1 } }, "outputs[1]" },
    }
    for _, case in ipairs(cases) do
      local endpoint, field, value, path = case[1], case[2], case[3], case[4]
      it(endpoint .. ": refuses " .. field .. " = " .. describe_value(value) .. " at " .. path, function()
        local body = endpoint == "calcom" and calcom { [field] = value } or gcal { [field] = value }
        refused_at({ path }, endpoint, H.UUID, body)
      end)
    end

    it("refuses a cyclic body and returns (never loops)", function()
      local outputs = {}
      outputs[1] = outputs
      refused_at({ "outputs[1]" }, "gcal", H.UUID, gcal { outputs = outputs })
      local body = calcom()
      body.self = body
      local err = refused("calcom", H.UUID, body)
      assert.truthy(paths(err).self)
    end)

    it("refuses 10,000 nested tables cleanly", function()
      local err = refused("gcal", H.UUID, gcal { outputs = nested(10000) })
      for path in pairs(paths(err)) do
        assert.matches("^outputs%[1%]", path)
      end
    end)
  end)

  describe("a body that is not a table is refused", function()
    for _, body in ipairs { "title=x", 42, true, print, toolzz.null } do
      it("refuses " .. describe_value(body), function()
        refused_at({ "" }, "calcom", H.UUID, body)
        refused_at({ "" }, "gcal", H.UUID, body)
      end)
    end

    it("refuses a nil body", function()
      refused_at({ "" }, "calcom", H.UUID, nil)
      refused_at({ "" }, "gcal", H.UUID)
    end)

    it("reports a bad id along with it", function()
      refused_at({ "id", "" }, "calcom", "12345", "not a table")
    end)
  end)

  describe("all violations of one call are collected together", function()
    it("Cal.com", function()
      refused_at({ "id", "title", "unitId", "timezone", "prompt", "checkAvailabilityEnabled",
        "createBookingEnable" }, "calcom", "../12345", calcom {
        title = 42, unitId = "nope", timezone = "Mars/Base", prompt = REMOVE,
        checkAvailabilityEnabled = "true", createBookingEnable = true,
      })
    end)

    it("Google Calendar, at every depth", function()
      local err = refused_at({
        "id", "googleCalendar.googleId", "googleCalendar.timezone", "googleCalendar.googleUser.email",
        "googleCalendar.googleUser.picture", "googleCalendar.googleUser.name", "googleCalendar.extra",
        "type", "userId", "iconFileId", "outputs[1]", "description",
      }, "gcal", H.UUID .. "#", gcal {
        ["googleCalendar.googleId"] = "abc", ["googleCalendar.timezone"] = "Nowhere/City",
        ["googleCalendar.googleUser.email"] = "nope", ["googleCalendar.googleUser.picture"] = "ftp://x/y",
        ["googleCalendar.googleUser.name"] = REMOVE, ["googleCalendar.extra"] = 1,
        type = "calcom", userId = "x", iconFileId = "icon", outputs = { print }, description = "\192\175",
      })
      assert.equals(12, #err.fields)
    end)
  end)

  describe("the error", function()
    it("is a table with kind, message, fields and a one-line tostring", function()
      local err = refused("calcom", H.UUID, calcom { title = 42, timezone = "Nowhere" })
      assert.equals("validation", err.kind)
      assert.is_string(err.message)
      assert.equals(2, #err.fields)
      local line = tostring(err)
      assert.is_string(line)
      assert.is_nil(line:find("[\r\n]"))
      assert.matches("title", line)
      assert.matches("timezone", line)
    end)

    it("reads as one line even when a path or value holds newlines", function()
      local err = refused("calcom", H.UUID, calcom { ["bad\nkey\r\n"] = 1, timezone = "A\nB" })
      local line = tostring(err)
      assert.is_nil(line:find("%c"))
    end)

    it("is still one line when there are many problems", function()
      local body = {}
      for i = 1, 40 do body["unknown" .. i] = i end
      local err = refused("calcom", H.UUID, body)
      assert.equals(47, #err.fields)
      assert.is_nil(tostring(err):find("[\r\n]"))
    end)
  end)
end)

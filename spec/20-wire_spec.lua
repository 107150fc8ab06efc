-- What reaches the server, byte for byte: method, path, headers and body as
-- recorded by the stand-in (GET /_control/last).
local H = require "helpers"
local cjson = require "cjson"

local stand_in = H.stand_in

local CALCOM_PATH = "/api/v1/calcom/integration/"
local GCAL_PATH = "/api/v1/functions/"

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

-- A deep copy, so an expected body cannot share tables with the sent one.
local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- Make one call and return the recorded request; the call must succeed.
local function sent(client, endpoint, id, body)
  local res, err = client[endpoint].update(id, body)
  assert.is_nil(err, tostring(err))
  assert.is_table(res)
  local last = stand_in.last()
  assert.is_table(last, "the stand-in recorded no request")
  return last, res
end

local function decoded_body(last)
  assert.is_string(last.body)
  return cjson.decode(last.body)
end

-- The gcal body as it must arrive: the caller's fields plus the documented defaults.
local function gcal_expected(body)
  local expected = copy(body)
  if expected.type == nil then expected.type = "google-calendar" end
  if expected.outputs == nil then expected.outputs = {} end
  if expected.iconFileId == nil then expected.iconFileId = cjson.null end
  return expected
end

describe("wire format", function()
  local client

  before_each(function()
    stand_in.reset()
    client = H.client()
  end)

  after_each(function()
    if client then client:close() end
  end)

  describe("method and path", function()
    it("Cal.com update is PUT /api/v1/calcom/integration/{id}", function()
      local last = sent(client, "calcom", H.UUID, H.calcom_body())
      assert.equals("PUT", last.method)
      assert.equals(CALCOM_PATH .. H.UUID, last.uri)
      assert.equals("http", last.scheme)
    end)

    it("Google Calendar update is PUT /api/v1/functions/{id}", function()
      local last = sent(client, "gcal", H.UUID, H.gcal_body())
      assert.equals("PUT", last.method)
      assert.equals(GCAL_PATH .. H.UUID, last.uri)
    end)

    it("the colon form sends the same request", function()
      local res, err = client.calcom:update(H.UUID, H.calcom_body())
      assert.is_nil(err, tostring(err))
      assert.is_table(res)
      local last = stand_in.last()
      assert.equals("PUT", last.method)
      assert.equals(CALCOM_PATH .. H.UUID, last.uri)
    end)

    it("an upper-case id is sent as that id", function()
      local upper = H.UUID:upper()
      local last = sent(client, "gcal", upper, H.gcal_body())
      assert.equals((GCAL_PATH .. upper):lower(), last.uri:lower())
    end)

    it("a base_url with a trailing slash gives no double slash", function()
      local c = H.client { base_url = H.env.http_url .. "/" }
      local last = sent(c, "calcom", H.UUID, H.calcom_body())
      c:close()
      assert.equals(CALCOM_PATH .. H.UUID, last.uri)
    end)

    for _, suffix in ipairs { "", "/", "//" } do
      it("a base_url path prefix is kept (" .. (suffix == "" and "no" or suffix) .. " trailing slash)", function()
        -- /delay/0 is a prefix the stand-in understands, so the call still succeeds
        local c = H.client { base_url = H.env.http_url .. "/delay/0" .. suffix }
        local last = sent(c, "calcom", H.UUID, H.calcom_body())
        assert.equals("/delay/0" .. CALCOM_PATH .. H.UUID, last.uri)
        last = sent(c, "gcal", H.UUID, H.gcal_body())
        assert.equals("/delay/0" .. GCAL_PATH .. H.UUID, last.uri)
        c:close()
      end)
    end

    it("a two-segment prefix is kept on the wire", function()
      local c = H.client { base_url = H.env.http_url .. "/delay/0/delay/1/" }
      local last = sent(c, "gcal", H.UUID, H.gcal_body())
      c:close()
      assert.equals("/delay/0/delay/1" .. GCAL_PATH .. H.UUID, last.uri)
    end)

    it("the path has no query string", function()
      local last = sent(client, "gcal", H.UUID, H.gcal_body())
      assert.is_nil(last.uri:find("?", 1, true))
    end)
  end)

  describe("headers", function()
    local function header(last, name)
      local v = last.headers[name]
      assert.is_string(v, name .. " must be sent exactly once")
      return v
    end

    local function lua_version_names()
      local jit = rawget(_G, "jit")
      if jit then return { jit.version, _VERSION } end
      return { _VERSION }
    end

    local function expected_user_agents(extra)
      local toolzz = require "toolzz"
      local core = require "toolzz.core"
      local out = {}
      for _, lua in ipairs(lua_version_names()) do
        out[#out + 1] = "toolzz-lua/" .. toolzz._VERSION .. " (" .. lua .. "; libcurl/"
          .. core.curl_version .. ")" .. (extra and (" " .. extra) or "")
      end
      return out
    end

    local function assert_one_of(list, value)
      for _, x in ipairs(list) do
        if x == value then return end
      end
      error("unexpected value " .. string.format("%q", value) .. ", expected one of: " .. table.concat(list, " | "), 2)
    end

    it("Authorization is exactly 'Bearer <token>'", function()
      local last = sent(client, "calcom", H.UUID, H.calcom_body())
      assert.equals("Bearer " .. H.env.token, header(last, "authorization"))
    end)

    it("Content-Type is application/json and Accept asks for JSON", function()
      for _, endpoint in ipairs { "calcom", "gcal" } do
        local last = sent(client, endpoint, H.UUID, H[endpoint .. "_body"]())
        local content_type = header(last, "content-type")
        assert.truthy(content_type == "application/json"
          or content_type:lower():match("^application/json;%s*charset=utf%-8$"), content_type)
        assert.truthy(header(last, "accept"):find("application/json", 1, true))
      end
    end)

    it("User-Agent is toolzz-lua/<version> (<Lua version>; libcurl/<version>)", function()
      local toolzz = require "toolzz"
      assert.is_string(toolzz._VERSION)
      assert.truthy(toolzz._VERSION:match("^%d+%.%d+%.%d+"), toolzz._VERSION)
      local last = sent(client, "calcom", H.UUID, H.calcom_body())
      assert_one_of(expected_user_agents(), header(last, "user-agent"))
    end)

    it("the user_agent option is appended to the User-Agent", function()
      local c = H.client { user_agent = "my-app/2.3 (+https://example.com)" }
      local last = sent(c, "gcal", H.UUID, H.gcal_body())
      c:close()
      assert_one_of(expected_user_agents("my-app/2.3 (+https://example.com)"), header(last, "user-agent"))
    end)

    it("Content-Length is the body's byte length", function()
      local last = sent(client, "gcal", H.UUID, H.gcal_body { name = "Agenda 📅 ação" })
      assert.equals(tostring(#last.body), header(last, "content-length"))
      assert.is_nil(last.headers["transfer-encoding"])
    end)

    it("no Expect header, even for a large body", function()
      -- libcurl adds "Expect: 100-continue" on its own above 1 MB
      local big = string.rep("Agende reuniões de 30 minutos. ", 40000) -- ~1.3 MB
      local c = H.client { max_body_bytes = 4 * 1024 * 1024 }
      local last = sent(c, "calcom", H.UUID, H.calcom_body { prompt = big })
      c:close()
      assert.is_nil(last.headers.expect)
      assert.equals(big, decoded_body(last).prompt)
      assert.equals(tostring(#last.body), header(last, "content-length"))
    end)

    it("nothing but the expected headers is sent", function()
      local allowed = {
        host = true, authorization = true, ["content-type"] = true, accept = true,
        ["user-agent"] = true, ["content-length"] = true, ["accept-encoding"] = true,
      }
      local last = sent(client, "gcal", H.UUID, H.gcal_body())
      for name in pairs(last.headers) do
        assert.truthy(allowed[name], "unexpected request header " .. name)
      end
      for _, name in ipairs { "host", "authorization", "content-type", "accept", "user-agent" } do
        assert.is_string(last.headers[name], "missing header " .. name)
      end
    end)

    it("the same headers are sent over HTTP/2", function()
      local c = H.client { base_url = H.env.tls_url, ca_file = H.env.ca_file }
      local last = sent(c, "calcom", H.UUID, H.calcom_body())
      c:close()
      assert.equals("https", last.scheme)
      assert.equals("PUT", last.method)
      assert.equals(CALCOM_PATH .. H.UUID, last.uri)
      assert.equals("Bearer " .. H.env.token, header(last, "authorization"))
      assert_one_of(expected_user_agents(), header(last, "user-agent"))
      assert.is_nil(last.headers.expect)
      assert.same(H.calcom_body(), decoded_body(last))
    end)
  end)

  describe("body", function()
    it("Cal.com: exactly the caller's fields, nothing added", function()
      local body = H.calcom_body()
      local last = sent(client, "calcom", H.UUID, body)
      local got = decoded_body(last)
      assert.same(H.calcom_body(), got)
      assert.same(sorted_keys(H.calcom_body()), sorted_keys(got))
      assert.equals(false, decoded_body(sent(client, "calcom", H.UUID,
        H.calcom_body { createBookingEnabled = false })).createBookingEnabled)
    end)

    it("Cal.com booleans are JSON booleans", function()
      local last = sent(client, "calcom", H.UUID, H.calcom_body { checkAvailabilityEnabled = false })
      assert.truthy(last.body:find('"checkAvailabilityEnabled":false', 1, true), last.body)
      assert.truthy(last.body:find('"createBookingEnabled":true', 1, true), last.body)
    end)

    it("Google Calendar: the caller's fields plus type, outputs and iconFileId", function()
      local last = sent(client, "gcal", H.UUID, H.gcal_body())
      local got = decoded_body(last)
      assert.same(gcal_expected(H.gcal_body()), got)
      assert.same({ "description", "googleCalendar", "iconFileId", "name", "outputs", "type", "unityId", "userId" },
        sorted_keys(got))
      assert.same({ "calendarId", "googleId", "googleToken", "googleUser", "notificationContent", "timezone" },
        sorted_keys(got.googleCalendar))
      assert.same({ "email", "family_name", "given_name", "hd", "name", "picture" },
        sorted_keys(got.googleCalendar.googleUser))
      assert.equals("google-calendar", got.type)
      assert.equals(cjson.null, got.iconFileId)
    end)

    it('the raw gcal body carries "outputs":[] and "iconFileId":null literally', function()
      local last = sent(client, "gcal", H.UUID, H.gcal_body())
      assert.truthy(last.body:find('"outputs":[]', 1, true), last.body)
      assert.truthy(last.body:find('"iconFileId":null', 1, true), last.body)
      assert.is_nil(last.body:find('"outputs":{}', 1, true))
    end)

    it("optional fields left out are not sent", function()
      local body = H.gcal_body()
      body.googleCalendar.notificationContent = nil
      body.googleCalendar.googleUser.picture = nil
      body.googleCalendar.googleUser.hd = nil
      local got = decoded_body(sent(client, "gcal", H.UUID, body))
      assert.same({ "calendarId", "googleId", "googleToken", "googleUser", "timezone" },
        sorted_keys(got.googleCalendar))
      assert.same({ "email", "family_name", "given_name", "name" }, sorted_keys(got.googleCalendar.googleUser))
    end)

    local empty_outputs = {
      ["a plain {}"] = function() return {} end,
      ["toolzz.array()"] = function() return require("toolzz").array() end,
      ["a decoded [] from a response"] = function() return cjson.decode('{"outputs":[]}').outputs end,
    }
    for label, make in pairs(empty_outputs) do
      it('outputs given as ' .. label .. ' is written "outputs":[]', function()
        local last = sent(client, "gcal", H.UUID, H.gcal_body { outputs = make() })
        assert.truthy(last.body:find('"outputs":[]', 1, true), last.body)
        assert.same({}, decoded_body(last).outputs)
      end)
    end

    it("caller-given type, iconFileId and non-empty outputs are sent as given", function()
      local icon = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
      local body = H.gcal_body { type = "google-calendar", iconFileId = icon, outputs = { "startTime", "email" } }
      local got = decoded_body(sent(client, "gcal", H.UUID, body))
      assert.equals(icon, got.iconFileId)
      assert.same({ "startTime", "email" }, got.outputs)
      assert.same(gcal_expected(body), got)
    end)

    it("an explicit iconFileId = toolzz.null is sent as null", function()
      local toolzz = require "toolzz"
      local last = sent(client, "gcal", H.UUID, H.gcal_body { iconFileId = toolzz.null })
      assert.truthy(last.body:find('"iconFileId":null', 1, true), last.body)
    end)

    it("client defaults a Google Calendar body does not know are not sent", function()
      local c = H.client { defaults = { unitId = H.UNIT, timezone = "UTC" } }
      local got = decoded_body(sent(c, "gcal", H.UUID, H.gcal_body()))
      c:close()
      assert.is_nil(got.unitId)
      assert.is_nil(got.timezone)
      assert.same(gcal_expected(H.gcal_body()), got)
    end)

    it("the caller's table is sent as it was at the call, and left as it was", function()
      local body = H.gcal_body()
      local got = decoded_body(sent(client, "gcal", H.UUID, body))
      assert.same(H.gcal_body(), body) -- no defaults written into the caller's table
      assert.same(gcal_expected(H.gcal_body()), got)
    end)
  end)

  describe("text", function()
    local samples = {
      portuguese = "Reunião de ação — coração, pão, maçã",
      emoji = "📅 ✅ 👩‍💻 🇧🇷 😀",
      quotes = [[She said "hi" and 'bye' \ back\slash /slash]],
      newlines = "line one\nline two\r\nline three\ttabbed",
      controls = "bell\7 escape\27 unit\31 del\127",
      cjk = "会議を予約する 日程 예약",
      rtl = "حجز موعد עברית",
      separators = "a\226\128\168b\226\128\169c", -- U+2028, U+2029
      json_like = '{"title":"x"}, [1,2], null, true',
    }

    for label, text in pairs(samples) do
      it(label .. " arrives intact in every string field", function()
        local calcom = H.calcom_body { title = text, prompt = text .. "\n" .. text, calcomUsername = text }
        local got = decoded_body(sent(client, "calcom", H.UUID, calcom))
        assert.equals(text, got.title)
        assert.equals(text .. "\n" .. text, got.prompt)
        assert.equals(text, got.calcomUsername)
        assert.same(calcom, got)

        local gcal = H.gcal_body { name = text, description = text }
        gcal.googleCalendar.notificationContent = text
        gcal.googleCalendar.calendarId = text
        gcal.googleCalendar.googleUser.name = text
        gcal.googleCalendar.googleUser.given_name = text
        got = decoded_body(sent(client, "gcal", H.UUID, gcal))
        assert.equals(text, got.name)
        assert.equals(text, got.googleCalendar.notificationContent)
        assert.equals(text, got.googleCalendar.googleUser.given_name)
        assert.same(gcal_expected(gcal), got)
      end)
    end

    it("the raw body is valid JSON on one line (newlines escaped)", function()
      local last = sent(client, "calcom", H.UUID, H.calcom_body { prompt = "a\nb\r\nc" })
      assert.is_nil(last.body:find("[\r\n]"))
      assert.equals("a\nb\r\nc", decoded_body(last).prompt)
    end)

    it("a NUL byte inside a string arrives intact", function()
      local text = "before\0after"
      local got = decoded_body(sent(client, "calcom", H.UUID, H.calcom_body { prompt = text }))
      assert.equals(text, got.prompt)
    end)

    it("the response echoes the text unchanged too", function()
      local text = samples.emoji .. " " .. samples.quotes .. " " .. samples.newlines
      local _, res = sent(client, "calcom", H.UUID, H.calcom_body { title = text })
      assert.equals(text, res.title)
    end)
  end)
end)

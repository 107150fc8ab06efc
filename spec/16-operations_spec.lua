-- Part 2: every call reaches its own host with its method, path, headers and
-- body (or none), over plain http and TLS, and answers in the contract's
-- shapes. The stand-in serves each call only on its host's server block.
local H = require "helpers"
local cjson = require "cjson"
local toolzz = require "toolzz"

local S = H.stand_in

local CALCOM = "/api/v1/calcom/integration"
local FUNCTIONS = "/api/v1/functions/"

-- Records every case can use, made through the stand-in's control API so
-- that the call under test is the only request recorded.
local function seed()
  local calcom_id = S.put_record("calcom", H.calcom_create_body())
  local gcal_id = S.put_record("function", H.gcal_body { type = "google-calendar" })
  return calcom_id, gcal_id
end

-- name, arguments (from the seeded ids), method, host, path, whether a body is sent
local CASES = {
  { "calcom.create", function() return H.calcom_create_body() end, "POST", "converflow", CALCOM, true },
  { "calcom.get", function(c) return c end, "GET", "converflow", CALCOM .. "/%s", false },
  { "calcom.list", function() return H.UNIT end, "GET", "converflow", CALCOM .. "/unit/" .. H.UNIT, false },
  { "calcom.update", function(c) return c, H.calcom_body() end, "PUT", "chat", CALCOM .. "/%s", true },
  { "calcom.patch", function(c) return c, { prompt = "changed" } end, "PUT", "chat", CALCOM .. "/%s", true },
  { "gcal.create", function() return H.gcal_body() end, "POST", "chat", FUNCTIONS, true },
  { "gcal.get", function(_, g) return g end, "GET", "chat", FUNCTIONS .. "%s", false },
  { "gcal.list", function() return H.UNIT end, "GET", "chat", FUNCTIONS .. "unity/" .. H.UNIT, false },
  { "gcal.update", function(_, g) return g, H.gcal_body() end, "PUT", "chat", FUNCTIONS .. "%s", true },
  { "gcal.patch", function(_, g) return g, { name = "changed" } end, "PUT", "chat", FUNCTIONS .. "%s", true },
  { "gcal.duplicate", function(_, g) return g end, "POST", "chat", FUNCTIONS .. "duplicate/%s", false },
}

local function call(client, name, ...)
  local group, verb = name:match("^(%w+)%.(%w+)$")
  return client[group][verb](...)
end

for _, scheme in ipairs { "http", "tls" } do
  describe("Part 2 calls over " .. scheme, function()
    local client
    before_each(function()
      S.reset()
      local tls = scheme == "tls"
      client = H.client {
        base_url = tls and H.env.tls_url or H.env.http_url,
        converflow_url = tls and H.env.cf_tls_url or H.env.cf_http_url,
        ca_file = tls and H.env.ca_file or nil,
      }
    end)
    after_each(function() client:close() end)

    for _, case in ipairs(CASES) do
      local name, args, method, host, path, has_body = case[1], case[2], case[3], case[4], case[5], case[6]
      it(name .. " sends " .. method .. " to the " .. host .. " host" .. (has_body and "" or " with no body"), function()
        local calcom_id, gcal_id = seed()
        local a, b = args(calcom_id, gcal_id)
        local res, err = call(client, name, a, b)
        assert.is_nil(err, tostring(err))
        assert.is_table(res)
        local last = S.last()
        assert.equals(method, last.method)
        assert.equals(host, last.host)
        local id = name:match("^calcom") and calcom_id or gcal_id
        assert.equals(path:format(id), last.uri)
        assert.equals(scheme == "tls" and "https" or "http", last.scheme)
        local headers = last.headers
        assert.equals("Bearer " .. H.env.token, headers.authorization)
        assert.equals("application/json", headers.accept)
        assert.matches("^toolzz%-lua/", headers["user-agent"])
        if has_body then
          assert.equals("application/json", headers["content-type"])
          assert.is_table(cjson.decode(last.body))
        else
          assert.equals("", last.body)
          assert.is_nil(headers["content-type"], "a call without a body sends no Content-Type")
          assert.is_true(headers["content-length"] == nil or headers["content-length"] == "0")
        end
      end)
    end
  end)
end

describe("Part 2 answers", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("create returns the new record; get and list return what it stored", function()
    local created = assert(client.calcom.create(H.calcom_create_body { title = "Sales" }))
    assert.is_true(require("toolzz.validate").is_uuid(created.id))
    assert.equals("cal_****************", created.apiKey)
    assert.is_true(created.isTokenMasked)
    local got = assert(client.calcom.get(created.id))
    assert.equals("Sales", got.title)
    local list = assert(client.calcom.list(H.UNIT))
    assert.equals(1, #list)
    assert.equals(created.id, list[1].id)
    assert.is_nil(list.data, "the list is unwrapped")
  end)

  it("gcal.create fills the documented defaults and accepts googleUser.id and verified_email", function()
    local body = H.gcal_body()
    body.googleCalendar.googleUser.id = "109876543210987654321"
    body.googleCalendar.googleUser.verified_email = true
    local created = assert(client.gcal.create(body))
    local sent = cjson.decode(S.last().body)
    assert.equals("google-calendar", sent.type)
    assert.same({}, sent.outputs)
    assert.matches('"outputs":%[%]', S.last().body)
    assert.equals(cjson.null, sent.iconFileId)
    assert.equals(true, sent.googleCalendar.googleUser.verified_email)
    assert.equals(created.id, assert(client.gcal.get(created.id)).id)
  end)

  it("gcal.update refuses googleUser.id, which only a create takes", function()
    local body = H.gcal_body()
    body.googleCalendar.googleUser.id = "1"
    local res, err = client.gcal.update(H.UUID, body)
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("googleCalendar.googleUser.id", err.fields[1].path)
  end)

  it("calcom.create requires a non-empty apiKey and every update field", function()
    local res, err = client.calcom.create(H.calcom_body { apiKey = "" })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("apiKey", err.fields[1].path)
    res, err = client.calcom.create { apiKey = H.API_KEY }
    assert.is_nil(res)
    assert.equals(7, #err.fields)
    assert.equals(0, S.stats().requests)
  end)

  it("gcal.list keeps only Google Calendar functions; gcal.get returns any type", function()
    local js = S.put_record("function", { name = "js", description = "d", type = "javascript",
                                          userId = H.USER, unityId = H.UNIT })
    local g = assert(client.gcal.create(H.gcal_body()))
    local list = assert(client.gcal.list(H.UNIT))
    assert.equals(1, #list)
    assert.equals(g.id, list[1].id)
    assert.equals("javascript", assert(client.gcal.get(js)).type)
  end)

  it("an empty list is an empty table", function()
    assert.same({}, assert(client.calcom.list(H.USER)))
    assert.same({}, assert(client.gcal.list(H.USER)))
  end)

  it("an answer without the expected wrapper is a decode error", function()
    for _, case in ipairs {
      { "calcom.list", '{"items":[]}' }, { "gcal.list", '{"data":[]}' }, { "gcal.list", '{"items":{"a":1}}' },
      { "calcom.list", '{"data":[1]}' },
    } do
      S.faults { { status = 200, body = case[2] } }
      local res, err = call(client, case[1], H.UNIT)
      assert.is_nil(res, case[2])
      assert.equals("decode", err.kind, case[2])
      assert.equals(case[1], err.op)
    end
  end)

  it("duplicate returns the new copy as the API gives it", function()
    local g = assert(client.gcal.create(H.gcal_body()))
    local copy = assert(client.gcal.duplicate(g.id))
    assert.are_not.equals(g.id, copy.id)
    assert.is_false(copy.isActivated)
    assert.equals(2, #assert(client.gcal.list(H.UNIT)))
  end)

  it("unknown ids are http 404 errors that name the call", function()
    for _, name in ipairs { "calcom.get", "gcal.get", "gcal.duplicate" } do
      local res, err = call(client, name, H.USER)
      assert.is_nil(res)
      assert.equals("http", err.kind)
      assert.equals(404, err.status)
      assert.equals(name, err.op)
      assert.matches("^toolzz: " .. name:gsub("%.", "%%.") .. ": http 404", tostring(err))
    end
  end)

  it("a call sent to the wrong host gets a 404", function()
    local swapped = H.client { base_url = H.env.cf_http_url, converflow_url = H.env.http_url }
    local calcom_id = S.put_record("calcom", H.calcom_create_body())
    local gcal_id = S.put_record("function", H.gcal_body())
    local _, err = swapped.calcom.get(calcom_id)
    assert.equals(404, err.status)
    _, err = swapped.gcal.get(gcal_id)
    assert.equals(404, err.status)
    _, err = swapped.calcom.update(calcom_id, H.calcom_body())
    assert.equals(404, err.status)
    swapped:close()
  end)

  it("ids and unit ids are validated before anything is sent", function()
    for _, name in ipairs { "calcom.get", "calcom.list", "gcal.get", "gcal.list", "gcal.duplicate",
                            "calcom.patch", "gcal.patch" } do
      for _, bad in ipairs { "../x", 12345, "6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab/x", "" } do
        local res, err = call(client, name, bad, {})
        assert.is_nil(res)
        assert.equals("validation", err.kind, name)
        local want = ({ ["calcom.list"] = "unit_id", ["gcal.list"] = "unity_id" })[name] or "id"
        assert.equals(want, err.fields[1].path)
        assert.equals(name, err.op)
      end
    end
    assert.equals(0, S.stats().requests)
  end)

  it("works in colon form too", function()
    local g = assert(client.gcal:create(H.gcal_body()))
    assert.equals(g.id, assert(client.gcal:get(g.id)).id)
    assert.equals(1, #assert(client.gcal:list(H.UNIT)))
  end)
end)

describe("converflow_url", function()
  it("is validated like base_url and named in the error", function()
    for _, url in ipairs { "ftp://x", "http://example.com", "https://a b", "https://x/?q" } do
      local client, err = toolzz.new { token = H.env.token, converflow_url = url }
      assert.is_nil(client)
      assert.equals("config", err.kind)
      assert.matches("converflow_url", err.message, 1, true)
    end
  end)

  it("and base_url are independent", function()
    local testing = require "toolzz.testing"
    local client = assert(toolzz.new { token = H.env.token, base_url = H.env.http_url })
    assert.same({ H.env.http_url, "https://converflow.api.prod.toolzz.media" }, { testing.urls(client) })
    client = assert(toolzz.new { token = H.env.token, converflow_url = H.env.cf_http_url })
    assert.same({ "https://chat.api.toolzz.com.br", H.env.cf_http_url }, { testing.urls(client) })
  end)
end)

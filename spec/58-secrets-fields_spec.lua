-- Secret fields: a Cal.com apiKey and a googleToken read by a patch never
-- reach an error, a hook, a log line or tostring.
local H = require "helpers"
local S = H.stand_in

local function observe(fn)
  return H.observe({ timeout = 5 }, fn)
end

local function assert_clean(secrets, ...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local found = H.contains_secret(v, secrets)
    assert.is_nil(found, "a secret leaked in: " .. tostring(found))
  end
end

describe("secret fields", function()
  before_each(function() S.reset() end)

  it("an apiKey echoed by the server in an error never shows", function()
    S.faults { { status = 400, body = '{"message":"apiKey ' .. H.API_KEY .. ' is invalid","apiKey":"'
      .. H.API_KEY .. '"}' } }
    local res, err, seen, printed, client = observe(function(c) return c.calcom.create(H.calcom_create_body()) end)
    assert.is_nil(res)
    assert.equals("http", err.kind)
    assert.matches("[REDACTED]", err.message, 1, true)
    assert_clean({ H.API_KEY, H.env.token }, err, tostring(err), seen, printed, tostring(client))
  end)

  it("an apiKey in a validation error of a create never shows", function()
    local res, err = H.client().calcom.create(H.calcom_create_body { [H.API_KEY] = true })
    assert.is_nil(res)
    assert_clean({ H.API_KEY }, err, tostring(err))
  end)

  it("the googleToken a patch read never shows when the PUT fails", function()
    local id = S.put_record("function", H.gcal_body())
    S.faults { {}, { status = 422, body = '{"message":"token ' .. H.GOOGLE_TOKEN .. ' expired"}' } }
    local res, err, seen, printed = observe(function(c) return c.gcal.patch(id, { name = "x" }) end)
    assert.is_nil(res)
    assert.equals(422, err.status)
    assert.equals("update", err.step)
    assert_clean({ H.GOOGLE_TOKEN, H.env.token }, err, tostring(err), seen, printed)
  end)

  it("nor when the merged body is invalid", function()
    local body = H.gcal_body()
    body.googleCalendar.timezone = H.GOOGLE_TOKEN -- a hostile record: the token where a zone belongs
    local id = S.put_record("function", body)
    local res, err = H.client().gcal.patch(id, {})
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert_clean({ H.GOOGLE_TOKEN }, err, tostring(err))
  end)
end)

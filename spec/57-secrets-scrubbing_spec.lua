-- Secrets in odd places: a record's fields copied into an error, a token a
-- patch read and then rotated, secrets deep in an error body or cut by the
-- err.body cap, an apiKey sent through a non-strict body. Each spec here
-- failed when it was written and names the defect it shows; hostile answers
-- are played back by the stand-in's faults ({} = the normal answer).
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in
local NEW_GOOGLE_TOKEN = "ya29.a0-rotated-google-token-0000000001"

local function no_secret(v, secrets, what)
  local found = H.contains_secret(v, secrets)
  assert.is_nil(found, (what or "value") .. " carries a secret: " .. tostring(found))
end

describe("secrets scrubbing", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("gcal.patch does not copy a record's type into the error unscrubbed (the token)", function()
    local id = S.put_record("function", H.gcal_body { type = H.env.token })
    local res, err = client.gcal.patch(id, { name = "x" })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("update", err.step)
    no_secret(err, { H.env.token }, "the error")
    assert.equals(0, S.writes())
  end)

  it("a patch that rotates the googleToken never lets the old one it read reach an error, hook or log", function()
    local id = S.put_record("function", H.gcal_body())
    local record = H.gcal_body()
    S.faults { {}, -- the GET answers normally; the PUT fails and echoes what is stored
      { status = 409, body = cjson.encode { message = "token " .. H.GOOGLE_TOKEN .. " is still in use",
                                            stored = record } } }
    local res, err, seen, printed = H.observe({ retries = 0 }, function(c)
      return c.gcal.patch(id, { googleCalendar = { googleToken = NEW_GOOGLE_TOKEN } })
    end)
    assert.is_nil(res)
    assert.equals("http", err.kind)
    assert.equals(409, err.status)
    assert.equals("update", err.step)
    no_secret(err, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "the error")
    no_secret(seen, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "a hook's info")
    no_secret(printed, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "the log")
  end)

  it("secrets nested deeper than 32 levels in a JSON error body are scrubbed from err.data", function()
    local deep = { apiKey = H.API_KEY, auth = "Bearer " .. H.env.token }
    for _ = 1, 40 do deep = { inner = deep } end
    S.faults { { status = 400, body = cjson.encode { message = "bad request", detail = deep } } }
    local res, err = client.calcom.create(H.calcom_create_body())
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.is_table(err.data)
    no_secret(err, { H.API_KEY, H.env.token }, "the error")
  end)

  it("a secret cut in two by the err.body cap leaves no piece of it in err.body", function()
    local cap = require("toolzz.errors").BODY_CAP
    S.faults { { status = 400, content_type = "text/plain", body = ("x"):rep(cap - 12) .. H.API_KEY } }
    local res, err = client.calcom.create(H.calcom_create_body())
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.is_nil(err.body:find(H.API_KEY:sub(1, 12), 1, true), "err.body ends with " .. err.body:sub(-12))
  end)

  it("non-strict calcom.update and calcom.patch treat an apiKey sent through as a secret", function()
    local loose = H.client { strict = false }
    S.faults { { status = 400, body = cjson.encode { message = "apiKey " .. H.API_KEY .. " was refused" } } }
    local res, err = loose.calcom.update(H.UUID, H.calcom_body { apiKey = H.API_KEY })
    assert.is_nil(res)
    assert.equals(400, err.status)
    no_secret(err, { H.API_KEY }, "the update error")

    local id = S.put_record("calcom", H.calcom_create_body())
    S.faults { {}, { status = 400, body = cjson.encode { message = "apiKey " .. H.API_KEY .. " was refused" } } }
    res, err = loose.calcom.patch(id, { apiKey = H.API_KEY })
    loose:close()
    assert.is_nil(res)
    assert.equals(400, err.status)
    no_secret(err, { H.API_KEY }, "the patch error")
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
end)

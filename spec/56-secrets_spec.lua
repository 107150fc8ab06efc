-- The bearer token and a googleToken from the body never show: not in an
-- error's fields or tostring, not in a hook's argument, not in anything the
-- module prints, not in tostring(client) -- whatever kind of failure.
local H = require "helpers"
local S = H.stand_in

describe("secret hygiene", function()
  local secrets = { H.env.token, H.GOOGLE_TOKEN }
  before_each(function() S.reset() end)

  local observe = H.observe

  local cases = {
    { "http 401 whose message echoes the token", {}, { { status = 401,
        body = '{"message":"bad token ' .. H.env.token .. '"}' } }, "http" },
    { "http 400 whose body echoes the googleToken", {}, { { status = 400,
        body = '{"message":"invalid googleToken ' .. H.GOOGLE_TOKEN .. '","token":"' .. H.GOOGLE_TOKEN .. '"}' } }, "http" },
    { "http 503 retried, echoing both", {}, {
        { status = 503, body = '{"message":"' .. H.env.token .. '"}', headers = { ["Retry-After"] = "0" } },
        { status = 503, body = '{"message":"' .. H.GOOGLE_TOKEN .. '"}', headers = { ["Retry-After"] = "0" } } }, "http" },
    { "decode error of a body echoing the token", {}, { { status = 200,
        body = "not json " .. H.env.token .. " " .. H.GOOGLE_TOKEN } }, "decode" },
    { "limit", { max_response_bytes = 1000 }, { { big = 5000 } }, "limit" },
    { "timeout", { timeout = 0.3, retries = 0 }, { { stall = 2 } }, "timeout" },
    { "network drop", { retries = 0 }, { { drop = true } }, "network" },
  }

  for _, case in ipairs(cases) do
    it("for " .. case[1], function()
      S.faults(case[3])
      local res, err, seen, printed, client = observe(case[2], function(client)
        return client.gcal.update(H.UUID, H.gcal_body())
      end)
      assert.is_nil(res)
      assert.equals(case[4], err.kind)
      assert.is_true(#seen >= 2)
      assert.is_nil(H.contains_secret(err, secrets))
      assert.is_nil(tostring(err):find(H.env.token, 1, true))
      assert.is_nil(H.contains_secret(seen, secrets))
      assert.is_nil(printed:find(H.env.token, 1, true))
      assert.is_nil(printed:find(H.GOOGLE_TOKEN, 1, true))
      assert.is_nil(tostring(client):find(H.env.token, 1, true))
    end)
  end

  it("for tls, network refused and validation errors", function()
    local runs = {
      { { base_url = H.env.tls_bad_url, ca_file = H.env.ca_file }, "tls" },
      { { base_url = "http://127.0.0.1:" .. H.closed_port() }, "network" },
    }
    for _, run in ipairs(runs) do
      local _, err, seen, printed = observe(run[1], function(client)
        return client.gcal.update(H.UUID, H.gcal_body())
      end)
      assert.equals(run[2], err.kind)
      assert.is_nil(H.contains_secret({ err, tostring(err), seen, printed }, secrets))
    end
    local _, err = observe({}, function(client)
      return client.gcal.update("not-a-uuid", H.gcal_body { userId = H.GOOGLE_TOKEN, extra = H.env.token })
    end)
    assert.equals("validation", err.kind)
    assert.is_nil(H.contains_secret({ err, tostring(err) }, secrets))
  end)

  it("config errors never quote the token", function()
    local toolzz = require "toolzz"
    for _, bad in ipairs { H.env.token .. "\r\nX-Evil: 1", H.env.token .. "\0", "\n" .. H.env.token } do
      local client, err = toolzz.new { token = bad, base_url = H.env.http_url }
      assert.is_nil(client)
      assert.equals("config", err.kind)
      assert.is_nil(H.contains_secret({ err, tostring(err) }, { H.env.token }))
    end
  end)

  it("the client table itself does not hold the token", function()
    local client = H.client()
    assert.is_nil(H.contains_secret(client, { H.env.token }))
    assert.is_nil(tostring(client):find(H.env.token, 1, true))
  end)
end)

-- Contract "Hooks": on_request before each attempt, on_response after it.
local H = require "helpers"
local S = H.stand_in

local function capture_stderr(fn)
  local lines = {}
  local real = io.stderr
  io.stderr = { write = function(_, ...) -- luacheck: ignore 122
    for _, s in ipairs { ... } do lines[#lines + 1] = tostring(s) end
  end }
  local ok, failure = pcall(fn)
  io.stderr = real -- luacheck: ignore 122
  assert(ok, failure)
  return table.concat(lines)
end

describe("hooks", function()
  before_each(function() S.reset() end)

  it("on_request runs before each attempt and on_response after it, with the contract's info", function()
    local events = {}
    local client = H.client {
      retries = 1,
      on_request = function(info) events[#events + 1] = { "request", info } end,
      on_response = function(info) events[#events + 1] = { "response", info } end,
    }
    S.faults { { status = 503, request_id = "req-503", headers = { ["Retry-After"] = "0" } } }
    local res = assert(client.calcom.update(H.UUID, H.calcom_body()))
    assert.equals(H.UUID, res.id)
    assert.equals(4, #events)
    assert.same({ "request", "response", "request", "response" },
      { events[1][1], events[2][1], events[3][1], events[4][1] })
    local url = H.env.http_url .. "/api/v1/calcom/integration/" .. H.UUID
    for i, e in ipairs(events) do
      local info = e[2]
      assert.equals("PUT", info.method)
      assert.equals(url, info.url)
      assert.equals(i <= 2 and 1 or 2, info.attempt)
    end
    local first, second = events[2][2], events[4][2]
    assert.equals(503, first.status)
    assert.equals("req-503", first.request_id)
    assert.matches("^toolzz: http 503", first.error)
    assert.is_number(first.elapsed)
    assert.equals(200, second.status)
    assert.is_nil(second.error)
    assert.matches("^%x+$", second.request_id)
    assert.is_true(second.elapsed >= 0 and second.elapsed < 5)
  end)

  it("reports a network failure to on_response with no status", function()
    local seen
    local client = H.client { base_url = "http://127.0.0.1:" .. H.closed_port(),
                              on_response = function(info) seen = info end }
    local _, err = client.calcom.update(H.UUID, H.calcom_body())
    assert.equals("network", err.kind)
    assert.is_nil(seen.status)
    assert.matches("^toolzz: network", seen.error)
  end)

  it("a hook that raises does not break the call and is reported without secrets", function()
    local client = H.client {
      on_request = function() error("boom " .. H.env.token) end,
      on_response = function() error({ "not even a string" }) end,
    }
    local res, err
    local printed = capture_stderr(function()
      res, err = client.gcal.update(H.UUID, H.gcal_body())
    end)
    assert.is_nil(err)
    assert.equals(H.UUID, res.id)
    assert.matches("on_request hook failed", printed, 1, true)
    assert.matches("on_response hook failed", printed, 1, true)
    assert.is_nil(printed:find(H.env.token, 1, true))
    -- the client is still usable
    assert.is_table((client.calcom.update(H.UUID, H.calcom_body())))
  end)

  it("hooks never see the token nor the request body", function()
    local infos = {}
    local client = H.client {
      retries = 1,
      on_request = function(info) infos[#infos + 1] = info end,
      on_response = function(info) infos[#infos + 1] = info end,
    }
    S.faults { { status = 500, body = '{"message":"echo ' .. H.GOOGLE_TOKEN .. '"}',
                 headers = { ["Retry-After"] = "0" } } }
    assert.is_table((client.gcal.update(H.UUID, H.gcal_body())))
    assert.equals(4, #infos)
    for _, info in ipairs(infos) do
      assert.is_nil(H.contains_secret(info, { H.env.token, H.GOOGLE_TOKEN, "googleCalendar" }))
      for k in pairs(info) do
        assert.truthy(({ method = 1, url = 1, attempt = 1, status = 1, elapsed = 1,
                         request_id = 1, error = 1 })[k], "unexpected info field " .. k)
      end
    end
  end)
end)

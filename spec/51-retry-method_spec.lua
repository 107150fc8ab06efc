-- Part 2 "Retries by method": GET and PUT are retried as in Part 1; a POST
-- (create, duplicate) only when it certainly never reached the server (the
-- connection could not be made) or on 429, and the transport never sends it
-- twice on its own (a fresh connection for each POST).
local H = require "helpers"
local retry = require "toolzz.retry"

local S = H.stand_in

local recording_client = H.recording_client

local POSTS = {
  { "gcal.create", function(c) return c.gcal.create(H.gcal_body()) end },
  { "calcom.create", function(c) return c.calcom.create(H.calcom_create_body()) end },
  { "gcal.duplicate", function(c, id) return c.gcal.duplicate(id) end },
}

describe("retries by method", function()
  before_each(function() S.reset() end)

  it("the policy: POST only when not sent, or on 429", function()
    for _, kind in ipairs { "network", "timeout" } do
      assert.is_true(retry.retryable({ kind = kind }, false, false), kind)
      assert.is_false(retry.retryable({ kind = kind }, false, true), kind)
      assert.is_false(retry.retryable({ kind = kind }, false, nil), kind .. ": unknown counts as sent")
      assert.is_true(retry.retryable({ kind = kind }, true, true), kind .. " (idempotent)")
    end
    assert.is_true(retry.retryable({ kind = "http", status = 429 }, false, true))
    for _, status in ipairs { 408, 425, 500, 502, 503, 504 } do
      assert.is_false(retry.retryable({ kind = "http", status = status }, false, true), status)
      assert.is_true(retry.retryable({ kind = "http", status = status }, true, true), status)
    end
  end)

  for _, case in ipairs(POSTS) do
    local name, call = case[1], case[2]
    describe(name, function()
      local id
      before_each(function() id = S.put_record("function", H.gcal_body()) end)

      it("is retried when the connection is refused", function()
        local client, starts = recording_client { base_url = "http://127.0.0.1:" .. H.closed_port(),
                                                  converflow_url = "http://127.0.0.1:" .. H.closed_port() }
        local res, err = call(client, id)
        assert.is_nil(res)
        assert.equals("network", err.kind)
        assert.equals(3, err.attempts)
        assert.equals(3, #starts)
      end)

      it("is retried on 429", function()
        S.faults { { status = 429, headers = { ["Retry-After"] = "0" } } }
        local client, starts = recording_client()
        assert(call(client, id))
        assert.equals(2, #starts)
        assert.equals(2, S.writes())
      end)

      for _, fault in ipairs {
        { "a 503", { status = 503, headers = { ["Retry-After"] = "0" } }, "http" },
        { "a 500", { status = 500 }, "http" },
        { "a timeout after sending", { stall = 3 }, "timeout" },
        { "a dropped connection", { drop = true }, "network" },
      } do
        it("is never retried after " .. fault[1], function()
          S.faults { fault[2], fault[2], fault[2] }
          local client, starts = recording_client { timeout = 0.5 }
          local res, err = call(client, id)
          assert.is_nil(res)
          assert.equals(fault[3], err.kind)
          assert.equals(1, err.attempts)
          assert.equals(1, #starts)
          assert.equals(1, S.writes())
          assert.equals(name, err.op)
        end)
      end
    end)
  end

  it("each POST goes on a fresh connection, never a reused one", function()
    local client = H.client()
    assert(client.gcal.get(S.put_record("function", H.gcal_body()))) -- opens a connection
    for _ = 1, 3 do assert(client.gcal.create(H.gcal_body())) end
    assert.equals(4, S.stats().connections)
    client:close()
  end)

  it("GET is retried like PUT", function()
    local id = S.put_record("function", H.gcal_body())
    S.faults { { status = 503, headers = { ["Retry-After"] = "0" } }, { status = 502, headers = { ["Retry-After"] = "0" } } }
    local client, starts = recording_client()
    assert(client.gcal.get(id))
    assert.equals(3, #starts)
  end)
end)

-- client.batch runs own their transfers: a batch that is abandoned (its
-- coroutine never resumed, unwound by an error) or started from inside
-- another batch never hands its answers to another batch.
local H = require "helpers"
local S = H.stand_in

-- n Cal.com updates whose titles say which batch and item they are.
local function requests(label, n)
  local list = {}
  for i = 1, n do
    list[i] = { "calcom", H.UUID, H.calcom_body { title = label .. " " .. i } }
  end
  return list
end

-- Every item succeeded with its own answer.
local function assert_own_results(label, results, n)
  assert.equals(n, #results)
  for i = 1, n do
    local r = results[i]
    assert.is_nil(r.err, label .. " item " .. i .. ": " .. tostring(r.err))
    assert.equals(label .. " " .. i, r.res.title, label .. " item " .. i .. " got another item's answer")
  end
end

local function pending_transfers(client)
  local curl = require("toolzz.testing").curl_transport(client)
  return curl and curl:pending() or 0
end

describe("batch runs", function()
  before_each(function() S.reset() end)

  it("a batch started from on_progress of another batch is a config error; the outer one completes", function()
    local client = H.client { base_url = H.env.http_url .. "/delay/100" }
    local inner = {}
    local results = assert(client.batch(requests("outer", 8), { concurrency = 4, on_progress = function()
      local res, err = client.batch(requests("inner", 2))
      inner[#inner + 1] = { res = res, err = err }
    end }))
    assert_own_results("outer", results, 8)
    assert.equals(8, #inner)
    for _, r in ipairs(inner) do
      assert.is_nil(r.res)
      assert.equals("config", r.err.kind)
      assert.matches("another batch", r.err.message)
    end
    assert.equals(8, S.stats().requests)
    assert.equals(0, pending_transfers(client))
  end)

  it("a batch started from a hook of another batch is a config error; the outer one completes", function()
    local client
    local inner_errors = {}
    client = H.client { base_url = H.env.http_url .. "/delay/100", on_response = function()
      local _, err = client.batch(requests("inner", 1))
      inner_errors[#inner_errors + 1] = err and err.kind or "none"
    end }
    local results = assert(client.batch(requests("outer", 6), { concurrency = 3 }))
    assert_own_results("outer", results, 6)
    assert.equals(6, #inner_errors)
    for _, kind in ipairs(inner_errors) do assert.equals("config", kind) end
    -- a single call from a hook is fine (it is not a batch)
    assert_own_results("after", assert(client.batch(requests("after", 3))), 3)
  end)

  it("a batch whose coroutine is never resumed hands nothing to the next batch", function()
    local client = H.client { base_url = H.env.http_url .. "/delay/200" }
    -- the first answer to come is the only quick one: the other 7 are still
    -- in flight when its on_progress yields (the 8 start together)
    S.faults { { delay = 0 }, { delay = 1 }, { delay = 1 }, { delay = 1 }, { delay = 1 },
               { delay = 1 }, { delay = 1 }, { delay = 1 } }
    local co = coroutine.create(function()
      return client.batch(requests("first", 8), { concurrency = 8, on_progress = function()
        coroutine.yield("suspended")
      end })
    end)
    local ok, what = coroutine.resume(co)
    assert.is_true(ok, tostring(what))
    if coroutine.status(co) == "suspended" then
      assert.equals("suspended", what) -- 7 of its transfers are in flight, the coroutine is left
    else
      -- Lua 5.1 cannot yield across pcall: on_progress failed (logged), the
      -- batch ran to its end
      assert.equals("Lua 5.1", _VERSION)
    end
    local results = assert(client.batch(requests("second", 8), { concurrency = 8 }))
    assert_own_results("second", results, 8)
    assert.equals(0, pending_transfers(client))
    if coroutine.status(co) == "suspended" then
      -- resumed at last: it ends, its unfinished items with an error, no hang
      local started = H.now()
      local first
      while coroutine.status(co) == "suspended" do
        ok, first = coroutine.resume(co)
        assert.is_true(ok, tostring(first))
      end
      assert.is_true(H.now() - started < 2)
      assert.equals(8, #first)
      local failed = 0
      for i, r in ipairs(first) do
        if r.err then
          failed = failed + 1
          assert.equals("config", r.err.kind)
          assert.matches("abandoned", r.err.message)
        else
          assert.equals("first " .. i, r.res.title)
        end
      end
      assert.is_true(failed >= 1)
    end
  end)

  it("a client whose batch was left suspended in a coroutine is still collected", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local client = H.client { base_url = H.env.http_url .. "/delay/100" }
      weak[1] = client
      local co = coroutine.create(function()
        return client.batch(requests("left", 4), { concurrency = 4, on_progress = function()
          coroutine.yield()
        end })
      end)
      assert(coroutine.resume(co))
      weak[2] = co
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[2], "the coroutine is still alive")
    assert.is_nil(weak[1], "the client is still alive")
  end)

  it("a batch unwound by an error hands nothing to the next batch", function()
    local client = H.client { base_url = H.env.http_url .. "/delay/200" }
    local armed, fired = false, false
    local hooked = H.client { base_url = H.env.http_url .. "/delay/200", on_request = function() armed = true end }
    -- the same transport is needed: use the hooked client for both batches
    client:close()
    client = hooked
    debug.sethook(function()
      if armed and not fired then
        local info = debug.getinfo(2, "S")
        if info and info.short_src:find("batch.lua", 1, true) then
          fired = true
          error("the application gives up")
        end
      end
    end, "", 1)
    local ok = pcall(client.batch, requests("first", 6), { concurrency = 6 })
    debug.sethook()
    assert.is_true(fired, "the error was never raised inside the batch")
    assert.is_false(ok)
    assert.equals(0, pending_transfers(client))
    local results = assert(client.batch(requests("second", 6), { concurrency = 6 }))
    assert_own_results("second", results, 6)
  end)

  it("a TLS batch at concurrency 200 multiplexes over at most 2 HTTP/2 connections (128 streams each)", function()
    if not require("toolzz.core").curl_http2 then pending("libcurl without HTTP/2") return end
    local client = H.client { base_url = H.env.tls_url .. "/delay/300", ca_file = H.env.ca_file, timeout = 20 }
    local results = assert(client.batch(requests("h2", 200), { concurrency = 200 }))
    assert_own_results("h2", results, 200)
    local stats = S.stats()
    print(("\n    200 items at concurrency 200 over TLS: %d connection(s)"):format(stats.connections))
    assert.equals(200, stats.requests)
    assert.is_true(stats.connections <= 2, stats.connections .. " connections")
    client:close()
  end)

  it("on_progress raising an error whose tostring raises never aborts the batch", function()
    local client = H.client()
    local evil = setmetatable({}, { __tostring = function() error("no words") end })
    local ok, results = pcall(client.batch, requests("item", 5), { concurrency = 2, on_progress = function()
      error(evil)
    end })
    assert.is_true(ok, tostring(results))
    assert_own_results("item", results, 5)
  end)
end)

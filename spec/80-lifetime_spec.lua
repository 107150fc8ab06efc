-- Memory and lifetime: long runs stay flat, clients can be dropped at any
-- point, collected mid-use or after errors, and nothing leaks (the valgrind
-- run of the suite checks the C side; these check what Lua can see).
local H = require "helpers"
local S = H.stand_in

local function rss_kib()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

describe("lifetime", function()
  before_each(function() S.reset() end)

  it("#no_valgrind 10,000 calls on one client keep RSS flat", function()
    local client = H.client()
    local body = H.calcom_body()
    for _ = 1, 500 do assert(client.calcom.update(H.UUID, body)) end -- warm up
    collectgarbage()
    local before = rss_kib()
    for i = 1, 10000 do
      local res, err = client.calcom.update(H.UUID, body)
      if not res then error("call " .. i .. ": " .. tostring(err)) end
    end
    collectgarbage()
    local after = rss_kib()
    print(("\n    RSS before %d KiB, after 10,000 calls %d KiB"):format(before, after))
    assert.is_true(after - before < 4096, ("RSS grew from %d to %d KiB"):format(before, after))
    assert.equals(10500, S.stats().requests)
    assert.equals(1, S.stats().connections)
  end)

  it("collects garbage between every step of a call sequence", function()
    local toolzz = require "toolzz"
    collectgarbage()
    local client = H.client { retries = 1 }
    collectgarbage()
    S.faults { { status = 503, headers = { ["Retry-After"] = "0" } } }
    collectgarbage()
    local res = assert(client.calcom.update(H.UUID, H.calcom_body()))
    collectgarbage()
    assert.equals(H.UUID, res.id)
    local r2 = assert(client.gcal.update(H.UUID, H.gcal_body()))
    collectgarbage()
    assert.equals(toolzz.null, r2.iconFileId)
    client:close()
    collectgarbage()
    client:close()
    collectgarbage()
  end)

  it("clients dropped without close, after errors and mid-sequence, are collected", function()
    local weak = setmetatable({}, { __mode = "v" })
    for i = 1, 50 do
      local client = H.client { base_url = (i % 3 == 0) and ("http://127.0.0.1:" .. H.closed_port()) or nil }
      client.calcom.update(H.UUID, H.calcom_body())
      if i % 2 == 0 then client.calcom.update("bad", {}) end
      weak[i] = client
    end
    collectgarbage()
    collectgarbage()
    local alive = 0
    for _ in pairs(weak) do alive = alive + 1 end
    assert.equals(0, alive)
  end)

  it("a client used inside a coroutine that errors is still collected and others keep working", function()
    local weak = setmetatable({}, { __mode = "v" })
    local co = coroutine.create(function()
      local client = H.client()
      weak[1] = client
      assert(client.calcom.update(H.UUID, H.calcom_body()))
      error("application failure")
    end)
    local ok = coroutine.resume(co)
    assert.is_false(ok)
    co = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    assert.is_table((H.client().calcom.update(H.UUID, H.calcom_body())))
  end)

  it("a closed client answers with a config error, never raises", function()
    local client = H.client()
    client:close()
    local ok, res, err = pcall(client.calcom.update, H.UUID, H.calcom_body())
    assert.is_true(ok)
    assert.is_nil(res)
    assert.equals("config", err.kind)
    local ok2, res2, err2 = pcall(client.batch, { { "calcom", H.UUID, H.calcom_body() } })
    assert.is_true(ok2)
    assert.is_nil(res2)
    assert.equals("config", err2.kind)
  end)

  if _VERSION == "Lua 5.4" then
    it("closes with <close> on Lua 5.4", function()
      local run = load([[
        local H = ...
        local client <close> = H.client()
        assert(client.calcom.update(H.UUID, H.calcom_body()))
        return client
      ]])
      local client = run(H)
      local _, err = client.calcom.update(H.UUID, H.calcom_body())
      assert.equals("config", err.kind)
    end)
  end

  it("the C transport survives close twice and answers a config failure after close", function()
    local core = require "toolzz.core"
    local t = core.transport { headers = { "Authorization: Bearer x" } }
    t:close()
    t:close()
    local status, kind = t:request("PUT", H.env.http_url, "{}")
    assert.is_nil(status)
    assert.equals("config", kind)
    assert.same({}, t:wait(0))
    assert.equals(0, t:pending())
  end)

  it("a client closed by a hook in the middle of a batch ends the batch with errors, not a raise", function()
    local client
    client = H.client { on_response = function() client:close() end }
    local list = {}
    for i = 1, 6 do list[i] = { "calcom", H.UUID, H.calcom_body() } end
    local ok, results = pcall(client.batch, list, { concurrency = 2 })
    assert.is_true(ok, tostring(results))
    assert.equals(6, #results)
    local failed = 0
    for _, r in ipairs(results) do
      if r.err then failed = failed + 1 end
    end
    assert.is_true(failed >= 1)
  end)
end)

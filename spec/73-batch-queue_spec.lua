-- client.batch's queue: every item is judged before anything is sent, and a
-- queued item holds only what it will send (its JSON body), not a job,
-- request and URL (issue 12: memory per queued item).
local H = require "helpers"
local S = H.stand_in

-- Live Lua heap, KiB, after full collections.
local function heap_kib()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

describe("a batch's queue", function()
  before_each(function() S.reset() end)

  it("judges every item before the first is sent: each bad one gets the single call's validation error", function()
    local events = {}
    local client = H.client {
      max_body_bytes = 600,
      on_request = function(info) events[#events + 1] = "request " .. info.url:match("[^/]*$") end,
    }
    local valid = H.calcom_body { title = "valid" }
    local bads = {
      [2] = H.calcom_body { prompt = string.rep("x", 700) },  -- larger than max_body_bytes
      [3] = H.calcom_body { title = "bad \255 bytes" },        -- not UTF-8
      [4] = H.calcom_body { extra = 0 / 0 },                  -- NaN (and an unknown field)
      [5] = H.calcom_body { title = 42 },                     -- a schema problem
    }
    local list = { { "calcom", H.UUID, valid } }
    for i = 2, 5 do list[i] = { "calcom", H.UUID, bads[i] } end
    list[6] = { "calcom", H.UUID, H.calcom_body { title = "valid too" } }
    local results = assert(client.batch(list, {
      concurrency = 2,
      on_progress = function(_, _, i, r) events[#events + 1] = "progress " .. i .. (r.err and " err" or " res") end,
    }))
    for i = 2, 5 do
      local _, single = client.calcom.update(H.UUID, bads[i])
      assert.equals("validation", results[i].err.kind, "item " .. i)
      assert.equals("validation", single.kind, "item " .. i)
      assert.same(single.problems, results[i].err.problems, "item " .. i)
      assert.equals(tostring(single), tostring(results[i].err), "item " .. i)
    end
    assert.equals("valid", results[1].res.title)
    assert.equals("valid too", results[6].res.title)
    assert.equals(2, S.stats().requests) -- the 4 bad items sent nothing
    -- the bad items are over before the first request goes out, in input order
    assert.same({ "progress 2 err", "progress 3 err", "progress 4 err", "progress 5 err" },
      { events[1], events[2], events[3], events[4] })
    assert.equals("request " .. H.UUID, events[5])
    client:close()
  end)

  it("sends the body it judged, even when a hook changes the caller's table afterwards", function()
    local list = {}
    for i = 1, 4 do list[i] = { "calcom", H.UUID, H.calcom_body { title = "item " .. i } } end
    local client
    client = H.client {
      on_request = function() -- the first item starts: the others are queued
        list[3][3].title = 42 -- no longer valid
        list[4][3].title = "changed"
      end,
    }
    local results = assert(client.batch(list, { concurrency = 1 }))
    for i = 1, 4 do
      assert.is_nil(results[i].err, "item " .. i)
      assert.equals("item " .. i, results[i].res.title)
    end
    client:close()
  end)

  it("fails the items not yet started, in input order, when a hook closes the client", function()
    local order = {}
    local client
    client = H.client { on_response = function() client:close() end }
    local list = { { "calcom", H.UUID, H.calcom_body() }, { "calcom", H.UUID, H.calcom_body() },
                   { "calcom.get", H.UUID }, { "calcom.patch", H.UUID, { title = "x" } } }
    local results = assert(client.batch(list, {
      concurrency = 1,
      on_progress = function(_, _, i) order[#order + 1] = i end,
    }))
    assert.same({ 1, 2, 3, 4 }, order)
    assert.is_nil(results[1].err)
    for i, name in ipairs { [2] = "calcom.update", [3] = "calcom.get", [4] = "calcom.patch" } do
      assert.equals("config", results[i].err.kind, "item " .. i)
      assert.equals("the client was closed during the batch", results[i].err.message, "item " .. i)
      assert.equals(name, results[i].err.op, "item " .. i)
    end
    assert.equals("get", results[4].err.step) -- a patch that never started fails at its GET
    assert.equals(1, S.stats().requests)
  end)

  it("paces the collector without touching its settings: a stopped collector stays stopped, collects nothing", function()
    local client = H.client { base_url = H.env.http_url .. "/static" }
    local list = {}
    for i = 1, 1000 do list[i] = { "calcom", H.UUID, H.calcom_body { title = "item " .. i } } end
    collectgarbage("collect")
    collectgarbage("stop")
    local ok, err = pcall(function()
      for i = 1, 30000 do list[i % 1000 + 1].garbage = { i } end -- garbage for a collector to find
      local before = collectgarbage("count")
      local results = assert(client.batch(list, { concurrency = 8 }))
      assert.equals(1000, #results)
      assert.is_nil(results[1000].err)
      local after = collectgarbage("count")
      if _VERSION ~= "Lua 5.1" or jit then assert.is_false(collectgarbage("isrunning")) end
      assert.is_true(after >= before, ("the heap went from %.0f to %.0f KiB: collected behind the caller"):format(before, after))
    end)
    collectgarbage("restart")
    client:close()
    assert(ok, err)
  end)

  it("holds a queued item in less than 0.6 KiB of Lua heap (its JSON body, no request)", function()
    local n = 2000
    local list = {}
    for i = 1, n do list[i] = { "calcom", H.UUID, H.calcom_body { title = "item " .. i } } end -- distinct bodies
    local before, queued
    local client
    client = H.client {
      base_url = H.env.http_url .. "/static",
      on_request = function()
        if not queued then
          queued = heap_kib() -- all items judged and queued, the first started
          client:close()      -- the rest fail at once: nothing else to wait for
        end
      end,
    }
    before = heap_kib()
    local results = assert(client.batch(list, { concurrency = 1 }))
    assert.equals(n, #results)
    local per_item = (queued - before) / n
    print(("\n  Lua heap per queued item: %.3f KiB"):format(per_item))
    assert.is_true(per_item < 0.6, ("%.3f KiB per queued item"):format(per_item))
  end)
end)

-- Part 2 in client.batch: every call as an item, results in input order.
local H = require "helpers"

local S = H.stand_in

describe("batch of mixed calls", function()
  before_each(function() S.reset() end)

  it("gets, lists, creates, patches, updates and a bad item at concurrency 8", function()
    local client = H.client()
    local cal, fn, updated = {}, {}, {}
    for i = 1, 6 do
      cal[i] = S.put_record("calcom", H.calcom_create_body { title = "c" .. i })
      fn[i] = S.put_record("function", H.gcal_body { name = "f" .. i })
      -- (the updates go to records of their own: two writes of one record in
      -- one batch run concurrently, in no promised order)
      updated[i] = S.put_record("function", H.gcal_body { name = "g" .. i })
    end
    local requests, expect = {}, {}
    local function add(item, check) requests[#requests + 1] = item; expect[#requests] = check end
    for i = 1, 6 do
      add({ "calcom.patch", cal[i], { prompt = "p" .. i } }, function(r) return r.prompt == "p" .. i end)
      add({ "gcal.patch", fn[i], { googleCalendar = { timezone = "Europe/Lisbon" } } },
        function(r) return r.googleCalendarPlugin[1].timezone == "Europe/Lisbon" end)
      add({ "calcom.get", cal[i] }, function(r) return r.id == cal[i] end)
      add({ "gcal", updated[i], H.gcal_body { name = "u" .. i } }, function(r) return r.name == "u" .. i end)
    end
    add({ "calcom.list", H.UNIT }, function(r) return type(r) == "table" and r[1] ~= nil end)
    add({ "gcal.list", H.UNIT }, function(r) return #r >= 6 end)
    add({ "gcal.create", H.gcal_body { name = "new" } }, function(r) return r.name == "new" end)
    add({ "calcom.create", H.calcom_create_body() }, function(r) return r.apiKey == "cal_****************" end)
    add({ "gcal.duplicate", fn[1] }, function(r) return r.id ~= fn[1] end)
    add({ "calcom.get", "not-a-uuid" }, false)
    add({ "gcal.frobnicate", fn[1] }, false)

    local results = assert(client.batch(requests, { concurrency = 8 }))
    assert.equals(#requests, #results)
    for i, check in ipairs(expect) do
      local r = results[i]
      if check then
        assert.is_nil(r.err, i .. ": " .. tostring(r.err))
        assert.is_true(check(r.res), "item " .. i .. " got another item's result")
      else
        assert.equals("validation", r.err.kind)
      end
    end
    for i = 1, 6 do -- every patch applied
      assert.equals("p" .. i, assert(client.calcom.get(cal[i])).prompt)
      assert.equals("Europe/Lisbon", assert(client.gcal.get(fn[i])).googleCalendarPlugin[1].timezone)
    end
    assert.equals("calcom.get", results[#results - 1].err.op)
    client:close()
  end)
end)

-- client.batch reads the caller's list raw: a nil hole is an item of its own,
-- a list with more holes than items is refused.
-- Each spec here failed when it was written and names the defect it shows.
local H = require "helpers"

local S = H.stand_in

describe("batch lists with holes", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("client.batch does not silently skip the items after a nil hole in the list", function()
    local id = S.put_record("function", H.gcal_body())
    local before = S.stats().requests
    local results, err = client.batch({ { "gcal.get", id }, nil, { "gcal.duplicate", id } })
    if results == nil then -- refusing the whole list is a fix too: then nothing is sent
      assert.equals("validation", err.kind)
      assert.equals(before, S.stats().requests)
      return
    end
    assert.is_table(results[1].res)
    -- the hole is not a call: an error of its own at [2], never a silent gap
    assert.is_table(results[2], "results[2] is missing: the hole got no error")
    assert.equals("validation", results[2].err and results[2].err.kind)
    -- and the item after it ran like any other (here a write: a duplicate)
    assert.is_table(results[3], "results[3] is missing: the third item (a write) was never run, and no error says so")
    assert.is_table(results[3].res)
    assert.equals(before + 2, S.stats().requests)
  end)

  it("client.batch refuses a list with more holes than items (a key of 1e9) as a validation error, sending nothing", function()
    local before = S.stats().requests
    local results, err = client.batch({ { "calcom.get", H.UUID }, [1e9] = { "calcom.get", H.UUID } })
    assert.is_nil(results)
    assert.equals("validation", err.kind)
    assert.equals(before, S.stats().requests)
  end)
end)

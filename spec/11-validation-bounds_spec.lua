-- Validation against a hostile caller (issue 9, item 18): its time grows
-- linearly with the input, "did you mean" hints are given for short keys only,
-- and what an error holds is bounded: a path is shown up to about 100 bytes,
-- then cut with an ellipsis, whatever the key. Timings are not taken under
-- valgrind or the sanitizers (#no_valgrind).
local H = require "helpers"

local stand_in = H.stand_in
local MB = 1024 * 1024
local SHOWN = 100 + #"…" -- the longest path an error shows
local ELLIPSIS = "…"

local function elapsed(fn)
  collectgarbage("collect") -- time this call, not the collection of the last one's garbage
  local t = H.now()
  local a, b = fn()
  return H.now() - t, a, b
end


-- An update that must be refused by validation, with nothing sent: its
-- error and how long it took.
local function refused(client, body, endpoint)
  stand_in.reset()
  local took, res, err = elapsed(function()
    return client[endpoint or "calcom"].update(H.UUID, body)
  end)
  assert.is_nil(res)
  assert.equals("validation", err.kind, tostring(err))
  assert.equals(0, stand_in.stats().requests, "a refused call sent a request")
  return err, took
end

-- The shorter of two timings of refused(...): less noise on a busy machine.
local function best_of_two(...)
  local err, a = refused(...)
  local _, b = refused(...)
  return err, a < b and a or b
end

-- Every field of err and tostring(err) bounded; returns the longest path.
local function assert_bounded(err, max_fields_shown)
  local longest = 0
  for _, f in ipairs(err.fields) do
    assert.truthy(#f.path <= SHOWN, "a path of " .. #f.path .. " bytes")
    assert.truthy(#f.message <= 300, "a message of " .. #f.message .. " bytes")
    if #f.path > longest then longest = #f.path end
  end
  local text = tostring(err)
  assert.truthy(#text <= (max_fields_shown or 6) * (SHOWN + 300), "tostring(err) of " .. #text .. " bytes")
  return longest
end

describe("validation bounds", function()
  local strict, lax
  setup(function()
    strict = H.client()
    lax = H.client { strict = false }
  end)
  teardown(function()
    strict:close()
    lax:close()
  end)

  for _, case in ipairs {
    { "an unknown key of 1 MB", function() return ("k"):rep(MB) end },
    { "an unknown key of 1 MB that starts like a field", function() return "createBookingEnable" .. ("d"):rep(MB) end },
    { "an unknown key of 1 MB of dots", function() return ("."):rep(MB) end },
    { "an unknown key of 1 MB of multibyte characters", function() return ("é"):rep(MB / 2) end },
  } do
    it(case[1] .. " is refused quickly, with its path cut and no hint #no_valgrind", function()
      local body = H.calcom_body()
      body[case[2]()] = 1
      local err, took = refused(strict, body)
      assert.truthy(took < 0.5, ("took %.3f s"):format(took))
      -- the key, and the body being over max_body_bytes
      local f = err.fields[1]
      assert.equals("is not a field of this endpoint", f.message)
      assert.equals(ELLIPSIS, f.path:sub(-#ELLIPSIS))
      assert.is_nil(f.message:find("did you mean", 1, true))
      assert.truthy(require("toolzz.core").utf8_valid(f.path), "the cut keeps whole characters")
      assert_bounded(err)
    end)
  end

  it("a key of 512 KiB of dots holding what JSON cannot carry is refused quickly (strict or not) #no_valgrind", function()
    for _, client in ipairs { strict, lax } do
      for _, value in ipairs { { print }, print, { { 0 / 0 } } } do
        local body = H.gcal_body()
        body.googleCalendar[("."):rep(MB / 2)] = value -- under max_body_bytes: the encoder reaches the value
        local err, took = refused(client, body, "gcal")
        assert.truthy(took < 0.5, ("took %.3f s"):format(took))
        assert_bounded(err)
      end
    end
  end)

  it("validation time grows linearly with a key's length (strict or not) #no_valgrind", function()
    for _, client in ipairs { strict, lax } do
      local times = {}
      for i, size in ipairs { MB / 16, MB / 4 } do
        local body = H.calcom_body()
        body[("createBookingEnabled."):rep(math.floor(size / 21))] = { print }
        local _
        _, times[i] = best_of_two(client, body)
      end
      -- four times the input: at most about four times the time (plus noise)
      assert.truthy(times[2] < 8 * times[1] + 0.05, ("%.4f s then %.4f s"):format(times[1], times[2]))
    end
  end)

  it("100000 unknown keys are all reported, in time linear in their number, with a bounded message #no_valgrind", function()
    local times = {}
    for i, n in ipairs { 50000, 100000 } do
      local body = H.calcom_body()
      for k = 1, n do body["titel" .. k] = k end
      local err, took = best_of_two(strict, body)
      local unknown = 0
      for _, f in ipairs(err.fields) do
        if f.message:find("is not a field", 1, true) then unknown = unknown + 1 end
      end
      assert.equals(n, unknown)
      assert_bounded(err)
      times[i] = took
    end
    -- twice the keys: about twice the time (sorting them adds a little)
    assert.truthy(times[2] < 4 * times[1] + 0.2, ("%.3f s then %.3f s"):format(times[1], times[2]))
  end)

  it("a short typo still gets its hint", function()
    local body = H.calcom_body()
    body.createBookingEnabled = nil
    body.createBookingEnable = true
    local err = refused(strict, body)
    local hinted
    for _, f in ipairs(err.fields) do
      if f.path == "createBookingEnable" then hinted = f.message end
    end
    assert.matches('did you mean "createBookingEnabled"', hinted, 1, true)
  end)

  it("a typo in a nested object still gets its hint", function()
    local body = H.gcal_body()
    body.googleCalendar.googleUser.emial = "ana@example.com"
    local err = refused(strict, body, "gcal")
    local hinted
    for _, f in ipairs(err.fields) do
      if f.path == "googleCalendar.googleUser.emial" then hinted = f.message end
    end
    assert.matches('did you mean "email"', hinted, 1, true)
  end)

  it("a path of up to 100 bytes is shown whole", function()
    local body = H.gcal_body()
    local key = ("p"):rep(100 - #"googleCalendar.")
    body.googleCalendar[key] = 1
    local err = refused(strict, body, "gcal")
    assert.equals("googleCalendar." .. key, err.fields[1].path)
    body.googleCalendar[key] = nil
    body.googleCalendar[key .. "q"] = 1
    err = refused(strict, body, "gcal")
    assert.equals(("googleCalendar." .. key):sub(1, 100) .. ELLIPSIS, err.fields[1].path)
  end)
end)

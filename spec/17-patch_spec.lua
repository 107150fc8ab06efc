-- Part 2: patch(id, changes) = GET, the record mapped to its update body by
-- the schema, changes merged, validated, PUT. The exact PUT bodies, the merge
-- rules, what is refused before anything is written, err.step, and a
-- property test: create -> patch with no changes -> the PUT body is what was
-- created.
local H = require "helpers"
local cjson = require "cjson"
local toolzz = require "toolzz"

local S = H.stand_in
local null = toolzz.null

local put_body = H.put_body -- the last PUT: decoded, and as sent

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- The body of a Google Calendar function as stored, with what the response
-- carries beyond the request fields.
local function gcal_record(over)
  local body = H.gcal_body {
    iconFileId = "",
    outputs = {
      { id = "11111111-2222-4333-8444-555555555555", customFunctionId = "x-1", property = "date",
        type = "string", description = "the day", required = true },
      { id = "21111111-2222-4333-8444-555555555555", property = "room", type = "string" },
    },
  }
  body.googleCalendar.notificationContent = nil
  for k, v in pairs(over or {}) do body[k] = v end
  return body
end

describe("patch", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("Cal.com: PUTs exactly the seven update fields of the record, with the change", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local res, err = client.calcom.patch(id, { createBookingEnabled = false })
    assert.is_nil(err, tostring(err))
    assert.is_false(res.createBookingEnabled)
    local body = put_body()
    assert.same({ "calcomUsername", "checkAvailabilityEnabled", "createBookingEnabled", "prompt", "timezone",
                  "title", "unitId" }, sorted_keys(body))
    local expected = H.calcom_body { createBookingEnabled = false }
    assert.same(expected, body)
    assert.equals(S.last().uri, "/api/v1/calcom/integration/" .. id)
    assert.is_false(assert(client.calcom.get(id)).createBookingEnabled)
  end)

  it("Google Calendar: the update body from the record and its plugin row", function()
    local id = S.put_record("function", gcal_record())
    assert(client.gcal.patch(id, { name = "Renamed" }))
    local body, raw = put_body()
    local want = H.gcal_body { name = "Renamed", iconFileId = null, type = "google-calendar" }
    want.googleCalendar.notificationContent = nil -- the record has null: left out
    want.outputs = {
      { property = "date", type = "string", description = "the day", required = true },
      { property = "room", type = "string" },
    }
    assert.same(want, body)
    assert.matches('"googleToken":"' .. H.GOOGLE_TOKEN:gsub("%p", "%%%0") .. '"', raw)
    assert.is_nil(raw:find("customFunctionId", 1, true))
    assert.is_nil(raw:find("googleCalendarPlugin", 1, true))
    assert.is_nil(raw:find("institutionId", 1, true))
  end)

  it("keeps notificationContent when the record has a string, and picture/hd only when present", function()
    local record = gcal_record()
    record.googleCalendar.notificationContent = "Olá"
    record.googleCalendar.googleUser.picture = nil
    record.googleCalendar.googleUser.hd = nil
    local id = S.put_record("function", record)
    assert(client.gcal.patch(id, {}))
    local body = put_body()
    assert.equals("Olá", body.googleCalendar.notificationContent)
    assert.same({ "email", "family_name", "given_name", "name" }, sorted_keys(body.googleCalendar.googleUser))
  end)

  describe("merge", function()
    it("merges objects key by key, recursively", function()
      local id = S.put_record("function", gcal_record())
      assert(client.gcal.patch(id, { googleCalendar = { timezone = "Europe/Lisbon", googleUser = { hd = "x.org" } } }))
      local body = put_body()
      assert.equals("Europe/Lisbon", body.googleCalendar.timezone)
      assert.equals("x.org", body.googleCalendar.googleUser.hd)
      assert.equals("Ana Silva", body.googleCalendar.googleUser.name)
      assert.equals(H.GOOGLE_TOKEN, body.googleCalendar.googleToken)
      assert.equals("primary", body.googleCalendar.calendarId)
    end)

    it("replaces arrays and scalars whole", function()
      local id = S.put_record("function", gcal_record())
      assert(client.gcal.patch(id, { outputs = { { property = "only", type = "number" } }, description = "new" }))
      local body = put_body()
      assert.same({ { property = "only", type = "number" } }, body.outputs)
      assert.equals("new", body.description)
    end)

    it("an empty array change is sent as []", function()
      local id = S.put_record("function", gcal_record())
      assert(client.gcal.patch(id, { outputs = {} }))
      local _, raw = put_body()
      assert.matches('"outputs":[]', raw, 1, true)
    end)

    it("null removes an optional field and sets a nullable one to null", function()
      local record = gcal_record { iconFileId = "31111111-2222-4333-8444-555555555555" }
      record.googleCalendar.notificationContent = "text"
      local id = S.put_record("function", record)
      assert(client.gcal.patch(id, { iconFileId = null, googleCalendar = { notificationContent = null } }))
      local body, raw = put_body()
      assert.equals(null, body.iconFileId)
      assert.matches('"iconFileId":null', raw, 1, true)
      assert.is_nil(body.googleCalendar.notificationContent)
    end)

    it("null on a required field is a validation error and nothing is sent", function()
      local id = S.put_record("calcom", H.calcom_create_body())
      local res, err = client.calcom.patch(id, { title = null })
      assert.is_nil(res)
      assert.equals("validation", err.kind)
      assert.equals("title", err.fields[1].path)
      assert.equals("get", err.step)
      assert.equals("calcom.patch", err.op)
      assert.equals(0, S.stats().requests)
    end)
  end)

  it("a typo or a wrong type in changes fails fast: nothing is sent", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    for _, changes in ipairs {
      { createBookingEnable = false }, { createBookingEnabled = "false" }, { timezone = "Mars/Base" },
      { unitId = "x" }, "not a table",
    } do
      local res, err = client.calcom.patch(id, changes)
      assert.is_nil(res)
      assert.equals("validation", err.kind)
      assert.equals("get", err.step)
    end
    local _, err = client.gcal.patch(id, { googleCalendar = { googleUser = { emial = "a@b.c" } } })
    assert.equals("googleCalendar.googleUser.emial", err.fields[1].path)
    assert.equals(0, S.stats().requests)
  end)

  it("refuses a function that is not a Google Calendar function, with no PUT", function()
    local id = S.put_record("function", { name = "js", description = "d", type = "javascript",
                                          userId = H.USER, unityId = H.UNIT })
    local res, err = client.gcal.patch(id, { name = "x" })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("update", err.step)
    local paths = {}
    for _, f in ipairs(err.fields) do paths[#paths + 1] = f.path end
    assert.same({ "googleCalendar", "type" }, paths) -- no plugin row, and the wrong type
    assert.equals(0, S.writes())
    assert.equals(1, S.stats().requests)
  end)

  it("refuses a Google Calendar function without a plugin row, with no PUT", function()
    local record = gcal_record()
    record.googleCalendar = nil
    local id = S.put_record("function", record)
    local res, err = client.gcal.patch(id, {})
    assert.is_nil(res)
    assert.equals("googleCalendar", err.fields[1].path)
    assert.equals("update", err.step)
    assert.equals(0, S.writes())
  end)

  it("an invalid merged body is refused before the PUT (step update)", function()
    local id = S.put_record("calcom", H.calcom_create_body { timezone = "Mars/Base" })
    local res, err = client.calcom.patch(id, { prompt = "x" })
    assert.is_nil(res)
    assert.equals("timezone", err.fields[1].path)
    assert.equals("update", err.step)
    assert.equals(0, S.writes())
  end)

  it("err.step says which request failed", function()
    local res, err = client.gcal.patch(H.USER, {})
    assert.is_nil(res)
    assert.equals(404, err.status)
    assert.equals("get", err.step)
    assert.matches("^toolzz: gcal%.patch %(get%): http 404", tostring(err))
    local id = S.put_record("function", gcal_record())
    S.faults { {}, { status = 500 } } -- the GET answers normally, the PUT fails
    res, err = client.gcal.patch(id, {})
    assert.is_nil(res)
    assert.equals(500, err.status)
    assert.equals("update", err.step)
    assert.equals("gcal.patch", err.op)
  end)

  it("applies no client defaults: the record read is the base", function()
    local c = H.client { defaults = { googleCalendar = { notificationContent = "DEFAULT" }, prompt = "DEFAULT" } }
    local id = S.put_record("function", gcal_record())
    assert(c.gcal.patch(id, {}))
    assert.is_nil(put_body().googleCalendar.notificationContent)
    c:close()
  end)

  it("runs in a batch with its GET and PUT under the batch's concurrency", function()
    local ids = {}
    for i = 1, 12 do ids[i] = S.put_record("calcom", H.calcom_create_body { title = "t" .. i }) end
    local requests = {}
    for i = 1, 12 do requests[i] = { "calcom.patch", ids[i], { prompt = "p" .. i } } end
    local results = assert(client.batch(requests, { concurrency = 4 }))
    for i = 1, 12 do
      assert.is_nil(results[i].err, tostring(results[i].err))
      assert.equals("p" .. i, results[i].res.prompt)
      assert.equals("p" .. i, assert(client.calcom.get(ids[i])).prompt)
    end
  end)
end)

-- ---- property: create -> patch {} -> the same body -------------------------

local ZONES = { "UTC", "America/Sao_Paulo", "Europe/Lisbon", "Asia/Tokyo", "Etc/GMT+3",
                "America/Argentina/Buenos_Aires" }
local PIECES = { "a", "Z", "0", " ", "ç", "ã", "日本", "😀", '"', "\\", "/", "\n", "\t", "'", "<b>", "%", "{}" }

local function random_string(rand, min)
  local n = rand(min or 0, 12)
  local parts = {}
  for i = 1, n do parts[i] = PIECES[rand(#PIECES)] end
  local s = table.concat(parts)
  if s == "" and (min or 0) > 0 then s = "x" end
  return s
end

local function random_digits(rand)
  local d = {}
  for i = 1, rand(1, 21) do d[i] = tostring(rand(0, 9)) end
  return table.concat(d)
end

local function random_uuid(rand)
  local r16 = function() return rand(0, 0xffff) end -- Lua 5.1's random overflows past 2^31
  return ("%04x%04x-%04x-4%03x-8%03x-%04x%04x%04x"):format(r16(), r16(), r16(), rand(0, 0xfff),
    rand(0, 0xfff), r16(), r16(), r16())
end

local function random_calcom(rand)
  return {
    title = random_string(rand, 1), unitId = random_uuid(rand), calcomUsername = random_string(rand, 1),
    timezone = ZONES[rand(#ZONES)], prompt = random_string(rand, 1), apiKey = "cal_" .. random_digits(rand),
    checkAvailabilityEnabled = rand(2) == 1, createBookingEnabled = rand(2) == 1,
  }
end

local function random_gcal(rand)
  local user = { name = random_string(rand, 1), given_name = random_string(rand, 1),
                 family_name = random_string(rand, 1), email = "u" .. rand(1000) .. "@example.com" }
  if rand(2) == 1 then user.picture = "https://example.com/p/" .. rand(100) .. ".png" end
  if rand(2) == 1 then user.hd = random_string(rand, 1) end
  if rand(2) == 1 then user.id = random_digits(rand) end
  if rand(2) == 1 then user.verified_email = rand(2) == 1 end
  local body = {
    name = random_string(rand, 1), description = random_string(rand, 1),
    userId = random_uuid(rand), unityId = random_uuid(rand),
    googleCalendar = { googleId = random_digits(rand), calendarId = random_string(rand, 1),
                       timezone = ZONES[rand(#ZONES)], googleToken = "ya29." .. random_digits(rand),
                       googleUser = user },
  }
  if rand(2) == 1 then body.googleCalendar.notificationContent = random_string(rand, 1) end
  if rand(2) == 1 then body.iconFileId = random_uuid(rand) end
  if rand(2) == 1 then
    local outputs = {}
    for i = 1, rand(0, 3) do
      outputs[i] = { property = random_string(rand, 1), type = "string", description = random_string(rand),
                     required = rand(2) == 1 }
    end
    body.outputs = toolzz.array(outputs)
  end
  return body
end

describe("patch property", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  for _, kind in ipairs {
    { "calcom", random_calcom, function(b) b.apiKey = nil end },
    { "gcal", random_gcal, function(b)
        b.googleCalendar.googleUser.id, b.googleCalendar.googleUser.verified_email = nil, nil
      end },
  } do
    local name, make, create_only = kind[1], kind[2], kind[3]
    it(name .. ": 60 random bodies survive create -> patch {} unchanged", function()
      local seed = 20261130
      math.randomseed(seed)
      local rand = math.random
      for round = 1, 60 do
        local created, err = client[name].create(make(rand))
        assert.is_nil(err, "round " .. round .. ": " .. tostring(err))
        local sent = cjson.decode(S.last().body) -- what was created, after defaults
        create_only(sent)
        local _, perr = client[name].patch(created.id, {})
        assert.is_nil(perr, "round " .. round .. ": " .. tostring(perr))
        assert.same(sent, put_body(), "round " .. round .. " (seed " .. seed .. ")")
      end
    end)
  end
end)

describe("patch with odd caller tables", function()
  before_each(function() S.reset() end)

  it("never runs the caller's __index or __pairs, and keeps toolzz.array's marker", function()
    local client = H.client()
    local id = S.put_record("function", gcal_record())
    local ran = false
    local trap = { __index = function() ran = true end, __pairs = function() ran = true; return next, {}, nil end }
    local changes = setmetatable({ googleCalendar = setmetatable({ timezone = "UTC" }, trap),
                                   outputs = toolzz.array {} }, trap)
    assert(client.gcal.patch(id, changes))
    assert.is_false(ran)
    local body, raw = put_body()
    assert.equals("UTC", body.googleCalendar.timezone)
    assert.matches('"outputs":[]', raw, 1, true)
    client:close()
  end)
end)

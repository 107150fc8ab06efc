-- Error messages that say what is wrong first (issue 16, items 4, 13, 14):
-- - `"failed: " .. err` (and err .. "x") gives the one-line form instead of
--   raising, on 5.4, 5.1 and LuaJIT;
-- - a validation summary lists unknown fields (with their hints) first,
--   then wrong types and values, then missing fields, and counts the rest;
--   a time zone that differs only in case gets its right name as a hint;
-- - a record as read sent to update is one error naming the fields of the
--   record as read (no did-you-mean towards another field), and the
--   command says the exact patch command to use instead.
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in

local run = H.run_cli -- the command in process: exit status, stdout, stderr

describe("error objects and ..", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("concatenate on either side as their one line", function()
    local _, err = client.calcom.update(H.UUID, H.calcom_body { title = 5 })
    local line = tostring(err)
    assert.equals("failed: " .. line, "failed: " .. err)
    assert.equals(line .. " (again)", err .. " (again)")
    assert.equals(line .. line, err .. err)
    assert.equals("1: " .. line, 1 .. ": " .. err)
    assert.equals("x" .. line .. "y", "x" .. err .. "y")
  end)

  it("an http error too, and a table without __concat still raises as Lua does", function()
    local _, err = client.calcom.get("11111111-2222-4333-8444-555555555555") -- a record the stand-in does not hold
    assert.equals("http", err.kind)
    assert.equals("get failed: " .. tostring(err), "get failed: " .. err)
    assert.has_error(function() return err .. {} end)
  end)
end)

describe("validation summaries", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("list unknown fields (with hints) first, then wrong types, then missing ones", function()
    local body = H.calcom_body { timezone = 5, titel = "Sales" }
    body.title, body.prompt = nil, nil
    local _, err = client.calcom.update(H.UUID, body)
    local paths = {}
    for i, f in ipairs(err.fields) do paths[i] = f.path end
    assert.same({ "titel", "timezone", "prompt", "title" }, paths)
    assert.matches('^4 invalid fields: titel: is not a field of this endpoint %(did you mean "title"%?%); timezone: ',
      err.message)
    assert.equals(0, S.stats().requests)
  end)

  it("a typo's hint is shown even when many fields are missing, and the rest is counted", function()
    local _, err = client.calcom.update(H.UUID, { createBookingEnable = true })
    assert.matches('^8 invalid fields: createBookingEnable: is not a field of this endpoint '
      .. '%(did you mean "createBookingEnabled"%?%);', err.message)
    assert.matches("; and 3 more$", err.message)
  end)

  it("a time zone that differs only in case gets a hint", function()
    local _, err = client.calcom.update(H.UUID, H.calcom_body { timezone = "America/Sao_paulo" })
    assert.matches('did you mean "America/Sao_Paulo"?', err.fields[1].message, 1, true)
    _, err = client.calcom.update(H.UUID, H.calcom_body { timezone = "utc" })
    assert.matches('did you mean "UTC"?', err.fields[1].message, 1, true)
    _, err = client.calcom.update(H.UUID, H.calcom_body { timezone = "Mars/Olympus" })
    assert.not_matches("did you mean", err.fields[1].message, 1, true)
  end)
end)

describe("a record as read sent to update", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("Cal.com: one error naming the fields of the record as read, no hint towards another field", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local record = assert(client.calcom.get(id))
    record.prompt = "new"
    S.reset()
    local res, err = client.calcom.update(id, record)
    assert.is_nil(res)
    assert.equals(1, #err.fields, tostring(err))
    assert.equals("", err.fields[1].path)
    assert.equals("has fields of the record as read, not of the update body: use patch to change some fields: "
      .. "apiKey, botId, createdAt, defaultEventTypeId, defaultEventTypeSlug, id, isActive, isTokenMasked, updatedAt",
      err.fields[1].message)
    assert.same({ "message", "path" }, (function(t) local k = {} for n in pairs(t) do k[#k + 1] = n end
      table.sort(k) return k end)(err.fields[1])) -- a problem is { path, message }, as documented
    assert.matches("fields of the record as read, not of the update body: use patch", err.message, 1, true)
    assert.not_matches("did you mean", err.message, 1, true)
    assert.equals(0, S.stats().requests)
  end)

  it("Google Calendar: the same one error first; a typo next to them still gets its hint", function()
    local id = S.put_record("function", H.gcal_body())
    local record = assert(client.gcal.get(id))
    record.nmae = "x"
    local _, err = client.gcal.update(id, record)
    assert.equals("", err.fields[1].path)
    assert.matches(": code, color, discordPlugin, googleCalendarPlugin, id, institutionId, isActivated, status, "
      .. "telegramPlugin$", err.fields[1].message)
    assert.equals("nmae", err.fields[2].path)
    assert.matches('did you mean "name"', err.fields[2].message, 1, true)
  end)

  it("in a patch's changes: one error, nothing sent", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local _, err = client.calcom.patch(id, { id = id, prompt = "new", updatedAt = "x" })
    assert.equals("get", err.step)
    assert.matches("give only the fields to change: id, updatedAt$", err.fields[1].message)
    assert.equals(0, S.stats().requests)
  end)

  it("the command: get | edit | update exits 3 with one line for them and the exact patch command", function()
    local id = S.put_record("calcom", H.calcom_create_body())
    local code, out, err = run { "calcom", "get", id }
    assert.equals(0, code, err)
    local record = cjson.decode(out)
    record.prompt = "new"
    local before = S.stats().requests
    code, out, err = run({ "calcom", "update", id, "-f", "-" }, cjson.encode(record))
    assert.equals(3, code)
    assert.equals("", out)
    assert.not_matches("did you mean", err, 1, true)
    local lines = {}
    for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equals(2, #lines, err)
    assert.matches("^toolzz: calcom.update: validation: %(body%): has fields of the record as read, .*: apiKey, botId, ",
      lines[1])
    assert.matches("toolzz calcom patch " .. id .. " --set prompt=", lines[2], 1, true)
    assert.equals(before, S.stats().requests)
    -- and that command works
    code, out, err = run { "calcom", "patch", id, "--set", "prompt=new" }
    assert.equals(0, code, err)
    assert.equals("new", cjson.decode(out).prompt)
    assert.equals("new", cjson.decode(S.last().body).prompt)
  end)
end)

-- Part 3: secrets never leave a sync call. A distinctive token (the one the
-- server echoes, a new one sent with update_secrets, an apiKey sent at
-- create) is searched for in every output: plans (tables and saved JSON),
-- reports, exports, and errors, also when the server echoes it in an error.
local H = require "helpers"
local toolzz = require "toolzz"

local S = H.stand_in
local UNIT = H.UNIT
local STORED = "ya29.H5-stored-token-d1st1nct1ve-77"
local NEW = "ya29.H5-new-token-d1st1nct1ve-88"
local APIKEY = "cal_live_H5_apikey_d1st1nct1ve_99"
local SECRETS = { STORED, NEW, APIKEY, "d1st1nct1ve" }

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text .. "\n")
  f:close()
  return path
end

-- Fail when any string in v (or its canonical JSON) holds a secret.
local function clean(v)
  local found = H.contains_secret(v, SECRETS)
  assert(not found, "a secret leaked: " .. tostring(found))
  if type(v) == "table" then
    local text = toolzz.sync.encode(v)
    if text then assert(not text:find("d1st1nct1ve", 1, true), "a secret leaked into the JSON form") end
  end
  return v
end

describe("sync secrets", function()
  local client, token_file, key_file
  setup(function()
    token_file, key_file = tmpfile(NEW), tmpfile(APIKEY)
  end)
  teardown(function()
    os.remove(token_file)
    os.remove(key_file)
  end)
  before_each(function()
    S.reset()
    client = H.client()
  end)

  it("export, plan, saved plan, report: none holds a token the server echoes or one the file references", function()
    local id = assert(client.gcal.create(H.gcal_body { name = "Secretive",
      googleCalendar = (function() local g = H.gcal_body().googleCalendar g.googleToken = STORED return g end)() })).id
    assert.equals(STORED, assert(client.gcal.get(id)).googleCalendarPlugin[1].googleToken) -- the server echoes it
    local doc = clean(assert(client.sync.export { UNIT }))
    local rec = doc.units[1].gcal[1]
    assert.same({ env = "TOOLZZ_GOOGLETOKEN_SECRETIVE" }, rec.googleCalendar.googleToken)
    clean(assert(client.sync.plan(doc)))
    -- a change, and a new token from a file (update_secrets)
    rec.description = "new description"
    rec.googleCalendar.googleToken = { file = token_file }
    local plan = clean(assert(client.sync.plan(doc, { update_secrets = true })))
    local saved = clean(assert(toolzz.sync.encode(plan)))
    assert.matches(token_file, saved, 1, true) -- the reference, not the value
    local report = clean(assert(client.sync.apply(plan, { update_secrets = true })))
    assert.is_true(report.ok)
    -- the new token was sent
    local now = assert(client.gcal.get(id))
    assert.equals(NEW, now.googleCalendarPlugin[1].googleToken)
    assert.equals("new description", now.description)
    clean(assert(client.sync.plan(doc)))
  end)

  it("errors: a PUT or a create answered with the token or apiKey in the message keeps neither", function()
    local g = H.gcal_body()
    g.googleCalendar.googleToken = STORED
    local id = assert(client.gcal.create(H.gcal_body { name = "Echo", googleCalendar = g.googleCalendar })).id
    local doc = assert(client.sync.export { UNIT })
    doc.units[1].gcal[1].description = "changed"
    doc.units[1].gcal[1].googleCalendar.googleToken = { file = token_file }
    doc.units[1].calcom = { { key = "k", title = "New", calcomUsername = "u", timezone = "UTC", prompt = "p",
      checkAvailabilityEnabled = true, createBookingEnabled = true, apiKey = { file = key_file } } }
    local plan = assert(client.sync.plan(doc, { update_secrets = true }))
    -- the saved plan's re-reads pass; the PUT and the POST answer with every secret in their message
    local echo = '{"message":"rejected ' .. STORED .. " " .. NEW .. " " .. APIKEY .. '","statusCode":400}'
    S.faults { {}, {}, {}, { status = 400, body = echo }, { status = 400, body = echo } }
    local report = clean(assert(client.sync.apply(plan, { concurrency = 1 })))
    assert.same({ applied = 0, failed = 2, skipped = 0, unknown = 0 }, report.summary)
    assert.equals(400, report.changes[1].error.status)
    assert.equals(id, report.changes[2].id)
    assert.equals(400, report.changes[2].error.status)
  end)

  it("refusals and file errors name references, never values", function()
    local id = assert(client.gcal.create(H.gcal_body { name = "Ref" })).id
    local doc = assert(client.sync.export { UNIT })
    doc.units[1].gcal[1].googleCalendar.googleToken = { file = "/nonexistent/h5-token" }
    local plan = assert(client.sync.plan(doc, { update_secrets = true }))
    local report, err = client.sync.apply(plan)
    assert.is_nil(report)
    assert.equals("config", err.kind)
    assert.matches("/nonexistent/h5-token", err.message, 1, true)
    clean(err)
    -- a stale refusal
    doc.units[1].gcal[1].description = "planned"
    local plan2 = assert(client.sync.plan(doc))
    assert(client.gcal.patch(id, { description = "edited by hand" }))
    local _, stale = client.sync.apply(plan2)
    assert.equals("stale", stale.kind)
    clean(stale)
    clean(tostring(stale))
    -- a saved plan edited to hold a literal secret (its checksum made again): refused, the value never shown
    local planner = require "toolzz.sync.plan"
    local crafted = assert(client.sync.plan({ toolzz = 1, units = { { unit = UNIT, calcom = { { key = "lit", title = "Lit",
      calcomUsername = "u", timezone = "UTC", prompt = "p", checkAvailabilityEnabled = true, createBookingEnabled = true,
      apiKey = { env = "H5_NOT_SET_EITHER" } } } } } }, {}))
    crafted.changes[1].fields.apiKey = APIKEY
    crafted.checksum = planner.checksum(crafted)
    local writes = S.writes()
    local r3, cerr = client.sync.apply(crafted, { force = true })
    assert.is_nil(r3)
    assert.equals("config", cerr.kind)
    clean(cerr)
    clean(tostring(cerr))
    assert.equals(writes, S.writes())
    -- a literal token in the file
    local text = '{"toolzz":1,"units":[{"unit":"' .. UNIT .. '","gcal":[{"key":"x","googleCalendar":{"googleToken":"'
      .. STORED .. '"}}]}]}'
    local none, verr = toolzz.sync.decode(text)
    assert.is_nil(none)
    clean(verr)
    clean(tostring(verr))
  end)
end)

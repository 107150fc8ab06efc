-- Part 3: plan. Matching with no state file (pinned, adopted, create,
-- missing, ambiguous, unmanaged, exclusive, unexpected shapes), the
-- comparing rules, one list call per kind and unit, and the checksum.
local H = require "helpers"
local toolzz = require "toolzz"

local S = H.stand_in
local null = toolzz.null
local UNIT, USER = H.UNIT, H.USER
local UNIT2 = "1c6f1f5e-8a2c-4d3e-9f10-aabbccddeeff"
local ABSENT = "3a6f1f5e-8a2c-4d3e-9f10-aabbccddee02"

-- A file record for a Cal.com integration (the create fields, apiKey as a reference).
local function calcom_record(key, over) return H.sync_calcom_record(key, "H5_CALCOM_KEY", over) end

local function gcal_record(key, over)
  local r = H.gcal_body()
  r.unityId = nil
  r.googleCalendar.googleToken = { env = "H5_GCAL_TOKEN" }
  r.key = key
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local function desired(units)
  return { toolzz = 1, units = units }
end

local function find(list, key)
  for _, e in ipairs(list) do
    if e.key == key then return e end
  end
end

describe("sync plan", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)

  it("matches pinned ids, adopts by title/name, creates the rest, and makes one list call per kind and unit", function()
    local pinned = assert(client.calcom.create(H.calcom_create_body { title = "Pinned" })).id
    local adopted = assert(client.gcal.create(H.gcal_body { name = "Adopt me" })).id
    local before = S.stats().requests
    local plan = assert(client.sync.plan(desired {
      { unit = UNIT, calcom = { calcom_record("p", { id = pinned, title = "Pinned", prompt = "new prompt" }),
                                calcom_record("n", { title = "Brand new" }) },
        gcal = { gcal_record("a", { name = "Adopt me" }) } },
      { unit = UNIT2 },
    }))
    assert.equals(4, S.stats().requests - before) -- 2 units x 2 kinds, lists only
    assert.same({ create = 1, update = 1, unchanged = 1, unmanaged = 0, failed = 0 }, plan.summary)
    local p = find(plan.changes, "p")
    assert.equals("update", p.action)
    assert.equals(pinned, p.id)
    assert.is_false(p.adopted)
    assert.is_string(p.updatedAt)
    assert.matches("^%x+$", p.fingerprint)
    assert.same({ { path = "prompt", old = "Agende reuniões de 30 minutos.", new = "new prompt" } }, p.diff)
    local n = find(plan.changes, "n")
    assert.equals("create", n.action)
    assert.equals(UNIT, n.fields.unitId)
    assert.same({ env = "H5_CALCOM_KEY" }, n.fields.apiKey)
    assert.is_nil(n.fields.key)
    -- the adopted record is unchanged: only counted; its next change says adopted
    local plan2 = assert(client.sync.plan(desired {
      { unit = UNIT, gcal = { gcal_record("a", { name = "Adopt me", description = "x" }) } } }))
    local a = plan2.changes[1]
    assert.is_true(a.adopted)
    assert.equals(adopted, a.id)
    assert.is_nil(a.updatedAt) -- functions have none at the top level
    -- the apiKey of a matched record is not compared, and the plan says it is create-only
    assert.equals("apiKey", find(plan.notes, "p").path)
  end)

  it("fails a pinned id that is not there (missing) and a name that matches two records (ambiguous)", function()
    local one = assert(client.calcom.create(H.calcom_create_body { title = "Twin" })).id
    local two = assert(client.calcom.create(H.calcom_create_body { title = "Twin" })).id
    local plan = assert(client.sync.plan(desired {
      { unit = UNIT, calcom = { calcom_record("gone", { id = ABSENT }), calcom_record("twin", { title = "Twin" }) } },
    }))
    assert.same({ unit = UNIT, kind = "calcom", key = "gone", reason = "missing", id = ABSENT }, find(plan.failed, "gone"))
    local twin = find(plan.failed, "twin")
    assert.equals("ambiguous", twin.reason)
    table.sort(twin.ids)
    local ids = { one, two }
    table.sort(ids)
    assert.same(ids, twin.ids)
    assert.equals(2, plan.summary.failed)
    assert.equals(0, plan.summary.create) -- never re-created silently
    -- pinning one of them resolves it; the other twin is then unmanaged
    local plan2 = assert(client.sync.plan(desired {
      { unit = UNIT, calcom = { calcom_record("twin", { title = "Twin", id = one }) } } }))
    assert.equals(0, #plan2.failed)
    assert.same({ { unit = UNIT, kind = "calcom", id = two, title = "Twin" } }, plan2.unmanaged)
  end)

  it("lists unmanaged records by title/name, marked when the unit is exclusive, and never changes them", function()
    local c = assert(client.calcom.create(H.calcom_create_body { title = "Hand made" })).id
    local g = assert(client.gcal.create(H.gcal_body { name = "Hand made fn" })).id
    local plan = assert(client.sync.plan(desired { { unit = UNIT } }))
    assert.same({ { unit = UNIT, kind = "calcom", id = c, title = "Hand made" },
                  { unit = UNIT, kind = "gcal", id = g, name = "Hand made fn" } }, plan.unmanaged)
    assert.equals(0, #plan.changes)
    local excl = assert(client.sync.plan(desired { { unit = UNIT, exclusive = true } }))
    assert.is_true(excl.unmanaged[1].exclusive)
    assert.equals(2, excl.summary.unmanaged)
    assert.are_not.equal(plan.checksum, excl.checksum)
  end)

  it("guards against the wrong unit: server records, file records, and not one matched", function()
    assert(client.calcom.create(H.calcom_create_body { title = "Other" }))
    local plan = assert(client.sync.plan(desired { { unit = UNIT, calcom = { calcom_record("x", { title = "Mine" }) } } }))
    assert.same({ { unit = UNIT, kind = "calcom", server = 1, file = 1 } }, plan.unmatched)
  end)

  it("fails a matched record without the documented shape (unexpected-shape), naming the paths", function()
    local odd = S.put_record("calcom", { title = "Odd", unitId = UNIT, calcomUsername = "u", timezone = "UTC",
      checkAvailabilityEnabled = true, createBookingEnabled = true }) -- no prompt
    S.put_record("function", { name = "No plugin", description = "d", userId = USER, unityId = UNIT,
      type = "google-calendar" })
    local plan = assert(client.sync.plan(desired { { unit = UNIT,
      calcom = { calcom_record("odd", { id = odd }) }, gcal = { gcal_record("np", { name = "No plugin" }) } } }))
    local o = find(plan.failed, "odd")
    assert.equals("unexpected-shape", o.reason)
    assert.same({ "prompt" }, o.paths)
    local np = find(plan.failed, "np")
    assert.equals("unexpected-shape", np.reason)
    assert.same({ "googleCalendar" }, np.paths)
    assert.equals(0, #plan.changes)
  end)

  it("fails a list answer item without an id", function()
    S.faults { { body = '{"data":[{"title":"No id"}]}' } }
    local plan = assert(client.sync.plan(desired { { unit = UNIT } }, { concurrency = 1 }))
    assert.same({ { unit = UNIT, kind = "calcom", reason = "unexpected-shape", paths = { "[1].id" } } }, plan.failed)
  end)

  it("survives hostile list items: ids that are not strings, titles that are not strings", function()
    local weird = "4a6f1f5e-8a2c-4d3e-9f10-aabbccddee04"
    S.faults { { body = '{"data":[{"id":5},{"id":""},{"id":[1]},{"id":"' .. weird .. '","title":{"a":1}}]}' } }
    local plan = assert(client.sync.plan(desired { { unit = UNIT, calcom = { calcom_record("t", { title = "T" }) } } },
      { concurrency = 1 }))
    local paths = {}
    for _, f in ipairs(plan.failed) do paths[#paths + 1] = f.reason .. " " .. f.paths[1] end
    assert.same({ "unexpected-shape [1].id", "unexpected-shape [2].id", "unexpected-shape [3].id" }, paths)
    assert.same({ { unit = UNIT, kind = "calcom", id = weird, title = null } }, plan.unmanaged)
    assert.equals(1, plan.summary.create)
  end)

  it("compares like patch: iconFileId \"\" is null, outputs without server ids, googleUser on the file's keys", function()
    local body = H.gcal_body { name = "Cmp", iconFileId = "",
      outputs = { { id = "11111111-2222-4333-8444-555555555555", customFunctionId = "x-1",
                    property = "date", type = "string", description = "d", required = true } } }
    local id = S.put_record("function", body) -- stored with server ids on its outputs, as the API answers
    local stored = assert(client.gcal.get(id))
    assert.equals("", stored.iconFileId)
    assert.equals("x-1", stored.outputs[1].customFunctionId)
    local rec = gcal_record("cmp", { id = id, name = "Cmp", iconFileId = null,
      outputs = { { property = "date", type = "string", description = "d", required = true } } })
    rec.googleCalendar.googleUser = { email = "ana@example.com" } -- only this key is managed
    local plan = assert(client.sync.plan(desired { { unit = UNIT, gcal = { rec } } }))
    assert.same({ create = 0, update = 0, unchanged = 1, unmanaged = 0, failed = 0 }, plan.summary)
    -- a changed googleUser key and a removed optional field are differences; ignored fields are not
    rec.googleCalendar.googleUser = { email = "new@example.com" }
    rec.googleCalendar.notificationContent = null
    rec.description = "changed but ignored"
    rec.ignore = { "description" }
    local plan2 = assert(client.sync.plan(desired { { unit = UNIT, gcal = { rec } } }))
    assert.same({
      { path = "googleCalendar.googleUser.email", old = "ana@example.com", new = "new@example.com" },
      { path = "googleCalendar.notificationContent", old = "Nova reunião", new = null },
    }, plan2.changes[1].diff)
  end)

  it("never compares secrets; update_secrets makes every token reference an update that sends it", function()
    local id = assert(client.gcal.create(H.gcal_body { name = "Tok" })).id
    local rec = gcal_record("tok", { id = id, name = "Tok" })
    local plan = assert(client.sync.plan(desired { { unit = UNIT, gcal = { rec } } }))
    assert.equals(1, plan.summary.unchanged)
    local plan2 = assert(client.sync.plan(desired { { unit = UNIT, gcal = { rec } } }, { update_secrets = true }))
    assert.same({ { path = "googleCalendar.googleToken", secret = true, new = { env = "H5_GCAL_TOKEN" } } },
      plan2.changes[1].diff)
  end)

  it("gives the same checksum for the same file and server state, and another when either changes", function()
    local id = assert(client.calcom.create(H.calcom_create_body { title = "Sum" })).id
    local d = desired { { unit = UNIT, calcom = { calcom_record("s", { id = id, title = "Sum", prompt = "p2" }) } } }
    local a = assert(client.sync.plan(d))
    local b = assert(client.sync.plan(d))
    assert.equals(a.checksum, b.checksum)
    assert.equals(a.desired, b.desired)
    assert.equals(toolzz.sync.encode(a), toolzz.sync.encode(b))
    assert(client.calcom.patch(id, { calcomUsername = "someone-else" }))
    local c = assert(client.sync.plan(d))
    assert.are_not.equal(a.checksum, c.checksum)
    assert.are_not.equal(a.changes[1].fingerprint, c.changes[1].fingerprint)
    d.units[1].calcom[1].prompt = "p3"
    local e = assert(client.sync.plan(d))
    assert.are_not.equal(c.desired, e.desired)
  end)

  it("fails a create that would not validate (invalid), and a list error fails the plan", function()
    local plan = assert(client.sync.plan(desired { { unit = UNIT, calcom = { { key = "thin", title = "Thin" } } } }))
    assert.equals("invalid", plan.failed[1].reason)
    assert.is_true(#plan.failed[1].problems >= 5)
    S.faults { { status = 500 }, { status = 500 } }
    local none, err = client.sync.plan(desired { { unit = UNIT } })
    assert.is_nil(none)
    assert.equals("http", err.kind)
    assert.equals(500, err.status)
  end)
end)

describe("sync plan inside nginx #no_valgrind", function()
  local R = require "openresty.harness"
  local gateway

  lazy_setup(function() gateway = R.start_gateway() end)
  lazy_teardown(R.stop_gateway)

  it("plans through the cosocket transport: the same plan, checksum included, as plain Lua", function()
    S.reset()
    local client = H.client()
    local id = assert(client.calcom.create(H.calcom_create_body { title = "Ngx" })).id
    assert(client.gcal.create(H.gcal_body { name = "Unmanaged fn" }))
    local d = desired { { unit = UNIT, calcom = { calcom_record("n", { id = id, title = "Ngx", prompt = "from nginx" }),
                                                  calcom_record("c", { title = "Created" }) } } }
    local here = assert(client.sync.plan(d))
    local answer = R.post(gateway, "/call", { op = "sync.plan", args = { d },
      options = { base_url = H.env.http_url, converflow_url = H.env.cf_http_url, retries = 0, timeout = 5 } })
    assert.is_true(answer.ok, require("cjson").encode(answer.error or {}))
    assert.equals("ngx", answer.transport)
    assert.same({ create = 1, update = 1, unchanged = 0, unmanaged = 1, failed = 0 }, answer.result.summary)
    assert.equals(here.checksum, answer.result.checksum)
  end)
end)

describe("sync export", function()
  it("pins ids, makes unique keys from titles/names, leaves out unit ids and apiKey, sorts, and plans with no change", function()
    S.reset()
    local client = H.client()
    local b = assert(client.calcom.create(H.calcom_create_body { title = "Sales Team" })).id
    local a = assert(client.calcom.create(H.calcom_create_body { title = "Agenda" })).id
    local other = assert(client.calcom.create(H.calcom_create_body { title = "Sales Team", unitId = UNIT2 })).id
    local g = assert(client.gcal.create(H.gcal_body { name = "Sales Team" })).id
    local doc = assert(client.sync.export { UNIT, UNIT2 })
    local u1, u2 = doc.units[1], doc.units[2]
    assert.equals(UNIT, u1.unit)
    assert.same({ "agenda", "sales-team" }, { u1.calcom[1].key, u1.calcom[2].key })
    assert.same({ a, b }, { u1.calcom[1].id, u1.calcom[2].id })
    assert.equals("sales-team-2", u1.gcal[1].key) -- keys are unique in the whole file
    assert.equals(g, u1.gcal[1].id)
    assert.equals("sales-team-3", u2.calcom[1].key)
    assert.equals(other, u2.calcom[1].id)
    assert.is_nil(u1.calcom[1].unitId)
    assert.is_nil(u1.calcom[1].apiKey)
    assert.is_nil(u1.gcal[1].unityId)
    assert.same({ env = "TOOLZZ_GOOGLETOKEN_SALES_TEAM_2" }, u1.gcal[1].googleCalendar.googleToken)
    assert.same({}, u2.gcal)
    local text = assert(toolzz.sync.encode(doc))
    assert.equals(text, toolzz.sync.encode(assert(client.sync.export { UNIT, UNIT2 })))
    assert.matches('"gcal": %[%]', text)
    local plan = assert(client.sync.plan(assert(toolzz.sync.decode(text))))
    assert.same({ create = 0, update = 0, unchanged = 4, unmanaged = 0, failed = 0 }, plan.summary)
    local none, err = client.sync.export { "not-a-unit" }
    assert.is_nil(none)
    assert.equals("validation", err.kind)
  end)
end)

-- Part 3: apply. Refusals before any write (stale saved plan, checksum,
-- safety limits, wrong unit, failed matches, unreadable secrets), per-record
-- outcomes (applied, failed, skipped, unknown), creates never re-sent, and
-- apply followed by plan showing no change.
local H = require "helpers"
local toolzz = require "toolzz"

local S = H.stand_in
local UNIT = H.UNIT
local ABSENT = "3a6f1f5e-8a2c-4d3e-9f10-aabbccddee02"
local KEY_VALUE = "cal_live_h5_apply_key_0123456789"

-- A file record for a Cal.com integration (apiKey as a reference).
local function calcom_record(key, over) return H.sync_calcom_record(key, "H5_APPLY_KEY", over) end

local function desired(units, safety)
  return { toolzz = 1, units = units, safety = safety }
end

-- n Cal.com records on the server and a file that changes the prompt of each.
local function n_updates(client, n)
  local records = {}
  for i = 1, n do
    local id = assert(client.calcom.create(H.calcom_create_body { title = "R" .. i })).id
    records[i] = calcom_record("r" .. i, { id = id, title = "R" .. i, prompt = "changed " .. i })
  end
  return desired { { unit = UNIT, calcom = records } }
end

local function refused(kind, report, err)
  assert.is_nil(report)
  assert.equals(kind, err.kind)
  assert.equals("sync.apply", err.op)
end

describe("sync apply", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)

  local keyfile
  setup(function()
    keyfile = os.tmpname()
    local f = assert(io.open(keyfile, "wb"))
    f:write(KEY_VALUE .. "\n")
    f:close()
  end)
  teardown(function() os.remove(keyfile) end)

  -- a record to create: its apiKey from a file (Lua cannot set an environment variable)
  local function new_record(key, over)
    local r = calcom_record(key, over)
    r.apiKey = { file = keyfile }
    return r
  end

  it("applies updates and creates, reports each outcome, and a second plan shows no change", function()
    local d = n_updates(client, 2)
    table.insert(d.units[1].calcom, new_record("fresh", { title = "Fresh" }))
    local report = assert(client.sync.apply(d))
    assert.is_true(report.ok)
    assert.equals(1, report.toolzz_report)
    assert.same({ applied = 3, failed = 0, skipped = 0, unknown = 0 }, report.summary)
    assert.equals("update", report.changes[1].action)
    assert.equals("applied", report.changes[1].outcome)
    local fresh = report.changes[3]
    assert.same({ "applied", "create", "fresh" }, { fresh.outcome, fresh.action, fresh.key })
    assert.is_string(fresh.id)
    assert.equals("changed 1", assert(client.calcom.get(report.changes[1].id)).prompt)
    local again = assert(client.sync.plan(d))
    assert.same({ create = 0, update = 0, unchanged = 3, unmanaged = 0, failed = 0 }, again.summary)
  end)

  it("applies a plan saved as JSON and read back with lua-cjson (empty arrays become {}): same checksum", function()
    local cjson = require "cjson"
    local d = n_updates(client, 2)
    table.insert(d.units[1].calcom, new_record("fresh", { title = "Fresh", prompt = "a/b \"q\" \n é" }))
    local plan = assert(client.sync.plan(d))
    assert.equals(0, #plan.failed) -- an empty list, written as [] and read back as {}
    local text = assert(toolzz.sync.encode(plan))
    local saved = cjson.decode(text)
    local report = assert(client.sync.apply(saved, { checksum = plan.checksum }))
    assert.is_true(report.ok)
    assert.equals(3, report.summary.applied)
    local again = assert(client.sync.plan(d))
    assert.equals(0, #again.changes)
    -- toolzz.sync.decode reads a saved plan back as it is
    local plan3 = assert(client.sync.plan(n_updates(client, 1)))
    local read = assert(toolzz.sync.decode(assert(toolzz.sync.encode(plan3))))
    assert.equals(plan3.checksum, read.checksum)
    assert.is_true(assert(client.sync.apply(read)).ok)
    -- and the same through cjson's own encoder
    local d2 = n_updates(client, 1)
    local plan2 = assert(client.sync.plan(d2))
    assert.is_true(assert(client.sync.apply(cjson.decode(cjson.encode(plan2)), { checksum = plan2.checksum })).ok)
  end)

  it("refuses a saved plan whose record changed since, with zero writes", function()
    local d = n_updates(client, 1)
    local plan = assert(client.sync.plan(d))
    assert(client.calcom.patch(plan.changes[1].id, { timezone = "UTC" })) -- someone edits by hand
    local writes = S.writes()
    local report, err = client.sync.apply(plan)
    refused("stale", report, err)
    assert.equals("r1", err.records[1].key)
    assert.matches("r1", err.message)
    assert.equals(writes, S.writes())
  end)

  it("refuses a saved plan whose record to create exists now, with zero writes", function()
    local plan = assert(client.sync.plan(desired { { unit = UNIT, calcom = { new_record("late", { title = "Late" }) } } }))
    assert(client.calcom.create(H.calcom_create_body { title = "Late" }))
    local writes = S.writes()
    local report, err = client.sync.apply(plan)
    refused("stale", report, err)
    assert.equals("exists now", err.records[1].reason)
    assert.equals(writes, S.writes())
  end)

  it("refuses a hand-edited plan and a checksum that is not the plan's, and applies with the right one", function()
    local d = n_updates(client, 1)
    local plan = assert(client.sync.plan(d))
    local good_new = plan.changes[1].diff[1].new
    plan.changes[1].diff[1].new = "sneaked in"
    local writes = S.writes()
    refused("stale", client.sync.apply(plan))
    plan.changes[1].diff[1].new = good_new
    refused("stale", client.sync.apply(plan, { checksum = "00" .. plan.checksum:sub(3) }))
    refused("stale", client.sync.apply(d, { checksum = "abc" }))
    assert.equals(writes, S.writes())
    local report = assert(client.sync.apply(plan, { checksum = plan.checksum }))
    assert.is_true(report.ok)
    assert.equals(plan.checksum, report.checksum)
  end)

  it("refuses more updates than the limit (default max(5, 30 % of matched)) unless forced", function()
    local d = n_updates(client, 6) -- 6 of 6 matched records: the limit is 5
    local writes = S.writes()
    local report, err = client.sync.apply(d)
    refused("unsafe", report, err)
    assert.equals(5, err.limit)
    assert.equals(6, err.updates)
    assert.equals(writes, S.writes())
    -- the file's limit wins over the default
    d.safety = { maxUpdates = 2 }
    d.units[1].calcom = { d.units[1].calcom[1], d.units[1].calcom[2], d.units[1].calcom[3] }
    refused("unsafe", client.sync.apply(d))
    assert.equals(writes, S.writes())
    report = assert(client.sync.apply(d, { force = true }))
    assert.equals(3, report.summary.applied)
    -- five updates pass the default limit
    local d5 = n_updates(client, 5)
    assert.is_true(assert(client.sync.apply(d5)).ok)
  end)

  it("refuses bad options before anything is read or written", function()
    local d = n_updates(client, 1)
    local requests = S.stats().requests
    for _, opts in ipairs { { concurrency = 0 }, { concurrency = 1.5 }, { concurrency = "4" }, { on_progress = 1 }, 7 } do
      local report, err = client.sync.apply(d, opts)
      refused("config", report, err)
    end
    assert.equals(requests, S.stats().requests)
  end)

  it("the default limit is ceil(30 %) of the matched records above 16 of them", function()
    local planner = require "toolzz.sync.plan"
    local function synthetic(updates, unchanged)
      local plan = { toolzz_plan = 1, desired = "x", failed = {}, unmanaged = {}, notes = {}, unmatched = {}, changes = {},
        summary = { create = 0, update = updates, unchanged = unchanged, unmanaged = 0, failed = 0 } }
      for i = 1, updates do
        plan.changes[i] = { unit = UNIT, kind = "calcom", key = "k" .. i, action = "update", adopted = false,
          id = string.format("3a6f1f5e-8a2c-4d3e-9f10-%012d", i), fingerprint = "f", diff = { { path = "prompt", new = "p" } } }
      end
      plan.checksum = planner.checksum(plan)
      return plan
    end
    local _, err = client.sync.apply(synthetic(7, 13)) -- 20 matched: limit 6
    assert.equals("unsafe", err.kind)
    assert.equals(6, err.limit)
    _, err = client.sync.apply(synthetic(6, 14)) -- within the limit: on to the re-reads, which find nothing
    assert.equals("stale", err.kind)
    assert.equals(0, S.writes())
  end)

  it("refuses a plan whose unit looks wrong unless forced, and failed matches always", function()
    assert(client.calcom.create(H.calcom_create_body { title = "Theirs" }))
    local d = desired { { unit = UNIT, calcom = { new_record("mine", { title = "Mine" }) } } }
    local writes = S.writes()
    local report, err = client.sync.apply(d)
    refused("unsafe", report, err)
    assert.matches("wrong unit", err.message)
    assert.equals(writes, S.writes())
    assert.is_true(assert(client.sync.apply(d, { force = true })).ok)
    local missing = desired { { unit = UNIT, calcom = { calcom_record("gone", { id = ABSENT }) } } }
    writes = S.writes()
    refused("unsafe", client.sync.apply(missing, { force = true }))
    assert.equals(writes, S.writes())
  end)

  it("resolves secret references before any write: a missing variable is a config error", function()
    local d = n_updates(client, 1)
    table.insert(d.units[1].calcom, calcom_record("nokey", { title = "No key", apiKey = { env = "H5_UNSET_VARIABLE_XYZ" } }))
    local writes = S.writes()
    local report, err = client.sync.apply(d)
    refused("config", report, err)
    assert.matches("H5_UNSET_VARIABLE_XYZ", err.message)
    assert.equals(writes, S.writes())
  end)

  it("reports partial failure: a failed PUT, a record changed before its re-read (skipped), the rest applied", function()
    local d = n_updates(client, 3)
    local other = H.client()
    local plan = assert(client.sync.plan(d))
    -- concurrency 1: the saved plan's 3 re-reads, then GET r1, PUT r1 (fails), GET r2, PUT r2, GET r3 (edited meanwhile)
    S.faults { {}, {}, {}, {}, { status = 500 } }
    local seen = {}
    local report = assert(client.sync.apply(plan, { concurrency = 1, on_progress = function(done, total, i, entry)
      seen[#seen + 1] = { done, total, i, entry.outcome }
      if done == 1 then assert(other.calcom.patch(d.units[1].calcom[3].id, { timezone = "UTC" })) end
    end }))
    assert.is_false(report.ok)
    assert.same({ applied = 1, failed = 1, skipped = 1, unknown = 0 }, report.summary)
    assert.equals("failed", report.changes[1].outcome)
    assert.same({ kind = "http", status = 500 }, { kind = report.changes[1].error.kind, status = report.changes[1].error.status })
    assert.equals("applied", report.changes[2].outcome)
    assert.equals("skipped", report.changes[3].outcome)
    assert.equals("stale", report.changes[3].error.kind)
    assert.same({ { 1, 3, 1, "failed" }, { 2, 3, 2, "applied" }, { 3, 3, 3, "skipped" } }, seen)
    -- the edited record kept the edit
    assert.equals("UTC", assert(client.calcom.get(d.units[1].calcom[3].id)).timezone)
  end)

  it("never writes back a token the record holds masked: that update fails, nothing is sent", function()
    local cjson = require "cjson"
    local id = S.put_record("function", H.gcal_body())
    local record = H.gcal_body { name = "Masked" }
    record.unityId, record.key, record.id = nil, "masked", id
    record.googleCalendar.googleToken = { env = "H11_UNUSED_TOKEN" }
    local d = desired { { unit = UNIT, gcal = { record } } }
    local plan = assert(client.sync.plan(d))
    assert.equals(1, plan.summary.update)
    -- the saved plan's re-read and the update's own re-read both see the plugin row flagged masked
    local read = assert(client.gcal.get(id))
    read.googleCalendarPlugin[1].isTokenMasked = true
    read.googleCalendarPlugin[1].googleToken = "ya29****************"
    S.faults { { body = cjson.encode(read) }, { body = cjson.encode(read) } }
    local writes = S.writes()
    local report = assert(client.sync.apply(plan))
    assert.is_false(report.ok)
    assert.equals("failed", report.changes[1].outcome)
    assert.equals("validation", report.changes[1].error.kind)
    assert.matches("googleCalendar.googleToken", report.changes[1].error.message, 1, true)
    assert.equals(writes, S.writes())
  end)

  it("never re-sends a create that got no answer (unknown); the next plan adopts it by name", function()
    local slow = H.client { timeout = 0.5 }
    local d = desired { { unit = UNIT, calcom = { new_record("lost", { title = "Lost answer" }) } } }
    local saved = assert(client.sync.plan(d))
    S.faults { {}, { delay = 1.5 } } -- the re-list; the create is made, its answer comes after the client gave up
    local writes = S.writes()
    local report = assert(slow.sync.apply(saved))
    assert.equals("unknown", report.changes[1].outcome)
    assert.is_false(report.ok)
    assert.equals(1, S.writes() - writes) -- one POST, never re-sent
    local plan
    for _ = 1, 50 do -- until the stand-in finished the delayed create
      plan = assert(client.sync.plan(d))
      if plan.summary.create == 0 then break end
      require("toolzz.core").sleep(0.05)
    end
    assert.equals(0, plan.summary.create)
    assert.equals(1, plan.summary.unchanged) -- adopted by name, nothing to change
    assert.equals(1, S.writes() - writes)
  end)

  it("a create answered with an error is failed; an exclusive unit with only unmanaged records writes nothing", function()
    local d = desired { { unit = UNIT, calcom = { new_record("x", { title = "X" }) } } }
    local saved = assert(client.sync.plan(d))
    S.faults { {}, { status = 503 } } -- the re-list passes, the create fails
    local report = assert(client.sync.apply(saved))
    assert.equals("failed", report.changes[1].outcome)
    assert.equals(503, report.changes[1].error.status)
    assert(client.calcom.create(H.calcom_create_body { title = "Stray" }))
    local writes = S.writes()
    local r2 = assert(client.sync.apply(desired { { unit = UNIT, exclusive = true } }))
    assert.is_true(r2.ok)
    assert.equals(0, #r2.changes)
    assert.equals(writes, S.writes())
  end)
end)

-- Apply's updates are depth first (issue 18: "its read and write are one
-- round trip apart, not a batch apart"): one batch of guarded patches, not
-- waves of re-reads then PUTs, each wave waiting for its slowest request.
-- Checked from the order the stand-in took the requests in (its journal).
local DEPTH_UPDATES, DEPTH_CONCURRENCY = 100, 8

-- The journal's entries from position first on, as { method, id }.
local function journal_from(first)
  local out = {}
  for k, entry in ipairs(S.journal()) do
    if k >= first then
      local method, id = entry:match("^(%u+) .*/([%x%-]+)$")
      out[#out + 1] = { method = method, id = id }
    end
  end
  return out
end

-- Each id's GET and PUT positions in entries (each exactly once), the first PUT's.
local function get_put_positions(entries)
  local get_at, put_at, first_put = {}, {}, nil
  for k, e in ipairs(entries) do
    assert(e.method == "GET" or e.method == "PUT", "unexpected request " .. tostring(e.method))
    local at = e.method == "GET" and get_at or put_at
    assert(not at[e.id], "two " .. e.method .. "s of " .. e.id)
    at[e.id] = k
    if e.method == "PUT" then first_put = first_put or k end
  end
  return get_at, put_at, first_put
end

describe("sync apply, depth first", function()
  before_each(function() S.reset() end)

  it(("writes each record one round trip after re-reading it, and a slow re-read holds up no other record's PUT "
    .. "(%d updates at concurrency %d)"):format(DEPTH_UPDATES, DEPTH_CONCURRENCY), function()
    local client = H.client()
    local d = n_updates(client, DEPTH_UPDATES)
    local plan = assert(client.sync.plan(d))
    assert.equals(DEPTH_UPDATES, plan.summary.update)
    -- the saved plan's re-reads pass; then the first re-read of the updates is slow (1.5 s)
    local faults = {}
    for i = 1, DEPTH_UPDATES do faults[i] = {} end
    faults[DEPTH_UPDATES + 1] = { delay = 1.5 }
    S.faults(faults)
    S.config { journal = true }
    local report = assert(client.sync.apply(plan, { force = true, concurrency = DEPTH_CONCURRENCY }))
    assert.same({ applied = DEPTH_UPDATES, failed = 0, skipped = 0, unknown = 0 }, report.summary)
    local entries = journal_from(DEPTH_UPDATES + 1) -- after the saved plan's re-reads
    assert.equals(2 * DEPTH_UPDATES, #entries, "a GET and a PUT per update")
    local get_at, put_at, first_put = get_put_positions(entries)
    local slow = entries[1].id -- the first re-read taken: the slow one
    local windows = {}
    for _, c in ipairs(plan.changes) do
      assert(get_at[c.id] and put_at[c.id], c.key .. " was not re-read and written")
      assert.truthy(put_at[c.id] > get_at[c.id], "PUT before its GET for " .. c.key)
      if c.id ~= slow then windows[#windows + 1] = put_at[c.id] - get_at[c.id] end
    end
    table.sort(windows)
    local median, widest = windows[math.floor(#windows / 2) + 1], windows[#windows]
    print(("\n    apply: first PUT is request %d; read-to-write window: median %d, widest %d; slow record's PUT: %d of %d")
      :format(first_put, median, widest, put_at[slow], #entries))
    assert.truthy(first_put <= 2 * DEPTH_CONCURRENCY + 1, "the first PUT is request " .. first_put)
    assert.truthy(median <= 2 * DEPTH_CONCURRENCY, "median read-to-write window " .. median)
    assert.truthy(widest <= 4 * DEPTH_CONCURRENCY, "widest read-to-write window " .. widest)
    -- no wave barrier: every other record was re-read and written while the slow re-read was out
    -- (in waves of re-reads then PUTs, its wave and every later one waited for it: its PUT came 9th of 200)
    assert.equals(#entries, put_at[slow], "the slow record's PUT is the last request")
    local again = assert(client.sync.plan(d))
    assert.equals(0, #again.changes)
  end)
end)

describe("the patch path's guard (private to toolzz.sync.apply)", function()
  before_each(function() S.reset() end)

  it("is used only when the 4th element holds toolzz.calls.GUARD; it ends an item without a PUT", function()
    local GUARD = require("toolzz.calls").GUARD
    local client = H.client()
    local ids = {}
    for i = 1, 4 do ids[i] = S.put_record("function", H.gcal_body { name = "record " .. i }) end
    local writes = S.writes()
    local results = assert(client.batch({
      { "gcal.patch", ids[1], { name = "plain" }, { guard = function() error("a caller's table is not a guard") end } },
      { "gcal.patch", ids[2], {}, { [GUARD] = function(record) return { name = "guarded " .. record.name,
        description = record.description, userId = record.userId, unityId = record.unityId,
        googleCalendar = H.gcal_body().googleCalendar } end } },
      { "gcal.patch", ids[3], {}, { [GUARD] = function() return nil, require("toolzz.errors").new("stale", "changed") end } },
      { "gcal.patch", ids[4], {}, { [GUARD] = function() error("guard broke near " .. H.env.token) end } },
    }, { concurrency = 2 }))
    assert.equals("plain", results[1].res.name)
    assert.equals("guarded record 2", results[2].res.name)
    assert.same({ "stale", "changed", "update" }, { results[3].err.kind, results[3].err.message, results[3].err.step })
    assert.equals("config", results[4].err.kind)
    assert.is_nil(results[4].err.message:find(H.env.token, 1, true))
    assert.equals(2, S.writes() - writes, "no PUT for the refused and the broken guard")
  end)
end)

describe("sync apply inside nginx #no_valgrind", function()
  local R = require "openresty.harness"
  local gateway

  lazy_setup(function() gateway = R.start_gateway() end)
  lazy_teardown(R.stop_gateway)

  it("applies through the cosocket transport: each record re-read, then written, by guarded patches", function()
    S.reset()
    local client = H.client()
    local d = n_updates(client, 12)
    local ids = {}
    for _, r in ipairs(d.units[1].calcom) do ids[r.id] = true end
    S.config { journal = true }
    local answer = R.post(gateway, "/call", { op = "sync.apply", args = { d, { force = true, concurrency = 4 } },
      options = { base_url = H.env.http_url, converflow_url = H.env.cf_http_url, retries = 0, timeout = 5 } })
    assert.is_true(answer.ok, require("cjson").encode(answer.error or {}))
    assert.equals("ngx", answer.transport)
    assert.same({ applied = 12, failed = 0, skipped = 0, unknown = 0 }, answer.result.summary)
    local entries = {}
    for _, e in ipairs(journal_from(1)) do
      if ids[e.id] then entries[#entries + 1] = e end -- (not the plan's list calls)
    end
    assert.equals(24, #entries, "a GET and a PUT per update")
    local get_at, put_at = get_put_positions(entries)
    for id in pairs(ids) do
      assert.truthy(get_at[id] and put_at[id] and put_at[id] > get_at[id], "GET then PUT of " .. id)
    end
    assert.equals("changed 7", assert(client.calcom.get(d.units[1].calcom[7].id)).prompt)
    assert.equals(0, #assert(client.sync.plan(d)).changes)
  end)
end)

-- Patch may never turn "change one field" into "replace what was read", nor
-- write back what it should not trust (issue 16, items 1, 8, 9):
-- - item edits: an array's items are edited by number ({ ["2"] = { … } },
--   `--set outputs.2.description=X`), the other items and keys kept; what
--   cannot be an edit (a sparse array, a number past the array read, a
--   key no item has) is refused with nothing sent;
-- - a GET that answers another record than the one asked for is a decode
--   error at step "get", nothing sent;
-- - a token that looks masked (a run of `*`, [REDACTED], a masked flag) is
--   never written back: validation on googleCalendar.googleToken, unless
--   the changes give a new token.
-- All against the stand-in, the command in process (cli.main) too.
local H = require "helpers"
local cjson = require "cjson"
local toolzz = require "toolzz"

local S = H.stand_in
local null = toolzz.null

local put_body = H.put_body -- the last PUT: decoded, and as sent

local OUT1 = { id = "11111111-2222-4333-8444-555555555555", customFunctionId = "x-1", property = "date",
               type = "string", description = "the day", required = true }
local OUT2 = { id = "21111111-2222-4333-8444-555555555555", property = "room", type = "string" }

-- A function stored with two outputs.
local function gcal_with_outputs()
  return S.put_record("function", H.gcal_body { outputs = { OUT1, OUT2 } })
end

local run = H.run_cli -- the command in process: exit status, stdout, stderr

describe("patch: item edits", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("an object of item numbers edits those items of the array read, keeping the rest", function()
    local id = gcal_with_outputs()
    assert(client.gcal.patch(id, { outputs = { ["2"] = { description = "X" } } }))
    assert.same({
      { property = "date", type = "string", description = "the day", required = true },
      { property = "room", type = "string", description = "X" },
    }, put_body().outputs)
  end)

  it("null removes a key of an item; several items at once", function()
    local id = gcal_with_outputs()
    assert(client.gcal.patch(id, { outputs = { ["1"] = { required = null, type = "number" },
                                               ["2"] = { property = "where" } } }))
    assert.same({
      { property = "date", type = "number", description = "the day" },
      { property = "where", type = "string" },
    }, put_body().outputs)
  end)

  it("a number past the array read is refused after the GET, nothing written", function()
    local id = gcal_with_outputs()
    local res, err = client.gcal.patch(id, { outputs = { ["3"] = { description = "X" } } })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("update", err.step)
    assert.equals("outputs.3", err.fields[1].path)
    assert.matches("2 items", err.fields[1].message, 1, true)
    assert.equals(0, S.writes())
  end)

  it("what cannot be an item edit is refused before the GET, nothing sent", function()
    local id = gcal_with_outputs()
    local cases = {
      { { ["0"] = { description = "X" } }, "outputs.0" },
      { { ["01"] = { description = "X" } }, "outputs.01" },
      { { ["1"] = "text" }, "outputs.1" },
      { { ["1"] = null }, "outputs.1" },
      { { ["1"] = { descripton = "X" } }, "outputs.1.descripton" },
      { { ["1"] = { required = "yes" } }, "outputs.1.required" },
      { { [2] = { description = "X" } }, "outputs" }, -- a sparse Lua array
      { { null, { description = "X" } }, "outputs" }, -- null does not keep item 1 (JSON [null, {…}])
    }
    for _, case in ipairs(cases) do
      local res, err = client.gcal.patch(id, { outputs = case[1] })
      assert.is_nil(res, case[2])
      assert.equals("validation", err.kind, case[2])
      assert.equals("get", err.step, case[2])
      assert.equals(case[2], err.fields[1].path, tostring(err))
    end
    local _, err = client.gcal.patch(id, { outputs = { ["1"] = { descripton = "X" } } })
    assert.matches('did you mean "description"', tostring(err), 1, true)
    _, err = client.gcal.patch(id, { outputs = { [2] = { description = "X" } } })
    assert.matches('["2"]', err.fields[1].message, 1, true) -- says how to edit item 2
    assert.equals(0, S.stats().requests)
  end)

  it("an update takes no item edits: it needs the whole array", function()
    local res, err = client.gcal.update(H.UUID, H.gcal_body { outputs = { ["1"] = { description = "X" } } })
    assert.is_nil(res)
    assert.equals("outputs", err.fields[1].path)
    assert.matches("patch", err.fields[1].message, 1, true)
    assert.equals(0, S.stats().requests)
  end)

  it("in a batch too", function()
    local id = gcal_with_outputs()
    local results = assert(client.batch({ { "gcal.patch", id, { outputs = { ["1"] = { type = "number" } } } } }))
    assert.is_nil(results[1].err)
    assert.same({
      { property = "date", type = "number", description = "the day", required = true },
      { property = "room", type = "string" },
    }, put_body().outputs)
  end)

  it("a plain array still replaces the array read, as documented", function()
    local id = gcal_with_outputs()
    assert(client.gcal.patch(id, { outputs = { { description = "X" } } }))
    assert.same({ { description = "X" } }, put_body().outputs)
  end)
end)

describe("the command: --set with an index edits an item", function()
  before_each(function() S.reset() end)

  it("--set outputs.2.description=X keeps the other outputs and output 2's other fields", function()
    local id = gcal_with_outputs()
    local code, _, err = run { "gcal", "patch", id, "--set", "outputs.2.description=X" }
    assert.equals(0, code, err)
    assert.same({
      { property = "date", type = "string", description = "the day", required = true },
      { property = "room", type = "string", description = "X" },
    }, put_body().outputs)
  end)

  it("two --set on one item, and -f with item numbers, merge", function()
    local id = gcal_with_outputs()
    local code, _, err = run({ "gcal", "patch", id, "-f", "-", "--set", "outputs.1.type=number",
                               "--set", "outputs.1.required=false" }, '{"outputs":{"2":{"description":"Y"}}}')
    assert.equals(0, code, err)
    assert.same({
      { property = "date", type = "number", description = "the day", required = false },
      { property = "room", type = "string", description = "Y" },
    }, put_body().outputs)
  end)

  it("an index into an array the changes give edits that array", function()
    local id = gcal_with_outputs()
    local code, _, err = run({ "gcal", "patch", id, "-f", "-", "--set", "outputs.1.type=number" },
      '{"outputs":[{"property":"only","type":"string"}]}')
    assert.equals(0, code, err)
    assert.same({ { property = "only", type = "number" } }, put_body().outputs)
  end)

  it("an index past the array read exits 3 with nothing written", function()
    local id = gcal_with_outputs()
    local code, out, err = run { "gcal", "patch", id, "--set", "outputs.3.description=X" }
    assert.equals(3, code)
    assert.equals("", out)
    assert.matches("outputs.3", err, 1, true)
    assert.equals(0, S.writes())
  end)
end)

describe("patch: the GET's identity", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  for _, kind in ipairs { "calcom", "gcal" } do
    it(kind .. ": a GET of A that answers record B is a decode error at step get, nothing written", function()
      local store = kind == "calcom" and "calcom" or "function"
      local body = kind == "calcom" and H.calcom_create_body() or H.gcal_body()
      local a = S.put_record(store, body)
      local b = S.put_record(store, kind == "calcom" and H.calcom_create_body { title = "B" }
        or H.gcal_body { name = "B" })
      local record_b = assert(client[kind].get(b))
      S.faults { { body = cjson.encode(record_b) } } -- the next GET answers B
      local res, err = client[kind].patch(a, { [kind == "calcom" and "prompt" or "description"] = "new" })
      assert.is_nil(res)
      assert.equals("decode", err.kind)
      assert.equals("get", err.step)
      assert.equals(kind .. ".patch", err.op)
      assert.matches(b, err.message, 1, true)
      assert.equals(0, S.writes())
      assert.not_matches(H.GOOGLE_TOKEN, tostring(err) .. cjson.encode(err), 1, true)
    end)
  end

  it("the same id in another case is the same record", function()
    local a = S.put_record("calcom", H.calcom_create_body())
    local rec = assert(client.calcom.get(a))
    rec.id = rec.id:upper()
    S.faults { { body = cjson.encode(rec) } }
    assert(client.calcom.patch(a, { prompt = "new" }))
  end)

  it("an id that is not a string is another record too; a record without id is trusted", function()
    local a = S.put_record("calcom", H.calcom_create_body())
    local rec = assert(client.calcom.get(a))
    rec.id = 42
    S.faults { { body = cjson.encode(rec) } }
    local _, err = client.calcom.patch(a, { prompt = "new" })
    assert.equals("decode", err.kind)
    rec.id = nil
    S.faults { { body = cjson.encode(rec) } }
    assert(client.calcom.patch(a, { prompt = "new" }))
  end)

  it("in a batch too", function()
    local a = S.put_record("calcom", H.calcom_create_body())
    local b = S.put_record("calcom", H.calcom_create_body { title = "B" })
    S.faults { { body = cjson.encode((assert(client.calcom.get(b)))) } }
    local results = assert(client.batch({ { "calcom.patch", a, { prompt = "new" } } }, { concurrency = 1 }))
    assert.equals("decode", results[1].err.kind)
    assert.equals(0, S.writes())
  end)
end)

describe("patch: a masked token is never written back", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  -- Queue a GET answer: function id as stored, changed by fn.
  local function answer_masked(id, fn)
    local rec = assert(client.gcal.get(id))
    fn(rec, rec.googleCalendarPlugin[1])
    S.faults { { body = cjson.encode(rec) } }
  end

  local masks = {
    ["a run of *"] = function(_, row) row.googleToken = "ya29.a0Af****************" end,
    ["all *"] = function(_, row) row.googleToken = "********" end,
    ["[REDACTED]"] = function(_, row) row.googleToken = "[REDACTED]" end,
    ["isTokenMasked on the record"] = function(rec) rec.isTokenMasked = true end,
    ["isTokenMasked on the plugin row"] = function(_, row) row.isTokenMasked = true end,
  }
  for name, mask in pairs(masks) do
    it(name .. ": refused unless the changes give a token", function()
      local id = S.put_record("function", H.gcal_body())
      answer_masked(id, mask)
      local res, err = client.gcal.patch(id, { name = "new" })
      assert.is_nil(res)
      assert.equals("validation", err.kind)
      assert.equals("update", err.step)
      assert.equals("googleCalendar.googleToken", err.fields[1].path)
      assert.matches("masked", err.fields[1].message, 1, true)
      assert.equals(0, S.writes())
      answer_masked(id, mask)
      assert(client.gcal.patch(id, { name = "new", googleCalendar = { googleToken = "ya29.fresh-token-0123456789" } }))
      assert.equals("ya29.fresh-token-0123456789", put_body().googleCalendar.googleToken)
    end)
  end

  it("a masked token in the changes is no new token: refused before the GET", function()
    local id = S.put_record("function", H.gcal_body())
    for _, token in ipairs { "********", "ya29.****", "[REDACTED]" } do
      local res, err = client.gcal.patch(id, { googleCalendar = { googleToken = token } })
      assert.is_nil(res)
      assert.equals("get", err.step)
      assert.equals("googleCalendar.googleToken", err.fields[1].path)
    end
    assert.equals(0, S.stats().requests)
  end)

  it("a token with a lone * is not taken for a mask", function()
    local id = S.put_record("function", H.gcal_body())
    answer_masked(id, function(_, row) row.googleToken = "ya29.a*b-0123456789" end)
    assert(client.gcal.patch(id, { name = "new" }))
    assert.equals("ya29.a*b-0123456789", put_body().googleCalendar.googleToken)
  end)
end)

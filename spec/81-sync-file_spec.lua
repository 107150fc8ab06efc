-- Part 3: the desired-state file. Every bad file gets one validation error
-- listing all of its problems with paths counted from 1, before any
-- request; `{ "file": PATH }` text; secret references; the canonical encoder.
local H = require "helpers"
local cjson = require "cjson"
local toolzz = require "toolzz"

local S = H.stand_in
local sync = toolzz.sync
local UNIT, USER = H.UNIT, H.USER
local UNIT2 = "1c6f1f5e-8a2c-4d3e-9f10-aabbccddeeff"
local ID1 = "2a6f1f5e-8a2c-4d3e-9f10-aabbccddee01"

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "/prompts'"))
  return dir
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The problems of a file's text, as "path: message" lines (the error must be
-- a validation error with fields).
local function problems_of(text, dir)
  local doc, err = sync.decode(text, dir or "/tmp")
  assert.is_nil(doc)
  assert.equals("validation", err.kind)
  assert.is_table(err.fields)
  local lines = {}
  for i, f in ipairs(err.fields) do lines[i] = f.path .. ": " .. f.message end
  return lines, err
end

local function has(lines, pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return true end
  end
  error("no problem matches " .. pattern .. " in:\n" .. table.concat(lines, "\n"), 2)
end

local function file_with(units)
  return cjson.encode { toolzz = 1, units = units }
end

local GOOD_GCAL = [[{ "key": "support", "name": "Meeting scheduling", "description": "d", "userId": "]] .. USER .. [[",
  "googleCalendar": { "googleId": "1098", "calendarId": "support@acme.com", "timezone": "UTC",
    "googleToken": { "file": "secrets/gtoken" },
    "googleUser": { "name": "A", "given_name": "A", "family_name": "B", "email": "a@acme.com" } } }]]

describe("sync file", function()
  it("decodes a good file: { file } text read relative to the file's folder, one trailing newline removed", function()
    local dir = tmpdir()
    write(dir .. "/prompts/sales.md", "Line one\nLine two\n\n")
    local text = [[{ "toolzz": 1, "safety": { "maxUpdates": 10 }, "units": [ { "unit": "]] .. UNIT .. [[", "exclusive": false,
      "calcom": [ { "key": "sales", "title": "Sales", "calcomUsername": "acme-sales", "timezone": "America/Sao_Paulo",
        "prompt": { "file": "prompts/sales.md" }, "checkAvailabilityEnabled": true, "createBookingEnabled": true,
        "apiKey": { "env": "CALCOM_KEY_SALES" }, "ignore": ["prompt"], "note": "free text" } ],
      "gcal": [ ]] .. GOOD_GCAL .. [[ ] } ] }]]
    write(dir .. "/desired.json", text)
    local doc = assert(sync.load(dir .. "/desired.json"))
    local rec = doc.units[1].calcom[1]
    assert.equals("Line one\nLine two\n", rec.prompt)
    assert.same({ env = "CALCOM_KEY_SALES" }, rec.apiKey)
    assert.same({ "prompt" }, rec.ignore)
    assert.equals(10, doc.safety.maxUpdates)
    -- a secret file reference is kept as an absolute path, never read
    assert.same({ file = dir .. "/secrets/gtoken" }, doc.units[1].gcal[1].googleCalendar.googleToken)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reports every problem of a file at once, with paths from 1, as one validation error", function()
    local text = [[{ "toolzz": 1, "unts": [], "units": [
      { "unit": "]] .. UNIT .. [[", "calcom": [
        { "key": "a", "title": "T", "title": "U", "timezone": "Mars/Base", "apiKey": "cal_live_LITERAL_in_file_123" },
        { "key": "a", "titel": "x", "checkAvailabilityEnabled": "yes" } ],
        "gcal": [ { "key": "g", "name": "N",
          "googleCalendar": { "timezone": "Nowhere/City", "googleToken": "ya29.LITERALTOKEN42" } } ] },
      { "unit": "]] .. UNIT2 .. [[", "calcom": [ { "key": "c", "unitId": "]] .. UNIT .. [[" } ] } ] }]]
    local lines, err = problems_of(text)
    has(lines, "^unts: is not a field here %(did you mean \"units\"%?%)")
    has(lines, "^units%[1%]%.calcom%[1%]%.title: the key \"title\" appears more than once")
    has(lines, "^units%[1%]%.calcom%[1%]%.timezone: is not a time zone")
    has(lines, "^units%[1%]%.calcom%[1%]%.apiKey: is a secret")
    has(lines, "^units%[1%]%.calcom%[2%]%.key: \"a\" is the key of units%[1%]%.calcom%[1%] too")
    has(lines, "^units%[1%]%.calcom%[2%]%.titel: is not a field of a calcom record %(did you mean \"title\"%?%)")
    has(lines, "^units%[1%]%.calcom%[2%]%.checkAvailabilityEnabled: must be a boolean")
    has(lines, "^units%[1%]%.gcal%[1%]%.googleCalendar%.timezone: is not a time zone")
    has(lines, "^units%[1%]%.gcal%[1%]%.googleCalendar%.googleToken: is a secret")
    has(lines, "^units%[2%]%.calcom%[1%]%.unitId: must be absent or equal to the unit's id")
    assert.equals(10, #lines)
    -- literal secrets in the file never reach the error
    local all = tostring(err) .. table.concat(lines, "\n")
    assert.is_nil(all:find("LITERAL", 1, true))
  end)

  it("finds a key repeated inside a nested object, which lua-cjson would drop", function()
    local text = [[{ "toolzz": 1, "units": [ { "unit": "]] .. UNIT .. [[", "gcal": [ { "key": "g",
      "googleCalendar": { "calendarId": "a", "calendarId": "b" } } ] } ] }]]
    local lines = problems_of(text)
    has(lines, "^units%[1%]%.gcal%[1%]%.googleCalendar%.calendarId: the key \"calendarId\" appears more than once")
    assert.equals(1, #lines)
    -- lua-cjson itself keeps one silently
    assert.equals("b", cjson.decode(text).units[1].gcal[1].googleCalendar.calendarId)
  end)

  it("checks the version", function()
    has(problems_of([[{ "units": [] }]]), "^toolzz: is required")
    has(problems_of([[{ "toolzz": 2, "units": [] }]]), "^toolzz: must be 1")
    has(problems_of([[{ "toolzz": "1", "units": [] }]]), "^toolzz: must be 1")
  end)

  it("refuses two records of one kind and unit that pin one id, or share a natural key without id", function()
    local rec = function(key, over)
      local r = { key = key, title = "Same" }
      for k, v in pairs(over or {}) do r[k] = v end
      return r
    end
    local lines = problems_of(file_with {
      { unit = UNIT, calcom = { rec("a", { id = ID1 }), rec("b", { id = ID1, title = "Other" }), rec("c"), rec("d") } },
      { unit = UNIT2, calcom = { rec("e") } }, -- another unit: no clash
    })
    has(lines, "^units%[1%]%.calcom%[2%]%.id: pins the same record as units%[1%]%.calcom%[1%]")
    has(lines, "^units%[1%]%.calcom%[4%]%.title: has no id and the same title as units%[1%]%.calcom%[3%]")
    assert.equals(2, #lines)
  end)

  it("refuses a unit listed twice, records that are not objects, and bad unit fields", function()
    local lines = problems_of(file_with {
      { unit = UNIT, exclusive = "yes", calcom = { "x" }, gcal = { key = "g" }, calcomm = {} },
      { unit = UNIT },
      { unit = "not-a-uuid" },
    })
    has(lines, "^units%[1%]%.calcomm: is not a field here %(did you mean \"calcom\"%?%)")
    has(lines, "^units%[1%]%.exclusive: must be a boolean")
    has(lines, "^units%[1%]%.calcom%[1%]: must be an object")
    has(lines, "^units%[1%]%.gcal: must be an array of records")
    has(lines, "^units%[2%]%.unit: is listed twice %(units%[1%]%)")
    has(lines, "^units%[3%]%.unit: must be a UUID")
    assert.equals(6, #lines)
  end)

  it("refuses env references on text fields, unreadable { file }s, bad ignore paths, server-only fields", function()
    local lines = problems_of(file_with {
      { unit = UNIT, calcom = { { key = "a", title = { env = "X" }, prompt = { file = "no/such/file.md" },
        ignore = { "prompt", "promt" }, createdAt = "2024-01-01", id = "nope" } },
        gcal = { { key = "g", unityId = UNIT, googleCalendar = { googleToken = { env = "1BAD" } } } } },
    })
    has(lines, "^units%[1%]%.calcom%[1%]%.title: { \"env\": NAME } is only for secret fields")
    has(lines, "^units%[1%]%.calcom%[1%]%.prompt: cannot read no/such/file%.md")
    has(lines, "^units%[1%]%.calcom%[1%]%.ignore%[2%]: is not a field path of this kind %(did you mean \"prompt\"%?%)")
    has(lines, "^units%[1%]%.calcom%[1%]%.createdAt: is set by the server")
    has(lines, "^units%[1%]%.calcom%[1%]%.id: must be a UUID")
    has(lines, "^units%[1%]%.gcal%[1%]%.googleCalendar%.googleToken: \"env\" must name an environment variable")
    assert.equals(6, #lines)
  end)

  it("names the line and column of a syntax error, and refuses text that is not UTF-8", function()
    local lines = problems_of('{ "toolzz": 1,\n  "units": [ } ')
    has(lines, "^: not JSON: line 2, column 14: unexpected \"}\"")
    has(problems_of('{ "toolzz": 1, "units": [], "x": "\255" }'), "not valid UTF%-8")
    has(problems_of('[1, 2]'), "must hold a JSON object")
  end)

  it("makes no request for a bad file: plan fails with the same validation error", function()
    S.reset()
    local client = H.client()
    local before = S.stats().requests
    local plan, err = client.sync.plan { toolzz = 1, units = { { unit = UNIT, calcom = { { title = "no key" } } } } }
    assert.is_nil(plan)
    assert.equals("validation", err.kind)
    assert.equals("units[1].calcom[1].key", err.fields[1].path)
    local report, err2 = client.sync.apply { toolzz = 1, units = { { unit = "bad" } } }
    assert.is_nil(report)
    assert.equals("validation", err2.kind)
    assert.equals(before, S.stats().requests)
  end)

  it("reads a caller's desired table raw (no metamethod of theirs runs) and refuses what JSON cannot hold", function()
    local trap = setmetatable({}, { __index = function() error("__index ran") end,
      __pairs = function() error("__pairs ran") end, __len = function() error("__len ran") end })
    local units = setmetatable({ { unit = UNIT, gcal = { { key = "g", outputs = { { property = "p", f = print } } } } } },
      getmetatable(trap))
    local doc, err = sync.check(setmetatable({ toolzz = 1, units = units }, getmetatable(trap)))
    assert.is_nil(doc)
    assert.equals("validation", err.kind)
    assert.matches("cannot be written as JSON", err.fields[1].message)
    local ok = assert(sync.check(setmetatable({ toolzz = 1, units = setmetatable({ { unit = UNIT } }, getmetatable(trap)) },
      getmetatable(trap))))
    assert.equals(UNIT, ok.units[1].unit)
  end)

  it("load: a missing file is a config error", function()
    local doc, err = sync.load("/nonexistent/desired.json")
    assert.is_nil(doc)
    assert.equals("config", err.kind)
  end)
end)

describe("sync canonical encoder", function()
  it("sorts keys, indents by two spaces, keeps arrays (also empty ones), and decodes back to the same", function()
    local doc = assert(sync.decode(file_with {
      { unit = UNIT, gcal = { { key = "g", outputs = toolzz.array(), iconFileId = toolzz.null,
        description = "a\"b\\c\n\1é/" } } },
    }))
    local text = assert(sync.encode(doc))
    assert.equals(table.concat({
      '{',
      '  "toolzz": 1,',
      '  "units": [',
      '    {',
      '      "gcal": [',
      '        {',
      '          "description": "a\\"b\\\\c\\n\\u0001é/",',
      '          "iconFileId": null,',
      '          "key": "g",',
      '          "outputs": []',
      '        }',
      '      ],',
      '      "unit": "' .. UNIT .. '"',
      '    }',
      '  ]',
      '}',
      '' }, "\n"), text)
    assert.same(doc, assert(sync.decode(text)))
    assert.equals(text, sync.encode(assert(sync.decode(text))))
  end)

  it("digests the same content to the same hex on every Lua (a plan's checksum made on one is checked on another)", function()
    local canonical = require "toolzz.sync.canonical"
    local list = toolzz.array()
    for i = 1, 600 do -- more than one 4096-piece chunk of text
      list[i] = { n = i, f = i / 8, s = "é\n\"" .. i, b = i % 2 == 0, z = toolzz.null, e = {} }
    end
    local doc = { list = list, big = 2 ^ 52, neg = -0.1 }
    -- the value every Lua gave when this spec was written (5.4, 5.1, LuaJIT)
    assert.equals("8493bd14a5285a1115c906bfda5020a73f9d2cba40ce99c332b9e93366e10119", canonical.digest(doc))
    list[600].s = "changed"
    assert.are_not.equal("8493bd14a5285a1115c906bfda5020a73f9d2cba40ce99c332b9e93366e10119", canonical.digest(doc))
  end)

  it("writes numbers in a form that reads back the same, integers without a fraction", function()
    assert.equals('[\n  1,\n  -2,\n  0.1,\n  1e+300,\n  3\n]\n', sync.encode(toolzz.array { 1, -2, 0.1, 1e300, 3.0 }))
    local text, why = sync.encode { f = function() end }
    assert.is_nil(text)
    assert.matches("cannot hold", why)
  end)
end)

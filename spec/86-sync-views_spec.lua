-- The views of a sync plan and an apply report (CONTRACT Part 3), in
-- process, from hand-built tables in the contract's JSON shape: the text
-- (per-unit summary, old → new, line diffs, (secret), colour only when
-- asked), the Markdown for a pull request, terminal-safe server text,
-- Markdown escaping and secrets never shown.
require "helpers"
local cjson = require "cjson"
local view = require "toolzz.cli.plan_view"
local plan_text = require "toolzz.cli.plan_text"
local plan_markdown = require "toolzz.cli.plan_markdown"
local sync_cli = require "toolzz.cli.sync"

local UNIT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
local UNIT2 = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"
local ID_SALES = "11111111-2222-4333-8444-555555555555"
local ID_OLD = "99999999-8888-4777-8666-555555555555"
local ID_A, ID_B = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
local SECRET_VALUE = "ya29.DISTINCTIVE-secret-token-value-7f3a"
local TOKEN = "cli-token-DISTINCTIVE-0123456789"

-- A plan as the library returns it: one update (adopted, with a multi-line
-- prompt, a title and a secret), one create with a token reference, one
-- ambiguous match, one unmanaged record, in two units.
local function sample_plan()
  return {
    toolzz_plan = 1, checksum = "5d41402abc4b2a76b9719d911017c592", desired = "aa",
    summary = { create = 1, update = 1, unchanged = 3, unmanaged = 1, failed = 1 },
    changes = {
      { unit = UNIT, kind = "calcom", key = "sales", action = "update", id = ID_SALES, adopted = true,
        updatedAt = "2026-12-01T10:00:00Z", fingerprint = "ab",
        diff = {
          { path = "title", old = "Sales", new = "Sales team" },
          { path = "prompt", old = "Book 30 minutes.\nBe kind.\nSpeak Portuguese.",
            new = "Book 45 minutes.\nBe kind.\nSpeak Portuguese.\nOffer a follow-up." },
          { path = "createBookingEnabled", old = false, new = true },
          { path = "googleCalendar.googleToken", secret = true },
        } },
      { unit = UNIT2, kind = "gcal", key = "support", action = "create",
        fields = { name = "Meeting scheduling", description = "Books meetings.\nIn Lisbon time.",
                   outputs = setmetatable({}, require("toolzz").array_mt),
                   googleCalendar = { timezone = "Europe/Lisbon",
                                      googleToken = { env = "GCAL_TOKEN_SUPPORT" } } } },
    },
    failed = { { unit = UNIT, kind = "gcal", key = "booking", reason = "ambiguous", ids = { ID_A, ID_B } } },
    unmanaged = { { unit = UNIT, kind = "calcom", id = ID_OLD, title = "Old desk" } },
  }
end

local function sample_report()
  return {
    toolzz_report = 1, ok = false,
    summary = { applied = 1, failed = 1, skipped = 1, unknown = 1 },
    changes = {
      { unit = UNIT, kind = "calcom", key = "sales", action = "update", id = ID_SALES, outcome = "applied" },
      { unit = UNIT, kind = "calcom", key = "desk", action = "update", id = ID_OLD, outcome = "skipped" },
      { unit = UNIT2, kind = "gcal", key = "support", action = "create", outcome = "failed",
        error = { kind = "http", status = 500, message = "internal error", request_id = "req-5xx-1" } },
      { unit = UNIT2, kind = "gcal", key = "help", action = "create", outcome = "unknown" },
    },
  }
end

local unpack = table.unpack or unpack -- luacheck: ignore 143

local function lines_of(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

-- The index of the first line equal to `line`, or nil.
local function index_of(lines, line)
  for i, l in ipairs(lines) do if l == line then return i end end
end

-- Every view of a plan and a report that shows it to people.
local function all_views(plan, report, secrets)
  return {
    text = plan_text.plan(plan, { secrets = secrets }),
    colour = plan_text.plan(plan, { color = true, secrets = secrets }),
    markdown = plan_markdown.plan(plan, { secrets = secrets }),
    report = plan_text.report(report, { secrets = secrets }),
    report_colour = plan_text.report(report, { color = true, secrets = secrets }),
    report_markdown = plan_markdown.report(report, { secrets = secrets }),
  }
end

describe("sync plan as text", function()
  it("starts with a summary per unit: + create, ~ update, ! failed, ? unmanaged, with keys and ids", function()
    local lines = lines_of(plan_text.plan(sample_plan()))
    assert.equal("unit " .. UNIT, lines[1])
    assert.equal("  ~ update    calcom sales    id " .. ID_SALES .. "  adopted: matched by name, not by id", lines[2])
    assert.equal("  ! failed    gcal   booking  ambiguous: ids " .. ID_A .. ", " .. ID_B, lines[3])
    assert.equal("  ? unmanaged calcom          id " .. ID_OLD .. '  "Old desk"', lines[4])
    assert.equal("unit " .. UNIT2, lines[5])
    assert.equal("  + create    gcal   support", lines[6])
    assert.equal("", lines[7])
    assert.equal("Plan: 1 to create, 1 to update, 3 unchanged, 1 unmanaged, 1 failed.", lines[8])
    assert.equal("checksum 5d41402abc4b2a76b9719d911017c592", lines[#lines])
  end)

  it("shows each changed field as old → new and (secret) for a secret", function()
    local lines = lines_of(plan_text.plan(sample_plan()))
    local head = index_of(lines, "~ update calcom sales  (unit " .. UNIT .. ", id " .. ID_SALES .. ")")
    assert.truthy(head)
    assert.equal('    title: "Sales" \226\134\146 "Sales team"', lines[head + 1])
    assert.truthy(index_of(lines, "    createBookingEnabled: false \226\134\146 true"))
    assert.truthy(index_of(lines, "    googleCalendar.googleToken: (secret)"))
  end)

  it("shows a multi-line prompt as a line diff", function()
    local lines = lines_of(plan_text.plan(sample_plan()))
    local at = index_of(lines, "    prompt:")
    assert.truthy(at)
    assert.same({
      "      - Book 30 minutes.",
      "      + Book 45 minutes.",
      "        Be kind.",
      "        Speak Portuguese.",
      "      + Offer a follow-up.",
    }, { unpack(lines, at + 1, at + 5) })
  end)

  it("lists a create's fields, dotted, with (secret) for a token reference and + lines for multi-line text", function()
    local lines = lines_of(plan_text.plan(sample_plan()))
    local at = index_of(lines, "+ create gcal support  (unit " .. UNIT2 .. ")")
    assert.truthy(at)
    assert.same({
      "    description:",
      "      + Books meetings.",
      "      + In Lisbon time.",
      "    googleCalendar.googleToken: (secret)",
      '    googleCalendar.timezone: "Europe/Lisbon"',
      '    name: "Meeting scheduling"',
      "    outputs: []",
    }, { unpack(lines, at + 1, at + 7) })
  end)

  it("says when there is nothing to change", function()
    local text = plan_text.plan({ toolzz_plan = 1, checksum = "00", changes = {}, failed = {}, unmanaged = {},
                                  summary = { create = 0, update = 0, unchanged = 4, unmanaged = 0, failed = 0 } })
    assert.equal("Plan: 0 to create, 0 to update, 4 unchanged, 0 unmanaged, 0 failed.\n"
      .. "No changes: the server matches the file.\n\nchecksum 00\n", text)
  end)

  it("uses colour only when asked: never when the command is not on a terminal or NO_COLOR is set", function()
    local plain = plan_text.plan(sample_plan())
    local coloured = plan_text.plan(sample_plan(), { color = true })
    assert.is_nil(plain:find("\27", 1, true))
    assert.is_nil(plan_text.report(sample_report()):find("\27", 1, true))
    assert.truthy(coloured:find("\27[32m+ create", 1, true))
    assert.truthy(coloured:find("\27[33m~ update", 1, true))
    assert.equal(plain, (coloured:gsub("\27%[%d+m", "")))
    assert.is_nil(plan_markdown.plan(sample_plan()):find("\27", 1, true))
    local function sys(tty, no_color)
      return { isatty = function() return tty end, getenv = function(name) return name == "NO_COLOR" and no_color or nil end }
    end
    assert.is_true(sync_cli.colour(sys(true, nil)))
    assert.is_true(sync_cli.colour(sys(true, ""))) -- NO_COLOR counts only when not empty
    assert.is_false(sync_cli.colour(sys(true, "1")))
    assert.is_false(sync_cli.colour(sys(false, nil)))
  end)

  it("cuts long unchanged runs in a line diff to their ends", function()
    local old, new = {}, {}
    for i = 1, 40 do old[i] = "line " .. i new[i] = "line " .. i end
    new[20] = "line twenty"
    local plan = { changes = { { unit = UNIT, kind = "calcom", key = "k", action = "update", id = ID_SALES,
      diff = { { path = "prompt", old = table.concat(old, "\n"), new = table.concat(new, "\n") } } } } }
    local text = plan_text.plan(plan)
    assert.truthy(text:find("        ... 16 unchanged lines\n        line 17\n        line 18\n        line 19\n"
      .. "      - line 20\n      + line twenty\n        line 21\n        line 22\n        line 23\n"
      .. "        ... 17 unchanged lines\n", 1, true))
  end)
end)

describe("sync plan remarks", function()
  it("shows the plan's notes, units where nothing matched, and the problems of an invalid create", function()
    local plan = sample_plan()
    plan.notes = { { unit = UNIT, kind = "calcom", key = "sales", path = "apiKey",
                     message = "apiKey is sent only when a record is created: the existing record keeps its own" } }
    plan.unmatched = { { unit = UNIT2, kind = "gcal", server = 3, file = 2 } }
    plan.failed[2] = { unit = UNIT2, kind = "calcom", key = "new", reason = "invalid",
                       problems = { { path = "timezone", message = "must be an IANA time zone" } } }
    local text = plan_text.plan(plan)
    assert.truthy(text:find("\nNotes:\n  unit " .. UNIT .. " calcom sales: apiKey is sent only when a record is "
      .. "created: the existing record keeps its own\n  unit " .. UNIT2 .. " gcal: 3 on the server, 2 in the file, "
      .. "not one matched (the wrong unit?): apply refuses this without --force\n", 1, true))
    assert.truthy(text:find("  ! failed    calcom new      invalid: timezone must be an IANA time zone\n", 1, true))
    local md = plan_markdown.plan(plan)
    assert.truthy(md:find("**Notes**\n\n- unit " .. UNIT:gsub("%-", "\\-") .. " calcom sales\\: apiKey", 1, true))
    assert.is_nil(plan_text.plan(sample_plan()):find("Notes:", 1, true))
  end)
end)

describe("sync line diff", function()
  local function ops(a, b)
    local out = {}
    for _, d in ipairs(view.line_diff(a, b)) do out[#out + 1] = d[1] .. d[2] end
    return out
  end

  it("keeps common lines and marks removed and added ones", function()
    assert.same({ " a", " b" }, ops({ "a", "b" }, { "a", "b" }))
    assert.same({ " a", "+x", " b" }, ops({ "a", "b" }, { "a", "x", "b" }))
    assert.same({ " a", "-b", " c" }, ops({ "a", "b", "c" }, { "a", "c" }))
    assert.same({ "-a", "+b" }, ops({ "a" }, { "b" }))
    assert.same({ "+a", "+b" }, ops({}, { "a", "b" }))
    assert.same({ " a", "-b", "-c", "+d", " e", "+f" }, ops({ "a", "b", "c", "e" }, { "a", "d", "e", "f" }))
  end)

  it("finds the longest common subsequence, not only a common head and tail", function()
    local result = ops({ "x", "a", "b", "c", "y" }, { "z", "a", "b", "c", "w" })
    assert.same({ "-x", "+z", " a", " b", " c", "-y", "+w" }, result)
  end)

  it("shows a very long middle as all removed then all added, without building a huge table", function()
    local a, b = {}, {}
    for i = 1, 600 do a[i] = "old " .. i b[i] = "new " .. i end
    local diff = view.line_diff(a, b)
    assert.equal(1200, #diff)
    assert.same({ "-", "old 1" }, diff[1])
    assert.same({ "-", "old 600" }, diff[600])
    assert.same({ "+", "new 1" }, diff[601])
  end)

  it("rebuilds both sides from any diff", function()
    math.randomseed(18)
    for _ = 1, 200 do
      local a, b = {}, {}
      for i = 1, math.random(0, 12) do a[i] = tostring(math.random(1, 4)) end
      for i = 1, math.random(0, 12) do b[i] = tostring(math.random(1, 4)) end
      local left, right = {}, {}
      for _, d in ipairs(view.line_diff(a, b)) do
        if d[1] ~= "+" then left[#left + 1] = d[2] end
        if d[1] ~= "-" then right[#right + 1] = d[2] end
      end
      assert.same(a, left)
      assert.same(b, right)
    end
  end)
end)

describe("sync views and secrets", function()
  -- A plan in which a buggy library let a secret value through in every
  -- place one could hide, and the token appears in server text.
  local function leaky_plan()
    local plan = sample_plan()
    plan.changes[1].diff[4] = { path = "googleCalendar.googleToken", secret = true, old = SECRET_VALUE, new = SECRET_VALUE }
    plan.changes[1].diff[5] = { path = "googleCalendar.googleToken", old = SECRET_VALUE .. "-old", new = SECRET_VALUE }
    plan.changes[1].diff[6] = { path = "googleCalendar", old = { googleToken = SECRET_VALUE, timezone = "UTC" },
                                new = { googleToken = SECRET_VALUE, timezone = "Europe/Lisbon" } }
    plan.changes[2].fields.googleCalendar.googleToken = SECRET_VALUE
    plan.changes[2].fields.apiKey = { env = "CALCOM_KEY" }
    plan.changes[2].fields.googleCalendar.nested = { apiKey = SECRET_VALUE }
    plan.unmanaged[1].title = "echo " .. TOKEN
    return plan
  end

  it("shows (secret), never a secret's value or its reference, in text and Markdown", function()
    local report = sample_report()
    report.changes[3].error.message = "upstream said " .. TOKEN
    for name, text in pairs(all_views(leaky_plan(), report, { TOKEN })) do
      assert.is_nil(text:find(SECRET_VALUE, 1, true), name)
      assert.is_nil(text:find("DISTINCTIVE", 1, true), name)
      assert.is_nil(text:find("GCAL_TOKEN_SUPPORT", 1, true), name)
      assert.is_nil(text:find("CALCOM_KEY", 1, true), name)
    end
    local text = plan_text.plan(leaky_plan(), { secrets = { TOKEN } })
    assert.truthy(text:find("    apiKey: (secret)\n", 1, true))
    assert.truthy(text:find("    googleCalendar.googleToken: (secret)\n    googleCalendar.nested.apiKey: (secret)\n", 1, true))
    assert.truthy(text:find('    googleCalendar: {"googleToken":"[REDACTED]","timezone":"UTC"} \226\134\146 '
      .. '{"googleToken":"[REDACTED]","timezone":"Europe/Lisbon"}\n', 1, true))
  end)
end)

describe("sync views and hostile server text", function()
  local HOSTILE = "A\27]52;c;cm0gLXJm\7B\27[2J\194\155" .. "31mC\226\128\174D\226\129\166E\155F\r\tG"

  local function hostile_plan()
    local plan = sample_plan()
    plan.changes[1].key = "k" .. HOSTILE
    plan.changes[1].diff[1] = { path = "title" .. HOSTILE, old = HOSTILE, new = "x" }
    plan.changes[1].diff[2].new = "line one\n" .. HOSTILE .. "\nline three"
    plan.changes[2].fields.name = HOSTILE
    plan.failed[1].reason = HOSTILE
    plan.failed[1].ids = { HOSTILE }
    plan.unmanaged[1].title = HOSTILE
    plan.unmanaged[1].id = HOSTILE
    plan.checksum = HOSTILE
    return plan
  end

  local function hostile_report()
    local report = sample_report()
    report.changes[1].key = HOSTILE
    report.changes[3].error = { kind = HOSTILE, status = HOSTILE, message = HOSTILE, request_id = HOSTILE }
    return report
  end

  it("neutralises control characters, C1, bidi overrides and isolates, and stray bytes, visibly", function()
    for name, text in pairs(all_views(hostile_plan(), hostile_report())) do
      local stripped = name:find("colour") and text:gsub("\27%[%d+m", "") or text
      assert.is_nil(stripped:find("[%z\1-\9\11-\31\127]"), name)
      assert.is_nil(stripped:find("\194[\128-\159]"), name)
      assert.is_nil(stripped:find("\226\128[\170-\174]"), name)
      assert.is_nil(stripped:find("\226\129[\166-\169]"), name)
      assert.is_nil(stripped:find("\155", 1, true), name)
      assert.truthy(stripped:find("u202e", 1, true), name)
    end
    local text = plan_text.plan(hostile_plan())
    assert.truthy(text:find([[A\u001b]52;c;cm0gLXJm\u0007B\u001b[2J\u009b31mC\u202eD\u2066E\x9bF\u000d\u0009G]], 1, true))
  end)

  it("keeps ordinary UTF-8 as it is", function()
    assert.equal("São Paulo – café €", view.safe_text("São Paulo – café €"))
    assert.equal("\240\159\153\130", view.safe_text("\240\159\153\130"))
    assert.equal("\\xc0\\xaf", view.safe_text("\192\175")) -- an overlong '/'
    assert.equal("\\xed\\xa0\\x80", view.safe_text("\237\160\128")) -- a surrogate
  end)

  it("writes hostile characters in JSON for a terminal as \\u escapes, the same JSON value", function()
    local json = cjson.encode({ title = "x\226\128\174y\194\155z\226\129\169" .. "é€" })
    local safe = view.json_safe(json)
    assert.is_nil(safe:find("\226\128\174", 1, true))
    assert.is_nil(safe:find("\194\155", 1, true))
    assert.same(cjson.decode(json), cjson.decode(safe))
  end)
end)

describe("sync plan as Markdown", function()
  it("has the totals, a table of every record and each change's fields", function()
    local md = plan_markdown.plan(sample_plan())
    local lines = lines_of(md)
    assert.equal("### toolzz plan", lines[1])
    assert.equal("1 to create, 1 to update, 3 unchanged, 1 unmanaged, 1 failed", lines[3])
    assert.equal("| | Unit | Kind | Key | Id | Note |", lines[5])
    assert.truthy(index_of(lines, "| \\~ update | 0a1b2c3d\\-4e5f\\-4a6b\\-8c7d\\-9e0f1a2b3c4d | calcom | sales | "
      .. "11111111\\-2222\\-4333\\-8444\\-555555555555 | adopted\\: matched by name\\, not by id |"))
    assert.truthy(index_of(lines, "| \\+ create | 5e6f7a8b\\-1c2d\\-4e3f\\-9a0b\\-1c2d3e4f5a6b | gcal | support |  |  |"))
    assert.truthy(index_of(lines, "- title: \\\"Sales\\\" \226\134\146 \\\"Sales team\\\""))
    assert.truthy(index_of(lines, "- googleCalendar\\.googleToken: \\(secret\\)"))
    assert.truthy(md:find("- prompt:\n\n  ```diff\n  - Book 30 minutes.\n  + Book 45 minutes.\n    Be kind.\n"
      .. "    Speak Portuguese.\n  + Offer a follow-up.\n  ```\n", 1, true))
  end)

  it("escapes Markdown-significant characters from the server and fences diffs past their backticks", function()
    local plan = sample_plan()
    plan.unmanaged[1].title = "<img src=x onerror=alert(1)> [click](https://evil.example) | *bold* `code`"
    plan.changes[1].key = "a|b"
    plan.changes[1].diff[2].new = "Say:\n```\nrm -rf /\n````\nend"
    local md = plan_markdown.plan(plan)
    assert.is_nil(md:find("[^\\]<img")) -- only as \<img
    assert.is_nil(md:find("[click]", 1, true))
    assert.is_nil(md:find("](", 1, true))
    assert.is_nil(md:find("*bold*", 1, true))
    assert.truthy(md:find("\\<img src\\=x onerror\\=alert\\(1\\)\\>", 1, true))
    assert.truthy(md:find("| a\\|b |", 1, true))
    -- the diff's fence is longer than the four backticks inside it
    assert.truthy(md:find("\n  `````diff\n", 1, true))
    assert.truthy(md:find("\n  + ````\n", 1, true))
    assert.truthy(md:find("\n  `````\n", 1, true))
    -- every table row keeps its seven pipes: no cell was split
    for _, line in ipairs(lines_of(md)) do
      if line:sub(1, 1) == "|" then
        local _, bars = line:gsub("\\|", ""):gsub("|", "")
        assert.equal(7, bars, line)
      end
    end
  end)
end)

describe("sync apply report", function()
  it("as text: per unit, each change's outcome, the error's kind, status and request id, and the totals", function()
    local lines = lines_of(plan_text.report(sample_report()))
    assert.same({
      "unit " .. UNIT,
      "  applied  ~ update calcom sales  id " .. ID_SALES,
      "  skipped  ~ update calcom desk  id " .. ID_OLD .. "  changed since it was read (stale): not written",
      "unit " .. UNIT2,
      "  failed   + create gcal   support  http status 500: internal error (request id req-5xx-1)",
      "  unknown  + create gcal   help  sent, no answer: never re-sent; the next plan adopts it by name",
      "Apply: 1 applied, 1 failed, 1 skipped, 1 unknown.",
    }, lines)
  end)

  it("as Markdown: a table of every change with its outcome", function()
    local lines = lines_of(plan_markdown.report(sample_report()))
    assert.equal("### toolzz apply", lines[1])
    assert.equal("1 applied, 1 failed, 1 skipped, 1 unknown", lines[3])
    assert.equal("| Outcome | Change | Unit | Kind | Key | Id | Details |", lines[5])
    assert.equal("| failed | \\+ create | 5e6f7a8b\\-1c2d\\-4e3f\\-9a0b\\-1c2d3e4f5a6b | gcal | support |  | "
      .. "http status 500\\: internal error \\(request id req\\-5xx\\-1\\) |", lines[9])
    assert.equal(10, #lines)
  end)

  it("copes with odd tables: missing lists, non-table entries, no summary", function()
    for _, odd in ipairs { {}, { changes = "x" }, { changes = { 1, "two", {} } }, { failed = { false } } } do
      assert.is_string(plan_text.plan(odd))
      assert.is_string(plan_markdown.plan(odd))
      assert.is_string(plan_text.report(odd))
      assert.is_string(plan_markdown.report(odd))
    end
    assert.equal("Apply: 0 applied, 0 failed, 0 skipped, 0 unknown.\n", plan_text.report({}))
  end)
end)

-- The C encoder: require("toolzz.core").encode(value [, max_bytes])
--   -> json | nil, problems ({ { path =, message = }, ... }).
local H = require "helpers"
local core = require "toolzz.core"
local toolzz = require "toolzz"
local cjson = require "cjson"

local encode = core.encode
local IS_54 = math.type ~= nil -- Lua 5.3+: integers and floats are distinct subtypes

-- Encode and insist on success; returns the JSON text.
local function ok(value, max_bytes)
  local json, problems = encode(value, max_bytes)
  assert.is_nil(problems)
  assert.is_string(json)
  return json
end

-- Encode and insist on refusal; returns the problem list.
local function refused(value, max_bytes)
  local json, problems = encode(value, max_bytes)
  assert.is_nil(json)
  assert.is_table(problems)
  assert.is_true(#problems >= 1)
  for _, p in ipairs(problems) do
    assert.is_string(p.path)
    assert.is_string(p.message)
    assert.is_true(#p.message > 0)
  end
  return problems
end

-- The single problem of a refusal; asserts its path.
local function one_problem(value, path)
  local problems = refused(value)
  assert.equals(1, #problems)
  assert.equals(path, problems[1].path)
  return problems[1]
end

local function paths_of(problems)
  local set = {}
  for _, p in ipairs(problems) do set[p.path] = true end
  return set
end

describe("toolzz.core.encode", function()
  describe("numbers", function()
    it("writes integers as integers", function()
      assert.equals('{"a":1,"b":-42,"c":0}', ok { a = 1, b = -42, c = 0 })
      assert.equals("[9007199254740991]", ok { 9007199254740991 })
      assert.equals("1234567", ok(1234567))
    end)

    if IS_54 then
      it("writes math.maxinteger and math.mininteger exactly (Lua 5.3+)", function()
        assert.equals("9223372036854775807", ok(math.maxinteger))
        assert.equals("-9223372036854775808", ok(math.mininteger))
        assert.equals("[9223372036854775807]", ok { math.maxinteger })
      end)

      it("writes a float with an integral value as a float: 3.0 (Lua 5.3+)", function()
        assert.equals("3.0", ok(3.0))
        assert.equals("[3,3.0]", ok { 3, 3.0 })
        local back = cjson.decode(ok { 3.0 })[1]
        assert.equals("float", math.type(back))
      end)
    else
      it("writes an integral number without a fraction (Lua 5.1 / LuaJIT)", function()
        assert.equals("3", ok(3.0))
        assert.equals("[-7]", ok { -7 })
      end)
    end

    it("writes floats that read back as the same double", function()
      local values = { 0.1, 1 / 3, 1e300, -1e300, 2.5e-308, 5e-324, 123.456, -0.000001, 1e21, 2 ^ 70,
        math.pi, 1 - 2 ^ -53 }
      local json = ok(values)
      local back = cjson.decode(json)
      assert.equals(#values, #back)
      for i, v in ipairs(values) do
        assert.equals(v, back[i], "item " .. i .. " of " .. json)
      end
    end)

    it("keeps the sign of -0.0", function()
      local json = ok { -0.0 }
      local back = cjson.decode(json)[1]
      assert.equals(0, back)
      assert.equals(-math.huge, 1 / back, "-0.0 was written as " .. json)
    end)

    it("writes floats in JSON number syntax (no locale comma, no inf/nan words)", function()
      for _, v in ipairs { 0.1, 1 / 3, 1e300, 5e-324, -2.75 } do
        local json = ok(v)
        assert.truthy(json:find("^%-?%d+%.?%d*[eE]?[%+%-]?%d*$"), json)
      end
    end)
  end)

  describe("strings", function()
    it("keeps non-ASCII text and emoji as raw UTF-8", function()
      local s = "ação, 東京, Ελληνικά, שלום, 😀👍🏽, 𝄞"
      assert.equals('"' .. s .. '"', ok(s))
      assert.equals('{"prompt":"' .. s .. '"}', ok { prompt = s })
    end)

    it("accepts the edges of valid UTF-8", function()
      for _, s in ipairs { "\127", "\194\128", "\223\191", "\224\160\128", "\237\159\191",
        "\238\128\128", "\239\191\191", "\240\144\128\128", "\244\143\191\191" } do
        assert.equals('"' .. s .. '"', ok(s))
      end
    end)

    it("escapes quote, backslash, newline and the other short escapes", function()
      assert.equals([["say \"hi\""]], ok 'say "hi"')
      assert.equals([["C:\\dir\\file"]], ok "C:\\dir\\file")
      assert.equals([["a\nb\rc\td\be\ff"]], ok "a\nb\rc\td\be\ff")
    end)

    it("writes other control characters as \\u00XX, NUL included", function()
      assert.equals([["a\u0000b"]], ok "a\0b")
      assert.equals([["\u0001\u001f\u000b\u001b"]], ok "\1\31\11\27")
    end)

    it("writes text that cjson reads back byte for byte", function()
      local s = "\"quoted\" \\ back\nslash\0nul\1\31 ação 😀 /path"
      local back = cjson.decode(ok { s = s })
      assert.equals(s, back.s)
    end)

    it("escapes keys like values", function()
      assert.equals([[{"a\"b\nc":1}]], ok { ['a"b\nc'] = 1 })
    end)
  end)

  describe("null, arrays and objects", function()
    it("writes toolzz.null (cjson.null) as null", function()
      assert.equals("null", ok(toolzz.null))
      assert.equals('{"botId":null}', ok { botId = toolzz.null })
      assert.equals("[1,null,2]", ok { 1, cjson.null, 2 })
    end)

    it("writes an empty table marked with array_mt or toolzz.array() as []", function()
      assert.equals("[]", ok(setmetatable({}, core.array_mt)))
      assert.equals("[]", ok(toolzz.array()))
      assert.equals('{"outputs":[]}', ok { outputs = toolzz.array() })
      assert.equals(core.array_mt, toolzz.array_mt)
    end)

    it("writes a marked table with items as an array", function()
      assert.equals('[1,"two"]', ok(toolzz.array { 1, "two" }))
    end)

    it("writes an empty plain table as {}", function()
      assert.equals("{}", ok {})
      assert.equals('{"a":{}}', ok { a = {} })
    end)

    it("writes sequences as arrays and string-keyed tables as objects", function()
      assert.equals('[1,2,[3,{"x":true}]]', ok { 1, 2, { 3, { x = true } } })
      assert.equals('{"f":false,"t":true}', ok { t = true, f = false })
    end)

    it("writes the same table shared in two places (not a cycle)", function()
      local shared = { v = 1 }
      assert.equals('{"a":{"v":1},"b":{"v":1},"c":[{"v":1},{"v":1}]}',
        ok { a = shared, b = shared, c = { shared, shared } })
    end)

    it("writes tables nested a reasonable depth", function()
      local t = { leaf = true }
      for _ = 1, 30 do t = { t } end
      local json = ok(t)
      assert.equals(string.rep("[", 30) .. '{"leaf":true}' .. string.rep("]", 30), json)
    end)
  end)

  describe("key order", function()
    it("writes object keys sorted by bytes", function()
      assert.equals('{"B":2,"_":5,"a":1,"ab":4,"b":3,"é":6}', ok { a = 1, B = 2, b = 3, ab = 4, _ = 5, ["é"] = 6 })
    end)

    it("writes the same bytes for equal tables built in different orders", function()
      local a, b = {}, {}
      local names = {}
      for i = 1, 200 do names[i] = "key" .. i end
      for i = 1, 200 do a[names[i]] = { i, { x = i, y = "v" .. i } } end
      for i = 200, 1, -1 do b[names[i]] = { i, { y = "v" .. i, x = i } } end
      local first = ok(a)
      assert.equals(first, ok(b))
      for _ = 1, 5 do assert.equals(first, ok(a)) end
      -- and it really is sorted
      local last
      for key in first:gmatch('"(key%d+)":%[') do
        if last then assert.is_true(last < key, last .. " before " .. key) end
        last = key
      end
      assert.is_not_nil(last)
    end)

    it("sorts nested objects too", function()
      assert.equals('{"a":{"x":1,"y":2,"z":3},"m":[{"a":1,"b":2}]}',
        ok { m = { { b = 2, a = 1 } }, a = { z = 3, x = 1, y = 2 } })
    end)
  end)

  describe("refusals with their path", function()
    it("refuses a function", function()
      local p = one_problem({ a = { b = print } }, "a.b")
      assert.matches("function", p.message)
    end)

    it("refuses a function at the top level with the empty path", function()
      one_problem(print, "")
    end)

    it("refuses userdata (io.stdout)", function()
      local p = one_problem({ out = io.stdout }, "out")
      assert.matches("userdata", p.message)
    end)

    it("refuses a coroutine", function()
      local p = one_problem({ list = { 1, coroutine.create(function() end) } }, "list[2]")
      assert.matches("thread", p.message)
    end)

    it("refuses NaN, +inf and -inf", function()
      local problems = refused { nan = 0 / 0, inf = math.huge, ninf = -math.huge, fine = 1.5 }
      assert.same({ nan = true, inf = true, ninf = true }, paths_of(problems))
      assert.equals(3, #problems)
    end)

    it("refuses a table mixing array items and object keys", function()
      local p = one_problem({ outputs = { 1, 2, name = "x" } }, "outputs")
      assert.matches("mix", p.message)
    end)

    it("refuses a table marked as an array that has object keys", function()
      one_problem({ outputs = toolzz.array { name = "x" } }, "outputs")
    end)

    it("refuses sparse arrays", function()
      local sparse = { [1] = "a", [3] = "c" }
      local p = one_problem({ items = sparse }, "items")
      assert.matches("sparse", p.message)
      one_problem({ items = { [2] = "b" } }, "items")
    end)

    it("refuses keys that are neither strings nor 1..n", function()
      one_problem({ t = { [true] = 1 } }, "t")
      one_problem({ t = { [1.5] = 1 } }, "t")
      one_problem({ t = { [0] = 1 } }, "t")
      one_problem({ t = { [-1] = 1 } }, "t")
      one_problem({ t = { [{}] = 1 } }, "t")
      one_problem({ t = { [print] = 1 } }, "t")
    end)

    it("refuses cycles and returns (never loops)", function()
      local t = { name = "x" }
      t.self = t
      local p = one_problem(t, "self")
      assert.matches("cycl", p.message)

      local a, b = {}, {}
      a[1] = { next = b }
      b.back = a
      one_problem({ root = a }, "root[1].next.back")
    end)

    it("refuses 10,000 nested tables with a clean error, no crash", function()
      local deep = {}
      local cur = deep
      for _ = 1, 10000 do
        cur.x = {}
        cur = cur.x
      end
      local problems = refused(deep)
      assert.equals(1, #problems)
      assert.matches("deep", problems[1].message)
      assert.matches("^x%.x%.x", problems[1].path)

      local list = {}
      cur = list
      for _ = 1, 10000 do
        cur[1] = {}
        cur = cur[1]
      end
      problems = refused(list)
      assert.equals(1, #problems)
      -- the encoder is still usable afterwards
      assert.equals('{"a":1}', ok { a = 1 })
    end)

    it("names the item index in array paths", function()
      one_problem({ outputs = { "a", "b", { name = print } } }, "outputs[3].name")
      one_problem({ "a", print }, "[2]")
    end)
  end)

  describe("invalid UTF-8", function()
    local bad = {
      ["overlong slash"] = "\192\175",
      ["overlong 3-byte"] = "\224\128\175",
      ["overlong 4-byte"] = "\240\128\128\175",
      ["UTF-16 surrogate"] = "\237\160\128",
      ["low surrogate"] = "\237\191\191",
      ["truncated 3-byte sequence"] = "\226\130",
      ["truncated at the end"] = "abc\240\159\152",
      ["above U+10FFFF"] = "\244\144\128\128",
      ["F5 lead byte"] = "\245\128\128\128",
      ["stray continuation byte"] = "\128",
      ["continuation after ASCII"] = "ab\191cd",
      ["FF byte"] = "\255",
      ["Latin-1 text"] = "a\231\227o",
    }

    for name, bytes in pairs(bad) do
      it("refuses " .. name .. " in a value", function()
        local p = one_problem({ googleCalendar = { name = "ok " .. bytes .. " ok" } }, "googleCalendar.name")
        assert.matches("UTF%-8", p.message)
      end)

      it("refuses " .. name .. " in a key, without the bad bytes in the path", function()
        local problems = refused { user = { [bytes] = 1 } }
        assert.equals(1, #problems)
        assert.matches("^user%.", problems[1].path)
        assert.matches("UTF%-8", problems[1].message)
        assert.is_true(core.utf8_valid(problems[1].path))
      end)
    end
  end)

  describe("body-size cap", function()
    local two_mb = string.rep("x", 2 * 1024 * 1024)

    it("refuses a 2 MB string with the default cap of 1 MiB", function()
      local problems = refused { prompt = two_mb }
      assert.equals(1, #problems)
      assert.equals("", problems[1].path)
      assert.matches("1048576", problems[1].message)
    end)

    it("accepts a body just under the default cap", function()
      local s = string.rep("y", 1024 * 1024 - 2)
      assert.equals(1024 * 1024, #ok(s))
      refused(s .. "y")
    end)

    it("honours an explicit cap, larger or smaller", function()
      local json = ok({ prompt = two_mb }, 3 * 1024 * 1024)
      assert.equals(#two_mb + #'{"prompt":""}', #json)
      local problems = refused({ prompt = two_mb }, 2 * 1024 * 1024)
      assert.matches("2097152", problems[1].message)
      assert.equals(7, #ok("12345", 7))
      problems = refused("12345", 6)
      assert.equals(1, #problems)
      assert.equals("", problems[1].path)
    end)
  end)

  describe("several problems in one call", function()
    it("collects every problem with its path", function()
      local cyclic = {}
      cyclic.me = cyclic
      local problems = refused {
        name = "fine",
        fn = print,
        nested = { nan = 0 / 0, ok = 1, deeper = { co = coroutine.create(function() end) } },
        list = { 1, "two", io.stdout },
        mixed = { 1, x = 2 },
        sparse = { [1] = 1, [5] = 5 },
        bad_text = "\192\175",
        cyclic = cyclic,
      }
      assert.same({
        fn = true, ["nested.nan"] = true, ["nested.deeper.co"] = true, ["list[3]"] = true,
        mixed = true, sparse = true, bad_text = true, ["cyclic.me"] = true,
      }, paths_of(problems))
      assert.equals(8, #problems)
    end)

    it("leaves no state behind: the next call encodes normally", function()
      refused { a = print, b = 0 / 0 }
      assert.equals('{"a":"x","b":[]}', ok { b = toolzz.array(), a = "x" })
    end)
  end)

  it("is what the client sends (helpers' bodies encode)", function()
    local json = ok(H.calcom_body())
    assert.same(H.calcom_body(), cjson.decode(json))
  end)
end)

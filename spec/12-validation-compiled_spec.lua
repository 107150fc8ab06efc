-- The quick validity test of each schema (toolzz.validate compiles a plan per
-- schema for src/check.c) must give the same verdict as the walk that
-- explains problems, for every field of every schema set to every kind of
-- value, in strict and lax mode, and must hand out the same secrets. The C
-- e-mail and URL rules must agree with their definition as Lua patterns.
local H = require "helpers"
local toolzz = require "toolzz"
local validate = require "toolzz.validate"
local cjson = require "cjson"
local core = require "toolzz.core"

local null = cjson.null
local UUID = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"

-- Values of every kind, valid for some field type and not for others.
local VALUES = {
  "REMOVE", null, "", "x", "Calcom", UUID, "not-a-uuid", "America/Sao_Paulo", "Mars/Olympus",
  "ana@example.com", "ana@@example.com", ".ana@example.com", "https://example.com/a.png",
  "ftp://example.com", "http://exa mple.com", "12345678901234567890", "12a", string.rep("1", 65),
  "google-calendar", "javascript", 0, 1.5, true, false, {}, { 1, 2 }, { a = 1 }, { [1] = "a", b = 2 },
  setmetatable({}, { __index = function() return "x" end }),
}

local SCHEMAS = {
  { name = "calcom", spec = toolzz.schema.calcom, body = H.calcom_body },
  { name = "calcom_create", spec = toolzz.schema.calcom_create, body = H.calcom_create_body },
  { name = "gcal", spec = toolzz.schema.gcal, body = H.gcal_body },
  { name = "gcal_create", spec = toolzz.schema.gcal_create, body = H.gcal_body },
}

-- Every dotted field path of a schema, objects included.
local function paths_of(spec, prefix, out)
  for name, field in pairs(spec.fields) do
    local path = prefix and (prefix .. "." .. name) or name
    out[#out + 1] = path
    if field.type == "object" then paths_of(field, path, out) end
  end
  return out
end

local function set(body, path, value)
  local t, last = body, nil
  for name in path:gmatch("[^.]+") do
    if last then
      if type(t[last]) ~= "table" then return body end
      t = t[last]
    end
    last = name
  end
  if value == "REMOVE" then t[last] = nil else t[last] = value end
  return body
end

-- The body as the call path sees it: defaults filled in (prepare).
local function prepared(s, body)
  return validate.prepare(s.spec, body, nil)
end

-- The rules as Lua patterns (the definition the C checks implement).
local find, match = string.find, string.match
local function lua_email(v)
  if #v > 254 or find(v, "[%c%s]") then return false end
  local user, domain = match(v, "^([^@]+)@([^@]+)$")
  if not user or #user > 64 then return false end
  if find(user, "^%.") or find(user, "%.$") or find(user, "%.%.") then return false end
  return find(domain, "^[%w%-]+%.[%w%-%.]*[%w]$") ~= nil and not find(domain, "%.%.")
    and not find(domain, "%-%.") and not find(domain, "%.%-")
end
local function lua_http_url(v)
  if #v > 2048 or find(v, "[%c%s]") then return false end
  local scheme, host = match(v, "^(%a+)://([^/?#]+)")
  if not scheme then return false end
  scheme = scheme:lower()
  return (scheme == "http" or scheme == "https") and find(host, "^[%w%.%-]+:?%d*$") ~= nil
end

-- Strings near the rules' edges, and random ones from the characters that matter.
local function samples(seeds, alphabet, count)
  local out = {}
  for _, s in ipairs(seeds) do out[#out + 1] = s end
  math.randomseed(12)
  for _ = 1, count do
    local seed = seeds[math.random(#seeds)]
    local chars = {}
    for i = 1, #seed do chars[i] = seed:sub(i, i) end
    for _ = 1, math.random(1, 3) do -- mutate: replace, insert or delete a character
      local i, c = math.random(#chars + 1), alphabet[math.random(#alphabet)]
      local how = math.random(3)
      if how == 1 and chars[i] then chars[i] = c elseif how == 2 then table.insert(chars, i, c)
      elseif chars[i] then table.remove(chars, i) end
    end
    out[#out + 1] = table.concat(chars)
  end
  return out
end
local ALPHABET = { "a", "Z", "0", "9", ".", "-", "@", ":", "/", "?", "#", " ", "\t", "\0", "\127", "\200", "_", "+" }

describe("C value checks", function()
  it("e-mail addresses: the C rule agrees with the Lua patterns", function()
    local seeds = { "ana@example.com", "a.b@c.d", "a@b.c", "a@b", ".a@b.c", "a.@b.c", "a..b@c.d", "a@b..c",
      "a@b-.c", "a@b.-c", "a@-b.c", "a@b.c-", "a@@b.c", "@b.c", "a@", "a@b.c.", "a@.b.c", "A1-x@x1.Y2",
      string.rep("u", 64) .. "@x.y", string.rep("u", 65) .. "@x.y", "a@" .. string.rep("d", 250) .. ".c" }
    for _, v in ipairs(samples(seeds, ALPHABET, 3000)) do
      if core.email_valid(v) ~= lua_email(v) then error(("%q: C %s, Lua %s"):format(v, core.email_valid(v), lua_email(v))) end
    end
  end)

  it("http(s) URLs: the C rule agrees with the Lua patterns", function()
    local seeds = { "https://example.com/a.png", "http://a", "HTTP://a.b:8080/x", "https://a:", "https://:80",
      "https://a:b", "https://a:1:2", "ftp://a", "https:/a", "https//a", "https://", "https://?x", "https://a#x",
      "httpss://a", "htt://a", "https://user@a", "https://a-b.c_d", "https://[::1]/" }
    for _, v in ipairs(samples(seeds, ALPHABET, 3000)) do
      if core.http_url_valid(v) ~= lua_http_url(v) then
        error(("%q: C %s, Lua %s"):format(v, core.http_url_valid(v), lua_http_url(v)))
      end
    end
  end)
end)

describe("compiled validation", function()
  for _, s in ipairs(SCHEMAS) do
    it(s.name .. ": the quick test agrees with the walk on every field and value", function()
      local paths, checked = paths_of(s.spec, nil, {}), 0
      table.sort(paths)
      for _, strict in ipairs { true, false } do
        for _, path in ipairs(paths) do
          for _, value in ipairs(VALUES) do
            local body = prepared(s, set(s.body(), path, value))
            local walked = #validate.walk(s.spec, body, strict, {}) == 0
            local generated = validate.valid(s.spec, body, strict)
            if walked ~= generated then
              error(("%s.%s = %s (strict %s): walk says %s, generated says %s"):format(
                s.name, path, tostring(value), tostring(strict), tostring(walked), tostring(generated)))
            end
            checked = checked + 1
          end
        end
        -- an unknown key, and a key that is not a string
        for _, extra in ipairs { { titel = "x" }, { [1] = "x" } } do
          local body = prepared(s, s.body())
          for k, v in pairs(extra) do body[k] = v end
          assert.equal(#validate.walk(s.spec, body, strict, {}) == 0, validate.valid(s.spec, body, strict))
        end
      end
      assert.is_true(checked > 100)
      -- the example body is valid both ways
      assert.is_true(validate.valid(s.spec, prepared(s, s.body()), true))
    end)

    it(s.name .. ": check() collects the same secrets as the walk", function()
      for _, strict in ipairs { true, false } do
        local body = prepared(s, s.body())
        if not strict then -- unknown fields named like a secret are secrets in lax mode
          body.apiKey = "cal_live_unknown_but_secret"
          if type(body.googleCalendar) == "table" then body.googleCalendar.apiKey = "nested-secret" end
        end
        local fast, walked = {}, {}
        assert.same({}, validate.check(s.spec, body, strict, {}, fast))
        assert.same({}, validate.walk(s.spec, body, strict, {}, walked))
        table.sort(fast)
        table.sort(walked)
        assert.same(walked, fast)
        assert.is_true(#fast > 0 or not s.spec.has_secrets)
      end
    end)
  end

  it("an invalid body still gets every problem with its message", function()
    local body = H.calcom_body { unitId = "nope", timezone = "Mars/Olympus", titel = "typo" }
    local problems = validate.check(toolzz.schema.calcom, body, true, {})
    local paths = {}
    for _, p in ipairs(problems) do paths[#paths + 1] = p.path end
    table.sort(paths)
    assert.same({ "timezone", "titel", "unitId" }, paths)
  end)
end)

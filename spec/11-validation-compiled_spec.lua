-- The generated validity test of each schema (toolzz.validate compiles one
-- per schema for speed) must give the same verdict as the walk that explains
-- problems, for every field of every schema set to every kind of value, in
-- strict and lax mode, and must hand out the same secrets.
local H = require "helpers"
local toolzz = require "toolzz"
local validate = require "toolzz.validate"
local cjson = require "cjson"

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

describe("compiled validation", function()
  for _, s in ipairs(SCHEMAS) do
    it(s.name .. ": the generated test agrees with the walk on every field and value", function()
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

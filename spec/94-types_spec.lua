-- The LuaLS definitions (types/library/toolzz.lua) cannot rot: they are
-- written by tools/gen-types.lua from the catalogue, the schemas, the
-- options and the error kinds, which also fails when the module or a
-- client has a key the file does not declare. This spec checks that the
-- committed file is what the generator writes (tools/run-tests does too),
-- that the generator notices drift, and what only real calls show: the
-- fields of real errors, hook infos, dry runs and batch results.
local H = require "helpers"
local cjson = require "cjson"
local operations = require "toolzz.operations"
local stand_in = H.stand_in

local DEFINITIONS = H.root .. "/types/library/toolzz.lua"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Run the generator with lua5.4 (before: Lua code run first); -> exit
-- status, stderr.
local function generator(args, before)
  local err = os.tmpname()
  local command = ("cd %q && lua5.4 %s tools/gen-types.lua %s 2>%q"):format(H.root,
    before and ("-e %q"):format("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path; "
      .. "package.cpath = 'build/lua5.4/?.so;' .. package.cpath; " .. before) or "",
    args, err)
  local a, _, c = os.execute(command)
  local code = type(a) == "number" and (a >= 256 and math.floor(a / 256) or a) or c
  local text = read(err)
  os.remove(err)
  return code, text
end

-- class name -> set of the field and function names the file declares.
local function declarations(text)
  local classes, class = {}, nil
  for line in text:gmatch("[^\n]+") do
    local name = line:match("^%-%-%-@class%s+([%w%._]+)")
    if name then
      class = name
      classes[class] = classes[class] or {}
    end
    local field = line:match("^%-%-%-@field%s+([%w_]+)")
    if field and class then classes[class][field] = true end
  end
  return classes
end

local classes = declarations(read(DEFINITIONS))

local function assert_declared(class, field, why)
  assert.is_table(classes[class], "no class " .. class)
  assert.is_true(classes[class][field] or false, (why or "") .. class .. " does not declare '" .. tostring(field) .. "'")
end

describe("LuaLS definitions", function()
  it("are what tools/gen-types.lua writes, with an addon config beside them", function()
    local code, err = generator("--check")
    assert.equal(0, code, err)
    assert.is_function(loadfile(DEFINITIONS))
    assert.matches("^%-%-%-@meta", read(DEFINITIONS))
    local config = cjson.decode(read(H.root .. "/types/config.json"))
    assert.equal("toolzz", config.name)
    assert.is_table(config.words)
  end)

  it("fail the check when one line differs, naming it", function()
    local copy = os.tmpname()
    local f = assert(io.open(copy, "wb"))
    f:write((read(DEFINITIONS):gsub("\n%-%-%-@field prompt string [^\n]*", "\n---@field prompt string edited", 1)))
    f:close()
    local code, err = generator("--check " .. copy)
    os.remove(copy)
    assert.equal(1, code)
    assert.matches("committed: ---@field prompt string edited", err, 1, true)
  end)

  it("fail the generator when the code has what the descriptions lack", function()
    for _, case in ipairs {
      { "require('toolzz.errors').KINDS.bogus = true", "error kind 'bogus'" },
      { "require('toolzz.options').OPTION_TYPES.bogus = 'string'", "option 'bogus'" },
      { "require('toolzz.schema').calcom.fields.bogus = { type = 'string' }", "---@field bogus? string" },
      { "require('toolzz').bogus = function() end", "the module's 'bogus'" },
    } do
      local code, err = generator("--check", case[1])
      assert.equal(1, code, case[1])
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("declare every call in both forms: client.calcom.get(id) and client.calcom:get(id)", function()
    local text = read(DEFINITIONS)
    for _, op in ipairs(operations.list) do
      local class = op.group:gsub("^%l", string.upper)
      assert.matches("\nfunction " .. class .. "%." .. op.verb .. "%(", text)
      assert.matches("@overload fun%(self: toolzz%." .. class .. "[^\n]*\nfunction " .. class .. "%." .. op.verb
        .. "%(", text)
    end
  end)

  it("declare every field real errors carry, and every field the README lists", function()
    stand_in.reset()
    local toolzz = require "toolzz"
    local errors = require "toolzz.errors"
    local seen = {}
    local function collect(err)
      assert.is_table(err)
      for k in pairs(err) do seen[k] = true end
    end
    local client = H.client()
    collect(select(2, client.calcom.update("not-a-uuid", {})))
    collect(select(2, toolzz.new { token = "bad token" }))
    stand_in.faults { status = 429, headers = { ["Retry-After"] = "120" }, body = '{"message":"slow down"}' }
    collect(select(2, H.calcom(client)))
    stand_in.faults { status = 404 }
    collect(select(2, client.gcal.patch(H.UUID, { name = "x" })))
    stand_in.faults { body = "not json" }
    collect(select(2, H.calcom(client)))
    client:close()
    for _, k in ipairs { "kind", "message", "fields", "status", "body", "data", "request_id", "attempts",
                         "retry_after", "op", "step" } do
      assert.is_true(seen[k] or false, "no error made had '" .. k .. "'")
    end
    for k in pairs(seen) do assert_declared("toolzz.Error", k) end
    local readme = read(H.root .. "/README.md"):match("\n## Errors\n(.-)\n## ")
    assert.is_string(readme)
    for k in readme:gmatch("\n| `([%w_]+)` |") do
      if not errors.KINDS[k] then assert_declared("toolzz.Error", k, "README's error table: ") end
    end
  end)

  it("declare every field batch results, hooks and dry runs give", function()
    local client = H.client()
    local results = client.batch({ { "calcom", H.UUID, H.calcom_body() }, { "calcom", "bad", {} } },
      { concurrency = 1, on_progress = function() end })
    client:close()
    for _, r in ipairs(results) do
      for k in pairs(r) do assert_declared("toolzz.BatchResult", k) end
    end
    local infos = {}
    client = H.client {
      on_request = function(info) infos[#infos + 1] = info end,
      on_response = function(info) infos[#infos + 1] = info end,
    }
    stand_in.faults { request_id = "types-spec" }
    assert.is_table(H.calcom(client))
    assert.is_nil(client.gcal.get(H.UNIT)) -- an error: no function has that id (404)
    client:close()
    assert.truthy(#infos >= 4)
    for _, info in ipairs(infos) do
      for k in pairs(info) do assert_declared("toolzz.HookInfo", k) end
    end
    local dry = H.client { dry_run = true }
    local res = assert(dry.gcal.update(H.UUID, H.gcal_body()))
    dry:close()
    for k in pairs(res) do assert_declared("toolzz.DryRun", k) end
  end)
end)

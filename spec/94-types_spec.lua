-- The LuaLS definitions (types/library/toolzz.lua) cannot rot: every public
-- function of the module and the client, every call of the catalogue, every
-- option, error kind and error field, every field of every request schema
-- (required or optional, its type), the batch and hook shapes are read from
-- the code (or from real calls against the stand-in) and looked up in the
-- definition file.
local H = require "helpers"
local toolzz = require "toolzz"
local cjson = require "cjson"
local errors = require "toolzz.errors"
local operations = require "toolzz.operations"
local options = require "toolzz.options"
local stand_in = H.stand_in

local DEFINITIONS = H.root .. "/types/library/toolzz.lua"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- The type at the start of text: up to the first space outside brackets.
local function leading_type(text)
  local depth = 0
  for i = 1, #text do
    local c = text:sub(i, i)
    if c == "(" or c == "{" or c == "<" or c == "[" then
      depth = depth + 1
    elseif c == ")" or c == "}" or c == ">" or c == "]" then
      depth = depth - 1
    elseif c:match("%s") and depth == 0 then
      return text:sub(1, i - 1)
    end
  end
  return text
end

-- The classes (with fields and parent) and aliases (their text) a LuaCATS file declares.
local function parse_definitions(text)
  local classes, aliases, locals = {}, {}, {}
  local class_name, alias_name
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local name, parent = line:match("^%-%-%-@class%s+([%w%._]+)%s*:?%s*([%w%._]*)")
    local alias, alias_text = line:match("^%-%-%-@alias%s+([%w%._]+)%s*(.*)$")
    if name then
      classes[name] = { fields = {}, parent = parent ~= "" and parent or nil }
      class_name, alias_name = name, nil
    elseif alias then
      aliases[alias] = alias_text
      alias_name = alias
    elseif alias_name and line:match("^%-%-%-|") then
      aliases[alias_name] = aliases[alias_name] .. " " .. line:sub(5)
    else
      alias_name = nil
      local field, optional, rest = line:match("^%-%-%-@field%s+([%w_]+)(%??)%s+(.*)$")
      if field and class_name then
        classes[class_name].fields[field] = { optional = optional == "?", type = leading_type(rest) }
      end
      local var = line:match("^local%s+([%w_]+)%s*=%s*{}")
      if var and class_name then locals[var] = class_name end
      local owner, fn = line:match("^function%s+([%w_]+)[%.:]([%w_]+)%s*%(")
      if owner then
        assert(locals[owner], "function " .. owner .. "." .. fn .. " of no class")
        classes[locals[owner]].fields[fn] = { optional = false, type = "function" }
      end
    end
  end
  return classes, aliases
end

local classes, aliases = parse_definitions(read(DEFINITIONS))

-- A field of a class or of one of its parents.
local function field_of(class_name, field)
  local class = classes[class_name]
  while class do
    if class.fields[field] then return class.fields[field] end
    class = class.parent and classes[class.parent]
  end
end

local function assert_declared(class_name, field, why)
  assert.is_table(classes[class_name], "no class " .. class_name .. " in " .. DEFINITIONS)
  local f = field_of(class_name, field)
  assert.is_table(f, (why or "") .. class_name .. " does not declare '" .. tostring(field) .. "'")
  return f
end

-- "calcom_create" -> "CalcomCreate"
local function camel(name)
  return (name:gsub("^%l", string.upper):gsub("_(%l)", string.upper))
end

describe("LuaLS definitions", function()
  it("load as Lua, with an addon config beside them", function()
    assert.is_function(loadfile(DEFINITIONS))
    assert.matches("^%-%-%-@meta", read(DEFINITIONS))
    local config = cjson.decode(read(H.root .. "/types/config.json"))
    assert.equal("toolzz", config.name)
    assert.is_table(config.words)
  end)

  it("declare everything the module has", function()
    for key in pairs(toolzz) do assert_declared("toolzz", key) end
  end)

  it("declare every call of the catalogue, on the client and the module", function()
    for _, op in ipairs(operations.list) do
      local class = "toolzz." .. camel(op.group)
      local f = assert_declared(class, op.verb)
      assert.equal("function", f.type, op.name)
      assert.equal(class, assert_declared("toolzz", op.group).type)
      assert.equal(class, assert_declared("toolzz.Client", op.group).type)
      assert.matches('"' .. op.name:gsub("%p", "%%%0") .. '"', aliases["toolzz.OperationName"])
    end
    local client = H.client()
    for key, value in pairs(client) do
      assert_declared("toolzz.Client", key)
      if type(value) == "table" then
        for verb in pairs(value) do assert_declared("toolzz." .. camel(key), verb) end
      end
    end
    for key, value in pairs(getmetatable(client).__index) do
      if type(value) == "function" and not key:match("^__") then assert_declared("toolzz.Client", key) end
    end
    for group, calls in pairs { calcom = toolzz.calcom, gcal = toolzz.gcal } do
      for verb in pairs(calls) do assert_declared("toolzz." .. camel(group), verb) end
    end
    client:close()
  end)

  it("declare every option with its type", function()
    for name, lua_type in pairs(options.OPTION_TYPES) do
      local f = assert_declared("toolzz.Options", name)
      assert.is_true(f.optional, name .. " is optional")
      if lua_type == "function" then
        assert.matches("^fun%(", f.type, name)
      elseif lua_type == "string" then
        assert.truthy(f.type == "string" or f.type:match('^"'), name .. ": " .. f.type)
      elseif lua_type ~= "table" then
        assert.truthy(f.type == lua_type or (lua_type == "number" and f.type == "integer"), name .. ": " .. f.type)
      end
    end
  end)

  it("declare every error kind", function()
    for kind in pairs(errors.KINDS) do
      assert.matches('"' .. kind .. '"', aliases["toolzz.ErrorKind"], 1, true)
    end
    assert.equal("toolzz.ErrorKind", assert_declared("toolzz.Error", "kind").type)
  end)

  it("declare every field real errors carry, and every field the README lists", function()
    stand_in.reset()
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

  -- The declared type fits the schema's field spec.
  local function assert_type_fits(class_name, name, spec, declared)
    local t = declared.type
    local where = class_name .. "." .. name .. " (" .. t .. ")"
    local kind = spec.type
    if kind == "object" then
      assert.is_table(classes[t], where .. " is not a class")
      return
    end
    if spec.nullable then assert.matches("toolzz.null", t, 1, true) end
    if kind == "boolean" then
      assert.equal("boolean", t, where)
    elseif kind == "array" then
      assert.matches("%[%]$", t, where)
    elseif kind == "const" then
      assert.matches('"' .. spec.value .. '"', t, 1, true)
    elseif kind == "uuid" then
      assert.matches("^toolzz%.UUID", t, where)
    elseif kind == "timezone" then
      assert.equal("toolzz.TimeZone", t, where)
    else -- string, email, url, digits
      assert.equal("string", t, where)
    end
  end

  -- Every field of an object schema in a class and back; returns nothing.
  local function assert_schema_class(class_name, fields, all_optional)
    assert.is_table(classes[class_name], "no class " .. class_name .. " in " .. DEFINITIONS)
    for name, spec in pairs(fields) do
      local declared = assert_declared(class_name, name)
      if not all_optional then
        local optional = not spec.required or spec.default ~= nil -- a default fills it in
        assert.equal(optional, declared.optional,
          class_name .. "." .. name .. (optional and " is optional" or " is required"))
        assert_type_fits(class_name, name, spec, declared)
        if spec.type == "object" then assert_schema_class(declared.type, spec.fields) end
      else
        assert.is_true(declared.optional, class_name .. "." .. name .. " is optional in changes")
      end
    end
    local class = classes[class_name]
    while class do
      for name in pairs(class.fields) do
        assert.is_table(fields[name], class_name .. " declares '" .. name .. "', which the schema has not")
      end
      class = class.parent and classes[class.parent]
    end
  end

  it("declare every request schema's fields, required and optional, with their types", function()
    local count = 0
    for name, spec in pairs(toolzz.schema) do
      if type(spec) == "table" and type(spec.fields) == "table" then
        assert_schema_class("toolzz." .. camel(name) .. "Fields", spec.fields)
        count = count + 1
      end
    end
    assert.equal(4, count) -- calcom, gcal and their create schemas
    assert_schema_class("toolzz.CalcomChanges", toolzz.schema.calcom.fields, true)
    assert_schema_class("toolzz.GcalChanges", toolzz.schema.gcal.fields, true)
    for _, op in ipairs(operations.list) do
      if op.schema then
        assert.equal(op.schema, toolzz.schema[op.schema.name], op.name .. "'s schema is in toolzz.schema")
      end
    end
  end)

  it("declare the batch shapes", function()
    assert.matches('"calcom"', aliases["toolzz.BatchOp"], 1, true)
    assert.matches('"gcal"', aliases["toolzz.BatchOp"], 1, true)
    assert.matches("toolzz.OperationName", aliases["toolzz.BatchOp"], 1, true)
    assert.matches("toolzz.BatchOp", aliases["toolzz.BatchItem"], 1, true)
    local client = H.client()
    local results = client.batch({ { "calcom", H.UUID, H.calcom_body() }, { "calcom", "bad", {} } },
      { concurrency = 1, on_progress = function() end })
    client:close()
    for _, r in ipairs(results) do
      for k in pairs(r) do assert_declared("toolzz.BatchResult", k) end
    end
    assert_declared("toolzz.BatchOptions", "concurrency")
    assert.matches("^fun%(done: integer, total: integer, index: integer, result: toolzz.BatchResult%)$",
      assert_declared("toolzz.BatchOptions", "on_progress").type)
    assert.equal("fun(info: toolzz.HookInfo)", assert_declared("toolzz.Options", "on_request").type)
  end)

  it("declare every field hooks and dry runs give", function()
    local infos = {}
    local client = H.client {
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

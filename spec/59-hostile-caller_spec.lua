-- A hostile (or careless) caller never makes toolzz raise (issue 9, items 3
-- and 5): a hook's error object whose __tostring raises, options tables,
-- batch lists and keys whose metamethods raise. Everything comes back as a
-- result or nil, err.
local H = require "helpers"
local toolzz = require "toolzz"

local S = H.stand_in

local function raising(what)
  return function() error("the caller's " .. what .. " raised", 0) end
end

-- Error objects a hook can raise that are hard to turn into text.
local function bad_error_objects()
  return {
    { "__tostring raises", setmetatable({}, { __tostring = raising("__tostring") }) },
    { "__tostring gives a table", setmetatable({}, { __tostring = function() return {} end }) },
    { "__tostring raises a table whose __tostring raises", setmetatable({}, { __tostring = function()
        error(setmetatable({}, { __tostring = raising("inner __tostring") }))
      end }) },
  }
end

-- Run fn with stderr captured; returns pcall's results and what was printed.
local function quietly(fn)
  local printed = {}
  local real = io.stderr
  io.stderr = { write = function(_, ...) -- luacheck: ignore 122
    for _, s in ipairs { ... } do printed[#printed + 1] = tostring(s) end
  end }
  local results = { pcall(fn) }
  io.stderr = real -- luacheck: ignore 122
  return results, table.concat(printed)
end

describe("a hostile caller", function()
  before_each(function() S.reset() end)

  describe("hooks whose error cannot be shown", function()
    for _, case in ipairs(bad_error_objects()) do
      it("do not make update or batch raise (" .. case[1] .. ")", function()
        local client = H.client {
          on_request = function() error(case[2]) end,
          on_response = function() error(case[2]) end,
        }
        local results, printed = quietly(function()
          local res, err = H.gcal(client)
          local list = client.batch({ { "gcal", H.UUID, H.gcal_body() }, { "calcom", H.UUID, H.calcom_body() } },
            { on_progress = function() error(case[2]) end })
          return res, err, list
        end)
        client:close()
        assert.is_true(results[1], tostring(results[2]))
        assert.is_table(results[2], tostring(results[3]))
        assert.is_table(results[4][1].res)
        assert.is_table(results[4][2].res)
        assert.truthy(printed:find("on_request hook failed", 1, true), printed)
        assert.truthy(printed:find("on_progress failed", 1, true), printed)
      end)
    end
  end)

  describe("options tables with metamethods that raise", function()
    local mt = { __index = raising("__index"), __len = raising("__len"), __pairs = raising("__pairs"),
                 __newindex = raising("__newindex") }

    it("toolzz.new reads the options raw: a client, or nil, err", function()
      local opts = setmetatable({ token = H.env.token, base_url = H.env.http_url, retries = 0 }, mt)
      local ok, client, err = pcall(toolzz.new, opts)
      assert.is_true(ok, tostring(client))
      assert.is_nil(err)
      assert.is_table((H.gcal(client)))
      client:close()
      -- no token in the table: __index would be asked for it
      ok, client, err = pcall(toolzz.new, setmetatable({ base_url = H.env.http_url }, mt))
      assert.is_true(ok, tostring(client))
      if client then client:close() end -- TOOLZZ_TOKEN may be set
      assert.truthy(client or err.kind == "config")
    end)

    it("defaults with raising metamethods are read raw too", function()
      local defaults = setmetatable({ unitId = H.UNIT }, mt)
      local ok, client = pcall(toolzz.new, { token = H.env.token, base_url = H.env.http_url, defaults = defaults })
      assert.is_true(ok, tostring(client))
      local body = H.calcom_body()
      body.unitId = nil
      local res, err = client.calcom.update(H.UUID, body)
      client:close()
      assert.is_nil(err)
      assert.equals(H.UNIT, res.unitId)
    end)

    it("an option key whose __tostring raises is a config error", function()
      local key = setmetatable({}, { __tostring = raising("__tostring") })
      for _, make in ipairs {
        function() return toolzz.new { token = H.env.token, [key] = 1 } end,
        function()
          local client = H.client()
          local res, err = client.batch({ { "gcal", H.UUID, H.gcal_body() } }, { [key] = 1 })
          client:close()
          return res, err
        end,
      } do
        local ok, res, err = pcall(make)
        assert.is_true(ok, tostring(res))
        assert.is_nil(res)
        assert.equals("config", err.kind)
        assert.truthy(tostring(err):find("table key", 1, true), tostring(err))
      end
    end)
  end)

  describe("batch lists with metamethods that raise", function()
    local mt = { __index = raising("__index"), __len = raising("__len"), __pairs = raising("__pairs") }

    it("client.batch reads the list, its items and its options raw", function()
      local client = H.client()
      local requests = setmetatable({
        setmetatable({ "gcal", H.UUID, H.gcal_body() }, mt),
        { "calcom", H.UUID, setmetatable(H.calcom_body(), mt) },
      }, mt)
      local opts = setmetatable({ concurrency = 2 }, mt)
      local ok, results, err = pcall(client.batch, requests, opts)
      client:close()
      assert.is_true(ok, tostring(results))
      assert.is_nil(err)
      assert.equals(2, #results)
      assert.is_table(results[1].res, tostring(results[1].err))
      assert.is_table(results[2].res, tostring(results[2].err))
    end)

    it("a list of raising items gives each its own error", function()
      local client = H.client()
      local item = setmetatable({}, mt)
      local ok, results = pcall(client.batch, { item, 42, setmetatable({ "gcal" }, mt) })
      client:close()
      assert.is_true(ok, tostring(results))
      assert.equals(3, #results)
      for i = 1, 3 do assert.equals("validation", results[i].err.kind) end
    end)
  end)
end)

describe("hostile defaults", function()
  it("a defaults table shared many times per level (or cyclic) is copied once per table, quickly", function()
    local t = {}
    t.a, t.b, t.c, t.d = t, t, t, t -- 4^16 copies with a naive deep copy
    local started = os.clock()
    local client, err = toolzz.new { token = "test-token-0123456789abcdef", defaults = t }
    assert.is_table(client, tostring(err))
    assert.is_true(os.clock() - started < 1, "toolzz.new took " .. (os.clock() - started) .. " s")
    local res, verr = client.calcom.update(H.UUID, H.calcom_body { title = 1 })
    assert.is_nil(res)
    assert.equals("validation", verr.kind)
  end)
end)

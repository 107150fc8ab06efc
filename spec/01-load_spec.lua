local H = require "helpers"

-- The file `require name` loads from a path list (package.searchpath, which
-- Lua 5.1 lacks, written out).
local function search(name, path)
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = io.open(candidate, "rb")
    if f then
      f:close()
      return candidate
    end
  end
  return nil
end

describe("loading", function()
  it("require 'toolzz' loads the C core as toolzz.core", function()
    local toolzz = require "toolzz"
    local core = require "toolzz.core"
    assert.is_table(toolzz)
    assert.equals(core, package.loaded["toolzz.core"])
    assert.equals(core.version, toolzz._VERSION)
    assert.is_string(core.curl_version)
    assert.matches("^%d+%.%d+%.%d+", core.curl_version)
    -- from this tree: the Lua layer from lua/, the core built for this Lua
    local build = os.getenv("TOOLZZ_CPATH_DIR") or (H.root .. "/build/" .. H.flavour)
    assert.equals(build .. "/toolzz/core.so", search("toolzz.core", package.cpath))
    assert.equals(H.root .. "/lua/toolzz/init.lua", search("toolzz", package.path))
    local source = debug.getinfo(toolzz.new, "S").source
    assert.equals("@" .. H.root .. "/lua/toolzz/", source:sub(1, #H.root + 13))
  end)

  it("toolzz.null is cjson.null", function()
    assert.equals(require("cjson").null, require("toolzz").null)
  end)

  it("runs on the expected Lua flavour (" .. H.flavour .. ")", function()
    local is_jit = rawget(_G, "jit") ~= nil
    assert.equals(H.flavour == "luajit", is_jit)
  end)

  it("updates both endpoints against the stand-in", function()
    H.stand_in.reset() -- the stand-in holds H.UUID of each kind (an unknown id is a 404)
    local client = H.client()
    local res, err = client.calcom.update(H.UUID, H.calcom_body())
    assert.is_nil(err)
    assert.equals(H.UUID, res.id)
    res, err = client.gcal.update(H.UUID, H.gcal_body())
    assert.is_nil(err)
    assert.equals("google-calendar", res.type)
    client:close()
  end)
end)

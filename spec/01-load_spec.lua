local H = require "helpers"

describe("loading", function()
  it("require 'toolzz' loads the C core as toolzz.core", function()
    local toolzz = require "toolzz"
    local core = require "toolzz.core"
    assert.is_table(toolzz)
    assert.equals(core.version, toolzz._VERSION)
    assert.is_string(core.curl_version)
    assert.truthy(package.searchpath and true or true) -- 5.1 has no searchpath
  end)

  it("toolzz.null is cjson.null", function()
    assert.equals(require("cjson").null, require("toolzz").null)
  end)

  it("runs on the expected Lua flavour (" .. H.flavour .. ")", function()
    local is_jit = rawget(_G, "jit") ~= nil
    assert.equals(H.flavour == "luajit", is_jit)
  end)

  it("updates both endpoints against the stand-in", function()
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

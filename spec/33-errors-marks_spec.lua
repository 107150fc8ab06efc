-- What an error is marked with: err.op of module-level calls and of
-- client.batch itself; a list answer without its wrapper is a decode error
-- with body, request_id and attempts. Each spec failed when it was written.
local H = require "helpers"

local S = H.stand_in

describe("error marks", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("module-level calls name their op when no default client can be made", function()
    -- a fresh copy of the Lua layer that sees no TOOLZZ_TOKEN
    local saved, getenv = {}, os.getenv
    for name in pairs(package.loaded) do
      if (name == "toolzz" or name:match("^toolzz%.")) and name ~= "toolzz.core" then
        saved[name] = package.loaded[name]
        package.loaded[name] = nil
      end
    end
    os.getenv = function(name) -- luacheck: ignore 122
      if name == "TOOLZZ_TOKEN" then return nil end
      return getenv(name)
    end
    local ok, fresh = pcall(require, "toolzz")
    os.getenv = getenv -- luacheck: ignore 122
    for name in pairs(package.loaded) do
      if (name == "toolzz" or name:match("^toolzz%.")) and name ~= "toolzz.core" then package.loaded[name] = nil end
    end
    for name, m in pairs(saved) do package.loaded[name] = m end
    assert(ok, fresh)
    local _, err = fresh.calcom.get(H.UUID)
    assert.equals("config", err.kind)
    assert.equals("calcom.get", err.op)
    _, err = fresh.gcal.patch(H.UUID, {})
    assert.equals("gcal.patch", err.op)
    assert.equals("get", err.step)
    assert.matches("gcal.patch", tostring(err), nil, true)
  end)

  it("a list answer without its wrapper is a decode error with body, request_id and attempts", function()
    local text = '{"items":5,"pluginCount":1}'
    S.faults { { body = text, request_id = "review-request-id-1" } }
    local res, err = client.gcal.list(H.UNIT)
    assert.is_nil(res)
    assert.equals("decode", err.kind)
    assert.equals("gcal.list", err.op)
    assert.equals(text, err.body)
    assert.equals("review-request-id-1", err.request_id)
    assert.equals(1, err.attempts)
  end)

  it("errors of client.batch itself carry err.op", function()
    local _, err = client.batch("not a list")
    assert.equals("validation", err.kind)
    assert.is_string(err.op)
    client:close()
    _, err = client.batch { { "calcom.get", H.UUID } }
    assert.equals("config", err.kind)
    assert.is_string(err.op)
  end)
end)

-- The rockspec installs every module of lua/toolzz: require "toolzz" works
-- once installed (this spec failed when it was written).
local H = require "helpers"

local S = H.stand_in

describe("rockspec install", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("the rockspec installs every module of lua/toolzz (require \"toolzz\" works once installed)", function()
    local f = assert(io.open(H.root .. "/rockspec/toolzz-scm-1.rockspec", "r"))
    local text = f:read("*a")
    f:close()
    local listed = {}
    for name, file in text:gmatch('%["(toolzz[%w%._]*)"%]%s*=%s*"(lua/[^"]+)"') do listed[name] = file end
    local pipe = assert(io.popen("ls " .. H.root .. "/lua/toolzz/"))
    local missing = {}
    for file in pipe:lines() do
      local base = file:match("^(.*)%.lua$")
      if base then
        local name = base == "init" and "toolzz" or ("toolzz." .. base)
        if listed[name] ~= "lua/toolzz/" .. file then missing[#missing + 1] = name end
      end
    end
    pipe:close()
    table.sort(missing)
    assert.same({}, missing)
  end)
end)

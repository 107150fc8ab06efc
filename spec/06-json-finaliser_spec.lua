-- A call made from a finaliser while another call's body is encoded does not
-- corrupt that body.
-- Each spec here failed when it was written and names the defect it shows.
local H = require "helpers"

local S = H.stand_in

describe("encoding and finalisers", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("a call made from a finaliser while another call's body is encoded does not corrupt that body", function()
    -- The encoder kept its buffers in one scratch userdata; a finaliser that
    -- runs during a GC step inside core.encode and encodes too (any toolzz
    -- call) reset them under the outer call. valgrind showed a read of freed
    -- key memory in put_string (json.c) as well. (Lua 5.1 allocates nothing
    -- while encoding this body, so no finaliser runs inside it there.)
    -- It runs in a fresh interpreter (the same one, with this one's paths and
    -- environment: under ASan, ASan too): the collector is made to run
    -- constantly, which costs in proportion to the heap, and the whole
    -- suite's heap made it take minutes under ASan.
    local code = [[
      local H = require "helpers"
      local c = H.client { dry_run = true, strict = false }
      local outer = H.gcal_body { name = "outer" }
      for i = 1, 800 do outer[("extraField%03d_"):format(i) .. ("x"):rep(48)] = i end -- long keys: fresh strings
      collectgarbage("stop")
      local expected = assert(c.gcal.update(H.UUID, outer)).body
      collectgarbage("restart")
      local inner_calls = 0
      local function arm()
        local function finaliser()
          inner_calls = inner_calls + 1
          local other = H.gcal_body { name = "from-finaliser" }
          for i = 1, 80 do other[("other%d_%d_"):format(inner_calls, i) .. ("z"):rep(48)] = i end
          c.gcal.update(H.UUID, other)
        end
        if rawget(_G, "newproxy") then
          getmetatable(newproxy(true)).__gc = finaliser
        else
          setmetatable({}, { __gc = finaliser })
        end
      end
      collectgarbage("setpause", 1)
      collectgarbage("setstepmul", 1000)
      local corrupt = 0
      for _ = 1, 80 do
        for _ = 1, 5 do arm() end
        local res = c.gcal.update(H.UUID, outer)
        if not res or res.body ~= expected then corrupt = corrupt + 1 end
      end
      c:close()
      io.write("corrupt ", corrupt, " inner ", inner_calls, "\n")
    ]]
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(("package.path = %q; package.cpath = %q\n"):format(package.path, package.cpath), code)
    f:close()
    local p = assert(io.popen(H.flavour .. " " .. script .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    local corrupt, inner_calls = out:match("corrupt (%d+) inner (%d+)")
    assert.is_string(corrupt, out)
    assert.is_true(tonumber(inner_calls) > 0, "no finaliser ran during the test")
    assert.equals(0, tonumber(corrupt), corrupt .. " of 80 bodies came out corrupted (" .. inner_calls .. " finaliser calls)")
  end)
end)

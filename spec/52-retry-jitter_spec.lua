-- Retry jitter: different in every process, and never touching the
-- application's math.random.
-- Each spec here failed when it was written and names the defect it shows.
local H = require "helpers"

local S = H.stand_in

describe("retry jitter", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("retry jitter differs between processes (5.1/LuaJIT never seed math.random: every process waits alike)", function()
    -- Two fresh processes of this interpreter (as two cron jobs, or nginx
    -- workers forked from one master) pick their backoff waits.
    local code = ("package.path = %q; package.cpath = %q; local r = require('toolzz.retry'); "
      .. "io.write(r.backoff(4), ' ', r.backoff(5), ' ', r.backoff(6))"):format(package.path, package.cpath)
    local function waits()
      local p = assert(io.popen(H.flavour .. " -e '" .. code:gsub("'", "'\\''") .. "'"))
      local out = p:read("*a")
      p:close()
      assert.matches("^[%d%.e%-]+ [%d%.e%-]+ [%d%.e%-]+$", out)
      return out
    end
    local first, second = waits(), waits()
    assert.are_not.equal(first, second, "two processes chose the same 'random' waits: " .. first)
  end)

  it("retry jitter neither draws from nor reseeds the application's math.random; waits stay in [0, ceiling)", function()
    local retry = require "toolzz.retry"
    math.randomseed(42)
    local expected = { math.random(), math.random() }
    math.randomseed(42)
    for attempt = 1, 200 do
      local w = retry.backoff(attempt % 6 + 1)
      local ceiling = math.min(retry.MAX_DELAY, retry.BASE_DELAY * 2 ^ (attempt % 6))
      assert.is_true(w >= 0 and w < ceiling)
    end
    assert.same(expected, { math.random(), math.random() })
  end)
end)

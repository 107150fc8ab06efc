-- Issue 16 item 7: `toolzz batch` releases each result once printed (100k
-- gets peaked at 404 MB before). cli.main runs a batch of gets in this
-- process against the stand-in's /static, with a stdout that samples the
-- live Lua heap as result lines are written: it must not grow with them.
-- (bench/cli_batch.lua measures the peak RSS of 100,000 lines.)
local H = require "helpers"
local cli = require "toolzz.cli"

local LINES = 6000

describe("toolzz batch memory", function()
  it("does not keep printed results: the live heap stays flat as lines are written", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "wb"))
    for _ = 1, LINES do f:write('{"op":"gcal.get","id":"', H.UUID, '"}\n') end
    f:close()
    local written, samples, err = 0, {}, {}
    local sys = {
      stdin = io.stdin,
      stdout = {
        write = function(self)
          written = written + 1
          if written % 1000 == 0 then
            collectgarbage()
            collectgarbage()
            samples[#samples + 1] = collectgarbage("count")
          end
          return self
        end,
        flush = function(self) return self end,
      },
      stderr = { write = function(self, ...) for _, s in ipairs { ... } do err[#err + 1] = s end return self end,
                 flush = function(self) return self end },
      getenv = function(name) return name == "TOOLZZ_TOKEN" and H.env.token or nil end,
      isatty = function() return false end,
      now = function() return 0 end,
    }
    local status = cli.main({ "--base-url", H.env.http_url .. "/static", "batch", path }, sys)
    assert.equal(0, status, table.concat(err))
    assert.equal(LINES, written)
    -- from the first sample (1,000 lines written) to the last (6,000): results
    -- kept would add about 2 KiB a line (10,000 KiB); released, the heap shrinks
    local growth = samples[#samples] - samples[1]
    assert.is_true(growth < 500, string.format("the live heap grew by %.0f KiB over %d lines", growth, LINES - 1000))
  end)
end)

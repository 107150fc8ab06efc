-- A patch whose changes JSON cannot carry fails before its GET: step get,
-- nothing sent (this spec failed when it was written).
local H = require "helpers"

local S = H.stand_in

describe("patch changes JSON cannot carry", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  describe("a patch whose changes JSON cannot carry fails before its GET (step get, nothing sent)", function()
    local function refused_before_get(changes, opts)
      local c = opts and H.client(opts) or client
      local id = S.put_record("function", H.gcal_body())
      local before = S.stats().requests
      local res, err = c.gcal.patch(id, changes)
      if c ~= client then c:close() end
      assert.is_nil(res)
      assert.equals("validation", err.kind, tostring(err))
      assert.equals("get", err.step, tostring(err))
      assert.equals(before, S.stats().requests, "a request was sent: " .. tostring(err))
      return err
    end

    it("a string that is not UTF-8 (strict mode)", function()
      refused_before_get { name = "Agenda \255\254" }
    end)

    it("a function and NaN inside outputs (strict mode)", function()
      refused_before_get { outputs = { { property = "p", description = print } } }
      refused_before_get { outputs = { { property = "p", description = 0 / 0 } } }
    end)

    it("a cyclic table, reported as cyclic (not as 64 levels of the same key)", function()
      local cyclic = { property = "p" }
      cyclic.self = cyclic
      local err = refused_before_get { outputs = { cyclic } }
      assert.matches("cycl", err.fields[1].message)
      assert.is_true(#err.fields[1].path < 40, err.fields[1].path)
    end)

    it("a value of an unknown field in non-strict mode (a function)", function()
      refused_before_get({ note = print }, { strict = false })
    end)
  end)
end)

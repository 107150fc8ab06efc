-- A hostile review of Part 2 (issue 10): each spec here failed on main when
-- it was written and names the defect it shows. Hostile answers are played
-- back by the stand-in's faults ({} = the normal answer).
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in
local NEW_GOOGLE_TOKEN = "ya29.a0-rotated-google-token-0000000001"

local function no_secret(v, secrets, what)
  local found = H.contains_secret(v, secrets)
  assert.is_nil(found, (what or "value") .. " carries a secret: " .. tostring(found))
end

describe("review", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  -- 1 ------------------------------------------------------------------------
  it("gcal.patch does not copy a record's type into the error unscrubbed (the token)", function()
    local id = S.put_record("function", H.gcal_body { type = H.env.token })
    local res, err = client.gcal.patch(id, { name = "x" })
    assert.is_nil(res)
    assert.equals("validation", err.kind)
    assert.equals("update", err.step)
    no_secret(err, { H.env.token }, "the error")
    assert.equals(0, S.writes())
  end)

  -- 2 ------------------------------------------------------------------------
  it("a patch that rotates the googleToken never lets the old one it read reach an error, hook or log", function()
    local id = S.put_record("function", H.gcal_body())
    local record = H.gcal_body()
    S.faults { {}, -- the GET answers normally; the PUT fails and echoes what is stored
      { status = 409, body = cjson.encode { message = "token " .. H.GOOGLE_TOKEN .. " is still in use",
                                            stored = record } } }
    local res, err, seen, printed = H.observe({ retries = 0 }, function(c)
      return c.gcal.patch(id, { googleCalendar = { googleToken = NEW_GOOGLE_TOKEN } })
    end)
    assert.is_nil(res)
    assert.equals("http", err.kind)
    assert.equals(409, err.status)
    assert.equals("update", err.step)
    no_secret(err, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "the error")
    no_secret(seen, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "a hook's info")
    no_secret(printed, { H.GOOGLE_TOKEN, NEW_GOOGLE_TOKEN }, "the log")
  end)

  -- 3 ------------------------------------------------------------------------
  it("secrets nested deeper than 32 levels in a JSON error body are scrubbed from err.data", function()
    local deep = { apiKey = H.API_KEY, auth = "Bearer " .. H.env.token }
    for _ = 1, 40 do deep = { inner = deep } end
    S.faults { { status = 400, body = cjson.encode { message = "bad request", detail = deep } } }
    local res, err = client.calcom.create(H.calcom_create_body())
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.is_table(err.data)
    no_secret(err, { H.API_KEY, H.env.token }, "the error")
  end)

  -- 4 ------------------------------------------------------------------------
  it("a secret cut in two by the err.body cap leaves no piece of it in err.body", function()
    local cap = require("toolzz.errors").BODY_CAP
    S.faults { { status = 400, content_type = "text/plain", body = ("x"):rep(cap - 12) .. H.API_KEY } }
    local res, err = client.calcom.create(H.calcom_create_body())
    assert.is_nil(res)
    assert.equals(400, err.status)
    assert.is_nil(err.body:find(H.API_KEY:sub(1, 12), 1, true), "err.body ends with " .. err.body:sub(-12))
  end)

  -- 5 ------------------------------------------------------------------------
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

  -- 6 ------------------------------------------------------------------------
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

  -- 7 ------------------------------------------------------------------------
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

  -- 8 ------------------------------------------------------------------------
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

  -- 9 ------------------------------------------------------------------------
  it("non-strict calcom.update and calcom.patch treat an apiKey sent through as a secret", function()
    local loose = H.client { strict = false }
    S.faults { { status = 400, body = cjson.encode { message = "apiKey " .. H.API_KEY .. " was refused" } } }
    local res, err = loose.calcom.update(H.UUID, H.calcom_body { apiKey = H.API_KEY })
    assert.is_nil(res)
    assert.equals(400, err.status)
    no_secret(err, { H.API_KEY }, "the update error")

    local id = S.put_record("calcom", H.calcom_create_body())
    S.faults { {}, { status = 400, body = cjson.encode { message = "apiKey " .. H.API_KEY .. " was refused" } } }
    res, err = loose.calcom.patch(id, { apiKey = H.API_KEY })
    loose:close()
    assert.is_nil(res)
    assert.equals(400, err.status)
    no_secret(err, { H.API_KEY }, "the patch error")
  end)

  -- 10 -----------------------------------------------------------------------
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

-- Every operation inside nginx: every call made from content_by_lua goes through the
-- cosocket transport (non-blocking), reaches its host, and answers as on
-- plain Lua; a batch of mixed calls too. Needs nginx with the lua module:
-- `make test` installs it, and a missing nginx fails this spec.
local H = require "helpers"
local cjson = require "cjson"
local socket = require "socket"
local R = require "openresty.harness"

local S = H.stand_in

describe("OpenResty operations #no_valgrind", function()
  local gateway, error_log

  lazy_setup(function()
    local out, code = R.ctl("restart")
    assert(code == 0, "cannot start the gateway: " .. out)
    gateway, error_log = R.gateway_env()
    assert(gateway and error_log, "ctl env gave no address")
  end)

  lazy_teardown(function() R.ctl("stop") end)

  before_each(function() S.reset() end)

  local function options(scheme, delay)
    local tls = scheme == "tls"
    local prefix = delay and ("/delay/" .. delay) or ""
    return {
      base_url = (tls and H.env.tls_url or H.env.http_url) .. prefix,
      converflow_url = (tls and H.env.cf_tls_url or H.env.cf_http_url) .. prefix,
      ca_file = tls and H.env.ca_file or nil, retries = 0, timeout = 5,
    }
  end

  local function op(scheme, name, args)
    return R.post(gateway, "/call", { op = name, args = args, options = options(scheme) })
  end

  for _, scheme in ipairs { "http", "tls" } do
    it("every call over " .. scheme .. " through cosockets, on its host", function()
      local cal = S.put_record("calcom", H.calcom_create_body())
      local fn = S.put_record("function", H.gcal_body())
      local cases = {
        { "calcom.create", { H.calcom_create_body() }, "POST", "converflow" },
        { "calcom.get", { cal }, "GET", "converflow" },
        { "calcom.list", { H.UNIT }, "GET", "converflow" },
        { "calcom.update", { cal, H.calcom_body() }, "PUT", "chat" },
        { "calcom.patch", { cal, { prompt = "ngx" } }, "PUT", "chat" },
        { "gcal.create", { H.gcal_body() }, "POST", "chat" },
        { "gcal.get", { fn }, "GET", "chat" },
        { "gcal.list", { H.UNIT }, "GET", "chat" },
        { "gcal.update", { fn, H.gcal_body() }, "PUT", "chat" },
        { "gcal.patch", { fn, { name = "ngx" } }, "PUT", "chat" },
        { "gcal.duplicate", { fn }, "POST", "chat" },
      }
      for _, case in ipairs(cases) do
        local answer = op(scheme, case[1], case[2])
        assert.is_true(answer.ok, case[1] .. ": " .. cjson.encode(answer.error or {}))
        assert.equals("ngx", answer.transport, case[1])
        local last = S.last()
        assert.equals(case[3], last.method, case[1])
        assert.equals(case[4], last.host, case[1])
        if case[3] == "GET" or case[1] == "gcal.duplicate" then
          assert.equals("", last.body, case[1])
          assert.is_nil(last.headers["content-type"], case[1] .. " sends no Content-Type")
        end
      end
      assert.equals("ngx", assert(H.client().calcom.get(cal)).prompt)
    end)
  end

  it("errors carry op and step as on plain Lua", function()
    local answer = op("http", "gcal.patch", { H.USER, {} })
    assert.is_false(answer.ok)
    assert.equals("gcal.patch", answer.error.op)
    assert.equals("get", answer.error.step)
    assert.equals(404, answer.error.status)
  end)

  it("calls do not block the worker: 10 concurrent gets of 0.5 s take well under 5 s", function()
    local fn = S.put_record("function", H.gcal_body())
    local body = cjson.encode { op = "gcal.get", args = { fn }, options = options("http", 500) }
    local host, port = gateway:match("^http://([^:/]+):(%d+)")
    local started = socket.gettime()
    local socks = {}
    for i = 1, 10 do
      local c = assert(socket.connect(host, tonumber(port)))
      c:send("POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " .. #body
        .. "\r\nConnection: close\r\n\r\n" .. body)
      socks[i] = c
    end
    for i = 1, 10 do
      socks[i]:settimeout(10)
      local text = socks[i]:receive("*a")
      socks[i]:close()
      assert.matches('"ok":true', text, 1, true)
      assert.matches('"transport":"ngx"', text, 1, true)
    end
    local elapsed = socket.gettime() - started
    print(("\n    10 concurrent Part 2 gets (0.5 s each) through nginx: %.2f s"):format(elapsed))
    assert.is_true(elapsed < 2.5, "took " .. elapsed .. " s")
  end)

  it("a batch of mixed calls through cosockets, results in order", function()
    local cal = S.put_record("calcom", H.calcom_create_body())
    local fn = S.put_record("function", H.gcal_body())
    local items = {
      { op = "calcom.patch", args = { cal, { title = "b1" } } },
      { op = "gcal.get", args = { fn } },
      { op = "gcal.list", args = { H.UNIT } },
      { op = "gcal.patch", args = { fn, { description = "b2" } } },
      { op = "calcom.get", args = { "bad" } },
    }
    local answer = R.post(gateway, "/batch", { items = items, concurrency = 4, options = options("http") })
    assert.equals("ngx", answer.transport)
    local r = answer.results
    assert.equals("b1", r[1].result.title)
    assert.equals(fn, r[2].id)
    assert.equals(1, #r[3].result)
    assert.equals("b2", r[4].result.description)
    assert.equals("validation", r[5].error.kind)
  end)

  it("patch through cosockets: item edits, another record's GET, a masked token (issue 16)", function()
    local client = H.client()
    local fn = S.put_record("function", H.gcal_body { outputs = {
      { property = "date", type = "string" }, { property = "room", type = "string" } } })
    local answer = op("http", "gcal.patch", { fn, { outputs = { ["2"] = { description = "X" } } } })
    assert.is_true(answer.ok, cjson.encode(answer.error or {}))
    assert.same({ { property = "date", type = "string" }, { property = "room", type = "string", description = "X" } },
      cjson.decode(S.last().body).outputs)

    local other = S.put_record("function", H.gcal_body { name = "B" })
    S.faults { { body = cjson.encode((assert(client.gcal.get(other)))) } }
    local writes = S.writes()
    answer = op("http", "gcal.patch", { fn, { name = "x" } })
    assert.is_false(answer.ok)
    assert.equals("decode", answer.error.kind)
    assert.equals("get", answer.error.step)
    assert.equals(writes, S.writes())

    local masked = assert(client.gcal.get(fn))
    masked.googleCalendarPlugin[1].googleToken = "ya29.****************"
    S.faults { { body = cjson.encode(masked) } }
    answer = op("http", "gcal.patch", { fn, { name = "x" } })
    assert.is_false(answer.ok)
    assert.equals("validation", answer.error.kind)
    assert.equals("googleCalendar.googleToken", answer.error.fields[1].path)
    assert.equals(writes, S.writes())
    client:close()
  end)

  it("no secret reaches the gateway's error log", function()
    local f = io.open(error_log, "rb")
    local log = f and f:read("*a") or ""
    if f then f:close() end
    for _, secret in ipairs { H.env.token, H.GOOGLE_TOKEN, H.API_KEY } do
      assert.is_nil(log:find(secret, 1, true))
    end
  end)
end)

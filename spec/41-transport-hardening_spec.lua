-- The libcurl transport (toolzz.core.transport) under hostile conditions:
-- finalisers that close or raise in the middle of a request, options that
-- are wrong, answers cut or bloated in their headers, and the request
-- interface the call layer relies on (no body, fresh connections, `sent`).
-- Run under tools/test-sanitize too: the finaliser cases are use-after-free
-- checks there.
local H = require "helpers"
local S = H.stand_in
local core = require "toolzz.core"

local PATH = "/api/v1/calcom/integration/" .. H.UUID

local function transport(opts)
  local o = {
    headers = { "Authorization: Bearer " .. H.env.token, "Accept: application/json", "Expect:" },
    content_type = "application/json", timeout = 5, keep_headers = { "x-request-id" },
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return core.transport(o)
end

-- An object whose finaliser calls f (a proxy on 5.1/LuaJIT, a table on 5.4).
local function with_finaliser(f)
  local newproxy = newproxy -- luacheck: ignore 113 (5.1 and LuaJIT only)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, { __gc = f })
end

local function is_pad(body)
  return type(body) == "string" and body:match('^{"pad":"x+"}$') ~= nil
end

describe("transport finalisers", function()
  before_each(function() S.reset() end)

  -- Run call() with a collector that finishes a whole cycle at each step
  -- (finalisers included), so that the finaliser of an object that is
  -- garbage when call() starts runs at the first allocation call() makes.
  local function pack(...) return { ... } end

  -- Run call() with a collector that finishes a whole cycle at each step,
  -- and a finaliser that runs on_inside() when it runs while is_inside()
  -- is true (inside a transport call); run anywhere else, it arms another
  -- one, so that the first allocation made inside the call runs it.
  local function with_eager_gc(is_inside, on_inside, call)
    local done = false
    local function arm()
      local _ = with_finaliser(function()
        if done then return end
        if is_inside() then
          done = true
          on_inside()
        else
          arm()
        end
      end)
    end
    arm()
    local pause, stepmul
    if _VERSION == "Lua 5.4" then
      collectgarbage("incremental", 100, 1000, 40) -- (a step does 2^40 units of work)
    else
      pause = collectgarbage("setpause", 100)
      stepmul = collectgarbage("setstepmul", 1000000)
    end
    collectgarbage("restart") -- the next allocation steps
    local results = pack(pcall(call))
    done = true
    if _VERSION == "Lua 5.4" then
      collectgarbage("incremental", 200, 100, 13) -- the defaults
    else
      collectgarbage("setpause", pause)
      collectgarbage("setstepmul", stepmul)
    end
    return (table.unpack or unpack)(results, 1, 8)
  end

  it("a finaliser that closes the transport during request() leaves the call whole", function()
    -- A round whose finaliser ran outside request() (the collector finished
    -- its cycle at an allocation made just before, as a large heap left by
    -- earlier specs can make it on 5.1 and LuaJIT) proves nothing and is run
    -- again. Six rounds must see the finaliser fire inside request().
    local round, tries = 0, 0
    while round < 6 do
      tries = tries + 1
      assert.is_true(tries <= 60, "the finaliser fired inside request() in only " .. round .. " of 60 tries")
      collectgarbage("collect") -- finalisers other specs left pending run now, not in the round
      local t = transport()
      S.faults { { big = 200000 } }
      local inside, fired = false, false
      local url = H.env.http_url .. PATH
      local ok, status, body, headers = with_eager_gc(function() return inside end, function()
        fired = true
        t:close()
      end, function()
        inside = true
        local a, b, c = t:request("PUT", url, "{}")
        inside = false
        return a, b, c
      end)
      inside = false
      assert.is_true(ok, tostring(status))
      if fired then round = round + 1 end
      if status then -- the real answer, intact
        assert.equals(200, status)
        assert.is_true(is_pad(body), "body damaged")
        assert.is_table(headers)
      else
        assert.equals("config", body)
      end
      if fired then -- the close took effect when the call returned
        local after, kind = t:request("PUT", H.env.http_url .. PATH, "{}")
        assert.is_nil(after)
        assert.equals("config", kind)
        assert.equals(0, t:pending())
      end
      t:close()
    end
  end)

  it("a finaliser that closes the transport during wait() leaves the call whole", function()
    -- The warm-up waits below may already collect the answers, and then the
    -- measured wait() has nothing to allocate for: such a round proves nothing
    -- and is run again. Six rounds must see the finaliser fire inside wait().
    local round, tries = 0, 0
    while round < 6 do
      tries = tries + 1
      assert.is_true(tries <= 60, "the finaliser fired inside wait() in only " .. round .. " of 60 tries")
      local t = transport()
      S.faults { { big = 200000 }, { big = 200000 } }
      assert(t:submit("PUT", H.env.http_url .. PATH, "{}", 1))
      assert(t:submit("PUT", H.env.http_url .. PATH, "{}", 2))
      while t:pending() > 0 and H.stand_in.stats().requests < 2 do t:wait(0.01) end
      local inside, fired = false, false
      local ok, list = with_eager_gc(function() return inside end, function()
        fired = true
        t:close()
      end, function()
        inside = true
        local l = t:wait(1)
        inside = false
        return l
      end)
      inside = false
      assert.is_true(ok, tostring(list))
      for _, f in ipairs(list) do
        assert.equals(200, f[2])
        assert.is_true(is_pad(f[3]), "body damaged")
      end
      if fired then -- closed inside: what the call returned is whole, nothing is left
        round = round + 1
        assert.same({}, t:wait(0))
        assert.equals(0, t:pending())
      end
      t:close()
    end
  end)

  it("a finaliser that raises inside request() never leaves the transport busy", function()
    local t = transport { max_slots = 2 }
    local raised = 0
    for _ = 1, 6 do
      S.faults { { big = 200000 } }
      local inside = false
      local url = H.env.http_url .. PATH
      local ok, status, kind = with_eager_gc(function() return inside end, function() error("finaliser fails") end,
        function()
        inside = true
        local a, b = t:request("PUT", url, "{}")
        inside = false
        return a, b
      end)
      inside = false
      if not ok then raised = raised + 1 end
      assert.is_true(not ok or status == 200, "request failed: " .. tostring(kind))
    end
    assert.equals(0, t:pending())
    for _ = 1, 4 do
      local status, kind = t:request("PUT", H.env.http_url .. PATH, "{}")
      assert.equals(200, status, tostring(kind))
    end
    t:close()
    if _VERSION ~= "Lua 5.4" then -- (5.4 turns finaliser errors into warnings)
      assert.is_true(raised > 0, "no finaliser error reached request(): the test proved nothing")
    end
  end)
end)

describe("transport options", function()
  local bad = {
    { "a header that is not a string", { headers = { {} } } },
    { "a header that is a number", { headers = { 42 } } },
    { "headers that are not a list", { headers = "Authorization: x" } },
    { "a header with CR LF", { headers = { "X-A: 1\r\nX-B: 2" } } },
    { "a header without a colon", { headers = { "garbage" } } },
    { "a timeout that is a string", { timeout = "5" } },
    { "a negative timeout", { timeout = -1 } },
    { "a zero timeout", { timeout = 0 } },
    { "a NaN timeout", { timeout = 0 / 0 } },
    { "an infinite timeout", { timeout = math.huge } },
    { "a timeout past a long of milliseconds", { timeout = 3e9 } },
    { "a connect_timeout of 1e300", { connect_timeout = 1e300 } },
    { "a fractional max_response_bytes", { max_response_bytes = 10.5 } },
    { "max_response_bytes of 0", { max_response_bytes = 0 } },
    { "max_response_bytes of 2^60", { max_response_bytes = 2 ^ 60 } },
    { "max_slots of 0", { max_slots = 0 } },
    { "max_slots of 2^40", { max_slots = 2 ^ 40 } },
    { "max_header_bytes of 10 MB", { max_header_bytes = 10e6 } },
    { "http2 = 1", { http2 = 1 } },
    { "a ca_file that is a table", { ca_file = {} } },
    { "a proxy with a NUL", { proxy = "http://a\0b" } },
    { "nine keep_headers", { keep_headers = { "a", "b", "c", "d", "e", "f", "g", "h", "i" } } },
    { "a keep_headers entry that is not a string", { keep_headers = { true } } },
    { "a content_type with LF", { content_type = "application/json\nX: y" } },
    { "an unknown option", { timout = 5 } },
  }
  for _, case in ipairs(bad) do
    it("raise a clear error, never crash: " .. case[1], function()
      local ok, err = pcall(core.transport, case[2])
      assert.is_false(ok)
      assert.matches("toolzz.core.transport: ", tostring(err), 1, true)
    end)
  end

  it("core.sleep of NaN or of a negative number returns at once (no undefined cast)", function()
    local started = H.now()
    core.sleep(0 / 0)
    core.sleep(-5)
    core.sleep(-math.huge)
    assert.is_true(H.now() - started < 0.1)
  end)

  it("accept the options toolzz passes", function()
    local t = core.transport {
      headers = { "Authorization: Bearer x", "Accept: application/json", "User-Agent: t", "Expect:" },
      content_type = "application/json", timeout = 30, connect_timeout = 10, max_response_bytes = 2 ^ 33,
      max_header_bytes = 65536, max_slots = 256, http2 = true, keep_headers = { "x-request-id" },
      ca_file = H.env.ca_file, ca_path = nil, proxy = nil,
    }
    t:close()
  end)

  it("a 3 GiB cap reads as 3 GiB in the limit message, not a negative number", function()
    S.reset()
    local cap = 3 * 2 ^ 30
    S.faults { { raw = "HTTP/1.1 200 OK\r\nContent-Length: 4000000000\r\n\r\n{}" } }
    local t = transport { max_response_bytes = cap }
    local status, kind, message = t:request("PUT", H.env.http_url .. PATH, "{}")
    t:close()
    assert.is_nil(status)
    assert.equals("limit", kind)
    assert.matches("(3221225472)", message, 1, true)
  end)
end)

describe("transport requests", function()
  before_each(function() S.reset() end)

  it("a GET without a body sends no body, no Content-Type, no Content-Length", function()
    local t = transport()
    local status = t:request("GET", H.env.http_url .. PATH)
    assert.is_number(status)
    local last = S.last()
    assert.equals("GET", last.method)
    assert.equals("", last.body)
    assert.is_nil(last.headers["content-type"])
    assert.is_nil(last.headers["content-length"])
    assert.is_nil(last.headers["transfer-encoding"])
    assert.equals("Bearer " .. H.env.token, last.headers.authorization)
    t:close()
  end)

  it("a POST without a body sends Content-Length: 0 and no Content-Type", function()
    local t = transport()
    for _, submit in ipairs { false, true } do
      if submit then
        assert(t:submit("POST", H.env.http_url .. PATH, nil, 7))
        local list = {}
        while #list == 0 do list = t:wait(1) end
        assert.equals(7, list[1][1])
      else
        assert.is_number((t:request("POST", H.env.http_url .. PATH, nil)))
      end
      local last = S.last()
      assert.equals("POST", last.method)
      assert.equals("0", last.headers["content-length"])
      assert.is_nil(last.headers["content-type"])
      assert.equals("", last.body)
    end
    t:close()
  end)

  it("a body goes with Content-Type, and the next request without one has none", function()
    local t = transport()
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    assert.equals("application/json", S.last().headers["content-type"])
    assert.equals("{}", S.last().body)
    t:request("GET", H.env.http_url .. PATH)
    assert.is_nil(S.last().headers["content-type"])
    assert.equals("GET", S.last().method)
    t:request("POST", H.env.http_url .. PATH, '{"a":1}')
    assert.equals("POST", S.last().method)
    assert.equals('{"a":1}', S.last().body)
    assert.equals("application/json", S.last().headers["content-type"])
    assert.same({ requests = 3, connections = 1 }, S.stats())
    t:close()
  end)

  it("a Content-Type among the headers is sent only with a body (the older interface)", function()
    local t = core.transport { headers = { "Authorization: Bearer " .. H.env.token, "Content-Type: application/json" } }
    t:request("GET", H.env.http_url .. PATH)
    assert.is_nil(S.last().headers["content-type"])
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    assert.equals("application/json", S.last().headers["content-type"])
    t:close()
  end)

  for _, scheme in ipairs { "http", "https" } do
    it("fresh = true opens a new connection; without it the connection is reused (" .. scheme .. ")", function()
      local base = scheme == "http" and H.env.http_url or H.env.tls_url
      local t = transport { ca_file = H.env.ca_file }
      assert.equals(200, (t:request("PUT", base .. PATH, "{}")))
      assert.equals(200, (t:request("PUT", base .. PATH, "{}")))
      assert.equals(1, S.stats().connections)
      assert.is_number((t:request("POST", base .. PATH, "{}", true))) -- (405 from the stand-in)
      assert.equals(2, S.stats().connections)
      assert(t:submit("POST", base .. PATH, "{}", 1, true))
      local list = {}
      while #list == 0 do list = t:wait(1) end
      assert.equals(3, S.stats().connections)
      t:close()
    end)
  end

  it("fresh transfers over HTTP/2 run side by side, each on its own connection #slow_valgrind", function()
    local t = transport { ca_file = H.env.ca_file }
    assert.equals(200, (t:request("PUT", H.env.tls_url .. PATH, "{}"))) -- HTTP/2 is known to work there
    local started = H.now()
    for tag = 1, 8 do assert(t:submit("POST", H.env.tls_url .. "/delay/300" .. PATH, "{}", tag, true)) end
    local got = 0
    while t:pending() > 0 do got = got + #t:wait(1) end
    local elapsed = H.now() - started
    t:close()
    assert.equals(8, got)
    assert.equals(9, S.stats().connections)
    assert.is_true(elapsed < 1.2, ("8 fresh transfers of 0.3 s took %.2f s: serialised"):format(elapsed))
  end)

  it("fresh = true is never sent twice when the server drops it (without it libcurl resends)", function()
    local t = transport()
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    S.reset()
    S.faults { { drop = true } }
    local status, kind, _, _, _, sent = t:request("POST", H.env.http_url .. PATH, "{}", true)
    assert.is_nil(status)
    assert.equals("network", kind)
    assert.is_true(sent)
    assert.equals(1, S.stats().requests)
    t:close()
  end)
end)

describe("transport failures say whether the request was sent", function()
  before_each(function() S.reset() end)

  local function outcome(t, url, method, body, fresh)
    local status, kind, message, elapsed, headers, sent = t:request(method or "PUT", url, body or "{}", fresh)
    assert.is_nil(status, "the request succeeded")
    return kind, sent, message, elapsed, headers
  end

  it("refused connection: sent = false", function()
    local t = transport()
    local kind, sent = outcome(t, "http://127.0.0.1:" .. H.closed_port() .. PATH)
    assert.equals("network", kind)
    assert.is_false(sent)
    t:close()
  end)

  it("TLS handshake failure: sent = false", function()
    local t = transport { ca_file = H.env.ca_file }
    local kind, sent = outcome(t, H.env.tls_bad_url .. PATH)
    assert.equals("tls", kind)
    assert.is_false(sent)
    t:close()
  end)

  it("a connect that times out: sent = false", function()
    local kind, sent
    local full = H.with_unanswered_port(function(port)
      local t = transport { connect_timeout = 0.5 }
      kind, sent = outcome(t, "http://127.0.0.1:" .. port .. PATH)
      t:close()
    end)
    if not full then pending(H.QUEUE_NEVER_FULL) return end
    assert.equals("timeout", kind)
    assert.is_false(sent)
  end)

  it("a name that does not resolve: sent = false", function()
    local t = transport()
    local kind, sent = outcome(t, "http://nonexistent.invalid" .. PATH)
    assert.equals("network", kind)
    assert.is_false(sent)
    t:close()
  end)

  for _, scheme in ipairs { "http", "https" } do
    it("the server read the request and dropped the connection: sent = true (" .. scheme .. ")", function()
      local base = scheme == "http" and H.env.http_url or H.env.tls_url
      local t = transport { ca_file = H.env.ca_file }
      for _, fresh in ipairs { false, true } do
        S.faults { { drop = true } }
        local kind, sent = outcome(t, base .. PATH, "POST", "{}", fresh)
        assert.equals("network", kind)
        assert.is_true(sent)
      end
      t:close()
    end)

    it("a timeout after sending: sent = true (" .. scheme .. ")", function()
      local base = scheme == "http" and H.env.http_url or H.env.tls_url
      local t = transport { ca_file = H.env.ca_file, timeout = 0.5 }
      S.faults { { stall = 2 } }
      local kind, sent = outcome(t, base .. PATH)
      assert.equals("timeout", kind)
      assert.is_true(sent)
      t:close()
    end)
  end

  it("submit/wait failures carry sent as the 7th entry", function()
    local t = transport()
    assert(t:submit("POST", "http://127.0.0.1:" .. H.closed_port() .. PATH, "{}", 1))
    S.faults { { drop = true } }
    assert(t:submit("POST", H.env.http_url .. PATH, "{}", 2, true))
    local got = {}
    for _ = 1, 20 do
      for _, f in ipairs(t:wait(1)) do got[f[1]] = f end
      if got[1] and got[2] then break end
    end
    assert.equals("network", got[1][3])
    assert.is_false(got[1][7])
    assert.equals("network", got[2][3])
    assert.is_true(got[2][7])
    t:close()
  end)
end)

describe("transport answers cut or bloated in their headers", function()
  before_each(function() S.reset() end)

  it("a connection closed inside the header block is network (sent), not an empty 200", function()
    local t = transport()
    for _, raw in ipairs { "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" } do
      S.faults { { raw = raw } }
      local status, kind, message, _, _, sent = t:request("PUT", H.env.http_url .. PATH, "{}")
      assert.is_nil(status, "a cut answer was taken as " .. tostring(status))
      assert.equals("network", kind, message)
      assert.is_true(sent)
    end
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    t:close()
  end)

  it("through a client: network, and retried", function()
    local client = H.client { retries = 1 }
    S.faults { { raw = "HTTP/1.1 200 OK\r\n" } }
    local res, err = client.calcom.update(H.UUID, H.calcom_body())
    assert.is_table(res, tostring(err))
    assert.equals(2, S.stats().requests)
    S.faults { { raw = "HTTP/1.1 200 OK\r\n" }, { raw = "HTTP/1.1 200 OK\r\n" } }
    res, err = client.calcom.update(H.UUID, H.calcom_body())
    assert.is_nil(res)
    assert.equals("network", err.kind)
    assert.equals(2, err.attempts)
    client:close()
  end)

  it("a 1 MB header line is limit", function()
    local t = transport()
    S.faults { { header_bytes = 1000000 } }
    local status, kind, message = t:request("PUT", H.env.http_url .. PATH, "{}")
    assert.is_nil(status)
    assert.equals("limit", kind, message)
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    t:close()
  end)

  for _, count in ipairs { 5000, 20000 } do
    it("a storm of " .. count .. " interim 1xx answers is limit", function()
      local t = transport()
      S.faults { { raw = string.rep("HTTP/1.1 100 Continue\r\n\r\n", count)
                   .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" } }
      local status, kind, message = t:request("PUT", H.env.http_url .. PATH, "{}")
      assert.is_nil(status)
      assert.equals("limit", kind, message)
      t:close()
    end)
  end

  it("a few interim answers before the real one are fine", function()
    local t = transport()
    S.faults { { raw = string.rep("HTTP/1.1 100 Continue\r\n\r\n", 3)
                 .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: r1\r\n\r\n{}" } }
    local status, body, headers = t:request("PUT", H.env.http_url .. PATH, "{}")
    assert.equals(200, status)
    assert.equals("{}", body)
    assert.equals("r1", headers["x-request-id"])
    t:close()
  end)
end)

describe("transport cancel", function()
  before_each(function() S.reset() end)

  it("drops submissions by tag range: wait never returns them", function()
    local t = transport()
    local url = H.env.http_url .. "/delay/200" .. PATH
    for tag = 1, 6 do assert(t:submit("PUT", url, "{}", tag)) end
    assert.equals(6, t:pending())
    assert.equals(3, t:cancel(4, 6))
    assert.equals(3, t:pending())
    local got = {}
    while t:pending() > 0 do
      for _, f in ipairs(t:wait(1)) do got[#got + 1] = f[1] end
    end
    table.sort(got)
    assert.same({ 1, 2, 3 }, got)
    assert(t:submit("PUT", url, "{}", 9))
    assert.equals(1, t:cancel())
    assert.equals(0, t:pending())
    assert.equals(200, (t:request("PUT", H.env.http_url .. PATH, "{}")))
    t:close()
  end)
end)

describe("HTTP/2 connections of a batch", function()
  before_each(function() S.reset() end)

  for _, case in ipairs { { 120, 1 }, { 200, 2 }, { 256, 2 } } do
    local concurrency, most = case[1], case[2]
    it(("at concurrency %d use at most %d connection(s) (server allows 128 streams)"):format(concurrency, most),
      function()
        if not core.curl_http2 then pending("libcurl without HTTP/2") return end
        local t = transport { ca_file = H.env.ca_file, timeout = 20 }
        local url = H.env.tls_url .. "/delay/300" .. PATH
        for tag = 1, concurrency do assert(t:submit("PUT", url, "{}", tag)) end
        local ok, versions = 0, {}
        while t:pending() > 0 do
          for _, f in ipairs(t:wait(1)) do
            if f[2] == 200 then ok = ok + 1 end
            versions[tostring(f[6])] = true
          end
        end
        t:close()
        local stats = S.stats()
        print(("\n    %d transfers at once over TLS: %d connection(s)"):format(concurrency, stats.connections))
        assert.equals(concurrency, ok)
        assert.is_true(versions["2"])
        assert.is_true(stats.connections <= most, stats.connections .. " connections")
      end)
  end
end)

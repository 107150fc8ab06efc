-- Contract "OpenResty": in a real nginx (worker_processes 1) that loads
-- toolzz, calls from phases with cosockets use the non-blocking transport
-- (toolzz.ngx), keep their connections in nginx's pool, and behave exactly
-- as the libcurl transport does on plain Lua; phases without cosockets use
-- the libcurl core.
--
-- The gateway nginx (spec/openresty/: ctl, nginx.conf.in, gateway.lua) calls
-- the stand-in API; this spec only talks HTTP to both, so it runs on any Lua.
-- Skipped (pending) when nginx with the lua module is not installed.
local H = require "helpers"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local R = require "openresty.harness"

local S = H.stand_in
local CTL = H.root .. "/spec/openresty/ctl"
local NIL_UUID = "00000000-0000-0000-0000-000000000000"
local SECRETS = { H.env.token, H.GOOGLE_TOKEN }

local sh, shell_quote, gateway_env, integers = R.sh, R.shell_quote, R.gateway_env, R.integers

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function find_secret(text)
  for _, secret in ipairs(SECRETS) do
    if text:find(secret, 1, true) then return secret end
  end
  return nil
end

describe("OpenResty #no_valgrind", function()
  local why, status = sh(shell_quote(CTL) .. " check")
  if status ~= 0 then
    it("runs in a real nginx", function()
      pending("skipped: " .. (why:gsub("%s+$", "")))
    end)
    return
  end

  local gateway, error_log

  lazy_setup(function()
    local out, code = sh(shell_quote(CTL) .. " restart")
    assert(code == 0, "cannot start the gateway: " .. out)
    gateway, error_log = gateway_env()
    assert(gateway and error_log, "ctl env gave no address")
  end)

  lazy_teardown(function()
    sh(shell_quote(CTL) .. " stop")
  end)

  before_each(function() S.reset() end)

  -- GET a gateway path: decoded JSON answer, raw text.
  local function get(path)
    local chunks = {}
    local ok, code = http.request { url = gateway .. path, sink = ltn12.sink.table(chunks) }
    assert(ok, "gateway GET " .. path .. " failed: " .. tostring(code))
    local text = table.concat(chunks)
    assert(code == 200, "gateway GET " .. path .. " answered " .. tostring(code) .. ": " .. text)
    return integers(cjson.decode(text)), text
  end

  -- POST /call: one update made by the gateway. request: { endpoint, id,
  -- fields, options, drain, raise_in_hooks }. Returns the decoded answer
  -- { ok, result, error, transport, phase, hooks, elapsed } and the raw text.
  local function call(request, path)
    return R.post(gateway, path or "/call", request)
  end

  local function calcom_request(options, extra)
    local r = { endpoint = "calcom", id = H.UUID, fields = H.calcom_body(), options = options or {} }
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end

  local function attempts_of(hooks)
    local n = 0
    for _, h in ipairs(hooks) do
      if h.hook == "on_request" then n = n + 1 end
    end
    return n
  end

  -- Start n copies of the same call at once (background curl processes):
  -- wall time and the decoded answers.
  local function concurrent_calls(n, request)
    local dir = sh("mktemp -d"):gsub("%s+$", "")
    local f = assert(io.open(dir .. "/request.json", "wb"))
    f:write(cjson.encode(request))
    f:close()
    local script = ("for i in $(seq 1 %d); do curl -s --noproxy '*' --max-time 60 -o %s/out.$i "
      .. "-X POST --data-binary @%s/request.json %s/call & done; wait"):format(n, dir, dir, gateway)
    local started = socket.gettime()
    sh(script)
    local wall = socket.gettime() - started
    local answers = {}
    for i = 1, n do
      local text = read_file(dir .. "/out." .. i)
      answers[i] = text and integers(cjson.decode(text)) or { ok = false, error = { text = "no answer" } }
    end
    sh("rm -rf " .. shell_quote(dir))
    return wall, answers
  end

  describe("from content_by_lua", function()
    for _, scheme in ipairs { "http", "https" } do
      it("updates both integrations over " .. scheme .. " (cosocket transport, HTTP/1.1)", function()
        local base_url = scheme == "http" and H.env.http_url or H.env.tls_url
        local doc = call(calcom_request { base_url = base_url })
        assert.is_true(doc.ok, doc.error and doc.error.text)
        assert.equals("ngx", doc.transport)
        assert.equals("content", doc.phase)
        assert.equals(H.UUID, doc.result.id)
        assert.equals("ana-silva", doc.result.calcomUsername)
        local last = S.last()
        assert.equals("PUT", last.method)
        assert.equals("/api/v1/calcom/integration/" .. H.UUID, last.uri)
        assert.equals("1.1", last.http_version)
        assert.equals(scheme, last.scheme)
        assert.equals("Bearer " .. H.env.token, last.headers.authorization)
        assert.equals("application/json", last.headers["content-type"])
        assert.equals("application/json", last.headers.accept)
        assert.equals(base_url:match("^https?://([^/]+)"), last.headers.host)
        assert.equals(tostring(#last.body), last.headers["content-length"])
        assert.matches("^toolzz%-lua/", last.headers["user-agent"])

        -- the same bytes as the libcurl transport sends
        local client = H.client { base_url = base_url, ca_file = H.env.ca_file }
        assert(client.calcom.update(H.UUID, H.calcom_body()))
        client:close()
        assert.equals(last.body, S.last().body)

        doc = call { endpoint = "gcal", id = H.UUID, fields = H.gcal_body(), options = { base_url = base_url } }
        assert.is_true(doc.ok, doc.error and doc.error.text)
        assert.equals("ngx", doc.transport)
        assert.equals(H.UUID, doc.result.id)
        assert.equals("google-calendar", doc.result.type)
        assert.equals(H.UUID, doc.result.googleCalendarPlugin[1].pluginId)
        assert.equals("/api/v1/functions/" .. H.UUID, S.last().uri)
        assert.matches('"outputs":%[%]', S.last().body)
      end)
    end

    it("reads a chunked answer", function()
      S.faults { { chunked = true } }
      local doc = call(calcom_request { base_url = H.env.http_url })
      assert.is_true(doc.ok, doc.error and doc.error.text)
      assert.equals(H.UUID, doc.result.id)
      assert.equals(0, S.pending_faults())
    end)

    it("runs the hooks around each attempt, with the contract's info and nothing else", function()
      S.faults { { status = 503, request_id = "req-503", headers = { ["Retry-After"] = "0" } } }
      local doc = call(calcom_request { base_url = H.env.http_url, retries = 1 })
      assert.is_true(doc.ok)
      local order = {}
      for i, h in ipairs(doc.hooks) do
        order[i] = h.hook
        assert.equals("PUT", h.method)
        assert.equals(H.env.http_url .. "/api/v1/calcom/integration/" .. H.UUID, h.url)
        for k in pairs(h) do
          assert.truthy(({ hook = 1, method = 1, url = 1, attempt = 1, status = 1, elapsed = 1,
                           request_id = 1, error = 1 })[k], "unexpected info field " .. k)
        end
      end
      assert.same({ "on_request", "on_response", "on_request", "on_response" }, order)
      assert.equals(503, doc.hooks[2].status)
      assert.equals("req-503", doc.hooks[2].request_id)
      assert.matches("^toolzz: http 503", doc.hooks[2].error)
      assert.equals(2, doc.hooks[3].attempt)
      assert.equals(200, doc.hooks[4].status)
      assert.is_number(doc.hooks[4].elapsed)
    end)
  end)

  describe("does not block the worker", function()
    it("20 concurrent updates against a 1 s delay all finish in under 3 s", function()
      local wall, answers = concurrent_calls(20,
        calcom_request { base_url = H.env.http_url .. "/delay/1000", timeout = 10 })
      print(("\n    20 concurrent updates (1 s delay each) through nginx: %.2f s"):format(wall))
      for i, doc in ipairs(answers) do
        assert.is_true(doc.ok, "call " .. i .. ": " .. tostring(doc.error and doc.error.text))
        assert.equals("ngx", doc.transport)
        assert.truthy(doc.elapsed >= 0.95, "call " .. i .. " took " .. tostring(doc.elapsed) .. " s: no delay?")
      end
      assert.equals(20, S.stats().requests)
      assert.truthy(wall < 3, ("20 calls took %.2f s in total"):format(wall))
    end)

    it("(control: forcing the blocking libcurl transport serialises the same calls)", function()
      local wall, answers = concurrent_calls(4,
        calcom_request { base_url = H.env.http_url .. "/delay/500", transport = "curl" })
      print(("\n    4 concurrent updates (0.5 s delay each) with transport = \"curl\": %.2f s"):format(wall))
      for i, doc in ipairs(answers) do
        assert.is_true(doc.ok, "call " .. i .. ": " .. tostring(doc.error and doc.error.text))
        assert.equals("curl", doc.transport)
      end
      assert.truthy(wall >= 1.9, ("blocking calls overlapped (%.2f s): the timing test could not fail"):format(wall))
    end)

    it("client.batch runs its items concurrently on one shared transport", function()
      local items = {}
      for i = 1, 10 do
        items[i] = i % 2 == 0 and { endpoint = "gcal", id = H.UUID, fields = H.gcal_body() }
          or { endpoint = "calcom", id = H.UUID, fields = H.calcom_body() }
      end
      items[4].id = NIL_UUID
      local doc = call({ options = { base_url = H.env.http_url .. "/delay/500" }, items = items,
                         concurrency = 10 }, "/batch")
      assert.equals("ngx", doc.transport)
      for i, r in ipairs(doc.results) do
        if i == 4 then
          assert.equals(404, r.error.status)
          assert.equals("Function not found", r.error.message)
        else
          assert.is_true(r.ok, "item " .. i .. ": " .. tostring(r.error and r.error.text))
          assert.equals(H.UUID, r.id)
        end
      end
      assert.equals(10, #doc.results)
      assert.equals(10, S.stats().requests)
      assert.truthy(doc.elapsed < 1.5, "10 items with a 0.5 s delay took " .. doc.elapsed .. " s")
    end)
  end)

  describe("keeps connections alive", function()
    -- a pool of its own: "localhost" is a different pool key than 127.0.0.1
    local port = H.env.http_url:match(":(%d+)$")

    for _, scheme in ipairs { "http", "https" } do
      it("10 sequential gateway requests reuse one upstream connection (" .. scheme .. ")", function()
        local base_url = scheme == "http" and ("http://localhost:" .. port) or H.env.tls_url
        for i = 1, 10 do
          local doc = call(calcom_request({ base_url = base_url }, { drain = i == 1 }))
          assert.is_true(doc.ok, doc.error and doc.error.text)
        end
        local stats = S.stats()
        print(("\n    10 sequential calls over %s: %d requests on %d connection(s)")
          :format(scheme, stats.requests, stats.connections))
        assert.equals(10, stats.requests)
        assert.equals(1, stats.connections)
      end)
    end

    it("a pooled connection the server closed is replaced transparently (as libcurl does)", function()
      local request = calcom_request({ base_url = H.env.http_url }, { drain = true })
      assert.is_true(call(request).ok) -- one idle connection in the pool
      S.reset()
      S.faults { { drop = true } }
      request.drain = false
      local doc = call(request)
      assert.is_true(doc.ok, doc.error and doc.error.text)
      assert.equals(1, attempts_of(doc.hooks))
      assert.same({ requests = 2, connections = 2 }, S.stats())
    end)
  end)

  describe("picks the transport by phase", function()
    local cases = {
      { "init", nil, false },                -- init_by_lua: cosockets unusable (no call made)
      { "init_worker", "curl", false },      -- init_worker_by_lua: libcurl
      { "timer", "ngx", true },              -- ngx.timer: cosockets
      { "set", "curl", false },              -- set_by_lua: libcurl
      { "rewrite", "ngx", true },
      { "access", "ngx", true },
      { "content", "ngx", true },
      { "log", "curl", false },              -- log_by_lua: libcurl
    }
    for _, case in ipairs(cases) do
      local phase, transport, usable = case[1], case[2], case[3]
      it(phase .. ": " .. (transport or "no cosockets"), function()
        local doc
        if phase == "init" or phase == "init_worker" or phase == "timer" then
          doc = get("/phase/stored?name=" .. phase)
        elseif phase == "log" then
          local ok = http.request(gateway .. "/phase/log-run")
          assert.equals("ok", ok)
          doc = get("/phase/stored?name=log")
        else
          doc = get("/phase/" .. phase)
        end
        assert.equals(phase, doc.phase)
        assert.equals(usable, doc.usable)
        if transport then
          assert.is_true(doc.ok, doc.error and doc.error.text)
          assert.equals(transport, doc.transport)
        end
      end)
    end

    it("transport = \"curl\" is honoured where cosockets work", function()
      local doc = get("/phase/content?transport=curl")
      assert.is_true(doc.ok, doc.error and doc.error.text)
      assert.equals("curl", doc.transport)
    end)

    it("transport = \"ngx\" where cosockets do not work is a config error, not a crash", function()
      local doc = get("/phase/set?transport=ngx")
      assert.is_false(doc.ok)
      assert.equals("config", doc.error.kind)
      assert.matches("set phase", doc.error.message)
      assert.equals(0, S.stats().requests)
    end)
  end)

  -- The same cases, made by the libcurl transport on plain Lua and by the
  -- cosocket transport in nginx, must end the same way.
  describe("errors, retries and limits as on plain Lua", function()
    local TLS_TARGETS = { tls = true, tls_bad = true, tls_refused = true }

    local function base_url_for(target)
      if target == "tls" then return H.env.tls_url end
      if target == "tls_bad" then return H.env.tls_bad_url end
      if target == "refused" then return "http://127.0.0.1:" .. H.closed_port() end
      if target == "tls_refused" then return "https://localhost:" .. H.closed_port() end
      return H.env.http_url
    end

    local function fields_for(case)
      return case.endpoint == "gcal" and H.gcal_body() or H.calcom_body()
    end

    local function options_for(case, base_url)
      local o = { retries = 0, timeout = 5, base_url = base_url }
      for k, v in pairs(case.options or {}) do o[k] = v end
      return o
    end

    local function plain_lua(case, base_url)
      local attempts = 0
      local o = options_for(case, base_url)
      o.on_request = function() attempts = attempts + 1 end
      if TLS_TARGETS[case.target] then o.ca_file = H.env.ca_file end
      local client = H.client(o)
      local endpoint = client[case.endpoint or "calcom"]
      if case.warm then assert(endpoint.update(H.UUID, fields_for(case))) end
      S.reset()
      if case.faults then S.faults(case.faults) end
      attempts = 0
      local started = H.now()
      local res, err = endpoint.update(case.id or H.UUID, fields_for(case))
      local elapsed = H.now() - started
      client:close()
      return { ok = res ~= nil, result = res, error = err, elapsed = elapsed, attempts = attempts, stats = S.stats() }
    end

    local function in_nginx(case, base_url)
      local request = { endpoint = case.endpoint or "calcom", id = case.id or H.UUID,
                        fields = fields_for(case), options = options_for(case, base_url), drain = true }
      if case.warm then
        assert.is_true(call(request).ok)
        request.drain = false
      end
      S.reset()
      if case.faults then S.faults(case.faults) end
      local doc, text = call(request)
      return { ok = doc.ok, result = doc.result, error = doc.error, elapsed = doc.elapsed,
               attempts = attempts_of(doc.hooks), stats = S.stats(), transport = doc.transport, text = text }
    end

    local function check(case, outcome, where)
      local label = where .. ": "
      if case.ok then
        assert.is_true(outcome.ok, label .. tostring(outcome.error and (outcome.error.text or tostring(outcome.error))))
      else
        assert.is_false(outcome.ok, label .. "the call succeeded")
        local err = outcome.error
        assert.equals(case.kind, err.kind, label .. "kind (" .. tostring(err.text or tostring(err)) .. ")")
        assert.equals(case.status, err.status, label .. "status")
        if case.message then assert.equals(case.message, err.message, label .. "message") end
        if case.request_id then assert.equals(case.request_id, err.request_id, label .. "request_id") end
        if case.retry_after then assert.equals(case.retry_after, err.retry_after, label .. "retry_after") end
        assert.equals(case.attempts or 1, err.attempts, label .. "err.attempts " .. tostring(err.text or tostring(err)))
      end
      assert.equals(case.attempts or 1, outcome.attempts, label .. "attempts (hooks)")
      if case.requests then assert.equals(case.requests, outcome.stats.requests, label .. "requests") end
      if case.min then assert.truthy(outcome.elapsed >= case.min, label .. "took " .. outcome.elapsed .. " s") end
      if case.max then assert.truthy(outcome.elapsed < case.max, label .. "took " .. outcome.elapsed .. " s") end
    end

    local truncated = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"
    -- An HTTP/1.0 answer with no length: the body ends where the connection does.
    local function close_delimited(pad)
      return "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"pad\":\"" .. string.rep("x", pad) .. "\"}"
    end
    local cases = {
      { "http 404 (Cal.com)", id = NIL_UUID, kind = "http", status = 404, message = "Integration not found" },
      { "http 404 (functions)", endpoint = "gcal", id = NIL_UUID, kind = "http", status = 404,
        message = "Function not found" },
      { "http 409 with the server's request id", faults = { { status = 409, request_id = "req-7f3a-42" } },
        kind = "http", status = 409, request_id = "req-7f3a-42" },
      { "http 401 for a wrong token, not retried", options = { token = "wrong-token-abc", retries = 2 },
        kind = "http", status = 401, message = "Unauthorized", requests = 1 },
      { "http 302, not followed", faults = { { status = 302, headers = { Location = "/elsewhere" } } },
        kind = "http", status = 302, requests = 1 },
      { "http 403 with a non-JSON body", faults = { { status = 403, body = "<html>denied</html>",
        content_type = "text/html" } }, kind = "http", status = 403 },
      { "network: connection refused, retried", target = "refused", options = { retries = 1 },
        kind = "network", attempts = 2, requests = 0 },
      { "network: connection refused over https", target = "tls_refused", kind = "network" },
      { "network: closed without an answer", faults = { { drop = true } }, kind = "network", requests = 1 },
      { "network: closed in the middle of the body", faults = { { raw = truncated } }, kind = "network" },
      { "network: bytes that are not HTTP", faults = { { raw = "garbage\r\n\r\n" } }, kind = "network" },
      { "a body delimited by the end of the connection (HTTP/1.0)", faults = { { raw = close_delimited(300) } },
        ok = true },
      { "limit: a body delimited by the end of the connection, over the cap",
        options = { max_response_bytes = 4096 }, faults = { { raw = close_delimited(100000) } }, kind = "limit" },
      { "network: a malformed status line", faults = { { raw = "HTTP/1.1 abc\r\n\r\n" } }, kind = "network" },
      { "network: retried, attempts says so", options = { retries = 1 }, faults = { { drop = true }, { drop = true } },
        kind = "network", attempts = 2, requests = 2 },
      { "timeout: the server stalls", options = { timeout = 1 }, faults = { { stall = 3 } },
        kind = "timeout", min = 0.9, max = 2.5 },
      { "timeout: a slow answer", endpoint = "gcal", options = { timeout = 1 }, faults = { { delay = 3 } },
        kind = "timeout", min = 0.9, max = 2.5 },
      { "decode: a 200 that is not JSON", faults = { { status = 200, body = "not json" } }, kind = "decode" },
      { "decode: an empty 200", faults = { { status = 200, body = "" } }, kind = "decode" },
      { "decode: not retried", options = { retries = 2 }, faults = { { status = 200, body = "not json" } },
        kind = "decode", requests = 1 },
      { "limit: a body over max_response_bytes (Content-Length)", options = { max_response_bytes = 4096 },
        faults = { { big = 100000 } }, kind = "limit" },
      { "limit: a body over max_response_bytes (chunked)", options = { max_response_bytes = 4096 },
        faults = { { big = 100000, chunked = true } }, kind = "limit" },
      { "limit: exactly max_response_bytes is fine (Content-Length)", options = { max_response_bytes = 5000 },
        faults = { { big = 5000 } }, ok = true },
      { "limit: exactly max_response_bytes is fine (chunked)", options = { max_response_bytes = 5000 },
        faults = { { big = 5000, chunked = true } }, ok = true },
      { "limit: one byte more is not (Content-Length)", options = { max_response_bytes = 5000 },
        faults = { { big = 5001 } }, kind = "limit" },
      { "limit: one byte more is not (chunked)", options = { max_response_bytes = 5000 },
        faults = { { big = 5001, chunked = true } }, kind = "limit" },
      { "limit: oversized response headers", faults = { { header_bytes = 100000 } }, kind = "limit" },
      { "limit: not retried", options = { max_response_bytes = 1024, retries = 2 },
        faults = { { big = 10000 }, { big = 10000 } }, kind = "limit", requests = 1 },
      { "tls: a certificate the CA did not sign, not retried", target = "tls_bad", options = { retries = 2 },
        kind = "tls", requests = 0 },
      { "tls: a working connection", target = "tls", endpoint = "gcal", ok = true, requests = 1 },
      { "retries: a 503 then success", options = { retries = 2 },
        faults = { { status = 503, headers = { ["Retry-After"] = "0" } } }, ok = true, attempts = 2, requests = 2 },
      { "retries: 503 on every attempt", options = { retries = 1 },
        faults = { { status = 503, headers = { ["Retry-After"] = "0" } }, { status = 503 } },
        kind = "http", status = 503, attempts = 2, requests = 2 },
      { "retries: a Retry-After of 1 s is waited for", options = { retries = 1 },
        faults = { { status = 429, headers = { ["Retry-After"] = "1" } } }, ok = true, attempts = 2,
        requests = 2, min = 0.9, max = 3 },
      { "retries: a long Retry-After ends the call", options = { retries = 2 },
        faults = { { status = 503, headers = { ["Retry-After"] = "120" } } }, kind = "http", status = 503,
        retry_after = 120, requests = 1, max = 1 },
      { "retries: a dropped connection, then success", options = { retries = 1 },
        faults = { { drop = true } }, ok = true, attempts = 2, requests = 2 },
      { "retries: 400 is not retried", options = { retries = 2 }, faults = { { status = 400 } },
        kind = "http", status = 400, requests = 1 },
      { "keep-alive: a reused connection closed by the server is replaced", warm = true,
        faults = { { drop = true } }, ok = true, requests = 2 },
    }

    for _, case in ipairs(cases) do
      it(case[1], function()
        local base_url = base_url_for(case.target)
        local plain = plain_lua(case, base_url)
        local nginx = in_nginx(case, base_url)
        check(case, plain, "plain Lua")
        check(case, nginx, "nginx")
        assert.equals("ngx", nginx.transport)
        -- and the two agree on everything that does not depend on the transport
        assert.equals(plain.stats.requests, nginx.stats.requests, "requests")
        assert.equals(plain.attempts, nginx.attempts, "attempts")
        if not case.ok then
          local a, b = plain.error, nginx.error
          for _, field in ipairs { "kind", "status", "attempts", "retry_after", "request_id" } do
            if field ~= "request_id" or case.request_id then
              assert.equals(a[field], b[field], field)
            end
          end
          assert.equals(a.request_id ~= nil, b.request_id ~= nil, "request_id present")
          if a.kind == "http" or a.kind == "decode" then
            assert.equals(a.message, b.message, "message")
            assert.equals(a.body, b.body, "body")
            assert.same(a.data, b.data, "data")
          end
        end
        if not case.ok then -- (a success echoes the googleToken it was sent)
          assert.is_nil(find_secret(nginx.text), "a secret in the gateway's answer")
        end
      end)
    end

    it("a connect that never completes ends at connect_timeout", function()
      local doc
      local full = H.with_unanswered_port(function(port)
        doc = call(calcom_request { base_url = "http://127.0.0.1:" .. port, connect_timeout = 1, timeout = 5,
                                    retries = 0 })
      end)
      if not full then pending(H.QUEUE_NEVER_FULL) return end
      assert.is_false(doc.ok)
      assert.equals("timeout", doc.error.kind)
      assert.truthy(doc.elapsed >= 0.9 and doc.elapsed < 3, "took " .. doc.elapsed .. " s (timeout is 5 s)")
    end)
  end)

  describe("secret hygiene", function()
    local function gcal_request(options, extra)
      local r = { endpoint = "gcal", id = H.UUID, fields = H.gcal_body(),
                  options = { base_url = H.env.http_url, retries = 1, timeout = 1 } }
      for k, v in pairs(options or {}) do r.options[k] = v end
      for k, v in pairs(extra or {}) do r[k] = v end
      return r
    end

    local cases = {
      { "http 401 whose message echoes the token", {}, { { status = 401,
          body = '{"message":"bad token ' .. H.env.token .. '"}' } }, "http" },
      { "http 400 whose body echoes the googleToken", {}, { { status = 400,
          body = '{"message":"invalid googleToken ' .. H.GOOGLE_TOKEN .. '","token":"' .. H.GOOGLE_TOKEN .. '"}' } },
          "http" },
      { "http 503 retried, echoing both", {}, {
          { status = 503, body = '{"message":"' .. H.env.token .. '"}', headers = { ["Retry-After"] = "0" } },
          { status = 503, body = '{"message":"' .. H.GOOGLE_TOKEN .. '"}', headers = { ["Retry-After"] = "0" } } },
          "http" },
      { "decode error of a body echoing the token", {}, { { status = 200,
          body = "not json " .. H.env.token .. " " .. H.GOOGLE_TOKEN } }, "decode" },
      { "limit", { max_response_bytes = 1000 }, { { big = 5000 } }, "limit" },
      { "timeout", { timeout = 0.3, retries = 0 }, { { stall = 2 } }, "timeout" },
      { "network drop", { retries = 0 }, { { drop = true } }, "network" },
      { "tls", { base_url = H.env.tls_bad_url }, nil, "tls" },
      { "network refused", { base_url = "http://127.0.0.1:" .. H.closed_port() }, nil, "network" },
    }

    for _, case in ipairs(cases) do
      it("the gateway's answer never holds a secret: " .. case[1], function()
        if case[3] then S.faults(case[3]) end
        local doc, text = call(gcal_request(case[2], { drain = true }))
        assert.is_false(doc.ok)
        assert.equals(case[4], doc.error.kind)
        assert.truthy(#doc.hooks >= 2)
        assert.is_nil(find_secret(text), "a secret in: " .. text)
      end)
    end

    it("hooks that raise are logged without secrets", function()
      S.faults { { status = 500, body = '{"message":"echo ' .. H.GOOGLE_TOKEN .. '"}',
                   headers = { ["Retry-After"] = "0" } } }
      local doc = call(gcal_request({}, { raise_in_hooks = true }))
      assert.is_true(doc.ok, doc.error and doc.error.text)
      assert.equals(4, #doc.hooks)
      assert.is_nil(find_secret(cjson.encode(doc.hooks)))
      local log = read_file(error_log) or ""
      assert.truthy(log:find("on_request hook failed", 1, true), "the hook failure was not logged")
      assert.truthy(log:find("on_response hook failed", 1, true), "the hook failure was not logged")
    end)

    it("the gateway's error.log never holds a secret (after every spec above)", function()
      local log = read_file(error_log)
      assert.is_string(log)
      assert.truthy(#log > 0)
      local secret = find_secret(log)
      assert.is_nil(secret, "error.log holds a secret")
    end)
  end)
end)

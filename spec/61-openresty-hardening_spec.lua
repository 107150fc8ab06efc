-- The nginx cosocket transport (toolzz.ngx) under hostile answers, and the
-- request interface the call layer relies on (no body, fresh connections,
-- `sent`), driven through the test gateway's /transport location against
-- the stand-in; the same answers through the libcurl transport where both
-- must agree. Skipped (pending) when nginx with the lua module is missing.
local H = require "helpers"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"

local S = H.stand_in
local core = require "toolzz.core"
local CTL = H.root .. "/spec/openresty/ctl"
local PATH = "/api/v1/calcom/integration/" .. H.UUID

local function sh(command)
  local pipe = assert(io.popen(command .. " 2>&1; echo \"exit=$?\""))
  local out = pipe:read("*a")
  pipe:close()
  local text, code = out:match("^(.-)exit=(%d+)%s*$")
  return text or out, tonumber(code)
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

describe("OpenResty transport hardening #no_valgrind", function()
  local why, status = sh(shell_quote(CTL) .. " check")
  if status ~= 0 then
    it("runs in a real nginx", function()
      pending("skipped: " .. (why:gsub("%s+$", "")))
    end)
    return
  end

  local gateway

  lazy_setup(function()
    local out, code = sh(shell_quote(CTL) .. " restart")
    assert(code == 0, "cannot start the gateway: " .. out)
    out = sh(shell_quote(CTL) .. " env")
    gateway = out:match("TOOLZZ_GATEWAY_URL=(%S+)")
    assert(gateway, "ctl env gave no address")
  end)

  lazy_teardown(function()
    sh(shell_quote(CTL) .. " stop")
  end)

  before_each(function() S.reset() end)

  -- One attempt of the cosocket transport made by the gateway:
  -- { status, body, headers, elapsed, version } or { failed, kind, message, elapsed, headers, sent }
  local function attempt(request)
    request.options = request.options or { timeout = 5 }
    local body = cjson.encode(request)
    local chunks = {}
    local saved = http.TIMEOUT
    http.TIMEOUT = 60
    local ok, code = http.request {
      url = gateway .. "/transport", method = "POST",
      headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#body) },
      source = ltn12.source.string(body), sink = ltn12.sink.table(chunks),
    }
    http.TIMEOUT = saved
    assert(ok, "gateway POST /transport failed: " .. tostring(code))
    local text = table.concat(chunks)
    assert(code == 200, "gateway answered " .. tostring(code) .. ": " .. text)
    return cjson.decode(text)
  end

  -- The same attempt over the libcurl transport.
  local function curl_attempt(request)
    local t = core.transport {
      headers = { "Authorization: Bearer " .. H.env.token, "Accept: application/json", "Expect:" },
      content_type = "application/json", ca_file = H.env.ca_file,
      timeout = (request.options or {}).timeout or 5,
    }
    local a, b, c, d, e, f = t:request(request.method, request.url, request.body, request.fresh)
    t:close()
    if a then return { status = a, body = b, headers = c, elapsed = d, version = e } end
    return { failed = true, kind = b, message = c, elapsed = d, headers = e, sent = f }
  end

  local function both(request, check)
    S.reset()
    if request.faults then S.faults(request.faults) end
    check(attempt(request), "nginx")
    S.reset()
    if request.faults then S.faults(request.faults) end
    check(curl_attempt(request), "libcurl")
  end

  describe("requests without a body", function()
    it("a GET sends no body, no Content-Type, no Content-Length", function()
      local doc = attempt { method = "GET", url = H.env.http_url .. PATH }
      assert.is_number(doc.status)
      local last = S.last()
      assert.equals("GET", last.method)
      assert.equals("", last.body)
      assert.is_nil(last.headers["content-type"])
      assert.is_nil(last.headers["content-length"])
      assert.equals("Bearer " .. H.env.token, last.headers.authorization)
    end)

    it("a POST sends Content-Length: 0 and no Content-Type", function()
      local doc = attempt { method = "POST", url = H.env.http_url .. PATH }
      assert.is_number(doc.status)
      local last = S.last()
      assert.equals("POST", last.method)
      assert.equals("0", last.headers["content-length"])
      assert.is_nil(last.headers["content-type"])
    end)

    it("a body goes with Content-Type: application/json", function()
      local doc = attempt { method = "PUT", url = H.env.http_url .. PATH, body = "{}" }
      assert.equals(200, doc.status)
      assert.equals("application/json", S.last().headers["content-type"])
      assert.equals("2", S.last().headers["content-length"])
    end)
  end)

  describe("fresh connections", function()
    it("fresh = true takes no pooled connection; without it the pooled one is reused", function()
      local url = H.env.http_url .. PATH
      assert.equals(200, attempt({ method = "PUT", url = url, body = "{}", drain = true }).status)
      assert.equals(200, attempt({ method = "PUT", url = url, body = "{}" }).status)
      assert.equals(1, S.stats().connections)
      assert.is_number(attempt({ method = "POST", url = url, body = "{}", fresh = true }).status)
      assert.equals(2, S.stats().connections)
      assert.is_number(attempt({ method = "POST", url = url, body = "{}", fresh = true }).status)
      assert.equals(3, S.stats().connections)
      assert.equals(200, attempt({ method = "PUT", url = url, body = "{}" }).status)
      assert.equals(3, S.stats().connections) -- the pooled one again
    end)

    it("fresh = true is sent once when the server drops it; a pooled request is re-sent", function()
      local url = H.env.http_url .. PATH
      assert.equals(200, attempt({ method = "PUT", url = url, body = "{}", drain = true }).status)
      S.reset()
      S.faults { { drop = true } }
      local doc = attempt { method = "POST", url = url, body = "{}", fresh = true }
      assert.is_true(doc.failed)
      assert.equals("network", doc.kind)
      assert.is_true(doc.sent)
      assert.equals(1, S.stats().requests)
    end)
  end)

  describe("failures say whether the request was sent", function()
    local cases = {
      { "refused", function() return "http://127.0.0.1:" .. H.closed_port() .. PATH end, "network", false },
      { "TLS handshake failure", function() return H.env.tls_bad_url .. PATH end, "tls", false },
      { "a connection reset inside the TLS handshake", function()
        local port, stop = H.handshake_reset_server()
        return "https://localhost:" .. port .. PATH, stop
      end, "network", false },
      { "dropped after reading the request", function() return H.env.http_url .. PATH end, "network", true,
        { { drop = true } } },
      { "timeout after sending", function() return H.env.http_url .. PATH end, "timeout", true,
        { { stall = 2 } }, { timeout = 0.5 } },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": " .. case[3] .. ", sent = " .. tostring(case[4]) .. " on both transports", function()
        local url, stop = case[2]()
        local ok, failure = pcall(both, { method = "POST", url = url, body = "{}", fresh = true, faults = case[5],
                                          options = case[6], drain = true },
          function(doc, where)
            assert.is_true(doc.failed, where .. ": succeeded")
            assert.equals(case[3], doc.kind, where .. ": " .. tostring(doc.message))
            assert.equals(case[4], doc.sent, where)
          end)
        if stop then stop() end
        if not ok then error(failure, 0) end
      end)
    end
  end)

  it("a connect that times out: sent = false on both transports", function()
    local docs = {}
    local full = H.with_unanswered_port(function(port)
      local request = { method = "POST", url = "http://127.0.0.1:" .. port .. PATH, body = "{}", fresh = true,
                        options = { timeout = 5, connect_timeout = 0.5 } }
      docs.nginx = attempt(request)
      local t = core.transport { headers = { "Authorization: Bearer x" }, connect_timeout = 0.5 }
      local a, b, _, _, _, f = t:request(request.method, request.url, request.body, true)
      t:close()
      docs.libcurl = { failed = a == nil, kind = b, sent = f }
    end)
    if not full then pending(H.QUEUE_NEVER_FULL) return end
    for where, doc in pairs(docs) do
      assert.is_true(doc.failed, where)
      assert.equals("timeout", doc.kind, where)
      assert.is_false(doc.sent, where)
    end
  end)

  describe("timeout bounds the whole attempt", function()
    local header = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n"
    local body = '{"pad":"' .. string.rep("x", 32) .. '"}'
    local chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2a\r\n" .. body .. "\r\n0\r\n\r\n"
    local cases = {
      { "a body sent one byte at a time (Content-Length)", header .. body, #header },
      { "a chunked body sent one byte at a time", chunked, 48 },
      { "headers sent one byte at a time", header .. body, 0 },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": timeout = 1 ends it within 1.5 s", function()
        both({ method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true, options = { timeout = 1 },
               faults = { { raw = case[2], trickle = 0.1, trickle_after = case[3] } } },
          function(doc, where)
            assert.is_true(doc.failed, where .. ": succeeded")
            assert.equals("timeout", doc.kind, where .. ": " .. tostring(doc.message))
            assert.is_true(doc.elapsed >= 0.9 and doc.elapsed < 1.5, where .. ": took " .. doc.elapsed .. " s")
          end)
      end)
    end
  end)

  describe("strict parsing", function()
    local cases = {
      { "a four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}" },
      { "a two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\n{}" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. " is network on both transports", function()
        both({ method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true,
               faults = { { raw = case[2] } } },
          function(doc, where)
            assert.is_true(doc.failed, where .. ": taken as " .. tostring(doc.status))
            assert.equals("network", doc.kind, where)
          end)
      end)
    end

    for _, size in ipairs { "0x2", " 2", "2 2", "+2", "-2", "" } do
      it("chunk size '" .. size .. "' is network (nginx)", function()
        S.faults { { raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. size .. "\r\n{}\r\n0\r\n\r\n" } }
        local doc = attempt { method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true }
        assert.is_true(doc.failed, "taken as " .. tostring(doc.status) .. " " .. tostring(doc.body))
        assert.equals("network", doc.kind)
      end)
    end

    it("chunk sizes in hexadecimal with extensions are fine (nginx)", function()
      S.faults { { raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "1;a=b\r\n{\r\nA \r\n\"k\":\"0123\"\r\n1\r\n}\r\n0\r\n\r\n" } }
      local doc = attempt { method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true }
      assert.equals(200, doc.status, tostring(doc.message))
      assert.equals('{"k":"0123"}', doc.body)
    end)
  end)

  describe("bloated and cut headers", function()
    it("a 1 MB header line is limit on both transports", function()
      both({ method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true,
             faults = { { header_bytes = 1000000 } } },
        function(doc, where)
          assert.is_true(doc.failed, where)
          assert.equals("limit", doc.kind, where .. ": " .. tostring(doc.message))
        end)
    end)

    for _, count in ipairs { 5000, 20000 } do
      it("a storm of " .. count .. " interim 1xx answers is limit on both transports", function()
        both({ method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true,
               faults = { { raw = string.rep("HTTP/1.1 100 Continue\r\n\r\n", count)
                 .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" } } },
          function(doc, where)
            assert.is_true(doc.failed, where)
            assert.equals("limit", doc.kind, where .. ": " .. tostring(doc.message))
          end)
      end)
    end

    it("an answer cut inside its header block is network (sent) on both transports", function()
      both({ method = "PUT", url = H.env.http_url .. PATH, body = "{}", drain = true,
             faults = { { raw = "HTTP/1.1 200 OK\r\n" } } },
        function(doc, where)
          assert.is_true(doc.failed, where .. ": taken as " .. tostring(doc.status))
          assert.equals("network", doc.kind, where)
          assert.is_true(doc.sent, where)
        end)
    end)
  end)
end)

-- Every error kind, produced for real against the stand-in, with the fields
-- the contract promises.
local H = require "helpers"
local cjson = require "cjson"

local stand_in = H.stand_in
local NIL_UUID = "00000000-0000-0000-0000-000000000000"

-- What every error has: a kind, a message, a one-line tostring starting
-- "toolzz:", attempts, and no token anywhere.
local function assert_error(err, kind, attempts)
  assert.is_table(err, "expected an error table")
  assert.equals(kind, err.kind, "kind (" .. tostring(err) .. ")")
  assert.is_string(err.message)
  assert.truthy(#err.message > 0, "empty message")
  local text = tostring(err)
  assert.is_string(text)
  assert.equals("toolzz:", text:sub(1, 7), text)
  assert.is_nil(text:find("[\r\n]"), "tostring(err) must be one line: " .. string.format("%q", text))
  if kind ~= "validation" and kind ~= "config" then
    assert.equals(attempts or 1, err.attempts, "attempts")
  end
  if kind ~= "http" then assert.is_nil(err.status, "status is for http errors only") end
  if kind ~= "validation" then assert.is_nil(err.fields, "fields is for validation errors only") end
  assert.is_nil(H.contains_secret(err, { H.env.token }))
  return text
end

local calcom, gcal = H.calcom, H.gcal

-- A listening socket whose accept queue is full, so that new connections
-- are never completed (the SYN is dropped): a connect that can only time out.
-- Returns the port and a cleanup function, or nil and why.
local function unanswering_port()
  local socket = require "socket"
  local server = assert(socket.tcp())
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(0))
  local _, port = server:getsockname()
  local fillers = {}
  local function cleanup()
    for _, s in ipairs(fillers) do s:close() end
    server:close()
  end
  -- the queue (backlog 0 holds one) fills up; the next connect must stall
  for _ = 1, 8 do
    local s = socket.tcp()
    s:settimeout(0.2)
    local ok, why = s:connect("127.0.0.1", port)
    fillers[#fillers + 1] = s
    if not ok and why == "timeout" then return port, cleanup end
  end
  cleanup()
  return nil, "the kernel completed every connection (accept queue never full)"
end

describe("errors", function()
  local client

  before_each(function()
    stand_in.reset()
    client = H.client { timeout = 2 }
  end)

  after_each(function()
    if client then client:close() end
  end)

  describe("http", function()
    it("a 404 carries status, the server's message, body, data and request_id", function()
      local res, err = calcom(client, NIL_UUID)
      assert.is_nil(res)
      local text = assert_error(err, "http")
      assert.equals(404, err.status)
      assert.equals("Integration not found", err.message)
      assert.truthy(text:find("Integration not found", 1, true), text)
      assert.truthy(text:find("404", 1, true), text)
      assert.is_string(err.body)
      local body = cjson.decode(err.body)
      assert.equals("Integration not found", body.message)
      assert.is_table(err.data)
      assert.equals("Integration not found", err.data.message)
      assert.equals(404, err.data.statusCode)
      assert.is_string(err.request_id)
      assert.truthy(err.request_id:match("^%x+$") and #err.request_id == 32, err.request_id)
    end)

    it("a 404 from the functions endpoint carries its own message", function()
      local _, err = gcal(client, NIL_UUID)
      assert_error(err, "http")
      assert.equals(404, err.status)
      assert.equals("Function not found", err.message)
      assert.equals("Function not found", err.data.message)
    end)

    it("request_id is the server's X-Request-Id", function()
      stand_in.faults { { status = 409, request_id = "req-7f3a-42" } }
      local _, err = calcom(client)
      assert_error(err, "http")
      assert.equals(409, err.status)
      assert.equals("req-7f3a-42", err.request_id)
      assert.truthy(tostring(err):find("req-7f3a-42", 1, true))
    end)

    it("request_id is also read from a Request-Id header", function()
      local body = '{"message":"Version conflict","statusCode":409}'
      stand_in.faults { { raw = "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
        .. "Request-Id: rid-42\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body } }
      local _, err = calcom(client)
      assert_error(err, "http")
      assert.equals(409, err.status)
      assert.equals("Version conflict", err.message)
      assert.equals("rid-42", err.request_id)
      assert.equals(body, err.body)
    end)

    it("a wrong token is a 401, not retried", function()
      local c = H.client { token = "wrong-token-abc", retries = 2 }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "http")
      assert.equals(401, err.status)
      assert.equals("Unauthorized", err.message)
      assert.equals(401, err.data.statusCode)
      assert.equals(1, stand_in.stats().requests)
      assert.is_nil(H.contains_secret(err, { "wrong-token-abc" }))
    end)

    for _, status in ipairs { 301, 302, 303, 307, 308 } do
      it("a " .. status .. " with Location is not followed and is an http error", function()
        local target = H.env.http_url .. "/api/v1/calcom/integration/" .. H.UUID
        stand_in.faults { { status = status, headers = { Location = target } } }
        local res, err = calcom(client)
        assert.is_nil(res)
        assert_error(err, "http")
        assert.equals(status, err.status)
        assert.equals(1, stand_in.stats().requests, "the redirect was followed")
        assert.equals(0, stand_in.pending_faults())
      end)
    end

    it("a redirect to another scheme is not followed either", function()
      stand_in.faults { { status = 302, headers = { Location = "ftp://127.0.0.1/x" } } }
      local _, err = calcom(client)
      assert_error(err, "http")
      assert.equals(302, err.status)
      assert.equals(1, stand_in.stats().requests)
    end)

    it("a non-JSON error body: generic message, raw body, no data", function()
      stand_in.faults { { status = 403, body = "<html>denied</html>", content_type = "text/html" } }
      local _, err = calcom(client)
      local text = assert_error(err, "http")
      assert.equals(403, err.status)
      assert.equals("<html>denied</html>", err.body)
      assert.is_nil(err.data)
      assert.truthy(text:find("403", 1, true), text)
    end)

    it("a message list (several validation messages) is reported in full", function()
      stand_in.faults { { status = 400, body = '{"message":["title is bad","unitId is bad"],"statusCode":400}' } }
      local _, err = calcom(client)
      assert_error(err, "http")
      assert.equals(400, err.status)
      assert.truthy(err.message:find("title is bad", 1, true), err.message)
      assert.truthy(err.message:find("unitId is bad", 1, true), err.message)
      assert.same({ "title is bad", "unitId is bad" }, err.data.message)
    end)

    it("a server message with newlines still gives a one-line tostring", function()
      stand_in.faults { { status = 422, body = '{"message":"first\\nsecond\\r\\nthird"}' } }
      local _, err = calcom(client)
      local text = assert_error(err, "http")
      assert.equals(422, err.status)
      assert.truthy(text:find("first", 1, true) and text:find("third", 1, true), text)
    end)

    it("a large error body is capped in err.body", function()
      stand_in.faults { { status = 404, big = 200000 } }
      local _, err = calcom(client)
      assert_error(err, "http")
      assert.equals(404, err.status)
      assert.is_string(err.body)
      assert.truthy(#err.body > 0 and #err.body < 200000, "body of " .. #err.body .. " bytes")
      assert.equals('{"pad":"xxxx', err.body:sub(1, 12))
    end)

    it("retry_after is set when the server asks to wait (and a long ask ends the call)", function()
      local c = H.client { retries = 2 }
      stand_in.faults { { status = 503, headers = { ["Retry-After"] = "120" } } }
      local started = H.now()
      local _, err = calcom(c)
      c:close()
      assert.truthy(H.now() - started < 1, "the call waited")
      assert_error(err, "http")
      assert.equals(503, err.status)
      assert.equals(120, err.retry_after)
      assert.equals(1, stand_in.stats().requests)
    end)

    it("attempts counts every attempt of a retried call", function()
      local c = H.client { retries = 1 }
      stand_in.faults { { status = 503, headers = { ["Retry-After"] = "0" } },
                        { status = 503, headers = { ["Retry-After"] = "0" } } }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "http", 2)
      assert.equals(2, stand_in.stats().requests)
      assert.truthy(tostring(err):find("2 attempts", 1, true), tostring(err))
    end)
  end)

  describe("network", function()
    it("a refused connection", function()
      local c = H.client { base_url = "http://127.0.0.1:" .. H.closed_port() }
      local res, err = calcom(c)
      c:close()
      assert.is_nil(res)
      assert_error(err, "network")
      assert.is_nil(err.body)
    end)

    it("a refused connection over https", function()
      local c = H.client { base_url = "https://localhost:" .. H.closed_port(), ca_file = H.env.ca_file }
      local _, err = gcal(c)
      c:close()
      assert_error(err, "network")
    end)

    it("a connection closed without an answer", function()
      stand_in.faults { { drop = true } }
      local _, err = calcom(client)
      assert_error(err, "network")
      assert.equals(1, stand_in.stats().requests)
    end)

    it("a connection closed in the middle of the body", function()
      stand_in.faults { { raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        .. "Content-Length: 100\r\n\r\n{\"id\":" } }
      local _, err = calcom(client)
      assert_error(err, "network")
    end)

    it("a network failure is retried and attempts says so", function()
      local c = H.client { retries = 1 }
      stand_in.faults { { drop = true }, { drop = true } }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "network", 2)
      assert.equals(2, stand_in.stats().requests)
    end)

    -- Not an answer at all; it is not the client's options ("config") either.
    for label, bytes in pairs {
      ["bytes that are not HTTP"] = "garbage\r\n\r\n",
      ["a malformed status line"] = "HTTP/1.1 abc\r\n\r\n",
    } do
      it(label .. " is a network error, not config", function()
        stand_in.faults { { raw = bytes } }
        local _, err = calcom(client)
        assert_error(err, "network")
      end)
    end
  end)

  describe("timeout", function()
    it("an attempt that runs past timeout (the server stalls)", function()
      local c = H.client { timeout = 1 }
      stand_in.faults { { stall = 3 } }
      local started = H.now()
      local res, err = calcom(c)
      local elapsed = H.now() - started
      c:close()
      assert.is_nil(res)
      assert_error(err, "timeout")
      assert.truthy(elapsed >= 0.9 and elapsed < 2.5, "took " .. elapsed .. " s")
    end)

    it("the timeout covers the whole attempt (a slow answer)", function()
      local c = H.client { timeout = 1 }
      stand_in.faults { { delay = 3 } }
      local started = H.now()
      local _, err = gcal(c)
      local elapsed = H.now() - started
      c:close()
      assert_error(err, "timeout")
      assert.truthy(elapsed < 2.5, "took " .. elapsed .. " s")
    end)

    it("a connect that never completes ends at connect_timeout", function()
      local port, why = unanswering_port()
      if not port then pending(why) return end
      local c = H.client { base_url = "http://127.0.0.1:" .. port, connect_timeout = 1, timeout = 5 }
      local started = H.now()
      local _, err = calcom(c)
      local elapsed = H.now() - started
      c:close()
      assert_error(err, "timeout")
      assert.truthy(elapsed >= 0.9 and elapsed < 3, "took " .. elapsed .. " s (timeout is 5 s)")
    end)
  end)

  describe("decode", function()
    it("a 2xx body that is not JSON", function()
      stand_in.faults { { body = "not json", status = 200 } }
      local res, err = calcom(client)
      assert.is_nil(res)
      assert_error(err, "decode")
      assert.equals("not json", err.body)
      assert.is_string(err.request_id)
    end)

    it("an empty 200 body", function()
      stand_in.faults { { body = "", status = 200 } }
      local _, err = gcal(client)
      assert_error(err, "decode")
      assert.equals("", err.body)
    end)

    it("truncated JSON in a 2xx", function()
      stand_in.faults { { body = '{"id":"abc", "title":', status = 201 } }
      local _, err = calcom(client)
      assert_error(err, "decode")
      assert.equals('{"id":"abc", "title":', err.body)
    end)

    it("a large non-JSON body is capped in err.body", function()
      stand_in.faults { { body = string.rep("<p>", 20000), status = 200, content_type = "text/html" } }
      local _, err = calcom(client)
      assert_error(err, "decode")
      assert.is_string(err.body)
      assert.truthy(#err.body > 0 and #err.body < 60000, "body of " .. #err.body .. " bytes")
      assert.equals(string.rep("<p>", 20000):sub(1, #err.body), err.body)
    end)

    it("decode errors are not retried", function()
      local c = H.client { retries = 2 }
      stand_in.faults { { body = "not json", status = 200 } }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "decode")
      assert.equals(1, stand_in.stats().requests)
    end)
  end)

  describe("limit", function()
    for _, chunked in ipairs { false, true } do
      local how = chunked and "chunked" or "with Content-Length"
      it("a response body over max_response_bytes (" .. how .. ")", function()
        local c = H.client { max_response_bytes = 4096 }
        stand_in.faults { { big = 100000, chunked = chunked } }
        local res, err = calcom(c)
        c:close()
        assert.is_nil(res)
        assert_error(err, "limit")
      end)

      it("exactly max_response_bytes is fine, one byte more is not (" .. how .. ")", function()
        local c = H.client { max_response_bytes = 5000 }
        stand_in.faults { { big = 5000, chunked = chunked }, { big = 5001, chunked = chunked } }
        local res, err = calcom(c)
        assert.is_nil(err, tostring(err))
        assert.equals(5000 - #'{"pad":""}', #res.pad)
        res, err = calcom(c)
        c:close()
        assert.is_nil(res)
        assert_error(err, "limit")
      end)
    end

    it("a body limit keeps the server's request id (the headers had arrived)", function()
      local c = H.client { max_response_bytes = 4096 }
      stand_in.faults { { big = 100000, request_id = "rid-limit-1" },
                        { big = 100000, request_id = "rid-limit-2", chunked = true } }
      local _, err = calcom(c)
      assert_error(err, "limit")
      assert.equals("rid-limit-1", err.request_id)
      _, err = calcom(c)
      c:close()
      assert_error(err, "limit")
      assert.equals("rid-limit-2", err.request_id)
    end)

    it("a response body over max_response_bytes over HTTP/2", function()
      local c = H.client { base_url = H.env.tls_url, ca_file = H.env.ca_file, max_response_bytes = 4096 }
      stand_in.faults { { big = 100000 } }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "limit")
    end)

    it("a limit error is not retried", function()
      local c = H.client { max_response_bytes = 1024, retries = 2 }
      stand_in.faults { { big = 10000 }, { big = 10000 } }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "limit")
      assert.equals(1, stand_in.stats().requests)
    end)

    it("oversized response headers", function()
      stand_in.faults { { header_bytes = 100000 } }
      local res, err = calcom(client)
      assert.is_nil(res)
      assert_error(err, "limit")
    end)
  end)

  describe("tls", function()
    it("a certificate the CA did not sign", function()
      local c = H.client { base_url = H.env.tls_bad_url, ca_file = H.env.ca_file, retries = 2 }
      local res, err = calcom(c)
      c:close()
      assert.is_nil(res)
      assert_error(err, "tls")
      assert.equals(0, stand_in.stats().requests)
    end)

    it("the test CA is not trusted without ca_file", function()
      local c = H.client { base_url = H.env.tls_url }
      local _, err = calcom(c)
      c:close()
      assert_error(err, "tls")
      assert.equals(0, stand_in.stats().requests)
    end)

    it("the trusted TLS port with ca_file works", function()
      local c = H.client { base_url = H.env.tls_url, ca_file = H.env.ca_file }
      local res, err = calcom(c)
      assert.is_nil(err, tostring(err))
      assert.equals(H.UUID, res.id)
      res, err = gcal(c)
      c:close()
      assert.is_nil(err, tostring(err))
      assert.equals("google-calendar", res.type)
      assert.equals("https", stand_in.last().scheme)
    end)

    it("http errors over TLS are http errors", function()
      local c = H.client { base_url = H.env.tls_url, ca_file = H.env.ca_file }
      local _, err = gcal(c, NIL_UUID)
      c:close()
      assert_error(err, "http")
      assert.equals(404, err.status)
      assert.equals("Function not found", err.message)
    end)
  end)

  describe("config", function()
    local toolzz = require "toolzz"

    it("a token with CR/LF", function()
      local client_or_nil, err = toolzz.new { token = "abc\r\nX-Evil: 1", base_url = H.env.http_url }
      assert.is_nil(client_or_nil)
      assert_error(err, "config")
      assert.is_nil(H.contains_secret(err, { "abc\r\nX-Evil: 1", "X-Evil" }))
    end)

    it("plain http:// to a host that is not loopback", function()
      local client_or_nil, err = toolzz.new { token = H.env.token, base_url = "http://example.com" }
      assert.is_nil(client_or_nil)
      assert_error(err, "config")
    end)
  end)

  describe("validation", function()
    it("sends nothing and lists the fields", function()
      local _, err = calcom(client, "../etc/passwd")
      assert_error(err, "validation")
      assert.is_table(err.fields)
      assert.equals("id", err.fields[1].path)
      assert.equals(0, stand_in.stats().requests)
    end)
  end)
end)

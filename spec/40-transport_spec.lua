-- Transport guarantees: keep-alive, HTTP versions, chunked answers, secrets
-- kept out of every failure, and a client that survives its failures.
local H = require "helpers"

local stand_in = H.stand_in

local calcom, gcal = H.calcom, H.gcal

local function tls_client(opts)
  local o = { base_url = H.env.tls_url, ca_file = H.env.ca_file }
  for k, v in pairs(opts or {}) do o[k] = v end
  return H.client(o)
end

local function assert_ok(res, err)
  assert.is_nil(err, tostring(err))
  assert.is_table(res)
  assert.equals(H.UUID, res.id)
  return res
end

describe("transport", function()
  before_each(function()
    stand_in.reset()
  end)

  describe("keep-alive", function()
    for _, scheme in ipairs { "http", "https" } do
      it("five calls on one client use one connection (" .. scheme .. ")", function()
        local client = scheme == "http" and H.client() or tls_client()
        for i = 1, 5 do
          assert_ok((i % 2 == 0 and gcal or calcom)(client))
        end
        client:close()
        assert.same({ requests = 5, connections = 1 }, stand_in.stats())
      end)
    end

    it("the connection survives HTTP errors", function()
      local client = H.client()
      local _, err = calcom(client, "00000000-0000-0000-0000-000000000000")
      assert.equals(404, err and err.status)
      stand_in.faults { { status = 409 } }
      _, err = gcal(client)
      assert.equals(409, err and err.status)
      assert_ok(calcom(client))
      client:close()
      assert.same({ requests = 3, connections = 1 }, stand_in.stats())
    end)

    it("a new client opens a new connection", function()
      local first, second = H.client(), H.client()
      assert_ok(calcom(first))
      assert_ok(calcom(second))
      assert_ok(calcom(first))
      assert_ok(calcom(second))
      first:close()
      second:close()
      assert.same({ requests = 4, connections = 2 }, stand_in.stats())
    end)

    it("a new client opens a new connection (https)", function()
      local first, second = tls_client(), tls_client()
      assert_ok(calcom(first))
      assert_ok(gcal(second))
      first:close()
      second:close()
      assert.same({ requests = 2, connections = 2 }, stand_in.stats())
    end)
  end)

  describe("HTTP versions", function()
    it("HTTP/2 is negotiated over TLS", function()
      local core = require "toolzz.core"
      if not core.curl_http2 then pending("this libcurl has no HTTP/2") return end
      local client = tls_client()
      assert_ok(calcom(client))
      client:close()
      local last = stand_in.last()
      assert.equals("https", last.scheme)
      assert.equals("2.0", last.http_version)
    end)

    it("HTTP/1.1 is spoken over plain http", function()
      local client = H.client()
      assert_ok(gcal(client))
      client:close()
      local last = stand_in.last()
      assert.equals("http", last.scheme)
      assert.equals("1.1", last.http_version)
    end)
  end)

  describe("chunked responses", function()
    it("decode like any other (http)", function()
      local client = H.client()
      stand_in.faults { { chunked = true }, { chunked = true } }
      local res = assert_ok(gcal(client))
      assert.equals("google-calendar", res.type)
      assert.same({}, res.outputs)
      assert.equals(H.GOOGLE_TOKEN, res.googleCalendarPlugin[1].googleToken)
      res = assert_ok(calcom(client))
      assert.equals(H.calcom_body().prompt, res.prompt)
      client:close()
      assert.equals(0, stand_in.pending_faults())
    end)

    it("a large chunked answer under the cap arrives whole", function()
      local client = H.client()
      stand_in.faults { { big = 300000, chunked = true } }
      local res, err = calcom(client)
      client:close()
      assert.is_nil(err, tostring(err))
      assert.equals(300000 - #'{"pad":""}', #res.pad)
      assert.is_nil(res.pad:find("[^x]"))
    end)

    it("decode like any other (https)", function()
      local client = tls_client()
      stand_in.faults { { chunked = true } }
      local res = assert_ok(calcom(client))
      client:close()
      assert.equals("Calcom", res.title)
      assert.equals(0, stand_in.pending_faults())
    end)
  end)

  -- Every failure kind this file can produce, each on a fresh client.
  local token = H.env.token
  local failures = {
    { "validation", function() return H.client(), "not-a-uuid" end },
    { "http", function() return H.client(), "00000000-0000-0000-0000-000000000000" end },
    { "http", function()
        stand_in.faults { { status = 400, body = '{"message":"bad token ' .. token .. '"}', request_id = token } }
        return H.client()
      end, "a server that echoes the token" },
    { "http", function() return H.client { token = token .. "-wrong" } end, "a wrong token" },
    { "network", function() return H.client { base_url = "http://127.0.0.1:" .. H.closed_port() } end },
    { "network", function()
        stand_in.faults { { drop = true } }
        return H.client()
      end, "a dropped connection" },
    { "timeout", function()
        stand_in.faults { { stall = 3 } }
        return H.client { timeout = 1 }
      end },
    { "decode", function()
        stand_in.faults { { status = 200, body = "not json " .. token } }
        return H.client()
      end, "a body that echoes the token" },
    { "limit", function()
        stand_in.faults { { big = 100000 } }
        return H.client { max_response_bytes = 1000 }
      end },
    { "limit", function()
        stand_in.faults { { header_bytes = 100000 } }
        return H.client()
      end, "headers" },
    { "tls", function() return H.client { base_url = H.env.tls_bad_url, ca_file = H.env.ca_file } end },
  }

  describe("the token never shows", function()
    for _, case in ipairs(failures) do
      local kind, setup, label = case[1], case[2], case[3]
      it("in a " .. kind .. " error" .. (label and (" (" .. label .. ")") or ""), function()
        local client, id = setup()
        local res, err = calcom(client, id)
        assert.is_nil(res)
        assert.is_table(err)
        assert.equals(kind, err.kind, tostring(err))
        assert.is_nil(H.contains_secret(err, { token }), "token in " .. tostring(err))
        assert.is_nil(tostring(err):find(token, 1, true))
        assert.is_nil(tostring(client):find(token, 1, true))
        client:close()
        assert.is_nil(tostring(client):find(token, 1, true))
      end)
    end

    it("in a config error (a token with a newline)", function()
      local bad = token .. "\n"
      local client, err = require("toolzz").new { token = bad, base_url = H.env.http_url }
      assert.is_nil(client)
      assert.equals("config", err.kind)
      assert.is_nil(H.contains_secret(err, { token }))
    end)

    it("in tostring(client)", function()
      local client = tls_client()
      assert.is_nil(tostring(client):find(token, 1, true))
      assert.is_nil(H.contains_secret(client, { token }))
    end)
  end)

  describe("the client stays usable", function()
    local function after(make_failure, kind, client)
      local _, err = make_failure(client)
      assert.is_table(err, "the failure did not happen")
      assert.equals(kind, err.kind, tostring(err))
      assert_ok(calcom(client))
      assert_ok(gcal(client))
    end

    it("after a dropped connection", function()
      local client = H.client()
      stand_in.faults { { drop = true } }
      after(calcom, "network", client)
      client:close()
    end)

    it("after a connection closed mid-body", function()
      local client = H.client()
      stand_in.faults { { raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":" } }
      after(calcom, "network", client)
      client:close()
    end)

    it("after a timeout", function()
      local client = H.client { timeout = 1 }
      stand_in.faults { { stall = 3 } }
      after(calcom, "timeout", client)
      client:close()
    end)

    it("after a body limit (Content-Length and chunked)", function()
      local client = H.client { max_response_bytes = 4096 }
      stand_in.faults { { big = 100000 } }
      after(calcom, "limit", client)
      stand_in.faults { { big = 100000, chunked = true } }
      after(gcal, "limit", client)
      client:close()
    end)

    it("after a header limit", function()
      local client = H.client()
      stand_in.faults { { header_bytes = 100000 } }
      after(calcom, "limit", client)
      client:close()
    end)

    it("after a decode error and an http error", function()
      local client = H.client()
      stand_in.faults { { status = 200, body = "not json" } }
      after(calcom, "decode", client)
      stand_in.faults { { status = 500 } }
      local _, err = calcom(client)
      assert.equals(500, err and err.status)
      assert_ok(gcal(client))
      client:close()
    end)

    it("after failures over HTTP/2 (drop, limit, timeout)", function()
      -- The stall comes last: the stand-in keeps a stalled stream's
      -- connection busy, and a drop on that connection then sends nothing.
      local client = tls_client { timeout = 1, max_response_bytes = 4096 }
      stand_in.faults { { drop = true } }
      after(calcom, "network", client)
      stand_in.faults { { big = 100000 } }
      after(calcom, "limit", client)
      stand_in.faults { { stall = 3 } }
      after(calcom, "timeout", client)
      client:close()
    end)

    it("after a tls failure", function()
      -- The client trusts a CA file; it first holds the wrong certificate
      -- (the handshake fails), then the right one.
      local function copy_file(from, to)
        local src = assert(io.open(from, "rb"))
        local data = src:read("*a")
        src:close()
        local dst = assert(io.open(to, "wb"))
        dst:write(data)
        dst:close()
      end
      local certs = H.env.ca_file:match("^(.*)/[^/]*$")
      local ca_file = os.tmpname()
      copy_file(certs .. "/untrusted.pem", ca_file)
      local client = tls_client { ca_file = ca_file }
      local ok, failure = pcall(function()
        local _, err = calcom(client)
        assert.equals("tls", err and err.kind, tostring(err))
        copy_file(H.env.ca_file, ca_file)
        assert_ok(calcom(client))
        assert_ok(gcal(client))
      end)
      client:close()
      os.remove(ca_file)
      assert(ok, failure)
    end)

    it("after a tls failure, a failing client fails the same way again", function()
      local client = H.client { base_url = H.env.tls_bad_url, ca_file = H.env.ca_file }
      for _ = 1, 3 do
        local _, err = calcom(client)
        assert.equals("tls", err and err.kind, tostring(err))
        assert.equals(1, err.attempts)
      end
      client:close()
    end)
  end)
end)

-- Secrets against a hostile server (issue 9, "Secrets"): the bearer token and
-- a googleToken never come back, whatever the server does with them: nested
-- deep in an error body, straddling the point where err.body is cut, or
-- written in an escaped form (JSON `\/` and `\u00XX`, percent-encoding).
local H = require "helpers"
local S = H.stand_in

local TOKEN = H.env.token
-- A googleToken with slashes, so that JSON's `\/` escape applies to it.
local SLASHED = "ya29.a0/AfB_byC/secret-google-oauth/token-42"
local SECRETS = { TOKEN, H.GOOGLE_TOKEN, SLASHED }
local BODY_CAP = 8192

local char, byte = string.char, string.byte

-- Escaped forms of s, written independently of the module.
local function percent(s)
  return (s:gsub(".", function(c) return ("%%%02X"):format(byte(c)) end))
end
local function percent_some(s) -- only what a URL encoder would escape, lower-case hex
  return (s:gsub("[^%w]", function(c) return ("%%%02x"):format(byte(c)) end))
end
local function json_u(s)
  return (s:gsub(".", function(c) return ("\\u%04x"):format(byte(c)) end))
end
local function json_slash(s)
  return (s:gsub("/", "\\/"))
end

-- s with every escape this spec knows of undone (percent, then JSON, twice:
-- also JSON inside a JSON string and double percent-encoding).
local function unescape(s)
  for _ = 1, 2 do
    s = s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end)
    s = s:gsub("\\+u(%x%x%x%x)", function(h)
      local n = tonumber(h, 16)
      if n < 128 then return char(n) end
    end)
    s = s:gsub("\\+([/\"\\])", "%1")
  end
  return s
end

-- The first string reachable from v that holds a secret, raw or escaped.
local function leak(v)
  for _, s in ipairs(H.strings(v)) do
    for _, form in ipairs { s, unescape(s) } do
      for _, secret in ipairs(SECRETS) do
        if form:find(secret, 1, true) then return s end
      end
    end
  end
  return nil
end

-- Does s end with the first bytes (at least `least` of them) of a secret?
local function ends_with_secret_prefix(s, least)
  for _, secret in ipairs(SECRETS) do
    for n = least, #secret - 1 do
      if s:sub(-n) == secret:sub(1, n) then return secret:sub(1, n) end
    end
  end
  return nil
end

-- Run fn(client) with hooks recording everything (and not failing) and
-- stderr captured; no retries unless opts says so.
local function observe(opts, fn)
  local o = { retries = 0, timeout = 2 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local res, err, seen, printed, client = H.observe(o, fn, true)
  client:close()
  return res, err, seen, printed
end

-- A gcal update whose googleToken is SLASHED, answered by `fault`.
local function gcal_with_fault(fault, opts)
  S.faults { fault }
  return observe(opts, function(client)
    local body = H.gcal_body()
    body.googleCalendar.googleToken = SLASHED
    return client.gcal.update(H.UUID, body)
  end)
end

describe("secrets against a hostile server", function()
  before_each(function() S.reset() end)

  describe("nested deep in an error body (err.data)", function()
    for _, depth in ipairs { 33, 40, 200, 990 } do
      it("is scrubbed at depth " .. depth .. " (as a value and as a key)", function()
        local open, close = ('{"a":'):rep(depth), ("}"):rep(depth)
        local body = '{"message":"bad","v":' .. open .. '"' .. TOKEN .. '"' .. close
          .. ',"k":' .. open .. '{"' .. SLASHED .. '":1}' .. close .. "}"
        local _, err, seen, printed = gcal_with_fault { status = 400, body = body }
        assert.equals("http", err.kind)
        assert.is_table(err.data, "the body decodes")
        assert.is_nil(leak { err, tostring(err), seen, printed })
        -- what is not secret is kept: the deepest table is still there
        local v = err.data.v
        for _ = 1, depth - 1 do v = v.a end
        assert.equals("[REDACTED]", v.a)
      end)
    end
  end)

  describe("where err.body is cut", function()
    local head = '{"message":"bad","pad":"'
    for _, case in ipairs {
      { "the token, raw", TOKEN },
      { "the token, percent-encoded", percent(TOKEN) },
      { "the token, \\u-escaped", json_u(TOKEN) },
      { "a googleToken, \\/-escaped", json_slash(SLASHED) },
    } do
      for _, before_cut in ipairs { 1, 9, #case[2] - 1 } do
        for _, status in ipairs { 400, 200 } do
          it(("leaves no prefix of %s (%d bytes before the cut, status %d)"):format(case[1], before_cut, status),
            function()
              local pad = ("p"):rep(BODY_CAP - before_cut - #head)
              local tail = '","more":"' .. ("q"):rep(100) .. '"}'
              -- a 200 with a body that is not JSON is a decode error with err.body
              local body = head .. pad .. case[2] .. tail .. (status == 200 and " trailing garbage" or "")
              local _, err, seen, printed = gcal_with_fault { status = status, body = body }
              assert.equals(status == 200 and "decode" or "http", err.kind)
              assert.is_string(err.body)
              assert.truthy(#err.body <= BODY_CAP, #err.body .. " bytes")
              assert.equals(head .. "pppp", err.body:sub(1, #head + 4))
              assert.is_nil(leak { err, tostring(err), seen, printed })
              assert.is_nil(ends_with_secret_prefix(err.body, 1))
              -- an escape cut in two is no clue; what comes before it must not be one either
              local unescaped = unescape(err.body):gsub("\\+u?%x?%x?%x?$", ""):gsub("%%[25]*%x?$", "")
              assert.is_nil(ends_with_secret_prefix(unescaped, 2))
            end)
        end
      end
    end

    it("keeps the text after a scrubbed secret, up to the cap", function()
      local pad = ("p"):rep(BODY_CAP - 500 - #head)
      local body = head .. pad .. TOKEN .. '","n":"' .. ("n"):rep(1000) .. '"}'
      local _, err = gcal_with_fault { status = 400, body = body }
      assert.is_nil(leak(err))
      assert.truthy(err.body:find("[REDACTED]", 1, true), "the secret's place is marked")
      assert.truthy(err.body:find('","n":"nnnn', 1, true), "text after the secret is kept up to the cap")
      assert.truthy(#err.body > BODY_CAP - 100, #err.body .. " bytes")
    end)
  end)

  describe("in escaped forms", function()
    local forms = {
      { "percent-encoded, upper-case hex", percent },
      { "percent-encoded where a URL needs it, lower-case hex", percent_some },
      { "percent-encoded twice", function(s) return (percent(s):gsub("%%", "%%25")) end },
      { "JSON \\u00XX escapes", json_u },
      { "JSON \\u00XX escapes, upper-case hex", function(s)
          return (json_u(s):gsub("\\u(%x+)", function(h) return "\\u" .. h:upper() end)) end },
      { "JSON \\/ escapes", json_slash },
      { "mixed percent and JSON escapes, one char in three", function(s)
          local i = 0
          return (s:gsub(".", function(c)
            i = i + 1
            if i % 3 == 0 then return ("%%%02X"):format(byte(c)) end
            if i % 3 == 1 then return ("\\u%04X"):format(byte(c)) end
          end))
        end },
    }
    -- Where the server can put a secret. The body text is JSON, so what it
    -- holds is escaped once more where it sits inside a JSON string.
    local function json_string(s) return (s:gsub("\\", "\\\\")) end
    local places = {
      { "an error body's message", function(x) return { status = 401, body = '{"message":"bad token ' .. x .. '"}' } end },
      { "an error body's nested field", function(x)
          return { status = 400, body = '{"message":"bad","e":[{"t":"' .. x .. '"}]}' } end },
      { "an error body as JSON inside a JSON string", function(x)
          return { status = 400, body = '{"message":"bad","inner":"{\\"t\\":\\"' .. json_string(x) .. '\\"}"}' } end },
      { "a 2xx body that is not JSON", function(x) return { status = 200, body = "oops " .. x } end },
      { "the request id of an error", function(x) return { status = 404, request_id = x } end },
    }
    for _, form in ipairs(forms) do
      for _, place in ipairs(places) do
        it("are scrubbed: " .. form[1] .. " in " .. place[1], function()
          for _, secret in ipairs { TOKEN, SLASHED } do
            local _, err, seen, printed = gcal_with_fault(place[2](form[2](secret)))
            assert.is_table(err)
            assert.is_nil(leak { err, tostring(err), seen, printed })
          end
        end)
      end
    end

    it("are scrubbed from a failing hook's log line", function()
      local client = H.client {
        on_request = function() error("hook saw " .. percent(TOKEN) .. " and " .. json_u(TOKEN)) end,
      }
      local printed = {}
      local real = io.stderr
      io.stderr = { write = function(_, ...) -- luacheck: ignore 122
        for _, s in ipairs { ... } do printed[#printed + 1] = tostring(s) end
      end }
      local ok, res = pcall(H.calcom, client)
      io.stderr = real -- luacheck: ignore 122
      client:close()
      assert(ok, res)
      printed = table.concat(printed)
      assert.truthy(printed:find("on_request hook failed", 1, true), printed)
      assert.is_nil(leak(printed))
    end)

    it("leave ordinary escapes alone", function()
      local _, err = gcal_with_fault { status = 400, body = '{"message":"caf\\u00e9 50%25 a\\/b %zz \\\\"}' }
      assert.equals('caf\195\169 50%25 a/b %zz \\', err.message)
      assert.equals('{"message":"caf\\u00e9 50%25 a\\/b %zz \\\\"}', err.body)
    end)
  end)

  describe("in request ids", function()
    -- item 6: a 2xx answer whose X-Request-Id is the token
    for _, form in ipairs { { "as is", function(x) return x end }, { "percent-encoded", percent } } do
      it("are scrubbed from on_response's info on a 2xx answer (" .. form[1] .. ")", function()
        S.faults { { status = 200, request_id = form[2](TOKEN) } }
        local res, err, seen = observe({}, function(client) return client.gcal.update(H.UUID, H.gcal_body()) end)
        assert.is_nil(err)
        assert.is_table(res)
        assert.equals(2, #seen)
        assert.equals("[REDACTED]", seen[2].request_id)
        assert.is_nil(leak(seen))
      end)
    end

    it("are scrubbed from on_response's info in a batch and from every error", function()
      S.faults { { status = 200, request_id = TOKEN }, { status = 404, request_id = "x" .. TOKEN } }
      local results, _, seen = observe({}, function(client)
        return client.batch { { "gcal", H.UUID, H.gcal_body() }, { "calcom", H.UUID, H.calcom_body() } }
      end)
      assert.is_table(results[1].res)
      assert.equals("http", results[2].err.kind)
      assert.equals(4, #seen)
      assert.is_nil(leak { results[2].err, tostring(results[2].err), seen })
    end)
  end)

  describe("in on_progress failures", function()
    -- item 10: the batch's own secrets, not only the bearer token
    it("are scrubbed of every item's secrets, raw and escaped", function()
      local body = H.gcal_body()
      body.googleCalendar.googleToken = SLASHED
      local invalid = H.gcal_body()
      invalid.googleCalendar.googleToken = H.GOOGLE_TOKEN
      invalid.userId = "not a uuid"
      local printed = {}
      local real = io.stderr
      io.stderr = { write = function(_, ...) -- luacheck: ignore 122
        for _, x in ipairs { ... } do printed[#printed + 1] = tostring(x) end
      end }
      local client = H.client()
      local ok, results = pcall(client.batch, { { "gcal", H.UUID, body }, { "gcal", H.UUID, invalid } }, {
        on_progress = function(done)
          error(("progress %d: %s %s %s %s"):format(done, SLASHED, json_slash(SLASHED), percent(H.GOOGLE_TOKEN), TOKEN))
        end,
      })
      io.stderr = real -- luacheck: ignore 122
      client:close()
      assert(ok, results)
      assert.is_table(results[1].res)
      assert.equals("validation", results[2].err.kind)
      printed = table.concat(printed)
      assert.truthy(printed:find("on_progress failed", 1, true), printed)
      assert.is_nil(leak(printed))
    end)
  end)

  describe("in on_progress failures about a result", function()
    it("are scrubbed of the secrets the result holds (a record's googleToken)", function()
      local body = H.gcal_body()
      body.googleCalendar.googleToken = SLASHED
      local id = S.put_record("function", body)
      local printed = {}
      local real = io.stderr
      io.stderr = { write = function(_, ...) -- luacheck: ignore 122
        for _, x in ipairs { ... } do printed[#printed + 1] = tostring(x) end
      end }
      local client = H.client()
      local ok, results = pcall(client.batch, { { "gcal.get", id } }, {
        on_progress = function(_, _, _, result)
          error("got " .. percent(result.res.googleCalendarPlugin[1].googleToken))
        end,
      })
      io.stderr = real -- luacheck: ignore 122
      client:close()
      assert(ok, results)
      assert.equals(SLASHED, results[1].res.googleCalendarPlugin[1].googleToken) -- the caller's own data
      printed = table.concat(printed)
      assert.truthy(printed:find("on_progress failed", 1, true), printed)
      assert.is_nil(leak(printed))
    end)
  end)

  describe("and proxies", function()
    -- item 11: a plain http:// loopback base_url never goes through a proxy
    local function proxy_url() return "http://127.0.0.1:" .. H.closed_port() end

    it("a proxy option is not used for a loopback base_url (http and https)", function()
      for _, opts in ipairs {
        { base_url = H.env.http_url },
        { base_url = H.env.tls_url, ca_file = H.env.ca_file },
        { base_url = H.env.http_url:gsub("127%.0%.0%.1", "localhost") },
      } do
        opts.proxy = proxy_url() -- nothing listens there: a proxied call fails
        local client = H.client(opts)
        local res, err = H.gcal(client)
        client:close()
        assert.is_nil(err, tostring(err) .. " (" .. opts.base_url .. ")")
        assert.is_table(res)
      end
    end)

    it("the proxy option still applies to other hosts", function()
      local port = H.closed_port()
      local client = H.client { base_url = "https://toolzz.invalid", proxy = "http://127.0.0.1:" .. port }
      local _, err = H.gcal(client)
      client:close()
      assert.equals("network", err.kind)
      assert.truthy(err.message:find(tostring(port), 1, true), "the proxy was tried: " .. tostring(err))
    end)

    it("http_proxy and HTTPS_PROXY from the environment are not used for a loopback base_url", function()
      local interpreter = H.flavour
      local code = "package.path = 'spec/?.lua;' .. package.path; local H = require 'helpers'; "
        .. "local c = H.client(); local res, err = H.gcal(c); io.write(res and 'ok' or tostring(err))"
      local p = "http://127.0.0.1:" .. H.closed_port()
      local pipe = assert(io.popen("http_proxy=" .. p .. " HTTPS_PROXY=" .. p .. " ALL_PROXY=" .. p
        .. " no_proxy= NO_PROXY= " .. interpreter .. " -e \"" .. code .. "\" 2>&1"))
      local out = pipe:read("*a")
      pipe:close()
      assert.equals("ok", out)
    end)
  end)

  describe("and plain http", function()
    -- item 12: only real loopback addresses may be spoken to in clear
    local toolzz = require "toolzz"
    for _, url in ipairs {
      "http://127.0.0.300", "http://127.999.999.999", "http://127.0.0.256:8080", "http://127.1",
      "http://127.0.0.01", "http://127.00.0.1", "http://0127.0.0.1", "http://127.0.0.1.nip.io",
      "http://127.0.0.1.", "http://[::2]", "http://[0:0:0:0:0:0:0:2]", "http://localhost.example.com",
    } do
      it("is refused to " .. url, function()
        for _, option in ipairs { "base_url", "converflow_url" } do
          local client, err = toolzz.new { token = TOKEN, [option] = url }
          assert.is_nil(client, option .. " " .. url .. " was accepted")
          assert.equals("config", err.kind)
          assert.truthy(err.message:find("loopback", 1, true), tostring(err))
        end
      end)
    end
    for _, url in ipairs { "http://127.0.0.1", "http://127.255.255.255:8080", "http://127.0.0.0",
                           "http://LOCALHOST:1", "http://[::1]:8080", "http://127.10.200.3/api" } do
      it("is allowed to " .. url, function()
        local client, err = toolzz.new { token = TOKEN, base_url = url }
        assert.is_nil(err)
        client:close()
      end)
    end
  end)
end)

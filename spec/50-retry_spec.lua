-- Contract "Retries": what is retried, how long it waits, what comes back.
local H = require "helpers"
local retry = require "toolzz.retry"

local S = H.stand_in

local recording_client = H.recording_client

local function update(client)
  return client.calcom.update(H.UUID, H.calcom_body())
end

describe("retries", function()
  before_each(function() S.reset() end)

  it("retries a 503 and succeeds on the second attempt", function()
    S.faults { { status = 503, headers = { ["Retry-After"] = "0" } } }
    local client, starts = recording_client()
    local res, err = update(client)
    assert.is_nil(err)
    assert.equals(H.UUID, res.id)
    assert.equals(2, #starts)
    assert.equals(2, S.stats().requests)
  end)

  for _, status in ipairs { 408, 425, 429, 500, 502, 503, 504 } do
    it("retries HTTP " .. status, function()
      S.faults { { status = status, headers = { ["Retry-After"] = "0" } } }
      local client, starts = recording_client()
      local res, err = update(client)
      assert.is_nil(err)
      assert.is_table(res)
      assert.equals(2, #starts)
    end)
  end

  for _, status in ipairs { 400, 401, 403, 404, 409, 422 } do
    it("never retries HTTP " .. status, function()
      S.faults { { status = status, headers = { ["Retry-After"] = "0" } } }
      local client, starts = recording_client { retries = 3 }
      local res, err = update(client)
      assert.is_nil(res)
      assert.equals("http", err.kind)
      assert.equals(status, err.status)
      assert.equals(1, err.attempts)
      assert.equals(1, #starts)
      assert.equals(1, S.stats().requests)
    end)
  end

  it("waits as long as Retry-After: 1 asks", function()
    S.faults { { status = 429, headers = { ["Retry-After"] = "1" } } }
    local client, starts = recording_client()
    local _, err = update(client)
    assert.is_nil(err)
    assert.equals(2, #starts)
    local gap = starts[2].at - starts[1].at
    assert.is_true(gap >= 1.0, "second attempt only " .. gap .. " s later")
    assert.is_true(gap < 2.5, "second attempt " .. gap .. " s later")
  end)

  it("honours Retry-After given as an HTTP date", function()
    local at = os.time() + 2
    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", at)
    S.faults { { status = 503, headers = { ["Retry-After"] = date } } }
    local client, starts = recording_client()
    local _, err = update(client)
    assert.is_nil(err)
    local gap = starts[2].at - starts[1].at
    assert.is_true(gap >= 0.9 and gap <= 3.0, "waited " .. gap .. " s for " .. date)
  end)

  it("ends the call when Retry-After asks for more than 60 s", function()
    S.faults { { status = 429, headers = { ["Retry-After"] = "120" } } }
    local client, starts = recording_client()
    local t0 = H.now()
    local res, err = update(client)
    assert.is_nil(res)
    assert.equals(429, err.status)
    assert.equals(120, err.retry_after)
    assert.equals(1, err.attempts)
    assert.equals(1, #starts)
    assert.is_true(H.now() - t0 < 1)
    assert.matches("retry after 120", tostring(err), 1, true)
  end)

  it("returns the last error with attempts = retries + 1 when every attempt fails", function()
    S.faults {
      { status = 503, headers = { ["Retry-After"] = "0" } },
      { status = 500, headers = { ["Retry-After"] = "0" } },
      { status = 502, body = '{"message":"last one"}', headers = { ["Retry-After"] = "0" } },
    }
    local client, starts = recording_client { retries = 2 }
    local res, err = update(client)
    assert.is_nil(res)
    assert.equals(502, err.status)
    assert.equals("last one", err.message)
    assert.equals(3, err.attempts)
    assert.equals(3, #starts)
  end)

  it("retries = 0 makes one attempt", function()
    S.faults { { status = 503, headers = { ["Retry-After"] = "0" } } }
    local client, starts = recording_client { retries = 0 }
    local _, err = update(client)
    assert.equals(503, err.status)
    assert.equals(1, err.attempts)
    assert.equals(1, #starts)
  end)

  it("retries a connection dropped before the answer", function()
    S.faults { { drop = true } }
    local client, starts = recording_client()
    local res, err = update(client)
    assert.is_nil(err)
    assert.is_table(res)
    assert.equals(2, #starts)
  end)

  it("retries a connection dropped mid-response (truncated body)", function()
    S.faults { { raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":" } }
    local client, starts = recording_client()
    local res, err = update(client)
    assert.is_nil(err)
    assert.is_table(res)
    assert.equals(2, #starts)
  end)

  for what, raw in pairs {
    ["a truncated body"] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":",
    ["a garbage status line"] = "SMTP READY\r\n\r\n",
  } do
    it("reports " .. what .. " as a network error", function()
      S.faults { { raw = raw } }
      local client = recording_client { retries = 0 }
      local _, err = update(client)
      assert.equals("network", err.kind)
    end)
  end

  it("reports oversized response headers as a limit error, not retried", function()
    S.faults { { header_bytes = 100000 } }
    local client, starts = recording_client { retries = 2 }
    local _, err = update(client)
    assert.equals("limit", err.kind)
    assert.equals(1, #starts)
  end)

  it("retries a stalled server and ends with timeout after the last attempt", function()
    S.faults { { stall = 3 }, { stall = 3 } }
    local client, starts = recording_client { retries = 1, timeout = 0.5 }
    local res, err = update(client)
    assert.is_nil(res)
    assert.equals("timeout", err.kind)
    assert.equals(2, err.attempts)
    assert.equals(2, #starts)
  end)

  it("does not retry a decode error", function()
    S.faults { { status = 200, body = "<html>oops</html>", content_type = "text/html" } }
    local client, starts = recording_client()
    local _, err = update(client)
    assert.equals("decode", err.kind)
    assert.equals(1, #starts)
  end)

  it("does not retry a TLS failure", function()
    local client, starts = recording_client { base_url = H.env.tls_bad_url, ca_file = H.env.ca_file }
    local _, err = update(client)
    assert.equals("tls", err.kind)
    assert.equals(1, err.attempts)
    assert.equals(1, #starts)
  end)

  it("retries a refused connection as a network error", function()
    local client, starts = recording_client { base_url = "http://127.0.0.1:" .. H.closed_port(), retries = 1 }
    local _, err = update(client)
    assert.equals("network", err.kind)
    assert.equals(2, err.attempts)
    assert.equals(2, #starts)
  end)
end)

describe("retry policy", function()
  it("has exactly the contract's retryable statuses", function()
    for status = 100, 599 do
      local expected = ({ [408] = true, [425] = true, [429] = true, [500] = true,
                          [502] = true, [503] = true, [504] = true })[status] == true
      assert.equals(expected, retry.retryable { kind = "http", status = status }, "status " .. status)
    end
    assert.is_true(retry.retryable { kind = "network" })
    assert.is_true(retry.retryable { kind = "timeout" })
    for _, kind in ipairs { "tls", "decode", "limit", "validation", "config" } do
      assert.is_false(retry.retryable { kind = kind }, kind)
    end
  end)

  it("backs off exponentially with full jitter, base 0.5 s, cap 8 s", function()
    local function top() return 0.999999 end
    local function bottom() return 0 end
    local expected = { 0.5, 1, 2, 4, 8, 8, 8 }
    for attempt, ceiling in ipairs(expected) do
      assert.is_true(math.abs(retry.backoff(attempt, top) - ceiling) < 1e-4, "attempt " .. attempt)
      assert.equals(0, retry.backoff(attempt, bottom))
    end
    for _ = 1, 200 do
      local d = retry.backoff(3)
      assert.is_true(d >= 0 and d < 2)
    end
  end)

  it("parses Retry-After seconds and the three HTTP date forms", function()
    assert.equals(7, retry.parse_retry_after("7"))
    assert.equals(0, retry.parse_retry_after(" 0 "))
    local now = retry.epoch_utc(1994, 11, 6, 8, 49, 30)
    assert.equals(784111777, retry.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equals(784111777, retry.parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equals(784111777, retry.parse_http_date("Sun Nov  6 08:49:37 1994"))
    assert.equals(7, retry.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now))
    assert.equals(0, retry.parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now))
    assert.is_nil(retry.parse_retry_after("soon"))
    assert.is_nil(retry.parse_retry_after("-5"))
  end)

  it("waits what Retry-After asks up to 60 s and refuses more", function()
    assert.equals(60, retry.delay(1, 60))
    assert.is_nil(retry.delay(1, 61))
    assert.equals(3, retry.delay(5, 3))
  end)
end)

describe("hostile responses on a reused connection", function()
  before_each(function() S.reset() end)

  it("a folded first header after a normal call is a network error, not a crash (libcurl < 8.1 bug)", function()
    local client = H.client { retries = 0 }
    assert(client.calcom.update(H.UUID, H.calcom_body()))
    S.faults { { raw = "HTTP/1.1 200 OK\r\n X-Folded: y\r\nContent-Length: 2\r\n\r\n{}" } }
    local res, err = client.calcom.update(H.UUID, H.calcom_body())
    if res then
      assert.is_table(res) -- a libcurl that unfolds the line is fine too
    else
      assert.equals("network", err.kind)
    end
    assert.is_table((client.calcom.update(H.UUID, H.calcom_body())))
  end)
end)

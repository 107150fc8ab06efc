-- client.batch: many updates concurrently over one curl multi handle.
local H = require "helpers"
local S = H.stand_in

local function requests(n, over)
  local list = {}
  for i = 1, n do
    if i % 2 == 1 then
      list[i] = { "calcom", H.UUID, H.calcom_body(over and over(i)) }
    else
      list[i] = { "gcal", H.UUID, H.gcal_body(over and over(i)) }
    end
  end
  return list
end

describe("batch", function()
  before_each(function() S.reset() end)

  it("returns results in input order; a bad item never spoils the others", function()
    local client = H.client()
    local list = requests(12, function(i)
      if i % 2 == 1 then return { title = "item " .. i } end
      return { name = "item " .. i }
    end)
    list[3] = { "calcom", "../etc", H.calcom_body() }
    list[4] = { "gcal", H.UUID, H.gcal_body { type = "calendar" } }
    list[5] = { "slack", H.UUID, {} }
    list[6] = "not a table"
    list[7] = { "calcom", "00000000-0000-0000-0000-000000000000", H.calcom_body() } -- 404 at the server
    local results = assert(client.batch(list))
    assert.equals(12, #results)
    for i, r in ipairs(results) do
      if i == 3 or i == 4 or i == 5 or i == 6 then
        assert.equals("validation", r.err.kind, "item " .. i)
        assert.is_nil(r.res)
      elseif i == 7 then
        assert.equals("http", r.err.kind)
        assert.equals(404, r.err.status)
      else
        assert.is_nil(r.err, "item " .. i)
        assert.equals(i % 2 == 1 and ("item " .. i) or nil, r.res.title)
        assert.equals(i % 2 == 0 and ("item " .. i) or nil, r.res.name)
      end
    end
    assert.equals(8, S.stats().requests) -- the 4 invalid items sent nothing
  end)

  it("retries each item like a single call, with hooks per attempt", function()
    local attempts = {}
    local client = H.client {
      retries = 2,
      on_response = function(info) attempts[#attempts + 1] = info.status end,
    }
    S.faults {
      { status = 503, headers = { ["Retry-After"] = "0" } },
      { status = 429, headers = { ["Retry-After"] = "0" } },
    }
    local results = assert(client.batch(requests(6), { concurrency = 2 }))
    for i, r in ipairs(results) do assert.is_nil(r.err, "item " .. i) end
    assert.equals(8, #attempts)
    assert.equals(8, S.stats().requests)
  end)

  it("gives each failing item its own last error with attempts", function()
    local client = H.client { retries = 1 }
    S.faults {
      { status = 500, headers = { ["Retry-After"] = "0" } },
      { status = 500, headers = { ["Retry-After"] = "0" } },
    }
    local results = assert(client.batch(requests(1)))
    assert.equals(500, results[1].err.status)
    assert.equals(2, results[1].err.attempts)
  end)

  it("calls on_progress once per item with a growing count", function()
    local client = H.client()
    local calls = {}
    local list = requests(10)
    list[2] = { "gcal", "bad", {} }
    client.batch(list, { concurrency = 3, on_progress = function(done, total)
      calls[#calls + 1] = { done, total }
    end })
    assert.equals(10, #calls)
    for i, c in ipairs(calls) do
      assert.same({ i, 10 }, c)
    end
  end)

  it("runs concurrently: 16 answers of 200 ms at concurrency 8 take about 2 rounds", function()
    local client = H.client { base_url = H.env.http_url .. "/delay/200" }
    local t0 = H.now()
    local results = assert(client.batch(requests(16), { concurrency = 8 }))
    local elapsed = H.now() - t0
    for _, r in ipairs(results) do assert.is_nil(r.err) end
    assert.is_true(elapsed >= 0.39 and elapsed < 1.2, "took " .. elapsed .. " s")
    t0 = H.now()
    client.batch(requests(4), { concurrency = 1 })
    local sequential = H.now() - t0
    assert.is_true(sequential >= 0.79, "concurrency 1 took " .. sequential .. " s")
  end)

  it("reuses connections across calls and batches", function()
    local client = H.client()
    assert(client.batch(requests(8), { concurrency = 4 }))
    assert(client.calcom.update(H.UUID, H.calcom_body()))
    assert(client.batch(requests(8), { concurrency = 4 }))
    local stats = S.stats()
    assert.equals(17, stats.requests)
    assert.is_true(stats.connections <= 4, stats.connections .. " connections")
  end)

  it("multiplexes a batch over one HTTP/2 connection over TLS", function()
    if not require("toolzz.core").curl_http2 then
      pending("libcurl without HTTP/2")
      return
    end
    local client = H.client { base_url = H.env.tls_url, ca_file = H.env.ca_file }
    assert(client.calcom.update(H.UUID, H.calcom_body())) -- the connection exists first
    local results = assert(client.batch(requests(20), { concurrency = 8 }))
    for _, r in ipairs(results) do assert.is_nil(r.err) end
    assert.equals("2.0", S.last().http_version)
    assert.equals(1, S.stats().connections)
  end)

  it("refuses bad options and a non-list with an error, not a raise", function()
    local client = H.client()
    for _, opts in ipairs { { concurrency = 0 }, { concurrency = 1.5 }, { concurrency = 1000 },
                            { on_progress = 1 }, { typo = true }, "x" } do
      local ok, res, err = pcall(client.batch, requests(1), opts)
      assert.is_true(ok)
      assert.is_nil(res)
      assert.equals("config", err.kind)
    end
    local _, err = client.batch("nope")
    assert.equals("validation", err.kind)
    assert.same({}, assert(client.batch({})))
  end)

  it("works with the colon form too", function()
    local client = H.client()
    local results = assert(client:batch(requests(2)))
    assert.equals(2, #results)
    assert.is_table(results[2].res)
  end)
end)

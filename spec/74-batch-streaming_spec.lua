-- client.batch hands each result over as it ends and can keep none
-- (on_result, keep_results = false: issue 16 item 7, `toolzz batch` held
-- every result), and can be told to stop (should_stop: item 2, an
-- interrupted batch must report every write it made). Against the stand-in;
-- the last part runs the same inside nginx (cosockets).
local H = require "helpers"
local S = H.stand_in

local NIL_UUID = "00000000-0000-0000-0000-000000000000"
-- what the items a stop ends say (README "Batch")
local drive = {
  NOT_STARTED = "not started: the batch was stopped",
  NOT_WRITTEN = "not written: the batch was stopped after this patch's read",
  CANCELLED = "cancelled: the batch was stopped while this read was in flight (nothing was written)",
}

-- Live Lua heap, KiB, after full collections.
local function heap_kib()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

-- Run fn with stderr captured: what fn returned (two values), and the text.
local function capture_stderr(fn)
  local printed = {}
  local real = io.stderr
  io.stderr = { write = function(_, ...) -- luacheck: ignore 122
    for _, s in ipairs { ... } do printed[#printed + 1] = tostring(s) end
  end }
  local ok, a, b = pcall(fn)
  io.stderr = real -- luacheck: ignore 122
  assert(ok, a)
  return a, b, table.concat(printed)
end

local function gets(n, id)
  local list = {}
  for i = 1, n do list[i] = { "gcal.get", id } end
  return list
end

describe("a batch's results as they end (on_result, keep_results)", function()
  before_each(function() S.reset() end)

  it("hands every item's result to on_result exactly once; keep_results = false keeps none and returns counts", function()
    local id = S.put_record("function", H.gcal_body())
    local list = gets(18, id)
    list[19] = { "gcal.get", NIL_UUID } -- 404
    list[20] = { "gcal.get", "not-a-uuid" } -- validation, before anything is sent
    local seen, calls = setmetatable({}, { __mode = "k" }), {}
    local client = H.client()
    local counts = assert(client.batch(list, {
      concurrency = 4, keep_results = false,
      on_result = function(i, result)
        calls[i] = (calls[i] or 0) + 1
        seen[result] = i
        if i <= 18 then
          assert.equals(id, result.res.id)
        elseif i == 19 then
          assert.equals(404, result.err.status)
        else
          assert.equals("validation", result.err.kind)
        end
      end,
    }))
    client:close()
    for i = 1, 20 do assert.equals(1, calls[i], "on_result calls for item " .. i) end
    assert.same({ total = 20, ok = 18, failed = 2, stopped = 0 }, counts)
    heap_kib()
    assert.is_nil(next(seen), "a result handed to on_result is still held after the batch returned")
  end)

  it("keeps the default: results in input order, the same tables on_result was given", function()
    local id = S.put_record("function", H.gcal_body())
    local given = {}
    local client = H.client()
    local results = assert(client.batch(gets(10, id), {
      concurrency = 3, on_result = function(i, result) given[i] = result end,
    }))
    client:close()
    assert.equals(10, #results)
    for i = 1, 10 do
      assert.equals(given[i], results[i], "item " .. i)
      assert.equals(id, results[i].res.id)
    end
  end)

  it("holds no result after on_result: the live heap does not grow with the items (8,000 against 2,000)", function()
    local id = S.put_record("function", H.gcal_body())
    local client = H.client { base_url = H.env.http_url .. "/static" }
    -- the most the live heap held while the batch ran (sampled every 500
    -- results), over what it held before
    local function peak_growth(n, keep)
      local list = gets(n, id)
      local base, peak, ended = heap_kib(), 0, 0
      assert(client.batch(list, {
        concurrency = 8, keep_results = keep,
        on_result = function(_, result)
          assert.is_table(result.res)
          ended = ended + 1
          if ended % 500 == 0 then
            local kib = heap_kib()
            if kib > peak then peak = kib end
          end
        end,
      }))
      return peak - base
    end
    local streamed = (peak_growth(8000, false) - peak_growth(2000, false)) / 6000
    local kept = (peak_growth(8000, true) - peak_growth(2000, true)) / 6000
    client:close()
    print(("\n    live heap per item: %.3f KiB streamed, %.3f KiB kept"):format(streamed, kept))
    assert.truthy(kept > 1, ("kept results cost only %.3f KiB each: this test could not fail"):format(kept))
    -- what is left per item: its five slots in the queue (an array that grows by doubling)
    assert.truthy(streamed < 0.2, ("streamed results grow the live heap by %.3f KiB per item"):format(streamed))
  end)

  it("refuses bad values of the new options with a config error", function()
    local client = H.client()
    for _, opts in ipairs {
      { keep_results = "no" }, { keep_results = 0 }, { on_result = true }, { should_stop = {} },
    } do
      local results, err = client.batch({ { "gcal.get", H.UUID } }, opts)
      assert.is_nil(results)
      assert.equals("config", err.kind)
    end
    client:close()
    assert.equals(0, S.stats().requests)
  end)
end)

describe("a batch told to stop (should_stop)", function()
  before_each(function() S.reset() end)

  it("starts nothing when should_stop is true from the start; every valid item ends 'not started'", function()
    local list = gets(5, H.UUID)
    list[3] = { "gcal.get", "bad" }
    local client = H.client()
    local results = assert(client.batch(list, { should_stop = function() return true end }))
    client:close()
    assert.equals("validation", results[3].err.kind)
    for _, i in ipairs { 1, 2, 4, 5 } do
      local err = results[i].err
      assert.equals("config", err.kind, "item " .. i)
      assert.is_true(err.stopped, "item " .. i)
      assert.equals(drive.NOT_STARTED, err.message)
      assert.equals("gcal.get", err.op)
    end
    assert.equals(0, S.stats().requests)
  end)

  it("lets the writes in flight finish and report, and starts no new item", function()
    local announced, ended = 0, {}
    local client = H.client {
      base_url = H.env.http_url .. "/delay/300",
      on_request = function() announced = announced + 1 end,
    }
    local list = {}
    for i = 1, 10 do list[i] = { "gcal.update", H.UUID, H.gcal_body { name = "item " .. i } } end
    local t0 = H.now()
    local counts = assert(client.batch(list, {
      concurrency = 4, keep_results = false,
      should_stop = function() return announced >= 4 end,
      on_result = function(i, result) ended[i] = result end,
    }))
    local elapsed = H.now() - t0
    client:close()
    assert.same({ total = 10, ok = 4, failed = 6, stopped = 6 }, counts)
    for i = 1, 4 do
      assert.is_nil(ended[i].err, "item " .. i)
      assert.equals("item " .. i, ended[i].res.name)
    end
    for i = 5, 10 do assert.equals(drive.NOT_STARTED, ended[i].err.message, "item " .. i) end
    assert.equals(4, S.writes()) -- every write the server got is a result with its outcome
    assert.truthy(elapsed >= 0.28, ("the batch returned in %.2f s, before its writes were answered"):format(elapsed))
  end)

  for _, scheme in ipairs { "http", "tls" } do
    it("cancels the reads in flight at once (nothing was written) over libcurl, " .. scheme, function()
      local client = H.client {
        base_url = (scheme == "tls" and H.env.tls_url or H.env.http_url) .. "/delay/3000",
        ca_file = scheme == "tls" and H.env.ca_file or nil, timeout = 10,
      }
      local t0 = H.now()
      local results = assert(client.batch(gets(8, H.UUID), {
        concurrency = 4, should_stop = function() return H.now() - t0 > 0.3 end,
      }))
      local elapsed = H.now() - t0
      -- the client goes on working after the cancel (an HTTP/2 stream reset, or a connection closed)
      local res, err = client.gcal.update(H.UUID, H.gcal_body())
      client:close()
      assert.is_table(res, tostring(err))
      -- (the stop comes at 0.3 s and is seen within 0.1 s)
      assert.truthy(elapsed < 0.95, ("the stopped batch took %.2f s: its reads were waited for"):format(elapsed))
      for i = 1, 8 do
        local e = results[i].err
        assert.is_true(e.stopped, "item " .. i)
        assert.equals(i <= 4 and drive.CANCELLED or drive.NOT_STARTED, e.message, "item " .. i)
      end
      assert.equals(1, S.writes())
    end)
  end

  it("reports the writes made behind a slow earlier item as they end, then stops at once (the issue's case)", function()
    -- line 2 is slow (a Cal.com read, 5 s), lines 3-6 are patches; the stop
    -- comes (from outside) after 1 s
    local ids = {}
    for i = 3, 6 do ids[i] = S.put_record("function", H.gcal_body()) end
    local client = H.client { converflow_url = H.env.cf_http_url .. "/delay/5000", timeout = 10 }
    local list = { { "gcal.get", ids[3] }, { "calcom.get", H.UUID } }
    for i = 3, 6 do list[i] = { "gcal.patch", ids[i], { name = "patched " .. i } } end
    local ended, ended_at = {}, {}
    local t0 = H.now()
    local counts = assert(client.batch(list, {
      keep_results = false,
      on_result = function(i, result) ended[i], ended_at[i] = result, H.now() - t0 end,
      should_stop = function() return H.now() - t0 > 1 end,
    }))
    local elapsed = H.now() - t0
    client:close()
    for i = 3, 6 do
      assert.equals("patched " .. i, ended[i].res.name, "item " .. i)
      assert.truthy(ended_at[i] < 1, ("patch %d was handed over at %.2f s, after the stop"):format(i, ended_at[i]))
    end
    assert.equals(drive.CANCELLED, ended[2].err.message)
    assert.same({ total = 6, ok = 5, failed = 1, stopped = 1 }, counts)
    assert.equals(4, S.writes())
    assert.truthy(elapsed < 1.6, ("the stopped batch took %.2f s"):format(elapsed))
  end)

  it("ends a patch whose GET was answered 'not written', sending no PUT", function()
    local id = S.put_record("function", H.gcal_body())
    local read = false
    local client = H.client { on_response = function(info) if info.method == "GET" then read = true end end }
    local results = assert(client.batch({ { "gcal.patch", id, { name = "changed" } } }, {
      should_stop = function() return read end,
    }))
    client:close()
    local err = results[1].err
    assert.equals(drive.NOT_WRITTEN, err.message)
    assert.equals("update", err.step)
    assert.equals("gcal.patch", err.op)
    assert.is_true(err.stopped)
    assert.same({ 1, 0 }, { S.stats().requests, S.writes() })
  end)

  it("ends an item waiting to retry with its last attempt's error, without waiting out the delay", function()
    -- told to retry in 3 s; the stop comes (from outside, as a signal
    -- would) 0.3 s later, while nothing is in flight to wake the batch
    S.faults { { status = 503, headers = { ["Retry-After"] = "3" } } }
    local client = H.client { retries = 2 }
    local t0 = H.now()
    local results = assert(client.batch({ { "gcal.get", H.UUID } }, {
      should_stop = function() return H.now() - t0 > 0.3 end,
    }))
    local elapsed = H.now() - t0
    client:close()
    local err = results[1].err
    assert.equals("http", err.kind)
    assert.equals(503, err.status)
    assert.is_nil(err.stopped)
    assert.equals(1, S.stats().requests)
    assert.truthy(elapsed < 0.95, ("the stopped batch waited %.2f s for a retry"):format(elapsed))
  end)

  it("takes a should_stop that raises as a stop, with a warning scrubbed of secrets", function()
    local client = H.client()
    local results, _, printed = capture_stderr(function()
      return client.batch(gets(3, H.UUID), { should_stop = function() error("no: " .. H.env.token) end })
    end)
    client:close()
    assert.is_table(results)
    for i = 1, 3 do assert.equals(drive.NOT_STARTED, results[i].err.message) end
    assert.matches("should_stop failed", printed, 1, true)
    assert.is_nil(printed:find(H.env.token, 1, true), "the token was printed: " .. printed)
    assert.equals(0, S.stats().requests)
  end)
end)

describe("inside nginx: on_result, keep_results and should_stop #no_valgrind", function()
  local R = require "openresty.harness"
  local gateway

  lazy_setup(function() gateway = R.start_gateway() end)
  lazy_teardown(R.stop_gateway)

  before_each(function() S.reset() end)

  local function options()
    return { base_url = H.env.http_url, converflow_url = H.env.cf_http_url, retries = 0, timeout = 5 }
  end

  it("streams each result once through cosockets and keeps none (keep_results = false)", function()
    local id = S.put_record("function", H.gcal_body())
    local items = {}
    for i = 1, 12 do items[i] = { op = "gcal.get", args = { id } } end
    items[7] = { op = "gcal.get", args = { NIL_UUID } }
    local answer = R.post(gateway, "/batch", { items = items, concurrency = 4, keep_results = false,
                                              options = options() })
    assert.equals("ngx", answer.transport)
    assert.same({ total = 12, ok = 11, failed = 1, stopped = 0 }, answer.counts)
    local calls = {}
    for _, s in ipairs(answer.streamed) do calls[s.index] = (calls[s.index] or 0) + 1 end
    for i = 1, 12 do assert.equals(1, calls[i], "on_result calls for item " .. i) end
  end)

  it("starts no new item once should_stop answers true; the rest end 'not started'", function()
    local items = {}
    for i = 1, 6 do items[i] = { op = "gcal.update", args = { H.UUID, H.gcal_body { name = "n" .. i } } } end
    local answer = R.post(gateway, "/batch", { items = items, concurrency = 1, stop_after = 2,
                                              options = options() })
    assert.equals("ngx", answer.transport)
    for i = 1, 6 do
      local r = answer.results[i]
      if i <= 2 then
        assert.is_true(r.ok, "item " .. i)
      else
        assert.equals(drive.NOT_STARTED, r.error.message, "item " .. i)
        assert.is_true(r.error.stopped, "item " .. i)
      end
    end
    assert.equals(6, #answer.streamed)
    assert.equals(2, S.writes())
  end)

  it("ends a patch whose GET was answered 'not written', sending no PUT", function()
    local id = S.put_record("function", H.gcal_body())
    local answer = R.post(gateway, "/batch", { items = { { op = "gcal.patch", args = { id, { name = "x" } } } },
                                              stop_after_read = true, options = options() })
    assert.equals("ngx", answer.transport)
    local err = answer.results[1].error
    assert.equals(drive.NOT_WRITTEN, err.message)
    assert.equals("update", err.step)
    assert.is_true(err.stopped)
    assert.same({ 1, 0 }, { S.stats().requests, S.writes() })
  end)

  it("ends an item waiting to retry with its last attempt's error, without waiting out the delay", function()
    -- as over libcurl: one GET sleeps before its retry when the stop comes
    S.faults { { status = 503, headers = { ["Retry-After"] = "3" } }, { delay = 0.3 } }
    local o = options()
    o.retries = 2
    local answer = R.post(gateway, "/batch", {
      items = { { op = "gcal.get", args = { H.UUID } }, { op = "gcal.get", args = { H.UUID } } },
      concurrency = 2, stop_after = 1, options = o,
    })
    assert.equals("ngx", answer.transport)
    local err = answer.results[1].error or answer.results[2].error
    assert.equals(503, err.status)
    assert.is_nil(err.stopped)
    assert.equals(2, S.stats().requests)
    assert.truthy(answer.elapsed < 1.5, ("the stopped batch waited %.2f s for a retry"):format(answer.elapsed))
  end)
end)

-- A batch of patches writes as it reads (issue 16 item 6): a patch's PUT goes
-- ahead of the items not yet started (depth first), so each record's
-- read-to-write window is about one round trip, not the whole batch (0.2:
-- 400 patches at concurrency 8 were 400 GETs, then 400 PUTs). Checked from
-- the order the stand-in took the requests in (its journal), over libcurl
-- (plain HTTP/1.1 and TLS with HTTP/2) and inside nginx (cosockets).
local H = require "helpers"
local S = H.stand_in

local PATCHES, CONCURRENCY = 400, 8
-- How far (in requests the stand-in took) a PUT may come after its GET: the
-- other transfers in flight, and those started in their freed slots while
-- the GET's answer comes back, can be taken in between: about one round of
-- `concurrency` requests (the median), a few rounds at worst (seen: up to
-- 18 with HTTP/2, where the server takes the streams of a connection in
-- its own order). Breadth first, as in 0.2, the window was the whole batch.
local MEDIAN_WINDOW, MAX_WINDOW = 2 * CONCURRENCY, 4 * CONCURRENCY
-- The first PUT comes once the first GET is answered: before the second
-- round of GETs is through.
local FIRST_PUT_BY = 2 * CONCURRENCY + 1

-- Store `n` Google Calendar records; their ids.
local function records(n)
  local ids = {}
  for i = 1, n do ids[i] = S.put_record("function", H.gcal_body { name = "record " .. i }) end
  return ids
end

-- The journal as { method, id } in order, and each id's GET and PUT positions.
local function positions(journal)
  local get_at, put_at, first_put = {}, {}, nil
  for k, entry in ipairs(journal) do
    local method, id = entry:match("^(%u+) .*/([%x%-]+)$")
    assert(method == "GET" or method == "PUT", "unexpected request " .. entry)
    if method == "GET" then
      assert(not get_at[id], "two GETs of " .. id)
      get_at[id] = k
    else
      assert(not put_at[id], "two PUTs of " .. id)
      put_at[id] = k
      first_put = first_put or k
    end
  end
  return get_at, put_at, first_put
end

-- Check the order the stand-in took a batch of patches of ids in.
local function assert_depth_first(ids, where)
  local journal = S.journal()
  assert.equals(2 * #ids, #journal, where .. ": requests in the journal")
  local get_at, put_at, first_put = positions(journal)
  local windows = {}
  for k, id in ipairs(ids) do
    assert(get_at[id] and put_at[id], where .. ": " .. id .. " was not read and written")
    windows[k] = put_at[id] - get_at[id]
    assert.truthy(windows[k] > 0, where .. ": PUT before its GET for " .. id)
  end
  table.sort(windows)
  local median, widest = windows[math.floor(#windows / 2) + 1], windows[#windows]
  print(("\n    %s: first PUT is request %d; read-to-write window: median %d requests, widest %d")
    :format(where, first_put, median, widest))
  assert.truthy(first_put <= FIRST_PUT_BY,
    ("%s: the first PUT is request %d (want <= %d)"):format(where, first_put, FIRST_PUT_BY))
  assert.truthy(median <= MEDIAN_WINDOW,
    ("%s: half the PUTs came more than %d requests after their GET (want <= %d)"):format(where, median, MEDIAN_WINDOW))
  assert.truthy(widest <= MAX_WINDOW,
    ("%s: a PUT came %d requests after its GET (want <= %d)"):format(where, widest, MAX_WINDOW))
end

local function patch_list(ids)
  local list = {}
  for i, id in ipairs(ids) do list[i] = { "gcal.patch", id, { name = "patched " .. i } } end
  return list
end

describe("a batch of patches, depth first", function()
  before_each(function() S.reset() end)

  for _, scheme in ipairs { "http", "tls" } do
    it(("writes each record one round trip after reading it (libcurl, %s, %d patches at concurrency %d)")
      :format(scheme, PATCHES, CONCURRENCY), function()
      local ids = records(PATCHES)
      S.config { journal = true }
      local client = H.client(scheme == "tls" and { base_url = H.env.tls_url, ca_file = H.env.ca_file } or nil)
      local results = assert(client.batch(patch_list(ids), { concurrency = CONCURRENCY }))
      client:close()
      for i = 1, PATCHES do
        assert.is_nil(results[i].err, "item " .. i)
        assert.equals("patched " .. i, results[i].res.name)
      end
      assert_depth_first(ids, "libcurl " .. scheme)
    end)
  end
end)

describe("a batch of patches inside nginx, depth first #no_valgrind", function()
  local R = require "openresty.harness"
  local gateway

  lazy_setup(function() gateway = R.start_gateway() end)
  lazy_teardown(R.stop_gateway)

  before_each(function() S.reset() end)

  it(("writes each record one round trip after reading it (cosockets, %d patches at concurrency %d)")
    :format(PATCHES, CONCURRENCY), function()
    local ids = records(PATCHES)
    S.config { journal = true }
    local items = {}
    for i, id in ipairs(ids) do items[i] = { op = "gcal.patch", args = { id, { name = "patched " .. i } } } end
    local answer = R.post(gateway, "/batch", {
      items = items, concurrency = CONCURRENCY,
      options = { base_url = H.env.http_url, converflow_url = H.env.cf_http_url, retries = 0, timeout = 5 },
    })
    assert.equals("ngx", answer.transport)
    for i = 1, PATCHES do assert.is_true(answer.results[i].ok, "item " .. i) end
    assert_depth_first(ids, "cosockets")
  end)
end)

-- Concurrent transfers start concurrently (issue 16 item 5): one slow first
-- answer must not hold back the items beside it, over http:// (where
-- HTTP/2 is never tried) and over https:// to an HTTP/2 server and to an
-- HTTP/1.1-only one, with the default http2 = true.
-- Tagged no_valgrind: its time is the slow answer's wait (about 15 s a run); the same
-- transfers run under valgrind in specs 40, 70 and 73.
local H = require "helpers"
local S = H.stand_in

local SLOW = 3   -- seconds the first request to reach the stand-in waits
local FAST = 1.5 -- the other items must all be done by then

-- An nginx of its own that speaks TLS without HTTP/2 (no h2 in ALPN) and
-- passes every request to the stand-in's plain HTTP port, so faults and
-- counts stay the stand-in's. Returns its https URL and a function that
-- stops it.
local function start_tls_http1_proxy()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "/tmp'"))
  local certs = H.env.ca_file:match("^(.*)/[^/]*$")
  local port = H.closed_port()
  local upstream = H.env.http_url:match("^http://([^/]+)")
  local conf = ([[
%s
daemon on;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/server.pem;
        ssl_certificate_key %s/server.key;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 30s;
        }
    }
}
]]):format(io.popen("id -u"):read("*l") == "0" and "user root root;" or "",
           dir, dir, dir, dir, dir, dir, dir, port, certs, certs, upstream)
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local nginx = os.getenv("NGINX") or "nginx"
  local cmd = ("%s -p '%s' -c '%s/nginx.conf' -e '%s/error.log' >/dev/null 2>&1"):format(nginx, dir, dir, dir)
  local ok = os.execute(cmd)
  assert(ok == true or ok == 0, "nginx did not start: " .. cmd)
  local socket = require "socket"
  for _ = 1, 50 do -- up to 5 s for the port to listen
    local c = socket.tcp()
    c:settimeout(0.1)
    local up = c:connect("127.0.0.1", port)
    c:close()
    if up then break end
    socket.sleep(0.1)
  end
  return "https://localhost:" .. port, function()
    os.execute(("%s -p '%s' -c '%s/nginx.conf' -e '%s/error.log' -s stop >/dev/null 2>&1")
      :format(nginx, dir, dir, dir))
    os.execute("sleep 0.2; rm -rf '" .. dir .. "'")
  end
end

-- A batch of 9 updates at concurrency 8 whose first request to arrive answers
-- after SLOW seconds. Returns each item's finish time (seconds from the
-- start, sorted) and the results.
local function batch_with_one_slow(opts)
  S.reset()
  S.faults { { delay = SLOW } }
  local client = H.client(opts)
  local list = {}
  for i = 1, 9 do list[i] = { "gcal", H.UUID, H.gcal_body { name = "item " .. i } } end
  local started, times = H.now(), {}
  local results = assert(client.batch(list, {
    concurrency = 8,
    on_progress = function() times[#times + 1] = H.now() - started end,
  }))
  client:close()
  table.sort(times)
  return times, results
end

local function assert_not_held_back(times, results)
  for i, r in ipairs(results) do assert.is_nil(r.err, "item " .. i .. ": " .. tostring(r.err)) end
  assert.equals(9, #times)
  assert.is_true(times[9] >= SLOW - 0.05, ("the slow item took %.2f s"):format(times[9]))
  assert.is_true(times[8] < FAST,
    ("the 8 instant items were done only after %.2f s (the slow one: %.2f s)"):format(times[8], times[9]))
  assert.equals(9, S.stats().requests)
end

describe("one slow answer does not hold back the batch #no_valgrind", function()
  it("over http:// with http2 = true (the default)", function()
    local times, results = batch_with_one_slow()
    assert_not_held_back(times, results)
  end)

  it("over http:// with http2 = false", function()
    local times, results = batch_with_one_slow { http2 = false }
    assert_not_held_back(times, results)
  end)

  it("over https:// to an HTTP/2 server, still on one connection", function()
    if not require("toolzz.core").curl_http2 then pending("libcurl without HTTP/2") return end
    local times, results = batch_with_one_slow { base_url = H.env.tls_url, ca_file = H.env.ca_file }
    assert_not_held_back(times, results)
    assert.equals(1, S.stats().connections)
    assert.equals("2.0", S.last().http_version)
  end)

  describe("over https:// to an HTTP/1.1-only server", function()
    local url, stop
    lazy_setup(function() url, stop = start_tls_http1_proxy() end)
    lazy_teardown(function() if stop then stop() end end)

    it("with http2 = true (the default)", function()
      local times, results = batch_with_one_slow { base_url = url, ca_file = H.env.ca_file }
      assert_not_held_back(times, results)
    end)

    it("with http2 = false", function()
      local times, results = batch_with_one_slow { base_url = url, ca_file = H.env.ca_file, http2 = false }
      assert_not_held_back(times, results)
    end)
  end)
end)

-- toolzz.ngx: the non-blocking transport used inside nginx (OpenResty or
-- nginx + lua-nginx-module), over ngx.socket.tcp cosockets.
--
-- It makes one HTTP/1.1 attempt and returns what the libcurl transport
-- (src/transport.c) returns, so the layers above cannot tell them apart.
-- This file keeps the transport objects and the attempt; the connections
-- and TLS are toolzz.ngxconn's, reading the answer toolzz.ngxhttp's.
--
--   status, body, headers, elapsed, http_version    on an HTTP answer
--   nil, kind, message, elapsed, headers, sent      on a failure (the response
--                                                   headers read before it, or nil;
--                                                   sent: whether any byte of the
--                                                   request may have reached the server)
--
-- transport:request(method, url [, body [, fresh]]): no body (nil) sends none
-- and no Content-Type (a GET has no Content-Length, another method sends
-- Content-Length: 0); fresh = true takes no connection from the pool and
-- never sends the request a second time.
--
-- kind is "network", "timeout", "tls", "limit" or, for what only the caller
-- can fix, "config". toolzz picks this transport where cosockets work
-- (usable()); elsewhere it uses the libcurl core.
--
-- What differs from the libcurl transport, all imposed by nginx:
--
-- * TLS: peer and host verification are always on, against the CAs of
--   nginx's `lua_ssl_trusted_certificate` (and `lua_ssl_verify_depth`, whose
--   default of 1 is too short for most public chains: use 3 or more). The
--   ca_file and ca_path options cannot be applied per call: they are ignored
--   here (with a warning in the error log); configure the directive instead.
--   The host name is sent as SNI and checked against the certificate's DNS
--   names; use a name, not an IP address, in an https base_url.
-- * Names: cosockets resolve host names through nginx's `resolver`
--   directive, which must be configured for a real API host. "localhost" is
--   connected to as 127.0.0.1 without a resolver (SNI and verification still
--   use "localhost").
-- * proxy: not supported. A client with the proxy option gets a config
--   error here instead of silently going direct (use transport = "curl");
--   proxy environment variables are not read.
-- * http2: ignored; HTTP/1.1 only.
-- * Keep-alive: connections go back to nginx's per-worker cosocket pool,
--   one pool per scheme, host and port (_M.POOL_SIZE idle connections kept,
--   each for at most _M.KEEPALIVE_TIMEOUT seconds). A request that finds its
--   pooled connection already closed by the server (nothing received) is
--   sent again on another connection, transparently, like libcurl does;
--   except a fresh one, which goes on a new connection that is closed after.
-- * timeout bounds the whole attempt: every send and receive gets what is
--   left of it, however slowly the server trickles its bytes.
local type, tostring, pairs, ipairs, setmetatable, rawget, pcall =
  type, tostring, pairs, ipairs, setmetatable, rawget, pcall
local find, lower, format = string.find, string.lower, string.format
local concat, sort = table.concat, table.sort

local conn = require "toolzz.ngxconn"
local http = require "toolzz.ngxhttp"
local clock, ms = conn.clock, conn.ms
local parse_url, connect, send_all = conn.parse_url, conn.connect, conn.send_all

local _M = {
  KEEPALIVE_TIMEOUT = 60,        -- seconds a pooled connection may stay idle
  POOL_SIZE = 32,                -- idle connections kept per pool (per worker)
  MAX_HEADER_BYTES = 64 * 1024,  -- response header block cap (as the C core)
}

-- The kind of a failed sslhandshake() (see toolzz.ngxconn).
_M.handshake_failure_kind = conn.handshake_failure_kind

-- Phases whose Lua code may yield on cosockets (lua-nginx-module's
-- "yieldable" contexts; the documented contexts of ngx.socket.tcp).
local COSOCKET_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- The current nginx phase, or nil outside nginx.
local function current_phase()
  local ngx_api = rawget(_G, "ngx")
  if type(ngx_api) ~= "table" or type(ngx_api.get_phase) ~= "function" then return nil end
  local ok, phase = pcall(ngx_api.get_phase)
  return ok and phase or nil
end

-- true when the current nginx phase allows cosockets.
function _M.usable()
  local phase = current_phase()
  return phase ~= nil and COSOCKET_PHASES[phase] == true and type(ngx.socket) == "table"
end

-- Sleep without blocking the worker (a zero wait, as after "Retry-After: 0",
-- does not yield: plain nginx warns that ngx.sleep(0) hurts performance).
function _M.sleep(seconds)
  if seconds > 0 then ngx.sleep(seconds) end
end

-- ---- transport objects ---------------------------------------------------------------

local Transport = {}
Transport.__index = Transport

local private = setmetatable({}, { __mode = "k" }) -- transport -> header block (holds the token)
local warned = {}

-- Log message once per worker (what: its key).
local function warn_once(what, message)
  if warned[what] then return end
  warned[what] = true
  ngx.log(ngx.WARN, "toolzz: ", message)
end

-- A transport for one client. cfg: the client's settings; headers: name ->
-- value, sent with every request (besides Host and Content-Length); opts:
-- { content_type = "application/json" }, the Content-Type of a request that
-- has a body (a Content-Type among headers stands for it when absent).
function _M.new(cfg, headers, opts)
  local content_type = opts and opts.content_type
  local names = {}
  for name, value in pairs(headers or {}) do
    if lower(name) == "content-type" then
      content_type = content_type or value
    else
      names[#names + 1] = name
    end
  end
  sort(names)
  local lines = {}
  for i, name in ipairs(names) do
    lines[i] = name .. ": " .. tostring(headers[name]) .. "\r\n"
  end
  local t = setmetatable({
    timeout = cfg.timeout or 30,
    connect_timeout = cfg.connect_timeout or 10,
    max_body = cfg.max_response_bytes or 8 * 1024 * 1024,
    proxy = cfg.proxy ~= nil and cfg.proxy ~= "",
    content_type = content_type and content_type ~= "" and ("Content-Type: " .. tostring(content_type) .. "\r\n") or "",
  }, Transport)
  private[t] = concat(lines)
  if (cfg.ca_file or cfg.ca_path) and rawget(_G, "ngx") then
    warn_once("ca", "ca_file/ca_path cannot be applied by the nginx cosocket transport; "
      .. "TLS is verified against lua_ssl_trusted_certificate")
  end
  return t
end

function Transport.__tostring(t)
  return "toolzz.ngx.transport (" .. (t.closed and "closed" or "open") .. ")"
end

-- Nothing to release: idle connections belong to the worker's pool.
function Transport:close()
  self.closed = true
  private[self] = nil
  return true
end

-- ---- one attempt ---------------------------------------------------------------------

-- Send the request on sock and read the answer. Returns status, body,
-- headers, version or nil, failure (see ngxhttp.read_response; failure.stale: the
-- connection was found closed before any byte of an answer came).
local function exchange(self, sock, request, deadline, keep)
  local sent, send_err = send_all(sock, request, deadline)
  if not sent then
    if send_err == "timeout" then return nil, { "timeout", "the attempt timed out while sending the request" } end
    return nil, { "network", "the connection failed while sending the request: " .. tostring(send_err), stale = true }
  end
  local status, body, headers, version, reusable =
    http.read_response(http.new_reader(sock, deadline), self.max_body, _M.MAX_HEADER_BYTES)
  if not status then return nil, body end
  if reusable and keep then
    local ok = sock:setkeepalive(ms(_M.KEEPALIVE_TIMEOUT), _M.POOL_SIZE)
    if not ok then sock:close() end
  else
    sock:close()
  end
  return status, body, headers, version
end

-- transport:request(method, url [, body [, fresh]]): one attempt (see the top of the file).
function Transport:request(method, url, body, fresh)
  local started = clock()
  local function elapsed() return clock() - started end
  local header_block = private[self]
  if self.closed or not header_block then
    return nil, "config", "the transport is closed", 0, nil, false
  end
  if not _M.usable() then
    return nil, "config", "the nginx cosocket transport cannot run in the "
      .. tostring(current_phase() or "current") .. " phase; use transport = \"auto\" or \"curl\"", 0, nil, false
  end
  if self.proxy then
    return nil, "config", "the proxy option is not supported by the nginx cosocket transport; "
      .. "use transport = \"curl\" for proxied calls", 0, nil, false
  end
  local target, why = parse_url(url)
  if not target then return nil, "config", why, 0, nil, false end
  if type(method) ~= "string" or find(method, "[^%u]") or method == "" or method == "HEAD" then
    return nil, "config", "invalid method", 0, nil, false
  end
  if body ~= nil and type(body) ~= "string" then return nil, "config", "the body must be a string", 0, nil, false end

  local request
  if body then
    request = concat {
      method, " ", target.path, " HTTP/1.1\r\n", "Host: ", target.authority, "\r\n", header_block,
      self.content_type, "Content-Length: ", #body, "\r\n\r\n", body,
    }
  else -- no body, no Content-Type; a GET has no Content-Length either
    request = concat {
      method, " ", target.path, " HTTP/1.1\r\n", "Host: ", target.authority, "\r\n", header_block,
      method == "GET" and "\r\n" or "Content-Length: 0\r\n\r\n",
    }
  end
  local deadline = started + self.timeout
  -- A pooled connection the server has closed fails before any byte comes
  -- back: send again on another one (each stale one is closed, so this ends
  -- on a fresh connection at the latest). A fresh request is sent once.
  for _ = 1, fresh and 1 or (_M.POOL_SIZE + 1) do
    local sock, kind, message = connect(target, deadline, fresh, self.connect_timeout, _M.POOL_SIZE)
    if not sock then return nil, kind, message, elapsed(), nil, false end
    local reused = (sock:getreusedtimes() or 0) > 0
    local status, rbody, headers, version = exchange(self, sock, request, deadline, not fresh)
    if status then return status, rbody, headers, elapsed(), version end
    sock:close()
    local failure = rbody
    if fresh or not (failure.stale and reused) then
      local spent = elapsed()
      local reason = failure[2]
      if failure[1] == "timeout" then reason = reason .. format(" (timeout %g s, %d ms spent)", self.timeout, ms(spent)) end
      return nil, failure[1], reason, spent, failure.headers, true
    end
  end
  return nil, "network", "every pooled connection was closed by the server", elapsed(), nil, true
end

_M._parse_url = parse_url -- for tests

return _M

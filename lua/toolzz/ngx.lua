-- toolzz.ngx: the non-blocking transport used inside nginx (OpenResty or
-- nginx + lua-nginx-module), over ngx.socket.tcp cosockets.
--
-- It makes one HTTP/1.1 attempt and returns what the libcurl transport
-- (src/transport.c) returns, so the layers above cannot tell them apart:
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
local type, tostring, tonumber, pairs, ipairs, setmetatable, rawget, pcall =
  type, tostring, tonumber, pairs, ipairs, setmetatable, rawget, pcall
local find, sub, lower, match, gsub, format =
  string.find, string.sub, string.lower, string.match, string.gsub, string.format
local concat, sort = table.concat, table.sort
local floor = math.floor

local _M = {
  KEEPALIVE_TIMEOUT = 60,        -- seconds a pooled connection may stay idle
  POOL_SIZE = 32,                -- idle connections kept per pool (per worker)
  MAX_HEADER_BYTES = 64 * 1024,  -- response header block cap (as the C core)
}

-- The kind of a failed sslhandshake(). A certificate verdict is "NN: reason"
-- ("18: self-signed certificate"): tls. "handshake failed" (sometimes
-- "NN: handshake failed") or "closed" is what a connection reset inside the
-- handshake gives too (nginx logs the errno, the cosocket API does not say
-- it): a network fault, retried like one, as libcurl's transport reports a
-- reset.
function _M.handshake_failure_kind(err)
  local reason = match(tostring(err), "^%d+: (.*)$") or tostring(err)
  return (reason == "handshake failed" or reason == "closed") and "network" or "tls"
end

local READ_CHUNK = 16 * 1024  -- bytes asked of the socket at a time
local SEND_CHUNK = 64 * 1024  -- bytes given to the socket at a time
local MAX_LINE = 4096         -- a chunk-size line longer than this is garbage
local POOL_PREFIX = "toolzz:" -- keeps our pools apart from other code's

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

-- ---- time ---------------------------------------------------------------------

local function clock()
  ngx.update_time()
  return ngx.now()
end

-- Whole milliseconds for a cosocket timeout, at least 1.
local function ms(seconds)
  local v = floor(seconds * 1000 + 0.5)
  return v < 1 and 1 or v
end

-- ---- URLs -----------------------------------------------------------------------

-- "http(s)://authority/path" -> target, or nil, why. The URL was checked by
-- the layer above; this only splits it.
local function parse_url(url)
  local scheme, authority, path = match(url, "^(%a[%w+.%-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "the URL is not absolute" end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then return nil, "only http and https are spoken" end
  local host, port = match(authority, "^(%[[%x:%.]+%]):?(%d*)$")
  if not host then host, port = match(authority, "^([%w%.%-]+):?(%d*)$") end
  if not host or host == "" then return nil, "the URL has no valid host" end
  port = port ~= "" and tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil, "the URL has an invalid port" end
  if path == "" then path = "/" end
  if find(path, "[%c%s]") then return nil, "the URL path has spaces or control characters" end
  host = lower(host)
  local name = gsub(host, "^%[(.*)%]$", "%1") -- no brackets for SNI / verification
  return {
    tls = scheme == "https",
    authority = authority, -- the Host header, as the URL spells it
    path = path,
    name = name,
    connect_host = host == "localhost" and "127.0.0.1" or host,
    port = port,
    pool = POOL_PREFIX .. scheme .. "://" .. host .. ":" .. port,
  }
end

-- ---- transport objects ---------------------------------------------------------------

local Transport = {}
Transport.__index = Transport

local private = setmetatable({}, { __mode = "k" }) -- transport -> header block (holds the token)
local warned = {}

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

-- ---- reading a response ---------------------------------------------------------------

-- A small buffer over the socket so that no read ever asks for more than
-- the caps allow. reader.buf holds bytes received and not yet consumed.
local Reader = {}
Reader.__index = Reader

local function new_reader(sock, deadline)
  return setmetatable({ sock = sock, deadline = deadline, buf = "", received = 0 }, Reader)
end

-- Set the socket's read timeout to what is left of the attempt.
function Reader:arm()
  local left = self.deadline - clock()
  if left <= 0 then return false end
  self.sock:settimeouts(ms(left), ms(left), ms(left))
  return true
end

-- Append up to max more bytes to buf. Returns true or nil, err.
function Reader:fill(max)
  if not self:arm() then return nil, "timeout" end
  local data, err = self.sock:receiveany(max < READ_CHUNK and max or READ_CHUNK)
  if not data then return nil, err end
  self.buf = self.buf .. data
  self.received = self.received + #data
  return true
end

-- Exactly n bytes (from buf, then the socket). Returns data or nil, err, got.
-- Read piece by piece, each receive armed with what is left of the attempt:
-- one receive(n) would restart its timer at every byte a slow server sends.
function Reader:take(n)
  local buf = self.buf
  if #buf >= n then
    self.buf = sub(buf, n + 1)
    return sub(buf, 1, n)
  end
  self.buf = ""
  local parts, got = { buf }, #buf
  while got < n do
    if not self:arm() then return nil, "timeout", got end
    local want = n - got
    local data, err = self.sock:receiveany(want < READ_CHUNK and want or READ_CHUNK)
    if not data then return nil, err, got end
    self.received = self.received + #data
    parts[#parts + 1] = data
    got = got + #data
  end
  return concat(parts)
end

-- One line (CRLF or LF ended) of at most max bytes, without its end.
-- Returns the line or nil, err ("too long" when over max).
function Reader:line(max)
  while true do
    local nl = find(self.buf, "\n", 1, true)
    if nl then
      local line = sub(self.buf, 1, nl - 1)
      self.buf = sub(self.buf, nl + 1)
      return (gsub(line, "\r$", ""))
    end
    if #self.buf > max then return nil, "too long" end
    local ok, err = self:fill(max + 2 - #self.buf)
    if not ok then return nil, err end
  end
end

-- A failure: kind, message.
local function read_failure(err, what)
  if err == "timeout" then return "timeout", "the attempt timed out while " .. what end
  return "network", "the connection failed while " .. what .. ": " .. tostring(err)
end

-- The header block of one response (up to the empty line), or nil, kind,
-- message, stale, partial. stale: the server closed before sending any byte;
-- partial: the complete header lines read before the cap was hit.
local function read_header_block(reader, max)
  local from = 1
  while true do
    local buf = reader.buf
    local s, e = find(buf, "\r?\n\r?\n", from)
    if s then
      reader.buf = sub(buf, e + 1)
      return sub(buf, 1, s - 1)
    end
    if #buf > max then
      return nil, "limit", "response headers are larger than " .. max .. " bytes", false,
        match(sub(buf, 1, max), "^(.*)\n")
    end
    from = #buf > 3 and #buf - 3 or 1
    local ok, err = reader:fill(max + 4 - #buf)
    if not ok then
      if err == "timeout" then return nil, "timeout", "the attempt timed out waiting for the response" end
      if reader.received == 0 and (err == "closed" or find(tostring(err), "reset", 1, true)) then
        return nil, "network", "empty reply from server (the connection was closed: " .. tostring(err) .. ")", true
      end
      return nil, read_failure(err, "reading the response headers")
    end
  end
end

-- Parse a header block: status, version, headers or nil, message.
local function parse_head(block)
  local status_line, rest = match(block, "^([^\r\n]*)\r?\n?(.*)$")
  -- HTTP/1.0 or HTTP/1.1 (libcurl 7.88 refuses any other version), then
  -- exactly three digits and the end or a space (as libcurl: "2000" is not 200)
  local major, minor, status, after = match(status_line, "^HTTP/(1)%.([01]) (%d%d%d)(.?)")
  if after ~= "" and after ~= " " then major = nil end
  if not major then return nil, "the server did not answer with HTTP/1.0 or HTTP/1.1" end
  local headers, last = {}, nil
  for line in gsub(rest, "\r\n", "\n"):gmatch("[^\n]+") do
    if find(line, "^[ \t]") then -- obsolete line folding
      if last then headers[last] = headers[last] .. " " .. match(line, "^%s*(.-)%s*$") end
    else
      local name, value = match(line, "^([^:%s]+):%s*(.-)%s*$")
      if name then
        name = lower(name)
        local previous = headers[name]
        headers[name] = previous and (previous .. ", " .. value) or value
        last = name
      end
    end
  end
  return tonumber(status), major .. "." .. minor, headers
end

-- The value of a Content-Length header (repeats must agree), or nil, why.
local function content_length(value)
  local length
  for part in value:gmatch("[^,]+") do
    local digits = match(part, "^%s*(%d+)%s*$")
    if not digits or #digits > 15 then return nil, "invalid Content-Length" end
    local n = tonumber(digits)
    if length and n ~= length then return nil, "conflicting Content-Length values" end
    length = n
  end
  if not length then return nil, "invalid Content-Length" end
  return length
end

local function over_limit(max)
  return "limit", format("response body is larger than max_response_bytes (%d)", max) -- (never "3.2e+09")
end

-- A chunked body: body or nil, kind, message.
local function read_chunked(reader, max, max_trailers)
  local parts, total = {}, 0
  while true do
    local line, err = reader:line(MAX_LINE)
    if not line then
      if err == "too long" then return nil, "network", "invalid chunked encoding (chunk-size line too long)" end
      return nil, read_failure(err, "reading a chunk")
    end
    -- hexadecimal digits only ("0x2" is not 2 nor 0), then optional extensions
    local hex = match(line, "^(%x+)[ \t]*$") or match(line, "^(%x+)[ \t]*;")
    if not hex or #hex > 12 then return nil, "network", "invalid chunked encoding (bad chunk size)" end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    if total + size > max then return nil, over_limit(max) end
    local data, read_err, got = reader:take(size)
    if not data then
      return nil, read_failure(read_err, "reading a chunk (" .. (got or 0) .. " of " .. size .. " bytes)")
    end
    parts[#parts + 1] = data
    total = total + size
    local ending, end_err = reader:line(2)
    if ending ~= "" then
      if not ending and end_err ~= "too long" then return nil, read_failure(end_err, "reading a chunk") end
      return nil, "network", "invalid chunked encoding (no CRLF after a chunk)"
    end
  end
  local trailer_bytes = 0
  while true do -- trailers, up to the empty line
    local line, err = reader:line(max_trailers)
    if not line then
      if err == "too long" then return nil, "limit", "response trailers are larger than " .. max_trailers .. " bytes" end
      return nil, read_failure(err, "reading the trailers")
    end
    if line == "" then break end
    trailer_bytes = trailer_bytes + #line + 2
    if trailer_bytes > max_trailers then
      return nil, "limit", "response trailers are larger than " .. max_trailers .. " bytes"
    end
  end
  return concat(parts)
end

-- A body delimited by the end of the connection: body or nil, kind, message.
local function read_to_close(reader, max)
  local parts, total = { reader.buf }, #reader.buf -- pieces, joined once (no quadratic copying)
  reader.buf = ""
  while true do
    if total > max then return nil, over_limit(max) end
    local ok, err = reader:fill(max + 1 - total)
    if not ok then
      if err == "closed" then return concat(parts) end
      return nil, read_failure(err, "reading the response body")
    end
    parts[#parts + 1] = reader.buf
    total = total + #reader.buf
    reader.buf = ""
  end
end

-- Does the response let the connection be reused?
local function persistent(version, headers)
  local connection = lower(headers["connection"] or "")
  if find(connection, "close", 1, true) then return false end
  if version == "1.1" then return true end
  return find(connection, "keep-alive", 1, true) ~= nil
end

-- Read one response. Returns status, body, headers, version, reusable or
-- nil, failure where failure = { kind, message, stale = bool, headers = the
-- response headers read before the failure, if any }.
local function read_response(reader, max_body)
  local status, version, headers
  local budget = _M.MAX_HEADER_BYTES -- for every header block, interim ones included
  repeat -- skip interim 1xx answers (100 Continue, 103 Early Hints)
    local block, kind, message, stale, partial = read_header_block(reader, budget)
    if not block then
      local _, _, partial_headers = parse_head(partial or "")
      if kind == "limit" then message = "response headers are larger than " .. _M.MAX_HEADER_BYTES .. " bytes" end
      return nil, { kind, message, stale = stale, headers = partial_headers }
    end
    budget = budget - #block - 4
    if budget < 0 then
      return nil, { "limit", "response headers are larger than " .. _M.MAX_HEADER_BYTES .. " bytes" }
    end
    status, version, headers = parse_head(block)
    if not status then return nil, { "network", version } end
  until status >= 200 or status == 101

  local body, kind, message
  local reusable = persistent(version, headers)
  local te = headers["transfer-encoding"]
  if status == 204 or status == 304 or status < 200 then
    body, reusable = "", reusable and status ~= 101
  elseif te and find(lower(te), "chunked%s*$") then
    body, kind, message = read_chunked(reader, max_body, _M.MAX_HEADER_BYTES)
  elseif te then -- another coding without chunked: delimited by close
    body, kind, message = read_to_close(reader, max_body)
    reusable = false
  elseif headers["content-length"] then
    local length, why = content_length(headers["content-length"])
    if not length then
      body, kind, message = nil, "network", why
    elseif length > max_body then
      body, kind, message = nil, over_limit(max_body)
    else
      local err, got
      body, err, got = reader:take(length)
      if not body then
        kind, message = read_failure(err, "reading the response body (" .. got .. " of " .. length .. " bytes)")
      end
    end
  else
    body, kind, message = read_to_close(reader, max_body)
    reusable = false
  end
  if not body then return nil, { kind, message, headers = headers } end
  if reader.buf ~= "" then reusable = false end -- bytes past the response: do not trust it
  return status, body, headers, version, reusable
end

-- ---- one attempt ---------------------------------------------------------------------

-- A connected (and TLS-established) socket, or nil, kind, message. fresh:
-- a new connection, never one from the pool (fresh ones never go back to
-- the pool: theirs stays empty).
local function connect(self, target, deadline, fresh)
  local started = clock()
  local connect_deadline = started + self.connect_timeout
  if connect_deadline > deadline then connect_deadline = deadline end
  local left = connect_deadline - started
  if left <= 0 then return nil, "timeout", "the attempt timed out before connecting" end
  local sock = ngx.socket.tcp()
  sock:settimeouts(ms(left), ms(left), ms(left))
  local ok, err = sock:connect(target.connect_host, target.port,
    { pool = fresh and (target.pool .. "#fresh") or target.pool, pool_size = _M.POOL_SIZE })
  local where = target.name .. ":" .. target.port
  if not ok then
    sock:close()
    if err == "timeout" then
      return nil, "timeout", format("connecting to %s timed out after %d ms", where, ms(clock() - started))
    end
    return nil, "network", "cannot connect to " .. where .. ": " .. tostring(err)
  end
  if target.tls and (sock:getreusedtimes() or 0) == 0 then
    left = connect_deadline - clock()
    if left <= 0 then
      sock:close()
      return nil, "timeout", "the connect timeout passed before the TLS handshake with " .. where
    end
    sock:settimeouts(ms(left), ms(left), ms(left))
    local session, tls_err = sock:sslhandshake(false, target.name, true)
    if not session then
      sock:close()
      if tls_err == "timeout" then
        return nil, "timeout", format("the TLS handshake with %s timed out after %d ms", where, ms(clock() - started))
      end
      return nil, _M.handshake_failure_kind(tls_err), "TLS handshake with " .. where .. " failed: " .. tostring(tls_err)
    end
    -- lua-nginx-module 0.10.23 can report success for a handshake whose
    -- verification failed when it completes at once; it has then closed the
    -- connection (and logged the reason), which getreusedtimes() reveals.
    if not sock:getreusedtimes() then
      sock:close()
      return nil, "tls", "TLS handshake with " .. where .. " failed: the certificate could not be verified "
        .. "against lua_ssl_trusted_certificate (nginx's error log has the reason)"
    end
  end
  return sock
end

-- Send data within the deadline: in pieces, each with what is left of the
-- attempt (one send would restart its timer whenever the server reads a
-- little). Returns true or nil, err.
local function send_all(sock, data, deadline)
  local n, pos = #data, 1
  while pos <= n do
    local left = deadline - clock()
    if left <= 0 then return nil, "timeout" end
    sock:settimeouts(ms(left), ms(left), ms(left))
    local _, err = sock:send(n <= SEND_CHUNK and data or sub(data, pos, pos + SEND_CHUNK - 1))
    if err then return nil, err end
    pos = pos + SEND_CHUNK
  end
  return true
end

-- Send the request on sock and read the answer. Returns status, body,
-- headers, version or nil, failure (see read_response; failure.stale: the
-- connection was found closed before any byte of an answer came).
local function exchange(self, sock, request, deadline, keep)
  local sent, send_err = send_all(sock, request, deadline)
  if not sent then
    if send_err == "timeout" then return nil, { "timeout", "the attempt timed out while sending the request" } end
    return nil, { "network", "the connection failed while sending the request: " .. tostring(send_err), stale = true }
  end
  local status, body, headers, version, reusable = read_response(new_reader(sock, deadline), self.max_body)
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
    local sock, kind, message = connect(self, target, deadline, fresh)
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

-- toolzz.ngxconn: the connections of the nginx cosocket transport
-- (toolzz.ngx): URLs split into a target, cosockets connected through
-- nginx's per-worker pool, the TLS handshake and its verdict, requests
-- sent within the attempt's deadline, and the time helpers every cosocket
-- read and write uses.
local split_url = require("toolzz.url").split

local tostring = tostring
local find, sub, lower, match, gsub, format =
  string.find, string.sub, string.lower, string.match, string.gsub, string.format
local floor = math.floor

local _M = {}

local SEND_CHUNK = 64 * 1024  -- bytes given to the socket at a time
local POOL_PREFIX = "toolzz:" -- keeps our pools apart from other code's

-- Seconds now, nginx's cached time refreshed first.
function _M.clock()
  ngx.update_time()
  return ngx.now()
end

-- Whole milliseconds for a cosocket timeout, at least 1.
function _M.ms(seconds)
  local v = floor(seconds * 1000 + 0.5)
  return v < 1 and 1 or v
end

local clock, ms = _M.clock, _M.ms

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

-- "http(s)://authority/path" -> target, or nil, why. The URL was checked by
-- the layer above; this splits it (toolzz.url.split) and adds what
-- connecting needs.
function _M.parse_url(url)
  local parts = split_url(url)
  if not parts then return nil, "the URL is not absolute" end
  local scheme, host, port, path = parts.scheme, parts.host, parts.port, parts.path
  if scheme ~= "http" and scheme ~= "https" then return nil, "only http and https are spoken" end
  if not host then return nil, "the URL has no valid host" end
  if port == false then return nil, "the URL has an invalid port" end
  port = port or (scheme == "https" and 443 or 80)
  if path == "" then path = "/" end
  if find(path, "[%c%s]") then return nil, "the URL path has spaces or control characters" end
  host = lower(host)
  local name = gsub(host, "^%[(.*)%]$", "%1") -- no brackets for SNI / verification
  return {
    tls = scheme == "https",
    authority = parts.authority, -- the Host header, as the URL spells it
    path = path,
    name = name,
    connect_host = host == "localhost" and "127.0.0.1" or host,
    port = port,
    pool = POOL_PREFIX .. scheme .. "://" .. host .. ":" .. port,
  }
end

-- A connected (and TLS-established) socket to target (parse_url), or nil,
-- kind, message; connecting and the handshake within connect_timeout
-- seconds and the deadline. fresh: a new connection, never one from the
-- pool (fresh ones never go back to the pool: theirs stays empty);
-- pool_size: the idle connections nginx keeps per pool.
function _M.connect(target, deadline, fresh, connect_timeout, pool_size)
  local started = clock()
  local connect_deadline = started + connect_timeout
  if connect_deadline > deadline then connect_deadline = deadline end
  local left = connect_deadline - started
  if left <= 0 then return nil, "timeout", "the attempt timed out before connecting" end
  local sock = ngx.socket.tcp()
  sock:settimeouts(ms(left), ms(left), ms(left))
  local ok, err = sock:connect(target.connect_host, target.port,
    { pool = fresh and (target.pool .. "#fresh") or target.pool, pool_size = pool_size })
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
function _M.send_all(sock, data, deadline)
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

return _M

-- toolzz.ngxhttp: the HTTP/1.1 reader of the nginx cosocket transport
-- (toolzz.ngx): status line, header blocks (interim 1xx ones skipped),
-- chunked, sized and close-delimited bodies, every read within the caps and
-- within what is left of the attempt. Every byte from the server is
-- hostile: a malformed answer is a "network" failure, an oversized one a
-- "limit", never a Lua error.
local tostring, tonumber, setmetatable = tostring, tonumber, setmetatable
local find, sub, lower, match, gsub, format =
  string.find, string.sub, string.lower, string.match, string.gsub, string.format
local concat = table.concat

local conn = require "toolzz.ngxconn"
local clock, ms = conn.clock, conn.ms

local _M = {}

local READ_CHUNK = 16 * 1024  -- bytes asked of the socket at a time
local MAX_LINE = 4096         -- a chunk-size line longer than this is garbage

-- A small buffer over the socket so that no read ever asks for more than
-- the caps allow. reader.buf holds bytes received and not yet consumed.
local Reader = {}
Reader.__index = Reader

function _M.new_reader(sock, deadline)
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

-- Read one response, its header blocks (1xx ones too) within
-- max_header_bytes together and its body within max_body. Returns status,
-- body, headers, version, reusable or nil, failure where failure = { kind,
-- message, stale = bool, headers = the response headers read before the
-- failure, if any }.
function _M.read_response(reader, max_body, max_header_bytes)
  local status, version, headers
  local budget = max_header_bytes -- for every header block, interim ones included
  repeat -- skip interim 1xx answers (100 Continue, 103 Early Hints)
    local block, kind, message, stale, partial = read_header_block(reader, budget)
    if not block then
      local _, _, partial_headers = parse_head(partial or "")
      if kind == "limit" then message = "response headers are larger than " .. max_header_bytes .. " bytes" end
      return nil, { kind, message, stale = stale, headers = partial_headers }
    end
    budget = budget - #block - 4
    if budget < 0 then
      return nil, { "limit", "response headers are larger than " .. max_header_bytes .. " bytes" }
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
    body, kind, message = read_chunked(reader, max_body, max_header_bytes)
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

return _M

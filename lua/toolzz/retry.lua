-- toolzz.retry: which failures are tried again, and how long to wait.
--
-- PUT is idempotent, so network faults, timeouts and the HTTP statuses that
-- mean "try later" are retried with exponential backoff and full jitter.
-- A Retry-After header (seconds or HTTP date) replaces the backoff when it
-- asks for no more than MAX_RETRY_AFTER seconds; a longer ask ends the call.
local tonumber, type, floor, min = tonumber, type, math.floor, math.min
local random = require("toolzz.core").random -- its own generator: math.random is the application's
local match, lower = string.match, string.lower
local os_time = os.time

local _M = {}

_M.BASE_DELAY = 0.5      -- seconds, first backoff ceiling
_M.MAX_DELAY = 8         -- seconds, backoff cap
_M.MAX_RETRY_AFTER = 60  -- seconds; a longer Retry-After is not waited for

local RETRY_STATUS = { [408] = true, [425] = true, [429] = true, [500] = true,
                       [502] = true, [503] = true, [504] = true }
_M.RETRY_STATUS = RETRY_STATUS

-- Is this error worth another attempt? An idempotent request (GET, PUT)
-- is retried on network faults, timeouts and the "try later" statuses. A
-- request that is not (POST) only when it certainly never reached the
-- server (`sent == false`, as the transport reports) or on 429.
function _M.retryable(err, idempotent, sent)
  local kind = err.kind
  if idempotent == false then
    if kind == "network" or kind == "timeout" then return sent == false end
    return kind == "http" and err.status == 429
  end
  if kind == "network" or kind == "timeout" then return true end
  return kind == "http" and RETRY_STATUS[err.status] == true
end

-- Full jitter: a uniform wait in [0, min(cap, base * 2^(attempt-1))).
function _M.backoff(attempt, rand)
  local ceiling = min(_M.MAX_DELAY, _M.BASE_DELAY * 2 ^ (attempt - 1))
  return (rand or random)() * ceiling
end

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
                 jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }

-- Seconds since the epoch of a UTC civil date (no time zone involved).
local function epoch_utc(y, m, d, hh, mm, ss)
  if m <= 2 then y, m = y - 1, m + 12 end
  local days = 365 * y + floor(y / 4) - floor(y / 100) + floor(y / 400)
             + floor((153 * (m - 3) + 2) / 5) + d - 719469
  return days * 86400 + hh * 3600 + mm * 60 + ss
end
_M.epoch_utc = epoch_utc

-- Parse an HTTP date (IMF-fixdate, RFC 850 or asctime) to epoch seconds.
function _M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = match(s, "^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d then
    d, mon, y, hh, mm, ss = match(s, "^%a+, (%d%d?)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if y then y = tonumber(y) + (tonumber(y) < 70 and 2000 or 1900) end
  end
  if not d then
    mon, d, hh, mm, ss, y = match(s, "^%a+ (%a%a%a) +(%d%d?) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  end
  local m = mon and MONTHS[lower(mon)]
  if not m then return nil end
  return epoch_utc(tonumber(y), m, tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
end

-- Seconds a Retry-After header value asks for (never negative), or nil.
function _M.parse_retry_after(value, now)
  if type(value) ~= "string" then return nil end
  local secs = match(value, "^%s*(%d+)%s*$")
  if secs then return tonumber(secs) end
  local at = _M.parse_http_date(match(value, "^%s*(.-)%s*$"))
  if not at then return nil end
  local wait = at - (now or os_time())
  return wait > 0 and wait or 0
end

-- How long to wait before attempt `attempt + 1`, or nil when the server asked
-- for longer than MAX_RETRY_AFTER (the call then ends with that error).
function _M.delay(attempt, retry_after, rand)
  if retry_after then
    if retry_after > _M.MAX_RETRY_AFTER then return nil end
    return retry_after
  end
  return _M.backoff(attempt, rand)
end

return _M

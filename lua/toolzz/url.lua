-- toolzz.url: the one URL splitter. toolzz.options checks base URLs with
-- it, toolzz.transports matches no_proxy hosts with it, and the nginx
-- transport (toolzz.ngxconn) finds where to connect with it. No other
-- toolzz module is required here, so the cosocket transport loads without
-- the C core (fuzz/fuzz_ngx.c runs it so).
local match, lower, tonumber = string.match, string.lower, tonumber

local _M = {}

-- "scheme://authority/path" -> { scheme (lower case), authority, host,
-- port (a number, nil when absent, false when invalid), path }, or nil
-- when url has no scheme and authority. An IPv6 host keeps its brackets.
function _M.split(url)
  local scheme, authority, path = match(url, "^(%a[%w+.%-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil end
  local host, port = match(authority, "^(%[[%x:%.]+%])(.*)$")
  if not host then host, port = match(authority, "^([%w%.%-]+)(.*)$") end
  if port == "" then
    port = nil
  elseif port then
    port = tonumber(match(port, "^:(%d+)$"))
    if not port or port < 1 or port > 65535 then port = false end
  end
  return { scheme = lower(scheme), authority = authority, host = host, port = port, path = path }
end

return _M

-- Stand-in for the ToolzzAI REST API, run by nginx + lua-nginx-module for the specs.
--
-- Serves PUT /api/v1/calcom/integration/{id} and PUT /api/v1/functions/{id}
-- (optionally behind /delay/<ms> and /static prefixes), records what it was
-- sent, counts requests and connections, and plays back injected faults.
-- Control endpoints live under /_control/. See README.md next to this file.

local ngx = ngx
local cjson = require "cjson.safe"

local concat, sort = table.concat, table.sort
local format, rep, sub, byte = string.format, string.rep, string.sub, string.byte
local floor, huge = math.floor, math.huge
local pairs, ipairs, type, tostring, tonumber, next = pairs, ipairs, type, tostring, tonumber, next
local os_getenv, os_date = os.getenv, os.date
local io_open = io.open

local _M = {}

local DEFAULT_TOKEN = "test-token-0123456789abcdef"
local NULL = cjson.null
local NIL_UUID = "00000000-0000-0000-0000-000000000000"
local INSTITUTION_ID = "3f0b8a52-6d1e-4c7a-9b2f-1e5d7c9a4b60"
local GCAL_PLUGIN_ID = "8c2d4e6f-1a3b-4c5d-8e7f-9a0b1c2d3e4f"
local CALCOM_CREATED_AT = "2024-11-05 13:47:21.482913"
local FUNCTION_CREATED_AT = "2024-11-05T13:47:21.482Z"
local CHUNK_PIECE = 16384

local REASONS = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [409] = "Conflict", [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [425] = "Too Early", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local function state() return ngx.shared.toolzz_state end
local function seen_connections() return ngx.shared.toolzz_conns end

------------------------------------------------------------------------------
-- JSON text, written by hand so that empty arrays stay [], null stays null
-- and "/" is not escaped (lua-cjson 2.1.0 can do neither of the first two).

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local json_value

local function json_array(t)
  local parts = {}
  for i = 1, #t do parts[i] = json_value(t[i]) end
  return "[" .. concat(parts, ",") .. "]"
end

local function json_object(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = json_string(tostring(k)) .. ":" .. json_value(t[k])
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- Any value cjson decoded (or a plain Lua value); an empty table is an object.
function json_value(v)
  local t = type(v)
  if v == nil or v == NULL then return "null"
  elseif t == "string" then return json_string(v)
  elseif t == "boolean" then return v and "true" or "false"
  elseif t == "number" then
    if v ~= v or v == huge or v == -huge then return "null" end
    if v == floor(v) and v >= -2^53 and v <= 2^53 then return format("%d", v) end
    return format("%.17g", v)
  elseif t == "table" then
    if is_sequence(v) then return json_array(v) end
    return json_object(v)
  end
  return json_string(tostring(v))
end

-- A value the API documents as an array: absent or empty is [].
local function json_array_field(v)
  if v == nil or v == NULL then return "[]" end
  if type(v) == "table" and next(v) == nil then return "[]" end
  return json_value(v)
end

-- Ordered object from a flat list: key1, json_text1, key2, json_text2, ...
local function ordered_object(list)
  local parts = {}
  for i = 1, #list, 2 do
    parts[#parts + 1] = json_string(list[i]) .. ":" .. list[i + 1]
  end
  return "{" .. concat(parts, ",") .. "}"
end

local function error_body(status, message)
  return ordered_object { "message", json_string(message), "statusCode", json_value(status) }
end

------------------------------------------------------------------------------
-- Timestamps

local function now_parts()
  local now = ngx.now()
  local sec = floor(now)
  return sec, floor((now - sec) * 1000 + 0.5) % 1000
end

local function calcom_updated_at()
  local sec, ms = now_parts()
  return os_date("!%Y-%m-%d %H:%M:%S", sec) .. format(".%03d", ms)
end

local function iso_now()
  local sec, ms = now_parts()
  return os_date("!%Y-%m-%dT%H:%M:%S", sec) .. format(".%03dZ", ms)
end

------------------------------------------------------------------------------
-- Documented response shapes, built from the request

local function field(tbl, key)
  if type(tbl) ~= "table" then return nil end
  return tbl[key]
end

local function calcom_response(id, req, updated_at, created_at)
  return ordered_object {
    "id", json_value(id),
    "title", json_value(field(req, "title")),
    "calcomUsername", json_value(field(req, "calcomUsername")),
    "timezone", json_value(field(req, "timezone")),
    "prompt", json_value(field(req, "prompt")),
    "apiKey", json_string("cal_****************"),
    "isTokenMasked", "true",
    "isActive", "true",
    "checkAvailabilityEnabled", json_value(field(req, "checkAvailabilityEnabled")),
    "createBookingEnabled", json_value(field(req, "createBookingEnabled")),
    "botId", "null",
    "unitId", json_value(field(req, "unitId")),
    "defaultEventTypeId", "null",
    "defaultEventTypeSlug", "null",
    "createdAt", json_string(created_at or CALCOM_CREATED_AT),
    "updatedAt", json_string(updated_at),
  }
end

-- googleUser echoed with the documented keys first, in documented order.
local GOOGLE_USER_KEYS = { "name", "given_name", "family_name", "picture", "email", "hd" }

local function google_user_json(user)
  if type(user) ~= "table" or is_sequence(user) then return json_value(user) end
  local list, known = {}, {}
  for _, key in ipairs(GOOGLE_USER_KEYS) do
    known[key] = true
    if user[key] ~= nil then
      list[#list + 1] = key
      list[#list + 1] = json_value(user[key])
    end
  end
  local extra = {}
  for key in pairs(user) do
    if not known[key] then extra[#extra + 1] = tostring(key) end
  end
  sort(extra)
  for _, key in ipairs(extra) do
    list[#list + 1] = key
    list[#list + 1] = json_value(user[key])
  end
  return ordered_object(list)
end

-- extra: { activated = false } for a copy not yet activated.
local function function_response(id, req, updated_at, extra)
  local gcal = field(req, "googleCalendar")
  local activated = not (type(extra) == "table" and extra.activated == false)
  local plugin = type(gcal) == "table" and ordered_object {
    "id", json_string(GCAL_PLUGIN_ID),
    "googleId", json_value(field(gcal, "googleId")),
    "calendarId", json_value(field(gcal, "calendarId")),
    "timezone", json_value(field(gcal, "timezone")),
    "pluginId", json_value(id),
    "notificationType", "null",
    "notificationContentType", "null",
    "notificationContent", json_value(field(gcal, "notificationContent")),
    "notificationDelayMs", "0",
    "notificationWaitForSpeech", "0",
    "createdAt", json_string(FUNCTION_CREATED_AT),
    "updatedAt", json_string(updated_at),
    "googleUser", google_user_json(field(gcal, "googleUser")),
    "googleToken", json_value(field(gcal, "googleToken")),
  }
  local kind = field(req, "type") or "google-calendar"
  return ordered_object {
    "id", json_value(id),
    "institutionId", json_string(INSTITUTION_ID),
    "userId", json_value(field(req, "userId")),
    "unityId", json_value(field(req, "unityId")),
    "code", json_value(kind),
    "description", json_value(field(req, "description")),
    "iconFileId", json_value(field(req, "iconFileId")),
    "status", "true",
    "name", json_value(field(req, "name")),
    "color", json_string("gray"),
    "outputs", json_array_field(field(req, "outputs")),
    "isActivated", activated and "true" or "false",
    "type", json_value(kind),
    "googleCalendarPlugin", "[" .. (plugin or "") .. "]",
    "discordPlugin", "[]",
    "telegramPlugin", "[]",
  }
end

-- Each call only on the server block of its host (chat = base_url,
-- converflow = converflow_url); the first match wins.
local ROUTES = {
  { host = "converflow", method = "POST", pattern = "^/api/v1/calcom/integration$", action = "create", kind = "calcom" },
  { host = "converflow", method = "GET", pattern = "^/api/v1/calcom/integration/unit/([^/]+)$", action = "list",
    kind = "calcom" },
  { host = "converflow", method = "GET", pattern = "^/api/v1/calcom/integration/([^/]+)$", action = "get", kind = "calcom" },
  { host = "chat", method = "PUT", pattern = "^/api/v1/calcom/integration/([^/]+)$", action = "update", kind = "calcom" },
  { host = "chat", method = "POST", pattern = "^/api/v1/functions/$", action = "create", kind = "function" },
  { host = "chat", method = "GET", pattern = "^/api/v1/functions/unity/([^/]+)$", action = "list", kind = "function" },
  { host = "chat", method = "POST", pattern = "^/api/v1/functions/duplicate/([^/]+)$", action = "duplicate",
    kind = "function" },
  { host = "chat", method = "GET", pattern = "^/api/v1/functions/([^/]+)$", action = "get", kind = "function" },
  { host = "chat", method = "PUT", pattern = "^/api/v1/functions/([^/]+)$", action = "update", kind = "function" },
}

local KINDS = {
  calcom = { build = calcom_response, not_found = "Integration not found", unit_field = "unitId",
             now = function() return calcom_updated_at() end, static = 1 },
  ["function"] = { build = function_response, not_found = "Function not found", unit_field = "unityId",
                   now = function() return iso_now() end, static = 2 },
}

-- Fixed examples for /static (benchmark baseline: no body parsing).
local STATIC_EXAMPLE_ID = "5b8e2a1c-3d4f-4e6a-9b7c-0d1e2f3a4b5c"
local STATIC_BODIES = {
  calcom_response(STATIC_EXAMPLE_ID, {
    title = "Calcom", unitId = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
    calcomUsername = "toolzz-demo", timezone = "America/Sao_Paulo",
    prompt = "Book meetings when the customer asks.",
    checkAvailabilityEnabled = true, createBookingEnabled = true,
  }, "2024-11-06 09:12:45.123"),
  function_response(STATIC_EXAMPLE_ID, {
    name = "Google Calendar", description = "Use this to schedule meetings.",
    iconFileId = NULL, outputs = {}, type = "google-calendar",
    userId = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
    unityId = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
    googleCalendar = {
      googleId = "112233445566778899001", calendarId = "demo@toolzz.me",
      timezone = "America/Sao_Paulo", notificationContent = NULL,
      googleUser = { name = "Demo User", given_name = "Demo", family_name = "User",
                     picture = "https://lh3.googleusercontent.com/a/demo",
                     email = "demo@toolzz.me", hd = "toolzz.me" },
      googleToken = "ya29.demo-token",
    },
  }, "2024-11-06T09:12:45.123Z"),
}

------------------------------------------------------------------------------
-- Responses

local function default_message(status)
  return REASONS[status] or ("HTTP " .. status)
end

-- Send one answer. opts: content_type, headers, request_id, header_bytes, chunked.
local function send(status, body, opts)
  opts = opts or {}
  ngx.status = status
  local header = ngx.header
  header["Content-Type"] = opts.content_type or "application/json"
  header["X-Request-Id"] = opts.request_id or ngx.var.request_id
  if type(opts.headers) == "table" then
    for name, value in pairs(opts.headers) do
      if value ~= NULL then header[name] = value end
    end
  end
  if opts.header_bytes and opts.header_bytes > 0 then
    header["X-Pad"] = rep("p", opts.header_bytes)
  end
  if opts.chunked then
    -- no Content-Length: HTTP/1.1 falls back to chunked transfer coding
    local piece = #body > 4 * CHUNK_PIECE and CHUNK_PIECE or math.max(1, math.ceil(#body / 4))
    for i = 1, #body, piece do
      ngx.print(sub(body, i, i + piece - 1))
      ngx.flush(true)
    end
    if #body == 0 then ngx.send_headers() end
  else
    header["Content-Length"] = #body
    ngx.print(body)
  end
  return ngx.exit(ngx.HTTP_OK)
end

local function send_json_error(status, message, opts)
  return send(status, error_body(status, message), opts)
end

-- A valid JSON document of (about) n bytes: {"pad":"xxxx"}.
local function big_body(n)
  local overhead = #'{"pad":""}'
  return '{"pad":"' .. rep("x", math.max(0, n - overhead)) .. '"}'
end

-- A JSON array of empty objects, [{},{},...], of at most n bytes: the most
-- Lua tables a client makes of n bytes.
local function objects_body(n)
  local count = math.max(1, math.floor((n - 2) / 3))
  return "[" .. rep("{},", count - 1) .. "{}]"
end

------------------------------------------------------------------------------
-- Recording, counters, faults

local function current_token()
  local override = state():get("config:token")
  if override then return override end
  return os_getenv("TOOLZZ_TEST_TOKEN") or DEFAULT_TOKEN
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file()
  if not path then return "" end
  local file = io_open(path, "rb")
  if not file then return "" end
  body = file:read("*a") or ""
  file:close()
  return body
end

-- The journal (off unless /_control/config turned it on): "METHOD uri" of
-- each API request, in the order the stand-in took them, at most
-- JOURNAL_MAX (the later ones are counted, not kept).
local JOURNAL_MAX = 20000

local function count_request()
  local dict = state()
  dict:incr("stats:requests", 1, 0)
  if ngx.req.get_method() ~= "GET" then dict:incr("stats:writes", 1, 0) end
  if dict:get("config:journal") then
    local n = dict:incr("journal:n", 1, 0)
    if n <= JOURNAL_MAX then dict:set("journal:" .. n, ngx.req.get_method() .. " " .. ngx.var.request_uri) end
  end
  if seen_connections():add("c" .. ngx.var.connection, true) then
    dict:incr("stats:connections", 1, 0)
  end
end

local function http_version()
  local v = ngx.req.http_version()
  return v and format("%.1f", v) or NULL
end

local function record(body)
  local headers = ngx.req.get_headers(1000)
  local doc = json_value {
    method = ngx.req.get_method(),
    host = ngx.var.toolzz_host or "chat",
    uri = ngx.var.request_uri,
    headers = headers,
    body = body,
    http_version = http_version(),
    connection = tonumber(ngx.var.connection),
    scheme = ngx.var.scheme,
  }
  local ok, err = state():set("last", doc)
  if not ok then
    ngx.log(ngx.WARN, "stand-in: cannot record request (", err, "); storing it without its body")
    state():set("last", json_value {
      method = ngx.req.get_method(), uri = ngx.var.request_uri, body = NULL,
      body_size = #body, http_version = http_version(),
      connection = tonumber(ngx.var.connection), scheme = ngx.var.scheme,
      headers = headers,
    })
  end
end

local function pop_fault()
  local text = state():lpop("faults")
  if not text then return nil end
  local fault = cjson.decode(text)
  if type(fault) ~= "table" then return nil end
  return fault
end

local function num(v)
  return type(v) == "number" and v or nil
end

-- Write raw bytes on the downstream socket and close (HTTP/1.x only).
-- trickle (seconds): after the first `trickle_after` bytes, send one byte at
-- a time with that pause between them.
local function send_raw(bytes, trickle, trickle_after)
  local sock, err
  if (ngx.req.http_version() or 1) >= 2 then
    err = "no raw downstream socket under HTTP/2"
  else
    local ok, result, socket_err = pcall(ngx.req.socket, true)
    if ok then sock, err = result, socket_err else err = result end
  end
  if not sock then
    ngx.log(ngx.ERR, "stand-in: raw fault impossible: ", err)
    return send_json_error(500, "raw fault impossible: " .. tostring(err))
  end
  sock:settimeout(10000)
  local head = trickle and sub(bytes, 1, trickle_after or 0) or bytes
  local _, send_err = sock:send(head)
  if trickle and not send_err then
    for i = #head + 1, #bytes do
      ngx.sleep(trickle)
      _, send_err = sock:send(sub(bytes, i, i))
      if send_err then break end
    end
  end
  if send_err then ngx.log(ngx.INFO, "stand-in: raw send: ", send_err) end
  return ngx.exit(444)
end

------------------------------------------------------------------------------
-- The API

-- Strip /delay/<ms> and /static prefixes (any order, combinable).
local function parse_prefixes(uri)
  local delay_ms, static = 0, false
  while true do
    local ms, rest = uri:match("^/delay/(%d+)(/.*)$")
    if ms then
      delay_ms = delay_ms + tonumber(ms)
      uri = rest
    elseif sub(uri, 1, 8) == "/static/" then
      static = true
      uri = sub(uri, 8)
    else
      return uri, delay_ms, static
    end
  end
end

local function match_route(method, path)
  local host = ngx.var.toolzz_host or "chat"
  for _, route in ipairs(ROUTES) do
    if route.host == host and route.method == method then
      local id = path:match(route.pattern)
      if id then return route, id end
    end
  end
  return nil
end

local function is_json_content_type(value)
  if type(value) ~= "string" then return false end
  local media = value:match("^%s*([^;%s]+)")
  return media ~= nil and media:lower() == "application/json"
end

------------------------------------------------------------------------------
-- Records: what creates, updates and duplicates leave for gets and lists.
-- { id, seq, fields (as a create or update sent them), createdAt,
--   updatedAt, activated } as JSON under "rec:<kind>:<id>".

-- A UUID names the same record in either case (as the API's uuid columns do).
local function record_key(kind, id) return "rec:" .. kind .. ":" .. id:lower() end

local function load_record(kind, id)
  local text = state():get(record_key(kind, id))
  return text and cjson.decode(text) or nil
end

-- Each unit's record ids, "id id ...", under "unit:<kind>:<unit>", so that a
-- list reads its unit's records, not every record (10,000 of them in the
-- sync benchmarks). A record whose unit changed stays in the old index and
-- is filtered out there.
local function unit_index_key(kind, unit) return "unit:" .. kind .. ":" .. unit end

local function store_record(kind, rec)
  local text = cjson.encode(rec)
  if not text then return false end
  local unit = type(rec.fields) == "table" and rec.fields[KINDS[kind].unit_field]
  if type(unit) == "string" then
    local key = unit_index_key(kind, unit)
    local ids = state():get(key) or ""
    if not (" " .. ids .. " "):find(" " .. rec.id .. " ", 1, true) then
      state():set(key, ids == "" and rec.id or (ids .. " " .. rec.id))
    end
  end
  return state():set(record_key(kind, rec.id), text)
end

local function new_id()
  local seq = state():incr("seq", 1, 0)
  return format("%08x-%04x-4%03x-8%03x-%012x", ngx.time() % 4294967296, ngx.worker.pid() % 65536, 0, 0, seq), seq
end

local function new_record(kind, fields, id)
  local info = KINDS[kind]
  local new, seq = new_id()
  local now = info.now()
  return { id = id or new, seq = seq, fields = fields, createdAt = now, updatedAt = now }
end

-- Test-only: a record served off its documented shape. reshape = { drop =
-- { "path", ... }, set = { ["path"] = value, ... } }, paths dotted with
-- 1-based indexes ("googleCalendarPlugin.1.googleUser.email"). The answer is
-- decoded and written again (an empty array in it then reads {}).
local function reshaped(text, reshape)
  local doc = cjson.decode(text)
  if type(doc) ~= "table" then return text end
  local function parent_of(path)
    local t, last = doc, nil
    for key in path:gmatch("[^.]+") do
      if last ~= nil then
        t = type(t) == "table" and t[tonumber(last) or last] or nil
      end
      last = key
    end
    if type(t) ~= "table" or last == nil then return nil end
    return t, tonumber(last) or last
  end
  for _, path in ipairs(type(reshape.drop) == "table" and reshape.drop or {}) do
    local t, key = parent_of(tostring(path))
    if t then t[key] = nil end
  end
  for path, value in pairs(type(reshape.set) == "table" and reshape.set or {}) do
    local t, key = parent_of(tostring(path))
    if t then t[key] = value end
  end
  return json_value(doc)
end

local function render(kind, rec)
  local info = KINDS[kind]
  local text
  if kind == "calcom" then
    text = info.build(rec.id, rec.fields, rec.updatedAt, rec.createdAt)
  else
    text = info.build(rec.id, rec.fields, rec.updatedAt, { activated = rec.activated })
  end
  if type(rec.reshape) == "table" then text = reshaped(text, rec.reshape) end
  return text
end

-- The records of one kind whose unit field is unit, oldest first.
local function records_of_unit(kind, unit)
  local unit_field, out = KINDS[kind].unit_field, {}
  for id in (state():get(unit_index_key(kind, unit)) or ""):gmatch("%S+") do
    local rec = load_record(kind, id)
    if type(rec) == "table" and type(rec.fields) == "table" and rec.fields[unit_field] == unit then
      out[#out + 1] = rec
    end
  end
  sort(out, function(a, b) return (a.seq or 0) < (b.seq or 0) end)
  return out
end

local function list_answer(kind, records)
  local parts = {}
  for i, rec in ipairs(records) do parts[i] = type(rec) == "string" and rec or render(kind, rec) end
  local list = "[" .. concat(parts, ",") .. "]"
  if kind == "calcom" then return ordered_object { "data", list } end
  local active = 0
  for _, rec in ipairs(records) do
    if type(rec) == "string" or rec.activated ~= false then active = active + 1 end
  end
  return ordered_object { "items", list, "pluginCount", json_value(#records),
                          "activeCount", json_value(active), "pluginLimit", "50" }
end

-- The normal answer: status, body text.
local function normal_answer(method, path, body, static)
  local route, id = match_route(method, path)
  if not route then
    return 404, error_body(404, "Cannot " .. method .. " " .. ngx.var.uri)
  end
  local auth = ngx.var.http_authorization
  if auth ~= "Bearer " .. current_token() then
    return 401, error_body(401, "Unauthorized")
  end
  local kind, action = route.kind, route.action
  local info = KINDS[kind]
  if static then
    local example = STATIC_BODIES[info.static]
    if action == "list" then return 200, list_answer(kind, { example }) end
    return 200, example
  end
  local request
  if action == "create" or action == "update" then
    if is_json_content_type(ngx.var.http_content_type) and body:match("^%s*{") then
      request = cjson.decode(body)
    end
    if type(request) ~= "table" then
      return 400, error_body(400, "Invalid JSON body")
    end
  end
  if action == "list" then return 200, list_answer(kind, records_of_unit(kind, id)) end
  if id == NIL_UUID then return 404, error_body(404, info.not_found) end
  if action == "create" then
    if kind == "calcom" and (type(request.apiKey) ~= "string" or request.apiKey == "") then
      return 400, error_body(400, "apiKey must be a non-empty string")
    end
    local rec = new_record(kind, request)
    store_record(kind, rec)
    return 201, render(kind, rec)
  end
  local rec = load_record(kind, id)
  if not rec then return 404, error_body(404, info.not_found) end -- an update too, as the API does
  if action == "update" then
    if kind == "calcom" then request.apiKey = rec.fields.apiKey end -- an update never sends it
    rec.fields, rec.updatedAt = request, info.now()
    store_record(kind, rec)
    return 200, render(kind, rec)
  end
  if action == "duplicate" then
    local copy = new_record(kind, rec.fields)
    copy.activated = false
    store_record(kind, copy)
    return 201, render(kind, copy)
  end
  return 200, render(kind, rec) -- get
end

local function handle_api()
  local method = ngx.req.get_method()
  local path, delay_ms, static = parse_prefixes(ngx.var.uri)
  local body = ""
  if static then
    ngx.req.discard_body()
  else
    body = read_body()
  end
  count_request()
  if not static then record(body) end
  local fault = pop_fault()
  if delay_ms > 0 then ngx.sleep(delay_ms / 1000) end
  if not fault then
    local status, text = normal_answer(method, path, body, static)
    return send(status, text)
  end

  if num(fault.delay) then ngx.sleep(fault.delay) end
  if num(fault.stall) then
    ngx.sleep(fault.stall)
    return ngx.exit(444)
  end
  if fault.drop == true then return ngx.exit(444) end
  if type(fault.raw) == "string" then return send_raw(fault.raw, num(fault.trickle), num(fault.trickle_after)) end

  local opts = {
    content_type = type(fault.content_type) == "string" and fault.content_type or nil,
    headers = type(fault.headers) == "table" and fault.headers or nil,
    request_id = type(fault.request_id) == "string" and fault.request_id or nil,
    header_bytes = num(fault.header_bytes),
    chunked = fault.chunked == true,
  }
  local status = num(fault.status)
  if num(fault.big) then
    return send(status or 200, big_body(fault.big), opts)
  end
  if num(fault.objects) then
    return send(status or 200, objects_body(fault.objects), opts)
  end
  if type(fault.body) == "string" then
    return send(status or 200, fault.body, opts)
  end
  if status and (status < 200 or status > 299) then
    return send(status, error_body(status, default_message(status)), opts)
  end
  local normal_status, text = normal_answer(method, path, body, static)
  if status and normal_status >= 200 and normal_status <= 299 then normal_status = status end
  return send(normal_status, text, opts)
end

------------------------------------------------------------------------------
-- Control endpoints (never counted, recorded or faulted)

local function control_reply(status, text, content_type)
  ngx.status = status
  ngx.header["Content-Type"] = content_type or "application/json"
  ngx.header["Content-Length"] = #text
  ngx.print(text)
  return ngx.exit(ngx.HTTP_OK)
end

local function control_error(status, message)
  return control_reply(status, error_body(status, message))
end

local function reset()
  state():flush_all()
  state():flush_expired()
  seen_connections():flush_all()
  seen_connections():flush_expired()
end

local function decode_request_json()
  return cjson.decode(read_body())
end

local CONTROL = {}

CONTROL["GET /_control/ping"] = function()
  return control_reply(200, "ok", "text/plain")
end

CONTROL["GET /_control/last"] = function()
  return control_reply(200, state():get("last") or "null")
end

CONTROL["GET /_control/stats"] = function()
  local dict = state()
  return control_reply(200, ordered_object {
    "requests", json_value(dict:get("stats:requests") or 0),
    "connections", json_value(dict:get("stats:connections") or 0),
    "writes", json_value(dict:get("stats:writes") or 0),
  })
end

CONTROL["GET /_control/journal"] = function()
  local dict, entries = state(), {}
  for i = 1, math.min(dict:get("journal:n") or 0, JOURNAL_MAX) do
    entries[i] = dict:get("journal:" .. i) or "(lost)"
  end
  return control_reply(200, json_array(entries))
end

CONTROL["POST /_control/reset"] = function()
  ngx.req.discard_body()
  reset()
  return control_reply(200, '{"ok":true}')
end

CONTROL["POST /_control/faults"] = function()
  local list = decode_request_json()
  if type(list) == "table" and next(list) ~= nil and not is_sequence(list) then
    list = { list } -- a single fault object
  end
  if type(list) ~= "table" then
    return control_error(400, "expected a JSON array of fault objects")
  end
  for i, fault in ipairs(list) do
    if type(fault) ~= "table" or is_sequence(fault) then
      return control_error(400, "fault #" .. i .. " is not an object")
    end
  end
  local dict = state()
  for _, fault in ipairs(list) do
    local ok, err = dict:rpush("faults", json_value(fault))
    if not ok then return control_error(500, "cannot queue fault: " .. tostring(err)) end
  end
  return control_reply(200, ordered_object { "pending", json_value(dict:llen("faults") or 0) })
end

CONTROL["GET /_control/faults"] = function()
  return control_reply(200, ordered_object { "pending", json_value(state():llen("faults") or 0) })
end

CONTROL["POST /_control/records"] = function()
  local doc = decode_request_json()
  if type(doc) ~= "table" or not KINDS[doc.kind] or type(doc.fields) ~= "table" then
    return control_error(400, 'expected {"kind":"calcom"|"function","fields":{...},"id"?}')
  end
  local rec = new_record(doc.kind, doc.fields, type(doc.id) == "string" and doc.id or nil)
  if type(doc.reshape) == "table" then rec.reshape = doc.reshape end -- test-only, see reshaped()
  store_record(doc.kind, rec)
  return control_reply(200, ordered_object { "id", json_value(rec.id) })
end

CONTROL["POST /_control/config"] = function()
  local config = decode_request_json()
  if type(config) ~= "table" or is_sequence(config) then
    return control_error(400, "expected a JSON object")
  end
  if config.token ~= nil then
    if type(config.token) ~= "string" then return control_error(400, "token must be a string") end
    state():set("config:token", config.token)
  end
  if config.journal ~= nil then
    if type(config.journal) ~= "boolean" then return control_error(400, "journal must be a boolean") end
    state():set("config:journal", config.journal)
  end
  return control_reply(200, '{"ok":true}')
end

local function handle_control(uri)
  local handler = CONTROL[ngx.req.get_method() .. " " .. uri]
  if handler then return handler() end
  for key in pairs(CONTROL) do
    if key:match("^%S+ (.*)$") == uri then
      return control_error(405, "Method " .. ngx.req.get_method() .. " not allowed on " .. uri)
    end
  end
  return control_error(404, "Cannot " .. ngx.req.get_method() .. " " .. uri)
end

function _M.handle()
  local uri = ngx.var.uri
  if sub(uri, 1, 10) == "/_control/" then return handle_control(uri) end
  return handle_api()
end

return _M

-- The test gateway's handlers: an nginx (worker_processes 1) that loads
-- toolzz like an application would and calls the stand-in API from several
-- phases, for spec/60-openresty_spec.lua. Started by spec/openresty/ctl with
-- nginx.conf.in; see that file for the locations.
--
-- Every answer is JSON. A call answers
--   { ok = true, result = <decoded response>, transport = "ngx"|"curl", phase =, hooks = [...] }
--   { ok = false, error = { kind, message, status, ..., text = tostring(err) }, transport =, ... }
-- so the spec can check error fields and that no secret leaks into them.
local toolzz = require "toolzz"
local toolzz_ngx = require "toolzz.ngx"
local cjson = require("cjson").new()

local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local pairs, ipairs, type, tostring, tonumber, pcall, error = pairs, ipairs, type, tostring, tonumber, pcall, error
local concat, sort = table.concat, table.sort
local getenv = os.getenv

local _M = {}

local UUID = "6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab"
local CALCOM_BODY = {
  title = "Calcom", unitId = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff", calcomUsername = "ana-silva",
  timezone = "America/Sao_Paulo", prompt = "Agende reuniões de 30 minutos.",
  checkAvailabilityEnabled = true, createBookingEnabled = true,
}

-- What happened in phases that cannot answer a request themselves.
local stored = {}

local function token()
  return getenv("TOOLZZ_TEST_TOKEN") or "test-token-0123456789abcdef"
end

local function reply(status, doc)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(cjson.encode(doc))
  return ngx.exit(ngx.HTTP_OK)
end

-- An error as plain data (every field, plus its tostring).
local function error_view(err)
  if type(err) ~= "table" then return { kind = "lua", text = tostring(err) } end
  local view = {}
  for k, v in pairs(err) do view[k] = v end
  view.text = tostring(err)
  return view
end

-- Which transport(s) the client has used: "ngx", "curl", "both" or "none".
local function transport_of(client)
  return require("toolzz.testing").transport_of(client)
end

-- A query argument, unescaped (nil when absent or empty).
local function arg(name)
  local value = ngx.var["arg_" .. name]
  if value == nil or value == "" then return nil end
  return ngx.unescape_uri(value)
end

local function phase()
  local ok, name = pcall(ngx.get_phase)
  return ok and name or "?"
end

-- Close every idle pooled connection toward url's server, so that the next
-- call starts on a fresh connection (as a fresh libcurl client would).
local function drain_pool(url)
  local target = toolzz_ngx._parse_url(url)
  if not target then return end
  for _ = 1, 1000 do
    local sock = ngx.socket.tcp()
    sock:settimeout(1000)
    if not sock:connect(target.connect_host, target.port, { pool = target.pool }) then return end
    local reused = sock:getreusedtimes() > 0
    sock:close()
    if not reused then return end
  end
end

-- ---- probes: one Cal.com update in the current phase, on a fresh client ----

local function probe(base_url, transport)
  local client, err = toolzz.new {
    token = token(), base_url = base_url or getenv("TOOLZZ_TEST_HTTP_URL"),
    retries = 0, timeout = 5, transport = transport or "auto",
  }
  if not client then return { phase = phase(), ok = false, error = error_view(err) } end
  local res
  res, err = client.calcom.update(UUID, CALCOM_BODY)
  local out = {
    phase = phase(), usable = toolzz_ngx.usable(), transport = transport_of(client),
    ok = res ~= nil and res.id == UUID, error = err and error_view(err) or nil,
  }
  client:close()
  return out
end

-- init_by_lua (master): only whether cosockets would be used.
function _M.init()
  stored.init = { phase = phase(), usable = toolzz_ngx.usable() }
end

-- init_worker_by_lua: a blocking (libcurl) call, then a timer's call.
function _M.init_worker()
  stored.init_worker = probe()
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    stored.timer = probe()
  end)
  if not ok then stored.timer = { ok = false, error = { kind = "lua", text = tostring(err) } } end
end

-- rewrite_by_lua / access_by_lua / log_by_lua: probe and keep the outcome.
function _M.probe_in(name)
  local result = probe(arg("base_url"), arg("transport"))
  if name == "log" then stored.log = result else ngx.ctx.probe = result end
end

-- content_by_lua after rewrite/access probes: answer their outcome.
function _M.report()
  return reply(200, ngx.ctx.probe or { ok = false, error = { kind = "lua", text = "no probe ran" } })
end

-- content_by_lua: probe here.
function _M.probe_content()
  return reply(200, probe(arg("base_url"), arg("transport")))
end

-- set_by_lua: probe here (cannot yield), returned as the variable's JSON.
function _M.probe_set()
  return cjson.encode(probe(arg("base_url"), arg("transport")))
end

function _M.print_var(name)
  ngx.header["Content-Type"] = "application/json"
  ngx.print(ngx.var[name])
end

-- GET /phase/stored?name=init|init_worker|timer|log: what ran outside a
-- request. Waits (up to 5 s) for a probe still running (the timer's).
function _M.report_stored()
  local name = arg("name")
  for _ = 1, 500 do
    if stored[name] then break end
    ngx.sleep(0.01)
  end
  return reply(stored[name] and 200 or 404, stored[name] or { error = "nothing stored for " .. tostring(name) })
end

-- ---- POST /call: { endpoint, id, fields, options, drain } or { op, args, ... } --

-- Clients are kept per options, as an application keeps one client.
local clients = {}

local function options_key(options)
  local keys = {}
  for k in pairs(options) do keys[#keys + 1] = k end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. tostring(options[k]) end
  return concat(parts, "\n")
end

local function record_hook(name)
  return function(info)
    local hooks = ngx.ctx.hooks
    if not hooks then hooks = {}; ngx.ctx.hooks = hooks end
    local copy = { hook = name }
    for k, v in pairs(info) do copy[k] = v end
    hooks[#hooks + 1] = copy
    if ngx.ctx.raise_in_hooks then
      error(name .. " fails for " .. token() .. " with " .. tostring(info.error))
    end
  end
end

local function client_for(options)
  local key = options_key(options)
  local client = clients[key]
  if client then return client end
  local opts = { token = token(), on_request = record_hook("on_request"), on_response = record_hook("on_response") }
  for k, v in pairs(options) do opts[k] = v end
  local err
  client, err = toolzz.new(opts)
  if not client then return nil, err end
  clients[key] = client
  return client
end

local function read_request()
  ngx.req.read_body()
  local ok, request = pcall(cjson.decode, ngx.req.get_body_data() or "")
  if not ok or type(request) ~= "table" then return nil end
  return request
end

function _M.call()
  local request = read_request()
  if not request then return reply(400, { error = "expected a JSON object" }) end
  local options = type(request.options) == "table" and request.options or {}
  ngx.ctx.raise_in_hooks = request.raise_in_hooks == true
  if request.drain then drain_pool(options.base_url or "") end
  local client, err = client_for(options)
  if not client then
    return reply(200, { ok = false, error = error_view(err), phase = phase() })
  end
  local group, verb = request.endpoint, "update"
  if type(request.op) == "string" then group, verb = request.op:match("^(%w+)%.(%w+)$") end
  local fn = client[group or ""] and client[group][verb or ""]
  if not fn then return reply(400, { error = "unknown endpoint or op" }) end
  local args = type(request.args) == "table" and request.args or { request.id, request.fields }
  ngx.update_time()
  local started = ngx.now()
  local res
  res, err = fn(args[1], args[2])
  ngx.update_time()
  return reply(200, {
    ok = res ~= nil, result = res, error = err and error_view(err) or nil,
    transport = transport_of(client), phase = phase(), hooks = ngx.ctx.hooks or {},
    elapsed = ngx.now() - started,
  })
end

-- Whether an answer (or failure) of a GET was seen by this request's hooks.
local function read_answered()
  for _, h in ipairs(ngx.ctx.hooks or {}) do
    if h.hook == "on_response" and h.method == "GET" then return true end
  end
  return false
end

-- POST /batch: { options, items = { { endpoint, id, fields }, ... }, concurrency,
-- keep_results, stop_after (should_stop answers true once that many items ended),
-- stop_after_read (should_stop answers true once a GET was answered) }
-- -> { results = { { ok, error }, ... }, transport, elapsed,
--      streamed = { { index, ok, error }, ... } (each on_result call, in order),
--      counts (keep_results = false: what the batch returned) }
function _M.batch()
  local request = read_request()
  if not request or type(request.items) ~= "table" then return reply(400, { error = "expected items" }) end
  local client, err = client_for(type(request.options) == "table" and request.options or {})
  if not client then return reply(200, { error = error_view(err) }) end
  local list = {}
  for i, item in ipairs(request.items) do
    list[i] = item.op and { item.op, item.args[1], item.args[2] } or { item.endpoint, item.id, item.fields }
  end
  local streamed, stop_after = {}, tonumber(request.stop_after)
  local batch_opts = { concurrency = request.concurrency, keep_results = request.keep_results }
  batch_opts.on_result = function(index, r)
    streamed[#streamed + 1] = { index = index, ok = r.res ~= nil, error = r.err and error_view(r.err) or nil }
  end
  if stop_after then batch_opts.should_stop = function() return #streamed >= stop_after end end
  if request.stop_after_read then batch_opts.should_stop = read_answered end
  ngx.update_time()
  local started = ngx.now()
  local results
  results, err = client.batch(list, batch_opts)
  ngx.update_time()
  if not results then return reply(200, { error = error_view(err) }) end
  if request.keep_results == false then
    return reply(200, { counts = results, streamed = streamed, transport = transport_of(client),
                        elapsed = ngx.now() - started })
  end
  local out = {}
  for i, r in ipairs(results) do
    out[i] = { ok = r.res ~= nil, id = r.res and r.res.id, error = r.err and error_view(r.err) or nil,
               result = r.res }
  end
  return reply(200, { results = out, streamed = streamed, transport = transport_of(client),
                      elapsed = ngx.now() - started })
end

-- POST /transport: one attempt of the cosocket transport itself, for the
-- transport specs. { method, url, body (absent: none), fresh, drain,
-- options = { timeout, connect_timeout, max_response_bytes } } ->
-- { status, body, headers, elapsed, version } or
-- { failed = true, kind, message, elapsed, headers, sent }
function _M.transport()
  local request = read_request()
  if not request then return reply(400, { error = "expected a JSON object" }) end
  if request.drain then drain_pool(request.url) end
  local options = type(request.options) == "table" and request.options or {}
  local t = toolzz_ngx.new(options, { Authorization = "Bearer " .. token(), Accept = "application/json" },
    { content_type = "application/json" })
  local body = type(request.body) == "string" and request.body or nil
  local a, b, c, d, e, f = t:request(request.method, request.url, body, request.fresh == true)
  t:close()
  if a then return reply(200, { status = a, body = b, headers = c, elapsed = d, version = e }) end
  return reply(200, { failed = true, kind = b, message = c, elapsed = d, headers = e, sent = f })
end

return _M

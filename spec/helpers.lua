-- Shared set-up for the specs: module paths for the running Lua, the stand-in
-- server's addresses, fresh valid bodies, and a client factory.
local script_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local root = script_dir:match("^(.*)/spec$") or "."

local flavour = rawget(_G, "jit") and "luajit" or (_VERSION == "Lua 5.1" and "lua5.1" or "lua5.4")
local build = os.getenv("TOOLZZ_CPATH_DIR") or (root .. "/build/" .. flavour)
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/spec/server/?.lua;"
  .. root .. "/spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local stand_in = require "client"
local H = { root = root, flavour = flavour, stand_in = stand_in, env = stand_in.env() }

H.UUID = "6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab"
H.UNIT = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff"
H.USER = "9d7a3b1c-2e4f-4a6b-8c0d-112233445566"
H.GOOGLE_TOKEN = "ya29.a0AfB_byC-secret-google-oauth-token-42"

function H.calcom_body(over)
  local b = {
    title = "Calcom",
    unitId = H.UNIT,
    calcomUsername = "ana-silva",
    timezone = "America/Sao_Paulo",
    prompt = "Agende reuniões de 30 minutos.",
    checkAvailabilityEnabled = true,
    createBookingEnabled = true,
  }
  for k, v in pairs(over or {}) do b[k] = v end
  return b
end

function H.gcal_body(over)
  local b = {
    name = "Google Calendar",
    description = "Use this function to book meetings.",
    userId = H.USER,
    unityId = H.UNIT,
    googleCalendar = {
      googleId = "109876543210987654321",
      calendarId = "primary",
      timezone = "America/Sao_Paulo",
      notificationContent = "Nova reunião",
      googleToken = H.GOOGLE_TOKEN,
      googleUser = {
        name = "Ana Silva", given_name = "Ana", family_name = "Silva",
        picture = "https://lh3.googleusercontent.com/a/photo.jpg",
        email = "ana@example.com", hd = "example.com",
      },
    },
  }
  for k, v in pairs(over or {}) do b[k] = v end
  return b
end

H.API_KEY = "cal_live_9f8e7d6c5b4a39281706abcdef"

-- A Cal.com create body (the update fields and the apiKey).
function H.calcom_create_body(over)
  local b = H.calcom_body { apiKey = H.API_KEY }
  for k, v in pairs(over or {}) do b[k] = v end
  return b
end

-- A client for the stand-in (plain http unless opts.base_url says otherwise).
-- The command in process (toolzz.cli.main), against the stand-in, with
-- TOOLZZ_TOKEN set and stdin the given text: exit status, stdout, stderr.
function H.run_cli(argv, stdin)
  local out, err = {}, {}
  local function sink(list)
    return { write = function(_, ...) for _, s in ipairs { ... } do list[#list + 1] = s end end, flush = function() end }
  end
  local sys = {
    stdin = { read = function() local t = stdin or "" stdin = "" return t end },
    stdout = sink(out), stderr = sink(err),
    getenv = function(name) return name == "TOOLZZ_TOKEN" and H.env.token or nil end,
    isatty = function() return false end,
    now = function() return 0 end,
  }
  local full = { "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url, "--retries", "0" }
  for _, a in ipairs(argv) do full[#full + 1] = a end
  local code = require("toolzz.cli").main(full, sys)
  return code, table.concat(out), table.concat(err)
end

-- The body of the last request the stand-in took, a PUT: decoded, and as sent.
function H.put_body()
  local last = H.stand_in.last()
  assert(last and last.method == "PUT", "the last request was not a PUT: " .. tostring(last and last.method))
  return require("cjson").decode(last.body), last.body
end

-- A desired-file record of a Cal.com integration (sync): the update fields
-- without unitId, apiKey as a reference to the variable env_name, key, and over.
function H.sync_calcom_record(key, env_name, over)
  local r = H.calcom_body { apiKey = { env = env_name } }
  r.unitId = nil
  r.key = key
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

-- A folder with the given subfolders, and a function that removes it (for
-- the test's finally: busted gives finally to specs, not to this helper).
function H.temp_dir(...)
  local dir = os.tmpname()
  os.remove(dir)
  local parts = { "'" .. dir .. "'" }
  for _, sub in ipairs { ... } do parts[#parts + 1] = "'" .. dir .. "/" .. sub .. "'" end
  assert(os.execute("mkdir -p " .. table.concat(parts, " ")))
  return dir, function() os.execute("rm -rf '" .. dir .. "'") end
end

-- Write text to path (binary).
function H.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function H.client(opts)
  local toolzz = require "toolzz"
  local o = { token = H.env.token, base_url = H.env.http_url, converflow_url = H.env.cf_http_url,
              retries = 0, timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local client, err = toolzz.new(o)
  assert(client, tostring(err))
  return client
end

-- Run fn(client) on a client whose hooks record every info table (and whose
-- on_response raises, naming the error, unless hooks_hold) with stderr
-- captured. Returns what fn returned (two values), the hook infos, what was
-- printed, the client.
function H.observe(opts, fn, hooks_hold)
  local seen = {}
  local o = { retries = 1, timeout = 1 }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.on_request = function(info) seen[#seen + 1] = info end
  o.on_response = function(info)
    seen[#seen + 1] = info
    if not hooks_hold then error("hook fails with " .. tostring(info.error)) end
  end
  local client = H.client(o)
  local printed = {}
  local real = io.stderr
  io.stderr = { write = function(_, ...) -- luacheck: ignore 122
    for _, s in ipairs { ... } do printed[#printed + 1] = tostring(s) end
  end }
  local ok, res, err = pcall(fn, client)
  io.stderr = real -- luacheck: ignore 122
  assert(ok, res)
  return res, err, seen, table.concat(printed), client
end

-- A client (retries = 2, timeout = 2 unless opts say) that records each
-- attempt's start: returns the client and the list { at =, attempt =, method = }.
function H.recording_client(opts)
  local starts = {}
  local o = { retries = 2, timeout = 2 }
  for k, v in pairs(opts or {}) do o[k] = v end
  o.on_request = function(info)
    starts[#starts + 1] = { at = H.now(), attempt = info.attempt, method = info.method }
  end
  return H.client(o), starts
end

-- One update of each kind with a valid body (id defaults to H.UUID).
function H.calcom(client, id)
  return client.calcom.update(id or H.UUID, H.calcom_body())
end

function H.gcal(client, id)
  return client.gcal.update(id or H.UUID, H.gcal_body())
end

-- Every string reachable from v (keys and values), for secret checks.
function H.strings(v, out, seen)
  out, seen = out or {}, seen or {}
  local t = type(v)
  if t == "string" then
    out[#out + 1] = v
  elseif t == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      H.strings(k, out, seen)
      H.strings(x, out, seen)
    end
    local mt = getmetatable(v)
    if mt and mt.__tostring then out[#out + 1] = tostring(v) end
  elseif v ~= nil then
    out[#out + 1] = tostring(v)
  end
  return out
end

function H.contains_secret(v, secrets)
  for _, s in ipairs(H.strings(v)) do
    for _, secret in ipairs(secrets) do
      if s:find(secret, 1, true) then return s end
    end
  end
  return nil
end

-- A TCP port on 127.0.0.1 that nothing listens on.
function H.closed_port()
  local socket = require "socket"
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  server:close()
  return port
end

-- Run fn(port) with a port on 127.0.0.1 whose accept queue is full, so a
-- connect to it never completes (the next SYN is dropped). Returns false
-- without calling fn when the kernel completed every connection.
function H.with_unanswered_port(fn)
  local socket = require "socket"
  local server = assert(socket.tcp())
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(0))
  local _, port = server:getsockname()
  local fillers, full = {}, false
  for _ = 1, 8 do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok, err = c:connect("127.0.0.1", port)
    fillers[#fillers + 1] = c
    if not ok and err == "timeout" then full = true break end
  end
  local ok, err = true, nil
  if full then ok, err = pcall(fn, port) end
  for _, c in ipairs(fillers) do c:close() end
  server:close()
  if not ok then error(err, 0) end
  return full
end
H.QUEUE_NEVER_FULL = "the kernel completed every connection (accept queue never full)"

-- A TLS port on 127.0.0.1 whose peer reads the first bytes of each
-- ClientHello and resets the connection (SO_LINGER 0), as a flaky load
-- balancer does: a network fault inside the handshake, no certificate
-- problem. Runs in a child process (up to `accepts` connections, 2 s idle);
-- returns its port and a function that stops it.
function H.handshake_reset_server(accepts)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(([[
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    io.stdout:write(port, "\n") io.stdout:flush()
    s:settimeout(2)
    for _ = 1, %d do
      local c = s:accept()
      if not c then break end
      c:settimeout(2)
      c:receive(5)
      c:setoption("linger", { on = true, timeout = 0 })
      c:close()
    end
  ]]):format(accepts or 10))
  f:close()
  local child = assert(io.popen("lua5.4 " .. script, "r"))
  local port = assert(tonumber(child:read("*l")), "the reset server did not start")
  return port, function()
    child:close()
    os.remove(script)
  end
end

function H.now()
  return require("toolzz.core").now()
end

return H

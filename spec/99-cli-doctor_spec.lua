-- `toolzz doctor [--unit ID]` against the stand-in: read-only (no write
-- reaches the server), the token's verdict naming where it came from, both
-- hosts (DNS, TLS, proxy, latency, request ids), and with --unit each
-- record's shape: unknown, missing and invalid fields, found through the
-- schema (every required field of the patch path). The report carries no
-- secret; exit 0 when every check passed, 1 otherwise.
local H = require "helpers"
local cli = require "toolzz.cli"
local schema = require("toolzz").schema

local S = H.stand_in
local SECRETS = { H.env.token, H.GOOGLE_TOKEN, H.API_KEY }
local REQUEST_ID = "request id %x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x"

-- cli.main with stdout and stderr captured, the environment given by env
-- (TOOLZZ_TOKEN the stand-in's unless env says), both hosts the stand-in's.
local function doctor(argv, env)
  env = env or {}
  if env.TOOLZZ_TOKEN == nil then env.TOOLZZ_TOKEN = H.env.token end
  local out, err = {}, {}
  local sys = {
    stdin = io.stdin,
    stdout = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end, flush = function() end },
    stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
    getenv = function(name) if env[name] == false then return nil end return env[name] end,
    isatty = function() return false end,
    now = require("toolzz.core").now,
  }
  local args = { "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url }
  for _, a in ipairs(argv) do args[#args + 1] = a end
  local code = cli.main(args, sys)
  return code, table.concat(out), table.concat(err)
end

local function assert_no_secret(text)
  for _, secret in ipairs(SECRETS) do
    assert.is_nil(text:find(secret, 1, true), "a secret in the report:\n" .. text)
  end
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

local function line_of(text, pattern)
  for line in text:gmatch("[^\n]+") do
    if line:find(pattern) then return line end
  end
  return nil
end

local function temp_file(contents)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(contents)
  f:close()
  return path
end

describe("toolzz doctor", function()
  before_each(function() S.reset() end)

  it("passes every check against the stand-in, with GETs only, and says so", function()
    local code, out, err = doctor { "doctor" }
    assert.equal(0, code, out .. err)
    assert.equal("", err)
    assert.matches("^toolzz doctor: toolzz ", out)
    assert.truthy(line_of(out, "^base_url " .. esc(H.env.http_url) .. " %(%-%-base%-url%)$"), out)
    assert.truthy(line_of(out, "^converflow_url " .. esc(H.env.cf_http_url) .. " %(%-%-converflow%-url%)$"), out)
    assert.truthy(line_of(out, "^  ok    DNS: an address; TLS: none %(plain http, loopback only%); proxy: none$"), out)
    local probe = assert(line_of(out, "GET /api/v1/functions/"), out)
    assert.matches("^  ok    GET /api/v1/functions/00000000%-0000%-0000%-0000%-000000000000: http 404, %d+ ms, "
      .. REQUEST_ID .. " %(no such record: the host answered%)$", probe)
    assert.truthy(line_of(out, "^  ok    GET /api/v1/calcom/integration/0+%-"), out)
    assert.truthy(line_of(out, "^  ok    token from TOOLZZ_TOKEN: accepted$"), out)
    assert.matches("\ndoctor: all 5 checks passed\n$", out)
    assert.is_nil(out:find("FAIL", 1, true))
    assert.equal(0, S.writes())
    assert.equal(2, S.stats().requests)
    assert_no_secret(out)
  end)

  it("says the token from TOOLZZ_TOKEN was rejected (401), exit 1", function()
    local code, out = doctor({ "doctor" }, { TOOLZZ_TOKEN = "wrong-token-0123456789" })
    assert.equal(1, code)
    assert.truthy(line_of(out, "^  FAIL  token from TOOLZZ_TOKEN: rejected %(http 401%): check TOOLZZ_TOKEN$"), out)
    assert.truthy(line_of(out, "^  FAIL  GET /api/v1/functions/.*: http 401, %d+ ms, " .. REQUEST_ID .. "$"), out)
    assert.is_nil(out:find("wrong-token-0123456789", 1, true))
    assert.matches("\ndoctor: 3 of 5 checks failed\n$", out)
  end)

  it("names the --token-file a rejected token came from", function()
    local path = temp_file("file-token-0123456789\n")
    local code, out = doctor({ "--token-file", path, "doctor" })
    os.remove(path)
    assert.equal(1, code)
    assert.truthy(line_of(out, "^  FAIL  token from %-%-token%-file " .. esc(path)
      .. ": rejected %(http 401%): check the file$"), out)
    assert.is_nil(out:find("file-token-0123456789", 1, true))
  end)

  it("says there is no token, exit 1", function()
    local code, out = doctor({ "doctor" }, { TOOLZZ_TOKEN = false })
    assert.equal(1, code)
    assert.truthy(line_of(out, "^  FAIL  token: none %(TOOLZZ_TOKEN is not set%)"), out)
    assert.equal(0, S.stats().requests)
  end)

  it("reports TLS and DNS failures per host", function()
    local code, out = doctor { "--base-url", H.env.tls_bad_url, "--converflow-url", "https://toolzz-doctor.invalid",
                               "--ca-file", H.env.ca_file, "doctor" }
    assert.equal(1, code)
    assert.truthy(line_of(out, "^  FAIL  TLS: .*certificate.*; proxy: none$"), out)
    assert.truthy(line_of(out, "^  FAIL  DNS: .*toolzz%-doctor%.invalid; proxy: none$"), out)
    assert.truthy(line_of(out, "^  FAIL  token from TOOLZZ_TOKEN: not checked %(no host answered%)$"), out)
  end)

  it("reports TLS verified over https", function()
    local code, out = doctor { "--base-url", H.env.tls_url, "--converflow-url", H.env.cf_tls_url,
                               "--ca-file", H.env.ca_file, "doctor" }
    assert.equal(0, code, out)
    assert.truthy(line_of(out, "^  ok    DNS: resolved; TLS: verified %(with %-%-ca%-file%); proxy: none$"), out)
  end)

  describe("--unit", function()
    local client
    before_each(function() client = H.client() end)
    after_each(function() client:close() end)

    local function put_calcom(reshape)
      return S.put_record("calcom", H.calcom_create_body(), nil, reshape)
    end
    local function put_gcal(reshape)
      return S.put_record("function", H.gcal_body(), nil, reshape)
    end

    it("passes records of the documented shape", function()
      local a = assert(client.calcom.create(H.calcom_create_body())).id
      local b = assert(client.gcal.create(H.gcal_body())).id
      local writes = S.writes()
      local code, out = doctor { "doctor", "--unit", H.UNIT }
      assert.equal(0, code, out)
      assert.truthy(line_of(out, "^unit " .. esc(H.UNIT) .. "$"), out)
      assert.truthy(line_of(out, "^  ok    calcom list: 1 Cal%.com integration %(http 200, %d+ ms, " .. REQUEST_ID .. "%)$"), out)
      assert.truthy(line_of(out, "^  ok    calcom " .. esc(a) .. ": the documented shape %(GET: http 200"), out)
      assert.truthy(line_of(out, "^  ok    gcal " .. esc(b) .. ": the documented shape %(GET: http 200"), out)
      assert.equal(writes, S.writes())
      assert_no_secret(out)
    end)

    it("lists an extra field, a missing field and a wrong type, as the record has them, with GETs only", function()
      local good = put_calcom()
      local bad = put_calcom { drop = { "calcomUsername" }, set = { surpriseField = 1, createBookingEnabled = "yes" } }
      local fn = put_gcal { drop = { "googleCalendarPlugin.1.googleUser.email" },
                            set = { ["googleCalendarPlugin.1.colour"] = "red", ["googleCalendarPlugin.1.timezone"] = 3 } }
      local code, out = doctor { "doctor", "--unit", H.UNIT }
      assert.equal(1, code, out)
      assert.truthy(line_of(out, "^  ok    calcom " .. esc(good) .. ": the documented shape"), out)
      assert.matches("^  FAIL  calcom " .. esc(bad) .. ": unknown: surpriseField; missing: calcomUsername; "
        .. "invalid: createBookingEnabled %(must be a boolean.-%) %(GET: http 200, %d+ ms, " .. REQUEST_ID .. "%)$",
        line_of(out, "calcom " .. esc(bad)) or "")
      assert.matches("^  FAIL  gcal " .. esc(fn) .. ": unknown: googleCalendarPlugin%[1%]%.colour; "
        .. "missing: googleCalendarPlugin%[1%]%.googleUser%.email; invalid: googleCalendarPlugin%[1%]%.timezone %(",
        line_of(out, "gcal " .. esc(fn)) or "")
      assert.matches("\ndoctor: 2 of 10 checks failed\n$", out)
      assert.equal(0, S.writes())
      assert_no_secret(out)
    end)

    it("finds every required field of the schema missing, when the record lacks it", function()
      local ids = {}
      for name, field in pairs(schema.calcom.fields) do
        if field.required then ids[name] = put_calcom { drop = { name } } end
      end
      for name, field in pairs(schema.gcal.fields.googleCalendar.fields) do
        if field.required then ids["gcal:" .. name] = put_gcal { drop = { "googleCalendarPlugin.1." .. name } } end
      end
      local code, out = doctor { "doctor", "--unit", H.UNIT }
      assert.equal(1, code)
      local n = 0
      for name, id in pairs(ids) do
        n = n + 1
        local kind, field = name:match("^(gcal):(.+)$")
        local want = kind and ("googleCalendarPlugin[1]." .. field) or name
        local line = line_of(out, esc(id)) or ""
        assert.matches("^  FAIL  ", line)
        assert.truthy(line:find("missing: " .. want, 1, true), line)
      end
      assert.truthy(n >= 10)
      assert.equal(0, S.writes())
    end)
  end)
end)

describe("toolzz doctor's record fields", function()
  local doctor_module = require "toolzz.cli.doctor"

  -- field -> true for each field of a class of types/library/toolzz.lua
  local function declared(class)
    local f = assert(io.open(H.root .. "/types/library/toolzz.lua", "rb"))
    local text = f:read("*a")
    f:close()
    local block = assert(text:match("\n%-%-%-@class " .. class:gsub("%.", "%%.") .. "\n(.-)\n[^%-]"), class)
    local fields = {}
    for name in block:gmatch("%-%-%-@field ([%w_]+)") do fields[name] = true end
    return fields
  end

  -- A record with every declared field (and those of its plugin row and user).
  local function full_record(class)
    local record = {}
    for name in pairs(declared(class)) do record[name] = "x" end
    return record
  end

  it("are those the LuaLS record types declare, no more and no fewer", function()
    local calcom = full_record("toolzz.CalcomRecord")
    assert.same({}, doctor_module.unknown_fields("calcom", calcom))
    local gcal = full_record("toolzz.GcalRecord")
    gcal.googleCalendarPlugin = { full_record("toolzz.GoogleCalendarPlugin") }
    gcal.googleCalendarPlugin[1].googleUser = full_record("toolzz.GoogleUser")
    assert.same({}, doctor_module.unknown_fields("gcal", gcal))
    calcom.zzz, gcal.zzz, gcal.googleCalendarPlugin[1].zzz, gcal.googleCalendarPlugin[1].googleUser.zzz = 1, 1, 1, 1
    assert.same({ "zzz" }, doctor_module.unknown_fields("calcom", calcom))
    assert.same({ "googleCalendarPlugin[1].googleUser.zzz", "googleCalendarPlugin[1].zzz", "zzz" },
      doctor_module.unknown_fields("gcal", gcal))
    -- and it knows nothing the types do not declare
    for group, class in pairs { calcom = "toolzz.CalcomRecord", gcal = "toolzz.GcalRecord",
                                from = "toolzz.GoogleCalendarPlugin" } do
      local fields = declared(class)
      for _, name in ipairs(doctor_module.RECORD_ONLY[group]) do
        assert.is_true(fields[name], name .. " is not a field of " .. class)
      end
    end
  end)
end)

describe("toolzz doctor, the command #no_valgrind", function()
  local function run(env, args)
    local quote = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
    local parts = { "env", "-u", "LUA_PATH_5_4", "-u", "LUA_CPATH_5_4" }
    for k, v in pairs(env) do parts[#parts + 1] = quote(k .. "=" .. v) end
    parts[#parts + 1] = quote("LUA_PATH=" .. H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;")
    parts[#parts + 1] = quote("LUA_CPATH=" .. H.root .. "/build/lua5.4/?.so;;")
    parts[#parts + 1] = "lua5.4 " .. quote(H.root .. "/bin/toolzz") .. " " .. args .. " 2>&1; echo \"exit $?\""
    local p = assert(io.popen(table.concat(parts, " ")))
    local out = p:read("*a")
    p:close()
    local body, code = out:match("^(.-)exit (%d+)\n$")
    return tonumber(code), body
  end

  it("exits 0 from a shell when every check passes", function()
    S.reset()
    local code, out = run({ TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = H.env.http_url,
                            TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url }, "doctor")
    assert.equal(0, code, out)
    assert.truthy(line_of(out, "^base_url .* %(TOOLZZ_BASE_URL%)$"), out)
  end)

  it("names the proxy in use, credentials hidden", function()
    local port = H.closed_port()
    local code, out = run({ TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = "https://toolzz-doctor.invalid",
                            TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url,
                            https_proxy = "http://someone:proxy-secret@127.0.0.1:" .. port }, "doctor")
    assert.equal(1, code)
    assert.truthy(line_of(out, "^  FAIL  .*proxy: http://%*%*%*@127%.0%.0%.1:" .. port .. " %(from https_proxy%)"), out)
    assert.is_nil(out:find("proxy-secret", 1, true), out)
    assert.truthy(line_of(out, "^converflow_url .*\n?"), out)
  end)
end)

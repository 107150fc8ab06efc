-- CPU cost per call without the network: toolzz's validate + encode (the
-- `_build` path every update takes) + decode of the documented response (the
-- `_interpret` path), against lua-cjson encode + decode alone on the same
-- tables, for the Cal.com and the Google Calendar body. Also the layers of
-- the toolzz path one by one, to show where the time goes.
--
--   lua5.4 bench/cpu.lua [iterations=5000] [rounds=15] [seconds=60]
--
-- CPU time (os.clock) of `iterations` calls, in `rounds` interleaved rounds
-- (many short rounds, so that the median is robust to other processes);
-- prints per measurement: RESULT cpu <endpoint> <case> <median µs> <best µs>
-- The response bytes and headers are taken once from the stand-in's /static.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"
local core = require "toolzz.core"
local validate = require "toolzz.validate"
local cjson = require "cjson"

local opts = B.options(arg, { iterations = 5000, rounds = 15, seconds = 60 })
local clock = os.clock

local client = assert(toolzz.new { token = B.token, base_url = B.http_url .. "/static" })
local testing = require "toolzz.testing"
local interpret = testing.interpret
local max_body_bytes = toolzz.DEFAULTS.max_body_bytes
-- validate + encode of one update body, as every update does it
local function build(spec, id, fields)
  local request = testing.request(client, spec.name .. ".update", id, fields)
  return request and request.body
end

-- The stand-in's exact answer for one endpoint: body bytes and header table.
local function fetch(spec, fields)
  local request = assert(testing.request(client, spec.name .. ".update", B.UUID, fields))
  local transport = core.transport { headers = testing.curl_headers(client), timeout = 10 }
  local status, body, headers = transport:request("PUT", request.url, request.body)
  transport:close()
  assert(status == 200, "the stand-in answered " .. tostring(status) .. " " .. tostring(body))
  return body, headers
end

local endpoints = {}
for _, e in ipairs {
  { name = "calcom", spec = toolzz.schema.calcom, fields = B.calcom_body() },
  { name = "gcal", spec = toolzz.schema.gcal, fields = B.gcal_body() },
} do
  e.response, e.headers = fetch(e.spec, e.fields)
  endpoints[#endpoints + 1] = e
end

-- The measured bodies, each one call's worth: total = toolzz validate + encode
-- + decode; cjson = cjson.encode + cjson.decode; then toolzz's layers alone:
-- prepare (defaults, copy), check (validation), encode (C encoder), decode
-- (interpret: cjson decode + status handling), build (prepare+check+encode).
local function cases(e)
  local spec, fields, response, headers, id = e.spec, e.fields, e.response, e.headers, B.UUID
  local prepared = validate.prepare(spec, fields, nil)
  local encode, max_body = core.encode, max_body_bytes
  local cjson_encode, cjson_decode = cjson.encode, cjson.decode
  return {
    { "total", function()
        local json = build(spec, id, fields)
        local res = interpret(200, response, headers)
        return json, res
      end },
    { "cjson", function()
        return cjson_encode(fields), cjson_decode(response)
      end },
    { "prepare", function()
        return validate.prepare(spec, fields, nil)
      end },
    { "check", function()
        return validate.check(spec, prepared, true, {})
      end },
    { "encode", function()
        return encode(prepared, max_body)
      end },
    { "decode", function()
        return interpret(200, response, headers)
      end },
    { "build", function()
        return build(spec, id, fields)
      end },
  }
end

-- Sanity: what is measured works.
for _, e in ipairs(endpoints) do
  assert(build(e.spec, B.UUID, e.fields))
  local res = assert(interpret(200, e.response, e.headers))
  assert(type(res.id) == "string")
end

local samples = {} -- key -> list of µs per call
local order = {}
local n = opts.iterations
local deadline = B.now() + opts.seconds -- fewer rounds rather than a run without end
for _ = 1, opts.rounds do
  if B.now() > deadline then break end
  for _, e in ipairs(endpoints) do
    for _, case in ipairs(cases(e)) do
      local key = e.name .. "\t" .. case[1]
      if not samples[key] then
        samples[key] = {}
        order[#order + 1] = key
      end
      local f = case[2]
      for _ = 1, 200 do f() end -- warm up (and let LuaJIT compile)
      collectgarbage()
      local t0 = clock()
      for _ = 1, n do f() end
      local us = (clock() - t0) / n * 1e6
      local list = samples[key]
      list[#list + 1] = us
    end
  end
end

for _, key in ipairs(order) do
  local list = samples[key]
  table.sort(list)
  local endpoint, what = key:match("^(.-)\t(.*)$")
  B.result("cpu", endpoint, what, list[math.floor((#list + 1) / 2)], list[1])
end
client:close()

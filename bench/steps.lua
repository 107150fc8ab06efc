-- One step of a call, repeated: for counting its instructions alone under
-- callgrind (bench/instructions.sh step_<name> rows). Against the stand-in's
-- /static on both hosts, Cal.com unless the name says gcal.
--
--   lua5.4 bench/steps.lua step=<name> count=N [warmup=20]
--
-- Steps: update, get (the whole call); transport, get_transport (the
-- client's libcurl transport alone, t:request with a ready body); build,
-- gcal_build (validate + encode into the request); prepare, check, encode,
-- gcal_check (the parts of build); quick, gcal_quick (check's C quick
-- test alone); interpret, gcal_interpret (the answer
-- decoded and judged); decode (lua-cjson alone, through toolzz's decoder);
-- conclude (attempts.settle: interpret + unwrap + hooks); start, get_start (a job
-- made: arguments checked, request built).
-- Prints RESULT step <name> <count> like bench/http.lua, for instructions.sh.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"
local testing = require "toolzz.testing"
local validate = require "toolzz.validate"
local attempts = require "toolzz.attempts"
local core = require "toolzz.core"

local opts = B.options(arg, { step = "update", count = 1000, warmup = 20 })
local client = assert(toolzz.new {
  token = B.token, base_url = B.http_url .. "/static", converflow_url = B.cf_http_url .. "/static",
})
local state = require("toolzz.client").state_of(client)
local id, fields, gfields = B.UUID, B.calcom_body(), B.gcal_body()
local calcom, gcal = toolzz.schema.calcom, toolzz.schema.gcal
local interpret, decode = testing.interpret, require("toolzz.responses").decode

-- The client's transport, and the stand-in's answers to the requests measured.
assert(client.calcom.get(id))
local transport = testing.curl_transport(client)
local put = assert(testing.request(client, "calcom.update", id, fields))
local gput = assert(testing.request(client, "gcal.update", id, gfields))
local get = assert(testing.request(client, "calcom.get", id))
local status, body, headers = transport:request("PUT", put.url, put.body)
local _, gbody, gheaders = transport:request("PUT", gput.url, gput.body)
assert(status == 200, "the stand-in answered " .. tostring(status))
local prepared, gprepared = validate.prepare(calcom, fields), validate.prepare(gcal, gfields)

local STEPS = {
  update = function() return client.calcom.update(id, fields) end,
  get = function() return client.calcom.get(id) end,
  transport = function() return transport:request("PUT", put.url, put.body) end,
  get_transport = function() return transport:request("GET", get.url) end,
  build = function() return testing.request(client, "calcom.update", id, fields) end,
  gcal_build = function() return testing.request(client, "gcal.update", id, gfields) end,
  prepare = function() return validate.prepare(calcom, fields) end,
  check = function() return validate.check(calcom, prepared, true, {}) end,
  gcal_check = function() return validate.check(gcal, gprepared, true, {}, {}) end,
  quick = function() return validate.valid(calcom, prepared, true) end,
  gcal_quick = function() return validate.valid(gcal, gprepared, true) end,
  encode = function() return core.encode(prepared, 1e6) end,
  interpret = function() return interpret(200, body, headers) end,
  gcal_interpret = function() return interpret(200, gbody, gheaders) end,
  decode = function() return decode(body) end,
  conclude = function() return attempts.settle(state, put, 1, status, body, headers, 0.001, "1.1") end,
  start = function() return testing.start(client, "calcom.update", id, fields) end,
  get_start = function() return testing.start(client, "calcom.get", id) end,
}
local step = STEPS[opts.step] or error("unknown step " .. tostring(opts.step))
for _ = 1, opts.warmup do step() end
local t0 = B.now()
for _ = 1, opts.count do step() end
B.result("step", opts.step, opts.count, B.now() - t0)
client:close()

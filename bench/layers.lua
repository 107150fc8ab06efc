-- Where a sequential call's time goes: the client's CPU time and the wall
-- time per call of toolzz's layers, each timed alone against the stand-in's
-- /static with the Cal.com body, in interleaved rounds:
--
--   update     client.calcom.update(id, fields): everything
--   transport  the client's libcurl transport alone, t:request("PUT", url, json)
--              (libcurl multi + reading the answer into Lua strings and a header table)
--   interpret  transport + interpret (the decode of the answer)
--   build      validate + encode alone, no network
--
--   lua5.4 bench/layers.lua [calls=1000] [rounds=15] [seconds=30]
--
-- Prints, as medians over rounds of each round's figures (differences are
-- taken within a round, so other processes disturb them less):
--   RESULT layer update|transport|build <CPU µs per call> <wall µs per call>
--   RESULT layer decode <µs> <µs>   interpret − transport
--   RESULT layer rest <µs> <µs>     update − interpret − build: the glue
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"

local opts = B.options(arg, { calls = 1000, rounds = 15, seconds = 30 })
local now, clock = B.now, os.clock

local client = assert(toolzz.new { token = B.token, base_url = B.http_url .. "/static" })
local testing = require "toolzz.testing"
local interpret = testing.interpret
local fields, id = B.calcom_body(), B.UUID
local function build() return testing.request(client, "calcom.update", id, fields) end
local update = client.calcom.update
local request = assert(build())
local url, json = request.url, request.body
assert(update(id, fields)) -- makes the client's transport and connection
local transport = assert(testing.curl_transport(client), "the client has no libcurl transport")

local LAYERS = {
  { "update", function()
      local res, err = update(id, fields)
      if not res then error(tostring(err)) end
    end },
  { "transport", function()
      local status, body = transport:request("PUT", url, json)
      if status ~= 200 then error(tostring(body)) end
    end },
  { "interpret", function()
      local res, err = interpret(transport:request("PUT", url, json))
      if not res then error(tostring(err)) end
    end },
  { "build", function()
      return build()
    end },
}

local cpu, wall = {}, {} -- name -> list of per-round µs per call
local function add(name, c, w)
  cpu[name] = cpu[name] or {}
  wall[name] = wall[name] or {}
  table.insert(cpu[name], c)
  table.insert(wall[name], w)
end
local deadline = now() + opts.seconds -- fewer rounds rather than a run without end
for _ = 1, opts.rounds do
  if now() > deadline then break end
  local c_round, w_round = {}, {}
  for _, layer in ipairs(LAYERS) do
    local name, f = layer[1], layer[2]
    for _ = 1, 100 do f() end
    collectgarbage()
    local c0, t0 = clock(), now()
    for _ = 1, opts.calls do f() end
    local c1, t1 = clock(), now()
    c_round[name], w_round[name] = (c1 - c0) / opts.calls * 1e6, (t1 - t0) / opts.calls * 1e6
    add(name, c_round[name], w_round[name])
  end
  add("decode", c_round.interpret - c_round.transport, w_round.interpret - w_round.transport)
  add("rest", c_round.update - c_round.interpret - c_round.build,
    w_round.update - w_round.interpret - w_round.build)
end

local function median(list)
  table.sort(list)
  return list[math.floor((#list + 1) / 2)]
end
for _, name in ipairs { "update", "transport", "decode", "build", "rest" } do
  B.result("layer", name, median(cpu[name]), median(wall[name]))
end
client:close()

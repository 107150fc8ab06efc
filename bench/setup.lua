-- Writes what the C baseline sends, taken from toolzz itself so both send the
-- same bytes: DIR/headers.txt (toolzz's request headers, one a line) and
-- DIR/calcom.json (toolzz's encoding of the Cal.com example body).
--
--   lua5.4 bench/setup.lua build/bench
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local toolzz = require "toolzz"

local dir = assert(arg[1], "usage: setup.lua DIR")
local client = assert(toolzz.new { token = B.token, base_url = B.http_url .. "/static" })
local testing = require "toolzz.testing"
local json = assert(testing.request(client, "calcom.update", B.UUID, B.calcom_body())).body

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end
write("headers.txt", table.concat(testing.curl_headers(client), "\n") .. "\n")
write("calcom.json", json)
client:close()

-- Writes what the C baseline sends, taken from toolzz itself so both send the
-- same bytes: DIR/headers.txt (toolzz's request headers, one a line),
-- DIR/headers_get.txt (the same without Content-Type: a GET has no body) and
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
-- the transport adds Content-Type only to a request with a body
local headers = table.concat(testing.curl_headers(client), "\n") .. "\n"
write("headers.txt", headers .. "Content-Type: application/json\n")
write("headers_get.txt", headers)
write("calcom.json", json)
client:close()

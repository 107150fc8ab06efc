-- A connection reset during the TLS handshake is a network fault (retried
-- like one), on libcurl and on cosockets.
-- Each spec here failed when it was written and names the defect it shows.
local H = require "helpers"

local S = H.stand_in

describe("TLS handshake resets", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  it("cosockets: a handshake failure without a certificate verdict is network ('18: handshake failed' too)", function()
    local kind = require("toolzz.ngx").handshake_failure_kind
    assert.equals("network", kind("handshake failed"))
    assert.equals("network", kind("18: handshake failed")) -- seen from lua-nginx-module after a reset
    assert.equals("network", kind("closed"))
    assert.equals("tls", kind("18: self-signed certificate"))
    assert.equals("tls", kind("20: unable to get local issuer certificate"))
    assert.equals("tls", kind("certificate host mismatch"))
  end)

  it("a connection reset during the TLS handshake (a network fault, no certificate problem) is retried for a GET", function()
    -- a peer that reads a few bytes of the ClientHello and resets the connection
    local port, stop = H.handshake_reset_server()
    local attempts = 0
    local c = H.client { base_url = "https://localhost:" .. tostring(port), ca_file = H.env.ca_file,
                         retries = 2, on_request = function() attempts = attempts + 1 end }
    local res, err = c.gcal.get(H.UUID)
    c:close()
    stop()
    assert.is_nil(res)
    assert.equals(3, attempts, "attempts made (retries = 2); the error: " .. tostring(err))
    assert.equals(3, err.attempts)
    assert.equals("network", err.kind) -- "connection reset" (CONTRACT: network), not a handshake that failed on its merits
  end)
end)

-- Option strings with CR, LF or NUL are config errors of toolzz.new.
-- Each spec here failed when it was written and names the defect it shows.
local H = require "helpers"

local S = H.stand_in

describe("option strings", function()
  local client
  before_each(function()
    S.reset()
    client = H.client()
  end)
  after_each(function() client:close() end)

  describe("an option string with CR, LF or NUL is a config error of toolzz.new, not a Lua error raised by every call", function()
    for _, case in ipairs {
      { "proxy", "http://proxy.example:3128\r\nX-Injected: 1" },
      { "ca_path", "/etc/ssl/certs\n" },
      { "ca_file", "\0" }, -- io.open stops at the NUL
    } do
      it(case[1], function()
        local toolzz = require "toolzz"
        local opts = { token = H.env.token, base_url = H.env.http_url, converflow_url = H.env.cf_http_url,
                       retries = 0, timeout = 2 }
        opts[case[1]] = case[2]
        if case[1] == "ca_file" then opts.ca_file = H.env.ca_file .. case[2] end
        local c, err = toolzz.new(opts)
        if not c then
          assert.equals("config", err.kind)
          return
        end
        local ok, res, call_err = pcall(c.gcal.get, H.UUID)
        c:close()
        assert.is_true(ok, "the call raised: " .. tostring(res))
        assert.is_nil(res)
        assert.equals("config", call_err and call_err.kind)
      end)
    end
  end)
end)

-- Issue 16 item 15: the command's help and messages. Help texts come from
-- the installed command (a child process; --help exits); the rest runs
-- cli.main in process with a fake system, against the stand-in.
-- Tagged no_valgrind: part of the work happens in child processes.
local H = require "helpers"
local cli_install = require "cli_install"
local cli = require "toolzz.cli"
local stand_in = H.stand_in

local toolzz = cli_install.toolzz

-- A sys for cli.main capturing stdout and stderr; env: its environment.
local function fake_system(env)
  local out, err = {}, {}
  local function sink(list)
    return { write = function(self, ...) for _, s in ipairs { ... } do list[#list + 1] = s end return self end,
             flush = function(self) return self end }
  end
  local sys = {
    stdin = io.stdin, stdout = sink(out), stderr = sink(err),
    getenv = function(name) return (env or {})[name] end,
    isatty = function() return false end,
    now = function() return 0 end,
  }
  return sys, function() return table.concat(out) end, function() return table.concat(err) end
end

local function main(argv, env)
  local sys, out, err = fake_system(env)
  local status = cli.main(argv, sys)
  return status, out(), err()
end

local GLOBAL = { "--token-file PATH", "--base-url URL", "--converflow-url URL", "--timeout SECONDS", "--retries N",
                 "--ca-file PATH", "--dry-run", "--verbose", "--show-secrets", "--output" }

describe("toolzz help #no_valgrind", function()
  setup(function() cli_install.install() end)
  teardown(function() cli_install.cleanup() end)

  it("a subcommand's --help lists the global options its errors send people to", function()
    for _, argv in ipairs { { "gcal", "patch", "--help" }, { "calcom", "get", "--help" }, { "batch", "--help" } } do
      local r = toolzz(argv)
      assert.equal(0, r.code)
      for _, option in ipairs(GLOBAL) do
        assert.matches(option, r.out, 1, true, table.concat(argv, " ") .. " lacks " .. option)
      end
    end
  end)

  it("calcom list --help names its argument UNIT_ID in usage and arguments alike", function()
    local r = toolzz { "calcom", "list", "--help" }
    assert.equal(0, r.code)
    assert.matches("Usage: toolzz calcom list [-h] UNIT_ID", r.out, 1, true)
    assert.matches("\n   UNIT_ID ", r.out, 1, true)
    assert.not_matches("\n   id ", r.out, 1, true)
  end)

  it("--timeout and --retries show their defaults", function()
    local r = toolzz { "--help" }
    local defaults = require("toolzz").DEFAULTS
    assert.matches("--timeout SECONDS[^\n]*%(default: " .. defaults.timeout .. "%)", r.out)
    assert.matches("--retries N[^\n]*%(default: " .. defaults.retries .. "%)", r.out)
  end)
end)

describe("toolzz messages", function()
  local TOKEN = { TOOLZZ_TOKEN = "messages-spec-token-0123456789" }

  it("an unknown command's did-you-mean is its own sentence", function()
    local status, _, err = main { "calcom", "lsit" }
    assert.equal(2, status)
    assert.matches("unknown command 'lsit'. Did you mean 'list'?", err, 1, true)
  end)

  it("configuration errors name the flag or the variable, never the Lua option", function()
    local status, _, err = main({ "--base-url", "ftp://x", "gcal", "get", H.UUID }, TOKEN)
    assert.equal(4, status)
    assert.matches("--base-url must use http or https", err, 1, true)
    assert.not_matches("base_url", err, 1, true)

    status, _, err = main({ "gcal", "get", H.UUID },
      { TOOLZZ_TOKEN = TOKEN.TOOLZZ_TOKEN, TOOLZZ_BASE_URL = "ftp://x" })
    assert.equal(4, status)
    assert.matches("TOOLZZ_BASE_URL must use http or https", err, 1, true)
    assert.not_matches("base_url", err, 1, true)

    status, _, err = main({ "--converflow-url", "http://example.com", "calcom", "get", H.UUID }, TOKEN)
    assert.equal(4, status)
    assert.matches("--converflow-url: plain http:// is allowed only", err, 1, true)
    assert.not_matches("converflow_url", err, 1, true)

    status, _, err = main({ "--ca-file", "/nonexistent/ca.pem", "gcal", "get", H.UUID }, TOKEN)
    assert.equal(4, status)
    assert.matches("--ca-file", err, 1, true)
    assert.not_matches("ca_file", err, 1, true)
  end)

  it("the missing token message names what the command takes", function()
    local status, _, err = main({ "gcal", "get", H.UUID }, {})
    assert.equal(4, status)
    assert.matches("set TOOLZZ_TOKEN or use --token-file PATH", err, 1, true)
    assert.not_matches("token option", err, 1, true)
  end)

  it("a 401 says where the token came from", function()
    stand_in.reset()
    local status, _, err = main({ "--base-url", H.env.http_url, "gcal", "get", H.UUID },
      { TOOLZZ_TOKEN = "a-wrong-token-0123456789" })
    assert.equal(1, status)
    assert.matches("401", err, 1, true)
    assert.matches("check the token in TOOLZZ_TOKEN", err, 1, true)

    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "wb"))
    f:write("a-wrong-token-0123456789\n")
    f:close()
    status, _, err = main({ "--token-file", path, "--base-url", H.env.http_url, "gcal", "get", H.UUID }, {})
    assert.equal(1, status)
    assert.matches("check the token in --token-file " .. path, err, 1, true)
  end)

  it("a batch whose lines got 401 says where the token came from, on its summary line", function()
    stand_in.reset()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "wb"))
    f:write('{"op":"gcal.get","id":"', H.UUID, '"}\n{"op":"gcal.get","id":"', H.UUID, '"}\n')
    f:close()
    local status, _, err = main({ "--base-url", H.env.http_url, "batch", path }, { TOOLZZ_TOKEN = "a-wrong-token-0123456789" })
    assert.equal(1, status)
    assert.matches("^toolzz: batch: 2 lines, 0 ok, 2 failed in [%d.]+ s; the API refused the token %(401%) 2 times: "
      .. "check the token in TOOLZZ_TOKEN\n$", err)
  end)

  it("batch refuses -o table and -o pretty (it prints JSON Lines), nothing sent", function()
    stand_in.reset()
    for _, format in ipairs { "table", "pretty" } do
      local status, out, err = main({ "-o", format, "--base-url", H.env.http_url, "batch", "-" }, TOKEN)
      assert.equal(2, status, err)
      assert.equal("", out)
      assert.matches("--output " .. format .. " is for single calls", err, 1, true)
    end
    assert.equal(0, stand_in.stats().requests)
  end)
end)

-- The command's structure (toolzz.cli): command modules behind one
-- interface, and the crash handler: an unexpected Lua error anywhere in a
-- run prints one line on stderr (no traceback, no secret) and exits 70,
-- in process and from the installed command. Tagged no_valgrind: the last
-- test runs child processes.
local H = require "helpers"
local cli = require "toolzz.cli"
local install = require "cli_install"

local TOKEN = "unit-test-token-0123456789"

-- A system for cli.main that records stdout and stderr (over: fields to replace).
local function fake_system(over)
  local out, err = {}, {}
  local sys = {
    stdin = { read = function() return "" end },
    stdout = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end, flush = function() end },
    stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
    getenv = function(name) return name == "TOOLZZ_TOKEN" and TOKEN or nil end,
    isatty = function() return false end,
    now = function() return 0 end,
  }
  for k, v in pairs(over or {}) do sys[k] = v end
  return sys, function() return table.concat(out) end, function() return table.concat(err) end
end

-- A test-only command module: `toolzz explode` raises what raise(args, sys) gives.
local function exploding(raise)
  return {
    add_to_parser = function(parser)
      parser:command("explode", "Raise a Lua error.")
      return { "explode" }
    end,
    command = function(args, sys) error(raise(args, sys), 0) end,
  }
end

-- The crash line's checks: exactly one line, no traceback, none of the secrets.
local function assert_one_crash_line(text, secrets)
  assert.matches("^toolzz: internal error", text)
  local _, newlines = text:gsub("\n", "")
  assert.equal(1, newlines, text)
  assert.equal("\n", text:sub(-1))
  assert.is_nil(text:find("traceback", 1, true), text)
  assert.is_nil(text:find("\t", 1, true), text)
  for _, s in ipairs(secrets) do assert.is_nil(text:find(s, 1, true), "a secret was printed: " .. text) end
end

describe("cli command modules", function()
  it("a module in the list is a command: its name, its arguments, its exit status", function()
    local module = {
      add_to_parser = function(parser)
        parser:command("hello", "Say hello."):argument("who")
        return { "hello" }
      end,
      command = function(args, sys)
        if args.who == "usage" then return nil, "no such person" end
        if args.who == "status" then return 5 end
        if args.who == "config" then return nil, require("toolzz.errors").config("bad") end
        sys.stdout:write("hello ", args.who, "\n")
        return true
      end,
    }
    local modules = { "toolzz.cli.call", module }
    local sys, out, err, _ = fake_system()
    assert.equal(0, cli.main({ "hello", "ana" }, sys, modules))
    assert.equal("hello ana\n", out())
    assert.equal("", err())
    sys, _, err = fake_system()
    assert.equal(2, cli.main({ "hello", "usage" }, sys, modules))
    assert.equal("toolzz: no such person (see: toolzz hello --help)\n", err())
    assert.equal(5, cli.main({ "hello", "status" }, fake_system(), modules))
    sys, _, err = fake_system()
    assert.equal(4, cli.main({ "hello", "config" }, sys, modules))
    assert.equal("toolzz: config: bad\n", err())
    -- the call module's commands are still there
    sys, out = fake_system()
    assert.equal(0, cli.main({ "--dry-run", "gcal", "duplicate", H.UUID }, sys, modules))
    assert.matches('"dry_run":true', out())
  end)
end)

describe("toolzz.is_dry_run", function()
  it("is true for a dry run's result only, not for a table shaped like one", function()
    local toolzz = require "toolzz"
    local client = assert(toolzz.new { token = TOKEN, base_url = "http://127.0.0.1:9", dry_run = true })
    local res = assert(client.gcal.duplicate(H.UUID))
    client:close()
    assert.is_true(toolzz.is_dry_run(res))
    local copy = {}
    for k, v in pairs(res) do copy[k] = v end
    assert.same(res, copy)
    assert.is_false(toolzz.is_dry_run(copy))
    assert.is_false(toolzz.is_dry_run(nil))
    assert.is_false(toolzz.is_dry_run("x"))
  end)
end)

describe("cli crash handler", function()
  lazy_teardown(function() install.cleanup() end)

  it("prints one line without the token and exits 70 when a command raises", function()
    local cases = {
      function(_, sys) return "boom: " .. sys.getenv("TOOLZZ_TOKEN") .. "\nsecond line\n\tthird" end,
      function() return { reason = "a table" } end,
      function() return setmetatable({}, { __tostring = function() error("cannot print me") end }) end,
      function() return nil end,
      function(_, sys) return ('{"token":"%s"}'):format(sys.getenv("TOOLZZ_TOKEN"):gsub("%-", "\\u002d")) end,
    }
    for i, raise in ipairs(cases) do
      local sys, out, err = fake_system()
      assert.equal(70, cli.main({ "explode" }, sys, { exploding(raise) }), "case " .. i)
      assert.equal("", out())
      assert_one_crash_line(err(), { TOKEN, "traceback", "\\u002d" })
    end
  end)

  it("scrubs the --token-file token and --set-file secrets read during the run", function()
    local dir = install.work()
    local token = install.write_file(dir .. "/crash-token", "file-token-abcdefghijklmnop\n")
    local sys, _, err = fake_system { getenv = function() return nil end }
    local module = exploding(function(args, run)
      local opts = assert(require("toolzz.cli.common").client_options(args, run))
      return "lost " .. opts.token .. " in " .. args.token_file
    end)
    assert.equal(70, cli.main({ "--token-file", token, "explode" }, sys, { module }))
    assert_one_crash_line(err(), { "file-token-abcdefghijklmnop" })
    assert.matches("lost %[REDACTED%] in", err())

    -- a real command: the call module fails while printing its result (a
    -- bug that would show the googleToken read by --set-file)
    local body = H.gcal_body()
    body.googleCalendar.googleToken = nil
    local body_file = install.write_file(dir .. "/crash-body.json", require("cjson").encode(body))
    local google = install.write_file(dir .. "/crash-google", H.GOOGLE_TOKEN .. "\n")
    local out_sys, err_text
    out_sys, _, err_text = fake_system {
      stdout = { write = function() error("stdout is on fire near " .. H.GOOGLE_TOKEN) end, flush = function() end },
    }
    local code = cli.main({ "--dry-run", "gcal", "create", "-f", body_file,
                            "--set-file", "googleCalendar.googleToken=" .. google }, out_sys)
    assert.equal(70, code, err_text())
    assert_one_crash_line(err_text(), { TOKEN, H.GOOGLE_TOKEN })
    assert.matches("stdout is on fire near %[REDACTED%]", err_text())
  end)

  it("the installed command exits 70 with one line when Lua raises inside a run #no_valgrind", function()
    -- LUA_INIT makes every write to stdout raise, with the token in the message
    local init = "local mt = getmetatable(io.stdout); local write = mt.__index.write; "
      .. "mt.__index.write = function(f, ...) if f == io.stdout then "
      .. "error('stdout broke; token ' .. os.getenv('TOOLZZ_TOKEN')) end return write(f, ...) end"
    local r = install.toolzz({ "--dry-run", "gcal", "duplicate", H.UUID }, { env = { LUA_INIT = init } })
    assert.equal(70, r.code, r.err)
    assert.equal("", r.out)
    assert_one_crash_line(r.err, { H.env.token })
    assert.matches("stdout broke; token %[REDACTED%]", r.err)
  end)
end)

-- Issue 16 item 3: a failed write or flush of stdout is never ignored: one
-- line on stderr, exit 74 (EX_IOERR); a batch finishes the writes it started
-- and says how many results were lost. The installed command runs as a
-- child process against the stand-in (>/dev/full, stdout closed), and
-- cli.main in process with a stdout whose writes fail. Tagged no_valgrind:
-- the work happens in child processes.
local H = require "helpers"
local cli = require "cli_install"
local stand_in = H.stand_in

local toolzz, lines_of = cli.toolzz, cli.lines_of

local FULL = "No space left on device"

describe("toolzz with a stdout that cannot be written #no_valgrind", function()
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function() stand_in.reset() end)

  it("get >/dev/full: one line on stderr, exit 74", function()
    local id = stand_in.put_record("function", H.gcal_body { type = "google-calendar" })
    local r = toolzz({ "gcal", "get", id }, { shell = ">/dev/full" })
    assert.equal(74, r.code, r.err)
    assert.equal(1, #lines_of(r.err), r.err)
    assert.matches("^toolzz: cannot write to stdout %(" .. FULL .. "%)", r.err)
  end)

  it("--help and --version >/dev/full: one line on stderr, exit 74", function()
    for _, argv in ipairs { { "--help" }, { "gcal", "patch", "--help" }, { "--version" } } do
      local r = toolzz(argv, { shell = ">/dev/full" })
      assert.equal(74, r.code, table.concat(argv, " ") .. ": " .. r.err)
      assert.equal("toolzz: cannot write to stdout (" .. FULL .. ")\n", r.err)
    end
  end)

  it("stdout closed: refuses to run (nothing sent), one line on stderr, exit 74", function()
    local id = stand_in.put_record("function", H.gcal_body { type = "google-calendar" })
    local r = toolzz({ "gcal", "patch", id, "--set", "description=never" }, { shell = ">&-" })
    assert.equal(74, r.code, r.err)
    assert.equal(1, #lines_of(r.err), r.err)
    assert.matches("^toolzz: stdout is closed", r.err)
    assert.equal(0, stand_in.stats().requests)
    r = toolzz({ "gcal", "get", id }, { shell = ">&-" })
    assert.equal(74, r.code, r.err)
  end)

  it("batch >/dev/full: stops, finishes the writes it started, says how many results were lost, exit 74", function()
    local lines = {}
    for k = 1, 20 do
      local id = stand_in.put_record("function", H.gcal_body { type = "google-calendar" })
      lines[k] = '{"op":"gcal.patch","id":"' .. id .. '","fields":{"description":"p' .. k .. '"}}'
    end
    local r = toolzz({ "batch", cli.input_file(table.concat(lines, "\n")), "--concurrency", "2" },
      { shell = ">/dev/full" })
    assert.equal(74, r.code, r.err)
    local err_lines = lines_of(r.err)
    assert.equal(1, #err_lines, r.err)
    local lost = tonumber(err_lines[1]:match("; (%d+) results? lost: cannot write to stdout %(" .. FULL .. "%)"))
    assert.is_number(lost, r.err)
    local writes = stand_in.writes()
    assert.is_true(writes >= 1 and writes < 20, "the batch went on after stdout failed: " .. writes .. " writes")
    assert.equal(writes, lost) -- every write the server got is a result lost
    assert.matches("not run", err_lines[1], 1, true)
  end)
end)

describe("cli.main with a failing stdout", function()
  local function failing_system()
    local err = {}
    local sys = {
      stdin = { read = function() return "" end },
      stdout = { write = function() return nil, FULL, 28 end, flush = function() return nil, FULL, 28 end },
      stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end, flush = function() end },
      getenv = function(name)
        if name == "TOOLZZ_TOKEN" then return H.env.token end
        if name == "TOOLZZ_BASE_URL" then return H.env.http_url end
        if name == "TOOLZZ_CONVERFLOW_URL" then return H.env.cf_http_url end
      end,
      isatty = function() return false end,
      now = function() return 0 end,
    }
    return sys, function() return table.concat(err) end
  end

  it("a get whose result cannot be printed exits 74", function()
    stand_in.reset()
    local id = stand_in.put_record("function", H.gcal_body { type = "google-calendar" })
    local sys, err = failing_system()
    local status = require("toolzz.cli").main({ "--base-url", H.env.http_url, "gcal", "get", id }, sys)
    assert.equal(74, status, err())
    assert.matches("cannot write to stdout (" .. FULL .. ")", err(), 1, true)
  end)
end)

-- Issue 16 item 2: Ctrl-C (SIGINT) or SIGTERM in `toolzz batch`. The
-- installed command runs as a child process against the stand-in: line 2
-- is slow (its host answers after 30 s), lines 3-6 are patches that are done
-- (the server got their 4 PUTs), then the signal comes. Every write the
-- server got must be on stdout, the exit status is 130 (143 for TERM), one
-- line on stderr, no traceback. Tagged no_valgrind: the work happens in
-- child processes.
local H = require "helpers"
local cli = require "cli_install"
local stand_in = H.stand_in

local quote, decode, lines_of = cli.quote, cli.decode, cli.lines_of

local SLOW_MS = 30000

-- Wait until f() is true (polling), at most `seconds`; -> whether it became true.
local function wait_for(seconds, f)
  local deadline = H.now() + seconds
  while H.now() < deadline do
    if f() then return true end
    os.execute("sleep 0.05")
  end
  return f()
end

-- Start the installed command in the background (SIGINT and SIGTERM at
-- their default disposition, as in a terminal's foreground job) -> a
-- table of its file names: pid, out, err, code.
local function start(args)
  local root = cli.install()
  local base = cli.work() .. "/bg" .. tostring(math.random(1e9))
  local files = { pid = base .. ".pid", out = base .. ".out", err = base .. ".err", code = base .. ".code" }
  local env = {
    "TOOLZZ_TOKEN=" .. quote(H.env.token),
    "TOOLZZ_BASE_URL=" .. quote(H.env.http_url),
    "TOOLZZ_CONVERFLOW_URL=" .. quote(H.env.cf_http_url .. "/delay/" .. SLOW_MS),
    "LUA_PATH=" .. quote(root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua;;"),
    "LUA_CPATH=" .. quote(root .. "/lib/lua/5.4/?.so;;"),
  }
  local command = "env -u LUA_INIT -u LUA_INIT_5_4 --default-signal=INT,TERM " .. table.concat(env, " ") .. " "
    .. quote(root .. "/bin/toolzz")
  for _, a in ipairs(args) do command = command .. " " .. quote(a) end
  local script = "( " .. command .. " </dev/null >" .. quote(files.out) .. " 2>" .. quote(files.err)
    .. " & echo $! >" .. quote(files.pid) .. "; wait $!; echo $? >" .. quote(files.code) .. " ) >/dev/null 2>&1 &"
  assert(os.execute(script))
  assert(wait_for(5, function() return cli.read_file(files.pid) ~= nil and cli.read_file(files.pid) ~= "" end))
  files.process = cli.read_file(files.pid):match("%d+")
  return files
end

-- The batch of the issue: line 1 a fast get, line 2 a slow get, lines 3-6 patches.
local function batch_file(ids)
  local lines = {
    '{"op":"gcal.get","id":"' .. ids[1] .. '"}',
    '{"op":"calcom.get","id":"' .. H.UUID .. '"}', -- the converflow host answers after SLOW_MS
  }
  for k = 2, 5 do
    lines[#lines + 1] = '{"op":"gcal.patch","id":"' .. ids[k] .. '","fields":{"description":"patched ' .. k .. '"}}'
  end
  return cli.input_file(table.concat(lines, "\n") .. "\n")
end

local function interrupted_batch(signal, status)
  local ids = {}
  for k = 1, 5 do ids[k] = stand_in.put_record("function", H.gcal_body { type = "google-calendar" }) end
  local run = start { "batch", batch_file(ids), "--concurrency", "8" }
  assert.is_true(wait_for(10, function() return stand_in.writes() >= 4 end), "the 4 PUTs never came")
  os.execute("sleep 0.3") -- their answers are read
  local signalled = H.now()
  assert(os.execute("kill -" .. signal .. " " .. run.process))
  assert.is_true(wait_for(10, function() return (cli.read_file(run.code) or "") ~= "" end), "the command did not end")
  local took = H.now() - signalled
  assert.is_true(took < 3, "ended " .. took .. " s after the signal (the slow line takes 30 s)")

  local out, err = cli.read_file(run.out), cli.read_file(run.err)
  assert.equal(status, tonumber(cli.read_file(run.code):match("%d+")), err)
  assert.equal(4, stand_in.writes())
  -- every line that ran is reported, each with its line number: 1, and the patches 3-6
  local seen = {}
  for _, text in ipairs(lines_of(out)) do
    local result = decode(text)
    assert.is_nil(seen[result.line], "line " .. tostring(result.line) .. " twice")
    seen[result.line] = result
  end
  assert.is_true(seen[1] and seen[1].ok, out)
  for line = 3, 6 do
    assert.is_true(seen[line] and seen[line].ok, "line " .. line .. " (a write the server got) is missing: " .. out)
    assert.equal("patched " .. (line - 1), seen[line].res.description)
  end
  assert.is_nil(seen[2], "line 2 never ran to its end")
  -- one line on stderr, naming the signal; no traceback
  local err_lines = lines_of(err)
  assert.equal(1, #err_lines, err)
  assert.matches("^toolzz: batch interrupted by SIG" .. signal, err_lines[1])
  assert.not_matches("traceback", err, 1, true)
  assert.not_matches("interrupted!", err, 1, true)
end

describe("toolzz batch interrupted #no_valgrind", function()
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function() stand_in.reset() end)

  it("by SIGINT reports every write the server got, exit 130, one line on stderr", function()
    interrupted_batch("INT", 130)
  end)

  it("by SIGTERM reports every write the server got, exit 143, one line on stderr", function()
    interrupted_batch("TERM", 143)
  end)

  it("prints the finished lines at once while a slow write is in flight; a second SIGINT ends it at once", function()
    local ids = {}
    for k = 1, 5 do ids[k] = stand_in.put_record("function", H.gcal_body { type = "google-calendar" }) end
    local lines = {
      '{"op":"gcal.get","id":"' .. ids[1] .. '"}',
      '{"op":"calcom.create","fields":' .. require("cjson").encode(H.calcom_create_body()) .. '}', -- slow host
    }
    for k = 2, 5 do
      lines[#lines + 1] = '{"op":"gcal.patch","id":"' .. ids[k] .. '","fields":{"description":"patched ' .. k .. '"}}'
    end
    local run = start { "batch", cli.input_file(table.concat(lines, "\n")), "--concurrency", "8" }
    assert.is_true(wait_for(10, function() return stand_in.writes() >= 4 end), "the 4 PUTs never came")
    os.execute("sleep 0.3")
    assert(os.execute("kill -INT " .. run.process))
    -- lines 3-6 come out at once, before the slow POST of line 2 has ended
    assert.is_true(wait_for(3, function() return #lines_of(cli.read_file(run.out) or "") >= 5 end),
      "the finished lines were held back: " .. tostring(cli.read_file(run.out)))
    assert.equal("", cli.read_file(run.code) or "", "the command did not wait for the write in flight")
    local printed = {}
    for _, text in ipairs(lines_of(cli.read_file(run.out))) do printed[#printed + 1] = decode(text).line end
    assert.same({ 1, 3, 4, 5, 6 }, printed)
    assert(os.execute("kill -INT " .. run.process))
    assert.is_true(wait_for(3, function() return (cli.read_file(run.code) or "") ~= "" end), "a second SIGINT did not end it")
    assert.equal(130, tonumber(cli.read_file(run.code):match("%d+"))) -- killed by SIGINT: 128 + 2
    assert.equal("", cli.read_file(run.err)) -- no summary: it never got there
  end)

  it("Ctrl-C outside a batch (the interpreter's 'interrupted!' error) is one line and exit 130, not a bug report", function()
    local err = {}
    local sys = {
      stdin = io.stdin,
      stdout = { write = function(self) return self end, flush = function(self) return self end },
      stderr = { write = function(self, ...) for _, x in ipairs { ... } do err[#err + 1] = x end return self end },
      getenv = function() return nil end, isatty = function() return false end, now = function() return 0 end,
    }
    local module = {
      add_to_parser = function(parser) parser:command("slow") return { "slow" } end,
      command = function() error("interrupted!") end,
    }
    assert.equal(130, require("toolzz.cli").main({ "slow" }, sys, { module }))
    assert.equal("toolzz: interrupted\n", table.concat(err))
  end)

  it("catches SIGINT and SIGTERM while trapped, and restores the handlers it replaced (toolzz.core)", function()
    local core = require "toolzz.core"
    assert.is_nil(core.caught_signal())
    assert.is_true(core.trap_signals())
    assert.is_false(core.trap_signals()) -- already trapped
    assert.is_nil(core.caught_signal())
    local p = io.popen("kill -TERM $PPID") -- this process (popen leaves signals alone, os.execute does not)
    p:close()
    assert.is_true(wait_for(2, function() return core.caught_signal() ~= nil end))
    local number, name = core.caught_signal()
    assert.equal(15, number)
    assert.equal("SIGTERM", name)
    assert.is_true(core.restore_signals())
    assert.is_false(core.restore_signals()) -- nothing trapped any more
    assert.is_nil(core.caught_signal()) -- cleared by the restore
  end)
end)

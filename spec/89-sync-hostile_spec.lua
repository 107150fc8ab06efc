-- Declarative sync against a hostile desired-state file (CONTRACT Part 3):
-- a file under review (a pull request that CI plans) must not make a plan
-- print what lies outside its folder (/proc/self/environ holds the token
-- and every secret variable), and no `{ "file": PATH }` may hang the run
-- (a FIFO nobody writes, /dev/zero) or exhaust memory (a huge file).
local H = require "helpers"
local sync = require "toolzz.sync"

local UNIT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

-- A folder removed after the test.
local function temp_dir()
  local dir, remove = H.temp_dir("prompts")
  finally(remove)
  return dir
end
local write = H.write_file

-- A desired-state text whose one record's prompt is { "file": path }.
local function desired_with_prompt(path)
  return '{ "toolzz": 1, "units": [ { "unit": "' .. UNIT .. '", "calcom": [ { "key": "a", "title": "A", '
    .. '"prompt": { "file": "' .. path .. '" } } ] } ] }'
end

-- sync.load of a desired file in dir whose prompt is { "file": path } ->
-- doc, err.
local function load_with_prompt(dir, path)
  write(dir .. "/agents.json", desired_with_prompt(path))
  return sync.load(dir .. "/agents.json")
end

-- the message of a validation error's only problem
local function only_problem(err)
  assert.equal("validation", err.kind)
  assert.equal(1, #err.fields)
  assert.equal("units[1].calcom[1].prompt", err.fields[1].path)
  return err.fields[1].message
end

-- Run sync.load(dir/agents.json) in a child interpreter with a 10 s limit;
-- -> exit code of the child (124: it hung), its output.
local function load_in_child(dir)
  local script = dir .. "/child.lua"
  write(script, "local doc, err = require('toolzz.sync').load(" .. string.format("%q", dir .. "/agents.json") .. ")\n"
    .. "io.write(doc and 'loaded' or (err.fields and err.fields[1].message or tostring(err.message)))\n")
  local interpreter = H.flavour == "luajit" and "luajit" or H.flavour
  local command = "LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath .. "' timeout 10 "
    .. interpreter .. " '" .. script .. "' 2>&1; echo \"exit $?\""
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("exit (%d+)%s*$")), out
end

describe("sync: a hostile desired-state file's { file } text", function()
  it("is refused when it is the file of a secret reference of the file (by name or by a link)", function()
    local dir = temp_dir()
    assert(os.execute("mkdir -p '" .. dir .. "/secrets'"))
    write(dir .. "/secrets/gtoken", "ya29.SPEC89-in-folder-token\n")
    assert(os.execute("ln -s ../secrets/gtoken '" .. dir .. "/prompts/t.md'"))
    for _, path in ipairs { "secrets/gtoken", "prompts/t.md" } do
      write(dir .. "/agents.json", '{ "toolzz": 1, "units": [ { "unit": "' .. UNIT .. '", '
        .. '"calcom": [ { "key": "a", "title": "A", "prompt": { "file": "' .. path .. '" } } ], '
        .. '"gcal": [ { "key": "g", "name": "G", "googleCalendar": { "googleToken": { "file": "secrets/gtoken" } } } ] } ] }')
      local doc, err = sync.load(dir .. "/agents.json")
      assert.is_nil(doc, path)
      assert.matches("secret", only_problem(err), 1, true)
      assert.is_nil(err.message:find("SPEC89", 1, true))
    end
  end)

  it("is refused outside the file's folder: an absolute path, ../, a link (no secret of the environment in a plan)", function()
    local dir = temp_dir()
    write(dir .. "/prompts/ok.md", "inside\n")
    assert(os.execute("ln -s /proc/self/environ '" .. dir .. "/prompts/env.md'"))
    for _, path in ipairs { "/proc/self/environ", "../../../../../../proc/self/environ", "prompts/env.md",
                            "prompts/../../../etc/hostname" } do
      local doc, err = load_with_prompt(dir, path)
      assert.is_nil(doc, path)
      assert.matches("outside the desired-state file's folder", only_problem(err), 1, true)
    end
    local doc = assert(load_with_prompt(dir, "prompts/../prompts/ok.md"))
    assert.equal("inside", doc.units[1].calcom[1].prompt)
  end)

  it("is refused, never a hang, when it is a FIFO nobody writes, /dev/zero's like or a directory", function()
    local dir = temp_dir()
    assert(os.execute("mkfifo '" .. dir .. "/prompts/fifo'"))
    assert(os.execute("ln -s /dev/zero '" .. dir .. "/prompts/zero'")) -- inside by name, a device in fact
    for _, case in ipairs { { "prompts/fifo", "is not a regular file" }, { "prompts", "is a directory" } } do
      local path, message = case[1], case[2]
      write(dir .. "/agents.json", desired_with_prompt(path))
      local code, out = load_in_child(dir)
      assert.equal(0, code, path .. ": " .. out)
      assert.matches(message, out, 1, true)
    end
    local _, err = load_with_prompt(dir, "prompts/zero")
    assert.matches("outside the desired-state file's folder", only_problem(err), 1, true)
  end)

  it("is refused when larger than the limit, without reading it all", function()
    local dir = temp_dir()
    local f = assert(io.open(dir .. "/prompts/huge.md", "wb"))
    assert(f:seek("set", require("toolzz.sync.load").MAX_FILE_BYTES)) -- sparse: one byte over
    f:write("x")
    f:close()
    local doc, err = load_with_prompt(dir, "prompts/huge.md")
    assert.is_nil(doc)
    assert.matches("is larger than", only_problem(err), 1, true)
  end)
end)

-- Run the toolzz command in bash (for <(…)) with a 10 s limit against the
-- stand-in; -> exit code (124: it hung), its output.
local function toolzz_in_bash(args, dir)
  local interpreter = H.flavour == "luajit" and "luajit" or H.flavour
  local script = dir .. "/run.sh"
  write(script, "export LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath .. "' TOOLZZ_TOKEN='"
    .. H.env.token .. "'\ntimeout 10 " .. interpreter .. " '" .. H.root .. "/bin/toolzz' --base-url "
    .. H.env.http_url .. " --converflow-url " .. H.env.cf_http_url .. " --retries 0 " .. args .. ' 2>&1\necho "exit $?"\n')
  local p = assert(io.popen("bash '" .. script .. "'"))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("exit (%d+)%s*$")), out
end

describe("sync commands: files that are not plain files", function()
  local function unit_file(dir, api_key)
    write(dir .. "/agents.json", '{ "toolzz": 1, "units": [ { "unit": "' .. UNIT .. '", "calcom": [ { "key": "a", '
      .. '"title": "Hostile A", "calcomUsername": "acme", "timezone": "UTC", "prompt": "p", '
      .. '"checkAvailabilityEnabled": true, "createBookingEnabled": true, "apiKey": ' .. api_key .. ' } ] } ] }')
    return dir .. "/agents.json"
  end

  it("plan reads FILE once: a process substitution <(…) (a pipe) plans", function()
    local dir = temp_dir()
    local file = unit_file(dir, '{ "env": "NO_SUCH_KEY" }')
    local code, out = toolzz_in_bash("plan <(cat '" .. file .. "')", dir)
    assert.equal(0, code, out)
    assert.matches("create", out, 1, true)
  end)

  it("apply with a secret { file } that is a FIFO nobody writes: refused (config, exit 4), never a hang", function()
    local dir = temp_dir()
    assert(os.execute("mkfifo '" .. dir .. "/key'"))
    local file = unit_file(dir, '{ "file": "key" }')
    local code, out = toolzz_in_bash("apply --yes '" .. file .. "'", dir)
    assert.equal(4, code, out)
    assert.matches("is not a regular file", out, 1, true)
  end)
end)

describe("sync.apply of a saved plan of odd shape (its checksum recomputed)", function()
  local planner = require "toolzz.sync.plan"
  local cjson = require "cjson"

  it("is a validation error, never a Lua error, and writes nothing", function()
    local client = H.client()
    local unit = "2a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    local plan = assert(client.sync.plan { toolzz = 1, units = { { unit = unit, calcom = { { key = "odd",
      title = "Odd shape " .. os.time(), calcomUsername = "x", timezone = "UTC", prompt = "p",
      checkAvailabilityEnabled = true, createBookingEnabled = true, apiKey = { env = "HOME" } } } } } })
    local text = cjson.encode(plan)
    for name, mutate in pairs {
      ["safety a number"] = function(p) p.safety = 5 end,
      ["safety.maxUpdates a string"] = function(p) p.safety = { maxUpdates = "9" } end,
      ["unmatched items numbers"] = function(p) p.unmatched = { 5 } end,
      ["unmatched a string"] = function(p) p.unmatched = "x" end,
      ["failed items numbers"] = function(p) p.failed = { 5 } end,
    } do
      local p = cjson.decode(text)
      mutate(p)
      p.checksum = nil
      p.checksum = planner.checksum(p)
      H.stand_in.reset()
      local ok, report, err = pcall(client.sync.apply, p, {})
      assert.is_true(ok, name .. ": " .. tostring(report))
      assert.is_nil(report, name)
      assert.equal("validation", err.kind, name)
      assert.equal(0, H.stand_in.writes(), name)
    end
  end)
end)

describe("sync commands: a saved plan with a repeated key", function()
  it("is refused (exit 3, nothing written): lua-cjson would apply the last of two \"changes\"", function()
    local dir = temp_dir()
    local unit = "4a1b2c3d-4e5f-4a6b-8c7d-" .. string.format("%012d", os.time() % 1000000000000)
    write(dir .. "/agents.json", '{ "toolzz": 1, "units": [ { "unit": "' .. unit .. '", "calcom": [ { "key": "a", '
      .. '"title": "Twice", "calcomUsername": "acme", "timezone": "UTC", "prompt": "p", '
      .. '"checkAvailabilityEnabled": true, "createBookingEnabled": true, "apiKey": { "env": "HOME" } } ] } ] }')
    local code, out = toolzz_in_bash("plan '" .. dir .. "/agents.json' --out '" .. dir .. "/plan.json'", dir)
    assert.equal(0, code, out)
    local f = assert(io.open(dir .. "/plan.json", "rb"))
    local text = f:read("*a")
    f:close()
    local twice, n = text:gsub('"changes": %[', '"changes": [], "changes": [', 1) -- a reader sees no change first
    assert.equal(1, n)
    write(dir .. "/plan.json", twice)
    H.stand_in.reset()
    code, out = toolzz_in_bash("apply '" .. dir .. "/plan.json'", dir)
    assert.equal(3, code, out)
    assert.matches("more than once", out, 1, true)
    assert.equal(0, H.stand_in.writes())
  end)
end)

describe("sync.plan against server strings that are not UTF-8", function()
  it("fails the record (unexpected-shape) and keeps the plan valid JSON: a saved plan must load again", function()
    local core = require "toolzz.core"
    local unit = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    local function item(id, title, prompt)
      return '{"id":"' .. id .. '","unitId":"' .. unit .. '","title":"' .. title .. '","calcomUsername":"x",'
        .. '"timezone":"UTC","prompt":"' .. prompt .. '","checkAvailabilityEnabled":true,'
        .. '"createBookingEnabled":true,"updatedAt":"2026-01-01T00:00:00Z"}'
    end
    local list = '{"data":[' .. item("6b16d121-591a-4000-8000-0000000000a1", "C", "bad \255 byte") .. ","
      .. item("6b16d121-591a-4000-8000-0000000000a2", "title \254", "p") .. ","
      .. item("6b16d121-591a-4000-8000-0000000000\255", "Z", "p") .. "]}"
    H.stand_in.reset()
    H.stand_in.faults { { body = list } } -- the calcom list (concurrency 1: the first request)
    local plan = assert(H.client().sync.plan({ toolzz = 1, units = { { unit = unit,
      calcom = { { key = "c", title = "C", prompt = "new" } } } } }, { concurrency = 1 }))
    local text = assert(sync.encode(plan))
    assert.is_true(core.utf8_valid(text), text)
    assert.equal(0, #plan.changes)
    local reasons = {}
    for _, f in ipairs(plan.failed) do reasons[#reasons + 1] = f.reason .. " " .. table.concat(f.paths or {}, ",") end
    table.sort(reasons)
    assert.same({ "unexpected-shape [3].id", "unexpected-shape prompt" }, reasons)
    assert.equal(1, #plan.unmanaged)
    assert.is_truthy(sync.decode(text))
  end)
end)

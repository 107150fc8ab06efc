-- README's Quick start, run as a new user would after `make demo`: its
-- shell block (the eval of `spec/server/ctl env --client`) and its Lua
-- block, both taken from README.md as written, against the stand-in; and
-- the install and release claims of the README that a spec can check.
-- Tagged no_valgrind: the work happens in child processes.
local H = require "helpers"

local ROOT -- H.root made absolute (commands run from a scratch directory)
do
  local p = assert(io.popen("cd '" .. H.root:gsub("'", "'\\''") .. "' && pwd -P"))
  ROOT = p:read("*l")
  p:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The text of the fenced block after <!-- quickstart: name --> in README.md.
local function readme_block(name)
  local block = read(ROOT .. "/README.md"):match("<!%-%- quickstart: " .. name .. " %-%->\n```%w+\n(.-)\n```")
  assert.is_string(block, "README.md has no <!-- quickstart: " .. name .. " --> block")
  return block
end

-- Run sh script in dir with a clean environment (no TOOLZZ_* or LUA_* of
-- the spec's own, the stand-in's ports kept); returns stdout+stderr, status.
local function run_shell(dir, script)
  local unset = {}
  for _, name in ipairs { "TOOLZZ_TOKEN", "TOOLZZ_BASE_URL", "TOOLZZ_CONVERFLOW_URL", "LUA_PATH", "LUA_CPATH",
                          "LUA_PATH_5_4", "LUA_CPATH_5_4", "LUA_INIT", "LUA_INIT_5_4" } do
    unset[#unset + 1] = "-u " .. name
  end
  local file = dir .. "/script.sh"
  local f = assert(io.open(file, "wb"))
  f:write(script, "\n")
  f:close()
  local p = assert(io.popen("cd " .. quote(dir) .. " && env " .. table.concat(unset, " ")
    .. " sh " .. quote(file) .. " 2>&1; echo \"exit $?\""))
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)exit (%d+)\n$")
  return body, tonumber(code)
end

local function scratch_dir()
  local p = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/toolzz-quickstart.XXXXXX\""))
  local dir = p:read("*l")
  p:close()
  return dir
end

describe("README Quick start #no_valgrind", function()
  local dir
  setup(function()
    dir = scratch_dir()
    -- the commands are run from the checkout: spec/server/ctl must resolve
    assert(os.execute("ln -s " .. quote(ROOT .. "/spec") .. " " .. quote(dir .. "/spec")))
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. quote(dir)) end
  end)

  -- The shell block without its first line (`make demo`: the build and the
  -- running stand-in are there already), with quickstart.lua saved beside it.
  local function quick_start()
    local shell = readme_block("shell")
    local first, rest = shell:match("^([^\n]*)\n(.*)$")
    assert.matches("^make demo%s", first)
    assert.matches('eval "$(spec/server/ctl env --client)"', rest, 1, true)
    local f = assert(io.open(dir .. "/quickstart.lua", "wb"))
    f:write(readme_block("lua"), "\n")
    f:close()
    return run_shell(dir, rest)
  end

  it("prints the documented error line when the stand-in holds no such integration", function()
    H.stand_in.reset { empty = true }
    local out, code = quick_start()
    assert.equal(0, code, out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    -- the sample in the code's comment, with its "…" standing for the request id
    local sample = readme_block("lua"):match('print%(err%)%s+%-%- one line, e%.g%. "([^"]+)"')
    assert.is_string(sample, "the Quick start's print(err) has no sample text")
    local pattern = "^" .. sample:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("…", "%%x+") .. "$"
    assert.matches(pattern, lines[1] or "")
    assert.equal("http", lines[2])
    assert.equal(2, #lines, out)
    local last = H.stand_in.last()
    assert.equal("PUT", last.method) -- it went to the stand-in, not to production
    assert.equal("/api/v1/calcom/integration/6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab", last.uri)
  end)

  it("updates the integration once the stand-in holds it", function()
    H.stand_in.reset() -- stores 6f1c2f0e-… of each kind
    local out, code = quick_start()
    assert.equal(0, code, out)
    assert.equal("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab\ttrue\n", out)
    local client = H.client()
    local rec = assert(client.calcom.get("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab"))
    client:close()
    assert.equal("ana-silva", rec.calcomUsername)
  end)

  it("runs the Sync (Lua API) block as written: export, encode, load, plan, apply", function()
    H.stand_in.reset() -- stores a record of each kind in H.UNIT
    local f = assert(io.open(dir .. "/sync.lua", "wb"))
    f:write("local unit_id = ", string.format("%q", H.UNIT), "\n", readme_block("sync"), "\n")
    f:close()
    local out, code = run_shell(dir, 'eval "$(spec/server/ctl env --client)" && lua5.4 sync.lua')
    assert.equal(0, code, out)
    -- nothing to create or update: the file is what exists; then its checksum
    assert.matches("^0\t0\t%x+\n$", out)
    local saved = read(dir .. "/scheduling.json")
    assert.matches('"unit": "' .. H.UNIT .. '"', saved, 1, true)
    assert.is_nil(saved:find(H.GOOGLE_TOKEN, 1, true), "the export holds the Google token")
  end)

  it("gives the toolzz command on PATH, from this checkout", function()
    local out, code = run_shell(dir, 'eval "$(spec/server/ctl env --client)" && command -v toolzz && toolzz --version')
    assert.equal(0, code, out)
    assert.equal(ROOT .. "/bin/toolzz\n", out:match("^[^\n]*\n"))
    assert.matches("\ntoolzz %d+%.%d+%.%d+ %(Lua 5%.4", out)
  end)
end)

describe("the stand-in", function()
  it("answers 404 to an update of an id it does not hold, and stores nothing", function()
    H.stand_in.reset { empty = true }
    local client = H.client()
    local res, err = client.calcom.update(H.UUID, H.calcom_body())
    assert.is_nil(res)
    assert.equal(404, err.status)
    assert.equal("Integration not found", err.message)
    res, err = client.gcal.update(H.UUID, H.gcal_body())
    assert.is_nil(res)
    assert.equal(404, err.status)
    assert.equal("Function not found", err.message)
    assert.equal(404, select(2, client.calcom.get(H.UUID)).status)
    assert.same({}, assert(client.calcom.list(H.UNIT)))
    client:close()
  end)
end)

describe("README install claims #no_valgrind", function()
  it("toolzz.batch runs on the module's default client from the environment", function()
    H.stand_in.reset()
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write([[
      local toolzz = require "toolzz"
      local results, err = toolzz.batch({ { "calcom.get", arg[1] }, { "gcal.get", arg[1] },
                                          { "calcom.get", "00000000-0000-0000-0000-000000000000" } },
                                        { concurrency = 2 })
      if not results then print("error", tostring(err)) return end
      for i, r in ipairs(results) do print(i, r.res and r.res.id or (r.err and r.err.status)) end
      local again = toolzz:batch({ { "gcal.get", arg[1] } }) -- the colon form too
      print("colon", again and again[1].res and again[1].res.id)
    ]])
    f:close()
    local env = { "env -u LUA_PATH_5_4 -u LUA_CPATH_5_4",
      "TOOLZZ_TOKEN=" .. quote(H.env.token), "TOOLZZ_BASE_URL=" .. quote(H.env.http_url),
      "TOOLZZ_CONVERFLOW_URL=" .. quote(H.env.cf_http_url),
      "LUA_PATH=" .. quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
      "LUA_CPATH=" .. quote(ROOT .. "/build/lua5.4/?.so;;") }
    local p = assert(io.popen(table.concat(env, " ") .. " lua5.4 " .. quote(script) .. " " .. H.UUID .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    assert.equal(("1\t%s\n2\t%s\n3\t404\ncolon\t%s\n"):format(H.UUID, H.UUID, H.UUID), out)
  end)

  it("LuaLS definitions declare the colon form of every call too", function()
    local text = read(ROOT .. "/types/library/toolzz.lua")
    local calls = 0
    for doc, owner, name in text:gmatch("(%-%-%-[^\n]*)\nfunction ([%w_]+)%.([%w_]+)%(") do
      -- the API calls (toolzz.new, array, parse_base_url are not methods)
      local class = ({ Calcom = "toolzz.Calcom", Gcal = "toolzz.Gcal" })[owner]
        or (name == "batch" and ({ Client = "toolzz.Client", toolzz = "toolzz" })[owner])
      if class then
        calls = calls + 1
        assert.matches("^%-%-%-@overload fun%(self: " .. class:gsub("%.", "%%.") .. "[,)]", doc,
          nil, false, owner .. "." .. name .. " has no colon form")
      end
    end
    assert.truthy(calls >= 13, "found " .. calls .. " calls")
  end)

  local function packages(set)
    local p = assert(io.popen(quote(ROOT .. "/tools/install-deps") .. " " .. set .. " --list"))
    local list = {}
    for name in p:lines() do list[name] = true end
    p:close()
    return list
  end

  it("make demo installs the demo set only; make test both", function()
    local demo, test = packages("demo"), packages("test")
    for _, name in ipairs { "valgrind", "clang", "lua-busted", "lua-check", "cmake", "luarocks" } do
      assert.is_nil(demo[name], name .. " is in the demo set")
      assert.is_true(test[name], name .. " is not in the test set")
    end
    for _, name in ipairs { "lua5.4", "lua-cjson", "lua-argparse", "libcurl4-openssl-dev", "jq",
                            "nginx", "libnginx-mod-http-lua" } do
      assert.is_true(demo[name], name .. " is not in the demo set")
    end
    for name in pairs(demo) do assert.is_true(test[name], name .. " is in the demo set, not the test set") end
    local makefile = read(ROOT .. "/Makefile")
    assert.matches("\ndemo: demo%-deps\n", makefile)
    assert.matches("\ndemo%-deps:\n\t@tools/install%-deps demo\n", makefile)
    assert.matches("\ntest: deps\n", makefile)
    assert.matches("\ndeps:\n\t@tools/install%-deps test\n", makefile)
  end)
end)

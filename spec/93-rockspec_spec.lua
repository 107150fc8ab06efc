-- The release rockspec and the scm one stay in step: the same package,
-- build, modules, installed command and dependencies; only the version and
-- the source (the release's git tag) differ. The release's version is the
-- module's and CMake's.
local H = require "helpers"

local function read(path)
  local f = assert(io.open(H.root .. "/" .. path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function load_rockspec(path)
  local env = {}
  local chunk
  if setfenv then -- luacheck: ignore 113
    chunk = assert(loadstring(read(path), path)) -- luacheck: ignore 113
    setfenv(chunk, env) -- luacheck: ignore 113
  else
    chunk = assert(load(read(path), path, "t", env))
  end
  chunk()
  return env
end

-- Every file in a directory tree whose name ends in suffix (relative paths).
local function files_under(dir, suffix)
  local list = {}
  local p = assert(io.popen("cd '" .. H.root .. "' && find " .. dir .. " -type f -name '*" .. suffix .. "' | sort"))
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

local function release_rockspec_path()
  local found = {}
  for _, f in ipairs(files_under("rockspec", ".rockspec")) do
    if f:match("^rockspec/toolzz%-%d[^/]*%.rockspec$") then found[#found + 1] = f end
  end
  assert.equal(1, #found, "one release rockspec in rockspec/")
  return found[1]
end

describe("rockspecs", function()
  local scm = load_rockspec("rockspec/toolzz-scm-1.rockspec")
  local release_path = release_rockspec_path()
  local release = load_rockspec(release_path)

  it("name the file after the version", function()
    assert.equal("rockspec/toolzz-" .. release.version .. ".rockspec", release_path)
    assert.equal("scm-1", scm.version)
    assert.matches("^%d+%.%d+%.%d+%-%d+$", release.version)
  end)

  it("differ only in version and source", function()
    local keys = {}
    for k in pairs(scm) do keys[k] = true end
    for k in pairs(release) do keys[k] = true end
    for k in pairs(keys) do
      if k ~= "version" and k ~= "source" then
        assert.same(scm[k], release[k], "rockspec field " .. k)
      end
    end
  end)

  it("take the release from its git tag", function()
    local version = release.version:match("^(.*)%-%d+$")
    assert.equal("v" .. version, release.source.tag)
    assert.equal(scm.source.url, release.source.url)
    assert.is_nil(scm.source.tag)
  end)

  it("give the release the module's version and CMake's", function()
    local version = release.version:match("^(.*)%-%d+$")
    assert.equal(version, require("toolzz")._VERSION)
    assert.equal(version, read("CMakeLists.txt"):match("project%(toolzz VERSION ([%d%.]+)"))
  end)

  it("install the toolzz command and depend on argparse and lua-cjson", function()
    assert.same({ toolzz = "bin/toolzz" }, scm.build.install.bin)
    assert.matches("^#!/usr/bin/env lua", read("bin/toolzz"))
    local deps = {}
    for _, d in ipairs(scm.dependencies) do deps[d:match("^(%S+)")] = true end
    assert.is_true(deps.argparse)
    assert.is_true(deps["lua-cjson"])
  end)

  it("build every Lua module there is", function()
    local want = {}
    for _, f in ipairs(files_under("lua/toolzz", ".lua")) do
      local name = f:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      want[name] = f
    end
    local have = {}
    for name, spec in pairs(scm.build.modules) do
      if type(spec) == "string" then have[name] = spec end
    end
    assert.same(want, have)
  end)
end)

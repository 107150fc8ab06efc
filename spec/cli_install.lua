-- For the specs of the toolzz command: install the rock
-- (rockspec/toolzz-scm-1.rockspec, `luarocks make` from a copy of the
-- sources) into a tree of its own, and run the installed command as a
-- subprocess, optionally under a pseudo-terminal (script).
--
-- TOOLZZ_CLI_TREE=<dir> reuses a tree installed before (when it has
-- bin/toolzz); it is then left in place.
local H = require "helpers"

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local function sh(command)
  local a, _, c = os.execute(command)
  if type(a) == "number" then return a >= 256 and math.floor(a / 256) or a end -- Lua 5.1
  return c
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end
M.read_file = read_file

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local work, tree

-- A scratch directory of this process (commands run in it).
function M.work()
  if not work then
    local p = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/toolzz-cli-spec.XXXXXX\""))
    work = p:read("*l")
    p:close()
  end
  return work
end

-- A checksum of the sources the rock is built from.
local function sources_checksum()
  local p = assert(io.popen("cd " .. quote(H.root) .. " && find CMakeLists.txt src lua bin types rockspec -type f"
    .. " | LC_ALL=C sort | xargs cat | cksum"))
  local sum = p:read("*l"):match("^(%d+)")
  p:close()
  return sum
end

-- The tree the rock is installed in. Installed once per version of the
-- sources, in build/cli-spec/<checksum>/ (spec files are insulated from
-- each other, so a tree per process would mean one install per file).
function M.install()
  if tree then return tree end
  local given = os.getenv("TOOLZZ_CLI_TREE")
  if given and given ~= "" and read_file(given .. "/bin/toolzz") then
    tree = given
    return tree
  end
  local p = assert(io.popen("cd " .. quote(H.root) .. " && pwd -P"))
  local cache = p:read("*l") .. "/build/cli-spec"
  p:close()
  local target = cache .. "/" .. sources_checksum()
  if read_file(target .. "/tree/bin/toolzz") then
    tree = target .. "/tree"
    return tree
  end
  local dir = M.work()
  local src = dir .. "/src"
  local log = dir .. "/install.log"
  local copy = "mkdir -p " .. quote(src) .. " && cd " .. quote(H.root)
    .. " && cp -R CMakeLists.txt src lua bin types rockspec " .. quote(src)
  assert(sh(copy) == 0, "copying the sources failed")
  -- Debian's luarocks may not know where the Lua 5.4 headers are.
  local incdir = read_file("/usr/include/lua5.4/lua.h") and "LUA_INCDIR=/usr/include/lua5.4" or ""
  local status = sh("cd " .. quote(src) .. " && luarocks --lua-version=5.4 --tree " .. quote(target .. "/tree")
    .. " make --deps-mode=none rockspec/toolzz-scm-1.rockspec " .. incdir .. " >" .. quote(log) .. " 2>&1")
  if status ~= 0 then sh("rm -rf " .. quote(target)) end
  assert(status == 0, "luarocks make failed:\n" .. tostring(read_file(log)))
  -- trees of older sources go
  sh("cd " .. quote(cache) .. " && for d in *; do [ \"$d\" = " .. quote(target:match("[^/]+$"))
    .. " ] || rm -rf \"$d\"; done")
  tree = target .. "/tree"
  return tree
end

-- Remove this process's scratch files (the installed tree stays for the next).
function M.cleanup()
  if work then sh("rm -rf " .. quote(work)) end
  work, tree = nil, nil
end

local counter = 0

-- Run the installed command. opts: args (list), stdin (text), env (table of
-- NAME = value; TOOLZZ_TOKEN and TOOLZZ_BASE_URL default to the stand-in's,
-- false unsets), tty (run under a pseudo-terminal: stdout and stderr both
-- go to it and come back together in `out`), shell (extra shell text after
-- the command, e.g. "2>/dev/null"). Returns { out =, err =, code = }.
function M.run(opts)
  local root = M.install()
  counter = counter + 1
  local dir = M.work()
  local base = dir .. "/run" .. counter
  local env = {
    TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = H.env.http_url,
    TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url or false,
    LUA_PATH = root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua;;",
    LUA_CPATH = root .. "/lib/lua/5.4/?.so;;",
  }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local parts = { "env -u LUA_INIT -u LUA_INIT_5_4 -u LUA_PATH_5_4 -u LUA_CPATH_5_4" }
  local names = {}
  for k in pairs(env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if env[k] == false then parts[#parts + 1] = "-u " .. k end
  end
  for _, k in ipairs(names) do
    if env[k] then parts[#parts + 1] = k .. "=" .. quote(env[k]) end
  end
  parts[#parts + 1] = quote(root .. "/bin/toolzz")
  for _, a in ipairs(opts.args or {}) do parts[#parts + 1] = quote(a) end
  local command = table.concat(parts, " ")
  local stdin = base .. ".in"
  M.write_file(stdin, opts.stdin or "")
  local line
  if opts.tty then
    line = "cd " .. quote(dir) .. " && script -qec " .. quote(command .. " " .. (opts.shell or "") .. " <" .. quote(stdin))
      .. " /dev/null >" .. quote(base .. ".out") .. " 2>" .. quote(base .. ".err") .. " </dev/null"
  else
    line = "cd " .. quote(dir) .. " && " .. command .. " <" .. quote(stdin) .. " >" .. quote(base .. ".out")
      .. " 2>" .. quote(base .. ".err") .. " " .. (opts.shell or "")
  end
  local code = sh(line)
  return { out = read_file(base .. ".out") or "", err = read_file(base .. ".err") or "", code = code }
end

-- Run a shell script with the installed command first on PATH (and the
-- environment run() gives it, plus env). Returns { out =, err =, code = }.
function M.shell(script, env)
  local root = M.install()
  counter = counter + 1
  local base = M.work() .. "/shell" .. counter
  M.write_file(base .. ".sh", script)
  local vars = {
    PATH = root .. "/bin:" .. os.getenv("PATH"),
    TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = H.env.http_url,
    TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url or "",
    LUA_PATH = root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua;;",
    LUA_CPATH = root .. "/lib/lua/5.4/?.so;;",
  }
  for k, v in pairs(env or {}) do vars[k] = v end
  local parts = { "cd " .. quote(M.work()) .. " && env -u LUA_INIT -u LUA_INIT_5_4" }
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. quote(v) end
  parts[#parts + 1] = "sh " .. quote(base .. ".sh") .. " </dev/null >" .. quote(base .. ".out")
    .. " 2>" .. quote(base .. ".err")
  local code = sh(table.concat(parts, " "))
  return { out = read_file(base .. ".out") or "", err = read_file(base .. ".err") or "", code = code }
end

-- Shorthand: run with these arguments (and options).
function M.toolzz(args, opts)
  opts = opts or {}
  opts.args = args
  return M.run(opts)
end

math.randomseed(os.time() + math.floor(os.clock() * 1e6))

-- A fresh random UUID (v4 form), for units and ids nobody else uses.
function M.uuid()
  local hex = "0123456789abcdef"
  local function digits(n)
    local t = {}
    for i = 1, n do
      local r = math.random(1, 16)
      t[i] = hex:sub(r, r)
    end
    return table.concat(t)
  end
  return digits(8) .. "-" .. digits(4) .. "-4" .. digits(3) .. "-a" .. digits(3) .. "-" .. digits(12)
end

-- A file in the scratch directory with these contents (names never repeat).
local inputs = 0
function M.input_file(text)
  inputs = inputs + 1
  return M.write_file(M.work() .. "/input" .. inputs, text)
end

-- Decoded JSON text; fails the spec when it is not JSON.
function M.decode(text)
  local ok, value = pcall(require("cjson").decode, text)
  assert(ok, "not JSON: " .. tostring(text))
  return value
end

-- The non-empty lines of a text.
function M.lines_of(text)
  local list = {}
  for line in text:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

return M

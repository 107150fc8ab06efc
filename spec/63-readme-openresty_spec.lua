-- README's OpenResty nginx.conf, started as written (only its port
-- changed) in Debian's nginx, with toolzz installed in a temporary prefix
-- that the workers (user nobody) can read, against the stand-in: it loads,
-- updates a function, answers 400 (no stack trace) to a body that is not
-- JSON, and gives the validation answer README shows.
-- Tagged no_valgrind: the work happens in nginx.
local H = require "helpers"
local R = require "openresty.harness"
local cjson = require "cjson"

local sh, shell_quote = R.sh, R.shell_quote

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The fenced block after <!-- openresty: name --> in README.md.
local function readme_block(name)
  local text = assert(read(H.root .. "/README.md"))
  return text:match("<!%-%- openresty: " .. name .. " %-%->\n```%w+\n(.-)\n```")
end

local function find_nginx()
  local out, code = sh("command -v nginx || ls /usr/sbin/nginx")
  return code == 0 and out:match("[^\n]+") or nil
end

describe("README OpenResty nginx.conf #no_valgrind", function()
  local nginx = find_nginx()
  local core = H.root .. "/build/luajit/toolzz/core.so"
  if not (nginx and read("/usr/lib/nginx/modules/ngx_http_lua_module.so") and read(core)) then
    it("runs in Debian's nginx", function()
      pending("skipped: needs nginx, libnginx-mod-http-lua and " .. core)
    end)
    return
  end

  local prefix, port, url
  local conf = readme_block("nginx.conf")

  -- nginx with the README's file: `nginx <args>` with the environment a
  -- user gives it; returns output and status.
  local function run_nginx(args)
    local lua = prefix .. "/lua"
    return sh("cd " .. shell_quote(prefix) .. " && env -i PATH=/usr/sbin:/usr/bin:/bin"
      .. " TOOLZZ_TOKEN=" .. shell_quote(H.env.token)
      .. " TOOLZZ_BASE_URL=" .. shell_quote(H.env.http_url)
      .. " TOOLZZ_CONVERFLOW_URL=" .. shell_quote(H.env.cf_http_url)
      -- the ";;" of lua_package_path and lua_package_cpath: LuaJIT's defaults, these
      .. " LUA_PATH=" .. shell_quote(lua .. "/?.lua;" .. lua .. "/?/init.lua;;")
      .. " LUA_CPATH=" .. shell_quote(lua .. "/?.so;;")
      .. " " .. shell_quote(nginx) .. " -p " .. shell_quote(prefix .. "/") .. " -e " .. shell_quote(prefix .. "/error.log")
      .. " -c " .. shell_quote(prefix .. "/nginx.conf")
      .. " -g " .. shell_quote("pid " .. prefix .. "/nginx.pid;") .. " " .. args .. " 2>&1")
  end

  -- method, path, body -> status, body text
  local function request(method, path, body, file)
    local out = sh("curl -s --noproxy '*' --max-time 10 -o - -w '\\n%{http_code}' -X " .. method
      .. (file and (" --data @" .. shell_quote(file)) or (" --data-binary " .. shell_quote(body or "")))
      .. " " .. shell_quote(url .. path))
    local text, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), text
  end

  lazy_setup(function()
    assert.is_string(conf, "README.md has no <!-- openresty: nginx.conf --> block")
    local out = sh("mktemp -d \"${TMPDIR:-/tmp}/toolzz-readme-nginx.XXXXXX\"")
    prefix = out:match("[^\n]+")
    -- the install: lua/toolzz/*.lua and core.so, readable by the workers
    assert.equal(0, select(2, sh("mkdir -p " .. shell_quote(prefix .. "/lua/toolzz")
      .. " && cp -R " .. shell_quote(H.root .. "/lua/toolzz/.") .. " " .. shell_quote(prefix .. "/lua/toolzz/")
      .. " && cp " .. shell_quote(core) .. " " .. shell_quote(prefix .. "/lua/toolzz/core.so")
      .. " && chmod -R a+rX " .. shell_quote(prefix))))
    port = H.closed_port()
    url = "http://127.0.0.1:" .. port
    local listens = select(2, conf:gsub("\n        listen 8080;\n", "\n"))
    assert.equal(1, listens, "the README's nginx.conf should listen on 8080 once")
    write(prefix .. "/nginx.conf", (conf:gsub("\n        listen 8080;\n", "\n        listen " .. port .. ";\n")) .. "\n")
    local text, code = run_nginx("")
    assert(code == 0, "nginx did not start with README's nginx.conf: " .. text
      .. (read(prefix .. "/error.log") or ""))
    for _ = 1, 50 do
      if request("GET", "/agents/calendar") then break end
      sh("sleep 0.1")
    end
  end)

  lazy_teardown(function()
    if prefix then
      run_nginx("-s stop")
      for _ = 1, 50 do
        if not read(prefix .. "/nginx.pid") then break end
        sh("sleep 0.1")
      end
      sh("rm -rf " .. shell_quote(prefix))
    end
  end)

  before_each(function() H.stand_in.reset() end)

  it("passes nginx -t", function()
    local out, code = run_nginx("-t")
    assert.equal(0, code, out)
    assert.matches("syntax is ok", out, 1, true)
  end)

  it("updates a function through the stand-in", function()
    local status, text = request("PUT", "/agents/calendar?id=" .. H.UUID, cjson.encode(H.gcal_body()))
    assert.equal(200, status, text)
    assert.same({ id = H.UUID }, cjson.decode(text))
    local last = H.stand_in.last()
    assert.equal("PUT", last.method)
    assert.equal("/api/v1/functions/" .. H.UUID, last.uri)
    assert.equal("Bearer " .. H.env.token, last.headers.authorization)
  end)

  it("answers 400 to a body that is not JSON, with no stack trace and nothing sent", function()
    for _, body in ipairs { "not json", "", "[1,", "42" } do
      local status, text = request("PUT", "/agents/calendar?id=" .. H.UUID, body)
      assert.equal(400, status, text)
      assert.same({ error = "the body must be a JSON object" }, cjson.decode(text))
    end
    assert.equal(0, H.stand_in.stats().requests)
    local log = read(prefix .. "/error.log") or ""
    assert.is_nil(log:find("stack traceback", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)

  it("gives the validation answer README shows, and sends nothing", function()
    local shown = readme_block("validation")
    assert.is_string(shown, "README.md has no <!-- openresty: validation --> block")
    local command, answer = shown:match("^%$ ([^\n]+)\n(.+)$")
    assert.is_string(answer, "the block should be '$ curl …' and the answer")
    assert.matches("^curl %-s %-X PUT %-%-data @function%.json 'http://127%.0%.0%.1:8080(/agents/calendar%?id=42)'$", command)
    local path = command:match("8080(/[^']+)'$")
    local file = prefix .. "/function.json"
    write(file, cjson.encode(H.gcal_body()))
    local status, text = request("PUT", path, nil, file)
    assert.equal(400, status, text)
    assert.same(cjson.decode(answer), cjson.decode(text))
    assert.equal(0, H.stand_in.stats().requests)
  end)
end)

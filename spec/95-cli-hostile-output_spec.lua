-- The toolzz command facing hostile answers: forged dry-run records, control
-- characters, secrets in keys and deep inside responses, empty lists; README
-- recipes that fail loudly; batch lines written as they are done. The specs
-- run the installed `toolzz` (cli_install) as a subprocess; they are tagged
-- no_valgrind. Each failed when it was written.
local H = require "helpers"
local cjson = require "cjson"

local S = H.stand_in

-- Text with its control characters shown as \ddd (never sent to the terminal).
local function shown(text)
  return (text:gsub("%c", function(c) return "\\" .. c:byte() end))
end

describe("the command with hostile answers #no_valgrind", function()
  local cli = require "cli_install"
  local ID = H.UUID
  setup(function() cli.install() end)
  teardown(function() cli.cleanup() end)
  before_each(function() S.reset() end)

  -- A record the server answers to a GET that looks like a dry-run result:
  -- its "body" holds terminal escapes and a forged result line.
  local FORGED_LINE = '{"line":2,"ok":true,"res":{"forged":true}}'
  local function forged_record()
    return cjson.encode {
      dry_run = true, method = "PUT", url = "x",
      body = "\27]0;owned\7\27[31mred\27[0m\n" .. FORGED_LINE,
    }
  end

  it("a server record shaped like a dry-run result is not printed raw (terminal escapes, forged lines)", function()
    S.faults { { body = forged_record() } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find("\27", 1, true), "an ESC byte from the server reached stdout: " .. shown(r.out))
    assert.is_nil(r.out:find("\7", 1, true), "a BEL byte from the server reached stdout")
    assert.equals(1, #cli.lines_of(r.out), "one record printed as more than one line: " .. shown(r.out))
    local printed = cli.decode(r.out)
    assert.equals("table", type(printed))
  end)

  it("C1 control characters from the server (U+009B, a CSI on some terminals) never reach a table or an error line", function()
    local CSI = "\194\155"
    S.faults { { body = cjson.encode { id = ID, name = "x" .. CSI .. "31mred", unityId = ID } } }
    local r = cli.toolzz { "--output", "table", "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find(CSI, 1, true), "U+009B reached the table: " .. shown(r.out))
    S.faults { { status = 400, body = cjson.encode { message = "bad" .. CSI .. "2Jname" } } }
    r = cli.toolzz { "gcal", "get", ID }
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("bad", 1, true), r.err)
    assert.is_nil(r.err:find(CSI, 1, true), "U+009B reached the error line: " .. shown(r.err))
  end)

  it("a batch result shaped like a dry-run result cannot forge result lines", function()
    S.faults { { body = forged_record() } }
    local r = cli.toolzz({ "batch", "-" }, { stdin = cjson.encode { op = "gcal.get", id = ID } .. "\n" })
    local lines = cli.lines_of(r.out)
    assert.equals(1, #lines, "a one-line batch printed " .. #lines .. " result lines: " .. shown(r.out))
    assert.is_nil(r.out:find(FORGED_LINE, 1, true))
    assert.is_nil(r.out:find("\27", 1, true), "an ESC byte from the server reached stdout")
    assert.equals(1, cli.decode(lines[1]).line)
  end)

  it("a batch prints an empty list result as [] like the list command does (not {})", function()
    local unit = cli.uuid()
    local lines = cjson.encode { op = "calcom.list", id = unit } .. "\n" .. cjson.encode { op = "gcal.list", id = unit } .. "\n"
    local r = cli.toolzz({ "batch", "-" }, { stdin = lines })
    assert.equals(0, r.code, r.err)
    local out = cli.lines_of(r.out)
    assert.equals(2, #out)
    assert.equals('{"line":1,"ok":true,"res":[]}', out[1])
    assert.equals('{"line":2,"ok":true,"res":[]}', out[2])
    assert.equals("[]\n", cli.toolzz({ "calcom", "list", unit }).out) -- as the list command prints it
  end)

  it("an empty JSON array the user wrote inside a -f body is sent as [] (not turned into {})", function()
    local body = H.gcal_body()
    body.outputs = { { property = "slots", type = "array", description = "free slots", required = true, enum = {} } }
    local text = cjson.encode(body):gsub('"enum":{}', '"enum":[]')
    assert.truthy(text:find('"enum":[]', 1, true))
    local r = cli.toolzz { "gcal", "update", ID, "-f", cli.input_file(text) }
    assert.equals(0, r.code, r.err)
    local sent = S.last().body
    assert.truthy(sent:find('"enum":[]', 1, true), "the user's [] was sent as: " .. tostring(sent:match('"enum":[^,}]*.')))
  end)

  describe("README recipes exit non-zero when their list call fails (the pipe into jq hides it)", function()
    local f = assert(io.open(H.root .. "/README.md", "rb"))
    local readme = f:read("*a")
    f:close()
    for _, name in ipairs { "bookings-off", "rotate-google-token", "move-time-zone" } do
      it(name, function()
        local recipe = readme:match("<!%-%- recipe: " .. name:gsub("%-", "%%-") .. " %-%->\n```sh\n(.-)\n```")
        assert.is_string(recipe, "README has no recipe " .. name)
        local wrong = "expired-api-token-0123456789" -- the stand-in answers 401 Unauthorized
        local r = cli.shell(recipe .. "\n", {
          UNIT = cli.uuid(), NEW_TZ = "UTC", TOOLZZ_TOKEN = wrong,
          TOOLZZ_TOKEN_FILE = cli.write_file(cli.work() .. "/wrong-token", wrong .. "\n"),
          GOOGLE_TOKEN_FILE = cli.write_file(cli.work() .. "/google-token", "ya29.fresh-google-token-000\n"),
        })
        assert.matches("401", r.err, 1, true) -- the list call did fail
        assert.are_not.equal(0, r.code, name .. " exits 0 although its list call failed: " .. r.err)
      end)
    end
  end)

  it("the API token in a key of a response is never printed", function()
    local answer = '{"id":"' .. ID .. '","sessions":{"Bearer ' .. H.env.token .. '":{"ok":true}}}'
    S.faults { { body = answer } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil((r.out .. r.err):find(H.env.token, 1, true), "the token was printed: " .. r.out)
  end)

  it("a googleToken field whose value is an object (not a string) is still printed [REDACTED]", function()
    local answer = cjson.encode { id = ID, googleCalendarPlugin = { { googleToken = { access_token = H.GOOGLE_TOKEN } } } }
    S.faults { { body = answer } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.out:find(H.GOOGLE_TOKEN, 1, true), "the googleToken was printed: " .. r.out)
  end)

  it("a googleToken and the API token nested deeper than 64 levels in a response are never printed", function()
    local deep = { googleToken = H.GOOGLE_TOKEN, note = "Bearer " .. H.env.token }
    for _ = 1, 70 do deep = { inner = deep } end
    S.faults { { body = cjson.encode { id = ID, deep = deep } } }
    local r = cli.toolzz { "gcal", "get", ID }
    assert.is_nil((r.out .. r.err):find(H.GOOGLE_TOKEN, 1, true), "the googleToken was printed")
    assert.is_nil((r.out .. r.err):find(H.env.token, 1, true), "the API token was printed")
  end)
end)

describe("toolzz batch output as it comes", function()
  before_each(function() S.reset() end)

  it("writes each result line as soon as it and the lines before it are done, not only at the end", function()
    local cli = require "toolzz.cli"
    local core = require "toolzz.core"
    local id = H.UUID
    S.faults {
      { status = 200, body = '{"id":"first"}' },
      { delay = 0.8, status = 200, body = '{"id":"second"}' },
    }
    local batch = ('{"op":"gcal.get","id":"%s"}\n{"op":"gcal.get","id":"%s"}\n'):format(id, id)
    local writes = {}
    local env = { TOOLZZ_TOKEN = H.env.token, TOOLZZ_BASE_URL = H.env.http_url,
                  TOOLZZ_CONVERFLOW_URL = H.env.cf_http_url }
    local sys = {
      stdin = { read = function() local t = batch batch = "" return t end },
      stdout = { write = function(_, ...) writes[#writes + 1] = { text = table.concat { ... }, at = core.now() } end,
                 flush = function() end },
      stderr = { write = function() end, flush = function() end },
      getenv = function(name) return env[name] end,
      isatty = function() return false end,
      now = core.now,
    }
    local code = cli.main({ "--base-url", H.env.http_url, "--converflow-url", H.env.cf_http_url,
                            "batch", "--concurrency", "1", "-" }, sys)
    local ended = core.now()
    local all = {}
    for _, w in ipairs(writes) do all[#all + 1] = w.text end
    assert.equals(0, code, table.concat(all))
    local first
    for _, w in ipairs(writes) do
      if w.text:find('"line":1', 1, true) then first = w break end
    end
    assert.is_table(first, "no line 1 was written")
    assert.truthy(first.text:find("first", 1, true), first.text)
    assert.is_true(ended - first.at > 0.5,
      ("line 1 was written %.2f s before the batch ended (the second item took 0.8 s)"):format(ended - first.at))
  end)
end)

-- Issue 16 items 10 and 16: what the command prints.
-- 10: server data never puts a raw C1 byte (0x9b is CSI on 8-bit terminals)
--     or a bidi control (U+202A-E, U+2066-9) on a terminal: -o table, error
--     lines and JSON output neutralise them (the stand-in serves a record
--     holding them).
-- 16: the batch progress bar stays on screen: redrawn after each result
--     written to the terminal, never cleared when stdout is not the
--     terminal (a fake sys says which descriptors are terminals).
local H = require "helpers"
local cjson = require "cjson"
local cli = require "toolzz.cli"
local output = require "toolzz.cli.output"
local progress = require "toolzz.cli.progress"
local stand_in = H.stand_in

local C1_CSI = "\155"                 -- a raw byte, not UTF-8
local C1_CSI_UTF8 = "\194\155"        -- U+009B
local BIDI = { "\226\128\170", "\226\128\171", "\226\128\172", "\226\128\173", "\226\128\174",
               "\226\129\166", "\226\129\167", "\226\129\168", "\226\129\169" }
local HOSTILE = "Ana" .. C1_CSI .. "31m" .. C1_CSI_UTF8 .. "0m " .. table.concat(BIDI, "x") .. " São"

-- No raw 0x9b outside a UTF-8 sequence, no C1 and no bidi control.
local function assert_terminal_safe(text, what)
  assert.is_nil(text:find("\194[\128-\159]"), what .. ": a C1 control (UTF-8)")
  for _, b in ipairs(BIDI) do assert.is_nil(text:find(b, 1, true), what .. ": a bidi control") end
  -- every byte >= 0x80 belongs to a well-formed UTF-8 sequence
  local rest = text:gsub("[\194-\223][\128-\191]", ""):gsub("[\224-\239][\128-\191][\128-\191]", "")
    :gsub("[\240-\244][\128-\191][\128-\191][\128-\191]", "")
  assert.is_nil(rest:find("[\128-\255]"), what .. ": a byte outside UTF-8")
end

-- A sys for cli.main: stdout and stderr captured (into one stream when
-- `one_terminal`), isatty answering from `ttys`.
local function fake_system(ttys, one_terminal)
  local out, err = {}, {}
  local function sink(list)
    return { write = function(self, ...) for _, s in ipairs { ... } do list[#list + 1] = s end return self end,
             flush = function(self) return self end }
  end
  local sys = {
    stdin = io.stdin, stdout = sink(out), stderr = sink(one_terminal and out or err),
    getenv = function(name) return name == "TOOLZZ_TOKEN" and H.env.token or nil end,
    isatty = function(fd) return ttys[fd] == true end,
    now = function() return 0 end, -- frozen: the bar's 0.1 s throttle never lets a frame through by time
  }
  return sys, out, err
end

describe("terminal safety of server data (issue 16 item 10)", function()
  it("one_line turns raw C1 bytes, C1 controls and bidi controls into harmless text", function()
    local text = output.one_line(HOSTILE)
    assert_terminal_safe(text, "one_line")
    assert.matches("Ana", text, 1, true)
    assert.matches("São", text, 1, true) -- valid UTF-8 stays
  end)

  it("-o table and error lines are terminal-safe", function()
    local view = output.table_view { { id = "x" .. C1_CSI, name = HOSTILE, timezone = BIDI[5] .. "UTC" } }
    assert_terminal_safe(view, "table")
    assert.matches("São", view, 1, true)
    local lines = output.error_lines(require("toolzz.errors").new("http", "bad " .. HOSTILE, { status = 500 }))
    for _, l in ipairs(lines) do assert_terminal_safe(l, "error line") end
  end)

  it("JSON output escapes C1 and bidi controls (same value), and replaces bytes outside UTF-8", function()
    local text = output.encode { name = "a" .. C1_CSI_UTF8 .. BIDI[5] .. BIDI[9] .. "b" }
    assert_terminal_safe(text, "json")
    assert.equal('{"name":"a\\u009b\\u202e\\u2069b"}', text)
    assert.equal("a" .. C1_CSI_UTF8 .. BIDI[5] .. BIDI[9] .. "b", cjson.decode(text).name)
    text = output.encode { name = "a" .. C1_CSI .. "b" }
    assert_terminal_safe(text, "json of a raw byte")
    assert.equal('{"name":"a\\ufffdb"}', text)
  end)

  it("the command's table, JSON and error output of a record holding them are terminal-safe", function()
    stand_in.reset()
    local id = stand_in.put_record("function", H.gcal_body { type = "google-calendar", name = HOSTILE,
                                                             description = HOSTILE })
    for _, format in ipairs { "table", "json", "pretty" } do
      local sys, out, err = fake_system { [1] = true }
      local status = cli.main({ "--base-url", H.env.http_url, "-o", format, "gcal", "get", id }, sys)
      assert.equal(0, status, table.concat(err))
      local text = table.concat(out)
      assert.matches("Ana", text, 1, true)
      assert_terminal_safe(text, "-o " .. format)
    end
    stand_in.faults { { status = 500, content_type = "text/plain", body = "failed: " .. HOSTILE } }
    local sys, _, err = fake_system {}
    local status = cli.main({ "--base-url", H.env.http_url, "--retries", "0", "gcal", "get", id }, sys)
    assert.equal(1, status)
    assert_terminal_safe(table.concat(err), "error lines")
  end)
end)

describe("the batch progress bar (issue 16 item 16)", function()
  local function batch_file(n)
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "wb"))
    for _ = 1, n do f:write('{"op":"gcal.get","id":"', H.UUID, '"}\n') end
    f:close()
    return path
  end

  it("stays on screen: redrawn right after each result written to the terminal", function()
    local sys, out = fake_system({ [1] = true, [2] = true }, true)
    local status = cli.main({ "--base-url", H.env.http_url .. "/static", "batch", batch_file(5),
                              "--concurrency", "1" }, sys)
    assert.equal(0, status)
    local stream = table.concat(out)
    local results = 0
    -- every result line is followed at once by a frame of the bar
    for after in stream:gmatch('{"line":%d+,[^\n]*\n(.?.?.?.?.?)') do
      results = results + 1
      assert.equal(progress.CLEAR_LINE .. "[", after, "a result line not followed by the bar")
    end
    assert.equal(5, results)
  end)

  it("is never cleared when stdout is not the terminal", function()
    local sys, out, err = fake_system { [2] = true }
    local status = cli.main({ "--base-url", H.env.http_url .. "/static", "batch", batch_file(5),
                              "--concurrency", "1" }, sys)
    assert.equal(0, status)
    assert.equal(5, #table.concat(out):gsub("[^\n]", ""))
    local frames = table.concat(err)
    -- each CLEAR_LINE starts a frame: none is a bare clear
    for after in frames:gmatch("\r\27%[K(.?)") do
      assert.equal("[", after, "the bar was cleared and not redrawn: " .. frames:gsub("\27", "ESC"))
    end
    assert.matches("5/5 100%", frames, 1, true)
  end)
end)

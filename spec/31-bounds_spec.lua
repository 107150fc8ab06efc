-- What a hostile answer can make the process hold (issue 9, item 17),
-- measured in a process of its own (spec/bounds_child.lua): "peak" is the
-- growth of the resident set, "held" that of the Lua heap while the results
-- are kept. The answer is the worst case per byte: 7.9 MiB of tiny JSON
-- objects, `[{},{},...]`, one Lua table per 3 bytes, just under
-- max_response_bytes (the stand-in's `objects` fault).
--
-- An error answer keeps err.body (8 KiB) and decodes err.data only from a
-- body of up to 64 KiB, so it costs little more than its bytes while they
-- are read. A 2xx answer is the caller's result: its tables are the worst
-- case per call README states (up to about 36 times its size), and a batch
-- holds its results until it returns.
local H = require "helpers"

local S = H.stand_in
local MIB = 1024 * 1024
local ANSWER_BYTES = math.floor(7.9 * MIB)

-- `[{},{},...]` of n bytes at most.
local function tiny_objects(n)
  local count = math.floor((n - 2) / 3)
  return "[" .. ("{},"):rep(count - 1) .. "{}]"
end

local function is_linux()
  local f = io.open("/proc/self/status", "r")
  if f then f:close() end
  return f ~= nil
end

-- Run the child with `args` after queueing a plain answer and `faults`;
-- returns peak and held growth in MiB and the kinds of the results.
local function measure(args, faults)
  S.reset()
  local queue = { { status = 200 } }
  for _, f in ipairs(faults) do queue[#queue + 1] = f end
  S.faults(queue)
  local interpreter = H.flavour == "luajit" and "luajit" or H.flavour
  local pipe = assert(io.popen(interpreter .. " spec/bounds_child.lua " .. args .. " 2>&1"))
  local out = pipe:read("*a")
  pipe:close()
  local peak, held, kinds = out:match("peak=(%-?%d+) held=(%-?%d+) kinds=(%S+)")
  assert(peak, "the child failed: " .. out)
  return tonumber(peak) / 1024, tonumber(held) / 1024, kinds
end

describe("resource bounds #no_valgrind", function()
  if not is_linux() then
    it("are measured from /proc/self/status", function() error("no /proc/self/status: not Linux") end)
    return
  end
  it("an error answer of 7.9 MiB of tiny objects costs about its size, not its tables", function()
    local peak, held, kinds = measure("single 1", { { status = 422, objects = ANSWER_BYTES } })
    assert.equals("http", kinds)
    print(("\n  error answer: peak +%.1f MiB, held +%.1f MiB"):format(peak, held))
    assert.truthy(peak < 48, ("peak +%.1f MiB"):format(peak))
    assert.truthy(held < 8, ("held +%.1f MiB"):format(held))
  end)

  it("a small error body is still decoded into err.data", function()
    local c = H.client()
    S.reset()
    local small = '{"message":"bad","items":' .. tiny_objects(64 * 1024 - 26) .. "}"
    assert.truthy(#small <= 64 * 1024 and #small > 64 * 1024 - 4, #small)
    S.faults { { status = 422, body = small } }
    local _, err = c.gcal.update(H.UUID, H.gcal_body())
    c:close()
    assert.equals("http", err.kind)
    assert.is_table(err.data, "a body of " .. #small .. " bytes is decoded")
    assert.equals("bad", err.message)
  end)

  it("an error body over 64 KiB keeps err.body, and no err.data", function()
    local c = H.client()
    S.reset()
    local big = '{"message":"bad","items":' .. tiny_objects(64 * 1024) .. "}"
    S.faults { { status = 422, body = big } }
    local _, err = c.gcal.update(H.UUID, H.gcal_body())
    c:close()
    assert.equals("http", err.kind)
    assert.is_nil(err.data)
    assert.equals(big:sub(1, 100), err.body:sub(1, 100))
    assert.equals("HTTP 422 Unprocessable Content", err.message)
  end)

  it("a 2xx answer of 7.9 MiB of tiny objects stays within the README's worst case", function()
    local peak, held, kinds = measure("single 1", { { status = 200, objects = ANSWER_BYTES } })
    assert.equals("ok", kinds)
    print(("\n  2xx answer: peak +%.1f MiB, held +%.1f MiB"):format(peak, held))
    -- README: a 2xx answer may hold up to 36 times its size in Lua tables
    assert.truthy(peak < 36 * ANSWER_BYTES / MIB + 16, ("peak +%.1f MiB"):format(peak))
  end)

  it("a batch of two 2xx answers of 7.9 MiB holds both results, no more", function()
    local faults = { { status = 200, objects = ANSWER_BYTES }, { status = 200, objects = ANSWER_BYTES } }
    local peak, held, kinds = measure("batch 2", faults)
    assert.equals("ok,ok", kinds)
    print(("\n  batch of two 2xx answers: peak +%.1f MiB, held +%.1f MiB"):format(peak, held))
    assert.truthy(peak < 2 * 36 * ANSWER_BYTES / MIB + 32, ("peak +%.1f MiB"):format(peak))
  end)

  it("a batch of 8 error answers of 7.9 MiB costs about their bytes", function()
    local faults = {}
    for i = 1, 8 do faults[i] = { status = 422, objects = ANSWER_BYTES } end
    local peak, held, kinds = measure("batch 8", faults)
    assert.equals(("http,"):rep(7) .. "http", kinds)
    print(("\n  batch of 8 error answers: peak +%.1f MiB, held +%.1f MiB"):format(peak, held))
    assert.truthy(peak < 8 * 16 + 32, ("peak +%.1f MiB"):format(peak))
    assert.truthy(held < 8, ("held +%.1f MiB"):format(held))
  end)
end)

-- Declarative sync against the stand-in (issue 18's speed and memory
-- demands), one figure per line:
--
--   lua5.4 bench/sync.lua            all of it (about a minute; seeds the stand-in)
--   lua5.4 bench/sync.lua apply      only apply's figure (about 25 s)
--   lua5.4 bench/sync.lua rss FILE   peak RSS of loading and planning FILE (a fresh process per figure)
--
-- plan: 500 units (1,000 list calls) through a 10 ms server, concurrency 32
-- against 1; apply: 1,000 updates (a re-read and a PUT each) the same way;
-- rss: peak RSS (VmHWM) planning 10,000 records against the empty run, per
-- record; export twice byte-identical; the client time of a 1-unit plan
-- with no change beyond its two list calls. bench/run (make bench) runs it
-- all and keeps its lines (INFO sync1..).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "common"
local H = require "helpers"
local toolzz = require "toolzz"
local planner = require "toolzz.sync.plan"
local load = require "toolzz.sync.load"

local S = H.stand_in
local now = B.now

local function unit_id(u) return string.format("%08x-0000-4000-8000-000000000000", u) end

local function client(delay)
  local prefix = delay and ("/delay/" .. delay) or ""
  return H.client { timeout = 120, base_url = B.http_url .. prefix, converflow_url = B.cf_http_url .. prefix }
end

-- Seed units x per records of each kind; returns the unit ids.
local function seed(units, per)
  S.reset()
  local c, items, ids = client(), {}, {}
  for u = 1, units do
    ids[u] = unit_id(u)
    for i = 1, per do
      items[#items + 1] = { "calcom.create", H.calcom_create_body { title = "C" .. i, unitId = ids[u] } }
      items[#items + 1] = { "gcal.create", H.gcal_body { name = "G" .. i, unityId = ids[u] } }
    end
  end
  for first = 1, #items, 2000 do
    local chunk = {}
    for i = first, math.min(first + 1999, #items) do chunk[#chunk + 1] = items[i] end
    for _, r in ipairs(assert(c.batch(chunk, { concurrency = 32 }))) do assert(r.res, tostring(r.err)) end
  end
  return ids
end

local function peak_kib()
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)"))
end

if arg[1] == "rss" then -- in a fresh process, as `toolzz plan FILE` does: load a file, plan it
  local desired = assert(toolzz.sync.load(arg[2]))
  local plan = assert(client().sync.plan(desired, { concurrency = 32 }))
  print(peak_kib(), plan.summary.unchanged)
  os.exit(0)
end

local function ratio(label, run)
  local t32 = run(32)
  local t1 = run(1)
  print(string.format("%s: concurrency 32 %.2f s, 1 %.2f s: %.1fx", label, t32, t1, t1 / t32))
end

local only = arg[1] -- "apply": only apply's figure; nil: all

-- plan of 500 units
if only ~= "apply" then
  S.reset()
  local units = { toolzz = 1, units = {} }
  for u = 1, 500 do units.units[u] = { unit = unit_id(u) } end
  ratio("plan 500 units (1,000 lists, 10 ms each)", function(c)
    local t0 = now()
    assert(client(10).sync.plan(units, { concurrency = c }))
    return now() - t0
  end)
end

-- apply of 1,000 updates
local ids = seed(10, 100) -- 10 units x 100 Cal.com (and 100 functions, unmanaged)
local fast = client()
local desired = { toolzz = 1, units = {} }
for u, id in ipairs(ids) do
  local records = {}
  for _, item in ipairs(assert(fast.calcom.list(id))) do
    records[#records + 1] = { key = "k" .. item.id, id = item.id, prompt = "v0" }
  end
  local gcal = {}
  for _, item in ipairs(assert(fast.gcal.list(id))) do gcal[#gcal + 1] = { key = "g" .. item.id, id = item.id } end
  desired.units[u] = { unit = id, calcom = records, gcal = gcal }
end
local version = 0
ratio("apply 1,000 updates (a re-read and a PUT each, 10 ms each)", function(c)
  version = version + 1
  for _, unit in ipairs(desired.units) do
    for _, r in ipairs(unit.calcom) do r.prompt = "v" .. version end
  end
  local t0 = now()
  local report = assert(client(10).sync.apply(desired, { concurrency = c, plan_concurrency = c, force = true }))
  assert(report.ok and report.summary.applied == 1000, "not all applied")
  return now() - t0
end)
if only == "apply" then os.exit(0) end

-- a 1-unit plan with no change: client time beyond its two lists (checking
-- the file, matching, comparing, fingerprints and the plan's checksum)
local function no_change_plan(unit, records)
  local one = assert(fast.sync.export { unit })
  local lists = assert(planner.read_lists(fast, assert(load.check(one)), {}))
  local t0 = now()
  for _ = 1, 100 do planner.build(assert(load.check(one)), lists, {}) end
  local ms = (now() - t0) / 100 * 1000
  print(string.format("1-unit plan with no change (%d records): %.3f ms of client time beyond its 2 lists "
    .. "(%.1f us per record)", records, ms, ms * 1000 / records))
end
no_change_plan(ids[1], 200)
no_change_plan(seed(1, 3)[1], 6) -- the size of a unit in the property test (0-6 records)

-- 10,000 records: peak RSS over the empty run, export twice
ids = seed(100, 50)
-- the peak RSS of a fresh process planning the desired doc (written to a file first)
local function child(doc)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(assert(toolzz.sync.encode(doc)))
  f:close()
  local lua = arg[-1] or "lua5.4"
  local p = assert(io.popen(lua .. " " .. arg[0] .. " rss " .. path))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return tonumber(out:match("^(%d+)"))
end
local empty_units = { toolzz = 1, units = {} }
for u = 1, 100 do empty_units.units[u] = { unit = unit_id(1000 + u) } end -- units with no records
local empty, full = child(empty_units), child(assert(fast.sync.export(ids, { concurrency = 32 })))
print(string.format("plan of 10,000 records: peak RSS %d KiB, empty run %d KiB: %.2f KiB per record",
  full, empty, (full - empty) / 10000))
local a = toolzz.sync.encode(assert(fast.sync.export(ids, { concurrency = 32 })))
local b = toolzz.sync.encode(assert(fast.sync.export(ids, { concurrency = 32 })))
print(string.format("export of 10,000 records: %d bytes, byte-identical on a second run: %s", #a, tostring(a == b)))

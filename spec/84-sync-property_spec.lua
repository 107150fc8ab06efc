-- Part 3: round trips on random desired files (a property test). For each
-- generated case: server records in 1-5 units, a desired file of 0-6
-- records per unit mixing pinned updates, adoptions by name, creates and
-- records left unmanaged. Export then plan shows no change; apply then plan
-- shows no change; a second export is byte-identical to the first after it.
-- Seedable: TOOLZZ_SEED=<n>; the seed is printed with any failure.
-- TOOLZZ_PROPERTY_CASES sets the count (200; 10 under valgrind).
local H = require "helpers"
local toolzz = require "toolzz"

local S = H.stand_in
local null = toolzz.null
local encode = toolzz.sync.encode

local SEED = tonumber(os.getenv("TOOLZZ_SEED") or "") or os.time()
local CASES = tonumber(os.getenv("TOOLZZ_PROPERTY_CASES") or "")
  or (os.getenv("TOOLZZ_UNDER_VALGRIND") and 10 or 200)

local ZONES = { "UTC", "America/Sao_Paulo", "Europe/Lisbon", "Asia/Tokyo" }
local PIECES = { "a", "Z", " ", "\n", "é", "\"", "\\", "/", "ü", "😀", "\t", "1", "x-y" }

local random = math.random

local function pick(list) return list[random(#list)] end

local function text(min)
  local parts = {}
  for i = 1, random(min or 0, 12) do parts[i] = pick(PIECES) end
  return table.concat(parts)
end

local function uuid()
  local function hex16() return string.format("%04x", random(0, 0xffff)) end -- small ranges: Lua 5.1's random is int
  return hex16() .. hex16() .. "-" .. hex16() .. "-4" .. hex16():sub(2) .. "-8" .. hex16():sub(2) .. "-"
    .. hex16() .. hex16() .. hex16()
end

local function calcom_fields(unit, title)
  return { title = title, unitId = unit, calcomUsername = "user-" .. random(1000), timezone = pick(ZONES),
    prompt = text(1), checkAvailabilityEnabled = random(2) == 1, createBookingEnabled = random(2) == 1 }
end

local function outputs()
  local list = toolzz.array()
  for i = 1, random(0, 2) do
    list[i] = { property = "p" .. i, type = "string", description = text(1), required = random(2) == 1 }
  end
  return list
end

local function gcal_fields(unit, name)
  local g = {
    name = name, description = text(1), userId = H.USER, unityId = unit,
    iconFileId = random(3) == 1 and uuid() or null, outputs = outputs(),
    googleCalendar = { googleId = tostring(random(1, 999999)), calendarId = "cal" .. random(99) .. "@example.com",
      timezone = pick(ZONES), googleToken = "ya29.property-token-" .. random(1e6),
      googleUser = { name = "N", given_name = "G", family_name = "F", email = "u" .. random(99) .. "@example.com" } },
  }
  if random(2) == 1 then g.googleCalendar.notificationContent = text() end
  return g
end

-- Random changes to a file record of kind (fields a file may manage).
local function change(kind, rec, may_rename, creating)
  if kind == "calcom" then
    if random(2) == 1 then rec.prompt = text(1) end
    if random(3) == 1 then rec.timezone = pick(ZONES) end
    if random(3) == 1 then rec.createBookingEnabled = random(2) == 1 end
    if may_rename and random(4) == 1 then rec.title = "renamed " .. text(1) end
    if random(5) == 1 then
      rec.ignore = toolzz.array { "prompt" }
      rec.prompt = "ignored " .. text()
    end
  else
    if random(2) == 1 then rec.description = text(1) end
    if random(3) == 1 then rec.outputs = outputs() end
    if random(3) == 1 then rec.iconFileId = random(2) == 1 and uuid() or null end
    rec.googleCalendar = rec.googleCalendar or {}
    if random(3) == 1 then rec.googleCalendar.timezone = pick(ZONES) end
    if random(4) == 1 then rec.googleCalendar.notificationContent = random(2) == 1 and text() or null end
    if not creating and random(4) == 1 then
      rec.googleCalendar.googleUser = { email = "changed" .. random(99) .. "@example.com" }
    end
    if may_rename and random(4) == 1 then rec.name = "renamed " .. text(1) end
  end
  return rec
end

-- A file record from server fields (what a person would write): no unit id.
local function file_record(kind, fields, key, secret_file)
  local rec = { key = key }
  for k, v in pairs(fields) do rec[k] = v end
  if kind == "calcom" then
    rec.unitId = nil
    rec.apiKey = { file = secret_file }
  else
    rec.unityId = nil
    local g = {}
    for k, v in pairs(rec.googleCalendar) do g[k] = v end
    g.googleToken = { file = secret_file }
    rec.googleCalendar = g
  end
  return rec
end

-- One generated case: seeds the stand-in, returns the desired table and unit ids.
local function generate(client, secret_file)
  local units, unit_ids, creates, made = {}, {}, {}, {}
  for u = 1, random(1, 5) do
    local unit = uuid()
    unit_ids[u] = unit
    units[u] = { unit = unit, calcom = toolzz.array(), gcal = toolzz.array() }
    for _, kind in ipairs { "calcom", "gcal" } do
      for i = 1, random(0, 3) do
        local name = kind .. " " .. u .. "." .. i .. " " .. text()
        local fields = kind == "calcom" and calcom_fields(unit, name) or gcal_fields(unit, name)
        if kind == "calcom" then fields.apiKey = "cal_live_property_key_" .. random(1e6) end
        creates[#creates + 1] = { kind .. ".create", fields }
        made[#made + 1] = { u = u, kind = kind, fields = fields }
      end
    end
    if random(4) == 1 then -- a function of another type: never in scope
      S.put_record("function", { name = "js", description = "d", userId = H.USER, unityId = unit, type = "javascript" })
    end
  end
  local results = assert(client.batch(creates))
  local n = 0
  for i, m in ipairs(made) do
    local res = assert(results[i].res, tostring(results[i].err))
    local roll = random(4)
    local records = units[m.u][m.kind]
    if roll <= 3 and #records < 6 then
      n = n + 1
      local rec = file_record(m.kind, m.fields, "k" .. n, secret_file)
      if roll == 1 then -- pinned, changed or not
        rec.id = res.id
        change(m.kind, rec, true)
      elseif roll == 2 then -- adopted by name
        change(m.kind, rec, false)
      else -- pinned, some fields left to the server
        rec.id = res.id
        if m.kind == "calcom" then rec.prompt, rec.timezone = nil, nil else rec.outputs, rec.description = nil, nil end
      end
      records[#records + 1] = rec
    end -- else: left unmanaged
  end
  for u = 1, #units do
    for _ = 1, random(0, 6 - #units[u].calcom - #units[u].gcal) do -- creates
      n = n + 1
      local kind = random(2) == 1 and "calcom" or "gcal"
      local name = "new " .. n .. " " .. text()
      local fields = kind == "calcom" and calcom_fields(units[u].unit, name) or gcal_fields(units[u].unit, name)
      local records = units[u][kind]
      records[#records + 1] = change(kind, file_record(kind, fields, "k" .. n, secret_file), false, true)
    end
  end
  return { toolzz = 1, units = units }, unit_ids
end

local function no_change(plan, what)
  local s = plan.summary
  if s.create + s.update + s.failed ~= 0 or #plan.changes ~= 0 then
    error(what .. " shows changes: " .. encode(plan), 0)
  end
end

describe("sync round trips (property, seed " .. SEED .. ")", function()
  it("export then plan, apply then plan: no change, on " .. CASES .. " random files", function()
    math.randomseed(SEED)
    local secret_file = os.tmpname()
    local f = assert(io.open(secret_file, "wb"))
    f:write("cal_live_property_secret_value\n")
    f:close()
    local client = H.client()
    for case = 1, CASES do
      local ok, err = pcall(function()
        S.reset()
        local desired, unit_ids = generate(client, secret_file)
        -- export -> plan: no change
        local exported = assert(client.sync.export(unit_ids))
        local exported_text = assert(encode(exported))
        no_change(assert(client.sync.plan(assert(toolzz.sync.decode(exported_text)))), "export -> plan")
        -- apply -> plan: no change
        local report, aerr = client.sync.apply(desired, { force = true })
        if not report then error(tostring(aerr) .. " " .. (aerr.failed and encode(aerr.failed) or ""), 0) end
        if not report.ok then error("apply failed: " .. encode(report), 0) end
        no_change(assert(client.sync.plan(desired)), "apply -> plan")
        -- export twice: the same bytes; and it plans with no change
        local a = assert(encode(assert(client.sync.export(unit_ids))))
        local b = assert(encode(assert(client.sync.export(unit_ids))))
        assert(a == b, "two exports differ")
        no_change(assert(client.sync.plan(assert(toolzz.sync.decode(a)))), "apply -> export -> plan")
      end)
      if not ok then
        os.remove(secret_file)
        error("case " .. case .. " failed (TOOLZZ_SEED=" .. SEED .. "): " .. tostring(err), 0)
      end
    end
    os.remove(secret_file)
  end)
end)

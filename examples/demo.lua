-- The lifecycle of both integrations: create a Cal.com integration and a
-- Google Calendar function, list them, patch one field, read it back,
-- duplicate the function, replace both whole (update), and show what a bad
-- input looks like. `make demo` runs this against the local stand-in; point
-- TOOLZZ_BASE_URL, TOOLZZ_CONVERFLOW_URL and TOOLZZ_TOKEN at the real API to
-- use it for real.
local toolzz = require "toolzz"

local client, err = toolzz.new {
  token = os.getenv("TOOLZZ_TOKEN"),
  base_url = os.getenv("TOOLZZ_BASE_URL"),
  converflow_url = os.getenv("TOOLZZ_CONVERFLOW_URL"),
  ca_file = os.getenv("TOOLZZ_CA_FILE"),
  on_response = function(info)
    print(("  [%s %s -> %s in %.1f ms, attempt %d]"):format(info.method, info.url,
      tostring(info.status or info.error), (info.elapsed or 0) * 1000, info.attempt))
  end,
}
if not client then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local function show(title, res, failure)
  print(title)
  if not res then
    print("  error: " .. tostring(failure))
    return false
  end
  local keys = {}
  for k in pairs(res) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = res[k]
    if v == toolzz.null then v = "null"
    elseif type(v) == "table" then v = "(" .. #v .. " item" .. (#v == 1 and "" or "s") .. ")" end
    print(("  %-26s %s"):format(k, tostring(v)))
  end
  return true
end

local UNIT = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff"
local CALCOM = {
  title = "Calcom",
  unitId = UNIT,
  calcomUsername = "ana-silva",
  timezone = "America/Sao_Paulo",
  prompt = "Agende reuniões de 30 minutos com \"clientes\".",
  checkAvailabilityEnabled = true,
  createBookingEnabled = true,
}
local GCAL = {
  name = "Google Calendar",
  description = "Use esta função para marcar reuniões.",
  userId = "9d7a3b1c-2e4f-4a6b-8c0d-112233445566",
  unityId = UNIT,
  googleCalendar = {
    googleId = "109876543210987654321",
    calendarId = "primary",
    timezone = "America/Argentina/Buenos_Aires",
    googleToken = "ya29.demo-token",
    googleUser = { name = "Ana Silva", given_name = "Ana", family_name = "Silva",
                   email = "ana@example.com" },
  },
}

local all_ok = true
local function step(title, res, failure)
  all_ok = show(title, res, failure) and all_ok
  return res
end

local with_key = { apiKey = "cal_live_demo_key_0123456789" }
for k, v in pairs(CALCOM) do with_key[k] = v end
local cal = step("1. Cal.com integration created (converflow host):", client.calcom.create(with_key))
local fn = step("2. Google Calendar function created:", client.gcal.create(GCAL))
if not (cal and fn) then os.exit(1) end

local list = client.calcom.list(UNIT)
print(("3. The unit has %d Cal.com integration(s) and %d Google Calendar function(s)")
  :format(list and #list or -1, #(client.gcal.list(UNIT) or {})))

step("4. One field patched (bookings off), everything else kept:",
  client.calcom.patch(cal.id, { createBookingEnabled = false }))
local back = client.calcom.get(cal.id)
print("5. Read back: createBookingEnabled = " .. tostring(back and back.createBookingEnabled))

step("6. Google Calendar function moved to Lisbon time (a nested field):",
  client.gcal.patch(fn.id, { googleCalendar = { timezone = "Europe/Lisbon" } }))
local copy = step("7. Function duplicated:", client.gcal.duplicate(fn.id))
print("   the copy is activated: " .. tostring(copy and copy.isActivated))

step("8. Cal.com integration replaced whole (update):", client.calcom.update(cal.id, CALCOM))
step("9. Google Calendar function replaced whole (update):", client.gcal.update(fn.id, GCAL))

print("A typo and a bad time zone are caught before anything is sent:")
local _, bad = client.calcom.patch(cal.id, { timezone = "America/Sao_Paolo", createBookingEnable = true })
for _, f in ipairs(bad.fields) do print(("  %-26s %s"):format(f.path, f.message)) end
print("  " .. tostring(bad))

client:close()
os.exit(all_ok and 0 or 1)

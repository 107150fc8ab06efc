-- Update a Cal.com integration and a Google Calendar function, then show what
-- the API answered and what a bad input looks like. `make demo` runs this
-- against the local stand-in; point TOOLZZ_BASE_URL/TOOLZZ_TOKEN at the real
-- API to use it for real.
local toolzz = require "toolzz"

local client, err = toolzz.new {
  token = os.getenv("TOOLZZ_TOKEN"),
  base_url = os.getenv("TOOLZZ_BASE_URL"),
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

local ok1 = show("Cal.com integration updated:", client.calcom.update("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab", {
  title = "Calcom",
  unitId = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff",
  calcomUsername = "ana-silva",
  timezone = "America/Sao_Paulo",
  prompt = "Agende reuniões de 30 minutos com \"clientes\".",
  checkAvailabilityEnabled = true,
  createBookingEnabled = true,
}))

local ok2 = show("Google Calendar function updated:", client.gcal.update("9d7a3b1c-2e4f-4a6b-8c0d-112233445566", {
  name = "Google Calendar",
  description = "Use esta função para marcar reuniões.",
  userId = "9d7a3b1c-2e4f-4a6b-8c0d-112233445566",
  unityId = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff",
  googleCalendar = {
    googleId = "109876543210987654321",
    calendarId = "primary",
    timezone = "America/Argentina/Buenos_Aires",
    googleToken = "ya29.demo-token",
    googleUser = { name = "Ana Silva", given_name = "Ana", family_name = "Silva",
                   email = "ana@example.com" },
  },
}))

print("A typo and a bad time zone are caught before anything is sent:")
local _, bad = client.calcom.update("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab", {
  title = "Calcom", unitId = "0b6f1f5e-8a2c-4d3e-9f10-aabbccddeeff", calcomUsername = "ana",
  timezone = "America/Sao_Paolo", prompt = "p", checkAvailabilityEnabled = "true",
  createBookingEnable = true,
})
for _, f in ipairs(bad.fields) do print(("  %-26s %s"):format(f.path, f.message)) end

client:close()
os.exit((ok1 and ok2) and 0 or 1)

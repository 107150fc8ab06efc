-- toolzz.schema: the two endpoints, as data.
--
-- Each endpoint is a path prefix and an object schema. A field spec has a
-- `type` (string, boolean, uuid, timezone, email, url, digits, const, array,
-- object), `required`, `nullable`, `default` (filled in when absent),
-- `secret` (scrubbed from errors), and
-- for objects its own `fields`. The validator (toolzz.validate) walks these;
-- nothing else in the module knows a field name.
local _M = {}

-- Markers for defaults that Lua cannot spell as literals: JSON null and an
-- empty JSON array. toolzz.validate turns them into the real values.
_M.NULL = setmetatable({}, { __tostring = function() return "null" end })
_M.EMPTY_ARRAY = setmetatable({}, { __tostring = function() return "[]" end })

_M.calcom = {
  name = "calcom",
  title = "Cal.com integration",
  path = "/api/v1/calcom/integration/",
  fields = {
    title                    = { type = "string", required = true },
    unitId                   = { type = "uuid", required = true },
    calcomUsername           = { type = "string", required = true },
    timezone                 = { type = "timezone", required = true },
    prompt                   = { type = "string", required = true },
    checkAvailabilityEnabled = { type = "boolean", required = true },
    createBookingEnabled     = { type = "boolean", required = true },
  },
}

_M.gcal = {
  name = "gcal",
  title = "Google Calendar function",
  path = "/api/v1/functions/",
  fields = {
    name        = { type = "string", required = true },
    description = { type = "string", required = true },
    iconFileId  = { type = "uuid", nullable = true, default = _M.NULL },
    outputs     = { type = "array", default = _M.EMPTY_ARRAY },
    type        = { type = "const", value = "google-calendar", required = true,
                    default = "google-calendar" },
    userId      = { type = "uuid", required = true },
    unityId     = { type = "uuid", required = true },
    googleCalendar = {
      type = "object", required = true,
      fields = {
        googleId            = { type = "digits", required = true },
        calendarId          = { type = "string", required = true },
        timezone            = { type = "timezone", required = true },
        notificationContent = { type = "string" },
        googleToken         = { type = "string", required = true, secret = true },
        googleUser = {
          type = "object", required = true,
          fields = {
            name        = { type = "string", required = true },
            given_name  = { type = "string", required = true },
            family_name = { type = "string", required = true },
            picture     = { type = "url" },
            email       = { type = "email", required = true },
            hd          = { type = "string" },
          },
        },
      },
    },
  },
}

return _M

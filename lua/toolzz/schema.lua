-- toolzz.schema: the two endpoints, as data.
--
-- Each body is an object schema. A field spec has a `type` (string,
-- boolean, uuid, timezone, email, url, digits, const, array, object),
-- `required`, `nullable`, `default` (filled in when absent), `secret`
-- (scrubbed from errors), for objects its own `fields`, for arrays the
-- `items` they hold (their request fields: what a patch keeps of a read
-- record's items; not validated), and `from` where a read record keeps
-- the field elsewhere (a path of keys and indexes), `masked_flag` for a
-- secret: the field of a record as read (at its top or in its `from` row)
-- that says the API sent the value masked. `read_only`: the fields a record
-- as read has beyond the update fields (what a response carries that a body
-- never does), so that a record sent back whole is one clear error, not a
-- list of typos. The validator
-- (toolzz.validate) and the patch mapping (toolzz.patch) walk these;
-- nothing else in the module knows a field name.
local pairs, setmetatable = pairs, setmetatable

local _M = {}

-- Markers for defaults that Lua cannot spell as literals: JSON null and an
-- empty JSON array. toolzz.validate turns them into the real values.
_M.NULL = setmetatable({}, { __tostring = function() return "null" end })
_M.EMPTY_ARRAY = setmetatable({}, { __tostring = function() return "[]" end })

_M.calcom = {
  name = "calcom",
  title = "Cal.com integration",
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
  fields = {
    name        = { type = "string", required = true },
    description = { type = "string", required = true },
    iconFileId  = { type = "uuid", nullable = true, default = _M.NULL },
    outputs     = { type = "array", default = _M.EMPTY_ARRAY,
                    items = { type = "object", fields = {
                      property = { type = "string" }, type = { type = "string" },
                      description = { type = "string" }, required = { type = "boolean" },
                    } } },
    type        = { type = "const", value = "google-calendar", required = true,
                    default = "google-calendar" },
    userId      = { type = "uuid", required = true },
    unityId     = { type = "uuid", required = true },
    googleCalendar = {
      type = "object", required = true, from = { "googleCalendarPlugin", 1 },
      fields = {
        googleId            = { type = "digits", required = true },
        calendarId          = { type = "string", required = true },
        timezone            = { type = "timezone", required = true },
        notificationContent = { type = "string" },
        googleToken         = { type = "string", required = true, secret = true, masked_flag = "isTokenMasked" },
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

-- The fields of a record as read that an update body does not have.
local function set_of(list)
  local set = {}
  for _, name in pairs(list) do set[name] = true end
  return set
end
_M.calcom.read_only = set_of { "id", "apiKey", "isTokenMasked", "isActive", "botId", "defaultEventTypeId",
  "defaultEventTypeSlug", "createdAt", "updatedAt" }
_M.gcal.read_only = set_of { "id", "institutionId", "code", "status", "color", "isActivated",
  "googleCalendarPlugin", "discordPlugin", "telegramPlugin" }

-- A copy of spec with more fields: extra mirrors spec's shape, and an
-- object in it adds to (never replaces) the object of the same name.
local function extend(spec, extra, name)
  local out = {}
  for k, v in pairs(spec) do out[k] = v end
  out.name = name or spec.name
  out.fields = {}
  for k, field in pairs(spec.fields) do
    local more = extra[k]
    out.fields[k] = (more and field.type == "object") and extend(field, more) or field
  end
  for k, field in pairs(extra) do
    if not spec.fields[k] then out.fields[k] = field end
  end
  return out
end

-- Create bodies: the update schemas and what only a create takes.
_M.calcom_create = extend(_M.calcom, {
  apiKey = { type = "string", required = true, secret = true },
}, "calcom_create")
_M.calcom_create.title = "new Cal.com integration"
_M.calcom_create.create = true

_M.gcal_create = extend(_M.gcal, {
  googleCalendar = {
    googleUser = {
      id             = { type = "digits" },
      verified_email = { type = "boolean" },
    },
  },
}, "gcal_create")
_M.gcal_create.title = "new Google Calendar function"
_M.gcal_create.create = true

-- The names of every secret field (apiKey, googleToken): a value under such
-- a name is scrubbed even where no schema expects it (a lax body, a result).
_M.SECRET_NAMES = {}
local function collect_secret_names(spec)
  for name, field in pairs(spec.fields) do
    if field.secret then _M.SECRET_NAMES[name] = true end
    if field.type == "object" then collect_secret_names(field) end
  end
end
for _, spec in pairs { _M.calcom, _M.gcal, _M.calcom_create, _M.gcal_create } do collect_secret_names(spec) end

return _M

-- toolzz.operations: every call the module offers, as data; the one place
-- that says what an operation is (its name, its API path, its help).
--
-- One entry per operation: its HTTP method, which host serves it
-- (`base_url` or `converflow_url`), its path template (`{id}` is the one
-- argument that goes into the URL), the schema of its body (none: no body
-- is sent), how its answer is unwrapped (`unwrap`: the list under `key`,
-- only records of `type`), and whether it is idempotent (may be retried
-- after it possibly reached the server; POST is not). A `patch` entry
-- names the read and the write it is made of. `id_name` is how errors name
-- the id argument when it is not "id". `summary` is its one-line help,
-- `example` the command line the help shows, `aliases` other names a batch
-- item may give it.
--
-- Derived here, for every reader: `group` and `verb` (the two halves of the
-- name), `takes_id` (an id goes into the path, or a patch's read), `body`
-- ("fields" for a schema, "changes" for a patch, nil: none) and
-- `takes_body`, `arg` (the argument's name in help: ID, UNIT_ID, ...),
-- `writes`. Client and module-level methods are built from this list in
-- one loop (toolzz.client); the request path (toolzz.calls) reads nothing
-- else; the command's subcommands, batch lines and the LuaLS types
-- (tools/gen-types.lua) come from it too.
local schema = require "toolzz.schema"

local ipairs, upper = ipairs, string.upper

local _M = {}

-- The groups of calls, in the order help lists them.
_M.groups = {
  { name = "calcom", summary = "Cal.com integrations (create, get and list go to the converflow host)." },
  { name = "gcal", summary = "Google Calendar functions." },
}

local CATALOGUE = {
  { name = "calcom.get", method = "GET", host = "converflow_url",
    path = "/api/v1/calcom/integration/{id}",
    summary = "Show one Cal.com integration." },
  { name = "calcom.list", method = "GET", host = "converflow_url",
    path = "/api/v1/calcom/integration/unit/{id}", id_name = "unit_id", unwrap = { key = "data" },
    summary = "List the Cal.com integrations of a unit.",
    example = "toolzz --output table calcom list UNIT_ID" },
  { name = "calcom.create", method = "POST", host = "converflow_url",
    path = "/api/v1/calcom/integration", schema = schema.calcom_create,
    summary = "Create a Cal.com integration.",
    example = "toolzz calcom create -f integration.json --set-file apiKey=cal-api-key.txt" },
  { name = "calcom.update", method = "PUT", host = "base_url",
    path = "/api/v1/calcom/integration/{id}", schema = schema.calcom, aliases = { "calcom" },
    summary = "Replace a Cal.com integration (PUT: every required field).",
    example = "toolzz calcom update ID -f integration.json" },
  { name = "calcom.patch", patch = { read = "calcom.get", write = "calcom.update" },
    summary = "Change some fields of a Cal.com integration (get, merge, update).",
    example = "toolzz calcom patch ID --set createBookingEnabled=false --set prompt=\"30 min only\"" },

  { name = "gcal.get", method = "GET", host = "base_url",
    path = "/api/v1/functions/{id}",
    summary = "Show one Google Calendar function." },
  { name = "gcal.list", method = "GET", host = "base_url",
    path = "/api/v1/functions/unity/{id}", id_name = "unity_id", unwrap = { key = "items", type = "google-calendar" },
    summary = "List the Google Calendar functions of a unit.",
    example = "toolzz --output table gcal list UNITY_ID" },
  { name = "gcal.create", method = "POST", host = "base_url",
    path = "/api/v1/functions/", schema = schema.gcal_create,
    summary = "Create a Google Calendar function.",
    example = "toolzz gcal create -f function.json --set-file googleCalendar.googleToken=token.txt" },
  { name = "gcal.update", method = "PUT", host = "base_url",
    path = "/api/v1/functions/{id}", schema = schema.gcal, aliases = { "gcal" },
    summary = "Replace a Google Calendar function (PUT: every required field).",
    example = "toolzz gcal update ID -f function.json" },
  { name = "gcal.patch", patch = { read = "gcal.get", write = "gcal.update" },
    summary = "Change some fields of a Google Calendar function (get, merge, update).",
    example = "toolzz gcal patch ID --set googleCalendar.timezone=Europe/Lisbon -f changes.json" },
  { name = "gcal.duplicate", method = "POST", host = "base_url",
    path = "/api/v1/functions/duplicate/{id}",
    summary = "Copy a Google Calendar function." },
}
_M.list = CATALOGUE

local by_name, aliases = {}, {}
for _, op in ipairs(CATALOGUE) do
  op.group, op.verb = op.name:match("^(%w+)%.(%w+)$")
  if op.path then
    op.before, op.after = op.path:match("^(.-){id}(.*)$")
    if not op.before then op.before, op.after = op.path, nil end
  end
  if op.idempotent == nil then op.idempotent = op.method ~= "POST" end
  op.writes = op.method ~= nil and op.method ~= "GET"
  op.body = op.patch and "changes" or op.schema and "fields" or nil
  op.takes_body = op.body ~= nil
  by_name[op.name] = op
  for _, alias in ipairs(op.aliases or {}) do aliases[alias] = op.name end
end
-- a patch is a read and a write of the same record
for _, op in ipairs(CATALOGUE) do
  if op.patch then
    op.patch.read, op.patch.write = by_name[op.patch.read], by_name[op.patch.write]
  end
  op.takes_id = op.patch ~= nil or op.after ~= nil
  op.arg = op.takes_id and upper(op.id_name or "id") or nil
end
_M.by_name = by_name
-- alias -> the name it stands for ("calcom" -> "calcom.update")
_M.aliases = aliases

-- The operation a name or an alias names, or nil.
function _M.find(name)
  return by_name[aliases[name] or name]
end

-- ---- kinds: what toolzz.sync manages, as data --------------------------------
-- One entry per kind of record a desired-state file holds (CONTRACT Part
-- 3), in the order plans list them: the calls that read and write it
-- (patch: a read and its write, which sync apply guards), the update schema
-- its records follow (and the create schema, whose extra secret fields a
-- record may give for create only), the field naming its
-- unit, the natural key it is matched by when no id is pinned, the field
-- the server stamps on each write (if any), and the fields of a server
-- record that only the server sets (never in a file). Secret fields are the
-- schema's (`secret = true`).
_M.kinds = {
  { name = "calcom", list = "calcom.list", get = "calcom.get", create = "calcom.create", update = "calcom.update",
    patch = "calcom.patch", schema = schema.calcom, create_schema = schema.calcom_create,
    unit_field = "unitId", natural_key = "title", updated_at = "updatedAt",
    read_only = { "id", "createdAt", "updatedAt", "isTokenMasked" } },
  { name = "gcal", list = "gcal.list", get = "gcal.get", create = "gcal.create", update = "gcal.update",
    patch = "gcal.patch", schema = schema.gcal, create_schema = schema.gcal_create,
    unit_field = "unityId", natural_key = "name",
    read_only = { "id", "createdAt", "updatedAt", "googleCalendarPlugin", "isActivated", "customFunctionId" } },
}
for _, kind in ipairs(_M.kinds) do _M.kinds[kind.name] = kind end

return _M

-- toolzz.operations: every call the module offers, as data.
--
-- One entry per operation: its HTTP method, which host serves it
-- (`base_url` or `converflow_url`), its path template (`{id}` is the one
-- argument that goes into the URL), the schema of its body (none: no body
-- is sent), how its answer is unwrapped (`unwrap`: the list under `key`,
-- only records of `type`), and whether it is idempotent (may be retried
-- after it possibly reached the server; POST is not). A `patch` entry
-- names the read and the write it is made of. `id_name` is how errors name
-- the id argument when it is not "id". Client and module-level
-- methods are built from this list in one loop (toolzz.client); the request
-- path (toolzz.calls) reads nothing else.
local schema = require "toolzz.schema"

local ipairs = ipairs

local _M = {}

local CATALOGUE = {
  { name = "calcom.get", method = "GET", host = "converflow_url",
    path = "/api/v1/calcom/integration/{id}" },
  { name = "calcom.list", method = "GET", host = "converflow_url",
    path = "/api/v1/calcom/integration/unit/{id}", id_name = "unit_id", unwrap = { key = "data" } },
  { name = "calcom.create", method = "POST", host = "converflow_url",
    path = "/api/v1/calcom/integration", schema = schema.calcom_create },
  { name = "calcom.update", method = "PUT", host = "base_url",
    path = "/api/v1/calcom/integration/{id}", schema = schema.calcom },
  { name = "calcom.patch", patch = { read = "calcom.get", write = "calcom.update" } },

  { name = "gcal.get", method = "GET", host = "base_url",
    path = "/api/v1/functions/{id}" },
  { name = "gcal.list", method = "GET", host = "base_url",
    path = "/api/v1/functions/unity/{id}", id_name = "unity_id", unwrap = { key = "items", type = "google-calendar" } },
  { name = "gcal.create", method = "POST", host = "base_url",
    path = "/api/v1/functions/", schema = schema.gcal_create },
  { name = "gcal.update", method = "PUT", host = "base_url",
    path = "/api/v1/functions/{id}", schema = schema.gcal },
  { name = "gcal.patch", patch = { read = "gcal.get", write = "gcal.update" } },
  { name = "gcal.duplicate", method = "POST", host = "base_url",
    path = "/api/v1/functions/duplicate/{id}" },
}
_M.list = CATALOGUE

local by_name = {}
for _, op in ipairs(CATALOGUE) do
  op.group, op.verb = op.name:match("^(%w+)%.(%w+)$")
  if op.path then
    op.before, op.after = op.path:match("^(.-){id}(.*)$")
    if not op.before then op.before, op.after = op.path, nil end
  end
  if op.idempotent == nil then op.idempotent = op.method ~= "POST" end
  op.writes = op.method ~= nil and op.method ~= "GET"
  by_name[op.name] = op
end
-- a patch is a read and a write of the same record
for _, op in ipairs(CATALOGUE) do
  if op.patch then
    op.patch.read, op.patch.write = by_name[op.patch.read], by_name[op.patch.write]
    op.takes_id = true
  elseif op.after then
    op.takes_id = true
  end
end
_M.by_name = by_name

-- ---- kinds: what toolzz.sync manages, as data --------------------------------
-- One entry per kind of record a desired-state file holds (CONTRACT Part
-- 3), in the order plans list them: the calls that read and write it, the
-- update schema its records follow (and the create schema, whose extra
-- secret fields a record may give for create only), the field naming its
-- unit, the natural key it is matched by when no id is pinned, the field
-- the server stamps on each write (if any), and the fields of a server
-- record that only the server sets (never in a file). Secret fields are the
-- schema's (`secret = true`).
_M.kinds = {
  { name = "calcom", list = "calcom.list", get = "calcom.get", create = "calcom.create", update = "calcom.update",
    schema = schema.calcom, create_schema = schema.calcom_create,
    unit_field = "unitId", natural_key = "title", updated_at = "updatedAt",
    read_only = { "id", "createdAt", "updatedAt", "isTokenMasked" } },
  { name = "gcal", list = "gcal.list", get = "gcal.get", create = "gcal.create", update = "gcal.update",
    schema = schema.gcal, create_schema = schema.gcal_create,
    unit_field = "unityId", natural_key = "name",
    read_only = { "id", "createdAt", "updatedAt", "googleCalendarPlugin", "isActivated", "customFunctionId" } },
}
for _, kind in ipairs(_M.kinds) do _M.kinds[kind.name] = kind end

return _M

-- toolzz.operations: every call the module offers, as data.
--
-- One entry per operation: its HTTP method, which host serves it
-- (`base_url` or `converflow_url`), its path template (`{id}` is the one
-- argument that goes into the URL), the schema of its body (none: no body
-- is sent), how its answer is unwrapped, and whether it is idempotent (may
-- be retried after it possibly reached the server). Client and module-level
-- methods are built from this list in one loop (toolzz.client); the request
-- path (toolzz.calls) reads nothing else.
local schema = require "toolzz.schema"

local _M = {}

local CATALOGUE = {
  { name = "calcom.update", method = "PUT", host = "base_url",
    path = "/api/v1/calcom/integration/{id}", schema = schema.calcom },
  { name = "gcal.update", method = "PUT", host = "base_url",
    path = "/api/v1/functions/{id}", schema = schema.gcal },
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
_M.by_name = by_name

return _M

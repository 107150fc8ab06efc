-- toolzz: manage ToolzzAI agent scheduling integrations from Lua.
--
--   local toolzz = require "toolzz"
--   local client = assert(toolzz.new { token = os.getenv("TOOLZZ_TOKEN") })
--   local res, err = client.calcom.update(integration_id, fields)
--   local res, err = client.gcal.update(function_id, fields)
--
-- Files by job, one direction only: toolzz.client (clients, methods from the
-- catalogue in toolzz.operations) -> toolzz.calls (run = start: check the
-- arguments with toolzz.validate and toolzz.schema, begin the first
-- request; then drive: perform each request and advance the job, a patch
-- merged by toolzz.patch) -> toolzz.attempts (hooks, settle: the outcome
-- read by toolzz.responses; retry_delay from toolzz.retry) -> a transport
-- that makes one attempt, chosen and made by toolzz.transports (the
-- libcurl core, or toolzz.ngx inside nginx). Options are checked once by
-- toolzz.options (with the one URL splitter); toolzz.tables reads callers'
-- tables raw. client.batch is toolzz.batch (check every item),
-- toolzz.batch_drive (run them) and toolzz.batch_runs. toolzz.operations
-- is the one description of every operation (name, path, body, help
-- summary, aliases, what each kind of record is to sync); the command
-- (toolzz.cli: one module per command family, toolzz.cli.call,
-- toolzz.cli.batch, toolzz.cli.doctor, toolzz.cli.sync) and
-- tools/gen-types.lua read it too; the command makes its calls through this
-- module's public API. Declarative sync (toolzz.sync: load, match, diff,
-- plan, apply, export, canonical) is built on the same calls and batch.
local core = require "toolzz.core"
local cjson = require "cjson"
local schema = require "toolzz.schema"
local validate = require "toolzz.validate"
local options = require "toolzz.options"
local client = require "toolzz.client"
local calls = require "toolzz.calls"

local setmetatable = setmetatable

local _M = {
  _VERSION = core.version,
  null = cjson.null,
  array_mt = core.array_mt,
  tzdata_version = validate.tzdata_version,
  schema = schema,
  DEFAULTS = options.DEFAULTS,
  parse_base_url = options.parse_base_url,
  new = client.new,
  -- true only for a dry run's result made by toolzz (not a record shaped like one)
  is_dry_run = calls.is_dry_result,
  sync = require "toolzz.sync", -- desired-state files: decode, load, encode (CONTRACT Part 3)
}

client.module_groups(_M)

-- Mark a table so it is always written as a JSON array, even when empty.
function _M.array(t)
  return setmetatable(t or {}, core.array_mt)
end

return _M

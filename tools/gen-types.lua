#!/usr/bin/env lua5.4
-- Generate types/library/toolzz.lua, the LuaLS (lua-language-server)
-- definitions of the toolzz module, from the code's own descriptions:
-- the catalogue (lua/toolzz/operations.lua: every call, its summary, path,
-- argument, body and aliases), the request schemas (lua/toolzz/schema.lua:
-- every field, its type, whether it is required, secret or defaulted), the
-- options (toolzz.options: names, types, defaults, hosts) and the error
-- kinds (toolzz.errors.KINDS). The prose that no code holds (what a field
-- means, the response records, the error table) is kept below, and checked
-- against the code: a field, option, kind or public function the code has
-- and this file does not describe is an error, and so is a description of
-- one the code no longer has.
--
--   usage: lua5.4 tools/gen-types.lua           write types/library/toolzz.lua
--          lua5.4 tools/gen-types.lua --check   exit 1 when the committed file differs
--          lua5.4 tools/gen-types.lua [--check] FILE   the same with another file
-- Needs the C core built (make build): it loads the module to see its keys.
local root = (arg and arg[0] or ""):match("^(.*)/tools/[^/]*$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/lua5.4/?.so;" .. package.cpath

local toolzz = require "toolzz"
local schema = require "toolzz.schema"
local operations = require "toolzz.operations"
local options = require "toolzz.options"
local errors = require "toolzz.errors"

local format, concat, sort = string.format, table.concat, table.sort

local TARGET = root .. "/types/library/toolzz.lua"

-- ---- the prose no code holds ---------------------------------------------------------

-- What a request field means, by schema name and dotted path.
local FIELD_DOCS = {
  ["calcom.title"] = 'Name of the tool in the panel (e.g. "Calcom").',
  ["calcom.unitId"] = "The owning organizational unit.",
  ["calcom.calcomUsername"] = "Username or profile slug on Cal.com.",
  ["calcom.timezone"] = "Default time zone of appointments.",
  ["calcom.prompt"] = "Instructions that guide the AI.",
  ["calcom.checkAvailabilityEnabled"] = "The AI may read available times.",
  ["calcom.createBookingEnabled"] = "The AI may book appointments.",
  ["calcom_create.apiKey"] = "The Cal.com API key.",
  ["gcal.description"] = "Instructions that guide the AI's use of the function.",
  ["gcal.googleCalendar.googleId"] = "The Google account's numeric id (digits).",
  ["gcal.googleCalendar.calendarId"] = 'The calendar (e.g. "primary" or an e-mail address).',
  ["gcal.googleCalendar.googleToken"] = "The OAuth2 token.",
  ["gcal.googleCalendar.googleUser.name"] = "Full name.",
  ["gcal.googleCalendar.googleUser.given_name"] = "First name.",
  ["gcal.googleCalendar.googleUser.family_name"] = "Last name.",
  ["gcal.googleCalendar.googleUser.picture"] = "An http(s) URL of the profile photo.",
  ["gcal.googleCalendar.googleUser.email"] = "E-mail address of the account.",
  ["gcal.googleCalendar.googleUser.hd"] = "Hosted domain.",
  ["gcal_create.googleCalendar.googleUser.id"] = "The account's numeric id (digits).",
}

-- What a class made for an object inside a body is (its class name is the
-- field's name, capitalised; an array's items: the name without its "s").
local CLASS_DOCS = {
  GoogleCalendar = "The connection of a Google Calendar function to the Google API.",
  GoogleUser = "The Google account of a Google Calendar function.",
  Output = "One output variable of a function.",
}

-- The error kinds, in the order shown, with what each means.
local KIND_DOCS = {
  { "validation", "the call's input is wrong (nothing was sent)" },
  { "config", "the client's options are wrong, or the client is closed" },
  { "http", "a non-2xx answer" },
  { "network", "could not connect, connection reset or dropped" },
  { "timeout", "an attempt ran past timeout or connect_timeout" },
  { "tls", "certificate or handshake failure" },
  { "decode", "a 2xx answer whose body is not JSON (or not the expected wrapper), or a patch's GET answering another record" },
  { "limit", "the response exceeded max_response_bytes" },
  { "stale", "sync apply: the plan no longer matches the server (or its checksum); nothing written" },
  { "unsafe", "sync apply: safety limits, wrong-unit guard or failed matches; nothing written" },
}

-- The options of toolzz.new, in the order shown: name, LuaLS type when it
-- says more than the Lua type, what it does (its default is added from
-- toolzz.options).
local OPTION_DOCS = {
  { "token", nil, "Required (else env TOOLZZ_TOKEN)." },
  { "base_url", nil, "The API's base URL." },
  { "converflow_url", nil, "The base URL of the converflow host (Cal.com create, get and list)." },
  { "timeout", nil, "Seconds for a whole attempt." },
  { "connect_timeout", nil, "Seconds to connect." },
  { "retries", "integer", "Extra attempts after the first, 0-10." },
  { "defaults", nil, "Fields filled in where a body leaves them absent." },
  { "strict", nil, "Refuse unknown fields." },
  { "max_response_bytes", "integer", "Largest response body." },
  { "max_body_bytes", "integer", "Largest request body." },
  { "ca_file", nil, "Extra trusted CA certificates (PEM file)." },
  { "ca_path", nil, "Extra trusted CA certificates (directory)." },
  { "proxy", nil, "Else the usual proxy environment variables apply." },
  { "user_agent", nil, "Appended to the User-Agent." },
  { "on_request", "fun(info: toolzz.HookInfo)", "Before each attempt." },
  { "on_response", "fun(info: toolzz.HookInfo)", "After each attempt." },
  { "transport", '"auto"|"curl"|"ngx"', "Which transport makes the attempts." },
  { "http2", nil, "Offer HTTP/2 over TLS." },
  { "dry_run", nil, "Writes are validated and encoded, not sent (reads are)." },
}

-- The fields and functions of the module (require "toolzz") beyond its
-- groups of calls; functions are written in MODULE_FUNCTIONS.
local MODULE_FIELDS = {
  { "_VERSION", "string", "The module's version." },
  { "null", "toolzz.null", "JSON null." },
  { "array_mt", "table", "The metatable that makes a table a JSON array, even empty." },
  { "tzdata_version", "string", "Version of the time zone data shipped." },
  { "schema", "table", "The request schemas (calcom, gcal, calcom_create, gcal_create), as data." },
  { "DEFAULTS", "table", "The option defaults." },
  { "sync", "toolzz.SyncFiles", "Desired-state files: decode, load, check, encode." },
}

local HEAD = [[
---@meta toolzz
-- luacheck: ignore
-- LuaLS (lua-language-server) definitions of the toolzz module: completion
-- and type checks for every call, option, error field and request body.
-- Nothing here runs. Point LuaLS at this directory (README: "Editor types").
-- Generated by tools/gen-types.lua from lua/toolzz/operations.lua,
-- lua/toolzz/schema.lua and the module: do not edit, run `make types`.

-- ---- values ---------------------------------------------------------------------

---JSON null, as decoded and as written (the same value as `cjson.null`).
---@class toolzz.null: lightuserdata

---A UUID in 8-4-4-4-12 hexadecimal form, either case.
---@alias toolzz.UUID string

---An IANA time zone name as shipped with the module (`"America/Sao_Paulo"`, `"UTC"`).
---@alias toolzz.TimeZone string
]]

local RECORDS = [[
-- ---- responses -------------------------------------------------------------------------

---A Cal.com integration as the API returns it.
---@class toolzz.CalcomRecord
---@field id toolzz.UUID
---@field title string
---@field calcomUsername string
---@field timezone string
---@field prompt string
---@field apiKey string Masked ("cal_****************").
---@field isTokenMasked boolean
---@field isActive boolean
---@field checkAvailabilityEnabled boolean
---@field createBookingEnabled boolean
---@field botId toolzz.UUID|toolzz.null
---@field unitId toolzz.UUID
---@field defaultEventTypeId number|toolzz.null
---@field defaultEventTypeSlug string|toolzz.null
---@field createdAt string
---@field updatedAt string

---One row of `googleCalendarPlugin` in a function.
---@class toolzz.GoogleCalendarPlugin
---@field id toolzz.UUID
---@field googleId string
---@field calendarId string
---@field timezone string
---@field pluginId toolzz.UUID
---@field notificationType string|toolzz.null
---@field notificationContentType string|toolzz.null
---@field notificationContent string|toolzz.null
---@field notificationDelayMs number
---@field notificationWaitForSpeech number
---@field createdAt string
---@field updatedAt string
---@field googleUser toolzz.GoogleUser
---@field googleToken string

---A Google Calendar function as the API returns it.
---@class toolzz.GcalRecord
---@field id toolzz.UUID
---@field institutionId toolzz.UUID
---@field userId toolzz.UUID
---@field unityId toolzz.UUID
---@field code string
---@field description string
---@field iconFileId string|toolzz.null
---@field status boolean
---@field name string
---@field color string
---@field outputs table[]
---@field isActivated boolean
---@field type string
---@field googleCalendarPlugin toolzz.GoogleCalendarPlugin[]
---@field discordPlugin table[]
---@field telegramPlugin table[]

---What a write returns on a client made with `dry_run = true`: the request it
---would have sent (nothing was sent). `toolzz.is_dry_run(res)` tells it apart.
---@class toolzz.DryRun
---@field dry_run true
---@field method "PUT"|"POST"
---@field url string
---@field body string The exact JSON body ("" when the call sends none).
]]

local ERROR_TABLE = [[
---One invalid field of a validation error.
---@class toolzz.FieldProblem
---@field path string Dotted path, e.g. "googleCalendar.googleUser.email" ("" for the body).
---@field message string

---Every failure: `tostring(err)` reads as one line, and so does `"failed: " .. err`.
---@class toolzz.Error
---@operator concat(string|number): string
---@field kind toolzz.ErrorKind
---@field message string Human text (for http: the server's message when it sent one).
---@field fields? toolzz.FieldProblem[] validation only.
---@field status? integer http only: the HTTP status code.
---@field body? string http/decode: the raw response body (capped).
---@field data? table http: the decoded error body when it was JSON.
---@field request_id? string The server's request id header.
---@field stopped? boolean batch only: true when the batch's should_stop ended this item (kind "config").
---@field attempts? integer How many attempts were made.
---@field retry_after? number Seconds the server asked to wait.
---@field op? toolzz.OperationName The call that made the error.
---@field step? "get"|"update" patch only: before/at the GET, or after it.

-- ---- hooks and options -------------------------------------------------------------------

---What on_request and on_response get (never the token or a body).
---@class toolzz.HookInfo
---@field method string
---@field url string
---@field attempt integer
---@field status? integer on_response: the HTTP status, when there was an answer.
---@field elapsed? number on_response: seconds the attempt took.
---@field request_id? string
---@field error? string on_response: the error, as one line.
]]

local BATCH_SHAPES = [[
---One batch item: `{ name, id, fields or changes }`, `{ name, id }` or
---`{ name, fields }`, as the call takes them (`{ "gcal", id, fields }`, ...).
---@alias toolzz.BatchItem { [1]: toolzz.BatchOp, [2]: string|table, [3]: table? }

---One batch result, in input order: `res` on success, else `err`.
---@class toolzz.BatchResult
---@field res? table
---@field err? toolzz.Error

---@class toolzz.BatchOptions
---@field concurrency? integer Calls in flight at once, 1-256 (default 8).
---@field on_progress? fun(done: integer, total: integer, index: integer, result: toolzz.BatchResult)
---@field on_result? fun(index: integer, result: toolzz.BatchResult) Each item's result as soon as it ends.
---@field keep_results? boolean false: keep no result; the batch returns toolzz.BatchCounts (default true).
---@field should_stop? fun(): boolean Asked before each item starts and as the batch wakes; true: start nothing new.

---What a batch with `keep_results = false` returns (ok + failed = total).
---@class toolzz.BatchCounts
---@field total integer
---@field ok integer
---@field failed integer
---@field stopped integer The failed items that the stop ended (err.stopped).

---What a batch returns: the results, or only counts with `keep_results = false`; nil on a bad call.
---@alias toolzz.BatchReturn toolzz.BatchResult[]|toolzz.BatchCounts|nil
]]

local CLIENT_METHODS = [[
---Many calls at once; results in input order (only counts with `keep_results = false`).
---`nil, err` only for bad options, a closed client or `requests` that is not a table.
---@param requests toolzz.BatchItem[]
---@param opts? toolzz.BatchOptions
---@return toolzz.BatchResult[]|toolzz.BatchCounts|nil results
---@return toolzz.Error|nil err
---@overload fun(self: toolzz.Client, requests: toolzz.BatchItem[], opts?: toolzz.BatchOptions): toolzz.BatchReturn, toolzz.Error?
function Client.batch(requests, opts) end

---Close the client's connections (safe twice); later calls fail with a config error.
---@return true
function Client:close() end
]]

-- Declarative sync (CONTRACT Part 3): the shapes of its tables and its calls
-- (a LuaLS table type is one line, however long).
-- luacheck: push ignore 631
local SYNC = [[
---A desired-state file's content (version 1): see CONTRACT Part 3.
---@class toolzz.Desired
---@field toolzz 1
---@field safety? { maxUpdates?: integer }
---@field units { unit: toolzz.UUID, exclusive?: boolean, calcom?: table[], gcal?: table[] }[]

---A plan: a table that is also its JSON form (`toolzz plan --json`).
---@class toolzz.Plan
---@field toolzz_plan 1
---@field checksum string Hex digest of the plan without this field.
---@field desired string Hex digest of the desired table (its { file } texts included).
---@field summary { create: integer, update: integer, unchanged: integer, unmanaged: integer, failed: integer }
---@field changes table[] { unit, kind, key, action = "create"|"update", id?, adopted?, updatedAt?, fingerprint?, diff?, fields? }
---@field failed table[] { unit, kind, key?, reason = "missing"|"ambiguous"|"unexpected-shape"|"invalid", id?, ids?, paths?, problems? }
---@field unmanaged table[] { unit, kind, id, title|name, exclusive? }
---@field notes table[] { unit, kind, key, path, message }: e.g. an apiKey sent only at create.
---@field unmatched table[] { unit, kind, server, file }: the wrong-unit guard's findings.
---@field safety? { maxUpdates: integer }

---What apply did: `{ toolzz_report = 1, ok, summary, changes }`.
---@class toolzz.Report
---@field toolzz_report 1
---@field ok boolean true when every change was applied (or there were none).
---@field checksum string The applied plan's checksum.
---@field summary { applied: integer, failed: integer, skipped: integer, unknown: integer }
---@field changes { unit: string, kind: string, key: string, action: string, id?: string, outcome: "applied"|"failed"|"skipped"|"unknown", error?: { kind: string, status?: integer, message: string, request_id?: string } }[]

---@class toolzz.SyncOptions
---@field concurrency? integer Requests at once (plan/export: 8, apply's writes: 4).
---@field update_secrets? boolean Every record with a token reference sends it (an update).
---@field checksum? string apply: refuse unless the plan has this checksum.
---@field force? boolean apply: override the safety limits and the wrong-unit guard.
---@field base_dir? string Where a desired table's { file } paths start.
---@field on_progress? fun(done: integer, total: integer, index: integer, entry: table)

---A client's sync calls.
---@class toolzz.Sync
local Sync = {}

---Read the units' lists (one call per kind and unit) and compare: the plan.
---@param desired toolzz.Desired
---@param opts? toolzz.SyncOptions
---@return toolzz.Plan|nil plan
---@return toolzz.Error|nil err
function Sync.plan(desired, opts) end

---Apply a saved plan or a desired table (planned first): the report.
---@param plan_or_desired toolzz.Plan|toolzz.Desired
---@param opts? toolzz.SyncOptions
---@return toolzz.Report|nil report
---@return toolzz.Error|nil err kind "stale" or "unsafe" when it refused before writing
function Sync.apply(plan_or_desired, opts) end

---What exists in the units, as a desired table (ids pinned, secrets as placeholders).
---@param unit_ids toolzz.UUID[]
---@param opts? toolzz.SyncOptions
---@return toolzz.Desired|nil desired
---@return toolzz.Error|nil err
function Sync.export(unit_ids, opts) end

---Desired-state files (`toolzz.sync`).
---@class toolzz.SyncFiles
local SyncFiles = {}

---Decode and check a file's JSON text: every problem at once, as one validation error.
---A saved plan (with `toolzz_plan`) comes back as it is, for `client.sync.apply`.
---@param text string
---@param base_dir? string Where { "file": PATH } paths start.
---@return toolzz.Desired|toolzz.Plan|nil desired
---@return toolzz.Error|nil err
function SyncFiles.decode(text, base_dir) end

---Read, decode and check a file (a saved plan comes back as it is).
---@param path string
---@return toolzz.Desired|toolzz.Plan|nil desired
---@return toolzz.Error|nil err
function SyncFiles.load(path) end

---Check a desired table (as decode does after reading JSON).
---@param desired table
---@param base_dir? string
---@return toolzz.Desired|nil desired
---@return toolzz.Error|nil err
function SyncFiles.check(desired, base_dir) end

---The text of a { "file": PATH } reference as toolzz reads it: a regular file of at most
---16 MiB (never a FIFO or a device), one trailing newline removed, inside root when given.
---@param path string
---@param root? string A folder the file must resolve inside (links and `..` followed).
---@return string|nil text
---@return string? why
function SyncFiles.read_text(path, root) end

---Canonical JSON: keys sorted, two-space indent, byte-identical across runs.
---@param doc table
---@return string|nil text
---@return string? message
function SyncFiles.encode(doc) end
]]
-- luacheck: pop

local MODULE_FUNCTIONS = [[
---Many calls at once on the default client (from TOOLZZ_TOKEN and friends),
---as `client.batch`; a dot or a colon.
---@param requests toolzz.BatchItem[]
---@param opts? toolzz.BatchOptions
---@return toolzz.BatchResult[]|toolzz.BatchCounts|nil results
---@return toolzz.Error|nil err
---@overload fun(self: toolzz, requests: toolzz.BatchItem[], opts?: toolzz.BatchOptions): toolzz.BatchReturn, toolzz.Error|nil
function toolzz.batch(requests, opts) end

---A client. `nil, err` (kind "config") for bad options.
---@param opts? toolzz.Options
---@return toolzz.Client|nil client
---@return toolzz.Error|nil err
function toolzz.new(opts) end

---Mark a table so it is always written as a JSON array, even when empty.
---@generic T: table
---@param t? T
---@return T
function toolzz.array(t) end

---Whether res is a dry run's result made by toolzz (never a server record shaped like one).
---@param res any
---@return boolean
function toolzz.is_dry_run(res) end

---Check and normalise a base URL: "scheme://authority/path", or nil and why.
---@param url string
---@return string|nil url
---@return string scheme_or_message
---@return string? host
function toolzz.parse_base_url(url) end
]]

-- ---- helpers ---------------------------------------------------------------------------------

local problems = {}
-- Note a way the prose and the code disagree (reported together at the end).
local function problem(text) problems[#problems + 1] = text end

-- "calcom_create" -> "CalcomCreate", "googleCalendar" -> "GoogleCalendar"
local function camel(name)
  return (name:gsub("^%l", string.upper):gsub("_(%l)", string.upper))
end

-- The keys of t, sorted.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys)
  return keys
end

-- A section rule: "-- ---- title ----...".
local function rule(title)
  local head = "-- ---- " .. title .. " "
  return head .. string.rep("-", 95 - #head)
end

-- Doc comment lines ("---" and text) of text, wrapped at 100 columns.
local function doc_lines(text)
  local lines, line = {}, nil
  for word in text:gmatch("%S+") do
    if line and #line + 1 + #word > 97 then
      lines[#lines + 1] = "---" .. line
      line = word
    else
      line = line and (line .. " " .. word) or word
    end
  end
  if line then lines[#lines + 1] = "---" .. line end
  return concat(lines, "\n")
end

-- A default value as the docs show it.
local function shown(value)
  if value == schema.NULL or value == toolzz.null then return "null" end
  -- the schema's EMPTY_ARRAY, or the array it becomes once toolzz.validate compiled the schema
  if value == schema.EMPTY_ARRAY or (type(value) == "table" and next(value) == nil) then return "[]" end
  if type(value) == "string" then return '"' .. value .. '"' end
  if type(value) == "number" and value >= 1048576 and value % 1048576 == 0 then
    return format("%d MiB", math.floor(value / 1048576))
  end
  return tostring(value)
end

-- ---- request bodies, from toolzz.schema ------------------------------------------------------

local out = {}
local function emit(text) out[#out + 1] = text end
local used_docs, classes_made = {}, {}

-- The LuaLS type of one field spec; nested objects get a class of their own
-- (class: the name it gets; written by write_class before the caller's).
local write_class
local function field_type(spec, class, doc_path, base_class)
  local t
  if spec.type == "object" then
    write_class(class, spec, doc_path, base_class)
    t = "toolzz." .. class
  elseif spec.type == "array" then
    if spec.items and spec.items.type == "object" then
      local item_class = class:gsub("s$", "")
      if not classes_made[item_class] then write_class(item_class, spec.items, doc_path .. "[]") end
      t = "toolzz." .. item_class .. "[]"
    else
      t = "table[]"
    end
  elseif spec.type == "boolean" then
    t = "boolean"
  elseif spec.type == "const" then
    t = '"' .. spec.value .. '"'
  elseif spec.type == "uuid" then
    t = "toolzz.UUID"
  elseif spec.type == "timezone" then
    t = "toolzz.TimeZone"
  elseif spec.type == "string" or spec.type == "email" or spec.type == "url" or spec.type == "digits" then
    t = "string"
  else
    problem("schema type '" .. tostring(spec.type) .. "' at " .. doc_path .. " has no LuaLS type here")
    t = "any"
  end
  if spec.nullable then t = t .. "|toolzz.null" end
  return t
end

-- The `---@field` line of one request field.
local function field_line(name, spec, t, doc_path, optional)
  local doc = FIELD_DOCS[doc_path]
  if doc then used_docs[doc_path] = true end
  if spec.secret then
    doc = (doc and doc .. " " or "") .. "A secret: scrubbed from errors, hooks and logs."
  end
  return format("---@field %s%s %s%s", name, optional and "?" or "", t, doc and (" " .. doc) or "")
end

-- Write the class `toolzz.<name>` of an object spec (once), its nested
-- classes first. base: the class of the same object in the update body,
-- when this is its create variant (then only what differs is declared).
function write_class(name, spec, doc_path, base, class_doc)
  if classes_made[name] then return end
  classes_made[name] = true
  local lines = {}
  for _, key in ipairs(sorted_keys(spec.fields)) do
    local field = spec.fields[key]
    local base_field = base and base.spec.fields[key]
    if field ~= base_field then
      local nested = camel(key) .. (base_field and "Create" or "")
      local base_nested = base_field and field.type == "object"
        and { spec = base_field, name = camel(key) } or nil
      local t = field_type(field, nested, doc_path .. "." .. key, base_nested)
      lines[#lines + 1] = field_line(key, field, t, doc_path .. "." .. key,
        not field.required or field.default ~= nil)
    end
  end
  local doc = class_doc or CLASS_DOCS[name]
  if not doc and base then doc = "`" .. doc_path:match("[^.]+$") .. "` in a create body: what it adds." end
  if not doc then problem("no CLASS_DOCS entry for toolzz." .. name .. " (" .. doc_path .. ")") end
  if doc then emit(doc_lines(doc)) end
  emit("---@class toolzz." .. name .. (base and (": toolzz." .. base.name) or ""))
  for _, line in ipairs(lines) do emit(line) end
  emit("")
end

-- The operation whose body a schema is.
local function operation_of_schema(s)
  for _, op in ipairs(operations.list) do
    if op.schema == s then return op end
  end
end

-- The doc line of a body class: the call it is for and its defaults.
local function body_doc(s, base_name)
  local op = operation_of_schema(s)
  local doc = op and format("The body of `%s` (%s)", op.name, op.method) or ("The body " .. s.name)
  if base_name then return doc .. ": the fields of `toolzz." .. base_name .. "` and more." end
  local defaults = {}
  for _, key in ipairs(sorted_keys(s.fields)) do
    local d = s.fields[key].default
    if d ~= nil then defaults[#defaults + 1] = format("`%s` defaults to %s", key, shown(d)) end
  end
  if #defaults == 0 then return doc .. ": every field is required." end
  return doc .. ". When absent, " .. concat(defaults, ", ") .. "."
end

-- Every request schema of a group: its update body, its create body (what
-- it adds), and the changes of its patch.
local function write_bodies(group)
  local update, create = schema[group], schema[group .. "_create"]
  if not update then return end
  local update_class = camel(update.name) .. "Fields"
  write_class(update_class, update, update.name, nil, body_doc(update))
  if create then
    local create_class = camel(create.name) .. "Fields"
    write_class(create_class, create, create.name, { spec = update, name = update_class },
      body_doc(create, update_class))
  end
  for _, op in ipairs(operations.list) do
    if op.group == group and op.patch then
      emit(doc_lines(format("Changes for `%s`: any field of `toolzz.%s`, all optional; `toolzz.null` "
        .. "removes an optional one; objects merge key by key.", op.name, update_class)))
      emit("---@class toolzz." .. camel(group) .. "Changes")
      for _, key in ipairs(sorted_keys(update.fields)) do
        local field = update.fields[key]
        local t = field.type == "object" and "table" or field_type(field, camel(key), group .. "." .. key)
        if field.type == "array" then t = t .. "|table<string, table>" end
        emit(format("---@field %s? %s", key, t))
      end
      emit("")
    end
  end
end

-- ---- the calls, from the catalogue -------------------------------------------------------------

-- The LuaLS type of a call's result.
local function result_type(op)
  local read = op.patch and op.patch.read or op
  local t = "toolzz." .. camel(op.group) .. "Record" .. (read.unwrap and "[]" or "")
  if op.writes or op.patch then t = t .. "|toolzz.DryRun" end
  return t
end

-- The parameters of a call: list of { name, type }.
local function params_of(op)
  local params = {}
  if op.takes_id then params[#params + 1] = { op.id_name or "id", "toolzz.UUID" } end
  if op.takes_body then
    local t = op.schema and ("toolzz." .. camel(op.schema.name) .. "Fields") or ("toolzz." .. camel(op.group) .. "Changes")
    params[#params + 1] = { op.body, t }
  end
  return params
end

-- One call: its summary, request line, parameters and both call forms.
local function write_call(class, op)
  emit(doc_lines(op.summary))
  if op.patch then
    emit(format("---`%s` then `%s` (last writer wins); errors carry `step`.", op.patch.read.name,
      op.patch.write.name))
  else
    local path = op.path:gsub("{id}", "{" .. (op.id_name or "id") .. "}")
    emit(format("---`%s {%s}%s`", op.method, op.host, path))
    if not op.idempotent then emit("---Not retried once it may have reached the server.") end
  end
  local params, names, typed = params_of(op), {}, {}
  for _, p in ipairs(params) do
    emit(format("---@param %s %s", p[1], p[2]))
    names[#names + 1] = p[1]
    typed[#typed + 1] = p[1] .. ": " .. p[2]
  end
  local result = result_type(op)
  emit(format("---@return %s|nil res", result))
  emit("---@return toolzz.Error|nil err")
  table.insert(typed, 1, "self: toolzz." .. class)
  emit(format("---@overload fun(%s): %s|nil, toolzz.Error|nil", concat(typed, ", "), result))
  emit(format("function %s.%s(%s) end", class, op.verb, concat(names, ", ")))
  emit("")
end

-- ---- the file ----------------------------------------------------------------------------------

local function generate()
  emit(HEAD)
  emit(rule("request bodies (the schemas of toolzz.schema)"))
  emit("")
  for _, g in ipairs(operations.groups) do write_bodies(g.name) end
  for path in pairs(FIELD_DOCS) do
    if not used_docs[path] then problem("FIELD_DOCS describes " .. path .. ", which no schema has") end
  end
  for name in pairs(CLASS_DOCS) do
    if not classes_made[name] then problem("CLASS_DOCS describes toolzz." .. name .. ", which no schema makes") end
  end

  emit(RECORDS)
  emit(rule("errors"))
  emit("")
  emit("---@alias toolzz.ErrorKind")
  local kinds = {}
  for _, k in ipairs(KIND_DOCS) do
    kinds[k[1]] = true
    if not errors.KINDS[k[1]] then problem("KIND_DOCS has '" .. k[1] .. "', which toolzz.errors.KINDS has not") end
    emit(format('---| %-12s # %s', '"' .. k[1] .. '"', k[2]))
  end
  for _, k in ipairs(sorted_keys(errors.KINDS)) do
    if not kinds[k] then problem("error kind '" .. k .. "' has no KIND_DOCS entry") end
  end
  emit("")
  emit(ERROR_TABLE)

  emit("---Options of `toolzz.new`.")
  emit("---@class toolzz.Options")
  local hosts, described = {}, {}
  for _, h in ipairs(options.HOSTS) do hosts[h.option] = h end
  for _, o in ipairs(OPTION_DOCS) do
    local name, t, doc = o[1], o[2], o[3]
    described[name] = true
    local lua_type = options.OPTION_TYPES[name]
    if not lua_type then problem("OPTION_DOCS has '" .. name .. "', which toolzz.new does not take") end
    t = t or lua_type or "any"
    if hosts[name] then
      doc = format('%s Else env %s, else "%s".', doc, hosts[name].env, hosts[name].default)
    elseif options.DEFAULTS[name] ~= nil then
      doc = format("%s Default %s.", doc, shown(options.DEFAULTS[name]))
    end
    emit(format("---@field %s? %s %s", name, t, doc))
  end
  for _, name in ipairs(sorted_keys(options.OPTION_TYPES)) do
    if not described[name] then problem("option '" .. name .. "' has no OPTION_DOCS entry") end
  end
  emit("")

  emit(rule("batch"))
  emit("")
  emit("---@alias toolzz.OperationName")
  for _, g in ipairs(operations.groups) do
    local names = {}
    for _, op in ipairs(operations.list) do
      if op.group == g.name then names[#names + 1] = '"' .. op.name .. '"' end
    end
    emit("---| " .. concat(names, " | "))
  end
  emit("")
  local aliases = {}
  for _, alias in ipairs(sorted_keys(operations.aliases)) do
    aliases[#aliases + 1] = format('`"%s"` (%s)', alias, operations.aliases[alias])
  end
  emit(doc_lines("A batch item's operation: a call's name, or " .. concat(aliases, ", ") .. "."))
  local alias_types = { "toolzz.OperationName" }
  for _, alias in ipairs(sorted_keys(operations.aliases)) do alias_types[#alias_types + 1] = '"' .. alias .. '"' end
  emit("---@alias toolzz.BatchOp " .. concat(alias_types, "|"))
  emit("")
  emit(BATCH_SHAPES)

  emit(rule("calls"))
  emit("")
  for _, g in ipairs(operations.groups) do
    local class = camel(g.name)
    emit(doc_lines(g.summary .. " Every call works with a dot or a colon."))
    emit("---@class toolzz." .. class)
    emit("local " .. class .. " = {}")
    emit("")
    for _, op in ipairs(operations.list) do
      if op.group == g.name then write_call(class, op) end
    end
  end

  emit(rule("sync (CONTRACT Part 3)"))
  emit("")
  emit(SYNC)
  emit(rule("client and module"))
  emit("")
  emit("---A client: its own options, connections and default settings.")
  emit("---@class toolzz.Client")
  emit("---@field base_url string The normalised base URL.")
  for _, g in ipairs(operations.groups) do emit(format("---@field %s toolzz.%s", g.name, camel(g.name))) end
  emit("---@field sync toolzz.Sync Declarative sync: plan, apply, export (CONTRACT Part 3).")
  emit("local Client = {}")
  emit("")
  emit(CLIENT_METHODS)
  emit("---@class toolzz")
  for _, f in ipairs(MODULE_FIELDS) do emit(format("---@field %s %s %s", f[1], f[2], f[3])) end
  for _, g in ipairs(operations.groups) do
    emit(format("---@field %s toolzz.%s Calls on the default client (from TOOLZZ_TOKEN and friends).", g.name,
      camel(g.name)))
  end
  emit("local toolzz = {}")
  emit("")
  emit(MODULE_FUNCTIONS)
  emit("return toolzz")
  return concat(out, "\n") .. "\n"
end

-- Every key of the module and of a client is declared in text.
local function check_declared(text)
  local declared = {}
  for owner, name in text:gmatch("\nfunction ([%w_]+)[.:]([%w_]+)%(") do declared[owner .. "." .. name] = true end
  local class
  for line in text:gmatch("[^\n]+") do
    class = line:match("^%-%-%-@class ([%w._]+)") or class
    local field = line:match("^%-%-%-@field ([%w_]+)")
    if field and class then declared[class .. "." .. field] = true end
  end
  for key in pairs(toolzz) do
    if not (declared["toolzz." .. key]) then problem("the module's '" .. key .. "' is not declared") end
  end
  local client = assert(toolzz.new { token = "gen-types-no-request-is-made" })
  for key in pairs(client) do
    if not (declared["toolzz.Client." .. key] or declared["Client." .. key]) then
      problem("the client's '" .. key .. "' is not declared")
    end
  end
  for key, value in pairs(getmetatable(client).__index) do
    if type(value) == "function" and not key:match("^__") and not declared["Client." .. key] then
      problem("the client's method '" .. key .. "' is not declared")
    end
  end
  client:close()
end

local check, target = false, TARGET
for _, a in ipairs(arg or {}) do
  if a == "--check" then check = true else target = a end
end

local text = generate()
check_declared(text)
if #problems > 0 then
  io.stderr:write("gen-types: the descriptions in tools/gen-types.lua and the code disagree:\n")
  for _, p in ipairs(problems) do io.stderr:write("  ", p, "\n") end
  os.exit(1)
end

if check then
  local f = io.open(target, "rb")
  local committed = f and f:read("*a") or ""
  if f then f:close() end
  if committed == text then os.exit(0) end
  local n, a_lines, b_lines = 0, {}, {}
  for l in committed:gmatch("([^\n]*)\n?") do a_lines[#a_lines + 1] = l end
  for l in text:gmatch("([^\n]*)\n?") do b_lines[#b_lines + 1] = l end
  repeat n = n + 1 until a_lines[n] ~= b_lines[n]
  io.stderr:write(format("gen-types: %s is not what tools/gen-types.lua writes (run `make types`);\n"
    .. "  first difference at line %d:\n  committed: %s\n  generated: %s\n",
    target, n, tostring(a_lines[n]), tostring(b_lines[n])))
  os.exit(1)
end

local f = assert(io.open(target, "wb"))
f:write(text)
f:close()

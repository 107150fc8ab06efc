---@meta toolzz
-- luacheck: ignore
-- LuaLS (lua-language-server) definitions of the toolzz module: completion
-- and type checks for every call, option, error field and request body.
-- Nothing here runs. Point LuaLS at this directory (README: "Editor types").
-- spec/94-types_spec.lua fails when something public is missing here.

-- ---- values ---------------------------------------------------------------------

---JSON null, as decoded and as written (the same value as `cjson.null`).
---@class toolzz.null: lightuserdata

---A UUID in 8-4-4-4-12 hexadecimal form, either case.
---@alias toolzz.UUID string

---An IANA time zone name as shipped with the module (`"America/Sao_Paulo"`, `"UTC"`).
---@alias toolzz.TimeZone string

-- ---- request bodies (the schemas of toolzz.schema) ----------------------------------

---The body of `calcom.update` (PUT): every field is required.
---@class toolzz.CalcomFields
---@field title string Name of the tool in the panel (e.g. "Calcom").
---@field unitId toolzz.UUID The owning organizational unit.
---@field calcomUsername string Username or profile slug on Cal.com.
---@field timezone toolzz.TimeZone Default time zone of appointments.
---@field prompt string Instructions that guide the AI.
---@field checkAvailabilityEnabled boolean The AI may read available times.
---@field createBookingEnabled boolean The AI may book appointments.

---The body of `calcom.create` (POST): the update fields and the Cal.com API key.
---@class toolzz.CalcomCreateFields: toolzz.CalcomFields
---@field apiKey string The Cal.com API key (a secret: scrubbed from errors, hooks and logs).

---Changes for `calcom.patch`: any update field; `toolzz.null` removes an optional one.
---@class toolzz.CalcomChanges
---@field title? string
---@field unitId? toolzz.UUID
---@field calcomUsername? string
---@field timezone? toolzz.TimeZone
---@field prompt? string
---@field checkAvailabilityEnabled? boolean
---@field createBookingEnabled? boolean

---The Google account of a Google Calendar function.
---@class toolzz.GoogleUser
---@field name string Full name.
---@field given_name string First name.
---@field family_name string Last name.
---@field picture? string An http(s) URL of the profile photo.
---@field email string E-mail address of the account.
---@field hd? string Hosted domain.

---The Google account in a `gcal.create` body: two more optional fields.
---@class toolzz.GoogleUserCreate: toolzz.GoogleUser
---@field id? string The account's numeric id (digits).
---@field verified_email? boolean

---The connection of a Google Calendar function to the Google API.
---@class toolzz.GoogleCalendar
---@field googleId string The Google account's numeric id (digits).
---@field calendarId string The calendar (e.g. "primary" or an e-mail address).
---@field timezone toolzz.TimeZone
---@field notificationContent? string
---@field googleToken string The OAuth2 token (a secret: scrubbed from errors, hooks and logs).
---@field googleUser toolzz.GoogleUser

---`googleCalendar` in a `gcal.create` body.
---@class toolzz.GoogleCalendarCreate: toolzz.GoogleCalendar
---@field googleUser toolzz.GoogleUserCreate

---One output variable of a function.
---@class toolzz.Output
---@field property string
---@field type string
---@field description string
---@field required boolean

---The body of `gcal.update` (PUT). Absent `type`, `outputs` and `iconFileId`
---default to "google-calendar", `[]` and `null`.
---@class toolzz.GcalFields
---@field name string
---@field description string Instructions that guide the AI's use of the function.
---@field iconFileId? toolzz.UUID|toolzz.null
---@field outputs? toolzz.Output[]
---@field type? "google-calendar"
---@field userId toolzz.UUID
---@field unityId toolzz.UUID
---@field googleCalendar toolzz.GoogleCalendar

---The body of `gcal.create` (POST).
---@class toolzz.GcalCreateFields: toolzz.GcalFields
---@field googleCalendar toolzz.GoogleCalendarCreate

---Changes for `gcal.patch`: any update field, objects merged key by key.
---@class toolzz.GcalChanges
---@field name? string
---@field description? string
---@field iconFileId? toolzz.UUID|toolzz.null
---@field outputs? toolzz.Output[]
---@field type? "google-calendar"
---@field userId? toolzz.UUID
---@field unityId? toolzz.UUID
---@field googleCalendar? table

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
---would have sent (nothing was sent).
---@class toolzz.DryRun
---@field dry_run true
---@field method "PUT"|"POST"
---@field url string
---@field body string The exact JSON body ("" when the call sends none).

-- ---- errors ------------------------------------------------------------------------------

---@alias toolzz.ErrorKind
---| "validation" # the call's input is wrong (nothing was sent)
---| "config"     # the client's options are wrong, or the client is closed
---| "http"       # a non-2xx answer
---| "network"    # could not connect, connection reset or dropped
---| "timeout"    # an attempt ran past timeout or connect_timeout
---| "tls"        # certificate or handshake failure
---| "decode"     # a 2xx answer whose body is not JSON (or not the expected wrapper)
---| "limit"      # the response exceeded max_response_bytes
---| "stale"      # sync apply: the plan no longer matches the server (or its checksum); nothing written
---| "unsafe"     # sync apply: safety limits, wrong-unit guard or failed matches; nothing written

---One invalid field of a validation error.
---@class toolzz.FieldProblem
---@field path string Dotted path, e.g. "googleCalendar.googleUser.email" ("" for the body).
---@field message string

---Every failure: `tostring(err)` reads as one line.
---@class toolzz.Error
---@field kind toolzz.ErrorKind
---@field message string Human text (for http: the server's message when it sent one).
---@field fields? toolzz.FieldProblem[] validation only.
---@field status? integer http only: the HTTP status code.
---@field body? string http/decode: the raw response body (capped).
---@field data? table http: the decoded error body when it was JSON.
---@field request_id? string The server's request id header.
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

---Options of `toolzz.new`.
---@class toolzz.Options
---@field token? string Required (else env TOOLZZ_TOKEN).
---@field base_url? string Else env TOOLZZ_BASE_URL, else "https://chat.api.toolzz.com.br".
---@field converflow_url? string Else env TOOLZZ_CONVERFLOW_URL, else "https://converflow.api.prod.toolzz.media".
---@field timeout? number Seconds for a whole attempt (default 30).
---@field connect_timeout? number Seconds to connect (default 10).
---@field retries? integer Extra attempts after the first, 0-10 (default 2).
---@field defaults? table Fields filled in where a body leaves them absent.
---@field strict? boolean Refuse unknown fields (default true).
---@field max_response_bytes? integer Default 8 MiB.
---@field max_body_bytes? integer Largest request body (default 1 MiB).
---@field ca_file? string Extra trusted CA certificates (PEM file).
---@field ca_path? string Extra trusted CA certificates (directory).
---@field proxy? string Else the usual proxy environment variables apply.
---@field user_agent? string Appended to the User-Agent.
---@field on_request? fun(info: toolzz.HookInfo) Before each attempt.
---@field on_response? fun(info: toolzz.HookInfo) After each attempt.
---@field transport? "auto"|"curl"|"ngx" Default "auto".
---@field http2? boolean Offer HTTP/2 over TLS (default true).
---@field dry_run? boolean Writes are validated and encoded, not sent (reads are).

-- ---- batch ---------------------------------------------------------------------------------

---@alias toolzz.OperationName
---| "calcom.get" | "calcom.list" | "calcom.create" | "calcom.update" | "calcom.patch"
---| "gcal.get" | "gcal.list" | "gcal.create" | "gcal.update" | "gcal.patch" | "gcal.duplicate"

---A batch item's operation: a call's name, or the Part 1 forms "calcom"/"gcal" (update).
---@alias toolzz.BatchOp toolzz.OperationName|"calcom"|"gcal"

---One batch item: `{ "calcom.patch", id, changes }`, `{ "calcom.get", id }`,
---`{ "calcom.list", unit_id }`, `{ "gcal.create", fields }`, `{ "gcal.duplicate", id }`,
---`{ "gcal", id, fields }`, ...
---@alias toolzz.BatchItem { [1]: toolzz.BatchOp, [2]: string|table, [3]: table? }

---One batch result, in input order: `res` on success, else `err`.
---@class toolzz.BatchResult
---@field res? table
---@field err? toolzz.Error

---@class toolzz.BatchOptions
---@field concurrency? integer Calls in flight at once, 1-256 (default 8).
---@field on_progress? fun(done: integer, total: integer, index: integer, result: toolzz.BatchResult)

-- ---- calls -----------------------------------------------------------------------------------

---Cal.com integrations. Every call works with a dot or a colon.
---@class toolzz.Calcom
local Calcom = {}

---GET {converflow_url}/api/v1/calcom/integration/{id}
---@param id toolzz.UUID
---@return toolzz.CalcomRecord|nil res
---@return toolzz.Error|nil err
function Calcom.get(id) end

---GET {converflow_url}/api/v1/calcom/integration/unit/{unitId}: the unit's integrations.
---@param unit_id toolzz.UUID
---@return toolzz.CalcomRecord[]|nil res
---@return toolzz.Error|nil err
function Calcom.list(unit_id) end

---POST {converflow_url}/api/v1/calcom/integration (not retried once it may have reached the server).
---@param fields toolzz.CalcomCreateFields
---@return toolzz.CalcomRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Calcom.create(fields) end

---PUT {base_url}/api/v1/calcom/integration/{id}: replaces the whole record.
---@param id toolzz.UUID
---@param fields toolzz.CalcomFields
---@return toolzz.CalcomRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Calcom.update(id, fields) end

---Get, merge `changes`, update (last writer wins). Errors carry `step`.
---@param id toolzz.UUID
---@param changes toolzz.CalcomChanges
---@return toolzz.CalcomRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Calcom.patch(id, changes) end

---Google Calendar functions. Every call works with a dot or a colon.
---@class toolzz.Gcal
local Gcal = {}

---GET {base_url}/api/v1/functions/{id} (whatever its type).
---@param id toolzz.UUID
---@return toolzz.GcalRecord|nil res
---@return toolzz.Error|nil err
function Gcal.get(id) end

---GET {base_url}/api/v1/functions/unity/{unityId}: the unit's Google Calendar functions.
---@param unity_id toolzz.UUID
---@return toolzz.GcalRecord[]|nil res
---@return toolzz.Error|nil err
function Gcal.list(unity_id) end

---POST {base_url}/api/v1/functions/ (not retried once it may have reached the server).
---@param fields toolzz.GcalCreateFields
---@return toolzz.GcalRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Gcal.create(fields) end

---PUT {base_url}/api/v1/functions/{id}: replaces the whole function.
---@param id toolzz.UUID
---@param fields toolzz.GcalFields
---@return toolzz.GcalRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Gcal.update(id, fields) end

---Get, merge `changes`, update (last writer wins). Errors carry `step`.
---@param id toolzz.UUID
---@param changes toolzz.GcalChanges
---@return toolzz.GcalRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Gcal.patch(id, changes) end

---POST {base_url}/api/v1/functions/duplicate/{id}: the new copy (no body sent).
---@param id toolzz.UUID
---@return toolzz.GcalRecord|toolzz.DryRun|nil res
---@return toolzz.Error|nil err
function Gcal.duplicate(id) end

-- ---- sync (CONTRACT Part 3) ----------------------------------------------------------------

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

---Canonical JSON: keys sorted, two-space indent, byte-identical across runs.
---@param doc table
---@return string|nil text
---@return string? message
function SyncFiles.encode(doc) end

-- ---- client and module ---------------------------------------------------------------------

---A client: its own options, connections and default settings.
---@class toolzz.Client
---@field base_url string The normalised base URL.
---@field calcom toolzz.Calcom
---@field gcal toolzz.Gcal
---@field sync toolzz.Sync Declarative sync: plan, apply, export (CONTRACT Part 3).
local Client = {}

---Many calls at once; results in input order. `nil, err` only for bad options,
---a closed client or `requests` that is not a table.
---@param requests toolzz.BatchItem[]
---@param opts? toolzz.BatchOptions
---@return toolzz.BatchResult[]|nil results
---@return toolzz.Error|nil err
function Client.batch(requests, opts) end

---Close the client's connections (safe twice); later calls fail with a config error.
---@return true
function Client:close() end

---@class toolzz
---@field _VERSION string The module's version.
---@field null toolzz.null JSON null.
---@field array_mt table The metatable that makes a table a JSON array, even empty.
---@field tzdata_version string Version of the time zone data shipped.
---@field schema table The request schemas (calcom, gcal, calcom_create, gcal_create), as data.
---@field DEFAULTS table The option defaults.
---@field calcom toolzz.Calcom Calls on the default client (from TOOLZZ_TOKEN and friends).
---@field gcal toolzz.Gcal Calls on the default client.
---@field sync toolzz.SyncFiles Desired-state files: decode, load, check, encode.
local toolzz = {}

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

---Check and normalise a base URL: "scheme://authority/path", or nil and why.
---@param url string
---@return string|nil url
---@return string scheme_or_message
---@return string? host
function toolzz.parse_base_url(url) end

return toolzz

-- toolzz.cli.doctor: `toolzz doctor [--unit ID]`, a read-only check of the
-- token, both API hosts and (with --unit) the shape of the records the API
-- returns, printed as a short report a user can paste into a bug report.
--
-- Only GETs are made: the client is a dry-run one, so the shape check (a
-- patch with no changes, per record: the GET and the mapping to the update
-- body every patch does, validated) sends no write. Secrets are never
-- printed (field names only, never values); request ids are kept.
-- command() returns 0 when every check passed, else 1.
local toolzz = require "toolzz"
local common = require "toolzz.cli.common"
local output = require "toolzz.cli.output"

local type, tostring, ipairs, pairs = type, tostring, ipairs, pairs
local format, concat, sort = string.format, table.concat, table.sort

local _M = {}

-- The id no record has: a GET of it shows that a host answers and takes the
-- token (404), without reading anything of the account's.
local NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"

-- Fields of the records as read that no request carries: the schema's
-- `read_only` (what an update refuses as "a field of the record as read"),
-- and those of the plugin row a function's `googleCalendar` is read from
-- (types/library/toolzz.lua's GoogleCalendarPlugin). The request fields
-- come from toolzz.schema.
local function names_of(set)
  local list = {}
  for name in pairs(set) do list[#list + 1] = name end
  sort(list)
  return list
end
local RECORD_ONLY = {
  calcom = names_of(toolzz.schema.calcom.read_only),
  gcal = names_of(toolzz.schema.gcal.read_only),
  from = { "id", "pluginId", "notificationType", "notificationContentType", "notificationDelayMs",
           "notificationWaitForSpeech", "createdAt", "updatedAt" }, -- a row a `from` field is read from
}
_M.RECORD_ONLY = RECORD_ONLY

-- The two hosts: the option, its variable, its flag, the probe on it.
local HOSTS = {
  { name = "base_url", env = "TOOLZZ_BASE_URL", flag = "--base-url", probe = "gcal" },
  { name = "converflow_url", env = "TOOLZZ_CONVERFLOW_URL", flag = "--converflow-url", probe = "calcom" },
}

local GROUPS = {
  { group = "calcom", what = "Cal.com integration" },
  { group = "gcal", what = "Google Calendar function" },
}

-- Add the doctor subcommand to the argparse parser.
function _M.add_to_parser(parser)
  local command = parser:command("doctor", "Check the token, both API hosts and the records' shape (GETs only).",
    [[Prints a short report to paste into a bug report (no secret in it; request ids
kept). Exit status 0 when every check passed, else 1.]])
  command:option("--unit", "Also list this unit's records and check their shape."):argname("ID")
  return { "doctor" }
end

-- A report: lines, and whether any check failed.
local function new_report(sys)
  local report = { failed = 0, checks = 0 }
  function report.line(text) sys.stdout:write(output.one_line(text), "\n") end
  function report.check(ok, text)
    report.checks = report.checks + 1
    if not ok then report.failed = report.failed + 1 end
    report.line((ok and "  ok    " or "  FAIL  ") .. text)
  end
  return report
end

-- The attempt line of a hook's info: status, ms, request id.
local function attempt_text(info)
  local parts = { info.status and ("http " .. tostring(info.status)) or "no answer",
                  output.ms(info.elapsed) .. " ms" }
  if info.attempt and info.attempt > 1 then parts[#parts + 1] = "attempt " .. tostring(info.attempt) end
  if info.request_id then parts[#parts + 1] = "request id " .. tostring(info.request_id) end
  return concat(parts, ", ")
end

-- Where a setting came from: the flag, the variable or the default.
local function source_of(args, sys, host)
  if args[host.name] then return host.flag end
  local value = sys.getenv(host.env)
  if value and value ~= "" then return host.env end
  return "default"
end

-- The proxy libcurl takes for url from the environment, with its variable
-- (loopback never; no_proxy honoured), credentials hidden; or nil.
local function proxy_of(sys, scheme, host)
  if host == "localhost" or host:match("^127%.") or host == "[::1]" then return nil end
  local no_proxy = sys.getenv("no_proxy") or sys.getenv("NO_PROXY") or ""
  for entry in no_proxy:gmatch("[^,%s]+") do
    local suffix = entry:gsub("^%.", "")
    if entry == "*" or host == suffix or host:sub(-#suffix - 1) == "." .. suffix then return nil end
  end
  local names = scheme == "https" and { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" }
    or { "http_proxy", "all_proxy", "ALL_PROXY" }
  for _, name in ipairs(names) do
    local value = sys.getenv(name)
    if value and value ~= "" then
      return (value:gsub("//[^/@]*@", "//***@")) .. " (from " .. name .. ")"
    end
  end
  return nil
end

-- One host: its probe GET, and what it tells of DNS, TLS, proxy, latency.
local function check_host(report, client, attempts, args, sys, host)
  local first = #attempts + 1
  local _, err = client[host.probe].get(NO_SUCH_ID)
  local info = attempts[first]
  local url = info and tostring(info.url):match("^(%a[%w+.-]*://[^/]+)") or "?"
  local _, scheme, name = toolzz.parse_base_url(url)
  report.line(format("%s %s (%s)", host.name, url, source_of(args, sys, host)))
  local is_address = type(name) == "string" and (name:match("^[%d.]+$") or name:match("^%["))
  local proxy = "proxy: " .. (type(name) == "string" and proxy_of(sys, scheme, name) or "none")
  local kind, message = type(err) == "table" and err.kind, type(err) == "table" and tostring(err.message)
  if kind == "network" and message:find("proxy", 1, true) then
    report.check(false, proxy .. ": " .. message)
  elseif kind == "network" and message:find("resolve", 1, true) then
    report.check(false, "DNS: " .. message .. "; " .. proxy)
  elseif kind == "tls" then
    report.check(false, "TLS: " .. message .. "; " .. proxy)
  elseif kind and kind ~= "http" then
    report.check(false, kind .. ": " .. message .. "; " .. proxy)
  else
    report.check(true, concat({ is_address and "DNS: an address" or "DNS: resolved",
      scheme == "https" and ("TLS: verified" .. (args.ca_file and " (with --ca-file)" or ""))
        or "TLS: none (plain http, loopback only)", proxy }, "; "))
  end
  for i = first, #attempts do
    local status = attempts[i].status
    local expected = status == 404 or status == 400 or status == 422
    report.check(expected, format("GET %s: %s%s", tostring(attempts[i].url):match("^%a[%w+.-]*://[^/]+(/.*)$") or "?",
      attempt_text(attempts[i]), expected and " (no such record: the host answered)" or ""))
  end
  return err or false
end

-- "googleCalendar.timezone" -> "googleCalendarPlugin[1].timezone": a body
-- path as the record keeps it (schema `from`).
local function record_path(spec, path)
  local head, rest = path:match("^([^.]+)(.*)$")
  local field = head and spec.fields[head]
  if not (field and field.from) then return path end
  local parts = {}
  for i, key in ipairs(field.from) do
    parts[i] = type(key) == "number" and ("[" .. key .. "]") or ((i > 1 and "." or "") .. key)
  end
  return concat(parts) .. rest
end

local function set_of(list)
  local set = {}
  for _, name in ipairs(list or {}) do set[name] = true end
  return set
end

-- Keys of value that neither the schema (spec, the create schema: every
-- request field) nor the record-only list knows, as record paths.
local function unknown_fields(spec, value, known_extra, prefix, out)
  if type(value) ~= "table" then return out end
  local known = set_of(known_extra)
  for name, field in pairs(spec.fields) do
    known[field.from and field.from[1] or name] = true
  end
  for key in pairs(value) do
    if type(key) ~= "string" or not known[key] then out[#out + 1] = prefix .. tostring(key) end
  end
  for name, field in pairs(spec.fields) do
    if field.type == "object" then
      if field.from then
        local row = value
        for _, k in ipairs(field.from) do row = type(row) == "table" and row[k] or nil end
        unknown_fields(field, row, RECORD_ONLY.from, record_path(spec, name) .. ".", out)
      else
        unknown_fields(field, value[name], nil, prefix .. name .. ".", out)
      end
    end
  end
  return out
end

-- The fields of a record of group ("calcom" or "gcal") that toolzz does not
-- know, as record paths, sorted.
function _M.unknown_fields(group, record)
  local unknown = unknown_fields(toolzz.schema[group .. "_create"], record, RECORD_ONLY[group], "", {})
  sort(unknown)
  return unknown
end

-- One record: unknown fields, and what its patch path finds missing or
-- invalid (a dry-run patch with no changes: GET, map, validate).
local function check_record(report, client, attempts, group, record)
  local id = type(record) == "table" and record.id
  if type(id) ~= "string" then
    report.check(false, group.group .. " record without an id")
    return
  end
  local problems = {}
  local unknown = _M.unknown_fields(group.group, record)
  if #unknown > 0 then problems[#problems + 1] = "unknown: " .. concat(unknown, ", ") end
  local first = #attempts + 1
  local res, err = client[group.group].patch(id, {})
  local missing, invalid = {}, {}
  if not res and type(err) == "table" and err.kind == "validation" then
    for _, f in ipairs(err.fields or {}) do
      local path = record_path(toolzz.schema[group.group], tostring(f.path))
      if f.message == "is required" then missing[#missing + 1] = path
      else invalid[#invalid + 1] = path .. " (" .. tostring(f.message) .. ")" end
    end
  elseif not res then
    problems[#problems + 1] = "read: " .. tostring(err)
  end
  if #missing > 0 then problems[#problems + 1] = "missing: " .. concat(missing, ", ") end
  if #invalid > 0 then problems[#problems + 1] = "invalid: " .. concat(invalid, ", ") end
  local seen = attempts[first] and (" (GET: " .. attempt_text(attempts[first]) .. ")") or ""
  if #problems == 0 then
    report.check(true, format("%s %s: the documented shape%s", group.group, id, seen))
  else
    report.check(false, format("%s %s: %s%s", group.group, id, concat(problems, "; "), seen))
  end
end

-- With --unit: each group's list, then each record's shape.
local function check_unit(report, client, attempts, unit)
  report.line("unit " .. unit)
  for _, group in ipairs(GROUPS) do
    local first = #attempts + 1
    local list, err = client[group.group].list(unit)
    local seen = attempts[first] and (" (" .. attempt_text(attempts[first]) .. ")") or ""
    if not list then
      report.check(false, format("%s list: %s%s", group.group, tostring(err), seen))
    else
      report.check(true, format("%s list: %d %s%s%s", group.group, #list, group.what,
        #list == 1 and "" or "s", seen))
      for _, record in ipairs(list) do check_record(report, client, attempts, group, record) end
    end
  end
end

-- The token's source and verdict, from what the hosts answered.
local function check_token(report, args, errs)
  local source = args.token_file and ("--token-file " .. args.token_file) or "TOOLZZ_TOKEN"
  report.line("token")
  local answered = false
  for _, err in ipairs(errs) do
    if type(err) == "table" and (err.status == 401 or err.status == 403) then
      report.check(false, format("token from %s: rejected (http %d): check %s", source, err.status,
        args.token_file and "the file" or "TOOLZZ_TOKEN"))
      return
    end
    answered = answered or not err or err.kind == "http"
  end
  report.check(answered, "token from " .. source .. (answered and ": accepted" or ": not checked (no host answered)"))
end

-- Run the doctor: 0 when every check passed, else 1; or nil, err, exitcode.
function _M.command(args, sys)
  local report = new_report(sys)
  local cli = require "toolzz.cli" -- at run time: it requires this module
  report.line("toolzz doctor: " .. cli.version_text())
  local opts, why = common.client_options(args, sys)
  if not opts then
    local none = type(why) == "table" and type(why.message) == "string" and why.message:find("^no token")
    report.check(false, none and "token: none (TOOLZZ_TOKEN is not set): set it or use --token-file PATH"
      or tostring(why))
    return 1
  end
  local attempts = {}
  opts.dry_run = true -- nothing but GETs, whatever happens below
  opts.timeout = args.timeout or 10
  opts.retries = args.retries or 0
  opts.on_response = function(info) attempts[#attempts + 1] = info end
  local client, err = toolzz.new(opts)
  if not client then
    if not opts.token or opts.token == "" then
      report.check(false, "token: none (TOOLZZ_TOKEN is not set): set it or use --token-file PATH")
    else
      report.check(false, tostring(err))
    end
    return 1
  end
  local errs = {}
  for _, host in ipairs(HOSTS) do
    errs[#errs + 1] = check_host(report, client, attempts, args, sys, host)
  end
  check_token(report, args, errs)
  if args.unit then check_unit(report, client, attempts, args.unit) end
  client:close()
  report.line(report.failed == 0 and format("doctor: all %d checks passed", report.checks)
    or format("doctor: %d of %d checks failed", report.failed, report.checks))
  return report.failed == 0 and 0 or 1
end

return _M

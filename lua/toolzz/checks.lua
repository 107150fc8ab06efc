-- toolzz.checks: one value against one field type of toolzz.schema
-- (string, boolean, uuid, timezone, email, url, digits, const, array,
-- object). Each check takes the value and the field spec and returns nil
-- when the value is fine, else a message that never quotes the value.
-- toolzz.validate walks bodies with these.
local core = require "toolzz.core"
local tzdata = require "toolzz.tzdata"
local hints = require "toolzz.hints"
local null = require("cjson").null

local type, next = type, next
local find = string.find

local _M = {}

local uuid_valid = core.uuid_valid
local is_email, is_http_url = core.email_valid, core.http_url_valid -- the rules: src/check.c

-- The zones of the shipped database as a set, built on first use.
local zones
local function zone_set()
  if not zones then
    zones = {}
    for z in tzdata.names:gmatch("[^\n]+") do zones[z] = true end
  end
  return zones
end
local function is_zone(name)
  return (zones or zone_set())[name] == true
end
_M.zone_set, _M.is_zone = zone_set, is_zone

local function type_name(v)
  if v == null then return "null" end
  return type(v)
end

-- Each check returns nil when the value is fine, else a message.
local checks = _M

function checks.string(v, spec)
  if type(v) ~= "string" then return "must be a string, got " .. type_name(v) end
  if spec.required and v == "" then return "must not be empty" end
end

function checks.boolean(v)
  if type(v) ~= "boolean" then return "must be a boolean (true or false), got " .. type_name(v) end
end

function checks.uuid(v)
  if type(v) ~= "string" then return "must be a UUID string, got " .. type_name(v) end
  if not uuid_valid(v) then return "must be a UUID (8-4-4-4-12 hexadecimal digits)" end
end

function checks.timezone(v)
  if type(v) ~= "string" then return "must be a time zone name, got " .. type_name(v) end
  if not is_zone(v) then
    local hint = hints.zone(v)
    if hint ~= "" then return "is not a time zone of the IANA database " .. tzdata.version .. hint end
    return "is not a time zone of the IANA database " .. tzdata.version .. " (e.g. America/Sao_Paulo, UTC)"
  end
end

function checks.email(v)
  if type(v) ~= "string" then return "must be an e-mail address, got " .. type_name(v) end
  if not is_email(v) then return "is not a plausible e-mail address" end
end

function checks.url(v)
  if type(v) ~= "string" then return "must be an http(s) URL, got " .. type_name(v) end
  if not is_http_url(v) then return "must be an http:// or https:// URL" end
end

function checks.digits(v)
  if type(v) ~= "string" then return "must be a string of digits, got " .. type_name(v) end
  if not find(v, "^%d+$") or #v > 64 then return "must be a string of digits (the Google account id)" end
end

function checks.const(v, spec)
  if v ~= spec.value then return 'must be "' .. spec.value .. '"' end
end

function checks.array(v)
  if type(v) ~= "table" then return "must be an array, got " .. type_name(v) end
  for k in next, v do -- raw: no __pairs of the caller's runs
    if type(k) == "string" and find(k, "^%d+$") then
      return "must be an array (a sequence), got an object of item numbers: those edit items only in a patch"
    elseif type(k) ~= "number" then
      return "must be an array (a sequence), got an object"
    end
  end
end

function checks.object(v)
  if type(v) ~= "table" then return "must be an object (a table), got " .. type_name(v) end
  local first = next(v)
  if first ~= nil and type(first) ~= "string" then return "must be an object, got an array" end
end

return _M

-- toolzz.validate: defaults and validation, driven by toolzz.schema.
--
-- prepare() builds the body that will be sent (the caller's fields, client
-- defaults and schema defaults filled in where absent, the caller's tables
-- left untouched); check() walks it against the schema, collects every
-- problem as { path =, message = } and the values of secret fields. Each
-- schema is compiled once: a sorted field list for the walk that explains
-- problems, and a plan for the C core's quick test (core.valid, src/check.c)
-- that only answers "is this body valid?". A valid body, the common case, is
-- checked by the quick test alone; any other is walked again to collect
-- every problem with its message.
local core = require "toolzz.core"
local schema = require "toolzz.schema"
local tzdata = require "toolzz.tzdata"
local null = require("cjson").null

local type, pairs, ipairs, next, setmetatable, getmetatable, tostring, assert =
  type, pairs, ipairs, next, setmetatable, getmetatable, tostring, assert
local find, sort, byte, lower = string.find, table.sort, string.byte, string.lower
local array_mt = core.array_mt

local _M = {}

local uuid_valid, utf8_valid, quick_valid = core.uuid_valid, core.utf8_valid, core.valid
local is_email, is_http_url = core.email_valid, core.http_url_valid -- the rules: src/check.c

_M.is_uuid = uuid_valid -- any value: false unless a UUID string

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
_M.is_zone = is_zone
_M.tzdata_version = tzdata.version



local function type_name(v)
  if v == null then return "null" end
  return type(v)
end

-- Each check returns nil when the value is fine, else a message.
local checks = {}

function checks.string(v, spec)
  if type(v) ~= "string" then return "must be a string, got " .. type_name(v) end
  if spec.required and v == "" then return "must not be empty" end
end

function checks.boolean(v)
  if type(v) ~= "boolean" then return "must be a boolean (true or false), got " .. type_name(v) end
end

function checks.uuid(v)
  if type(v) ~= "string" then return "must be a UUID string, got " .. type_name(v) end
  if not _M.is_uuid(v) then return "must be a UUID (8-4-4-4-12 hexadecimal digits)" end
end

function checks.timezone(v)
  if type(v) ~= "string" then return "must be a time zone name, got " .. type_name(v) end
  if not is_zone(v) then
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
    if type(k) ~= "number" then return "must be an array (a sequence), got an object" end
  end
end

function checks.object(v)
  if type(v) ~= "table" then return "must be an object (a table), got " .. type_name(v) end
  local first = next(v)
  if first ~= nil and type(first) ~= "string" then return "must be an object, got an array" end
end

-- ---- compilation --------------------------------------------------------

-- The kinds of src/check.c's plan entries, numbered from core.KIND_STRING.
local KINDS = {}
for i, kind in ipairs { "string", "boolean", "uuid", "timezone", "email", "url", "digits", "const", "array", "object" } do
  KINDS[kind] = core.KIND_STRING + i - 1
end

-- The plan of an object spec for core.valid, flat (src/check.c): for the
-- i-th field in field order, plan[3i-2] = its name, plan[3i-1] = kind * 4 +
-- flags (1 required, 2 nullable), plan[3i] = its const value, sub-plan or
-- zones table; plan.n = the number of fields.
local function plan_of(spec)
  local plan = { n = #spec.order }
  for i, name in ipairs(spec.order) do
    local field = spec.fields[name]
    local extra
    if field.type == "const" then extra = field.value
    elseif field.type == "object" then extra = field.plan
    elseif field.type == "timezone" then extra = zone_set()
    end
    plan[3 * i - 2] = name
    plan[3 * i - 1] = KINDS[field.type] * 4 + (field.required and 1 or 0) + (field.nullable and 2 or 0)
    plan[3 * i] = extra
  end
  return plan
end

-- In non-strict mode an unknown field is sent as it is: a string under a
-- secret field's name (an apiKey sent through an update), at its level or
-- anywhere inside it, is kept as a secret too.
local SECRET_NAMES, secret_strings = schema.SECRET_NAMES, schema.secret_strings
local function unknown_field_secrets(k, v, secrets)
  if type(v) == "string" then
    if SECRET_NAMES[k] then secrets[#secrets + 1] = v end
  elseif type(v) == "table" then
    secret_strings(v, secrets)
  end
end

-- The paths of secret fields, in the order check_object meets them.
local function secret_paths(spec, prefix, out)
  for _, name in ipairs(spec.order) do
    local field = spec.fields[name]
    local path = {}
    for i = 1, #prefix do path[i] = prefix[i] end
    path[#path + 1] = name
    if field.type == "object" then secret_paths(field, path, out)
    elseif field.secret then out[#out + 1] = path end
  end
  return out
end

-- Give each object spec a sorted field list and its plan, once.
local function compile(spec)
  if spec.order then return spec end
  local order, filled, objects = {}, {}, {}
  for name, field in pairs(spec.fields) do
    order[#order + 1] = name
    assert(checks[field.type], "unknown field type " .. tostring(field.type))
    if field.type == "object" then
      compile(field)
      objects[#objects + 1] = name
    end
    if field.default == schema.NULL then field.default = null end
    if field.default == schema.EMPTY_ARRAY then field.default = setmetatable({}, array_mt) end
    if field.default ~= nil or field.type == "array" then filled[#filled + 1] = name end
  end
  sort(order)
  sort(filled)
  sort(objects)
  local has_secrets = false
  for _, field in pairs(spec.fields) do
    if field.secret or field.has_secrets then has_secrets = true end
  end
  spec.order, spec.filled, spec.objects, spec.has_secrets = order, filled, objects, has_secrets
  spec.plan = plan_of(spec)
  spec.secret_paths = secret_paths(spec, {}, {})
  return spec
end
_M.compile = compile

-- ---- defaults -------------------------------------------------------------

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- Would sending fields as they are miss a default or an empty array's marker?
-- A table with a metatable is always copied (raw), so that no __index or
-- __pairs of the caller's ever runs while validating.
local function needs_copy(spec, fields)
  if getmetatable(fields) ~= nil then return true end
  local filled, known = spec.filled, spec.fields
  for i = 1, #filled do
    local name = filled[i]
    local value = fields[name]
    if value == nil or (known[name].type == "array" and type(value) == "table" and next(value) == nil) then
      return true
    end
  end
  local objects = spec.objects
  for i = 1, #objects do
    local value = fields[objects[i]]
    if type(value) == "table" and needs_copy(known[objects[i]], value) then return true end
  end
  return false
end

-- The body to send: the caller's table itself when nothing needs filling in
-- (the common case, and no copy), else a copy of fields (one level per schema
-- object) with defaults filled in where absent. The caller's tables are never
-- changed.
local function prepare(spec, fields, defaults)
  if type(defaults) ~= "table" then
    defaults = nil
    if not needs_copy(spec, fields) then return fields end
  end
  local out = {}
  for k, v in next, fields do out[k] = v end
  local order, known = spec.order, spec.fields
  for i = 1, #order do
    local name = order[i]
    local field, value = known[name], out[name]
    if field.type == "object" then
      local d = defaults and defaults[name]
      if value == nil and type(d) == "table" then value = {} end
      if type(value) == "table" then value = prepare(field, value, d) end
    elseif value == nil then
      if defaults then value = defaults[name] end
      if value == nil then value = field.default end
    end
    if field.type == "array" and type(value) == "table" and next(value) == nil then
      value = field.default or setmetatable({}, array_mt) -- written as [] even when empty
    end
    out[name] = value
  end
  return out
end

function _M.prepare(spec, fields, defaults)
  return prepare(compile(spec), fields, defaults)
end

-- ---- validation -----------------------------------------------------------

-- "Did you mean" hints: only for keys this short (a typo of a field name is
-- short), and for this many unknown keys of an object at most, so that their
-- cost stays a small constant per key.
local HINT_MAX_KEY = 64
local HINT_MAX_KEYS = 16
local HINT_MAX_DISTANCE = 3

-- Edit distance between a and b when it is at most limit, else limit + 1;
-- only the cells within limit of the diagonal are computed.
local function distance(a, b, limit)
  local la, lb = #a, #b
  if la - lb > limit or lb - la > limit then return limit + 1 end
  local over = limit + 1
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j <= limit and j or over end
  for i = 1, la do
    local lo, hi = i - limit, i + limit
    if lo < 1 then lo = 1 end
    if hi > lb then hi = lb end
    cur[lo - 1] = (lo == 1 and i <= limit) and i or over
    local best = cur[lo - 1]
    local ai = byte(a, i)
    for j = lo, hi do
      local d = prev[j - 1] + ((ai == byte(b, j)) and 0 or 1)
      local up = prev[j] == nil and over or prev[j] + 1
      local left = cur[j - 1] + 1
      if up < d then d = up end
      if left < d then d = left end
      if d > over then d = over end
      cur[j] = d
      if d < best then best = d end
    end
    if hi < lb then cur[hi + 1] = over end
    if best > limit then return over end
    prev, cur = cur, prev
  end
  return prev[lb] > over and over or prev[lb]
end

local function suggestion(name, order)
  if #name > HINT_MAX_KEY then return "" end
  local best, best_d
  name = lower(name)
  for i = 1, #order do
    local d = distance(name, lower(order[i]), HINT_MAX_DISTANCE)
    if d <= HINT_MAX_DISTANCE and (not best_d or d < best_d) then best, best_d = order[i], d end
  end
  return best and (' (did you mean "' .. best .. '"?)') or ""
end
-- name, sorted list of known names -> ' (did you mean "x"?)' or "" (toolzz.sync's file checks)
_M.suggestion = suggestion

-- partial: obj holds changes to a body (a patch), so nothing is required,
-- and null removes an optional field.
local function check_object(spec, obj, prefix, strict, problems, secrets, partial)
  local order, known = spec.order, spec.fields
  for i = 1, #order do
    local name = order[i]
    local field, value = known[name], obj[name]
    local message
    if value == nil then
      if field.required and not partial then message = "is required" end
    elseif value == null then
      if not partial and not field.nullable then
        message = "must not be null"
      elseif partial and field.required and not field.nullable then
        message = "is required: null cannot remove it"
      end
    else
      message = checks[field.type](value, field)
      if not message then
        if field.type == "object" then
          check_object(field, value, join(prefix, name), strict, problems, secrets, partial)
        elseif field.secret and secrets then
          secrets[#secrets + 1] = value
        end
      end
    end
    if message then problems[#problems + 1] = { path = join(prefix, name), message = message } end
  end
  if not strict and secrets then
    for k, v in next, obj do
      if not known[k] then unknown_field_secrets(k, v, secrets) end
    end
  end
  if strict then
    local unknown
    for k in next, obj do
      if type(k) ~= "string" then
        problems[#problems + 1] = { path = prefix, message = "has a key that is not a string" }
      elseif not known[k] then
        if utf8_valid(k) then
          unknown = unknown or {}
          unknown[#unknown + 1] = k
        else -- keep its bytes out of messages, as the encoder does
          problems[#problems + 1] = { path = join(prefix, "(key that is not UTF-8)"), message = "key is not valid UTF-8" }
        end
      end
    end
    if unknown then
      sort(unknown)
      for i = 1, #unknown do
        problems[#problems + 1] = {
          path = join(prefix, unknown[i]),
          message = "is not a field of this endpoint" .. (i <= HINT_MAX_KEYS and suggestion(unknown[i], order) or ""),
        }
      end
    end
  end
  return problems
end

-- In a valid non-strict body, what unknown fields hold under a secret
-- field's name, at every object level, as check_object collects them.
local function unknown_secrets(spec, obj, secrets)
  local known = spec.fields
  for k, v in next, obj do
    local field = known[k]
    if field then
      if field.type == "object" and type(v) == "table" then unknown_secrets(field, v, secrets) end
    else
      unknown_field_secrets(k, v, secrets)
    end
  end
end

-- Every problem of body against the schema, as a list (empty when none).
-- String values of `secret` fields are appended to secrets (when given), so
-- errors can be scrubbed of them.
-- Does body pass the quick test? When it does, the values of its secret
-- fields are appended to secrets (when given), as check_object collects them.
local function passes(spec, body, strict, secrets)
  if not quick_valid(spec.plan, body, strict, null) then return false end
  if secrets then
    local paths = spec.secret_paths
    for i = 1, #paths do
      local v, path = body, paths[i]
      for j = 1, #path do
        if type(v) ~= "table" then v = nil break end
        v = v[path[j]]
      end
      if type(v) == "string" then secrets[#secrets + 1] = v end
    end
    if not strict then unknown_secrets(spec, body, secrets) end
  end
  return true
end

-- LuaJIT compiles the walk into machine code that a C call cannot beat
-- (Cal.com: 1.8k instructions against 11.3k); on PUC Lua the quick test
-- saves most of the walk (9.3k against 22.5k).
local QUICK = not rawget(_G, "jit")

-- The problems of body (appended to problems), or problems itself (nil when
-- none were given) when there are none; the values of secret fields are
-- appended to secrets.
function _M.problems(spec, body, strict, problems, secrets)
  compile(spec)
  if QUICK and passes(spec, body, strict, secrets) then return problems end
  local found = check_object(spec, body, "", strict, problems or {}, secrets)
  if #found == 0 then return problems end
  return found
end

function _M.check(spec, body, strict, problems, secrets)
  return _M.problems(spec, body, strict, problems, secrets) or {}
end
-- For tests: the quick test alone, and the walk alone.
function _M.valid(spec, body, strict)
  return quick_valid(compile(spec).plan, body, strict, null)
end
function _M.walk(spec, body, strict, problems, secrets)
  return check_object(compile(spec), body, "", strict, problems or {}, secrets)
end

-- The same for the changes of a patch: any subset of the fields, where
-- null removes an optional field (or sets a nullable one to null).
function _M.check_changes(spec, changes, strict, problems, secrets)
  return check_object(compile(spec), changes, "", strict, problems or {}, secrets, true)
end

return _M

-- toolzz.errors: the error objects every failure comes back as.
--
-- An error is a plain table { kind =, message =, ... } with a metatable whose
-- __tostring reads as one line. Secrets (the bearer token, a googleToken from
-- the request) are scrubbed from every string in it before it reaches the
-- caller: see redact().
local setmetatable, getmetatable, tostring, tonumber, type, pairs, ipairs, next, pcall =
  setmetatable, getmetatable, tostring, tonumber, type, pairs, ipairs, next, pcall
local concat, sort = table.concat, table.sort
local find, sub, gsub, char, byte = string.find, string.sub, string.gsub, string.char, string.byte
local floor = math.floor

local _M = {}

local BODY_CAP = 8192 -- bytes of a response body kept in err.body
_M.BODY_CAP = BODY_CAP

local KINDS = {
  validation = true, config = true, http = true, network = true,
  timeout = true, tls = true, decode = true, limit = true,
  stale = true, unsafe = true, -- toolzz.sync's apply refusing before it writes
}
_M.KINDS = KINDS

local Error = {}
Error.__index = Error
_M.Error = Error

local function one_line(s)
  return (gsub(tostring(s), "[%c]+", " "))
end

-- How a validation problem ranks in a summary: 1 an unknown field (a typo,
-- with its hint), 2 (unmarked) a wrong type or value, 3 a missing field.
-- Weak: marking a problem leaves its table as the caller sees it.
local RANK = setmetatable({}, { __mode = "k" })
function _M.ranked(problem, rank)
  RANK[problem] = rank
  return problem
end

function Error.__tostring(err)
  local parts = { "toolzz: " }
  if err.op then parts[#parts + 1] = one_line(err.op) .. (err.step and (" (" .. one_line(err.step) .. ")") or "") .. ": " end
  parts[#parts + 1] = err.kind
  if err.status then parts[#parts + 1] = " " .. err.status end
  parts[#parts + 1] = ": "
  parts[#parts + 1] = one_line(err.message or "")
  local notes = {}
  if err.request_id then notes[#notes + 1] = "request id " .. one_line(err.request_id) end
  if err.attempts and err.attempts > 1 then notes[#notes + 1] = err.attempts .. " attempts" end
  if err.retry_after then notes[#notes + 1] = "retry after " .. err.retry_after .. " s" end
  if #notes > 0 then parts[#parts + 1] = " (" .. concat(notes, ", ") .. ")" end
  return concat(parts)
end

-- "failed: " .. err, and err .. "": the one-line form, on either side.
function Error.__concat(a, b)
  if getmetatable(a) == Error then a = Error.__tostring(a) end
  if getmetatable(b) == Error then b = Error.__tostring(b) end
  return a .. b
end

-- An error of one kind; extra fields are copied in.
function _M.new(kind, message, extra)
  local err = { kind = kind, message = message }
  if extra then
    for k, v in pairs(extra) do err[k] = v end
  end
  return setmetatable(err, Error)
end

function _M.is_error(value)
  return type(value) == "table" and getmetatable(value) == Error
end

-- How much of a path (built from the caller's keys) and of a problem's
-- message an error shows: longer ones are cut, with an ellipsis.
local PATH_SHOWN, MESSAGE_SHOWN = 100, 200
local ELLIPSIS = "\226\128\166" -- U+2026

-- s cut to at most n bytes and an ellipsis, not inside a UTF-8 character.
local function shorten(s, n)
  if #s <= n then return s end
  while n > 0 and find(sub(s, n + 1, n + 1), "^[\128-\191]") do n = n - 1 end
  return sub(s, 1, n) .. ELLIPSIS
end

-- The problem with its path and message cut to what an error shows.
function _M.bounded_problem(f)
  if #f.path > PATH_SHOWN then f.path = shorten(f.path, PATH_SHOWN) end
  if #f.message > MESSAGE_SHOWN then f.message = shorten(f.message, MESSAGE_SHOWN) end
  return f
end

-- A validation error from a list of { path =, message = } problems (their
-- paths and messages are cut to what an error shows, in place), ordered so
-- that the cause comes first: unknown fields (whose hints name the typo),
-- then wrong types and values, then missing fields (often the typo's other
-- side); found order within each rank.
function _M.validation(fields)
  local shown, ranked = {}, {}
  for i = 1, #fields do
    _M.bounded_problem(fields[i])
    ranked[i] = { fields[i], (RANK[fields[i]] or 2) * 1e9 + i }
  end
  sort(ranked, function(a, b) return a[2] < b[2] end)
  for i = 1, #ranked do fields[i] = ranked[i][1] end
  for i, f in ipairs(fields) do
    if i > 5 then
      shown[#shown + 1] = "and " .. (#fields - 5) .. " more"
      break
    end
    shown[#shown + 1] = (f.path ~= "" and f.path or "(body)") .. ": " .. f.message
  end
  local message = (#fields == 1 and "1 invalid field: " or (#fields .. " invalid fields: "))
    .. concat(shown, "; ")
  return _M.new("validation", message, { fields = fields })
end

-- A caller's error value (a hook's, on_progress's) as text, never raising:
-- its __tostring may itself raise or give something that is not a string.
function _M.describe(value)
  local ok, text = pcall(tostring, value)
  if ok and type(text) == "string" then return text end
  return "(a " .. type(value) .. " that cannot be shown: its __tostring failed)"
end

function _M.config(message)
  return _M.new("config", message)
end

-- ---- secrets ---------------------------------------------------------------
--
-- A secret is scrubbed in every form a server or a hook could write it in:
-- as is, JSON-escaped (`\/`, `\u00XX`, any character, also JSON inside a
-- JSON string, i.e. with more backslashes) and percent-encoded (`%XX`, either
-- case, also encoded twice or thrice as `%25XX`, `%2525XX`), these forms
-- mixed character by character.

-- Secrets shorter than this are not scrubbed: they would match ordinary text.
local MIN_SECRET = 8
_M.MIN_SECRET = MIN_SECRET
local MAX_BACKSLASHES = 7  -- JSON nested three deep writes `\/` as 7 backslashes and a slash
local MAX_PERCENT_LAYERS = 3
-- The most bytes one byte of a secret takes in any form scrubbed: 7
-- backslashes, "u" and four hex digits.
local MAX_FORM_BYTES = MAX_BACKSLASHES + 5
local REDACTED = "[REDACTED]"

local JSON_ESCAPE = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function hex_value(s, i, n) -- value of n hex digits at s[i], or nil
  local digits = sub(s, i, i + n - 1)
  if #digits == n and not find(digits, "%X") then return tonumber(digits, 16) end
  return nil
end

local function utf8_of(cp) -- UTF-8 bytes of a code point below 0x10000
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- Match one byte (or, for \uXXXX, one character) of secret at s[i], written
-- in any form. Returns the positions after it in s and in secret; nil when s
-- holds something else; or false when s ends before the form does.
local function match_form(s, i, secret, j)
  local n, c = #s, sub(secret, j, j)
  local here = sub(s, i, i)
  if here == "\\" then
    local k = i
    while k < n and k - i < MAX_BACKSLASHES and sub(s, k + 1, k + 1) == "\\" do k = k + 1 end
    if c == "\\" and sub(s, i + 1, i + 1) == "\\" then return i + 2, j + 1 end -- JSON's \\
    local e = sub(s, k + 1, k + 1)
    if e == "" then return false end
    if e == "u" then
      local cp = hex_value(s, k + 2, 4)
      if not cp then
        if n < k + 5 and not find(sub(s, k + 2), "%X") then return false end -- s ends inside it
        return nil
      end
      local text = utf8_of(cp)
      if sub(secret, j, j + #text - 1) == text then return k + 6, j + #text end
      return nil
    end
    if JSON_ESCAPE[e] == c then return k + 2, j + 1 end
    if here == c then return i + 1, j + 1 end
    return nil
  end
  if here == "%" then
    local k = i
    for _ = 1, MAX_PERCENT_LAYERS do
      local v = hex_value(s, k + 1, 2)
      if not v then
        if n < k + 2 and not find(sub(s, k + 1), "%X") then return false end
        break
      end
      if v == byte(c) then return k + 3, j + 1 end
      if v ~= 0x25 then break end
      k = k + 2 -- "%25" is an encoded "%": one more layer
    end
    if here == c then return i + 1, j + 1 end
    return nil
  end
  if here == c then return i + 1, j + 1 end
  if here == "" then return false end
  return nil
end

-- Where a form of secret that starts at s[i] ends: the last position, or nil
-- when there is none, or false when s ends inside one.
local function match_secret(s, i, secret)
  local j, m = 1, #secret
  while j <= m do
    i, j = match_form(s, i, secret, j)
    if not i then return i end
  end
  return i - 1
end

-- The pattern of the bytes a form of secret can start with.
local function first_bytes(secret)
  local c = sub(secret, 1, 1)
  if find(c, "%W") then c = "%" .. c end
  return "[" .. c .. "\\%%]"
end

-- Replace every occurrence of each secret in s, in any form, by "[REDACTED]".
local function scrub(s, secrets)
  for i = 1, #secrets do
    local secret = secrets[i]
    -- every form of a secret is at least as long as the secret
    if type(secret) == "string" and #secret >= MIN_SECRET and #s >= #secret then
      -- as is: plain search in C
      local start = find(s, secret, 1, true)
      if start then
        local out, pos = {}, 1
        while start do
          out[#out + 1] = sub(s, pos, start - 1)
          out[#out + 1] = REDACTED
          pos = start + #secret
          start = find(s, secret, pos, true)
        end
        out[#out + 1] = sub(s, pos)
        s = concat(out)
      end
      -- escaped: only where there is an escape at all
      if find(s, "\\", 1, true) or find(s, "%", 1, true) then
        local out, pos, from, starts = {}, 1, 1, first_bytes(secret)
        while true do
          local at = find(s, starts, from)
          if not at then break end
          local last = match_secret(s, at, secret)
          if last then
            out[#out + 1] = sub(s, pos, at - 1)
            out[#out + 1] = REDACTED
            pos, from = last + 1, last + 1
          else
            from = at + 1
          end
        end
        if pos > 1 then
          out[#out + 1] = sub(s, pos)
          s = concat(out)
        end
      end
    end
  end
  return s
end
_M.scrub = scrub

-- s without the first bytes of a secret (in any form) at its end.
local function drop_secret_prefix(s, secrets)
  for i = 1, #secrets do
    local secret = secrets[i]
    if type(secret) == "string" and #secret >= MIN_SECRET then
      local starts = first_bytes(secret)
      local from = #s - MAX_FORM_BYTES * #secret + 1
      local at = find(s, starts, from > 1 and from or 1)
      while at do
        if match_secret(s, at, secret) == false then
          s = sub(s, 1, at - 1)
          break
        end
        at = find(s, starts, at + 1)
      end
    end
  end
  return s
end

-- What err.body keeps of a response body: the body with its secrets scrubbed,
-- then cut to BODY_CAP bytes, and no first bytes of a secret left at the cut.
-- Scrubs only the start of a long body, as much as can reach into the cut.
local function body_excerpt(body, secrets)
  if type(body) ~= "string" then return body end
  secrets = secrets or {}
  local longest = 0
  for i = 1, #secrets do
    if type(secrets[i]) == "string" and #secrets[i] > longest then longest = #secrets[i] end
  end
  local window = sub(body, 1, BODY_CAP + MAX_FORM_BYTES * longest)
  local s = scrub(window, secrets)
  if #s <= BODY_CAP and #window == #body then return s end
  return drop_secret_prefix(sub(s, 1, BODY_CAP), secrets)
end

-- Scrub every string in a table, keys too, at any depth, in place. Only
-- for tables the module made (an error's data, fields).
local function redact_table(root, secrets)
  local seen, stack = { [root] = true }, { root }
  while #stack > 0 do
    local t = stack[#stack]
    stack[#stack] = nil
    local renamed
    for k, v in next, t do
      if type(v) == "string" then
        t[k] = scrub(v, secrets) -- assigning an existing key is allowed during next
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        stack[#stack + 1] = v
      end
      if type(k) == "string" then
        local clean = scrub(k, secrets)
        if clean ~= k then
          renamed = renamed or {}
          renamed[#renamed + 1] = k
          renamed[#renamed + 1] = clean
        end
      elseif type(k) == "table" and not seen[k] then
        seen[k] = true
        stack[#stack + 1] = k
      end
    end
    if renamed then
      for i = 1, #renamed, 2 do
        local value = t[renamed[i]]
        t[renamed[i]] = nil
        t[renamed[i + 1]] = value
      end
    end
  end
  return root
end

-- Scrub secrets from every string an error carries (in place) and return it.
-- err.body is scrubbed, then cut (see body_excerpt).
function _M.redact(err, secrets)
  secrets = secrets or {}
  for k, v in next, err do
    if k == "body" then
      err[k] = body_excerpt(v, secrets)
    elseif type(v) == "string" then
      err[k] = scrub(v, secrets)
    elseif type(v) == "table" then
      redact_table(v, secrets)
    end
  end
  return err
end

return _M

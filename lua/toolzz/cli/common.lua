-- toolzz.cli.common: what the command modules share (toolzz.cli.call,
-- toolzz.cli.batch, ...): client options from the command line, a client
-- with the --verbose hook, the printing of results, and the converters of
-- option values. Uses the public API of toolzz only.
local toolzz = require "toolzz"
local errors = require "toolzz.errors"
local output = require "toolzz.cli.output"

local type, tostring, tonumber, getmetatable, setmetatable = type, tostring, tonumber, getmetatable, setmetatable
local floor = math.floor
local concat = table.concat
local format, gsub = string.format, string.gsub

local _M = {}

-- An argparse converter: text -> a whole number from low to high, or nil, message.
function _M.whole_number(name, low, high)
  return function(text)
    local n = tonumber(text)
    if n and n >= low and n <= high and floor(n) == n then return floor(n) end
    return nil, format("%s must be a whole number from %d to %d, got '%s'", name, low, high, text)
  end
end

-- Write one line on stderr.
function _M.say(sys, line)
  sys.stderr:write(line, "\n")
end

-- Write text on stdout -> true, or false when stdout failed (this write or
-- an earlier one: the first failure's message is kept in sys.stdout_error,
-- and nothing more is written).
function _M.write_out(sys, ...)
  if sys.stdout_error then return false end
  local ok, why = sys.stdout:write(...)
  if ok == nil and why ~= nil then
    sys.stdout_error = tostring(why)
    return false
  end
  return true
end

-- Flush stdout -> true, or false when it failed (now or before; see write_out).
function _M.flush_out(sys)
  if sys.stdout_error then return false end
  local ok, why = sys.stdout:flush()
  if ok == nil and why ~= nil then
    sys.stdout_error = tostring(why)
    return false
  end
  return true
end

-- The hosts: their flag, variable and client option.
local HOSTS = {
  { flag = "--base-url", env = "TOOLZZ_BASE_URL", option = "base_url" },
  { flag = "--converflow-url", env = "TOOLZZ_CONVERFLOW_URL", option = "converflow_url" },
}

-- The client options from the command line (args) and the environment
-- (sys.getenv) -> options, or nil, config error naming the flag or the
-- variable at fault (never the Lua option). The token read is added to
-- sys.secrets (no output may show it); where it came from is
-- sys.token_source ("TOOLZZ_TOKEN" or "--token-file PATH").
function _M.client_options(args, sys)
  local opts = { timeout = args.timeout, retries = args.retries }
  if args.dry_run then opts.dry_run = true end
  for _, h in ipairs(HOSTS) do
    local value, name = args[h.option], h.flag
    if value == nil then value, name = sys.getenv(h.env), h.env end
    if value ~= nil then -- set but empty is an error too: never fall back to the default host
      local url, why = toolzz.parse_base_url(value, name)
      if not url then return nil, errors.config(why) end
      opts[h.option] = url
    end
  end
  if args.ca_file then
    local file = io.open(args.ca_file, "rb")
    if not file then return nil, errors.config("--ca-file cannot be read: " .. args.ca_file) end
    file:close()
    opts.ca_file = args.ca_file
  end
  local token, source = sys.getenv("TOOLZZ_TOKEN"), "TOOLZZ_TOKEN"
  if args.token_file then
    local file, why = io.open(args.token_file, "rb")
    if not file then return nil, errors.config("--token-file cannot be read: " .. tostring(why)) end
    token = file:read("*a") or ""
    file:close()
    token = gsub(token, "[\r\n]+$", "")
    if token == "" then return nil, errors.config("--token-file " .. args.token_file .. " is empty") end
    source = "--token-file " .. args.token_file
  end
  if token == nil or token == "" then
    return nil, errors.config("no token: set TOOLZZ_TOKEN or use --token-file PATH")
  end
  opts.token = token
  sys.secrets[#sys.secrets + 1] = token
  sys.token_source = source
  return opts
end

-- The command-line names of the client options a config error may name.
local FLAG_OF = { base_url = "--base-url", converflow_url = "--converflow-url", ca_file = "--ca-file" }

-- A config error of toolzz.new with the client options it names given as
-- the command's flags.
local function as_flags(err)
  if type(err) ~= "table" or err.kind ~= "config" or type(err.message) ~= "string" then return err end
  local message = gsub(err.message, "%f[%w_]([%l_]+)%f[^%w_]", function(word) return FLAG_OF[word] end)
  if message ~= err.message then err = errors.config(message) end
  return err
end

-- The --verbose line of one attempt (the on_response info) -> one line.
function _M.attempt_line(info)
  local parts = { "toolzz:", tostring(info.method), tostring(info.url) }
  if info.status then
    parts[#parts + 1] = tostring(info.status)
  elseif info.error then
    parts[#parts + 1] = "failed (" .. tostring(info.error) .. ")"
  end
  parts[#parts + 1] = output.ms(info.elapsed) .. " ms"
  if info.attempt then parts[#parts + 1] = "attempt " .. tostring(info.attempt) end
  if info.request_id then parts[#parts + 1] = "request-id " .. tostring(info.request_id) end
  return output.one_line(concat(parts, " "))
end

-- A client from options -> client, or nil, err. With --verbose, one line
-- per attempt on stderr (hooks.before_line runs first: a progress bar clears).
function _M.new_client(opts, sys, args, hooks)
  if args.verbose then
    opts.on_response = function(info)
      if hooks and hooks.before_line then hooks.before_line() end
      _M.say(sys, errors.scrub(_M.attempt_line(info), sys.secrets))
    end
  end
  local client, err = toolzz.new(opts)
  if not client then return nil, as_flags(err) end
  return client
end

-- The JSON text of a result: a dry run's request with its body as sent
-- (secret values redacted), else the response made printable.
function _M.result_json(res, secrets, show_secrets)
  if toolzz.is_dry_run(res) then -- toolzz's own, never a server record shaped like one
    local body = "null"
    if type(res.body) == "string" and res.body ~= "" then
      body = show_secrets and res.body or output.redact_json_text(res.body)
      body = output.terminal_safe_json(errors.scrub(body, secrets))
    end
    return '{"dry_run":true,"method":' .. output.encode(res.method) .. ',"url":'
      .. output.encode(errors.scrub(tostring(res.url), secrets)) .. ',"body":' .. body .. "}"
  end
  return output.encode(output.printable(res, secrets, show_secrets))
end

-- A list call's result is a JSON array, even when empty (decoded JSON
-- cannot tell [] from {}). op: the catalogue entry of the call, or nil.
function _M.mark_list(op, res)
  if type(op) == "table" and op.unwrap and type(res) == "table" and getmetatable(res) == nil then
    setmetatable(res, toolzz.array_mt)
  end
end

-- Print one call's result on stdout (--output json, pretty or table).
function _M.write_result(sys, args, res)
  if args.output == "table" and type(res) == "table" and not toolzz.is_dry_run(res) then
    _M.write_out(sys, output.table_view(output.printable(res, sys.secrets, args.show_secrets)))
    return
  end
  local text = _M.result_json(res, sys.secrets, args.show_secrets)
  if args.output == "pretty" or (args.output == nil and sys.isatty(1)) then text = output.pretty(text) end
  _M.write_out(sys, text, "\n")
end

return _M

-- toolzz.client: clients, and their methods built from the catalogue.
--
-- client.calcom.update(id, fields) is calls.run(state, op, id, fields)
-- (toolzz.calls), op being the catalogue's entry of that name. A client's
-- private state (options, the token, transports) lives in a weak table
-- keyed by the client, never in the client table itself.
local options = require "toolzz.options"
local operations = require "toolzz.operations"
local validate = require "toolzz.validate"
local calls = require "toolzz.calls"

local setmetatable, rawget = setmetatable, rawget

local _M = {}

local Client = {}
Client.__index = Client
local private = setmetatable({}, { __mode = "k" }) -- client -> state (holds the token)

-- client -> "toolzz.client(<base_url>[, closed])", never the token.
function Client.__tostring(client)
  local state = private[client]
  return "toolzz.client(" .. (state and state.cfg.base_url or "?")
    .. (state and state.closed and ", closed" or "") .. ")"
end

-- Close the client's connections; later calls fail with a config error.
function Client.close(client)
  local state = private[client]
  if not state or state.closed then return true end
  state.closed = true
  if state.curl then state.curl:close() end
  if state.ngx and state.ngx.close then state.ngx:close() end
  return true
end
Client.__close = Client.close

-- A method callable as group.verb(...) and group:verb(...).
local function method(group, fn)
  return function(a, b, c)
    if a == group then return fn(b, c) end
    return fn(a, b)
  end
end

-- The method of op on a client, callable as group.verb(...) and
-- group:verb(...): one closure per method, nothing made per call.
local run = calls.run
local function call_method(group, state, op)
  return function(a, b, c)
    if a == group then return run(state, op, b, c) end
    return run(state, op, a, b)
  end
end

-- cfg (checked options) -> the per-client state every layer below reads
-- (its transports are made on first use: toolzz.transports).
local function new_state(cfg)
  local state = {
    cfg = cfg,
    secrets = { cfg.token }, -- what errors are scrubbed of when the body has no secret
    prefix = {}, -- operation -> its URL up to the id
  }
  for _, op in ipairs(operations.list) do
    if op.path then state.prefix[op] = cfg[op.host] .. op.before end
    if op.schema then validate.compile(op.schema) end
  end
  return state
end

-- opts (toolzz.new's options) -> a client, or nil, config error.
function _M.new(opts)
  local cfg, err = options.configure(opts)
  if not cfg then return nil, err end
  local state = new_state(cfg)
  local client = setmetatable({ base_url = cfg.base_url }, Client)
  for _, op in ipairs(operations.list) do
    local group = rawget(client, op.group)
    if not group then
      group = {}
      client[op.group] = group
    end
    group[op.verb] = call_method(group, state, op)
  end
  client.batch = method(client, function(requests, opts2)
    return require("toolzz.batch").run(state, requests, opts2)
  end)
  local sync = {} -- client.sync.plan / apply / export (toolzz.sync)
  for _, verb in ipairs { "plan", "apply", "export" } do
    sync[verb] = method(sync, function(a, b) return require("toolzz.sync." .. verb)[verb](client, a, b) end)
  end
  client.sync = sync
  private[client] = state
  return client
end

-- For toolzz.testing only: the private state of a client.
function _M.state_of(client)
  return private[client]
end

-- Module-level groups and batch: the same methods on a default client made
-- from the environment on first use.
function _M.module_groups(target)
  local default_client
  -- -> the default client, made on first use, or nil, config error.
  local function default()
    if not default_client then
      local client, err = _M.new()
      if not client then return nil, err end
      default_client = client
    end
    return default_client
  end
  target.batch = method(target, function(requests, opts)
    local client, err = default()
    if not client then return nil, err end
    return client.batch(requests, opts)
  end)
  for _, op in ipairs(operations.list) do
    local group = target[op.group]
    if not group then
      group = {}
      target[op.group] = group
    end
    local group_name, verb = op.group, op.verb
    group[verb] = method(group, function(a, b)
      local client, err = default()
      if not client then
        err.op = group_name .. "." .. verb
        if op.patch then err.step = "get" end
        return nil, err
      end
      return client[group_name][verb](a, b)
    end)
  end
end

return _M

-- toolzz.cli.call: the subcommands that make one call of the client, one
-- per operation of the catalogue (toolzz.operations): toolzz calcom get ID,
-- toolzz gcal patch ID --set k=v, ... A command module (see toolzz.cli).
local operations = require "toolzz.operations"
local toolzz = require "toolzz"
local errors = require "toolzz.errors"
local input = require "toolzz.cli.input"
local common = require "toolzz.cli.common"

local type, ipairs = type, ipairs
local unpack = table.unpack or unpack -- luacheck: ignore 143

local _M = {}

-- The schema a body of this operation is read against (for --set values):
-- the catalogue's, else the group's (a patch's changes).
local function schema_of(group, verb)
  local entry = operations.by_name[group .. "." .. verb]
  return entry and entry.schema or toolzz.schema[group]
end
_M.schema_of = schema_of

-- Keep --set and --set-file in one list, in command-line order.
local function assignment(name)
  return function(result, _, value)
    local list = result.assignments or {}
    result.assignments = list
    list[#list + 1] = { name, value }
  end
end

local function add_body_options(command, what)
  command:option("-f --file", "Read the " .. what .. " from FILE (JSON; - for stdin)."):argname("FILE")
  command:option("--set", "Set one field: a dotted path and a JSON value, else a string "
      .. "(null removes an optional field). Repeatable.")
    :argname("PATH=VALUE"):count("*"):action(assignment("set"))
  command:option("--set-file", "Set one field to the contents of FILE, trailing newline stripped "
      .. "(for secrets such as a googleToken). Repeatable.")
    :argname("PATH=FILE"):count("*"):action(assignment("set_file"))
end

-- Add a command per group and a subcommand per operation; -> their names.
function _M.add_to_parser(parser)
  local groups, names = {}, {}
  for _, g in ipairs(operations.groups) do
    groups[g.name] = parser:command(g.name, g.summary):command_target("op")
    names[#names + 1] = g.name
  end
  for _, op in ipairs(operations.list) do
    local command = groups[op.group]:command(op.verb, op.summary, op.example and ("Example: " .. op.example))
    if op.takes_id then
      -- named as its usage shows it (UNIT_ID, ID), read as args.id
      command:argument(op.arg, op.id_name and "The unit's id (a UUID)." or "Its id (a UUID).")
        :argname(op.arg):target("id")
    end
    if op.takes_body then add_body_options(command, op.body) end
  end
  return names
end

-- Run toolzz <group> <verb> ...: -> true, or nil, err[, exit code], or
-- nil, usage message.
function _M.command(args, sys)
  local opts, err = common.client_options(args, sys)
  if not opts then return nil, err end
  local operation = operations.by_name[args.command .. "." .. args.op]
  local call_args = {}
  if operation.takes_id then call_args[1] = args.id end
  if operation.takes_body then
    if not args.file and not args.assignments then
      return nil, "nothing to send: give -f FILE and/or --set PATH=VALUE"
    end
    local body, from_files = input.build_body(input.reader(sys.stdin), args.file, args.assignments,
      schema_of(operation.group, operation.verb))
    if not body then return nil, from_files end
    if not args.show_secrets then
      for _, s in ipairs(from_files) do sys.secrets[#sys.secrets + 1] = s end
    end
    call_args[#call_args + 1] = body
  end
  local client
  client, err = common.new_client(opts, sys, args)
  if not client then return nil, err end
  local call = client[operation.group][operation.verb]
  if type(call) ~= "function" then
    client:close()
    return nil, errors.config("this toolzz module has no " .. operation.name)
  end
  local res
  res, err = call(unpack(call_args, 1, operation.takes_id and operation.takes_body and 2 or 1))
  client:close()
  if res == nil then -- an update sent a record as read: name the patch that does it
    return nil, err, nil, input.patch_advice(operation.group, operation.verb, args.id, err)
  end
  common.mark_list(operation, res)
  common.write_result(sys, args, res)
  return true
end

return _M

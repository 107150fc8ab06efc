-- toolzz.batch: many calls at once.
--
--   local results = client.batch({ { OP, id }, { OP, id2, changes },  -- OP: a name of the
--                                  { ALIAS, id3, fields } },           -- catalogue, or an alias
--                                { concurrency = 8, on_progress = function(done, total, i, result) end })
--   results[i] = { res = decoded } or { err = err }, in input order
--
-- Options (all optional; read raw, an unknown one is a config error):
--   concurrency  = 1-256 (default 8): calls in flight at once.
--   on_result    = function(i, result): item i ended with result ({ res = } or
--                  { err = }); once per item, as soon as it ends (not in input order).
--   on_progress  = function(done, total, i, result): the same, after on_result,
--                  with the count of items ended so far.
--   keep_results = false: no result is kept once on_result and on_progress
--                  have returned (memory stays flat however many items);
--                  client.batch then returns only counts:
--                  { total =, ok =, failed =, stopped = } (ok + failed = total;
--                  stopped: the failed ones the stop ended). Default true.
--   should_stop  = function() -> boolean: asked before each item starts and
--                  whenever the batch wakes (at least every 0.1 s). Once it
--                  answers true (or raises: logged, and taken as true; it is not
--                  asked again) the batch starts nothing new and ends each item
--                  it will not send (`config` errors marked `stopped = true`):
--                    queued items: "not started: the batch was stopped";
--                    a patch whose GET was answered: "not written: ..." (step "update");
--                    over libcurl, a read (GET) in flight: cancelled, "cancelled: ...";
--                    an item waiting to retry: its last attempt's error (not marked);
--                  every write in flight (PUT, POST) runs to its end and reports
--                  its real outcome, so every write the server may have got is in
--                  the results (inside nginx every request in flight runs to its end).
--                  Each item still gets exactly one result.
-- A failing on_result/on_progress/should_stop never breaks the batch: its
-- failure is logged (stderr, or ngx.log WARN), scrubbed of every secret.
--
-- Every item is validated first (a bad item never spoils the others), then
-- the valid ones run concurrently (toolzz.batch_drive): over the client's
-- curl multi handle (one connection cache, HTTP/2 multiplexing where
-- offered), or inside nginx as cosocket light threads. A patch's PUT goes
-- ahead of the items not yet started (depth first). Each item gets the same
-- retries, error kinds and hooks as a single call.
local errors = require "toolzz.errors"
local operations = require "toolzz.operations"
local calls = require "toolzz.calls"
local attempts = require "toolzz.attempts"
local drive = require "toolzz.batch_drive"

local type, pcall, next, rawget, floor, ipairs, pairs =
  type, pcall, next, rawget, math.floor, ipairs, pairs
local format = string.format
local collectgarbage = collectgarbage

-- Collector pacing: each finished item leaves garbage (its answer's body and
-- headers, its job and request, the transport's outcome), and results pile
-- up, so the heap of a long batch peaks well above what it holds. One step
-- of the collector per finished item, as if GC_STEP_KIB more had been
-- allocated, keeps the peak lower for a little more work (figures:
-- bench/README.md, levers). Only while the collector runs: it is never
-- restarted behind a caller that stopped it (Lua 5.1 cannot tell, so it
-- gets no pacing).
local GC_STEP_KIB = 2
local gc_running = pcall(collectgarbage, "isrunning")
local function pace_collector()
  if gc_running and collectgarbage("isrunning") then collectgarbage("step", GC_STEP_KIB) end
end

local _M = {}

_M.DEFAULT_CONCURRENCY = 8
_M.MAX_CONCURRENCY = 256

local CALLBACKS = { on_progress = true, on_result = true, should_stop = true }

-- Batch options, read raw (no __index of the caller's runs): a table of
-- them (concurrency defaulted, keep_results a boolean), or nil, message.
local function check_options(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return nil, "batch options must be a table" end
  local o = { concurrency = rawget(opts, "concurrency") or _M.DEFAULT_CONCURRENCY }
  local concurrency = o.concurrency
  if type(concurrency) ~= "number" or concurrency < 1 or concurrency > _M.MAX_CONCURRENCY
     or floor(concurrency) ~= concurrency then
    return nil, "concurrency must be a whole number from 1 to " .. _M.MAX_CONCURRENCY
  end
  for name in next, CALLBACKS do
    local f = rawget(opts, name)
    if f ~= nil and type(f) ~= "function" then return nil, name .. " must be a function" end
    o[name] = f
  end
  local keep = rawget(opts, "keep_results")
  if keep ~= nil and type(keep) ~= "boolean" then return nil, "keep_results must be a boolean" end
  o.keep_results = keep ~= false
  for k in next, opts do
    if k ~= "concurrency" and k ~= "keep_results" and not CALLBACKS[k] then
      local name = type(k) == "string" and ("'" .. k:sub(1, 64) .. "'") or ("(a " .. type(k) .. " key)")
      return nil, "unknown batch option " .. name
    end
  end
  return o
end

-- The length of a caller's list, read raw (no __len or __index of theirs):
-- its highest positive integer key, so that an item after a nil hole is
-- never skipped (each hole gets an error of its own). A list more hole than
-- items (a key of 1e9) gives nil: no batch would be meant by it.
local function raw_length(list)
  local count, highest = 0, 0
  for k in next, list do
    if type(k) == "number" and k >= 1 and k % 1 == 0 then
      count = count + 1
      if k > highest then highest = k end
    end
  end
  if highest > 2 * count + 64 then return nil end
  return highest
end

local secret_strings = require("toolzz.tables").secret_strings

-- The Part 1 forms { "calcom", id, fields } and { "gcal", id, fields } mean update.
local SHORT_NAMES = operations.aliases -- the catalogue's aliases

-- A caller's item r (read raw) -> the operation it names, or nil.
local function operation_of(r)
  if type(r) ~= "table" then return nil end
  local name = rawget(r, 1)
  if type(name) ~= "string" then return nil end
  return operations.by_name[SHORT_NAMES[name] or name]
end

-- What an item looks like, for errors: one operation without a body, one
-- with, and an alias, all from the catalogue.
local FORMS
do
  local bare, with_body, alias
  for _, op in ipairs(operations.list) do
    if op.takes_id and not op.takes_body then bare = bare or op end
    if op.takes_id and op.takes_body then with_body = with_body or op end
  end
  for name in pairs(SHORT_NAMES) do alias = (alias == nil or name < alias) and name or alias end
  FORMS = format('{ "%s", id }, { "%s", id, %s }', bare.name, with_body.name, with_body.body)
    .. (alias and format(', { "%s", id, fields }', alias) or "") .. ", ..."
end

-- An error of client.batch itself (not of an item) -> nil, err marked op "batch".
local function batch_error(err)
  err.op = "batch"
  return nil, err
end

-- The secrets a callback's failure is scrubbed of: the token, and whatever
-- the items and the client's defaults hold under a secret field's name.
local function secrets_of(state, requests, total)
  local secrets = { state.cfg.token }
  secret_strings(state.cfg.defaults, secrets)
  for i = 1, total do
    local r = rawget(requests, i)
    if operation_of(r) then -- its body or changes, at [2] or [3]
      secret_strings(rawget(r, 2), secrets)
      secret_strings(rawget(r, 3), secrets)
    end
  end
  return secrets
end

-- Call a caller's callback protected: its answer, or nil after logging its
-- failure scrubbed of secrets and of what res (the result it was given) holds.
local function call_back(name, secrets, res, f, ...)
  local ok, answer = pcall(f, ...)
  if ok then return answer end
  local all = {}
  for i = 1, #secrets do all[i] = secrets[i] end
  secret_strings(res, all)
  attempts.log_warning(name .. " failed: " .. errors.scrub(errors.describe(answer), all))
  return nil, true
end

-- A latch over the caller's should_stop (nil when none was given): true
-- from the first true answer (or failure) on.
local function stop_latch(should_stop, secrets)
  if not should_stop then return nil end
  local stopped = false
  return function()
    if not stopped then
      local answer, failed = call_back("should_stop", secrets, nil, should_stop)
      stopped = (answer or failed) and true or false
    end
    return stopped
  end
end

-- client.batch(requests [, opts]) -> list of { res = } / { err = } (or, with
-- keep_results = false, the counts), or nil, err.
function _M.run(state, requests, opts)
  if state.closed then return batch_error(errors.config("the client is closed")) end
  local o, why = check_options(opts)
  if not o then return batch_error(errors.config(why)) end
  if type(requests) ~= "table" then
    return batch_error(errors.validation { { path = "", message = "requests must be a list, got " .. type(requests) } })
  end
  local total = raw_length(requests)
  if not total then
    return batch_error(errors.validation { { path = "", message = "requests must be a list (it has more holes than items)" } })
  end
  local on_result, on_progress, keep = o.on_result, o.on_progress, o.keep_results
  local results, done = {}, 0
  local counts = { total = total, ok = 0, failed = 0, stopped = 0 }
  local secrets = (on_result or on_progress or o.should_stop) and secrets_of(state, requests, total)
  local function finish(index, res, err)
    local result = err and { err = err } or { res = res }
    if keep then results[index] = result end
    done = done + 1
    if err then
      counts.failed = counts.failed + 1
      if rawget(err, "stopped") == true then counts.stopped = counts.stopped + 1 end
    else
      counts.ok = counts.ok + 1
    end
    pace_collector()
    if on_result then call_back("on_result", secrets, res, on_result, index, result) end
    if on_progress then call_back("on_progress", secrets, res, on_progress, done, total, index, result) end
  end

  -- check every item before anything is sent; queue the valid ones
  local queue = drive.new_queue()
  for i = 1, total do
    local r = rawget(requests, i)
    local op = operation_of(r)
    if not op then
      local err = errors.validation { { path = "[" .. i .. "]", message = "each request must be one of " .. FORMS } }
      finish(i, nil, err)
    else
      local id, fields = nil, rawget(r, 2)
      if op.takes_id then id, fields = fields, rawget(r, 3) end
      local item_secrets = calls.secrets_for(state, op)
      local body, err = calls.check(state, op, id, fields, item_secrets)
      local dry = body ~= nil and calls.dry_run_result(state, op, id, body, item_secrets)
      if body == nil then
        finish(i, nil, calls.failed(op, err).err) -- invalid, or the client is closed
      elseif dry then
        finish(i, dry) -- a dry-run write
      else
        drive.enqueue(queue, i, op, id, body, item_secrets, op.patch and calls.guard_of(rawget(r, 4)) or nil)
      end
    end
  end
  if queue.n > 0 then
    local ok, busy = drive.drive(state, queue, o.concurrency, finish, stop_latch(o.should_stop, secrets))
    if not ok then return batch_error(errors.config(busy)) end
  end
  if keep then return results end
  return counts
end

return _M

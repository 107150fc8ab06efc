-- toolzz.batch: many calls at once.
--
--   local results = client.batch({ { "calcom.get", id }, { "gcal.patch", id2, changes },
--                                  { "calcom", id3, fields } },  -- Part 1 form: update
--                                { concurrency = 8, on_progress = function(done, total, i, result) end })
--   results[i] = { res = decoded } or { err = err }, in input order
--
-- Every item is validated first (a bad item never spoils the others), then
-- the valid ones run concurrently (a patch's GET and PUT both in turn): over the client's curl multi handle (one
-- connection cache, HTTP/2 multiplexing where offered), or inside nginx as
-- cosocket light threads. Each item gets the same retries, error kinds and
-- hooks as a single call.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local operations = require "toolzz.operations"
local calls = require "toolzz.calls"
local attempts = require "toolzz.attempts"

local type, tostring, pcall, next, rawget, floor, error, setmetatable =
  type, tostring, pcall, next, rawget, math.floor, error, setmetatable
local running, status = coroutine.running, coroutine.status
local now = core.now
local collectgarbage = collectgarbage

-- Collector pacing: each finished item leaves garbage (its answer's body and
-- headers, its job and request, the transport's outcome), and results pile
-- up, so the heap of a long batch peaks well above what it holds. One step
-- of the collector per finished item, as if GC_STEP_KIB more had been
-- allocated, keeps it closer: 10,000 items over 1,000 peaked at 1.38 KiB of
-- RSS per item without, 1.15 with, for under 1 % more instructions (LuaJIT:
-- 1.15 -> 0.82; bench/README.md, levers). Only while the collector runs: it
-- is never restarted behind a caller that stopped it (Lua 5.1 cannot tell,
-- so it gets no pacing).
local GC_STEP_KIB = 2
local gc_running = pcall(collectgarbage, "isrunning")
local function pace_collector()
  if gc_running and collectgarbage("isrunning") then collectgarbage("step", GC_STEP_KIB) end
end

local _M = {}

_M.DEFAULT_CONCURRENCY = 8
_M.MAX_CONCURRENCY = 256

-- ---- runs: which batch owns which transfers ----------------------------------
--
-- Every batch over a transport with submit/wait is a run. A run's transfers
-- are tagged run.base + item index, so a transfer belongs to exactly one run
-- and transport:cancel(run.base, run.last) drops them all. At any time one
-- run at most is executing on a transport; when a new run starts:
--   * a run whose thread is running (the same stack: a batch started from a
--     hook or on_progress of a batch) or normal (it resumed us) is live: the
--     new run is refused with a config error;
--   * any other run is abandoned (its coroutine is suspended and may never be
--     resumed, or it is dead): its transfers are cancelled, so that nothing
--     it left in the multi handle is delivered to another run, and if it is
--     resumed later it ends its remaining items with a config error.
-- A run that a Lua error unwinds cancels its own transfers on the way out.
local RUN_SPAN = floor(2 ^ 32)  -- tags per run (integer on 5.3+)
local MAX_RUN_ID = floor(2 ^ 20) -- run ids wrap (tags stay below 2^53)
local MAIN = {}                  -- the main thread (5.1: coroutine.running() is nil there)
local runs_of = setmetatable({}, { __mode = "k" }) -- transport -> { next_id =, live = { [id] = run } }
local WEAK_VALUES = { __mode = "v" } -- a run holds its thread weakly: the thread may hold the transport

local function current_thread()
  local co, is_main = running()
  if co == nil or is_main then return MAIN end
  return co
end

local function thread_status(thread, here)
  if thread == nil then return "dead" end -- collected
  if thread == here then return "running" end
  if thread == MAIN then return "normal" end -- we are in a coroutine it resumed
  return status(thread)
end

-- Start a run on transport, or nil, message when another batch is live there.
local function claim(transport)
  local reg = runs_of[transport]
  if not reg then
    reg = { next_id = 1, live = {} }
    runs_of[transport] = reg
  end
  local here = current_thread()
  for _, run in next, reg.live do
    local st = thread_status(run.thread[1], here)
    if st == "running" or st == "normal" then
      return nil, "a batch cannot start while another batch of this client is running "
        .. "(from one of its hooks or on_progress)"
    end
  end
  for id, run in next, reg.live do
    run.abandoned = true
    transport:cancel(run.base, run.last)
    reg.live[id] = nil
  end
  local id = reg.next_id
  reg.next_id = id % MAX_RUN_ID + 1
  local run = { id = id, base = id * RUN_SPAN, last = id * RUN_SPAN + RUN_SPAN - 1,
                thread = setmetatable({ here }, WEAK_VALUES) }
  reg.live[id] = run
  return run
end

-- The run is over (or unwound by an error): drop whatever it left behind.
local function release(transport, run)
  local reg = runs_of[transport]
  if reg and reg.live[run.id] == run then
    reg.live[run.id] = nil
    transport:cancel(run.base, run.last)
  end
end

-- Batch options, read raw (no __index of the caller's runs).
local function check_options(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return nil, "batch options must be a table" end
  local concurrency = rawget(opts, "concurrency") or _M.DEFAULT_CONCURRENCY
  local on_progress = rawget(opts, "on_progress")
  if type(concurrency) ~= "number" or concurrency < 1 or concurrency > _M.MAX_CONCURRENCY
     or floor(concurrency) ~= concurrency then
    return nil, "concurrency must be a whole number from 1 to " .. _M.MAX_CONCURRENCY
  end
  if on_progress ~= nil and type(on_progress) ~= "function" then
    return nil, "on_progress must be a function"
  end
  for k in next, opts do
    if k ~= "concurrency" and k ~= "on_progress" then
      local name = type(k) == "string" and ("'" .. k:sub(1, 64) .. "'") or ("(a " .. type(k) .. " key)")
      return nil, "unknown batch option " .. name
    end
  end
  return concurrency, on_progress
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

-- Append to out the strings a table holds under a secret field's name, at
-- any depth (a record echoes its googleToken; a lax body's unknown objects).
local secret_strings = require("toolzz.schema").secret_strings


-- The Part 1 forms { "calcom", id, fields } and { "gcal", id, fields } mean update.
local SHORT_NAMES = operations.aliases -- the catalogue's aliases

local function operation_of(r)
  if type(r) ~= "table" then return nil end
  local name = rawget(r, 1)
  if type(name) ~= "string" then return nil end
  return operations.by_name[SHORT_NAMES[name] or name]
end

-- The items a batch has judged and not yet started, in input order: five
-- slots each (index, operation, id, JSON body or a patch's checked changes,
-- secrets), so that a queued item holds no job, request, URL or table of its
-- own. Its job and request are made only when the item starts (calls.begin).
local SLOTS = 5

local function new_queue()
  return { n = 0, head = 1 }
end

local function enqueue(q, index, op, id, body, secrets)
  local k = q.n * SLOTS
  q[k + 1], q[k + 2], q[k + 3], q[k + 4], q[k + 5] = index, op, id or false, body or false, secrets or false
  q.n = q.n + 1
end

-- The next queued item's index and operation, and the three pieces
-- calls.begin takes (nil when there were none), or nil.
local function dequeue(q)
  local h = q.head
  if h > q.n then return nil end
  q.head = h + 1
  local k = (h - 1) * SLOTS
  local index, op, id, body, secrets = q[k + 1], q[k + 2], q[k + 3], q[k + 4], q[k + 5]
  q[k + 3], q[k + 4], q[k + 5] = false, false, false -- the body goes with the request, not kept here
  return index, op, id or nil, body or nil, secrets or nil
end

-- Start the next queued item: its { index, job, attempt }, or nil when the
-- queue is empty.
local function take_queued(state, queue)
  local index, op, id, body, secrets = dequeue(queue)
  if not index then return nil end
  return { index = index, job = calls.begin(state, op, id, body, secrets), attempt = 0 }
end

-- Run the queued items over a transport with submit/wait, as the run `run`
-- (see claim). A job whose request ends (res or err) is advanced: it may
-- have another request (a patch's PUT after its GET), which queues behind
-- the items not yet started.
local function run_multi(state, transport, run, queue, concurrency, finish_item)
  local started = {}                -- index -> item, for the items started and not finished
  local function finish(item)
    item.finished = true
    local job = item.job
    item.job = nil -- what is left of a finished item is its result, held by the caller's list
    started[item.index] = nil
    finish_item(item.index, job.res, job.err)
  end
  local function fail_rest(message)
    local left = {}
    for index in next, started do left[#left + 1] = index end
    table.sort(left) -- in input order: started items come before queued ones
    for k = 1, #left do
      local item = started[left[k]]
      if item and not item.finished then
        calls.advance(state, item.job, nil, errors.config(message))
        finish(item)
      end
    end
    while true do
      local index, op = dequeue(queue)
      if not index then break end
      local job = calls.failed(op, errors.config(message))
      finish_item(index, job.res, job.err)
    end
  end
  local ready, ready_head = {}, 1   -- FIFO of started items to (re)submit: a retry, a patch's PUT
  local held = nil                  -- the item taken next, when its submit had to wait
  local waiting = {}                -- items sleeping before a retry
  local in_flight = 0
  -- The next item to submit: queued items first, then the started ones.
  local function take()
    if held then return held end
    local item = take_queued(state, queue)
    if not item and ready_head <= #ready then
      item = ready[ready_head]
      ready[ready_head] = false
      ready_head = ready_head + 1
    end
    if item then started[item.index] = item end
    held = item
    return item
  end

  -- Start as many ready items as the concurrency allows.
  local function start_ready()
    while in_flight < concurrency and not state.closed and not run.abandoned do
      local item = take()
      if not item then break end
      local request = item.job.request
      local ok, why = transport:submit(request.method, request.url, request.body, run.base + item.index,
        not request.idempotent)
      if not ok then
        if in_flight == 0 then -- nothing will free a slot: fail the item
          held = nil
          calls.advance(state, item.job, nil, errors.new("network", "cannot start the transfer: " .. tostring(why),
            { attempts = item.attempt }))
          finish(item)
        end
        break
      end
      held = nil
      item.attempt = item.attempt + 1
      attempts.announce(state, request, item.attempt)
      in_flight = in_flight + 1
    end
  end

  while held or queue.head <= queue.n or ready_head <= #ready or #waiting > 0 or in_flight > 0 do
    if state.closed then -- closed from a hook: what is left fails, nothing hangs
      return fail_rest("the client was closed during the batch")
    end
    if run.abandoned then -- resumed after another batch took the transport over
      return fail_rest("the batch was abandoned: another batch started on this client while it was suspended")
    end
    -- wake the retries that are due
    local t, next_wake = now(), nil
    for i = #waiting, 1, -1 do
      local w = waiting[i]
      if w.wake <= t then
        ready[#ready + 1] = w
        table.remove(waiting, i)
      elseif not next_wake or w.wake < next_wake then
        next_wake = w.wake
      end
    end
    start_ready()
    if in_flight == 0 then
      if next_wake then core.sleep(next_wake - now()) end
    else
      local max_wait = next_wake and (next_wake - now()) or 1
      local finished = transport:wait(max_wait > 0 and max_wait or 0)
      -- refill the freed slots first, so the next transfers are under way
      -- while the answers just in are interpreted
      for k = 1, #finished do
        if started[finished[k][1] - run.base] then in_flight = in_flight - 1 end
      end
      if #finished > 0 then start_ready() end
      for k = 1, #finished do
        -- f = { tag, status, body, headers, elapsed, version } or
        --     { tag, nil, kind, message, elapsed, headers, sent }
        local f = finished[k]
        local item = started[f[1] - run.base] -- (only this run's tags can come back)
        if item then
          local job = item.job
          local res, err, wait = attempts.conclude(state, job.request, item.attempt,
            f[2], f[3], f[4], f[5], f[6], f[7])
          if wait then
            item.wake = now() + wait
            waiting[#waiting + 1] = item
          else
            calls.advance(state, job, res, err)
            if job.request then -- the next request of the same call
              item.attempt = 0
              ready[#ready + 1] = item
            else
              finish(item)
            end
          end
        end
      end
    end
  end
end

-- Inside nginx: light threads, each running whole calls one after another.
local function run_threads(state, queue, concurrency, finish)
  local ngx = rawget(_G, "ngx")
  local function worker()
    while true do
      local item = take_queued(state, queue)
      if not item then return end
      local job = item.job
      while job.request do calls.advance(state, job, attempts.perform(state, job.request)) end
      finish(item.index, job.res, job.err)
    end
  end
  local threads = {}
  for i = 1, concurrency < queue.n and concurrency or queue.n do
    threads[i] = ngx.thread.spawn(worker)
  end
  for i = 1, #threads do ngx.thread.wait(threads[i]) end
end

local FORMS = "{ \"calcom.get\", id }, { \"gcal.patch\", id, changes }, { \"calcom\", id, fields }, ..."

-- client.batch(requests [, opts]) -> list of { res = } / { err = }, or nil, err
local function batch_error(err)
  err.op = "batch"
  return nil, err
end

function _M.run(state, requests, opts)
  if state.closed then return batch_error(errors.config("the client is closed")) end
  local concurrency, on_progress = check_options(opts)
  if not concurrency then return batch_error(errors.config(on_progress)) end
  if type(requests) ~= "table" then
    return batch_error(errors.validation { { path = "", message = "requests must be a list, got " .. type(requests) } })
  end
  local total = raw_length(requests)
  if not total then
    return batch_error(errors.validation { { path = "", message = "requests must be a list (it has more holes than items)" } })
  end
  local results, done = {}, 0
  -- what an on_progress failure is scrubbed of: the token, and whatever the
  -- items and the client's defaults hold under a secret field's name
  local secrets = { state.cfg.token }
  if on_progress then
    secret_strings(state.cfg.defaults, secrets)
    for i = 1, total do
      local r = rawget(requests, i)
      if operation_of(r) then -- its body or changes, at [2] or [3]
        secret_strings(rawget(r, 2), secrets)
        secret_strings(rawget(r, 3), secrets)
      end
    end
  end
  local function finish(index, res, err)
    results[index] = err and { err = err } or { res = res }
    done = done + 1
    pace_collector()
    if on_progress then
      local ok, failure = pcall(on_progress, done, total, index, results[index])
      if not ok then -- it was given the result: scrub what that holds too
        local all = {}
        for i = 1, #secrets do all[i] = secrets[i] end
        secret_strings(res, all)
        attempts.log_warning("on_progress failed: " .. errors.scrub(errors.describe(failure), all))
      end
    end
  end

  -- judge every item before anything is sent; queue the valid ones
  local queue = new_queue()
  for i = 1, total do
    local r = rawget(requests, i)
    local op = operation_of(r)
    if not op then
      local err = errors.validation { { path = "[" .. i .. "]", message = "each request must be one of " .. FORMS } }
      finish(i, nil, err)
    else
      local job, id, body, item_secrets = calls.judge(state, op, rawget(r, 2), rawget(r, 3))
      if job then
        finish(i, job.res, job.err) -- invalid, or a dry-run write
      else
        enqueue(queue, i, op, id, body, item_secrets)
      end
    end
  end
  if queue.n == 0 then return results end

  local transport = attempts.transport_for(state)
  if transport.submit then
    local run, why = claim(transport)
    if not run then return batch_error(errors.config(why)) end
    local ok, failure = pcall(run_multi, state, transport, run, queue, concurrency, finish)
    release(transport, run)
    if not ok then error(failure, 0) end -- (not from a hook: those are protected)
  elseif rawget(_G, "ngx") and rawget(_G, "ngx").thread then
    run_threads(state, queue, concurrency, finish)
  else
    while true do
      local item = take_queued(state, queue)
      if not item then break end
      local job = item.job
      while job.request do calls.advance(state, job, attempts.perform(state, job.request)) end
      finish(item.index, job.res, job.err)
    end
  end
  return results
end

return _M

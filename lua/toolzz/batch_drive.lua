-- toolzz.batch_drive: running a batch's checked items to their results.
--
-- toolzz.batch checks every item and queues the valid ones here (new_queue,
-- enqueue); drive() then runs them, at most `concurrency` at once, and hands
-- each item's end to finish_item(index, res, err) exactly once:
--   * over a transport with submit/wait (the client's curl multi handle), as
--     one run (toolzz.batch_runs) driven by one loop;
--   * inside nginx, as cosocket light threads, each running whole calls;
--   * else one call after another.
-- Depth first: a started item's next request (a patch's PUT after its GET, a
-- retry that is due) goes ahead of the items not yet started, so a patch's
-- read-to-write window is one round trip, not the whole batch.
-- A stop (the batch's should_stop, see toolzz.batch) starts nothing new:
-- queued items end "not started", a patch whose GET is done ends "not
-- written", an item waiting to retry ends with its last attempt's error;
-- over libcurl a read (GET) in flight is cancelled (it changed nothing),
-- while every write in flight is let finish, so its outcome is known.
local core = require "toolzz.core"
local errors = require "toolzz.errors"
local calls = require "toolzz.calls"
local attempts = require "toolzz.attempts"
local transports = require "toolzz.transports"
local runs = require "toolzz.batch_runs"

local tostring, next, rawget, pcall, error, min = tostring, next, rawget, pcall, error, math.min
local sort, remove = table.sort, table.remove
local now = core.now

local _M = {}

-- How often a drive loop with a should_stop wakes at least, seconds.
local STOP_POLL_SECONDS = 0.1

_M.NOT_STARTED = "not started: the batch was stopped"
_M.NOT_WRITTEN = "not written: the batch was stopped after this patch's read"
_M.CANCELLED = "cancelled: the batch was stopped while this read was in flight (nothing was written)"

-- A config error marked stopped = true: an item the stop ended.
local function stopped_error(message)
  return errors.new("config", message, { stopped = true })
end

-- The error that ends a started item whose next request will not be sent.
local function unsent_error(job)
  return stopped_error(job.step == "update" and _M.NOT_WRITTEN or _M.NOT_STARTED)
end

-- ---- the queue ---------------------------------------------------------------
--
-- The items a batch has checked and not yet started, in input order: six
-- slots each (index, operation, id, JSON body or a patch's checked changes,
-- secrets, a patch's guard), so that a queued item holds no job, request,
-- URL or table of its own. Its job and request are made only when the item
-- starts (calls.begin).
local SLOTS = 6

-- -> an empty queue.
function _M.new_queue()
  return { n = 0, head = 1 }
end

-- Queue item index: its operation and what calls.check gave (id, body,
-- secrets), and a patch's guard (calls.GUARD; nil when none). Returns nothing.
function _M.enqueue(q, index, op, id, body, secrets, guard)
  local k = q.n * SLOTS
  q[k + 1], q[k + 2], q[k + 3], q[k + 4], q[k + 5], q[k + 6] =
    index, op, id or false, body or false, secrets or false, guard or false
  q.n = q.n + 1
end

-- The next queued item's index and operation, and the four pieces
-- calls.begin takes (nil when there were none), or nil.
local function dequeue(q)
  local h = q.head
  if h > q.n then return nil end
  q.head = h + 1
  local k = (h - 1) * SLOTS
  local index, op, id, body, secrets, guard = q[k + 1], q[k + 2], q[k + 3], q[k + 4], q[k + 5], q[k + 6]
  q[k + 3], q[k + 4], q[k + 5], q[k + 6] = false, false, false, false -- they go with the job, not kept here
  return index, op, id or nil, body or nil, secrets or nil, guard or nil
end

-- Start the next queued item: its { index, job, attempt }, or nil when the
-- queue is empty.
local function take_queued(state, queue)
  local index, op, id, body, secrets, guard = dequeue(queue)
  if not index then return nil end
  return { index = index, job = calls.begin(state, op, id, body, secrets, guard), attempt = 0 }
end

-- End every queued item with a config error (message; marked stopped when
-- stopped), in input order.
local function fail_queued(queue, finish_item, message, stopped)
  while true do
    local index, op = dequeue(queue)
    if not index then return end
    local job = calls.failed(op, stopped and stopped_error(message) or errors.config(message))
    finish_item(index, job.res, job.err)
  end
end

-- ---- over curl multi -----------------------------------------------------------

-- Run the queued items over a transport with submit/wait, as the run `run`
-- (see toolzz.batch_runs). A job whose request ends (res or err) is
-- advanced: it may have another request (a patch's PUT after its GET),
-- which goes ahead of the items not yet started. stopping: nil, or a
-- function that answers true once the batch is to stop.
local function run_multi(state, transport, run, queue, concurrency, finish_item, stopping)
  local started = {}                -- index -> item, for the items started and not finished
  -- Hand a started item's end (its job's res / err) to finish_item.
  local function finish(item)
    item.finished = true
    local job = item.job
    item.job = nil -- what is left of a finished item is its result, handed to finish_item
    started[item.index] = nil
    finish_item(item.index, job.res, job.err)
  end
  -- End a started item with err (its job marks it) and hand it over.
  local function end_item(item, err)
    calls.advance(state, item.job, nil, err)
    finish(item)
  end
  -- The started items, in input order (they come before the queued ones).
  local function started_in_order()
    local list = {}
    for index in next, started do list[#list + 1] = index end
    sort(list)
    for k = 1, #list do list[k] = started[list[k]] end
    return list
  end
  -- End every started and queued item with a config error (message).
  local function fail_rest(message)
    local left = started_in_order()
    for k = 1, #left do
      if not left[k].finished then end_item(left[k], errors.config(message)) end
    end
    fail_queued(queue, finish_item, message)
  end
  local ready, ready_head, ready_tail = {}, 1, 0 -- FIFO of started items to (re)submit: a retry, a patch's PUT
  local held = nil                  -- the item taken next, when its submit had to wait
  local waiting = {}                -- items sleeping before a retry
  local in_flight = 0
  local stopped = false
  -- Queue a started item to be submitted again (a retry, its next request).
  local function push_ready(item)
    ready_tail = ready_tail + 1
    ready[ready_tail] = item
  end

  -- A started item that will not be sent again: its last attempt's error
  -- when it was waiting to retry, else "not started" / "not written".
  local function end_unsent(item)
    end_item(item, item.last_err or unsent_error(item.job))
  end
  -- The batch is to stop: end what has not been sent; cancel the reads in
  -- flight; the writes in flight run to their end.
  local function stop()
    stopped = true
    fail_queued(queue, finish_item, _M.NOT_STARTED, true)
    if held then
      local item = held
      held = nil
      end_unsent(item)
    end
    while ready_head <= ready_tail do
      local item = ready[ready_head]
      ready[ready_head] = nil
      ready_head = ready_head + 1
      end_unsent(item)
    end
    ready_head, ready_tail = 1, 0
    local sleepers = waiting
    waiting = {}
    for k = 1, #sleepers do end_unsent(sleepers[k]) end
    local left = started_in_order()
    for k = 1, #left do
      local item = left[k]
      if item.in_flight and item.job.request.method == "GET" then
        local tag = run.base + item.index
        transport:cancel(tag, tag)
        item.in_flight = false
        in_flight = in_flight - 1
        end_item(item, stopped_error(_M.CANCELLED))
      end
    end
  end
  -- Ask the batch's should_stop (once it said true, stop()); true once stopped.
  local function check_stop()
    if stopping and not stopped and stopping() then stop() end
    return stopped
  end

  -- The next item to submit: started ones first (depth first), then a
  -- queued one, unless the batch is to stop.
  local function take()
    if held then return held end
    local item
    if ready_head <= ready_tail then
      item = ready[ready_head]
      ready[ready_head] = nil
      ready_head = ready_head + 1
      if ready_head > ready_tail then ready_head, ready_tail = 1, 0 end
    elseif not check_stop() then
      item = take_queued(state, queue)
      if item then started[item.index] = item end
    end
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
          end_item(item, errors.new("network", "cannot start the transfer: " .. tostring(why),
            { attempts = item.attempt }))
        end
        break
      end
      held = nil
      item.attempt = item.attempt + 1
      item.in_flight = true
      attempts.notify_request(state, request, item.attempt)
      in_flight = in_flight + 1
    end
  end

  -- An answer (or failure) of an item's request is in: f = { tag, status,
  -- body, headers, elapsed, version } or { tag, nil, kind, message,
  -- elapsed, headers, sent } (the transport's outcome after its tag). The
  -- item retries later, goes on to its next request, or ends.
  local function settle(item, f)
    local job = item.job
    local res, err = attempts.settle(state, job.request, item.attempt, f[2], f[3], f[4], f[5], f[6])
    local wait = err and attempts.retry_delay(state, job.request, item.attempt, err, f[7])
    if wait then
      item.last_err = err
      if stopped then return end_item(item, err) end -- no retry once stopped
      item.wake = now() + wait
      waiting[#waiting + 1] = item
      return
    end
    item.last_err = nil
    calls.advance(state, job, res, err)
    if not job.request then return finish(item) end
    item.attempt = 0 -- the next request of the same call
    if stopped then return end_unsent(item) end
    push_ready(item)
  end

  while held or queue.head <= queue.n or ready_head <= ready_tail or #waiting > 0 or in_flight > 0 do
    if state.closed then -- closed from a hook: what is left fails, nothing hangs
      return fail_rest("the client was closed during the batch")
    end
    if run.abandoned then -- resumed after another batch took the transport over
      return fail_rest("the batch was abandoned: another batch started on this client while it was suspended")
    end
    check_stop()
    -- wake the retries that are due
    local t, next_wake = now(), nil
    for i = #waiting, 1, -1 do
      local w = waiting[i]
      if w.wake <= t then
        push_ready(w)
        remove(waiting, i)
      elseif not next_wake or w.wake < next_wake then
        next_wake = w.wake
      end
    end
    start_ready()
    local max_wait = next_wake and (next_wake - now()) or 1
    if stopping then max_wait = min(max_wait, STOP_POLL_SECONDS) end
    if in_flight == 0 then
      if next_wake then core.sleep(max_wait) end
    else
      local finished = transport:wait(max_wait > 0 and max_wait or 0)
      for k = 1, #finished do
        local f = finished[k]
        local item = started[f[1] - run.base] -- (only this run's tags can come back)
        if item and item.in_flight then
          item.in_flight = false
          in_flight = in_flight - 1
          settle(item, f)
        end
      end
    end
  end
end

-- ---- in turn: inside nginx, or without a multi transport -------------------------

-- Run a started item's requests one after another (a patch: its GET, then
-- its PUT), each with a single call's retries (calls.drive), and hand over
-- its end.
local function run_in_turn(state, item, finish_item, stopping)
  local job = calls.drive(state, item.job, stopping, unsent_error)
  finish_item(item.index, job.res, job.err)
end

-- Whole calls one after another until the queue is empty or the batch is
-- to stop (then the queued items end "not started" at once).
local function run_items(state, queue, finish_item, stopping)
  while true do
    if stopping and stopping() then return fail_queued(queue, finish_item, _M.NOT_STARTED, true) end
    local item = take_queued(state, queue)
    if not item then return end
    run_in_turn(state, item, finish_item, stopping)
  end
end

-- Inside nginx: light threads, each running whole calls one after another.
local function run_threads(state, queue, concurrency, finish_item, stopping)
  local ngx = rawget(_G, "ngx")
  local threads = {}
  for i = 1, concurrency < queue.n and concurrency or queue.n do
    threads[i] = ngx.thread.spawn(run_items, state, queue, finish_item, stopping)
  end
  for i = 1, #threads do ngx.thread.wait(threads[i]) end
end

-- Run the queued items (see the top of this file). Returns true, or nil,
-- message when another batch of this client is running.
function _M.drive(state, queue, concurrency, finish_item, stopping)
  local transport = transports.for_state(state)
  if transport.submit then
    local run, why = runs.claim(transport)
    if not run then return nil, why end
    local ok, failure = pcall(run_multi, state, transport, run, queue, concurrency, finish_item, stopping)
    runs.release(transport, run)
    if not ok then error(failure, 0) end -- (not from a hook: those are protected)
    return true
  end
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.thread then
    run_threads(state, queue, concurrency, finish_item, stopping)
  else
    run_items(state, queue, finish_item, stopping)
  end
  -- (only when every thread died of a Lua error: a stop empties the queue itself)
  fail_queued(queue, finish_item, "not started: the batch's light threads ended early")
  return true
end

return _M

-- toolzz.batch_runs: which batch owns which transfers of a transport.
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
local floor, next, setmetatable = math.floor, next, setmetatable
local running, status = coroutine.running, coroutine.status

local _M = {}

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
function _M.claim(transport)
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
        .. "(from one of its hooks or batch callbacks)"
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
function _M.release(transport, run)
  local reg = runs_of[transport]
  if reg and reg.live[run.id] == run then
    reg.live[run.id] = nil
    transport:cancel(run.base, run.last)
  end
end

return _M

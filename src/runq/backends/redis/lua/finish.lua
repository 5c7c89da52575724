-- finish.lua: store a RUNNING task's outcome and, in the same call, claim the next task.
-- If the task is RUNNING under the worker: set its status, result and finished time, log
-- TASK_COMPLETE (COMPLETE), TASK_CANCEL (CANCELLED) or TASK_ERROR (other), release its
-- dependants (COMPLETE) or make them IMPOSSIBLE transitively (ERROR, CANCELLED, DIED,
-- TIMEOUT, IMPOSSIBLE), and publish the finished ids on the done channel; release the next
-- task held by its duplicate policy (see _lib.lua); a task with result_ttl / failure_ttl is
-- recorded in K.expiring (expire_later). Otherwise nothing of the task is written.
-- Then, if queues are given, claim as claim.lua does; the worker ends BUSY (claimed) or IDLE
-- (unless PAUSED). A worker marked LOST or EXITED is left alone and claims nothing.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>          list  the worker's log
-- KEYS[S+2]     runq:{ns}:msg:<worker>          list  the worker's messages (no claim while one
--                                                     waits: the worker answers it first)
-- KEYS[S+3..]   queue pairs covering ARGV[10..] and the queues of released dependants
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] task id          ARGV[5] the new status
-- ARGV[6]      '1' if a result is given, else '0'          ARGV[7] the result bytes
-- ARGV[8]      pid (for the claim)
-- ARGV[9]      number of queues to claim from              ARGV[10..] their names, in priority
-- then         the task's field in K.task (keys.task_field: the caller packs it, which costs a
--              script more than the caller; task_key(id) when absent)
-- Answers {1 or 0 (finished or not), id, queue, payload, options, attempt} (the last five only
-- when a task was claimed), or {{'NEEDQ', name, ...}}. A task of a named limit wakes a worker of the queue of the oldest task set aside under that limit
-- (its concurrency slot is free now).

local wid, id, status = ARGV[3], ARGV[4], ARGV[5]
local logkey = KEYS[NSTATIC + 1]
local qmap = queue_map(NSTATIC + 3)
local names = {}
for i = 1, tonumber(ARGV[9]) do names[i] = ARGV[9 + i] end
local missing = need_queues(qmap, names)
if missing then return missing end

local ok = redis.call('HGET', K.status, id) == 'RUNNING'
  and redis.call('HGET', K.worker, id) == wid
local children = {}
local dedup = nil
if ok then
  children = dependants_of({id})
  if status == 'COMPLETE' and #children > 0 then
    missing = need_queues(qmap, release_queues(children))
    if missing then return missing end
  end
  dedup = dedup_plan({id})
  missing = need_queues(qmap, dedup_queues(dedup))
  if missing then return missing end
end
local rec_key = ARGV[10 + #names] or task_key(id)
-- read once: limits and expiry look at them
local opts = ok and options_in(redis.call('HGET', K.task, rec_key)) or nil
local limit_wake = ok and limit_wake_queue(id, opts) or nil
if limit_wake then
  missing = need_queues(qmap, {limit_wake})
  if missing then return missing end
end

local t = now()
local logs = {}
if ok then
  redis.call('HSET', K.status, id, status)
  redis.call('HSET', K.finished, id, t)
  if ARGV[6] == '1' then redis.call('HSET', K.result, id, ARGV[7]) end
  expire_later(id, status, t, opts)
  -- the duplicate it held back first, then its dependants: both were submitted after it, the
  -- held one queued earlier (it was only waiting for this one); SQLite releases in this order
  dedup_apply(dedup, qmap)
  local announced = {id .. '\t' .. status}  -- with its status: the waiter need not read it
  if status == 'COMPLETE' then
    release(children, qmap)
    logs[1] = log_entry(t, 'TASK_COMPLETE', id)
  else
    if FAILED[status] then make_impossible(children, t, announced) end
    logs[1] = log_entry(t, status == 'CANCELLED' and 'TASK_CANCEL' or 'TASK_ERROR', id)
  end
  redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n'))
  if limit_wake then wake(qmap[limit_wake][2], 1) end
end

local reply = {ok and 1 or 0}
local wstatus = redis.call('HGET', K.w_status, wid)
if wstatus == 'LOST' or wstatus == 'EXITED' then return reply end
local task = nil
if #names > 0 and redis.call('LLEN', KEYS[NSTATIC + 2]) == 0 then
  task = claim_task(qmap, names, wid, ARGV[8], t)
end
local still = false
if redis.call('HGET', K.w_task, wid) == id then  -- the usual case: one task at a time
  if task then redis.call('HSET', K.w_task, wid, task[1])
  else redis.call('HDEL', K.w_task, wid) end
else
  still = unhold(wid, id)  -- a worker with concurrency > 1 may run other tasks
  if task then hold(wid, task[1]) end
end
if task then
  if wstatus ~= 'BUSY' then redis.call('HSET', K.w_status, wid, 'BUSY') end
  logs[#logs + 1] = log_entry(t, 'TASK_START', task[1])
  for i = 1, 5 do reply[i + 1] = task[i] end
elseif not still and wstatus == 'BUSY' then
  redis.call('HSET', K.w_status, wid, 'IDLE')
end
if #logs > 0 then
  redis.call('HSET', K.w_last_seen, wid, t)
  append_log(logkey, unpack(logs))
end
return reply

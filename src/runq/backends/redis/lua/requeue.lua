-- requeue.lua: give back a RUNNING task held by a worker: it becomes PENDING at the HEAD of
-- its queue (started time, worker and pid cleared; the attempt is not counted), one wake token
-- is pushed, the worker becomes IDLE and logs TASK_REQUEUE. Changes nothing if the worker does
-- not hold the task.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>          list  the worker's log
-- KEYS[S+2..]   queue pairs, which must cover the task's queue
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] task id
-- Answers 1 (requeued), 0 (not held by the worker) or {{'NEEDQ', name}}.

local wid, id = ARGV[3], ARGV[4]
if redis.call('HGET', K.status, id) ~= 'RUNNING' or redis.call('HGET', K.worker, id) ~= wid then
  return 0
end
local qmap = queue_map(NSTATIC + 2)
local name = queue_of(id)
local missing = need_queues(qmap, {name})
if missing then return missing end
local t = now()
set_pending(id)
redis.call('HDEL', K.started, id)
redis.call('HDEL', K.worker, id)
redis.call('HDEL', K.pid, id)
redis.call('HINCRBY', K.attempt, id, -1)
redis.call('LPUSH', qmap[name][1], id)
wake(qmap[name][2], 1)
if not unhold(wid, id) and redis.call('HGET', K.w_status, wid) == 'BUSY' then
  redis.call('HSET', K.w_status, wid, 'IDLE')
end
redis.call('HSET', K.w_last_seen, wid, t)
append_log(KEYS[NSTATIC + 1], log_entry(t, 'TASK_REQUEUE', id))
return 1

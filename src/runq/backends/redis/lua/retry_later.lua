-- retry_later.lua: a RUNNING task held by the worker waits for a delayed retry: it
-- becomes PENDING outside any queue with its due time in the delayed zset, keeps `result` as
-- its last error; the worker becomes IDLE (unless PAUSED) and logs TASK_RETRY.
--
-- KEYS  the static keys, then the recovery keys (the log is the worker's)
-- ARGV[3] worker id   ARGV[4] task id   ARGV[5] delay in seconds   ARGV[6] result bytes
-- Answers 1, or 0 if the worker does not hold the task.

local wid, id = ARGV[3], ARGV[4]
if redis.call('HGET', K.status, id) ~= 'RUNNING' or redis.call('HGET', K.worker, id) ~= wid then
  return 0
end
local t = now()
set_pending(id)
redis.call('HDEL', K.started, id)
redis.call('HDEL', K.worker, id)
redis.call('HDEL', K.pid, id)
redis.call('HSET', K.result, id, ARGV[6])
redis.call('ZADD', F.delayed, tonumber(t) + tonumber(ARGV[5]), id)
if not unhold(wid, id) and redis.call('HGET', K.w_status, wid) == 'BUSY' then
  redis.call('HSET', K.w_status, wid, 'IDLE')
end
redis.call('HSET', K.w_last_seen, wid, t)
append_log(F.log, log_entry(t, 'TASK_RETRY', id))
return 1

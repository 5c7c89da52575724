-- worker_log.lua: append one event to a worker's log and refresh its last-seen time; with
-- ARGV[6] = '1' (worker_exit) the worker also becomes EXITED and drops its current task.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>          list  the worker's log
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] command          ARGV[5] message
-- ARGV[6]      '1' to mark the worker EXITED, else '0'
-- Answers the log's length.

local wid = ARGV[3]
local t = now()
if ARGV[6] == '1' then
  redis.call('HSET', K.w_status, wid, 'EXITED')
  redis.call('HDEL', K.w_task, wid)
end
redis.call('HSET', K.w_last_seen, wid, t)
return append_log(KEYS[NSTATIC + 1], log_entry(t, ARGV[4], ARGV[5]))

-- release_worker.lua: a worker leaves (LOST or EXITED) and its running task is re-queued at
-- the head of its queue (retries left: same id, the attempt stays counted) or becomes DIED
-- (dependants IMPOSSIBLE, published). Logs TASK_REQUEUE / TASK_DIED and the status.
-- In 'lapsed' mode only an active worker whose heartbeat deadline has passed is released
-- (detect_lost); a lapsed deadline of a worker that is no longer active is just removed.
--
-- KEYS  the static keys, the recovery keys (the log is the worker's), then queue pairs
-- ARGV[3] worker id      ARGV[4] 'LOST' or 'EXITED'      ARGV[5] message
-- ARGV[6] '1' for 'lapsed' mode, else '0'
-- Answers {1, released task id or ''}, {0, ''} when nothing was done, or {{'NEEDQ', ...}}.

local wid, status, message = ARGV[3], ARGV[4], ARGV[5]
local t = now()
if not ACTIVE[redis.call('HGET', K.w_status, wid) or ''] then
  if ARGV[6] == '1' then redis.call('ZREM', F.hb, wid) end
  return {0, ''}
end
if ARGV[6] == '1' then
  local deadline = redis.call('ZSCORE', F.hb, wid)
  if not deadline or tonumber(deadline) > tonumber(t) then return {0, ''} end
end
local qmap = queue_map(FQUEUES)
local missing = need_queues(qmap, release_queues(wid))
if missing then return missing end
return {1, release_worker(wid, status, message, qmap, t)}

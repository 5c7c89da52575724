-- heartbeat.lua: refresh a worker's heartbeat and read the controller's requests to it.
-- An active worker with a ttl gets the deadline now + ttl and its last-seen time refreshed.
-- A cancel request for a task the worker no longer runs is dropped; of the others (a worker
-- with concurrency > 1 may be asked to stop several), the oldest is answered.
--
-- KEYS  the static keys, then the recovery keys (see _recovery_lib.lua; the log is the worker's)
-- ARGV[3] worker id      ARGV[4] ttl in seconds, or '' to only read
-- Answers {active 1/0, kill 1/0, id of the task to cancel or '', known 1/0}: known is 0 when
-- the worker has no record at all (namespace destroyed, worker deleted), 1 even once it is
-- LOST or EXITED.

local wid, ttl = ARGV[3], ARGV[4]
local wstatus = redis.call('HGET', K.w_status, wid)
local active = ACTIVE[wstatus or ''] or false
if active and ttl ~= '' then
  local t = now()
  redis.call('ZADD', F.hb, tonumber(t) + tonumber(ttl), wid)
  redis.call('HSET', K.w_last_seen, wid, t)
end
local kill = redis.call('HGET', F.kill, wid)
-- F.cancel: the ids of the worker's tasks to stop, joined by '\n' (request.lua appends)
local raw = redis.call('HGET', F.cancel, wid)
local cancel = nil
if raw then
  local held, seen = {}, {}
  for _, x in ipairs(id_list(raw)) do
    if not seen[x] and redis.call('HGET', K.status, x) == 'RUNNING'
        and redis.call('HGET', K.worker, x) == wid then
      held[#held + 1] = x
    end
    seen[x] = true
  end
  cancel = held[1]
  local kept = table.concat(held, '\n')
  if kept == '' then
    redis.call('HDEL', F.cancel, wid)
  elseif kept ~= raw then
    redis.call('HSET', F.cancel, wid, kept)
  end
end
return {active and 1 or 0, kill and 1 or 0, cancel or '', wstatus and 1 or 0}

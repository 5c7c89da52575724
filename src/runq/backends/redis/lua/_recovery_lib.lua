-- _recovery_lib.lua: the keys and helpers of the scripts that recover from faults, joined
-- after _lib.lua: liveness (heartbeat.lua, release_worker.lua, request.lua) and retries
-- (retry_later.lua, promote_due.lua, retry_tasks.lua).
--
-- Every recovery script receives, after the static keys (see _lib.lua), the recovery keys
-- (keys.RECOVERY_FIELDS, then the log key: keys.NamespaceKeys.recovery):
--   KEYS[NSTATIC+1] runq:{ns}:hb            zset  worker id -> heartbeat deadline (time)
--   KEYS[NSTATIC+2] runq:{ns}:w:kill        hash  worker id -> '1': asked to exit at once
--   KEYS[NSTATIC+3] runq:{ns}:w:cancel      hash  worker id -> task id it is asked to stop
--   KEYS[NSTATIC+4] runq:{ns}:delayed       zset  task id -> due time of its next attempt
--   KEYS[NSTATIC+5] runq:{ns}:moved_to      hash  task id -> the id it was retried as
--   KEYS[NSTATIC+6] runq:{ns}:moved_from    hash  task id -> the id it is a retry of
--   KEYS[NSTATIC+7] runq:{ns}:log:<worker>  list  the log of the worker concerned (or any key
--                                                 of the namespace when none is)
-- then queue pairs (runq:{ns}:q:<name>, runq:{ns}:wake:q:<name>).

local F = {
  hb = KEYS[NSTATIC + 1], kill = KEYS[NSTATIC + 2], cancel = KEYS[NSTATIC + 3],
  delayed = KEYS[NSTATIC + 4], moved_to = KEYS[NSTATIC + 5], moved_from = KEYS[NSTATIC + 6],
  log = KEYS[NSTATIC + 7],
}
local FQUEUES = NSTATIC + 8
local ACTIVE = {IDLE = true, BUSY = true, PAUSED = true}
local FINISHED = {
  COMPLETE = true, ERROR = true, CANCELLED = true, DIED = true, TIMEOUT = true,
  IMPOSSIBLE = true, MOVED = true, DISCARDED = true,
}

-- the tasks `wid` runs (RUNNING under it), oldest claim first
local function held_tasks(wid)
  local out = {}
  for _, id in ipairs(id_list(redis.call('HGET', K.w_task, wid))) do
    if redis.call('HGET', K.status, id) == 'RUNNING' and redis.call('HGET', K.worker, id) == wid then
      out[#out + 1] = id
    end
  end
  return out
end

-- whether task `id` has retries left (its attempt counts the claims so far)
local function retries_left(id)
  local ok, opts = pcall(cjson.decode, options_of(id) or '{}')
  local retries = ok and tonumber(opts['retries']) or 0
  return tonumber(redis.call('HGET', K.attempt, id) or '0') <= (retries or 0)
end

-- the queues release_worker would push to (read only)
local function release_queues(wid)
  local out = {}
  for _, id in ipairs(held_tasks(wid)) do
    if retries_left(id) then out[#out + 1] = queue_of(id) end
  end
  return out
end

-- the worker leaves with `status`; each task it runs (several with concurrency > 1) is
-- re-queued at the head of its queue (retries left) or DIED; answers the first id ('' if none)
local function release_worker(wid, status, message, qmap, t)
  local held = held_tasks(wid)
  local logs = {}
  for i = #held, 1, -1 do  -- the oldest ends at the head
    local id = held[i]
    if retries_left(id) then
      local name = queue_of(id)
      set_pending(id)
      redis.call('HDEL', K.started, id)
      redis.call('HDEL', K.worker, id)
      redis.call('HDEL', K.pid, id)
      redis.call('LPUSH', qmap[name][1], id)
      wake(qmap[name][2], 1)
      logs[#logs + 1] = log_entry(t, 'TASK_REQUEUE', id)
    else
      redis.call('HSET', K.status, id, 'DIED')
      redis.call('HSET', K.finished, id, t)
      local announced = {id .. '\tDIED'}
      make_impossible(dependants_of({id}), t, announced)
      redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n'))
      logs[#logs + 1] = log_entry(t, 'TASK_DIED', id)
    end
  end
  logs[#logs + 1] = log_entry(t, status, message)
  redis.call('HSET', K.w_status, wid, status)
  redis.call('HDEL', K.w_task, wid)
  redis.call('HSET', K.w_last_seen, wid, t)
  redis.call('ZREM', F.hb, wid)
  redis.call('HDEL', F.kill, wid)
  redis.call('HDEL', F.cancel, wid)
  append_log(F.log, unpack(logs))
  return held[1] or ''
end

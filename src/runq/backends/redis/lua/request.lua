-- request.lua: the controller asks workers something through their heartbeat channel.
--   mode 'cancel': ARGV[4] a task id; if it is RUNNING, its worker is asked to stop it.
--                  Answers {the task's status ('MISSING' if unknown), the id of the worker
--                  asked, or ''}.
--   mode 'kill':   ARGV[4..] worker ids; each active one is asked to exit at once. Answers
--                  the ids of the workers asked.
-- The caller then wakes the control thread of each worker asked (its wake:c:<worker> list).
--
-- KEYS  the static keys, then the recovery keys (see _recovery_lib.lua)
-- ARGV[3] 'cancel' or 'kill'

if ARGV[3] == 'cancel' then
  local id = ARGV[4]
  local st = status_of(id)
  if st == 'RUNNING' then  -- appended: a worker may be asked to stop several tasks
    local wid = redis.call('HGET', K.worker, id)
    local cur = redis.call('HGET', F.cancel, wid)
    redis.call('HSET', F.cancel, wid, (cur and cur ~= '') and (cur .. '\n' .. id) or id)
    return {st, wid}
  end
  return {st or 'MISSING', ''}
end
local asked = {}
for i = 4, #ARGV do
  if ACTIVE[redis.call('HGET', K.w_status, ARGV[i]) or ''] then
    redis.call('HSET', F.kill, ARGV[i], '1')
    asked[#asked + 1] = ARGV[i]
  end
end
return asked

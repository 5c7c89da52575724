-- duty_lease.lua: take or renew the namespace's duty lease (whoever holds it does the shared
-- timed duties: lost workers, due tasks, schedules). Granted to an active worker when no one
-- holds it (the key expired) or it holds it already; a ttl of 0 gives it up.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]   runq:{ns}:duty   string  the holder's worker id, expiring with the lease
-- ARGV[3] worker id      ARGV[4] the lease in milliseconds (an integer; 0: give it up)
-- Answers 1 if the worker holds the lease now, else 0.

local ACTIVE = {IDLE = true, BUSY = true, PAUSED = true}
local key, wid, ms = KEYS[NSTATIC + 1], ARGV[3], tonumber(ARGV[4])
local holder = redis.call('GET', key)
if holder and holder ~= wid then return 0 end
if ms <= 0 or not ACTIVE[redis.call('HGET', K.w_status, wid) or ''] then
  if holder then redis.call('DEL', key) end
  return 0
end
redis.call('SET', key, wid, 'PX', ms)
return 1

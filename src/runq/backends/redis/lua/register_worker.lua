-- register_worker.lua: record a new worker as IDLE with its info and log ALIVE, unless an
-- active (IDLE, BUSY or PAUSED) worker already has the id.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>          list  the worker's log
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] info JSON
-- Answers 1, or {{'ACTIVE', worker id}}.

local wid = ARGV[3]
local st = redis.call('HGET', K.w_status, wid)
if st == 'IDLE' or st == 'BUSY' or st == 'PAUSED' then return fail('ACTIVE', wid) end
local t = now()
redis.call('HSET', K.w_status, wid, 'IDLE')
redis.call('HSET', K.w_info, wid, ARGV[4])
redis.call('HSET', K.w_started, wid, t)
redis.call('HSET', K.w_last_seen, wid, t)
redis.call('HDEL', K.w_task, wid)
append_log(KEYS[NSTATIC + 1], log_entry(t, 'ALIVE', ''))
return 1

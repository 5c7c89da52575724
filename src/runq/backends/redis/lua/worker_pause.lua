-- worker_pause.lua: an active worker becomes PAUSED (ARGV[4] = '1') or IDLE (RESUME); logs
-- PAUSE / RESUME. Exited or lost workers are left as they are.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>           list  the worker's log
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] '1' pause, '0' resume
-- Answers 1 if the worker changed, else 0.

local wid = ARGV[3]
local st = redis.call('HGET', K.w_status, wid)
if st ~= 'IDLE' and st ~= 'BUSY' and st ~= 'PAUSED' then return 0 end
local t = now()
local paused = ARGV[4] == '1'
redis.call('HSET', K.w_status, wid, paused and 'PAUSED' or 'IDLE')
redis.call('HSET', K.w_last_seen, wid, t)
append_log(KEYS[NSTATIC + 1], log_entry(t, paused and 'PAUSE' or 'RESUME', ''))
return 1

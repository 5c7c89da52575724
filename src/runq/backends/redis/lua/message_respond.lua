-- message_respond.lua: store a worker's response to a message, log RESPONSE, and wake the
-- controllers waiting for responses to it.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>           list  the worker's log
-- KEYS[S+2]     runq:{ns}:resp:<worker>          hash  message id -> response
-- KEYS[S+3]     runq:{ns}:wake:r:<message>       list  wake tokens (expire after an hour)
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id          ARGV[4] message id
-- ARGV[5]      command            ARGV[6] the sealed response
-- Answers 1.

local t = now()
redis.call('HSET', KEYS[NSTATIC + 2], ARGV[4], ARGV[6])
wake(KEYS[NSTATIC + 3], 1)
redis.call('EXPIRE', KEYS[NSTATIC + 3], 3600)
append_log(KEYS[NSTATIC + 1], log_entry(t, 'RESPONSE', ARGV[5] .. ' ' .. ARGV[4]))
redis.call('HSET', K.w_last_seen, ARGV[3], t)
return 1

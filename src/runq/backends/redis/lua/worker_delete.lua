-- worker_delete.lua: forget EXITED or LOST workers: their records, log, messages, responses and
-- wake tokens. Active workers are left alone.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..]   quads (log:<w> list, msg:<w> list, resp:<w> hash, wake:w:<w> list), ARGV[3..]
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3..]    worker ids
-- Answers the ids forgotten.

local out = {}
for i = 3, #ARGV do
  local wid = ARGV[i]
  local st = redis.call('HGET', K.w_status, wid)
  if st == 'EXITED' or st == 'LOST' then
    for _, key in ipairs({K.w_status, K.w_task, K.w_info, K.w_started, K.w_last_seen}) do
      redis.call('HDEL', key, wid)
    end
    local k = NSTATIC + 4 * (i - 3)
    redis.call('DEL', KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4])
    out[#out + 1] = wid
  end
end
return out

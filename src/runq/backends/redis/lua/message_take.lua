-- message_take.lua: remove and answer every message waiting for a worker, oldest first; log
-- MESSAGE for each and drop the worker's wake tokens (they announced these messages).
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1]     runq:{ns}:log:<worker>           list  the worker's log
-- KEYS[S+2]     runq:{ns}:msg:<worker>           list  its messages
-- KEYS[S+3]     runq:{ns}:wake:w:<worker>        list  its wake tokens
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      worker id
-- Answers the entries, each 'id\ncommand\n<args bytes>'.

local entries = redis.call('LRANGE', KEYS[NSTATIC + 2], 0, -1)
redis.call('DEL', KEYS[NSTATIC + 2], KEYS[NSTATIC + 3])
if #entries == 0 then return entries end
local t = now()
local logs = {}
for i, e in ipairs(entries) do
  local a = string.find(e, '\n', 1, true)
  local b = string.find(e, '\n', a + 1, true)
  logs[i] = log_entry(t, 'MESSAGE', string.sub(e, a + 1, b - 1) .. ' ' .. string.sub(e, 1, a - 1))
end
append_log(KEYS[NSTATIC + 1], unpack(logs))
redis.call('HSET', K.w_last_seen, ARGV[3], t)
return entries

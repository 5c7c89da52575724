-- promote_due.lua: every delayed task that is due goes to the head of its queue (the
-- earliest due first) with a wake token; entries of tasks that are no longer PENDING (cancelled
-- or deleted meanwhile) are dropped.
--
-- KEYS  the static keys, the recovery keys, then queue pairs covering the due tasks' queues
-- Answers {next due time as a string, or ''} or {{'NEEDQ', ...}}.

local t = now()
local due = redis.call('ZRANGEBYSCORE', F.delayed, '-inf', t, 'LIMIT', 0, 1000)
local qmap = queue_map(FQUEUES)
local names, live = {}, {}
for _, id in ipairs(due) do
  if redis.call('HGET', K.status, id) == 'PENDING' then
    live[#live + 1] = id
    names[#names + 1] = redis.call('HGET', K.queue, id)
  end
end
local missing = need_queues(qmap, names)
if missing then return missing end
if #due > 0 then chunked('ZREM', F.delayed, due) end
for i = #live, 1, -1 do
  redis.call('LPUSH', qmap[names[i]][1], live[i])
  wake(qmap[names[i]][2], 1)
end
local nxt = redis.call('ZRANGE', F.delayed, 0, 0, 'WITHSCORES')
return {nxt[2] or ''}

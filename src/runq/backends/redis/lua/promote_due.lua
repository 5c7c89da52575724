-- promote_due.lua: move the delayed tasks that are due (at most 1,000, the earliest due
-- first): a delayed retry (PENDING) goes to the HEAD of its queue; a SCHEDULED task becomes
-- IMPOSSIBLE (its dependants too, announced) if a dependency failed, DEFERRED (`waiting` counts
-- the open dependencies) if one is not yet COMPLETE, else PENDING at the TAIL of its queue
-- (a deleted dependency counts as COMPLETE). Pushes come with wake tokens. Entries of tasks
-- in any other status (cancelled, deleted, made IMPOSSIBLE meanwhile) are dropped.
--
-- KEYS  the static keys, the recovery keys, then queue pairs covering the due tasks' queues
-- Answers {next due time as a string, or ''} or {{'NEEDQ', ...}}.

local t = now()
local due = redis.call('ZRANGEBYSCORE', F.delayed, '-inf', t, 'LIMIT', 0, 1000)
local qmap = queue_map(FQUEUES)
local names, heads, tails, ready = {}, {}, {}, {}
local statuses = statuses_of(due)
local deps = hmget(K.deps, due)
for i, id in ipairs(due) do
  local st = statuses[i]
  if st == 'PENDING' then
    heads[#heads + 1] = id
    names[#names + 1] = queue_of(id)
  elseif st == 'SCHEDULED' then
    local failed, open = false, 0
    local dlist = id_list(deps[i])
    local dst = #dlist > 0 and statuses_of(dlist) or {}
    for j = 1, #dlist do
      local s = dst[j]
      if s and FAILED[s] then failed = true elseif s and s ~= 'COMPLETE' then open = open + 1 end
    end
    ready[id] = failed and 'IMPOSSIBLE' or (open > 0 and open) or 'PENDING'
    if ready[id] == 'PENDING' then
      tails[#tails + 1] = id
      names[#names + 1] = queue_of(id)
    end
  end
end
local missing = need_queues(qmap, names)
if missing then return missing end
if #due > 0 then chunked('ZREM', F.delayed, due) end
local announced = {}
for _, id in ipairs(due) do
  local r = ready[id]
  if r == 'IMPOSSIBLE' then
    redis.call('HSET', K.status, id, 'IMPOSSIBLE')
    redis.call('HSET', K.finished, id, t)
    redis.call('HDEL', K.waiting, id)
    announced[#announced + 1] = id .. '\tIMPOSSIBLE'
    make_impossible(dependants_of({id}), t, announced)
  elseif r == 'PENDING' then
    set_pending(id)
    redis.call('HDEL', K.waiting, id)
  elseif r then
    redis.call('HSET', K.status, id, 'DEFERRED')
    redis.call('HSET', K.waiting, id, r)
  end
end
if #announced > 0 then redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n')) end
for i = #heads, 1, -1 do
  local name = queue_of(heads[i])
  redis.call('LPUSH', qmap[name][1], heads[i])
  wake(qmap[name][2], 1)
end
for _, id in ipairs(tails) do
  local name = queue_of(id)
  redis.call('RPUSH', qmap[name][1], id)
  wake(qmap[name][2], 1)
end
local nxt = redis.call('ZRANGE', F.delayed, 0, 0, 'WITHSCORES')
return {nxt[2] or ''}

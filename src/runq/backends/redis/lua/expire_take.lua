-- expire_take.lua: take the finished tasks whose expiry time has come (at most ARGV[3], the
-- earliest first), for the caller to delete them (delete.lua, which drops their entries). A
-- task taken gets a lease (its entry is pushed ARGV[4] seconds on), so a caller that dies
-- before deleting leaves it to a later sweep; a task with a dependant that has not started
-- (PENDING, DEFERRED, SCHEDULED) waits ARGV[5] seconds more; an entry without a task is
-- dropped.
--
-- KEYS  the static keys (see _lib.lua)
-- Answers {the next expiry time as a string, or '', then the ids taken}.

local t = now()
local tn = tonumber(t)
local due = redis.call('ZRANGEBYSCORE', K.expiring, '-inf', t, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {''}
local UNSTARTED = {PENDING = true, DEFERRED = true, SCHEDULED = true}
for _, id in ipairs(due) do
  if not redis.call('HGET', K.status, id) then  -- a finished task's status is stored
    redis.call('ZREM', K.expiring, id)
  else
    local waiting = false
    for _, d in ipairs(dependants_of({id})) do
      if UNSTARTED[status_of(d) or ''] then
        waiting = true
        break
      end
    end
    if waiting then
      redis.call('ZADD', K.expiring, tn + tonumber(ARGV[5]), id)
    else
      redis.call('ZADD', K.expiring, tn + tonumber(ARGV[4]), id)
      out[#out + 1] = id
    end
  end
end
local nxt = redis.call('ZRANGE', K.expiring, 0, 0, 'WITHSCORES')
out[1] = nxt[2] or ''
return out

-- dedup_enqueue.lua: enqueue (as enqueue.lua) a batch holding tasks under a duplicate policy
-- (on_duplicate other than parallel). No task of the batch has dependencies. Each task with a
-- duplicate key is admitted against that key's active tasks (K.dedup_active, see _lib.lua),
-- in batch order:
--   discard    none active: PENDING, joins;   some active: DISCARDED (finished, never run)
--   serial     none active: PENDING, joins;   some active: DEFERRED, joins (held)
--   queue_one  none active: PENDING, joins;   one: DEFERRED, joins;  more: DISCARDED
-- Tasks without a key are PENDING. DISCARDED ids are published on the done channel.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..]   queue pairs for every queue of the batch
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      number of tasks n
-- ARGV[4..]    6 values per task: id, queue name, options JSON, payload, duplicate key ('' for
--              none), policy
-- Answers the n statuses, or {{'DUPLICATE', id}}, {{'EXISTS', id}}, {{'NEEDQ', name, ...}}.

local n = tonumber(ARGV[3])
local function arg(i, field) return ARGV[3 + (i - 1) * 6 + field] end

local qmap = queue_map(NSTATIC + 1)
local ids, names, index = {}, {}, {}
for i = 1, n do
  local id = arg(i, 1)
  if index[id] then return fail('DUPLICATE', id) end
  index[id] = true
  ids[i], names[i] = id, arg(i, 2)
end
local missing = need_queues(qmap, names)
if missing then return missing end
local existing = hmget(K.status, ids)
for i = 1, n do
  if existing[i] then return fail('EXISTS', ids[i]) end
end

local t = now()
local seq = redis.call('INCRBY', K.seq, n) - n
local lists, touched, out, announced, seen = {}, {}, {}, {}, {}
for i = 1, n do
  local id, name, key, policy, st = ids[i], names[i], arg(i, 5), arg(i, 6), 'PENDING'
  if key ~= '' then
    local list = lists[key]
    if not list then
      list = id_list(redis.call('HGET', K.dedup_active, key))
      lists[key] = list
      touched[#touched + 1] = key
    end
    local busy = #list
    if busy > 0 and (policy == 'discard' or (policy == 'queue_one' and busy >= 2)) then
      st = 'DISCARDED'
    elseif busy > 0 then
      st = 'DEFERRED'
    end
    if st ~= 'DISCARDED' then
      list[busy + 1] = id
      redis.call('HSET', K.dedup, id, key)
    end
  end
  out[i] = st
  redis.call('HSET', K.status, id, st)
  redis.call('HSET', K.queue, id, name)
  redis.call('HSET', K.options, id, arg(i, 3))
  redis.call('HSET', K.payload, id, arg(i, 4))
  redis.call('HSET', K.submitted, id, t)
  redis.call('ZADD', K.order, seq + i, id)
  if st == 'DISCARDED' then
    redis.call('HSET', K.finished, id, t)
    announced[#announced + 1] = id
  elseif st == 'PENDING' then
    redis.call('RPUSH', qmap[name][1], id)
    wake(qmap[name][2], 1)
  end
  if not seen[name] then
    seen[name] = true
    redis.call('SADD', K.queues, name)
  end
end
for _, key in ipairs(touched) do
  if #lists[key] > 0 then
    redis.call('HSET', K.dedup_active, key, table.concat(lists[key], '\n'))
  end
end
if #announced > 0 then redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n')) end
return out

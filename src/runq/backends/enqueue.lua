-- enqueue.lua: store new tasks, all or none, and answer each one's initial status.
-- Each task gets its submitted time and a place in the submission order, and becomes
-- IMPOSSIBLE (a dependency failed; finished time set), DEFERRED (a dependency is not yet
-- COMPLETE; `waiting` counts those) or PENDING (pushed to the tail of its queue, batch order
-- kept, one wake token per task). Every task is recorded as a dependant of each dependency.
-- A dependency may name an earlier task of the batch. Everything is validated before the
-- first write.
--
-- The tasks' object-store values (large arguments) are stored and tagged with their task ids
-- in the same call (see _store_lib.lua).
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..S+5] the store keys (see _store_lib.lua)
-- KEYS[S+6..]   pairs (runq:{ns}:q:<name>, runq:{ns}:wake:q:<name>) for every queue of the batch
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      number of tasks n
-- ARGV[4..]    5 values per task: id, queue name, options JSON, payload, dependency ids
--              joined by '\n' ('' for none)
-- then         m, the number of distinct values, and m triples (hash, kind, bytes or size)
--              with kind 'b' (bytes), 'o' (offloaded) or 'k' (known to be stored: no bytes)
-- then         t, the number of tasks with values, and t pairs (task id, hashes joined by '\n')
-- Answers the n statuses, or {{'DUPLICATE', id}} (twice in the batch), {{'EXISTS', id}},
-- {{'UNKNOWN', dependency id}}, {{'NEEDQ', name, ...}}, {{'NEEDBLOB', hash}} (a value sent as
-- known is not stored: send it again with its bytes).

local n = tonumber(ARGV[3])
local function arg(i, field) return ARGV[3 + (i - 1) * 5 + field] end

-- the batch's ids and queue names, or an error answer
local function read_batch(qmap)
  local ids, index, names = {}, {}, {}
  for i = 1, n do
    local id = arg(i, 1)
    if index[id] then return nil, nil, fail('DUPLICATE', id) end
    index[id] = true
    ids[i], names[i] = id, arg(i, 2)
  end
  local missing = need_queues(qmap, names)
  if missing then return nil, nil, missing end
  local existing = hmget(K.status, ids)
  for i = 1, n do
    if existing[i] then return nil, nil, fail('EXISTS', ids[i]) end
  end
  return ids, names, nil
end

-- each task's status from its dependencies (no write); `plan` collects what to write
local function decide(ids, plan)
  local statuses = {}
  for i = 1, n do
    local id, raw, st = ids[i], arg(i, 5), 'PENDING'
    if raw ~= '' then
      local uniq, seen, open, failed = {}, {}, 0, false
      for _, d in ipairs(id_list(raw)) do
        if not seen[d] then
          seen[d] = true
          uniq[#uniq + 1] = d
          local ds = statuses[d] or redis.call('HGET', K.status, d)
          if not ds then return fail('UNKNOWN', d) end
          if FAILED[ds] then failed = true elseif ds ~= 'COMPLETE' then open = open + 1 end
          if not plan.parents[d] then
            plan.parents[d] = {}
            plan.parent_order[#plan.parent_order + 1] = d
          end
          table.insert(plan.parents[d], id)
        end
      end
      if #uniq > 0 then
        table.insert(plan.deps, id)
        table.insert(plan.deps, table.concat(uniq, '\n'))
      end
      if failed then
        st = 'IMPOSSIBLE'
      elseif open > 0 then
        st = 'DEFERRED'
        table.insert(plan.waiting, id)
        table.insert(plan.waiting, open)
      end
    end
    statuses[id] = st
    plan.out[i] = st
  end
  return nil
end

-- the per-task hash fields, queue pushes and submission order of the batch
local function write_tasks(ids, names, plan, t)
  local seq = redis.call('INCRBY', K.seq, n) - n
  local h = {status = {}, queue = {}, options = {}, payload = {}, submitted = {}, finished = {}}
  local order, pushes, push_names = {}, {}, {}
  for i = 1, n do
    local id, name, st, j = ids[i], names[i], plan.out[i], 2 * i
    h.status[j - 1], h.status[j] = id, st
    h.queue[j - 1], h.queue[j] = id, name
    h.options[j - 1], h.options[j] = id, arg(i, 3)
    h.payload[j - 1], h.payload[j] = id, arg(i, 4)
    h.submitted[j - 1], h.submitted[j] = id, t
    order[j - 1], order[j] = seq + i, id
    if st == 'PENDING' then
      if not pushes[name] then
        pushes[name] = {}
        push_names[#push_names + 1] = name
      end
      table.insert(pushes[name], id)
    elseif st == 'IMPOSSIBLE' then
      table.insert(h.finished, id)
      table.insert(h.finished, t)
    end
  end
  for field, values in pairs(h) do chunked('HSET', K[field], values) end
  chunked('ZADD', K.order, order)
  return pushes, push_names
end

local S = store_keys(NSTATIC + 1)
local qmap = queue_map(NSTATIC + 1 + NSTORE)
local ids, names, err = read_batch(qmap)
if err then return err end
local blobs_at = 4 + 5 * n
local nblobs = tonumber(ARGV[blobs_at])
local tags_at = blobs_at + 1 + 3 * nblobs
local absent = store_missing(S, blobs_at + 1, nblobs)
if absent then return fail('NEEDBLOB', absent) end
local plan = {out = {}, parents = {}, parent_order = {}, deps = {}, waiting = {}}
err = decide(ids, plan)
if err then return err end

local pushes, push_names = write_tasks(ids, names, plan, now())
store_write(S, blobs_at + 1, nblobs)
for i = 0, tonumber(ARGV[tags_at]) - 1 do
  store_tag(S, ARGV[tags_at + 1 + 2 * i], id_list(ARGV[tags_at + 2 + 2 * i]))
end
chunked('HSET', K.waiting, plan.waiting)
chunked('HSET', K.deps, plan.deps)
for _, d in ipairs(plan.parent_order) do
  add_dependants(d, plan.parents[d])
end
local distinct, seen = {}, {}
for _, name in ipairs(names) do
  if not seen[name] then
    seen[name] = true
    distinct[#distinct + 1] = name
  end
end
chunked('SADD', K.queues, distinct)
for _, name in ipairs(push_names) do
  chunked('RPUSH', qmap[name][1], pushes[name])
  wake(qmap[name][2], #pushes[name])
end
return plan.out

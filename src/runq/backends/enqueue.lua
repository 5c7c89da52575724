-- enqueue.lua: store new tasks, all or none, and answer each one's initial status.
-- Each task gets its submitted time and a place in the submission order, and becomes
-- IMPOSSIBLE (a dependency failed; finished time set), DEFERRED (a dependency is not yet
-- COMPLETE; `waiting` counts those) or PENDING (pushed to the tail of its queue, batch order
-- kept, one wake token per task). Every task is recorded as a dependant of each dependency.
-- A dependency may name an earlier task of the batch. Everything is validated before the
-- first write.
--
-- KEYS[1..22]  the static keys (see _lib.lua)
-- KEYS[23..]   pairs (runq:{ns}:q:<name>, runq:{ns}:wake:q:<name>) for every queue of the batch
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      number of tasks n
-- ARGV[4..]    5 values per task: id, queue name, options JSON, payload, dependencies as a
--              JSON list ('' for none)
-- Answers the n statuses, or {{'DUPLICATE', id}} (twice in the batch), {{'EXISTS', id}},
-- {{'UNKNOWN', dependency id}}, {{'NEEDQ', name, ...}}.

local n = tonumber(ARGV[3])
local qmap = queue_map(NSTATIC + 1)
local ids, index, qnames = {}, {}, {}
for i = 1, n do
  local id = ARGV[4 + (i - 1) * 5]
  if index[id] then return fail('DUPLICATE', id) end
  index[id] = i
  ids[i] = id
  qnames[i] = ARGV[5 + (i - 1) * 5]
end
local missing = need_queues(qmap, qnames)
if missing then return missing end
local existing = hmget(K.status, ids)
for i = 1, n do
  if existing[i] then return fail('EXISTS', ids[i]) end
end

-- validate the dependencies and decide each status (no write yet)
local statuses, out, parents, parent_order = {}, {}, {}, {}
local waiting, deps = {}, {}
for i = 1, n do
  local id, raw = ids[i], ARGV[8 + (i - 1) * 5]
  local st = 'PENDING'
  if raw ~= '' then
    local uniq, seen, open, failed = {}, {}, 0, false
    for _, d in ipairs(cjson.decode(raw)) do
      if not seen[d] then
        seen[d] = true
        uniq[#uniq + 1] = d
        local ds = statuses[d] or redis.call('HGET', K.status, d)
        if not ds then return fail('UNKNOWN', d) end
        if FAILED[ds] then failed = true elseif ds ~= 'COMPLETE' then open = open + 1 end
        if not parents[d] then
          parents[d] = {}
          parent_order[#parent_order + 1] = d
        end
        table.insert(parents[d], id)
      end
    end
    if #uniq > 0 then
      deps[#deps + 1] = id
      deps[#deps + 1] = cjson.encode(uniq)
    end
    if failed then
      st = 'IMPOSSIBLE'
    elseif open > 0 then
      st = 'DEFERRED'
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = open
    end
  end
  statuses[id] = st
  out[i] = st
end

-- write
local t = now()
local seq = redis.call('INCRBY', K.seq, n) - n
local h_status, h_queue, h_options, h_payload, h_submitted, z_order, h_finished = {}, {}, {}, {}, {}, {}, {}
local pushes, push_names = {}, {}
for i = 1, n do
  local b = 3 + (i - 1) * 5
  local id, name = ids[i], qnames[i]
  local j = 2 * i
  h_status[j - 1], h_status[j] = id, out[i]
  h_queue[j - 1], h_queue[j] = id, name
  h_options[j - 1], h_options[j] = id, ARGV[b + 3]
  h_payload[j - 1], h_payload[j] = id, ARGV[b + 4]
  h_submitted[j - 1], h_submitted[j] = id, t
  z_order[j - 1], z_order[j] = seq + i, id
  if out[i] == 'PENDING' then
    if not pushes[name] then
      pushes[name] = {}
      push_names[#push_names + 1] = name
    end
    table.insert(pushes[name], id)
  elseif out[i] == 'IMPOSSIBLE' then
    h_finished[#h_finished + 1] = id
    h_finished[#h_finished + 1] = t
  end
end
chunked('HSET', K.status, h_status)
chunked('HSET', K.queue, h_queue)
chunked('HSET', K.options, h_options)
chunked('HSET', K.payload, h_payload)
chunked('HSET', K.submitted, h_submitted)
chunked('ZADD', K.order, z_order)
chunked('HSET', K.finished, h_finished)
chunked('HSET', K.waiting, waiting)
chunked('HSET', K.deps, deps)
for _, d in ipairs(parent_order) do
  local list = json_list(redis.call('HGET', K.dependants, d))
  for _, x in ipairs(parents[d]) do list[#list + 1] = x end
  redis.call('HSET', K.dependants, d, cjson.encode(list))
end
local distinct, seen_q = {}, {}
for i = 1, n do
  if not seen_q[qnames[i]] then
    seen_q[qnames[i]] = true
    distinct[#distinct + 1] = qnames[i]
  end
end
chunked('SADD', K.queues, distinct)
for _, name in ipairs(push_names) do
  chunked('RPUSH', qmap[name][1], pushes[name])
  wake(qmap[name][2], #pushes[name])
end
return out

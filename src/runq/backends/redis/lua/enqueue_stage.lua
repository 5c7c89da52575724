-- enqueue_stage.lua: stage one chunk of a batch too large for one script call (see
-- enqueue_commit.lua, which makes the whole batch visible at once, and _lib.lua for the
-- reservations). Nothing staged is visible: a task without a status is MISSING to every
-- reader and in no queue. The chunk's ids are reserved for the batch; their records (queue,
-- submitted time: the first chunk's, options, payload) and (distinct) dependencies are written, their
-- object-store values stored and tagged with their ids; the batch's own keys record the order
-- of its ids, the runs of queue names, and the tasks the commit must decide one by one
-- (dependencies or a duplicate key). Every call renews the batch's lease; one that finds the
-- lease lapsed writes nothing (the batch is being cleaned up).
--
-- KEYS[1..S]      the static keys (see _lib.lua)
-- KEYS[S+1..S+5]  the store keys (see _store_lib.lua)
-- KEYS[S+6..S+9]  the batch's keys (keys.NamespaceKeys.stage): ids list, runs list (queue
--                 name, count, …), special list (ids decided one by one), dedup hash (id ->
--                 policy '\n' duplicate key; '' -> the batch's submitted time)
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      batch id           ARGV[4] lease in seconds
-- ARGV[5]      '1' for the batch's first chunk, else '0'
-- ARGV[6]      number of tasks n of this chunk
-- ARGV[7..]    6 values per task: id, queue name, options JSON ('' = all defaults),
--              payload, dependency ids joined by '\n' ('' for none), policy '\n'
--              duplicate key ('' for none)
-- then         the object-store values and tags, as in enqueue.lua
-- Answers n, or {{'DUPLICATE', id}} (twice in the batch), {{'EXISTS', id}}, {{'STAGED', id}},
-- {{'STALE', batch id}}, {{'NEEDBLOB', hash}}, {{'LAPSED', batch id}}.

local bid, lease_s, first, n = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local function arg(i, field) return ARGV[6 + (i - 1) * 6 + field] end
local S = store_keys(NSTATIC + 1)
local B = {ids = KEYS[NSTATIC + NSTORE + 1], runs = KEYS[NSTATIC + NSTORE + 2],
           special = KEYS[NSTATIC + NSTORE + 3], dedup = KEYS[NSTATIC + NSTORE + 4]}

local ts = now()
local t = tonumber(ts)
if not first and not stage_live(bid, t) then return fail('LAPSED', bid) end
-- the batch's tasks share one submitted time: the first chunk's, kept in field '' of its
-- dedup hash (no task id is empty)
if not first then ts = redis.call('HGET', B.dedup, '') or ts end
local ids, index = {}, {}
for i = 1, n do
  local id = arg(i, 1)
  if index[id] then return fail('DUPLICATE', id) end
  index[id] = true
  ids[i] = id
end
local existing = statuses_of(ids)
for i = 1, n do
  if existing[i] then return fail('EXISTS', ids[i]) end
end
local owners = hmget(K.stage_owner, ids)
for i = 1, n do
  if owners[i] == bid then return fail('DUPLICATE', ids[i]) end  -- in an earlier chunk
end
local reserved = check_reserved(ids, bid)
if reserved then return reserved end
local blobs_at = 7 + 6 * n
local nblobs = tonumber(ARGV[blobs_at])
local tags_at = blobs_at + 1 + 3 * nblobs
local absent = store_missing(S, blobs_at + 1, nblobs)
if absent then return fail('NEEDBLOB', absent) end

redis.call('ZADD', K.stage_lease, t + lease_s, bid)
if first then redis.call('HSET', B.dedup, '', ts) end
local first = place(ids)  -- a staged task's place: readers skip it until the commit
local h = {stage_owner = {}, task = {}, deps = {}}
local runs, special, dd, joined = {}, {}, {}, {}
for i = 1, n do
  local id, name, j = ids[i], arg(i, 2), 2 * i
  h.stage_owner[j - 1], h.stage_owner[j] = id, bid
  h.task[j - 1], h.task[j] = task_key(id), make_record(name, ts, first + i, arg(i, 3), arg(i, 4))
  if #runs > 0 and runs[#runs - 1] == name then
    runs[#runs] = runs[#runs] + 1
  else
    runs[#runs + 1] = name
    runs[#runs + 1] = 1
  end
  local raw, dedup = arg(i, 5), arg(i, 6)
  if raw ~= '' then
    h.deps[#h.deps + 1] = id
    joined[raw] = joined[raw] or table.concat(distinct_ids(raw), '\n')
    h.deps[#h.deps + 1] = joined[raw]
    special[#special + 1] = id
  elseif dedup ~= '' then
    dd[#dd + 1] = id
    dd[#dd + 1] = dedup
    special[#special + 1] = id
  end
end
for field, values in pairs(h) do chunked('HSET', K[field], values) end
chunked('RPUSH', B.ids, ids)
chunked('RPUSH', B.runs, runs)
chunked('RPUSH', B.special, special)
chunked('HSET', B.dedup, dd)
store_write(S, blobs_at + 1, nblobs)
for i = 0, tonumber(ARGV[tags_at]) - 1 do
  store_tag(S, ARGV[tags_at + 1 + 2 * i], id_list(ARGV[tags_at + 2 + 2 * i]))
end
return n

-- delete.lua: delete tasks: every field of theirs (progress value too), their queue entries
-- and their place in the submission order; they are also struck from their dependencies'
-- dependant lists. DEFERRED dependants of a deleted task that was not COMPLETE become
-- IMPOSSIBLE, transitively. Deleted and newly IMPOSSIBLE ids are published on the done
-- channel. Unknown ids are ignored.
--
-- The deleted tasks' tags are dropped from the object store (see _store_lib.lua); offloaded
-- values this frees are added to the orphans set.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..S+5] the store keys (see _store_lib.lua)
-- KEYS[S+6..]   queue pairs, which must cover the queues of the PENDING tasks among the ids
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      '1' to refuse (and delete nothing) if a task is RUNNING, else '0'
-- ARGV[4..]    task ids
-- Answers the number of deleted tasks, {{'RUNNING', id}} or {{'NEEDQ', name, ...}}.

local check = ARGV[3] == '1'
local S = store_keys(NSTATIC + 1)
local qmap = queue_map(NSTATIC + 1 + NSTORE)
local ids, gone = {}, {}
for i = 4, #ARGV do
  if not gone[ARGV[i]] then
    gone[ARGV[i]] = true
    ids[#ids + 1] = ARGV[i]
  end
end
local st_all = statuses_of(ids)
local present, st = {}, {}
for i, id in ipairs(ids) do
  if st_all[i] then
    if check and st_all[i] == 'RUNNING' then return fail('RUNNING', id) end
    present[#present + 1] = id
    st[#st + 1] = st_all[i]
  else
    gone[id] = nil
  end
end
if #present == 0 then return 0 end
local recs, queue_names = records_of(present), {}
for i = 1, #present do queue_names[i] = recs[i] and string.match(recs[i], '^[^\t]*') end
local groups = queue_groups()
for i, id in ipairs(present) do
  if st[i] == 'PENDING' then groups.add(queue_names[i], id) end
end
local missing = need_queues(qmap, groups.names)
if missing then return missing end
local dedup = dedup_plan(present)
missing = need_queues(qmap, dedup_queues(dedup))
if missing then return missing end

local t = now()
dedup_apply(dedup, qmap)  -- first: a released task that is deleted too leaves its queue below
for _, name in ipairs(groups.names) do
  list_remove(qmap[name][1], groups.by_queue[name], groups.counts[name])
end
-- strike the deleted tasks from their dependencies' lists of dependants
local deps_raw, strike, strike_order = hmget(K.deps, present), {}, {}
for i, id in ipairs(present) do
  for _, d in ipairs(id_list(deps_raw[i])) do
    if not gone[d] then
      if not strike[d] then
        strike[d] = {}
        strike_order[#strike_order + 1] = d
      end
      strike[d][id] = true
    end
  end
end
for _, d in ipairs(strike_order) do
  local keep = {}
  for _, x in ipairs(dependants_of({d})) do
    if not strike[d][x] then keep[#keep + 1] = x end
  end
  drop_dependants({d})
  if #keep > 0 then add_dependants(d, keep) end
end
-- the dependants of deleted tasks that were not COMPLETE will never start
local unfinished, children = {}, {}
for i, id in ipairs(present) do
  if st[i] ~= 'COMPLETE' then unfinished[#unfinished + 1] = id end
end
for _, d in ipairs(dependants_of(unfinished)) do
  if not gone[d] then children[#children + 1] = d end
end
drop_dependants(present)
for _, key in ipairs({K.status, K.result, K.started, K.finished, K.worker, K.pid,
                      K.attempt, K.deps, K.waiting, K.progress}) do
  chunked('HDEL', key, present)
end
chunked('HDEL', K.task, task_keys(present))
unplace(present, recs)
chunked('ZREM', K.expiring, present)
store_untag(S, present, true)
local announced = {}
for i, id in ipairs(present) do announced[i] = id .. '\tMISSING' end  -- deleted: unknown now
make_impossible(children, t, announced)
redis.call('PUBLISH', CHANNEL, table.concat(announced, '\n'))
return #present

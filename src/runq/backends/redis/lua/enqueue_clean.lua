-- enqueue_clean.lua: clean up after staged batches (see _lib.lua, enqueue_stage.lua).
--
-- 'expired': answers the ids of the batches to clean up (lease lapsed, abandoned or committed),
--            at most 100.
-- 'clean':   takes up to `count` ids off the batch's id list: each reservation the batch holds
--            is dropped and, unless the batch was committed, whatever was staged for an id
--            that has no status (queue, options, payload, dependencies, its object-store tag)
--            is deleted; once the list is empty, the batch's keys and lease go too. A batch
--            whose lease runs is left alone unless `abandon` (its own controller gives up: the
--            lease is ended first, so no later chunk or commit of it can succeed).
--
-- KEYS[1..S]      the static keys (see _lib.lua)
-- KEYS[S+1..S+5]  the store keys (see _store_lib.lua)
-- KEYS[S+6..S+9]  the batch's keys (see enqueue_stage.lua); any key of the namespace for
--                 'expired'
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      'expired', or 'clean' with ARGV[4] batch id, ARGV[5] count, ARGV[6] abandon
--              '1' or '0'
-- Answers the batch ids ('expired'), or how many ids are left to clean (-1: still staging).

local t = tonumber(now())
if ARGV[3] == 'expired' then
  return redis.call('ZRANGEBYSCORE', K.stage_lease, '-inf', t, 'LIMIT', 0, 100)
end
local bid, count, abandon = ARGV[4], tonumber(ARGV[5]), ARGV[6] == '1'
local S = store_keys(NSTATIC + 1)
local B = {ids = KEYS[NSTATIC + NSTORE + 1], runs = KEYS[NSTATIC + NSTORE + 2],
           special = KEYS[NSTATIC + NSTORE + 3], dedup = KEYS[NSTATIC + NSTORE + 4]}

local lease = redis.call('ZSCORE', K.stage_lease, bid)
local committed = lease ~= false and tonumber(lease) == -1
if lease and tonumber(lease) > t then
  if not abandon then return -1 end
  redis.call('ZADD', K.stage_lease, 0, bid)
end
local ids = redis.call('LPOP', B.ids, count) or {}
if #ids > 0 then
  local owners = hmget(K.stage_owner, ids)
  local mine = {}
  for i, id in ipairs(ids) do
    if owners[i] == bid then mine[#mine + 1] = id end
  end
  chunked('HDEL', K.stage_owner, mine)
  if not committed and #mine > 0 then
    local statuses, staged = hmget(K.status, mine), {}
    for i, id in ipairs(mine) do
      if not statuses[i] then staged[#staged + 1] = id end
    end
    unplace(staged, records_of(staged))
    chunked('HDEL', K.task, task_keys(staged))
    chunked('HDEL', K.deps, staged)
    store_untag(S, staged, true)
  end
end
local left = redis.call('LLEN', B.ids)
if left == 0 then
  redis.call('DEL', B.runs, B.special, B.dedup)
  redis.call('ZREM', K.stage_lease, bid)
end
return left

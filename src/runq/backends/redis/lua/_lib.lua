-- _lib.lua: helpers prepended to every runq script (scripts.py joins them before registering;
-- _claim_lib.lua, the claim and its named limits, comes right after it).
--
-- Every script receives first the namespace's static keys (keys.STATIC_FIELDS, same order):
--   KEYS[1]  status      hash   task id -> TaskStatus, PENDING excepted (see statuses_of)
--   KEYS[2]  task        hash   task_key(id) -> its record: queue, submitted, seq, options,
--                               payload (see make_record)
--   KEYS[3]  result      hash   task id -> result bytes
--   KEYS[4]  started     hash   task id -> time
--   KEYS[5]  finished    hash   task id -> time
--   KEYS[6]  worker      hash   task id -> worker id
--   KEYS[7]  pid         hash   task id -> pid
--   KEYS[8]  attempt     hash   task id -> number of claims
--   KEYS[9]  deps        hash   task id -> its dependencies, joined by '\n'
--   KEYS[10] waiting     hash   DEFERRED task id -> dependencies not yet COMPLETE
--   KEYS[11] dependants  hash   task id -> the tasks depending on it (chunked: see below)
--   KEYS[12] order       hash   block -> the ids of 240 consecutive seqs (see place)
--   KEYS[13] seq         string submission sequence counter
--   KEYS[14] queues      set    every queue name that ever held a task
--   KEYS[15] w_status    hash   worker id -> WorkerStatus
--   KEYS[16] w_task      hash   worker id -> ids of the tasks it runs, joined by '\n'
--   KEYS[17] w_info      hash   worker id -> info JSON
--   KEYS[18] w_started   hash   worker id -> time
--   KEYS[19] w_last_seen hash   worker id -> time
--   KEYS[20] dedup       hash   task id -> its duplicate key (on_duplicate other than parallel)
--   KEYS[21] dedup_active hash  duplicate key -> its active task ids, oldest first ('\n')
--   KEYS[22] progress    hash   task id -> its latest progress value
--   KEYS[23] stage_owner hash   task id -> the staging batch that reserved it (enqueue_stage.lua)
--   KEYS[24] stage_lease zset   staging batch id -> lease deadline (0 or -1: to clean up)
--   KEYS[25] limits      hash   limit name -> its spec (see _claim_lib.lua)
--   KEYS[26] lim_state   hash   the state of each limit (ring of start times, running ids)
--   KEYS[27] lim_parked  zset   PENDING tasks set aside by a claim, by limit (_claim_lib)
--   KEYS[28] expiring    zset   finished task id -> when it is deleted (result_ttl, failure_ttl)
-- (S = NSTATIC of them), then the script's own keys (script headers number them from S).
-- Scripts that touch queues end their KEYS with pairs
--   (runq:{ns}:q:<name> list, runq:{ns}:wake:q:<name> list)
-- and every script gets ARGV[1] = 'runq:{ns}:q:' (to map those keys back to queue names) and
-- ARGV[2] = the 'runq:{ns}:done' channel. A script that needs a queue it was not given writes
-- nothing and answers {{'NEEDQ', name, ...}}; the caller retries with those queues added, so
-- no script ever builds a key name. Errors are answered before any write as {{'CODE', detail}}:
-- a reply whose first element is a list is never anything else.
-- Times are the server's TIME, as '<seconds>.<microseconds>'.

local K = {
  status = KEYS[1], task = KEYS[2], result = KEYS[3], started = KEYS[4], finished = KEYS[5],
  worker = KEYS[6], pid = KEYS[7], attempt = KEYS[8], deps = KEYS[9], waiting = KEYS[10],
  dependants = KEYS[11], order = KEYS[12], seq = KEYS[13], queues = KEYS[14],
  w_status = KEYS[15], w_task = KEYS[16], w_info = KEYS[17], w_started = KEYS[18],
  w_last_seen = KEYS[19], dedup = KEYS[20], dedup_active = KEYS[21], progress = KEYS[22],
  stage_owner = KEYS[23], stage_lease = KEYS[24], limits = KEYS[25], lim_state = KEYS[26],
  lim_parked = KEYS[27], expiring = KEYS[28],
}
local NSTATIC = 28
local QPREFIX = ARGV[1]
local CHANNEL = ARGV[2]
local CHUNK = 6000     -- values per redis.call: Lua's C stack takes about 8000
local WAKE_CAP = 64    -- wake tokens kept per queue
local LOG_CAP = 100000 -- log entries kept per worker (trimmed in steps of 1000)
local FAILED = {ERROR = true, CANCELLED = true, DIED = true, TIMEOUT = true, IMPOSSIBLE = true}

local function now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end

-- redis.call(cmd, key, args...) in chunks of CHUNK values (CHUNK is even: pairs stay whole)
local function chunked(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

-- HMGET of any number of fields, answered in order
local function hmget(key, fields)
  local out = {}
  for i = 1, #fields, CHUNK do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end

-- ------------------------------------------------------------------ task records
-- A task's record (K.task), one hash field per task (what a queued task stores is kept
-- small: one entry instead of one in each of four hashes):
--   queue name '\t' submitted '\t' seq '\t' options JSON ('' = every option at its default)
--   '\n' payload bytes
-- submitted: the server time in microseconds, seq: the submission sequence number (K.seq),
-- both in base 36. Neither a queue name, a number nor JSON (control characters escaped)
-- holds a tab or newline. The field is task_key(id): an id of 32 lowercase hex digits (every
-- id the API makes) as its 16 bytes, which saves a jemalloc size class per task; any other id
-- as it is, except one of 16 bytes, which gets a leading '\1' (no id holds a control
-- character, so no two ids share a field). make_record (_order_lib.lua) writes records.

-- the four bytes of a 32-bit number (arithmetic only: it runs twice a finish + claim)
local function bytes4(v)
  local r1 = v % 16777216
  local r2 = r1 % 65536
  local r3 = r2 % 256
  return (v - r1) / 16777216, (r1 - r2) / 65536, (r2 - r3) / 256, r3
end

local function is_hex_id(id)
  return #id == 32 and string.find(id, '^[0-9a-f]+$') ~= nil
end

-- the 16 bytes of a 32-hex-digit id
local function hex_bytes(id)
  local sub = string.sub
  local a0, a1, a2, a3 = bytes4(tonumber(sub(id, 1, 8), 16))
  local b0, b1, b2, b3 = bytes4(tonumber(sub(id, 9, 16), 16))
  local c0, c1, c2, c3 = bytes4(tonumber(sub(id, 17, 24), 16))
  local d0, d1, d2, d3 = bytes4(tonumber(sub(id, 25, 32), 16))
  return string.char(a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3)
end

-- the field of task `id` in K.task (see above)
local function task_key(id)
  if is_hex_id(id) then return hex_bytes(id) end
  if #id == 16 then return '\1' .. id end
  return id
end

-- the parts of a record: queue, submitted (base 36 microseconds), seq (a number), options (nil
-- for all defaults), payload
local function record_parts(rec)
  local a = string.find(rec, '\t', 1, true)
  local b = string.find(rec, '\t', a + 1, true)
  local c = string.find(rec, '\t', b + 1, true)
  local d = string.find(rec, '\n', c + 1, true)
  local opts = string.sub(rec, c + 1, d - 1)
  return string.sub(rec, 1, a - 1), string.sub(rec, a + 1, b - 1),
         tonumber(string.sub(rec, b + 1, c - 1), 36), opts ~= '' and opts or nil,
         string.sub(rec, d + 1)
end

-- the record of task `id`, or nil
local function record_of(id)
  return redis.call('HGET', K.task, task_key(id)) or nil
end

-- ------------------------------------------------------------------ statuses
-- PENDING is not stored: a task with a record (K.task) and no K.status entry is PENDING, so a
-- queued task costs no status entry. Every other status is stored. A staged task (a large
-- batch not yet committed: enqueue_stage.lua) also has a record and no status, but is MISSING:
-- staged_among tells those apart. Every status read goes through status_of / statuses_of
-- (_status_lib.lua), except where the ids come from a queue list or the parked set (never
-- staged: a missing status with a record there is PENDING); every write of PENDING through
-- set_pending.

-- task `id` (it has a record) becomes PENDING
local function set_pending(id)
  redis.call('HDEL', K.status, id)
end

-- the queue name of task `id`, or nil (no record)
local function queue_of(id)
  local rec = record_of(id)
  return rec and string.match(rec, '^[^\t]*') or nil
end

-- the options JSON of record `rec`, or nil (all defaults, or no record)
local function options_in(rec)
  if not rec then return nil end
  local opts = string.match(rec, '^[^\t]*\t[^\t]*\t[^\t]*\t([^\n]*)')
  return opts ~= '' and opts or nil
end

-- the options JSON of task `id`, or nil (all defaults, or no record)
local function options_of(id)
  return options_in(record_of(id))
end

-- queue name -> {list key, wake key}, from the pairs at KEYS[first..]
local function queue_map(first)
  local m = {}
  for i = first, #KEYS - 1, 2 do
    m[string.sub(KEYS[i], #QPREFIX + 1)] = {KEYS[i], KEYS[i + 1]}
  end
  return m
end

-- an error answer (see above)
local function fail(code, detail)
  return {{code, detail}}
end

-- the NEEDQ answer if some of `names` are not in `qmap`, else nil
local function need_queues(qmap, names)
  local missing, seen = {'NEEDQ'}, {}
  for _, name in ipairs(names) do
    if not qmap[name] and not seen[name] then
      seen[name] = true
      missing[#missing + 1] = name
    end
  end
  if #missing > 1 then return {missing} end
  return nil
end

-- push up to WAKE_CAP tokens for n new tasks to a queue's wake list
local function wake(wake_key, n)
  local tokens = {}
  for i = 1, math.min(n, WAKE_CAP) do tokens[i] = '1' end
  if #tokens == 0 then return end
  if redis.call('RPUSH', wake_key, unpack(tokens)) > WAKE_CAP then
    redis.call('LTRIM', wake_key, -WAKE_CAP, -1)
  end
end

local function log_entry(t, command, message)
  return t .. '\t\t' .. command .. '\t' .. message
end

-- append entries to a worker's log, keeping the last LOG_CAP; answers the log's length
local function append_log(key, ...)
  local n = redis.call('RPUSH', key, ...)
  if n > LOG_CAP + 1000 then
    redis.call('LTRIM', key, -LOG_CAP, -1)
    return LOG_CAP
  end
  return n
end

-- task id lists are stored as the ids joined by '\n' (cheap to append to, unlike JSON)
local function id_list(raw)
  local out = {}
  if raw then
    for id in string.gmatch(raw, '[^\n]+') do out[#out + 1] = id end
  end
  return out
end

-- A task's dependants are kept in chunks, so that adding one costs the same however many it
-- has: field <id> of `dependants` holds the newest (at most DEP_CHUNK ids joined by '\n'),
-- fields <id>\n1, <id>\n2 ... the older full chunks and field <id>\n0 how many there are.
local DEP_CHUNK = 256

local function chunk_fields(id, full)
  local fields = {}
  for k = 1, full do fields[k] = id .. '\n' .. k end
  return fields
end

-- every dependant of each task of `ids`, as one list (each task's oldest first)
local function dependants_of(ids)
  local fields = {}
  for _, id in ipairs(ids) do
    fields[#fields + 1] = id
    fields[#fields + 1] = id .. '\n0'
  end
  local values, older, counts = hmget(K.dependants, fields), {}, {}
  for i, id in ipairs(ids) do
    counts[i] = tonumber(values[2 * i] or '0')
    for _, f in ipairs(chunk_fields(id, counts[i])) do older[#older + 1] = f end
  end
  local chunks, out, c = hmget(K.dependants, older), {}, 0
  for i = 1, #ids do
    for _ = 1, counts[i] do
      c = c + 1
      for _, x in ipairs(id_list(chunks[c])) do out[#out + 1] = x end
    end
    for _, x in ipairs(id_list(values[2 * i - 1])) do out[#out + 1] = x end
  end
  return out
end

-- add `new` (a list) to the dependants of task `id`
local function add_dependants(id, new)
  local found = redis.call('HMGET', K.dependants, id, id .. '\n0')
  local list, full, start = id_list(found[1]), tonumber(found[2] or '0'), 1
  for _, x in ipairs(new) do list[#list + 1] = x end
  local writes = {}
  while #list - start >= DEP_CHUNK do
    full = full + 1
    writes[#writes + 1] = id .. '\n' .. full
    writes[#writes + 1] = table.concat(list, '\n', start, start + DEP_CHUNK - 1)
    start = start + DEP_CHUNK
  end
  if full > 0 then
    writes[#writes + 1] = id .. '\n0'
    writes[#writes + 1] = full
  end
  writes[#writes + 1] = id
  writes[#writes + 1] = table.concat(list, '\n', start, #list)
  chunked('HSET', K.dependants, writes)
end

-- forget the dependants of each task of `ids`
local function drop_dependants(ids)
  local count_fields, fields = {}, {}
  for i, id in ipairs(ids) do count_fields[i] = id .. '\n0' end
  local counts = hmget(K.dependants, count_fields)
  for i, id in ipairs(ids) do
    fields[#fields + 1] = id
    fields[#fields + 1] = id .. '\n0'
    for _, f in ipairs(chunk_fields(id, tonumber(counts[i] or '0'))) do fields[#fields + 1] = f end
  end
  chunked('HDEL', K.dependants, fields)
end

-- PENDING ids grouped by queue, to take them out of their lists: add(name, id) for each, then
-- remove_all(qmap) (names keeps the order queues were first met).
local function queue_groups()
  local g = {by_queue = {}, counts = {}, names = {}}
  function g.add(name, id)
    if not g.by_queue[name] then
      g.by_queue[name], g.counts[name] = {}, 0
      g.names[#g.names + 1] = name
    end
    g.by_queue[name][id] = true
    g.counts[name] = g.counts[name] + 1
  end
  return g
end

-- remove `ids` (a set) from a list: LREM for a few, one rewrite for many
local function list_remove(key, ids, n)
  if n <= 8 then
    for id in pairs(ids) do redis.call('LREM', key, 1, id) end
    return
  end
  local keep = {}
  for _, id in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if not ids[id] then keep[#keep + 1] = id end
  end
  redis.call('DEL', key)
  if #keep > 0 then chunked('RPUSH', key, keep) end
end

-- the DEFERRED (or SCHEDULED: their delayed entry is dropped when due) dependants among
-- `children` make IMPOSSIBLE, transitively (breadth first); each is appended to `announced`
-- as '<id>\tIMPOSSIBLE' (every announcement carries the status just stored: see listen.py)
local function make_impossible(children, t, announced)
  local todo, i = {}, 1
  for _, d in ipairs(children) do todo[#todo + 1] = d end
  while i <= #todo do
    local d = todo[i]
    i = i + 1
    local ds = redis.call('HGET', K.status, d)  -- stored: neither is PENDING
    if ds == 'DEFERRED' or ds == 'SCHEDULED' then
      redis.call('HSET', K.status, d, 'IMPOSSIBLE')
      redis.call('HSET', K.finished, d, t)
      redis.call('HDEL', K.waiting, d)
      announced[#announced + 1] = d .. '\tIMPOSSIBLE'
      for _, x in ipairs(dependants_of({d})) do todo[#todo + 1] = x end
    end
  end
end

-- the queues of the dependants a COMPLETE task would release (read only)
local function release_queues(children)
  local names = {}
  for _, d in ipairs(children) do
    if redis.call('HGET', K.status, d) == 'DEFERRED'
        and tonumber(redis.call('HGET', K.waiting, d) or '0') <= 1 then
      names[#names + 1] = queue_of(d)
    end
  end
  return names
end

-- a task COMPLETEd: count it off each DEFERRED dependant, queue those with none left
local function release(children, qmap)
  local woken = {}
  for _, d in ipairs(children) do
    if redis.call('HGET', K.status, d) == 'DEFERRED'
        and redis.call('HINCRBY', K.waiting, d, -1) <= 0 then
      local name = queue_of(d)
      redis.call('HDEL', K.waiting, d)
      set_pending(d)
      redis.call('RPUSH', qmap[name][1], d)
      woken[name] = (woken[name] or 0) + 1
    end
  end
  for name, n in pairs(woken) do wake(qmap[name][2], n) end
end

-- the record of task `id` popped from a queue list or the parked set if it is PENDING (no
-- status, a record: such ids are never staged), else nil
local function pending_record(id)
  if redis.call('HGET', K.status, id) then return nil end
  return record_of(id)
end

-- make the PENDING task `id` of queue `name` (out of its list; its record `rec`) RUNNING under
-- `wid`; answers {id, queue, payload, options, attempt}
local function start_task(id, name, wid, pid, t, rec)
  redis.call('HSET', K.status, id, 'RUNNING')
  redis.call('HSET', K.worker, id, wid)
  redis.call('HSET', K.pid, id, pid)
  redis.call('HSET', K.started, id, t)
  local attempt = redis.call('HINCRBY', K.attempt, id, 1)
  local _, _, _, opts, payload = record_parts(rec)
  return {id, name, payload, opts or false, attempt}
end

-- ------------------------------------------------------------------ duplicate policies
-- K.dedup_active holds each duplicate key's active tasks: the first is queued or running, the
-- rest are held (DEFERRED, in no queue). A task leaving (finished, cancelled, deleted) is struck
-- off; a held task that becomes first is queued. Read first (dedup_plan, dedup_queues: no
-- write, so a NEEDQ answer can still be given), then write (dedup_apply).

-- key -> the active ids left once `ids` leave, for every key `ids` belong to (read only)
local function dedup_plan(ids)
  local plan, order, gone = {}, {}, {}
  for _, id in ipairs(ids) do gone[id] = true end
  for _, id in ipairs(ids) do
    local key = redis.call('HGET', K.dedup, id)
    if key and not plan[key] then
      local rest = {}
      for _, x in ipairs(id_list(redis.call('HGET', K.dedup_active, key))) do
        if not gone[x] then rest[#rest + 1] = x end
      end
      plan[key] = rest
      order[#order + 1] = key
    end
  end
  return {keys = plan, order = order, ids = ids}
end

-- the queues of the held tasks the plan releases (read only)
local function dedup_queues(plan)
  local names = {}
  for _, key in ipairs(plan.order) do
    local head = plan.keys[key][1]
    if head and redis.call('HGET', K.status, head) == 'DEFERRED' then
      names[#names + 1] = queue_of(head)
    end
  end
  return names
end

-- strike the plan's ids off and queue each held task that became first
local function dedup_apply(plan, qmap)
  if #plan.order == 0 then return end
  chunked('HDEL', K.dedup, plan.ids)
  for _, key in ipairs(plan.order) do
    local rest = plan.keys[key]
    if #rest == 0 then
      redis.call('HDEL', K.dedup_active, key)
    else
      redis.call('HSET', K.dedup_active, key, table.concat(rest, '\n'))
      local head = rest[1]
      if redis.call('HGET', K.status, head) == 'DEFERRED' then
        local name = queue_of(head)
        set_pending(head)
        redis.call('RPUSH', qmap[name][1], head)
        wake(qmap[name][2], 1)
      end
    end
  end
end

-- ------------------------------------------------------------------ staged batches
-- A batch too large for one script is staged chunk by chunk (enqueue_stage.lua), then made
-- visible at once (enqueue_commit.lua). Staging reserves each id in K.stage_owner (id -> batch
-- id); K.stage_lease scores each batch: its lease deadline while it is being staged, 0 once
-- abandoned, -1 once committed (both: left for enqueue_clean.lua). A reservation by a batch
-- whose lease runs keeps the id from any other new task; a reservation by any other batch is
-- stale: that batch must be cleaned up before the id is used.

-- whether batch `bid` is being staged (its lease runs at time `t`, a number)
local function stage_live(bid, t)
  local lease = redis.call('ZSCORE', K.stage_lease, bid)
  return lease ~= false and tonumber(lease) > t
end

-- nil if no id of `ids` is reserved by a batch other than `own`; else the error answer
-- {{'STAGED', id}} (a batch being staged holds it) or {{'STALE', batch id}} (clean it first).
-- One HMGET of a hash that is empty unless a large batch is under way.
local function check_reserved(ids, own)
  local owners = hmget(K.stage_owner, ids)
  local t = nil
  for i = 1, #ids do
    local bid = owners[i]
    if bid and bid ~= own then
      t = t or tonumber(now())
      if stage_live(bid, t) then return fail('STAGED', ids[i]) end
      return {{'STALE', bid}}
    end
  end
  return nil
end

-- ---------------------------------------------------------------------------------- script


-- ------------------------------------------------------------------ result expiry
-- A finished task whose options give result_ttl (COMPLETE) or failure_ttl (any other finished
-- status) is due to be deleted that many seconds after `t` (K.expiring; expire_take.lua).
-- Options are decoded only when they mention a ttl; `raw` is the task's options JSON
-- (options_of(id): the caller has it already).
local function expire_later(id, status, t, raw)
  if not raw or not string.find(raw, '_ttl"', 1, true) then return end
  local ok, opts = pcall(cjson.decode, raw)
  if not ok then return end
  local ttl = opts[status == 'COMPLETE' and 'result_ttl' or 'failure_ttl']
  if type(ttl) == 'number' then redis.call('ZADD', K.expiring, tonumber(t) + ttl, id) end
end

-- _claim_lib.lua: claiming, joined right after _lib.lua for every script: named limits (the
-- gate a claim passes), claim_task (the next claimable task of a worker's queues) and what a
-- worker holds (hold, unhold). It uses only _lib.lua's helpers; _lib.lua's later sections
-- (duplicate policies, staged batches, expiry) do not use it.

-- ------------------------------------------------------------------ named limits
-- K.limits: name -> 'count\tperiod\tconcurrency\trate' ('' where it does not limit).
-- K.lim_state: '<name>\n<i>' slot i of a ring of the limit's last `count` start times (a
--   sliding window log: the slot '<name>\nhead' names is the one the next start overwrites,
--   so it holds the oldest of them); '<name>\nrun' the ids its claims started ('\n'): those
--   no longer RUNNING hold no slot, so no other transition needs to know about limits.
-- K.lim_parked: members '<name>\n<submission seq, 16 digits>\n<id>', all scored 0 (read by
--   lex range): PENDING tasks a claim set aside while their limit did not allow them, out
--   of their queue's list, oldest first per limit. A stale member (the task was cancelled or
--   deleted since) is dropped when met.

-- the limit a task's options JSON names, or nil (decoded only when the key is in it)
local function task_limit(opts)
  if not opts or not string.find(opts, '"limit"', 1, true) then return nil end
  local ok, o = pcall(cjson.decode, opts)
  if ok and type(o) == 'table' and type(o.limit) == 'string' then return o.limit end
  return nil
end

-- {count, period, conc} of a limit (nil where it does not limit), or nil if none is set
local function limit_spec(name)
  local raw = redis.call('HGET', K.limits, name)
  if not raw then return nil end
  local c, p, k = string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t')
  return {count = tonumber(c), period = tonumber(p), conc = tonumber(k)}
end

-- the ids of a limit's tasks still RUNNING (the others are struck off)
local function limit_running(name)
  local field = name .. '\nrun'
  local ids, live = id_list(redis.call('HGET', K.lim_state, field)), {}
  for _, x in ipairs(ids) do
    if redis.call('HGET', K.status, x) == 'RUNNING' then live[#live + 1] = x end
  end
  if #live == 0 and #ids > 0 then redis.call('HDEL', K.lim_state, field)
  elseif #live < #ids then redis.call('HSET', K.lim_state, field, table.concat(live, '\n')) end
  return live
end

-- the oldest set-aside member of a limit and its task id, or nil
local function parked_head(name)
  local m = redis.call('ZRANGEBYLEX', K.lim_parked, '[' .. name .. '\n', '[' .. name .. '\n\255',
                       'LIMIT', 0, 1)[1]
  if not m then return nil, nil end
  return m, string.match(m, '\n[0-9]+\n(.*)$')
end

-- whether a task of limit `name` may start at g.tn (cached per claim); a rate that blocks
-- notes in g.wait the seconds until its window opens
local function gate_allows(g, name)
  local v = g.verdict[name]
  if v ~= nil then return v end
  local s = g.specs[name]
  v = true
  if s.conc and #limit_running(name) >= s.conc then
    v = false
  elseif s.count then
    local head = redis.call('HGET', K.lim_state, name .. '\nhead') or '0'
    local oldest = tonumber(redis.call('HGET', K.lim_state, name .. '\n' .. head) or '')
    if oldest and oldest + s.period > g.tn then
      v = false
      local w = oldest + s.period - g.tn
      if not g.wait or w < g.wait then g.wait = w end
    end
  end
  g.verdict[name] = v
  return v
end

-- count a start of task `id` under limit `name`
local function gate_take(g, name, id)
  local s = g.specs[name]
  if s.conc then
    local run = limit_running(name)
    run[#run + 1] = id
    redis.call('HSET', K.lim_state, name .. '\nrun', table.concat(run, '\n'))
  end
  if s.count then
    local head = tonumber(redis.call('HGET', K.lim_state, name .. '\nhead') or '0')
    redis.call('HSET', K.lim_state, name .. '\n' .. head, g.t,
               name .. '\nhead', (head + 1) % s.count)
  end
  g.verdict[name] = nil
end

-- claim_task with limits: in each queue (priority order) the oldest set-aside task of a
-- limit that allows one, else the list's head, setting aside each task over its limit
local function claim_limited(g, qmap, names, wid, pid, t)
  local limits = redis.call('HKEYS', K.limits)
  for _, name in ipairs(limits) do g.specs[name] = limit_spec(name) end
  for _, qname in ipairs(names) do
    for _, lname in ipairs(limits) do
      local m, id = parked_head(lname)
      while m do
        local rec = pending_record(id)
        if not rec then
          redis.call('ZREM', K.lim_parked, m)
          m, id = parked_head(lname)
        elseif record_parts(rec) ~= qname or not gate_allows(g, lname) then
          m = nil
        else
          redis.call('ZREM', K.lim_parked, m)
          gate_take(g, lname, id)
          return start_task(id, qname, wid, pid, t, rec)
        end
      end
    end
    local list = qmap[qname][1]
    local id = redis.call('LPOP', list)
    while id do
      local rec = pending_record(id)
      if rec then
        local _, _, seq, opts = record_parts(rec)
        local lname = task_limit(opts)
        if not (lname and g.specs[lname]) then return start_task(id, qname, wid, pid, t, rec) end
        if gate_allows(g, lname) then
          gate_take(g, lname, id)
          return start_task(id, qname, wid, pid, t, rec)
        end
        redis.call('ZADD', K.lim_parked, 0,
                   lname .. '\n' .. string.format('%016d', seq) .. '\n' .. id)
      end
      id = redis.call('LPOP', list)
    end
  end
  return nil
end

-- the queue to wake when task `id` (options JSON `opts`: options_of(id)) leaves RUNNING:
-- that of the oldest task set aside under its limit, or nil (read only)
local function limit_wake_queue(id, opts)
  local lname = task_limit(opts)
  if not lname or redis.call('HEXISTS', K.limits, lname) == 0 then return nil end
  local _, head = parked_head(lname)
  return head and queue_of(head) or nil
end

-- pop the first PENDING task of the queues `names` (priority order) and make it RUNNING
-- under `wid` (with named limits: claim_limited); answers {id, queue, payload, options,
-- attempt}, or nil after deleting the queues' wake lists (all empty: the worker may now
-- block on them without missing a push)
local function claim_task(qmap, names, wid, pid, t)
  if redis.call('HLEN', K.limits) > 0 then
    local g = {t = t, tn = tonumber(t), specs = {}, verdict = {}, wait = nil}
    local task = claim_limited(g, qmap, names, wid, pid, t)
    if task then return task end
  else
    for _, name in ipairs(names) do
      local list = qmap[name][1]
      local id = redis.call('LPOP', list)
      while id do
        local rec = pending_record(id)
        if rec then return start_task(id, name, wid, pid, t, rec) end
        id = redis.call('LPOP', list)
      end
    end
  end
  local wakes = {}
  for _, name in ipairs(names) do wakes[#wakes + 1] = qmap[name][2] end
  if #wakes > 0 then redis.call('DEL', unpack(wakes)) end
  return nil
end

-- may this worker take tasks? (unknown ids may: the worker is then recorded by the claim)
local function worker_can_claim(wid)
  local st = redis.call('HGET', K.w_status, wid)
  return st ~= 'LOST' and st ~= 'EXITED'
end

-- K.w_task holds the ids of the tasks a worker runs, joined by '\n' (several for a worker with
-- concurrency > 1), oldest claim first. hold: the worker now also runs `id`.
local function hold(wid, id)
  local cur = redis.call('HGET', K.w_task, wid)
  if cur and cur ~= '' then
    redis.call('HSET', K.w_task, wid, cur .. '\n' .. id)
  else
    redis.call('HSET', K.w_task, wid, id)
  end
end

-- the worker no longer runs `id`; answers whether it still runs another task
local function unhold(wid, id)
  local cur = redis.call('HGET', K.w_task, wid)
  if not cur then return false end
  if cur == id then
    redis.call('HDEL', K.w_task, wid)
    return false
  end
  local rest = {}
  for _, x in ipairs(id_list(cur)) do
    if x ~= id then rest[#rest + 1] = x end
  end
  if #rest == 0 then
    redis.call('HDEL', K.w_task, wid)
    return false
  end
  redis.call('HSET', K.w_task, wid, table.concat(rest, '\n'))
  return true
end

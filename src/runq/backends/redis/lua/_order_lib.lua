-- _order_lib.lua: new records and the submission order, joined after _status_lib.lua for the
-- scripts that add or delete tasks or read the order.

local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'

-- a non-negative integer (below 2^53) in base 36
local function b36(n)
  local out = ''
  repeat
    local d = n % 36
    out = string.sub(B36, d + 1, d + 1) .. out
    n = (n - d) / 36
  until n == 0
  return out
end

-- a record; `submitted`: a time '<seconds>.<microseconds>' (now()), `seq` a number
local function make_record(queue, submitted, seq, options, payload)
  local sec, us = string.match(submitted, '^(%d+)%.(%d+)$')
  return queue .. '\t' .. b36(tonumber(sec) * 1000000 + tonumber(us)) .. '\t' .. b36(seq)
      .. '\t' .. options .. '\n' .. payload
end

local HEX_FORMAT = string.rep('%02x', 16)

-- ------------------------------------------------------------------ submission order
-- Every task has a submission sequence number (its record's seq; K.seq counts them). K.order
-- keeps the ids in that order in blocks, a hash field per ORDER_BLOCK numbers: field n holds
-- the ids whose seq is in [n * ORDER_BLOCK, (n + 1) * ORDER_BLOCK), oldest first, each as
-- '\0' and its 16 bytes (an id of 32 hex digits) or as itself and '\n' (any other id). A
-- queued task so costs 17 bytes here instead of a sorted-set entry (~136 B). Ids are appended
-- by the script that gives them their seq, and removed by the one that deletes their record
-- (a block left empty is deleted). A staged task has its place from its staging on; readers
-- skip it as they skip any id without a status (statuses_of).
local ORDER_BLOCK = 240  -- 240 * 17 bytes: a block fits a 4 KiB allocation

local function order_entry(id)
  if is_hex_id(id) then return '\0' .. hex_bytes(id) end
  return id .. '\n'
end

-- the ids of a block, in order
local function order_ids(raw)
  local out, p, n = {}, 1, #raw
  while p <= n do
    if string.byte(raw, p) == 0 then
      out[#out + 1] = string.format(HEX_FORMAT, string.byte(raw, p + 1, p + 16))
      p = p + 17
    else
      local q = string.find(raw, '\n', p, true)
      out[#out + 1] = string.sub(raw, p, q - 1)
      p = q + 1
    end
  end
  return out
end

-- give `ids` (in order) the next sequence numbers and their places in the order; answers the
-- number before the first (ids[i] gets first + i)
local function place(ids)
  local n = #ids
  if n == 0 then return 0 end
  local first = redis.call('INCRBY', K.seq, n) - n
  local i = 1
  while i <= n do
    local block = math.floor((first + i) / ORDER_BLOCK)
    local last = math.min(n, (block + 1) * ORDER_BLOCK - first - 1)
    local parts = {redis.call('HGET', K.order, block) or ''}
    for k = i, last do parts[#parts + 1] = order_entry(ids[k]) end
    redis.call('HSET', K.order, block, table.concat(parts))
    i = last + 1
  end
  return first
end

-- take `ids` out of the order; `recs`: their records (records_of; false for none: skipped)
local function unplace(ids, recs)
  local by_block, blocks = {}, {}
  for i = 1, #ids do
    local _, _, seq = record_parts(recs[i] or '\t\t\t\n')
    local block = seq and math.floor(seq / ORDER_BLOCK)
    if block and not by_block[block] then
      by_block[block] = {}
      blocks[#blocks + 1] = block
    end
    if block then by_block[block][ids[i]] = true end
  end
  for _, block in ipairs(blocks) do
    local raw = redis.call('HGET', K.order, block)
    if raw then
      local keep, drop = {}, by_block[block]
      for _, id in ipairs(order_ids(raw)) do
        if not drop[id] then keep[#keep + 1] = order_entry(id) end
      end
      if #keep == 0 then redis.call('HDEL', K.order, block)
      else redis.call('HSET', K.order, block, table.concat(keep)) end
    end
  end
end


-- _store_lib.lua: object-store helpers, prepended (after _lib.lua) to every runq script.
-- Scripts that use them receive the five store keys right after the static keys, in this
-- order (keys.NamespaceKeys.store):
--   runq:{ns}:s:data     hash  value hash -> bytes (values held in Redis)
--   runq:{ns}:s:off      hash  value hash -> size (offloaded: bytes in <offload_path>/<hash>)
--   runq:{ns}:s:refs     hash  value hash -> number of tags holding it
--   runq:{ns}:s:tags     hash  tag -> the hashes it holds, joined by '\n'
--   runq:{ns}:s:orphans  set   offloaded hashes freed by task deletions (files to remove)
-- A value is written in `data` or `off`, never both, and deleted with its last tag.

local NSTORE = 5

local function store_keys(first)
  return {data = KEYS[first], off = KEYS[first + 1], refs = KEYS[first + 2],
          tags = KEYS[first + 3], orphans = KEYS[first + 4]}
end

local function store_has(S, h)
  return redis.call('HEXISTS', S.data, h) == 1 or redis.call('HEXISTS', S.off, h) == 1
end

-- the first value sent as known ('k': without its bytes) that is not stored, or nil;
-- `values` holds triples (hash, kind, value) from ARGV index `first`, `m` of them
local function store_missing(S, first, m)
  for i = 0, m - 1 do
    local h, kind = ARGV[first + 3 * i], ARGV[first + 3 * i + 1]
    if kind == 'k' and not store_has(S, h) then return h end
  end
  return nil
end

-- write the triples (hash, kind, value): kind 'b' = bytes, 'o' = offloaded (value = size),
-- 'k' = known (nothing to write); a value already stored is left alone
local function store_write(S, first, m)
  for i = 0, m - 1 do
    local h, kind, value = ARGV[first + 3 * i], ARGV[first + 3 * i + 1], ARGV[first + 3 * i + 2]
    if kind ~= 'k' and not store_has(S, h) then
      if kind == 'b' then redis.call('HSET', S.data, h, value)
      else redis.call('HSET', S.off, h, value) end
    end
  end
end

-- tag the hashes of `hashes` (a list) with `tag`; a pair already tagged counts once
local function store_tag(S, tag, hashes)
  local list, have, added = id_list(redis.call('HGET', S.tags, tag)), {}, false
  for _, h in ipairs(list) do have[h] = true end
  for _, h in ipairs(hashes) do
    if not have[h] then
      have[h], added = true, true
      list[#list + 1] = h
      redis.call('HINCRBY', S.refs, h, 1)
    end
  end
  if added then redis.call('HSET', S.tags, tag, table.concat(list, '\n')) end
end

-- drop `tags` (a list); delete the values left without a tag; answers the offloaded hashes
-- deleted (with `orphan`, also added to the orphans set)
local function store_untag(S, tags, orphan)
  local freed = {}
  if #tags == 0 then return freed end
  local raws, any = hmget(S.tags, tags), false
  for i = 1, #tags do
    if raws[i] then
      any = true
      for _, h in ipairs(id_list(raws[i])) do
        if redis.call('HINCRBY', S.refs, h, -1) <= 0 then
          redis.call('HDEL', S.refs, h)
          redis.call('HDEL', S.data, h)
          if redis.call('HDEL', S.off, h) == 1 then
            freed[#freed + 1] = h
            if orphan then redis.call('SADD', S.orphans, h) end
          end
        end
      end
    end
  end
  if any then chunked('HDEL', S.tags, tags) end
  return freed
end

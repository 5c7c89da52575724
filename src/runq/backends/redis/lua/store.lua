-- store.lua: object-store transitions that are not part of a task transition.
--
-- KEYS[1..S]  the static keys (see _lib.lua)
-- KEYS[S+1..S+5] the store keys (see _store_lib.lua)
-- ARGV[1]      runq:{ns}:q:       ARGV[2] runq:{ns}:done
-- ARGV[3]      'put':  ARGV[4] tag, ARGV[5] number of values m, ARGV[6..] m triples
--                      (hash, 'b' or 'o', bytes or size); stores and tags them; answers 1
--              'drop': ARGV[4..] tags; drops them; answers the offloaded hashes deleted

local S = store_keys(NSTATIC + 1)
local op = ARGV[3]
if op == 'put' then
  local m = tonumber(ARGV[5])
  store_write(S, 6, m)
  local hashes = {}
  for i = 0, m - 1 do hashes[#hashes + 1] = ARGV[6 + 3 * i] end
  store_tag(S, ARGV[4], hashes)
  return 1
end
local tags = {}
for i = 4, #ARGV do tags[#tags + 1] = ARGV[i] end
return store_untag(S, tags, false)

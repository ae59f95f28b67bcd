-- shard_ctl.lua: update a shard's copy of the control state, which the claim script reads
-- (pauses "pause:KIND:NAME", campaign states "cstate:NAME", priority aging "pag").
-- KEYS[1] shard control hash
-- ARGV[1] and on, triples: 'set' | 'del', field, value
-- Returns the number of fields changed.
local n = 0
for i = 1, #ARGV, 3 do
  if ARGV[i] == 'set' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[1], ARGV[i + 1])
  end
  n = n + 1
end
return n

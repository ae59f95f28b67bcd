-- complete.lua: fenced completion of an item; successors whose predecessors are all done
-- become ready in the same step.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] token
-- ARGV[5] outputs JSON  ARGV[6] who  ARGV[7] stream cap  ARGV[8] wake channel prefix
-- Returns {1, successors made ready} or {0, 'fenced', current state, current token}.
local prefix, ds, stage, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c, f = fenced(prefix, ds, stage, token, KEYS[1], KEYS[2], ARGV[7], ARGV[6])
if not c then return f end
redis.call('ZREM', KEYS[3], member(ds, stage))
if ARGV[5] ~= '{}' then redis.call('HSET', KEYS[4], stage .. '.out', ARGV[5]) end
move(c, stage, 'running', 'done', '', token, f[3])
local n = promote_successors(c, stage) + maybe_rerun(c)
if n > 0 then wake(c, ARGV[8]) end
return {1, n}

-- giveback.lua: an agent that is shutting down hands a running item back unfinished. The
-- attempt does not count; the item is ready again for any agent.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] token  ARGV[5] who
-- ARGV[6] stream cap    ARGV[7] wake channel prefix
-- Returns {1} or {0, 'fenced', current state, current token}.
local prefix, ds, stage, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c, f = fenced(prefix, ds, stage, token, KEYS[1], KEYS[2], ARGV[6], ARGV[5])
if not c then return f end
redis.call('ZREM', KEYS[3], member(ds, stage))
redis.call('HINCRBY', KEYS[4], stage .. '.a', -1)
make_ready(c, stage, 'running', stage_info(c, stage), 'given back by ' .. c.who)
maybe_rerun(c)
wake(c, ARGV[7])
return {1}

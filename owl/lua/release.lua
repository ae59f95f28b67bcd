-- release.lua: an operator releases a held item. It goes back to where it was: a paused
-- running item runs on under its token with a fresh lease, and a 'release' message makes its
-- agent renew at once and resume the task; a dead item stays dead, a waiting one waits for
-- its predecessors, anything else is ready. A released running item is never stranded: it
-- is marked (S.rl = its token) until its agent renews it; if no agent does within the lease
-- (the agent died or gave the item up while it was held), the reaper makes it ready again
-- without counting the attempt (reap.lua), instead of charging a lease failure.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] dataset hash  KEYS[4] held  KEYS[5] dead
-- KEYS[6] leases
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] who  ARGV[5] stream cap
-- ARGV[6] wake channel prefix  ARGV[7] lease (ms) for a resumed running item
-- Returns {1, new state} or {0, current state} when the item is not held.
local prefix, ds, stage = ARGV[1], ARGV[2], ARGV[3]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[5], ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local s = redis.call('HGET', KEYS[3], stage .. '.s')
if s ~= 'held' then return {0, s or 'missing'} end
local prev = redis.call('HGET', KEYS[3], stage .. '.hp')
redis.call('HDEL', KEYS[3], stage .. '.hp')
redis.call('ZREM', KEYS[4], member(ds, stage))
local info = stage_info(c, stage)
if prev == 'running' then
  local f = redis.call('HMGET', KEYS[3], stage .. '.k', stage .. '.a')
  move(c, stage, 'held', 'running', 'released', f[1], f[2])
  redis.call('HSET', KEYS[3], stage .. '.rl', f[1])
  redis.call('ZADD', KEYS[6], c.now + tonumber(ARGV[7]), member(ds, stage))
  wake(c, ARGV[6], 'release')
  return {1, 'running'}
end
if prev == 'dead' then
  move(c, stage, 'held', 'dead', 'released')
  redis.call('ZADD', KEYS[5], c.now, member(ds, stage))
  return {1, 'dead'}
end
if not preds_done(c, info) then
  move(c, stage, 'held', 'waiting', 'released')
  return {1, 'waiting'}
end
make_ready(c, stage, 'held', info, 'released')
wake(c, ARGV[6])
return {1, 'ready'}

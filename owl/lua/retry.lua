-- retry.lua: an operator retries a dead item (its attempt count starts again from zero; its
-- failure records are kept), or cuts short the backoff of an item waiting to retry.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] dataset hash  KEYS[4] delayed  KEYS[5] dead
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] who  ARGV[5] stream cap
-- ARGV[6] wake channel prefix
-- Returns {1, previous state} or {0, current state} when the item is neither dead nor retry.
local prefix, ds, stage = ARGV[1], ARGV[2], ARGV[3]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[5], ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local s = redis.call('HGET', KEYS[3], stage .. '.s')
if s == 'dead' then
  redis.call('ZREM', KEYS[5], member(ds, stage))
  redis.call('HSET', KEYS[3], stage .. '.a', 0)
elseif s == 'retry' then
  redis.call('ZREM', KEYS[4], member(ds, stage))
else
  return {0, s or 'missing'}
end
make_ready(c, stage, s, stage_info(c, stage), 'retried by operator')
wake(c, ARGV[6])
return {1, s}

-- hold.lua: an operator holds an item: it will not run until released. A running item is
-- paused, not taken away: its lease is suspended and its token stays valid; a 'hold' message
-- on the wake-up channel makes its agent renew at once, learn of the hold (answer 2) and
-- pause the task (SIGSTOP to its process group, condor_hold); a lost message delays that
-- to its next renew. A completion or failure reported while held is fenced.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash  KEYS[5] delayed
-- KEYS[6] dead    KEYS[7] held
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] who  ARGV[5] stream cap
-- ARGV[6] reason  ARGV[7] wake channel prefix
-- Returns {1, previous state} or {0, current state} when there is nothing to hold
-- (done, skipped, already held, or 'missing').
local prefix, ds, stage = ARGV[1], ARGV[2], ARGV[3]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[5], ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local f = redis.call('HMGET', KEYS[4], stage .. '.s', stage .. '.k', stage .. '.a')
local s = f[1]
if not s then return {0, 'missing'} end
if s == 'done' or s == 'skipped' or s == 'held' then return {0, s} end
unindex(c, stage, s, {leases = KEYS[3], delayed = KEYS[5], dead = KEYS[6], held = KEYS[7]})
redis.call('HSET', KEYS[4], stage .. '.hp', s)
move(c, stage, s, 'held', ARGV[6], f[2], f[3])
redis.call('ZADD', KEYS[7], c.now, member(ds, stage))
if s == 'running' then wake(c, ARGV[7], 'hold') end
return {1, s}

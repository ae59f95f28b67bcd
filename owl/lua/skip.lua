-- skip.lua: an operator skips an item. A skipped stage counts as done for its successors,
-- which may become ready in the same step. Skipping a running item fences its agent.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash  KEYS[5] delayed
-- KEYS[6] dead    KEYS[7] held
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] who  ARGV[5] stream cap
-- ARGV[6] wake channel prefix  ARGV[7] reason
-- Returns {1, previous state, successors made ready} or {0, current state}.
local prefix, ds, stage = ARGV[1], ARGV[2], ARGV[3]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[5], ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local s = redis.call('HGET', KEYS[4], stage .. '.s')
if not s then return {0, 'missing'} end
if s == 'done' or s == 'skipped' then return {0, s} end
unindex(c, stage, s, {leases = KEYS[3], delayed = KEYS[5], dead = KEYS[6], held = KEYS[7]})
redis.call('HDEL', KEYS[4], stage .. '.hp')
move(c, stage, s, 'skipped', ARGV[7])
local n = promote_successors(c, stage)
if s == 'running' then n = n + maybe_rerun(c) end
if n > 0 then wake(c, ARGV[6]) end
return {1, s, n}

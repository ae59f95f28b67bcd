-- pause_dataset.lua: pause or resume one dataset. While paused its ready items stay ready
-- but off the ready queues (nothing claims them, including items that become ready later);
-- running items finish. Resuming puts its ready items back in the queues.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] dataset hash
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] 'pause' | 'resume'  ARGV[4] reason
-- ARGV[5] who  ARGV[6] stream cap  ARGV[7] wake channel prefix
-- Returns {1, ready items taken off or put back} or {0, 'missing' | 'paused' | 'not paused'}.
local prefix, ds, op = ARGV[1], ARGV[2], ARGV[3]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[6], ARGV[5], now_ms())
if not c then return {0, 'missing'} end
if op == 'pause' and c.paused then return {0, 'paused'} end
if op == 'resume' and not c.paused then return {0, 'not paused'} end
if op == 'pause' then
  redis.call('HSET', KEYS[3], 'P', ARGV[4] ~= '' and ARGV[4] or 'paused')
else
  redis.call('HDEL', KEYS[3], 'P')
end
local raw = redis.call('HGETALL', KEYS[3])
local n = 0
for i = 1, #raw, 2 do
  if string.sub(raw[i], -2) == '.s' and raw[i + 1] == 'ready' then
    local stage = string.sub(raw[i], 1, -3)
    if op == 'pause' then
      redis.call('ZREM', ready_key(c, stage), ds)
    else
      redis.call('ZADD', ready_key(c, stage), ready_score(c, stage_info(c, stage)), ds)
    end
    n = n + 1
  end
end
if op == 'resume' and n > 0 then wake(c, ARGV[7]) end
return {1, n}

-- unpark.lua: a draining campaign resumed: its parked ready items go back to the queues.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] the campaign's parked zset
-- ARGV[1] shard prefix  ARGV[2] campaign  ARGV[3] who  ARGV[4] stream cap
-- ARGV[5] wake channel prefix  ARGV[6] at most this many items
-- Returns {items put back, items still parked}.
local prefix, name = ARGV[1], ARGV[2]
local now = now_ms()
local got = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[6]) - 1, 'WITHSCORES')
local n = 0
local woken = {}  -- template -> a context of it, to wake each template's agents once
for j = 1, #got, 2 do
  redis.call('ZREM', KEYS[3], got[j])
  local ds, stage = split_member(got[j])
  local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[4], ARGV[3], now)
  if c and c.cp == name and not c.paused
      and redis.call('HGET', c.dskey, stage .. '.s') == 'ready' then
    redis.call('ZADD', ready_key(c, stage), tonumber(got[j + 1]), ds)
    n = n + 1
    woken[c.tpl] = c
  end
end
for _, c in pairs(woken) do wake(c, ARGV[5]) end
return {n, redis.call('ZCARD', KEYS[3])}

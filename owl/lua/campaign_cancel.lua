-- campaign_cancel.lua: withdraw a cancelled campaign's unfinished work in one shard, a batch
-- of datasets per call. Every ready, running, retrying or held item of the campaign's
-- generation becomes dead with the reason (a running one is fenced: its agent stops it at
-- the next renew); waiting items stay waiting behind them. The dataset returns to
-- 'production', so a later `owl retry` runs it on as ordinary work. A rerun still pending for
-- the dataset is dropped.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] the campaign's dataset zset  KEYS[4] dead zset
-- ARGV[1] shard prefix  ARGV[2] campaign  ARGV[3] who  ARGV[4] stream cap
-- ARGV[5] datasets per call  ARGV[6] reason
-- Returns {items made dead, datasets left in the campaign here}.
local prefix, name, who = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local k = shard_index(prefix)
local ids = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[5]) - 1)
local n = 0
for _, ds in ipairs(ids) do
  redis.call('ZREM', KEYS[3], ds)
  local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[4], who, now)
  local pending = c and redis.call('HGET', c.dskey, 'rr')
  if pending and cjson.decode(pending).cp == name then redis.call('HDEL', c.dskey, 'rr') end
  if c and c.cp == name then
    redis.call('HDEL', c.dskey, 'rr')
    local raw = redis.call('HGETALL', c.dskey)
    local states = {}
    for i = 1, #raw, 2 do
      if string.sub(raw[i], -2) == '.s' then states[string.sub(raw[i], 1, -3)] = raw[i + 1] end
    end
    for stage, s in pairs(states) do
      if s == 'ready' or s == 'running' or s == 'retry' or s == 'held' then
        unindex(c, stage, s, k)
        redis.call('HDEL', c.dskey, stage .. '.hp')
        move(c, stage, s, 'dead', ARGV[6])
        redis.call('HSET', c.dskey, stage .. '.e', string.sub(ARGV[6], 1, 200))
        redis.call('ZADD', KEYS[4], now, member(ds, stage))
        states[stage] = 'dead'
        n = n + 1
      end
    end
    for stage, s in pairs(states) do count(c, stage, s, -1) end
    c.cp = 'production'
    for stage, s in pairs(states) do count(c, stage, s, 1) end
    redis.call('HDEL', c.dskey, 'cp')
  end
end
return {n, redis.call('ZCARD', KEYS[3])}

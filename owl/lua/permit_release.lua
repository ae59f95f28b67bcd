-- permit_release.lua: items left 'running' (done, failed, given back, reaped): free their
-- permits, or, with a lifetime, renew them (control slot).
-- KEYS[1] permit owners hash
-- ARGV[1] control prefix  ARGV[2] '' to release, or the new lifetime (ms) to renew
-- ARGV[3..] items "DATASET|STAGE|TOKEN"
-- Returns the number of items that held permits.
local prefix, life = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
for i = 3, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    n = n + 1
    for _, name in ipairs(cjson.decode(raw)) do
      local zk = prefix .. 'permits:' .. name
      if life == '' then
        redis.call('ZREM', zk, ARGV[i])
      else
        redis.call('ZADD', zk, 'XX', now + tonumber(life), ARGV[i])
      end
    end
    if life == '' then redis.call('HDEL', KEYS[1], ARGV[i]) end
  end
end
return n

-- permit_take.lua: reserve up to N permits under every limit of a claim group (control slot).
-- Expired permits (their holder stopped renewing) are dropped first. A limit that is set
-- neither live nor by a template does not bind.
-- KEYS[1] live limits hash  KEYS[2] template limits hash  KEYS[3] permit owners hash
-- ARGV[1] control prefix "B:{ctl}:" (permit zsets are PREFIX.."permits:"..NAME)
-- ARGV[2] wanted N  ARGV[3] reservation id  ARGV[4] reservation lifetime (ms)
-- ARGV[5..] limit names ("pool:P", "stage:T:S", "campaign:C")
-- Returns the number granted, g <= N; g reservations "ID|i" are held under every limit.
local prefix, want, rid, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = want
local bound = {}
for i = 5, #ARGV do
  local name = ARGV[i]
  local limit = redis.call('HGET', KEYS[1], name) or redis.call('HGET', KEYS[2], name)
  if limit then
    local zk = prefix .. 'permits:' .. name
    local gone = redis.call('ZRANGEBYSCORE', zk, '-inf', now)
    for _, m in ipairs(gone) do
      redis.call('ZREM', zk, m)
      redis.call('HDEL', KEYS[3], m)
    end
    local free = tonumber(limit) - redis.call('ZCARD', zk)
    if free < g then g = math.max(0, free) end
    bound[#bound + 1] = zk
  end
end
for _, zk in ipairs(bound) do
  for j = 1, g do redis.call('ZADD', zk, now + ttl, rid .. '|' .. j) end
end
return g

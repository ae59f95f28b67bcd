-- renew.lua: extend the leases of items an agent holds, if its tokens are still current.
-- KEYS[1] leases
-- ARGV[1] shard prefix  ARGV[2] lease (ms)  ARGV[3..] triples: dataset, stage, token
-- Returns one value per triple: 1 renewed, 2 paused by an operator hold (the token is still
-- current; no lease runs while held), 0 fenced (the item is no longer this token's).
local prefix, lease = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 3, #ARGV, 3 do
  local ds, stage, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local dskey = prefix .. 'ds:' .. ds
  local f = redis.call('HMGET', dskey, stage .. '.s', stage .. '.k', stage .. '.hp',
                       stage .. '.rl')
  if f[1] == 'running' and f[2] == token then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, member(ds, stage))
    if f[4] then redis.call('HDEL', dskey, stage .. '.rl') end  -- resumed by its agent
    out[#out + 1] = 1
  elseif f[1] == 'held' and f[3] == 'running' and f[2] == token then
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
return out

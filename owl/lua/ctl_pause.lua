-- ctl_pause.lua: record or lift a persistent pause (control slot), with who and why.
-- KEYS[1] pauses hash  KEYS[2] control events stream
-- ARGV[1] 'pause' | 'resume'  ARGV[2] what "KIND:NAME" (stage:T:S, template:T, campaign:C,
-- dataset:D, agent:ID)  ARGV[3] who  ARGV[4] stream cap  ARGV[5] reason
-- Returns {1} changed, {0, 'paused'} already paused, {0, 'not paused'} nothing to resume.
local op, what, who, cap, why = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HGET', KEYS[1], what)
if op == 'pause' then
  if cur then return {0, 'paused'} end
  redis.call('HSET', KEYS[1], what, cjson.encode({by = who, why = why, t = now}))
else
  if not cur then return {0, 'not paused'} end
  redis.call('HDEL', KEYS[1], what)
end
local i = string.find(what, ':')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, '*', 'what', op,
           'kind', string.sub(what, 1, i - 1), 'name', string.sub(what, i + 1),
           'by', who, 'why', why, 't', now * 1000)
return {1}

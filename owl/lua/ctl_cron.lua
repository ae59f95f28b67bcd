-- ctl_cron.lua: fire one tick of a schedule exactly once, however many agents try.
-- KEYS[1] last-fired hash  KEYS[2] control events stream
-- ARGV[1] schedule name  ARGV[2] tick (ms since the epoch)  ARGV[3] who  ARGV[4] stream cap
-- ARGV[5] ticks missed between the last fired tick and this one (reported, not replayed)
-- Returns {1, previous tick} when this caller fires it, {0, last tick} when it already fired.
local name, tick, who, cap, missed = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local last = tonumber(redis.call('HGET', KEYS[1], name) or '0')
if tick <= last then return {0, tostring(last)} end
redis.call('HSET', KEYS[1], name, tostring(tick))
local t = redis.call('TIME')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, '*', 'what', 'tick', 'kind', 'schedule',
           'name', name, 'by', who, 'why', 'tick ' .. tostring(tick) .. ', missed ' .. missed,
           't', tonumber(t[1]) * 1000000 + tonumber(t[2]))
return {1, tostring(last)}

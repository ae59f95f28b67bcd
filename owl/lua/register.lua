-- register.lua: register one dataset and its work items; first stages become ready.
-- KEYS[1] dataset hash   KEYS[2] counts   KEYS[3] events   KEYS[4] datasets zset
-- ARGV[1] shard prefix   ARGV[2] dataset  ARGV[3] template  ARGV[4] version
-- ARGV[5] input path     ARGV[6] graph JSON {"order":[stage...], "stages":{stage:{a,n,p,m,b,f,x,j,nr}}}
-- ARGV[7] graph digest   ARGV[8] who      ARGV[9] stream cap
-- ARGV[10] wake channel prefix
-- ARGV[11] header metadata JSON (campaign selectors read it), or ''
-- Returns {1, nready} when registered; {0, template, version, input path} when the dataset
-- already exists (a no-op); {-1, 'template-conflict'} when this template version was registered
-- before with a different stage graph.
local prefix, ds, tpl, ver = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local head = redis.call('HMGET', KEYS[1], 't', 'v', 'p')
  return {0, head[1], head[2], head[3] or ''}
end
local tplkey = prefix .. 'tpl:' .. tpl .. ':' .. ver
local graph = cjson.decode(ARGV[6])
local digest = redis.call('HGET', tplkey, '_digest')
if not digest then
  redis.call('HSET', tplkey, '_digest', ARGV[7])
  for name, info in pairs(graph.stages) do
    redis.call('HSET', tplkey, name, cjson.encode(info))
  end
elseif digest ~= ARGV[7] then
  return {-1, 'template-conflict'}
end
local now = now_ms()
redis.call('HSET', KEYS[1], 't', tpl, 'v', ver, 'p', ARGV[5], 'c', now)
if ARGV[11] and ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'm', ARGV[11]) end
redis.call('ZADD', KEYS[4], now, ds)
local c = {prefix = prefix, ds = ds, dskey = KEYS[1], tpl = tpl, ver = ver, created = now,
           cp = 'production', gen = 1, paused = false, counts = KEYS[2], events = KEYS[3], maxlen = ARGV[9], who = ARGV[8], now = now}
local nready = 0
for _, name in ipairs(graph.order) do
  local info = graph.stages[name]
  if #info.a == 0 then
    make_ready(c, name, '', info, 'registered')
    nready = nready + 1
  else
    move(c, name, '', 'waiting', 'registered')
  end
end
if nready > 0 then wake_if_fresh(c, ARGV[10]) end
return {1, nready}

-- setrefs.lua: set reference overrides of a dataset (owl refs apply): later claims of its
-- items carry them and the tasks use them instead of the recorded choice.
-- KEYS[1] dataset hash
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] overrides JSON {name: file}
-- ARGV[4] who  ARGV[5] reason (for the dataset's history)
-- Returns {1, overrides JSON now in force} or {0, 'missing'}.
local c = context(ARGV[1], ARGV[2], nil, nil, 0, ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local cur = redis.call('HGET', KEYS[1], 'rf')
local rf = cur and cjson.decode(cur) or {}
for name, file in pairs(cjson.decode(ARGV[3])) do rf[name] = file end
local text = cjson.encode(rf)
redis.call('HSET', KEYS[1], 'rf', text)
remember(c, '*', '', '', ARGV[5], '', '')
return {1, text}

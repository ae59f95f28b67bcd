-- permit_settle.lua: turn a claim round's reservations into permits of the items it claimed
-- and drop the reservations it did not use (control slot).
-- KEYS[1] permit owners hash
-- ARGV[1] control prefix  ARGV[2] reservation id  ARGV[3] reservations held
-- ARGV[4] permit lifetime (ms; renewed with the items' leases)  ARGV[5] number of limits L
-- ARGV[6..5+L] limit names  then the claimed items "DATASET|STAGE|TOKEN"
-- Returns the number of item permits held.
local prefix, rid, held, life, nl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = {}
for i = 6, 5 + nl do names[#names + 1] = ARGV[i] end
local items = {}
for i = 6 + nl, #ARGV do items[#items + 1] = ARGV[i] end
for _, name in ipairs(names) do
  local zk = prefix .. 'permits:' .. name
  for j = 1, held do redis.call('ZREM', zk, rid .. '|' .. j) end
  for _, it in ipairs(items) do redis.call('ZADD', zk, now + life, it) end
end
for _, it in ipairs(items) do redis.call('HSET', KEYS[1], it, cjson.encode(names)) end
return #items

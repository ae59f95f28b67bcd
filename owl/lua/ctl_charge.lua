-- ctl_charge.lua: charge claims to campaigns' virtual times (stride scheduling) and note
-- when each was last served, or last seen with no ready work (band aging counts only the
-- time a campaign waits with work).
-- KEYS[1] virtual times hash  KEYS[2] last-served hash
-- ARGV[1] and on, pairs: campaign, items claimed divided by the campaign's weight (0: only seen idle)
-- Returns the number of campaigns charged.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV, 2 do
  local amount = tonumber(ARGV[i + 1])
  if amount > 0 then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[2], ARGV[i], now)
end
return #ARGV / 2

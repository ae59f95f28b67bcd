-- ctl_campaign.lua: create a campaign, or change its state (control slot).
-- A new campaign starts at the smallest virtual time of the active campaigns, so it gets
-- its share from now on and no catch-up burst.
-- KEYS[1] campaigns hash  KEYS[2] campaign states hash  KEYS[3] virtual times hash
-- KEYS[4] last-served hash  KEYS[5] control events stream
-- ARGV[1] 'create' | 'state'  ARGV[2] campaign  ARGV[3] who  ARGV[4] stream cap
-- ARGV[5] campaign JSON (create) or the new state (state)  ARGV[6] why
-- Returns {1, previous state ('' when created)} or {0, current state} when nothing changed
-- ('exists' when creating a campaign that exists, 'missing' when it does not exist).
local op, name, who, cap, arg, why = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function event(what, from, to)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', cap, '*', 'what', what, 'kind', 'campaign',
             'name', name, 'fr', from, 'to', to, 'by', who, 'why', why, 't', now * 1000)
end
local cur = redis.call('HGET', KEYS[2], name)
if op == 'create' then
  if cur then return {0, 'exists'} end
  local low = nil
  local states = redis.call('HGETALL', KEYS[2])
  for i = 1, #states, 2 do
    if states[i + 1] == 'active' then
      local p = tonumber(redis.call('HGET', KEYS[3], states[i]) or '0')
      if low == nil or p < low then low = p end
    end
  end
  redis.call('HSET', KEYS[1], name, arg)
  redis.call('HSET', KEYS[2], name, 'active')
  redis.call('HSET', KEYS[3], name, tostring(low or 0))
  redis.call('HSET', KEYS[4], name, now)
  event('create', '', 'active')
  return {1, ''}
end
if not cur then return {0, 'missing'} end
local allowed = {
  active = {paused = true, draining = true, cancelled = true},
  paused = {active = true, draining = true, cancelled = true},
  draining = {active = true, paused = true, cancelled = true, drained = true},
  drained = {active = true, cancelled = true},
  cancelled = {},
}
if cur == arg or not allowed[cur][arg] then return {0, cur} end
redis.call('HSET', KEYS[2], name, arg)
if arg == 'active' then redis.call('HSET', KEYS[4], name, now) end
event('state', cur, arg)
return {1, cur}

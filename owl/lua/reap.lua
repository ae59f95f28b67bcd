-- reap.lua: items whose lease deadline passed (their agent died or hung) count a failed
-- attempt of class 'lease': retry with backoff and jitter, or dead after max attempts.
-- The old token stays recorded but the item is no longer running, so the stale agent is
-- fenced on its next renew/complete/fail.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] delayed  KEYS[5] dead
-- ARGV[1] shard prefix  ARGV[2] who  ARGV[3] stream cap  ARGV[4] max items
-- ARGV[5] a random number in [0, 1) for jitter  ARGV[6] wake channel prefix
-- ARGV[7] seconds: nothing is reaped while this server has been up for less (a server
-- that was down longer than a lease finds every deadline passed; the owners still here
-- must get the chance to renew before anyone else may expire their items)
-- An item released after a hold that no agent renewed since (S.rl is its token: see
-- release.lua) is made ready again without counting the attempt: 'ready'.
-- Returns a flat list, 4 values per reaped item: dataset, stage, 'retry'|'dead'|'ready',
-- token (the agent that reaps releases the item's permits).
local prefix, who, maxlen = ARGV[1], ARGV[2], ARGV[3]
local info = redis.call('INFO', 'server')
local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)') or '0')
if uptime < tonumber(ARGV[7] or '0') then
  return {}
end
local now = now_ms()
local rand = tonumber(ARGV[5])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for i, m in ipairs(expired) do
  redis.call('ZREM', KEYS[3], m)
  local ds, stage = split_member(m)
  local c = context(prefix, ds, KEYS[1], KEYS[2], maxlen, who, now)
  local st = c and redis.call('HMGET', c.dskey, stage .. '.s', stage .. '.k', stage .. '.rl')
  if st and st[1] == 'running' and st[3] and st[3] == st[2] then
    -- released after a hold, and no agent took it back: not a failure of the task
    redis.call('HDEL', c.dskey, stage .. '.rl')
    redis.call('HINCRBY', c.dskey, stage .. '.a', -1)
    make_ready(c, stage, 'running', stage_info(c, stage),
               'released, but no agent resumed it')
    maybe_rerun(c)
    wake(c, ARGV[6])
    out[#out + 1] = ds
    out[#out + 1] = stage
    out[#out + 1] = 'ready'
    out[#out + 1] = st[2]
  elseif st and st[1] == 'running' then
    local info = stage_info(c, stage)
    local f = redis.call('HMGET', c.dskey, stage .. '.a', stage .. '.o', stage .. '.k')
    local attempt = tonumber(f[1] or '1')
    local raw = math.min(info.x, info.b * math.pow(info.f, math.max(0, attempt - 1)))
    local r = (rand + i * 0.6180339887) % 1
    local delay = math.floor(1000 * raw * (1 - info.j + 2 * info.j * r))
    local message = 'lease expired: agent ' .. (f[2] or '?') .. ' stopped renewing'
    local record = cjson.encode({attempt = attempt, class = 'lease', message = message,
                                 token = f[3] or '', who = who, t = now, traceback = ''})
    local res = fail_item(c, stage, 'lease', message, record, delay, KEYS[4], KEYS[5])
    maybe_rerun(c)
    out[#out + 1] = ds
    out[#out + 1] = stage
    out[#out + 1] = res[1]
    out[#out + 1] = f[3] or ''
  end
end
return out

-- claim.lua: claim up to N ready items of one template's stages in one shard.
-- First moves retry items whose backoff is over back to ready.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] delayed  KEYS[5] token counter
-- ARGV[1] shard prefix  ARGV[2] agent id  ARGV[3] lease (ms)  ARGV[4] max items N
-- ARGV[5] stream cap    ARGV[6] template  ARGV[7..] stages served
-- Returns a flat list, 8 values per claimed item: dataset, stage, token, attempt,
--   template version, input path, predecessor outputs JSON {"stage": outputs, ...},
--   memory request (MB) escalated by an earlier attempt, or ''
local prefix, who, lease, want, maxlen, tpl = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5], ARGV[6]
local now = now_ms()

local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[4], m)
  local ds, stage = split_member(m)
  local c = context(prefix, ds, KEYS[1], KEYS[2], maxlen, 'board', now)
  if c and redis.call('HGET', c.dskey, stage .. '.s') == 'retry' then
    make_ready(c, stage, 'retry', stage_info(c, stage), 'backoff over')
  end
end

local cand = {}
for i = 7, #ARGV do
  local rk = prefix .. 'ready:' .. tpl .. ':' .. ARGV[i]
  local got = redis.call('ZRANGE', rk, 0, want - 1, 'WITHSCORES')
  for j = 1, #got, 2 do
    cand[#cand + 1] = {ds = got[j], score = tonumber(got[j + 1]), stage = ARGV[i], rk = rk}
  end
end
table.sort(cand, function(x, y) return x.score < y.score end)

local out = {}
local taken = 0
for _, it in ipairs(cand) do
  if taken >= want then break end
  redis.call('ZREM', it.rk, it.ds)
  local c = context(prefix, it.ds, KEYS[1], KEYS[2], maxlen, who, now)
  if c and redis.call('HGET', c.dskey, it.stage .. '.s') == 'ready' then
    local token = redis.call('INCR', KEYS[5])
    local attempt = redis.call('HINCRBY', c.dskey, it.stage .. '.a', 1)
    redis.call('HSET', c.dskey, it.stage .. '.k', token, it.stage .. '.o', who)
    move(c, it.stage, 'ready', 'running', 'claimed', token, attempt)
    redis.call('ZADD', KEYS[3], now + lease, member(it.ds, it.stage))
    local path = redis.call('HGET', c.dskey, 'p') or ''
    local parts = {}
    for _, pred in ipairs(stage_info(c, it.stage).a) do
      local o = redis.call('HGET', c.dskey, pred .. '.out') or '{}'
      parts[#parts + 1] = '"' .. pred .. '":' .. o
    end
    out[#out + 1] = it.ds
    out[#out + 1] = it.stage
    out[#out + 1] = token
    out[#out + 1] = attempt
    out[#out + 1] = c.ver
    out[#out + 1] = path
    out[#out + 1] = '{' .. table.concat(parts, ',') .. '}'
    out[#out + 1] = redis.call('HGET', c.dskey, it.stage .. '.mem') or ''
    taken = taken + 1
  end
end
return out

-- sched_claim.lua: claim up to N ready items of one template's stages in one shard, in the
-- board's scheduling order. First moves retry items whose backoff is over back to ready.
-- Campaigns come ordered by the agent (effective band, then virtual time); inside the batch
-- the script does stride scheduling: it takes one item of the campaign with the lowest
-- (band, virtual time), adds 1/weight to that campaign's virtual time, and repeats. Inside a
-- campaign the lowest score over the stages goes first (priority, then oldest dataset).
-- A campaign the agent knows to have ready work elsewhere ('live') holds the others back:
-- none is taken once its virtual time is more than one item ahead of the best live one in
-- its band, so a shard short of the best campaign's work cannot skew the shares (the agent
-- then claims from the shards that have it).
-- The shard's copy of the control state (KEYS[6]) is checked here, so a pause or campaign
-- state change that has returned binds every claim after it.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] delayed  KEYS[5] token counter
-- KEYS[6] shard control hash  KEYS[7] provenance environments hash (id -> JSON)
-- ARGV[1] shard prefix  ARGV[2] agent id  ARGV[3] lease (ms)  ARGV[4] max items N
-- ARGV[5] stream cap    ARGV[6] template  ARGV[7] number of campaigns C
-- then C times: campaign, band, virtual time, weight, live (1: has ready work somewhere)
-- then groups to the end, 3 values each: campaign index (1-based), stage, cap (-1: no cap)
-- Returns a flat list, 16 values per claimed item: dataset, stage, token, attempt,
--   template version, input path, predecessor outputs JSON {"stage": outputs, ...},
--   memory request (MB) escalated by an earlier attempt or '', campaign, generation;
--   for skip-if-done: the item's last provenance, its environment id, the environment and
--   its outputs ('' when never completed), predecessor provenance JSON {"stage": pv, ...},
--   and the dataset's reference overrides JSON (its 'rf' field, '' for none)
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

local ctl = {}
local raw = redis.call('HGETALL', KEYS[6])
for i = 1, #raw, 2 do ctl[raw[i]] = raw[i + 1] end
if ctl['pause:template:' .. tpl] then return {} end

local camps = {}
local ncamp = tonumber(ARGV[7])
for i = 1, ncamp do
  local b = 8 + (i - 1) * 5
  local name = ARGV[b]
  local state = ctl['cstate:' .. name] or 'active'
  camps[i] = {name = name, band = tonumber(ARGV[b + 1]), pass = tonumber(ARGV[b + 2]),
              weight = tonumber(ARGV[b + 3]), live = ARGV[b + 4] == '1', cand = {}, next = 1,
              ok = state == 'active' or state == 'draining', draining = state == 'draining'}
  if ctl['pause:campaign:' .. name] then camps[i].ok = false end
end

local caps = {}
for g = 8 + ncamp * 5, #ARGV, 3 do
  local cp, stage, cap = camps[tonumber(ARGV[g])], ARGV[g + 1], tonumber(ARGV[g + 2])
  if cp.ok and not ctl['pause:stage:' .. tpl .. ':' .. stage] then
    local rk = prefix .. 'ready:' .. cp.name .. ':' .. tpl .. ':' .. stage
    caps[cp.name .. '|' .. stage] = cap
    local got = redis.call('ZRANGE', rk, 0, want - 1, 'WITHSCORES')
    for j = 1, #got, 2 do
      cp.cand[#cp.cand + 1] = {ds = got[j], score = tonumber(got[j + 1]), stage = stage, rk = rk}
    end
  end
end
for _, cp in ipairs(camps) do
  table.sort(cp.cand, function(x, y) return x.score < y.score end)
end

local function pick()
  local best, low = nil, nil
  for _, cp in ipairs(camps) do
    if cp.ok and cp.live and (low == nil or cp.band < low.band
        or (cp.band == low.band and cp.pass < low.pass)) then
      low = cp
    end
  end
  for _, cp in ipairs(camps) do
    while cp.cand[cp.next] and caps[cp.name .. '|' .. cp.cand[cp.next].stage] == 0 do
      cp.next = cp.next + 1
    end
    local fair = low == nil or cp.band < low.band
      or (cp.band == low.band and cp.pass <= low.pass + 1 / cp.weight)
    if cp.cand[cp.next] and fair and (best == nil or cp.band < best.band
        or (cp.band == best.band and cp.pass < best.pass)) then
      best = cp
    end
  end
  return best
end

local out = {}
local taken = 0
local next_token, save_tokens = token_issuer(KEYS[5], now)
while taken < want do
  local cp = pick()
  if not cp then break end
  local it = cp.cand[cp.next]
  cp.next = cp.next + 1
  redis.call('ZREM', it.rk, it.ds)
  local st = it.stage
  -- one read of everything the claim needs from the dataset hash (x[1] ... x[8])
  local c = context(prefix, it.ds, KEYS[1], KEYS[2], maxlen, who, now,
                    {st .. '.s', 'st', 'p', st .. '.mem', st .. '.pv', st .. '.pe', st .. '.out',
                     'rf'})
  local ok = c and c.cp == cp.name and not c.paused and c.x[1] == 'ready'
  if ok and cp.draining and not c.x[2] then
    -- a draining campaign finishes the datasets it started; the others wait, parked
    redis.call('ZADD', prefix .. 'parked:' .. cp.name, it.score, member(it.ds, st))
    ok = false
  end
  if ok then
    local token = next_token()
    local attempt = redis.call('HINCRBY', c.dskey, st .. '.a', 1)
    redis.call('HSET', c.dskey, st .. '.k', token, st .. '.o', who, 'st', 1)
    move(c, st, 'ready', 'running', 'claimed', token, attempt)
    redis.call('ZADD', KEYS[3], now + lease, member(it.ds, st))
    local preds = stage_info(c, st).a
    local parts, pvs = {}, {}
    if #preds > 0 then
      local fields = {}
      for _, pred in ipairs(preds) do
        fields[#fields + 1] = pred .. '.out'
        fields[#fields + 1] = pred .. '.pv'
      end
      local got = redis.call('HMGET', c.dskey, unpack(fields))
      for i, pred in ipairs(preds) do
        parts[#parts + 1] = '"' .. pred .. '":' .. (got[2 * i - 1] or '{}')
        if got[2 * i] then pvs[#pvs + 1] = '"' .. pred .. '":' .. got[2 * i] end
      end
    end
    local pv, pe, o = c.x[5], c.x[6], c.x[7]
    out[#out + 1] = it.ds
    out[#out + 1] = st
    out[#out + 1] = token
    out[#out + 1] = attempt
    out[#out + 1] = c.ver
    out[#out + 1] = c.x[3] or ''
    out[#out + 1] = '{' .. table.concat(parts, ',') .. '}'
    out[#out + 1] = c.x[4] or ''
    out[#out + 1] = c.cp
    out[#out + 1] = c.gen
    out[#out + 1] = pv or ''
    out[#out + 1] = pe or ''
    out[#out + 1] = (pe and redis.call('HGET', KEYS[7], pe)) or ''
    out[#out + 1] = o or ''
    out[#out + 1] = '{' .. table.concat(pvs, ',') .. '}'
    out[#out + 1] = c.x[8] or ''
    taken = taken + 1
    cp.pass = cp.pass + 1 / cp.weight
    local ck = cp.name .. '|' .. st
    if caps[ck] > 0 then caps[ck] = caps[ck] - 1 end
  end
end
save_tokens()
return out

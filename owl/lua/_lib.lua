-- _lib.lua: helpers prepended to every owl transition script (never run on its own).
--
-- A "context" c describes one dataset inside one shard:
--   c.prefix  shard prefix "B:{sN}:"     c.ds     dataset id
--   c.dskey   dataset hash key           c.tpl    template name   c.ver  template version
--   c.counts  counts hash key            c.events events stream key
--   c.maxlen  approximate stream cap     c.who    actor (agent id, "operator:NAME", ...)
--   c.now     milliseconds from the Redis clock (TIME), the only clock the board trusts
--   c.created when the dataset was registered (ms)
--   c.cp      the campaign of the dataset's current generation ('production' when unset)
--   c.gen     the current generation (1 when unset)
--   c.paused  the dataset is paused by an operator (its ready items stay off the queues)

-- The Redis clock, read once per script call: every transition of one call happens at one
-- instant (the script is atomic), so its events share one timestamp. {seconds, micros}.
local CLOCK = nil
local function clock()
  if not CLOCK then
    local t = redis.call('TIME')
    CLOCK = {tonumber(t[1]), tonumber(t[2])}
  end
  return CLOCK
end

local function now_ms()
  local t = clock()
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- A new fencing token from the shard's counter KEY: max(last + 1, NOW (ms) * 1000), as a
-- decimal integer string. Tokens stay unique even when a Redis restart rolls the counter
-- back (a SIGKILL with appendfsync everysec, a failover to a lagging replica): a token issued
-- at millisecond m is below (m + 1) * 1000 while a shard issues fewer than 1000 claims per
-- millisecond, and a restart takes longer than a millisecond of the server's clock, so the
-- first token after it exceeds every token before it. (The server's clock must not step
-- back across the restart by more than that.) Below 2^53 until the year 2255: exact as a
-- Lua number, a Python int and a JSON number, and compared as the same string everywhere.
-- Returns two functions: issue() gives the next token; save() writes the last one issued
-- back to KEY (once per script call, however many tokens it issued).
local function token_issuer(key, now)
  local last = nil
  local function issue()
    if last == nil then last = tonumber(redis.call('GET', key) or '0') end
    last = math.max(last + 1, now * 1000)
    return string.format('%d', last)
  end
  local function save()
    if last ~= nil then redis.call('SET', key, string.format('%d', last)) end
  end
  return issue, save
end

-- EXTRA (optional): more fields of the dataset hash read in the same HMGET, returned as
-- c.x (false for a missing field).
local function context(prefix, ds, counts, events, maxlen, who, now, extra)
  local dskey = prefix .. 'ds:' .. ds
  local head = redis.call('HMGET', dskey, 't', 'v', 'c', 'cp', 'g', 'P', unpack(extra or {}))
  if not head[1] then return nil end
  local x = {}
  for i = 7, #head do x[#x + 1] = head[i] end
  return {prefix = prefix, ds = ds, dskey = dskey, tpl = head[1], ver = head[2],
          created = tonumber(head[3]), cp = head[4] or 'production',
          gen = tonumber(head[5] or '1'), paused = head[6] ~= false,
          counts = counts, events = events, maxlen = maxlen, who = who, now = now, x = x}
end

-- The start of every fenced transition: the dataset's context and the item's state, token
-- and attempt; or nil and the 'fenced' reply when the item is not running under TOKEN.
local function fenced(prefix, ds, stage, token, counts, events, maxlen, who)
  local c = context(prefix, ds, counts, events, maxlen, who, now_ms(),
                    {stage .. '.s', stage .. '.k', stage .. '.a', 'rr'})
  if not c then return nil, {0, 'fenced', 'missing', ''} end
  local f = c.x
  c.rr = f[4]  -- a pending rerun (maybe_rerun), read in the same HMGET
  if f[1] ~= 'running' or f[2] ~= token then
    return nil, {0, 'fenced', f[1] or 'missing', f[2] or ''}
  end
  return c, f
end

-- A stage's graph entry (owl.board.stage_graph), decoded once per script call.
local STAGES = {}
local function stage_info(c, stage)
  local key = c.prefix .. 'tpl:' .. c.tpl .. ':' .. c.ver
  local byver = STAGES[key]
  if not byver then
    byver = {}
    STAGES[key] = byver
  end
  local info = byver[stage]
  if info == nil then
    local raw = redis.call('HGET', key, stage)
    info = raw and cjson.decode(raw) or false
    byver[stage] = info
  end
  return info or nil
end

local function member(ds, stage) return ds .. '|' .. stage end

local function split_member(m)
  local i = string.find(m, '|[^|]*$')
  return string.sub(m, 1, i - 1), string.sub(m, i + 1)
end

-- One-letter states in the per-dataset history (owl.model.LETTERS); '-' for none.
local LETTER = {waiting = 'w', ready = 'r', running = 'p', retry = 'b', done = 'c',
                dead = 'x', held = 'h', skipped = 's'}
-- Entries kept per dataset history list (the oldest are trimmed, 20 at a time).
local HISTORY_CAP = 200

local function letter(state)
  if state == nil or state == '' then return '-' end
  return LETTER[state] or state
end

-- Append one entry to the dataset's own history list (the capped event stream forgets;
-- this list does not, up to HISTORY_CAP entries per dataset). Tab-separated, the reason
-- last so it may hold anything: ms since registration, stage, from and to letters, token,
-- attempt, actor, reason. Stage '*' marks a dataset-wide entry (operator action, refs).
local function remember(c, stage, from, to, why, token, attempt)
  -- Transitions the template implies are not kept: a registered stage waiting for its
  -- predecessors, and its becoming ready when the last of them is done (the 'done' entry
  -- before it says when). Reruns, retries and operator actions are all kept.
  why = why or ''
  if (to == 'waiting' and why == 'registered')
      or (from == 'waiting' and to == 'ready' and string.sub(why, 1, 6) == 'after ') then
    return
  end
  local hk = c.prefix .. 'hist:' .. c.ds
  local n = redis.call('RPUSH', hk, table.concat({tostring(c.now - (c.created or c.now)),
    stage, letter(from) .. letter(to), tostring(token or ''), tostring(attempt or ''),
    c.who or '', string.sub(why, 1, 160)}, '\t'))
  if n > HISTORY_CAP + 20 then redis.call('LTRIM', hk, -HISTORY_CAP, -1) end
end

-- Per-state counters of an item: per template (status) and per campaign (scheduling, progress).
local function count(c, stage, state, n)
  redis.call('HINCRBY', c.counts, c.tpl .. '|' .. stage .. '|' .. state, n)
  redis.call('HINCRBY', c.prefix .. 'ccounts', c.cp .. '|' .. c.tpl .. '|' .. stage .. '|' .. state, n)
end

-- States that have no index of their own (ready queues are per campaign and skip paused
-- datasets): their items are kept in B:{sN}:ix:TPL:STAGE:STATE, by registration time, so an
-- operator filter (owl hold -t T -s S) walks only the matching items, never every dataset.
local INDEXED = {waiting = true, ready = true}

local function index_key(c, stage, state)
  return c.prefix .. 'ix:' .. c.tpl .. ':' .. stage .. ':' .. state
end

-- Move an item between states: hash fields, per-state counters and the audit event, together.
-- Events carry the Redis clock in microseconds ('t'), for latency measurements.
local function move(c, stage, from, to, why, token, attempt)
  local t = clock()
  local us = t[1] * 1000000 + t[2]
  redis.call('HSET', c.dskey, stage .. '.s', to, stage .. '.u', c.now)
  if from ~= '' then count(c, stage, from, -1) end
  count(c, stage, to, 1)
  if INDEXED[from] then redis.call('ZREM', index_key(c, stage, from), c.ds) end
  if INDEXED[to] then redis.call('ZADD', index_key(c, stage, to), c.created, c.ds) end
  redis.call('XADD', c.events, 'MAXLEN', '~', c.maxlen, '*',
             'ds', c.ds, 'st', stage, 'fr', from, 'to', to,
             'tk', token or '', 'at', attempt or '', 'by', c.who, 't', us, 'why', why or '')
  remember(c, stage, from, to, why, token, attempt)
end

-- Wake the agents serving c.tpl (a hint; they rescan anyway). CHANNEL is a prefix the
-- template name is appended to; a prefix inside the shard's hash slot ('{sN}') names a shard
-- channel (SPUBLISH: only the node owning the slot delivers it, Redis 7), any other a plain
-- channel (PUBLISH). An empty prefix publishes nothing. WHAT is the message: '1' (work may
-- be ready), or 'hold'/'release' (a running item was held or released: renew at once).
local function wake(c, channel, what)
  if channel == '' then return end
  if string.find(channel, '{', 1, true) then
    redis.call('SPUBLISH', channel .. c.tpl, what or '1')
  else
    redis.call('PUBLISH', channel .. c.tpl, what or '1')
  end
end

local function ready_key(c, stage)
  return c.prefix .. 'ready:' .. c.cp .. ':' .. c.tpl .. ':' .. stage
end

-- Scores are read lowest first: the oldest dataset first, so a dataset's next stage goes
-- ahead of newer datasets' first stages and datasets finish in the order they arrived; a
-- stage priority p counts as p x priority aging (shard ctl field 'pag', ms per point, default
-- one minute) of extra waiting: higher priority first, yet nothing starves behind it.
local AGING = {}  -- shard prefix -> priority aging (ms per point), read once per call
local function ready_score(c, info)
  local pag = AGING[c.prefix]
  if not pag then
    pag = tonumber(redis.call('HGET', c.prefix .. 'ctl', 'pag') or '60000')
    AGING[c.prefix] = pag
  end
  return c.created - (info.p or 0) * pag
end

-- A paused dataset's ready items stay ready but off the queues until it is resumed.
-- c.fresh lists the stages whose queue was empty before this item: see wake_if_fresh.
local function make_ready(c, stage, from, info, why)
  move(c, stage, from, 'ready', why)
  if not c.paused then
    local rk = ready_key(c, stage)
    redis.call('ZADD', rk, ready_score(c, info), c.ds)
    if redis.call('ZCARD', rk) == 1 then
      c.fresh = c.fresh or {}
      c.fresh[#c.fresh + 1] = stage
    end
  end
end

-- The wake-up of the hot paths (registration, completion): only when an item went into an
-- empty ready queue. An agent idles only after a claim found nothing it could take; while
-- a queue stays non-empty its items are taken by the next claim of any agent with a free
-- slot (completions claim behind themselves), or they wait on something that wakes the
-- agents when it changes (a pause, a resume, a limit freed by a completion: that completion
-- wakes always). Agents rescan every few seconds whatever happens. A full agent is then
-- not woken by every completion on the board (a quarter of its CPU at a few thousand
-- completions per second).
local function wake_if_fresh(c, channel)
  if c.fresh then wake(c, channel) end
end

-- Whether every predecessor is done or skipped; FINISHED (optional) is one known to be.
local function preds_done(c, info, finished)
  for _, pred in ipairs(info.a) do
    if pred ~= finished then
      local ps = redis.call('HGET', c.dskey, pred .. '.s')
      if ps ~= 'done' and ps ~= 'skipped' then return false end
    end
  end
  return true
end

-- Take an item out of the index its state keeps it in (before it changes state).
local function unindex(c, stage, state, k)
  local m = member(c.ds, stage)
  if state == 'ready' then redis.call('ZREM', ready_key(c, stage), c.ds)
  elseif state == 'retry' then redis.call('ZREM', k.delayed, m)
  elseif state == 'dead' then redis.call('ZREM', k.dead, m)
  elseif state == 'held' then redis.call('ZREM', k.held, m)
  elseif state == 'running' then redis.call('ZREM', k.leases, m)
  end
end

-- After STAGE became done or skipped: every waiting successor whose predecessors are all
-- done or skipped becomes ready, in this same script (nothing is stranded by a crash).
local function promote_successors(c, stage)
  local info = stage_info(c, stage)
  local n = 0
  for _, succ in ipairs(info.n) do
    if redis.call('HGET', c.dskey, succ .. '.s') == 'waiting' then
      local sinfo = stage_info(c, succ)
      if preds_done(c, sinfo, stage) then
        make_ready(c, succ, 'waiting', sinfo, 'after ' .. stage)
        n = n + 1
      end
    end
  end
  return n
end

-- A failed attempt (reported, or found by a lease reaper): retry after a delay, or dead.
-- Returns 'retry' or 'dead' and the due time (ms).
local function fail_item(c, stage, class, message, record, delay_ms, delayed, dead, final)
  local info = stage_info(c, stage)
  local attempt = tonumber(redis.call('HGET', c.dskey, stage .. '.a') or '0')
  local token = redis.call('HGET', c.dskey, stage .. '.k') or ''
  final = final or attempt >= (info.m or 1)
  for _, nr in ipairs(info.nr or {}) do
    if nr == class then final = true end
  end
  redis.call('HSET', c.dskey, stage .. '.e', string.sub(class .. ': ' .. message, 1, 200))
  redis.call('RPUSH', c.prefix .. 'err:' .. member(c.ds, stage), record)
  redis.call('LTRIM', c.prefix .. 'err:' .. member(c.ds, stage), -50, -1)
  if final then
    move(c, stage, 'running', 'dead', class .. ': ' .. message, token, attempt)
    redis.call('ZADD', dead, c.now, member(c.ds, stage))
    return {'dead', c.now}
  end
  local due = c.now + delay_ms
  move(c, stage, 'running', 'retry', class .. ': ' .. message, token, attempt)
  redis.call('HSET', c.dskey, stage .. '.d', due)
  redis.call('ZADD', delayed, due, member(c.ds, stage))
  return {'retry', due}
end

-- The index keys of a shard, built from its prefix (the names keys.py gives them).
local function shard_index(prefix)
  return {leases = prefix .. 'leases', delayed = prefix .. 'delayed', dead = prefix .. 'dead',
          held = prefix .. 'held'}
end

-- True when an item of the dataset is running, or held while running (its task is alive).
local function dataset_busy(raw)
  for i = 1, #raw, 2 do
    local f = raw[i]
    if string.sub(f, -2) == '.s' then
      local st = string.sub(f, 1, -3)
      if raw[i + 1] == 'running' then return true end
      if raw[i + 1] == 'held' then
        for j = 1, #raw, 2 do
          if raw[j] == st .. '.hp' and raw[j + 1] == 'running' then return true end
        end
      end
    end
  end
  return false
end

-- Start the next generation of a dataset (spec: from, cp, v, ov, reset[], drop[], who, why).
-- The current records of the stages reset or dropped are archived first (gen:DATASET); the
-- current outputs ('S.out') stay until the new generation completes the stage.
local function apply_rerun(c, spec)
  local k = shard_index(c.prefix)
  local raw = redis.call('HGETALL', c.dskey)
  local h = {}
  for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
  local rec = {g = c.gen, cp = c.cp, v = c.ver, t = c.now, by = spec.who, why = spec.why,
               from = spec.from, stages = {}}
  local touched = {}
  for _, st in ipairs(spec.reset) do touched[st] = true end
  for _, st in ipairs(spec.drop or {}) do touched[st] = true end
  -- every stage's counters leave the old campaign; the ones kept join the new one below
  local kept = {}
  for f, s in pairs(h) do
    if string.sub(f, -2) == '.s' then
      local st = string.sub(f, 1, -3)
      count(c, st, s, -1)
      if not touched[st] then kept[st] = s end
    end
  end
  for st in pairs(touched) do
    local s = h[st .. '.s']
    if s then
      rec.stages[st] = {s = s, a = tonumber(h[st .. '.a'] or '0'), k = h[st .. '.k'] or '',
                        o = h[st .. '.o'] or '', u = tonumber(h[st .. '.u'] or '0'),
                        e = h[st .. '.e'] or '', out = h[st .. '.out'] or '{}',
                        pv = h[st .. '.pv'] or '', pe = h[st .. '.pe'] or ''}
      unindex(c, st, s, k)
      redis.call('HDEL', c.dskey, st .. '.s', st .. '.a', st .. '.k', st .. '.o', st .. '.d',
                 st .. '.e', st .. '.mem', st .. '.hp', st .. '.u')
    end
  end
  for _, st in ipairs(spec.drop or {}) do redis.call('HDEL', c.dskey, st .. '.out') end
  redis.call('RPUSH', c.prefix .. 'gen:' .. c.ds, cjson.encode(rec))
  c.gen = c.gen + 1
  c.cp = spec.cp
  if spec.v and spec.v ~= '' then c.ver = spec.v end
  redis.call('HSET', c.dskey, 'g', c.gen, 'cp', c.cp, 'v', c.ver)
  redis.call('HDEL', c.dskey, 'st', 'rr')
  c.rr = false
  redis.call('ZADD', c.prefix .. 'cds:' .. c.cp, c.now, c.ds)
  for st, s in pairs(kept) do count(c, st, s, 1) end
  local why = 'rerun from ' .. spec.from .. ' (generation ' .. c.gen .. ')'
  local nready = 0
  for _, st in ipairs(spec.reset) do
    local info = stage_info(c, st)
    if preds_done(c, info) then
      make_ready(c, st, '', info, why)
      nready = nready + 1
    else
      move(c, st, '', 'waiting', why)
    end
  end
  return nready
end

-- Called when an item left 'running': a rerun recorded while the dataset was busy starts
-- once its last running item is out, so two generations never run at once.
local function maybe_rerun(c)
  local pending = c.rr
  if pending == nil then pending = redis.call('HGET', c.dskey, 'rr') end
  if not pending then return 0 end
  if dataset_busy(redis.call('HGETALL', c.dskey)) then return 0 end
  return apply_rerun(c, cjson.decode(pending))
end

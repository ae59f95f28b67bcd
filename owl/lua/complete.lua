-- complete.lua: fenced completion of an item with its provenance; successors whose
-- predecessors are all done become ready in the same step.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash
-- KEYS[5] provenance environments hash (id -> JSON)
-- KEYS[6] selection configs ("TEMPLATE|CFG" -> JSON)
-- KEYS[7] reference use ("TEMPLATE|STAGE|NAME" -> first seen, ms)
-- (the per-config selection zsets 'refsel:TEMPLATE:CFG' are built from the shard prefix)
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] token
-- ARGV[5] outputs JSON  ARGV[6] who  ARGV[7] stream cap  ARGV[8] wake channel prefix
-- ARGV[9] item provenance JSON, '' for none  ARGV[10] environment id
-- ARGV[11] environment JSON, '' when it is on the board already  ARGV[12] '1' when reused
-- ARGV[13] the dataset's selection entries "CFG|EPOCH;CFG|EPOCH" (one per member), ''
--   for none  ARGV[14] JSON {config id: config JSON text} of the configs they name
-- ARGV[15] '1': wake the agents only when a successor went into an empty queue (the item
--   held no permits); '2': the same, but the caller wakes them (it claims behind this
--   completion and wakes the others for what it did not take); '': whenever a successor
--   became ready
-- Returns {1, successors made ready, with '2' the stages of those that went into an empty
-- queue...} or {0, 'fenced', current state, current token}.
local prefix, ds, stage, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c, f = fenced(prefix, ds, stage, token, KEYS[1], KEYS[2], ARGV[7], ARGV[6])
if not c then return f end
redis.call('ZREM', KEYS[3], member(ds, stage))
if ARGV[5] ~= '{}' then redis.call('HSET', KEYS[4], stage .. '.out', ARGV[5]) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[4], stage .. '.pv', ARGV[9], stage .. '.pe', ARGV[10])
  -- A new environment is rare (a new code version, host or reference set): only then is
  -- the list of reference names this stage uses extended, for `owl refs diff`.
  if ARGV[11] ~= '' and redis.call('HSETNX', KEYS[5], ARGV[10], ARGV[11]) == 1 then
    for _, r in ipairs(cjson.decode(ARGV[11]).rf or {}) do
      redis.call('HSETNX', KEYS[7], c.tpl .. '|' .. stage .. '|' .. r[1], c.now)
    end
  end
end
-- Selection entries: one zset per (template, config) scored by exposure start, so a rules
-- change finds the datasets it moves by score ranges (owl.refs), not by reading them all.
local function selections(text, each)
  local i = 0
  for cid, epoch in string.gmatch(text, '([^|;]+)|([^;]+)') do
    i = i + 1
    each(prefix .. 'refsel:' .. c.tpl .. ':' .. cid, epoch, i == 1 and ds or (ds .. '#' .. i))
  end
end
if ARGV[13] ~= '' then
  local old = redis.call('HGET', KEYS[4], 'sel')
  if old then selections(old, function(key, _, m) redis.call('ZREM', key, m) end) end
  redis.call('HSET', KEYS[4], 'sel', ARGV[13])
  selections(ARGV[13], function(key, epoch, m) redis.call('ZADD', key, epoch, m) end)
  for id, cfg in pairs(cjson.decode(ARGV[14])) do
    redis.call('HSETNX', KEYS[6], c.tpl .. '|' .. id, cfg)
  end
end
move(c, stage, 'running', 'done', ARGV[12] == '1' and 'reused' or '', token, f[3])
local n = promote_successors(c, stage) + maybe_rerun(c)
local reply = {1, n}
if n > 0 then
  if ARGV[15] == '2' then
    for _, st in ipairs(c.fresh or {}) do reply[#reply + 1] = st end
  elseif ARGV[15] == '1' then
    wake_if_fresh(c, ARGV[8])
  else
    wake(c, ARGV[8])
  end
end
return reply

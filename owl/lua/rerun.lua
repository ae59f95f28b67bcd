-- rerun.lua: start the next generation of a dataset from a stage (operator rerun, campaign).
-- The stages in spec.reset go back to waiting/ready under the new generation's campaign; the
-- current records are archived (gen:DATASET). If an item of the dataset is running, the rerun
-- is recorded ('rr') and started by the script that takes its last running item out.
-- KEYS[1] counts  KEYS[2] events  KEYS[3] dataset hash
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] spec JSON {from, cp, v, ov, reset, drop, why}
-- ARGV[4] who  ARGV[5] stream cap  ARGV[6] wake channel prefix
-- ARGV[7] graph JSON of the target version ('' when it is the dataset's own)  ARGV[8] digest
-- Returns {1, items made ready} started; {2, 'pending'} recorded until running items finish;
-- {0, 'missing'}; {-1, 'template-conflict'}; {-2, current version} when the dataset is no
-- longer at spec.ov (the caller planned on another version and must plan again).
local prefix, ds = ARGV[1], ARGV[2]
local c = context(prefix, ds, KEYS[1], KEYS[2], ARGV[5], ARGV[4], now_ms())
if not c then return {0, 'missing'} end
local spec = cjson.decode(ARGV[3])
if spec.ov ~= c.ver then return {-2, c.ver} end
spec.who = ARGV[4]
if ARGV[7] ~= '' then
  local tplkey = prefix .. 'tpl:' .. c.tpl .. ':' .. spec.v
  local digest = redis.call('HGET', tplkey, '_digest')
  if not digest then
    redis.call('HSET', tplkey, '_digest', ARGV[8])
    for name, info in pairs(cjson.decode(ARGV[7]).stages) do
      redis.call('HSET', tplkey, name, cjson.encode(info))
    end
  elseif digest ~= ARGV[8] then
    return {-1, 'template-conflict'}
  end
end
if dataset_busy(redis.call('HGETALL', KEYS[3])) then
  redis.call('HSET', KEYS[3], 'rr', cjson.encode(spec))
  redis.call('ZADD', prefix .. 'cds:' .. spec.cp, c.now, ds)
  return {2, 'pending'}
end
local n = apply_rerun(c, spec)
if n > 0 then wake(c, ARGV[6]) end
return {1, n}

-- fail.lua: fenced report of a failed attempt: retry after a delay, or dead after the
-- template's max attempts (or at once for a failure class listed in no_retry).
-- KEYS[1] counts  KEYS[2] events  KEYS[3] leases  KEYS[4] dataset hash  KEYS[5] delayed
-- KEYS[6] dead
-- ARGV[1] shard prefix  ARGV[2] dataset  ARGV[3] stage  ARGV[4] token  ARGV[5] failure class
-- ARGV[6] message  ARGV[7] failure record JSON (kept in the item's error list)
-- ARGV[8] retry delay (ms)  ARGV[9] who  ARGV[10] stream cap
-- ARGV[11] memory request (MB) for the next attempt, or '' (condor memory escalation)
-- ARGV[12] '1' when no further attempt can succeed (e.g. the memory cap is reached)
-- Returns {1, 'retry'|'dead', due ms} or {0, 'fenced', current state, current token}.
local prefix, ds, stage, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local c, f = fenced(prefix, ds, stage, token, KEYS[1], KEYS[2], ARGV[10], ARGV[9])
if not c then return f end
redis.call('ZREM', KEYS[3], member(ds, stage))
if ARGV[11] ~= '' then redis.call('HSET', KEYS[4], stage .. '.mem', ARGV[11]) end
local r = fail_item(c, stage, ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), KEYS[5], KEYS[6],
                   ARGV[12] == '1')
maybe_rerun(c)
return {1, r[1], r[2]}

-- Cancels or removes one job by id. KEYS[1] jobs, KEYS[2] meta, KEYS[3] ready, KEYS[4]
-- delayed, KEYS[5] inflight, KEYS[6] dead, KEYS[7] reasons, KEYS[8] completed, KEYS[9]
-- progress, KEYS[10] origin, KEYS[11] the job's result record, KEYS[12] stats
-- ARGV[1] id, ARGV[2] 'cancel' (waiting or delayed jobs only), 'remove' (also dead and
-- completed ones) or 'dead' (dead ones only: what an operator deleting from the dead set
-- means, even if the message was replayed a moment before). An active job (leased to a
-- worker) is never touched.
-- Returns the state it was removed from ('waiting', 'delayed', 'dead', 'completed'), or
-- 'active' / 'kept:dead' / 'kept:completed' / 'not-dead' (not removed), or 'unknown'.
local id, mode = ARGV[1], ARGV[2]
if redis.call('ZSCORE', KEYS[5], id) then return 'active' end
local from
if mode == 'dead' then
  if redis.call('ZREM', KEYS[6], id) == 0 then return 'not-dead' end
  from = 'dead'
elseif redis.call('ZREM', KEYS[3], id) == 1 then
  from = 'waiting'
elseif redis.call('ZREM', KEYS[4], id) == 1 then
  from = 'delayed'
else
  local dead = redis.call('ZSCORE', KEYS[6], id)
  local completed = redis.call('ZSCORE', KEYS[8], id) or redis.call('EXISTS', KEYS[11]) == 1
  if mode ~= 'remove' then
    if dead then return 'kept:dead' end
    if completed then return 'kept:completed' end
    return 'unknown'
  end
  if dead then
    redis.call('ZREM', KEYS[6], id)
    from = 'dead'
  elseif completed then
    redis.call('ZREM', KEYS[8], id)
    from = 'completed'
  else
    return 'unknown'
  end
end
for _, k in ipairs({KEYS[1], KEYS[2], KEYS[7], KEYS[9], KEYS[10]}) do redis.call('HDEL', k, id) end
redis.call('DEL', KEYS[11])
redis.call('HINCRBY', KEYS[12], 'removed', 1)
return from

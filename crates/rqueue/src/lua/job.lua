-- Where one job is, in one read. KEYS[1] jobs, KEYS[2] meta, KEYS[3] ready, KEYS[4] delayed,
-- KEYS[5] inflight, KEYS[6] lease, KEYS[7] dead, KEYS[8] reasons, KEYS[9] completed,
-- KEYS[10] progress, KEYS[11] origin, KEYS[12] the job's result record; ARGV[1] id.
-- Returns {state ('active', 'waiting', 'delayed', 'dead', 'completed' or 'unknown'), score of
-- its set ('' if none: lease deadline, due, died or finished ms), payload, meta, last error,
-- progress, origin, lease token, server ms, then the result record's field, value pairs}.
-- The "last error" is the raw error history (errors.lua), parsed by the client.
local id = ARGV[1]
local state, score = 'unknown', false
local sets = {{KEYS[5], 'active'}, {KEYS[3], 'waiting'}, {KEYS[4], 'delayed'},
  {KEYS[7], 'dead'}, {KEYS[9], 'completed'}}
for _, s in ipairs(sets) do
  score = redis.call('ZSCORE', s[1], id)
  if score then
    state = s[2]
    break
  end
end
local record = redis.call('HGETALL', KEYS[12])
if not score and #record > 0 then state = 'completed' end
local t = redis.call('TIME')
local out = {state, score or '', redis.call('HGET', KEYS[1], id) or '',
  redis.call('HGET', KEYS[2], id) or '', redis.call('HGET', KEYS[8], id) or '',
  redis.call('HGET', KEYS[10], id) or '', redis.call('HGET', KEYS[11], id) or '',
  redis.call('HGET', KEYS[6], id) or '',
  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
for _, v in ipairs(record) do out[#out + 1] = v end
return out

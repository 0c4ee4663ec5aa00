-- A page of the dead set, oldest first. KEYS[1] dead, KEYS[2] jobs, KEYS[3] reasons
-- (also pages the completed set: KEYS[1] completed)
-- ARGV[1] offset, ARGV[2] count, ARGV[3] 'rev': newest first. Returns per message: id, died ms, reason, payload ('' if gone).
-- The reason is the raw error history (errors.lua), parsed by the client.
local cmd = ARGV[3] == 'rev' and 'ZREVRANGE' or 'ZRANGE'
local ids = redis.call(cmd, KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out

-- A running job's progress report, if its delivery still holds the lease. KEYS[1] lease,
-- KEYS[2] progress; ARGV[1] id, ARGV[2] token, ARGV[3] "<number>|<message>".
-- Returns 1 stored, 0 the lease was lost (nothing changed).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1

-- A fair waiter gives up: leaves the line. If the lock was handed to it meanwhile, it holds it.
-- KEYS[1] lock hash, KEYS[2] queue, KEYS[3] queue entry deadlines
-- ARGV[1] hold field, ARGV[2] waiter id
-- Returns {1, fence} when the waiter holds the lock, {0} when it left the line.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {1, tonumber(redis.call('HGET', KEYS[1], 'f'))}
end
redis.call('LREM', KEYS[2], 0, ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return {0}

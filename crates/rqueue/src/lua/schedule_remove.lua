-- Removes a schedule. KEYS[1] schedules, KEYS[2] sched_last; ARGV[1] name.
-- Jobs it already enqueued stay (and so do their origin entries). Returns 1 when the schedule
-- existed, else 0.
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])

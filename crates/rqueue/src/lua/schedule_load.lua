-- Reads what a scheduler needs in one round trip. KEYS[1] schedules (hash name -> encoded
-- definition), KEYS[2] sched_last (hash name -> last handled tick, server ms).
-- Returns {seconds, microseconds (the server's TIME), flat HGETALL of schedules, flat HGETALL
-- of sched_last}.
local t = redis.call('TIME')
return {t[1], t[2], redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}

-- Whether this user may subscribe to the wake-up channel ARGV[1]: a refused SUBSCRIBE is not
-- reported to the client, so the subscriber asks first (redis.acl_check_cmd: Redis 7+; older
-- servers answer yes). Returns 1, or a NOPERM error naming the channel.
if redis.acl_check_cmd and not redis.acl_check_cmd('SUBSCRIBE', ARGV[1]) then
  return redis.error_reply('NOPERM this user has no permissions to subscribe to the channel ' .. ARGV[1] .. ' (dlock wake-ups)')
end
return 1

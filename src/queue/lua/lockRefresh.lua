#!lua flags=allow-oom
-- Extend the Postgres read lock's lease, only if we still hold it.
-- KEYS[1] lock, ARGV[1] our value, ARGV[2] lease (ms)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0

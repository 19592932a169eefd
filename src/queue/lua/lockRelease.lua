#!lua flags=allow-oom
-- Release the Postgres read lock only if we still hold it: after a lease expired, another reader
-- may hold it now, and a plain DEL would free its lock.
-- KEYS[1] lock, ARGV[1] our value
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

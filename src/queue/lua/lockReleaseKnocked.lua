#!lua flags=allow-oom
-- Release the Postgres read lock if we still hold it (as lockRelease.lua), and say whether another
-- process knocked meanwhile (lockAcquire.lua): then our own next reader waits a moment.
-- KEYS[1] lock, KEYS[2] knock; ARGV[1] our value
-- Returns {1 if released, 1 if knocked}.
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  released = redis.call('DEL', KEYS[1])
end
return { released, redis.call('EXISTS', KEYS[2]) }

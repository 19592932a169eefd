#!lua
-- Enqueue film ids, each at most once while it waits (an edit storm indexes a film once).
-- KEYS[1] queue (list; LPUSH in, RPOP out: first in, first out)
-- KEYS[2] queued (set mirroring the list's members)
-- ARGV    film ids
-- Returns how many were new to the queue.
local added = 0
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('LPUSH', KEYS[1], ARGV[i])
    added = added + 1
  end
end
return added

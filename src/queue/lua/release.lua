-- Give a claim back: its ids go to the consuming end of the queue, in their original order, so
-- they are the next to be claimed. Ids queued again meanwhile are not duplicated.
-- KEYS[1] the processing list, KEYS[2] queue, KEYS[3] queued set, KEYS[4] claims hash
-- ARGV[1] worker id
-- Returns how many ids went back.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local back = 0
for i = #ids, 1, -1 do
  if redis.call('SADD', KEYS[3], ids[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ids[i])
    back = back + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return back

#!lua
-- Give one claim back: its ids go to the consuming end of the queue, in their original order, so
-- they are the next to be claimed. Ids queued again meanwhile are not duplicated.
-- With KEYS[5] (the claiming worker's heartbeat key) this is the reaper's call, and it does
-- nothing while that key exists: checked here, in the same atomic step, so a worker that came
-- back between the reaper's listing and this call keeps its claim.
-- KEYS[1] the claim's list, KEYS[2] queue, KEYS[3] queued set, KEYS[4] claims hash,
-- KEYS[5] (optional) the worker's heartbeat key
-- ARGV[1] claim id, ARGV[2..] (the worker's own call) the ids it holds
-- Returns how many ids went back, or -1 when the worker is alive.
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  return -1
end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
-- No list: the claim was acknowledged by a command whose answer never came back, or Redis lost it
-- (restarted empty, flushed, failed over to a replica that never had it). The worker's ids go back
-- from its hand: what was done is read once more; what was not, and may have changed since (a
-- deletion queued meanwhile and lost with the queue), is not lost.
-- One id at a time: unpack() of thousands of values overflows Lua's stack (claim.lua).
if #ids == 0 and #ARGV > 1 then
  for i = 2, #ARGV do
    ids[i - 1] = ARGV[i]
  end
end
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

#!lua
-- Finish one claim after Elasticsearch acknowledged it: drop exactly that claim's list and its
-- entry, and record the loaded ids in the capped history. Other claims, the same worker's
-- included, are untouched.
-- KEYS[1] the claim's list, KEYS[2] claims hash, KEYS[3] history list
-- ARGV[1] claim id, ARGV[2] history cap, ARGV[3..] history entries
-- Returns 1, or 0 when the claim was no longer there (the reaper gave it back meanwhile: its films
-- are queued again and will simply be indexed once more).
local existed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
if #ARGV > 2 then
  for i = 3, #ARGV, 1000 do
    redis.call('LPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
end
return existed

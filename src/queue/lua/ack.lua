-- Finish a claim after Elasticsearch acknowledged it: drop the processing list and record the
-- loaded ids in the capped history.
-- KEYS[1] the worker's processing list, KEYS[2] claims hash, KEYS[3] history list
-- ARGV[1] worker id, ARGV[2] history cap, ARGV[3..] history entries
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if #ARGV > 2 then
  for i = 3, #ARGV, 1000 do
    redis.call('LPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
end
return 1

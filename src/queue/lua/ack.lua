#!lua
-- Finish one claim after Elasticsearch acknowledged it: drop exactly that claim's list and its
-- entry, record the documents done in the capped history, and clear their dead letters (a
-- document that loaded fine, or that Elasticsearch holds in a newer version, is no longer dead).
-- Other claims, the same worker's included, are untouched. One script, so a batch costs one round
-- trip here instead of three.
-- KEYS[1] the claim's list, KEYS[2] claims hash, KEYS[3] history list, KEYS[4] dead-letters hash
-- ARGV[1] claim id, ARGV[2] history cap, ARGV[3] when (ISO time), ARGV[4..] the members done
-- (validated queue members: a uuid, persons/<uuid>, genres/<uuid>; nothing to escape in JSON)
-- Returns 1, or 0 when the claim was no longer there (the reaper gave it back meanwhile: its films
-- are queued again and will simply be indexed once more).
local existed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
if #ARGV > 3 then
  local suffix = '","at":"' .. ARGV[3] .. '"}'
  for i = 4, #ARGV, 1000 do
    local last = math.min(i + 999, #ARGV)
    local entries = {}
    for j = i, last do
      entries[#entries + 1] = '{"id":"' .. ARGV[j] .. suffix
    end
    redis.call('LPUSH', KEYS[3], unpack(entries))
    redis.call('HDEL', KEYS[4], unpack(ARGV, i, last))
  end
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
end
return existed

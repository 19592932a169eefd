#!lua
-- Clear the dead letters of documents the index holds in a version at least as new as the read
-- that was refused: a refused read written late (retried) after a newer read had loaded and been
-- acknowledged, whose letter no acknowledgement would ever clear. A letter without a version (or
-- one that is not JSON) is left alone: nothing says which read it was.
-- KEYS[1] dead-letters hash
-- ARGV member1, version1, member2, version2, ... (the version the index holds)
-- Returns how many letters were cleared.
local cleared = 0
for i = 1, #ARGV, 2 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local ok, letter = pcall(cjson.decode, raw)
    local refused = ok and type(letter) == 'table' and tonumber(letter.version) or nil
    local held = tonumber(ARGV[i + 1])
    if refused ~= nil and held ~= nil and refused <= held then
      redis.call('HDEL', KEYS[1], ARGV[i])
      cleared = cleared + 1
    end
  end
end
return cleared

#!lua
-- Drop a full-load plan (and its cursor) that no pass needs any more, only if it is still the one
-- read (by its id): a plan begun meanwhile by another syncer is left alone.
-- KEYS[1] plan, KEYS[2] cursor hash
-- ARGV[1] plan id
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
local ok, plan = pcall(cjson.decode, raw)
if not ok or type(plan) ~= 'table' or plan.id ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1

#!lua
-- A full load queued everything: set the watermarks it covers to its snapshot and drop its plan,
-- only if the state is still the one it began in (same epoch: Redis was not reset) and its plan is
-- still the one in force (no newer plan replaced it). A loader that outlived its plan leaves both
-- alone; the plan in force sets them when it finishes. So does a loader whose server restarted
-- under it (a new run_id: see fullLoadAdvance.lua).
-- It also removes the reload requests it served (src/queue/reloadRequests.ts), each only while it
-- is still the same request: an index created again after the plan began keeps its own. And it
-- records which index of each kind it filled, in the same step (ReloadRequests.accountedFor).
-- KEYS[1] epoch, KEYS[2] plan, KEYS[3] cursor hash, KEYS[4] reload requests, KEYS[5] indices
-- filled, KEYS[6..] watermarks
-- ARGV[1] the plan's epoch, ARGV[2] plan id, ARGV[3] the plan's snapshot (JSON),
-- ARGV[4] the server's run_id when the loader read the cursor ('' skips that check),
-- ARGV[5] the reload requests the plan serves (JSON object: kind -> request id),
-- ARGV[6] the indices it filled (JSON object: kind -> index uuid)
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('HGET', KEYS[3], 'plan') ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '' and ARGV[4] ~= string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') then
  return 0
end
for i = 6, #KEYS do
  redis.call('SET', KEYS[i], ARGV[3])
end
for kind, id in pairs(cjson.decode(ARGV[5])) do
  if redis.call('HGET', KEYS[4], kind) == id then
    redis.call('HDEL', KEYS[4], kind)
  end
end
for kind, uuid in pairs(cjson.decode(ARGV[6])) do
  redis.call('HSET', KEYS[5], kind, uuid)
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1

#!lua
-- Record which index a reload request is for (src/queue/reloadRequests.ts), only while that very
-- request is still pending. Written after the index is created, the record may reach a Redis that
-- restarted from a save older than the request (the client sends it again on the new server):
-- recorded there, it would vouch for an index whose request is gone, and nothing would load it.
-- A request served already, or replaced by another syncer's, leaves nothing recorded: the index
-- may then be loaded once more, never less.
-- KEYS[1] reload requests, KEYS[2] born records
-- ARGV[1] kind, ARGV[2] request id, ARGV[3] index uuid
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1

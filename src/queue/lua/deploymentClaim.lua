#!lua
-- Claim (or renew the claim on) the Redis prefix for one deployment (src/queue/deploymentClaim.ts),
-- in one step: a GET then a SET could renew over another deployment's claim made in between.
-- KEYS[1] the claim; ARGV[1] this syncer's claim (JSON: system, oid, indices, cluster, by),
-- ARGV[2] its life (ms)
-- Returns nil when the prefix is (now) this deployment's, or the claim of the one that holds it.
-- The same deployment: the same server and database, the same index names, and the same cluster
-- where both know theirs. A claim this very syncer renewed last is its own whatever it says:
-- its database restored in place (a new object id) is still this deployment.
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, held = pcall(cjson.decode, raw)
  local mine = cjson.decode(ARGV[1])
  if ok and type(held) == 'table' and held.by ~= mine.by then
    local function known(v)
      return type(v) == 'string' and v ~= ''
    end
    local same = held.system == mine.system and held.oid == mine.oid
      and type(held.indices) == 'table'
      and table.concat(held.indices, '\n') == table.concat(mine.indices, '\n')
      and (not known(held.cluster) or not known(mine.cluster) or held.cluster == mine.cluster)
    if not same then
      return raw
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return false

#!lua
-- The run_id of the Redis server that holds KEYS[1]: a new one after every restart. A server with
-- persistence comes back from a crash with what it last saved, the epoch included; only its run_id
-- tells that writes made since may be gone (see advanceWatermarks.lua). '' where a server does not
-- report one, which turns the check off.
-- KEYS[1] any key of the state (on Redis Cluster: the node that holds it)
return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''

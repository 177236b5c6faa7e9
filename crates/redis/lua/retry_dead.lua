-- ARGV: prefix, tenant, id, now_ms. Moves a dead job back to ready with fresh attempts.
local tenant, id = ARGV[2], ARGV[3]
if redis.call('ZREM', k('dead', tenant), id) == 0 then return 0 end
local jk = k('job', id)
local j = redis.call('HMGET', jk, 'priority', 'seq', 'dedupe')
redis.call('HSET', jk, 'attempts', 0, 'cancel', 0, 'failed_at', '', 'run_at', ARGV[4])
if j[3] and j[3] ~= '' then redis.call('SET', k('dedupe', tenant, j[3]), id, 'NX') end
make_ready(id, tenant, j[1], j[2])
notify(1)
return 1

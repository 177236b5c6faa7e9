-- ARGV: prefix, id, token, new_deadline_ms. Returns 'extended', 'cancelled' or 'lost'.
local jk = k('job', ARGV[2])
local j = redis.call('HMGET', jk, 'token', 'state', 'cancel')
if j[1] ~= ARGV[3] or j[2] ~= 'running' then return 'lost' end
redis.call('HSET', jk, 'deadline', ARGV[4])
redis.call('ZADD', k('leases'), 'XX', ARGV[4], ARGV[2])
if j[3] == '1' then return 'cancelled' end
return 'extended'

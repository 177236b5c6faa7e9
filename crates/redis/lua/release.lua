-- ARGV: prefix, id, token. Gives the job back untouched; the attempt does not count.
local id = ARGV[2]
local jk = k('job', id)
local j = redis.call('HMGET', jk, 'token', 'state', 'tenant', 'priority', 'seq')
if j[1] ~= ARGV[3] or j[2] ~= 'running' then return 0 end
unlease(id, j[3])
redis.call('HINCRBY', jk, 'attempts', -1)
make_ready(id, j[3], j[4], j[5])
notify(1)
return 1

-- ARGV: prefix, tenant, id. Returns 'removed', 'signalled' or 'not_found'.
local tenant, id = ARGV[2], ARGV[3]
local jk = k('job', id)
local j = redis.call('HMGET', jk, 'tenant', 'state', 'dedupe')
if j[1] ~= tenant then return 'not_found' end
if j[2] == 'ready' then
  redis.call('ZREM', k('ready', tenant), id)
  refresh_tenant(tenant)
elseif j[2] == 'delayed' then
  redis.call('ZREM', k('delayed'), id)
  if tonumber(redis.call('HINCRBY', k('scheduled'), tenant, -1)) <= 0 then redis.call('HDEL', k('scheduled'), tenant) end
elseif j[2] == 'running' then
  redis.call('HSET', jk, 'cancel', 1)
  return 'signalled'
else
  return 'not_found'
end
drop_dedupe(tenant, j[3], id)
redis.call('DEL', jk)
return 'removed'

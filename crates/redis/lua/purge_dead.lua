-- ARGV: prefix, tenant, id ('' for all of the tenant's dead jobs). Returns how many.
local tenant, id = ARGV[2], ARGV[3]
local ids
if id ~= '' then
  ids = {}
  if redis.call('ZSCORE', k('dead', tenant), id) then ids = {id} end
else
  ids = redis.call('ZRANGE', k('dead', tenant), 0, -1)
end
for _, x in ipairs(ids) do
  redis.call('ZREM', k('dead', tenant), x)
  redis.call('DEL', k('job', x))
end
return #ids

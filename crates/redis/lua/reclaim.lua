-- ARGV: prefix, now_ms. Expired leases: the worker is presumed dead; the attempt counts
-- as failed (retried at once, or dead-lettered when out of attempts).
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', k('leases'), '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  if redis.call('EXISTS', k('job', id)) == 1 then
    fail_job(id, 'lease expired: the worker stopped heartbeating', true, now, 0)
  else
    redis.call('ZREM', k('leases'), id)
  end
end
return #ids

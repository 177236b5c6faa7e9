-- ARGV: prefix, id, tenant, kind, priority, payload, run_at_ms, max_attempts, timeout_ms,
--       dedupe ('' for none), now_ms
local id, tenant, dedupe, run_at, now = ARGV[2], ARGV[3], ARGV[10], tonumber(ARGV[7]), tonumber(ARGV[11])
local jk = k('job', id)
if redis.call('EXISTS', jk) == 1 then return {'queued'} end
if dedupe ~= '' then
  local holder = redis.call('GET', k('dedupe', tenant, dedupe))
  if holder then return {'duplicate', holder} end
  redis.call('SET', k('dedupe', tenant, dedupe), id)
end
local seq = redis.call('INCR', k('seq'))
redis.call('HSET', jk, 'tenant', tenant, 'kind', ARGV[4], 'priority', ARGV[5], 'payload', ARGV[6],
  'run_at', run_at, 'max_attempts', ARGV[8], 'timeout_ms', ARGV[9], 'dedupe', dedupe,
  'attempts', 0, 'seq', seq, 'enqueued_at', now, 'cancel', 0)
if run_at > now then
  delay(id, tenant, run_at)
else
  make_ready(id, tenant, ARGV[5], seq)
  notify(1)
end
return {'queued'}

-- Enqueues a batch of jobs in one call.
-- ARGV: prefix, now_ms, then nine per job: id, tenant, kind, priority, payload, run_at_ms,
--       max_attempts, timeout_ms, dedupe ('' for none)
-- Returns one string per job: '' when it is queued (or already was), else the id of the job
-- that holds its dedupe key.
-- The hot loop passes ARGV strings through as they are (a Lua number becomes a string again
-- through printf) and builds keys by concatenation (k() allocates a table per call).
local now, jobs = ARGV[2], (#ARGV - 2) / 9
local seq = redis.call('INCRBY', k('seq'), jobs) - jobs
local job_prefix, dedupe_prefix, ready_prefix = P .. ':job:', P .. ':dedupe:', P .. ':ready:'
local out, heads, ready = {}, {}, 0
for j = 1, jobs do
  local a = 3 + (j - 1) * 9
  local id, tenant, priority, run_at, dedupe = ARGV[a], ARGV[a + 1], ARGV[a + 3], ARGV[a + 5], ARGV[a + 8]
  local jk = job_prefix .. id
  out[j] = ''
  local known, holder = redis.call('EXISTS', jk) == 1, false
  if not known and dedupe ~= '' then
    local dk = dedupe_prefix .. tenant .. ':' .. dedupe
    holder = redis.call('GET', dk)
    if not holder then redis.call('SET', dk, id) end
  end
  if holder then
    out[j] = holder
  elseif not known then
    seq = seq + 1
    local delayed = tonumber(run_at) > tonumber(now)
    redis.call('HSET', jk, 'tenant', tenant, 'kind', ARGV[a + 2], 'priority', priority,
      'payload', ARGV[a + 4], 'run_at', run_at, 'max_attempts', ARGV[a + 6],
      'timeout_ms', ARGV[a + 7], 'dedupe', dedupe, 'attempts', '0', 'seq', seq,
      'enqueued_at', now, 'cancel', '0', 'state', delayed and 'delayed' or 'ready', 'token', '')
    if delayed then
      delay(id, tenant, tonumber(run_at))
    else
      -- make_ready, with the tenant index updated once per tenant below.
      local sc = score(priority, seq)
      redis.call('ZADD', ready_prefix .. tenant, sc, id)
      if not heads[tenant] or sc < heads[tenant] then heads[tenant] = sc end
      ready = ready + 1
    end
  end
end
for tenant, sc in pairs(heads) do
  redis.call('ZADD', k('tenants'), 'LT', sc, tenant)
end
if ready > 0 then notify(ready) end
return out

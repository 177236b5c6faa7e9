-- ARGV: prefix, max, now_ms, lease_ms, tenant_limit, then one fresh token per job slot.
-- Picks, job by job, the best head among tenants below their running limit.
local max, now, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- Promote delayed jobs that are due.
local due = redis.call('ZRANGEBYSCORE', k('delayed'), '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', k('delayed'), id)
  local j = redis.call('HMGET', k('job', id), 'tenant', 'priority', 'seq')
  if j[1] then
    if tonumber(redis.call('HINCRBY', k('scheduled'), j[1], -1)) <= 0 then redis.call('HDEL', k('scheduled'), j[1]) end
    make_ready(id, j[1], j[2], j[3])
  end
end
local out = {}
local running = {}
local n = 0
while n < max do
  local cands = redis.call('ZRANGE', k('tenants'), 0, 255)
  local took = false
  for _, t in ipairs(cands) do
    local r = running[t]
    if r == nil then r = tonumber(redis.call('HGET', k('running'), t) or '0') end
    running[t] = r
    if r < limit then
      local head = redis.call('ZPOPMIN', k('ready', t))
      if #head > 0 then
        local id = head[1]
        local jk = k('job', id)
        n = n + 1
        local token = ARGV[5 + n]
        local deadline = now + lease
        redis.call('HSET', jk, 'state', 'running', 'token', token, 'deadline', deadline)
        local attempt = redis.call('HINCRBY', jk, 'attempts', 1)
        redis.call('ZADD', k('leases'), deadline, id)
        redis.call('HINCRBY', k('running'), t, 1)
        running[t] = r + 1
        local j = redis.call('HMGET', jk, 'tenant', 'kind', 'priority', 'payload', 'run_at',
          'max_attempts', 'timeout_ms', 'dedupe', 'enqueued_at')
        out[#out + 1] = {id, token, tostring(attempt), tostring(deadline), j[1], j[2], j[3], j[4], j[5], j[6], j[7], j[8], j[9]}
      end
      refresh_tenant(t)
      took = true
      break
    end
  end
  if not took then break end
end
return out

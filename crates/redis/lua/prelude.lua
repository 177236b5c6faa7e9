-- Shared helpers, prepended to every script. Keys live under one prefix with a hash tag
-- (e.g. "{mai}"), so in Redis Cluster every key of the queue sits in one slot.
-- Job hash fields: tenant kind priority payload run_at max_attempts timeout_ms dedupe
-- attempts seq enqueued_at state(ready|delayed|running|dead) token deadline cancel
-- last_error failed_at
local P = ARGV[1]
local function k(...) return P .. ':' .. table.concat({...}, ':') end
local BAND = 1099511627776 -- 2^40: priority band width; FIFO sequence fits below it

local function score(priority, seq)
  return (9 - tonumber(priority)) * BAND + tonumber(seq)
end

-- Put a job on its tenant's ready list and keep the tenant index at the tenant's best head.
local function make_ready(id, tenant, priority, seq)
  local sc = score(priority, seq)
  redis.call('HSET', k('job', id), 'state', 'ready', 'token', '')
  redis.call('ZADD', k('ready', tenant), sc, id)
  redis.call('ZADD', k('tenants'), 'LT', sc, tenant)
end

local function refresh_tenant(tenant)
  local head = redis.call('ZRANGE', k('ready', tenant), 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('ZREM', k('tenants'), tenant)
  else
    redis.call('ZADD', k('tenants'), head[2], tenant)
  end
end

local function delay(id, tenant, at)
  redis.call('HSET', k('job', id), 'state', 'delayed', 'token', '', 'run_at', at)
  redis.call('ZADD', k('delayed'), at, id)
  redis.call('HINCRBY', k('scheduled'), tenant, 1)
end

local function drop_dedupe(tenant, dedupe, id)
  if dedupe and dedupe ~= '' then
    local dk = k('dedupe', tenant, dedupe)
    if redis.call('GET', dk) == id then redis.call('DEL', dk) end
  end
end

-- Wakes up to n idle workers (the list is capped: 256 wake-ups wake every worker there is).
local function notify(n)
  local ones = {}
  for i = 1, math.min(n, 256) do ones[i] = '1' end
  redis.call('LPUSH', k('notify'), unpack(ones))
  redis.call('LTRIM', k('notify'), 0, 255)
end

-- Ends a running job's lease bookkeeping (not its hash).
local function unlease(id, tenant)
  redis.call('ZREM', k('leases'), id)
  if tonumber(redis.call('HINCRBY', k('running'), tenant, -1)) <= 0 then
    redis.call('HDEL', k('running'), tenant)
  end
end

-- A failed attempt: back off or dead-letter. Returns {'retry', at} or {'dead'}.
local function fail_job(id, err, retryable, now, delay_ms)
  local jk = k('job', id)
  local j = redis.call('HMGET', jk, 'tenant', 'attempts', 'max_attempts', 'dedupe')
  local tenant = j[1]
  unlease(id, tenant)
  redis.call('HSET', jk, 'last_error', err, 'cancel', 0)
  if retryable and tonumber(j[2]) < tonumber(j[3]) then
    local at = now + delay_ms
    if delay_ms > 0 then
      delay(id, tenant, at)
    else
      local r = redis.call('HMGET', jk, 'priority', 'seq')
      make_ready(id, tenant, r[1], r[2])
      notify(1)
    end
    return {'retry', tostring(at)}
  end
  redis.call('HSET', jk, 'state', 'dead', 'token', '', 'failed_at', now)
  redis.call('ZADD', k('dead', tenant), now, id)
  drop_dedupe(tenant, j[4], id)
  return {'dead'}
end

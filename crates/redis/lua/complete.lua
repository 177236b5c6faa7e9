-- ARGV: prefix, then id, token pairs. Removes each job whose lease is still ours.
local n = 0
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = k('job', id)
  local j = redis.call('HMGET', jk, 'token', 'state', 'tenant', 'dedupe')
  if j[1] == token and j[2] == 'running' then
    unlease(id, j[3])
    drop_dedupe(j[3], j[4], id)
    redis.call('DEL', jk)
    n = n + 1
  end
end
return n

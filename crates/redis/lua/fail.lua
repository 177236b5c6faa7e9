-- ARGV: prefix, id, token, error, retryable (1/0), now_ms, delay_ms.
local jk = k('job', ARGV[2])
local j = redis.call('HMGET', jk, 'token', 'state')
if j[1] ~= ARGV[3] or j[2] ~= 'running' then return {'lost'} end
return fail_job(ARGV[2], ARGV[4], ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7]))

-- Every limit of one request, evaluated atomically (runtime/src/limit/shared.rs builds the call).
--
-- ARGV[1] is the request's deadline on Redis's clock (Unix microseconds; 0 for none): a call
-- that runs after it (Redis was frozen or swamped while the gateway gave up on it and answered
-- the client without it) does nothing and returns {-1, now}: a refused request counts nowhere.
-- KEYS[i] holds the state of limit i; ARGV[3i-1], ARGV[3i], ARGV[3i+1] describe it:
--   "r", T, tau     a GCRA rate: T = emission interval, tau = T * (burst - 1), in microseconds;
--                   the key holds the theoretical arrival time (TAT, Unix microseconds).
--   "q", limit, at  a quota counter for one calendar window, which expires at Unix second `at`.
-- Nothing is written unless every limit passes, so a refused request counts against none.
-- Returns {ok, now, then per limit: refused (0/1), remaining, reset (us, rates), retry (us, rates)}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local deadline = tonumber(ARGV[1])
if deadline > 0 and now > deadline then
  return {-1, now}
end
local out = {1, now}
local seen = {}   -- key -> value as this request left it, so a key named twice counts twice
local function read(key)
  local v = seen[key]
  if v == nil then
    v = tonumber(redis.call('GET', key)) or false
    seen[key] = v
  end
  return v
end
local tats = {}
for i = 1, #KEYS do
  local kind, a, b = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  if kind == 'r' then
    local tat = read(KEYS[i]) or now
    if tat < now then tat = now end
    if now < tat - b then
      out[1] = 0
      table.insert(out, 1); table.insert(out, 0)
      table.insert(out, tat - now); table.insert(out, tat - b - now)
    else
      local new = tat + a
      seen[KEYS[i]] = new
      tats[i] = new
      local remaining = math.floor((now + b - new) / a) + 1
      if remaining < 0 then remaining = 0 end
      table.insert(out, 0); table.insert(out, remaining)
      table.insert(out, new - now); table.insert(out, 0)
    end
  else
    local count = read(KEYS[i]) or 0
    if count >= a then
      out[1] = 0
      table.insert(out, 1); table.insert(out, 0)
    else
      seen[KEYS[i]] = count + 1
      table.insert(out, 0); table.insert(out, a - count - 1)
    end
    table.insert(out, 0); table.insert(out, 0)
  end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    if ARGV[3 * i - 1] == 'r' then
      -- The state is worth keeping only until the bucket is full again.
      local ttl = math.max(1, math.ceil((tats[i] - now) / 1000))
      redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl)
    else
      redis.call('INCR', KEYS[i])
      redis.call('EXPIREAT', KEYS[i], ARGV[3 * i + 1])
    end
  end
end
return out

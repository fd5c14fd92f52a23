-- Renewals: re-POST by the holder of one of 1000 held leases (200, same
-- token, fresh TTL). The names must be held by owner "bench" first (see
-- scripts/bench.sh). Usage: wrk ... -s renew.lua URL -- PREFIX
local n = 0
local prefix = "renew"
function init(args)
  prefix = args[1] or prefix
end
request = function()
  n = n + 1
  return wrk.format("POST", "/lock/" .. prefix .. "-" .. (n % 1000) .. "?owner=bench&ttl=30s")
end

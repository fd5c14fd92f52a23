-- Lock+unlock cycles: each connection alternates POST and DELETE on its own
-- name out of 1000 (so cycles do not contend), counting both as requests.
local names = 1000
local n = 0
local pending = {}
request = function()
  n = n + 1
  local name = "cycle-" .. (n % names)
  if pending[name] then
    pending[name] = nil
    return wrk.format("DELETE", "/lock/" .. name)
  end
  pending[name] = true
  return wrk.format("POST", "/lock/" .. name)
end

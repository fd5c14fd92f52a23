-- scripts/bench/lockd_fill.lua: acquire COUNT locks with 20-byte names
-- fill-%015d, numbered from START (wrk -t1 ... -- START COUNT). Once every
-- name has been sent, connections get GET /healthz. wrk cannot end a run
-- early (thread:stop() stops the thread, the process still sleeps for -d),
-- so bench-peers.sh watches GET /status and sends wrk SIGINT at COUNT.
local start, count = 0, 1000000
local sent = 0
local verified = false
function init(args)
  start = tonumber(args[1] or "0")
  count = tonumber(args[2] or "1000000")
end
request = function()
  -- wrk calls request() once before the run to check it (and never sends
  -- that one): do not spend a name on it
  if not verified then
    verified = true
    return wrk.format("GET", "/healthz")
  end
  if sent < count then
    local name = string.format("fill-%015d", start + sent)
    sent = sent + 1
    return wrk.format("POST", "/lock/" .. name)
  end
  return wrk.format("GET", "/healthz")
end

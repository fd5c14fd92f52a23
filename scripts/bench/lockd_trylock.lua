-- scripts/bench/lockd_trylock.lua: POST /lock/<prefix><counter>, every
-- request acquires a lock nobody holds. Same requests as
-- scripts/wrk/post_unique.lua, but the prefix comes from the command line
-- (wrk ... -- PREFIX): post_unique.lua draws it from LuaJIT's unseeded
-- math.random, so a second wrk run against the same node repeats the first
-- run's names and gets 409s.
local counter = 0
local prefix = "u" .. tostring(os.time()) .. "-"
function init(args)
  if args[1] then prefix = args[1] end
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/lock/" .. prefix .. counter)
end

-- POST /lock/<unique name>: every request acquires a lock nobody holds.
-- Usage: wrk ... -s post_unique.lua URL -- PREFIX   (PREFIX unique per run)
local counter = 0
local prefix = "b"
function init(args)
  prefix = (args[1] or tostring(os.time())) .. "-" .. tostring(math.random(1, 1e9)) .. "-"
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/lock/" .. prefix .. counter)
end

-- POST /lock/<unique name>?ttl=30s&owner=bench: acquire-with-lease of names
-- nobody holds. Usage: wrk ... -s post_ttl.lua URL -- PREFIX [TTL]
local counter = 0
local prefix, ttl = "t", "30s"
function init(args)
  prefix = (args[1] or tostring(os.time())) .. "-" .. tostring(math.random(1, 1e9)) .. "-"
  ttl = args[2] or "30s"
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/lock/" .. prefix .. counter .. "?owner=bench&ttl=" .. ttl)
end

-- POST /lock/<unique name>: every request acquires a lock nobody holds.
-- Names are unique per wrk thread and connection (counter + thread id).
local counter = 0
local prefix = "b" .. tostring(math.random(1, 1e9)) .. "-"
request = function()
  counter = counter + 1
  return wrk.format("POST", "/lock/" .. prefix .. counter)
end

-- scripts/bench/etcd.lua: lock workloads against etcd v3's JSON gateway
-- (grpc-gateway; keys and values are base64). Mode from the command line,
-- wrk ... -- MODE ARGS:
--   trylock PREFIX   try-lock of unique names: POST /v3/kv/txn, put if absent
--                    (compare create_revision == 0, then put)
--   cycle            lock+unlock cycles on 1000 names, as scripts/wrk/cycle.lua:
--                    that txn, then POST /v3/kv/deleterange of the same key
--   range KEY serializable|linearizable
--                    status of a held lock: POST /v3/kv/range
-- A txn whose compare fails still answers 200 (without "succeeded":true);
-- bench-peers.sh counts the keys afterwards to show the try-locks took.
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local floor = math.floor
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = floor(n / 262144) % 64, floor(n / 4096) % 64
    local c3, c4 = floor(n / 64) % 64, n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
      (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local VALUE = b64("1")
local headers = { ["Content-Type"] = "application/json" }
local mode, prefix, body = "trylock", "u" .. tostring(os.time()) .. "-", nil
local counter = 0
local pending = {}

local function txn_put_if_absent(k)
  local bk = b64(k)
  return wrk.format("POST", "/v3/kv/txn", headers,
    '{"compare":[{"key":"' .. bk .. '","target":"CREATE","result":"EQUAL","create_revision":"0"}],' ..
    '"success":[{"request_put":{"key":"' .. bk .. '","value":"' .. VALUE .. '"}}]}')
end

function init(args)
  mode = args[1] or mode
  if mode == "trylock" then
    prefix = args[2] or prefix
  elseif mode == "range" then
    body = '{"key":"' .. b64(args[2] or "bench-held") .. '"' ..
      (args[3] == "serializable" and ',"serializable":true' or '') .. '}'
  elseif mode ~= "cycle" then
    error("etcd.lua: unknown mode " .. mode)
  end
end

local verified = false
request = function()
  -- wrk calls request() once before the run to check it and never sends it:
  -- keep it from spending a name (and from flipping a cycle's state)
  if not verified then
    verified = true
    return wrk.format("GET", "/health")
  end
  if mode == "trylock" then
    counter = counter + 1
    return txn_put_if_absent("lock/" .. prefix .. counter)
  elseif mode == "cycle" then
    counter = counter + 1
    local name = "cycle-" .. (counter % 1000)
    if pending[name] then
      pending[name] = nil
      return wrk.format("POST", "/v3/kv/deleterange", headers, '{"key":"' .. b64(name) .. '"}')
    end
    pending[name] = true
    return txn_put_if_absent(name)
  end
  return wrk.format("POST", "/v3/kv/range", headers, body)
end

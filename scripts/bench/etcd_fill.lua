-- scripts/bench/etcd_fill.lua: put COUNT keys fill-%015d (20 bytes) from
-- START into etcd through its JSON gateway, BATCH puts per /v3/kv/txn
-- (wrk -t1 ... -- START COUNT BATCH); then GET /health until bench-peers.sh,
-- which watches the revision, sends wrk SIGINT. For the memory figure only.
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
local start, count, batch = 0, 0, 50
local sent = 0
local verified = false

function init(args)
  start = tonumber(args[1] or "0")
  count = tonumber(args[2] or "1000000")
  batch = tonumber(args[3] or "50")
end

request = function()
  -- wrk calls request() once before the run to check it, and never sends it
  if not verified or sent >= count then
    verified = true
    return wrk.format("GET", "/health")
  end
  local ops = {}
  local n = math.min(batch, count - sent)
  for i = 0, n - 1 do
    ops[#ops + 1] = '{"request_put":{"key":"' .. b64(string.format("fill-%015d", start + sent + i)) ..
      '","value":"' .. VALUE .. '"}}'
  end
  sent = sent + n
  return wrk.format("POST", "/v3/kv/txn", headers, '{"success":[' .. table.concat(ops, ",") .. ']}')
end

-- wrk script for `make bench` (benches/run.mjs runs it). Reads its settings from the environment:
--   KG_AUTH      value of the Authorization header sent with every request (unset: none)
--   KG_MODE      "static" (default): one pre-built request, wrk's fast path
--                "unknown": a fresh, well-formed but never-stored key on every request
--                (kg_live_ + 32 random base62 + CRC32 checksum as 6 base62, as key::parse wants)
--                "rotate": the keys of KG_KEYS (comma-separated) in turn, one per request
--   KG_PREFIX    key prefix for "unknown" (default kg)
-- When the run ends it prints one line `KG_RESULT {json}` with the counts and latency percentiles
-- (microseconds), which run.mjs parses.

local auth = os.getenv("KG_AUTH")
local mode = os.getenv("KG_MODE") or "static"
local prefix = os.getenv("KG_PREFIX") or "kg"

if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

if mode == "unknown" then
  local bit = require("bit")
  local band, bxor, rshift = bit.band, bit.bxor, bit.rshift
  local alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
  local chars = {}
  for i = 1, 62 do chars[i - 1] = alphabet:sub(i, i) end

  local crc_table = {}
  for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
      if band(c, 1) == 1 then c = bxor(rshift(c, 1), 0xEDB88320) else c = rshift(c, 1) end
    end
    crc_table[i] = c
  end
  local function crc32(s)
    local c = 0xFFFFFFFF
    for i = 1, #s do
      c = bxor(crc_table[band(bxor(c, s:byte(i)), 0xFF)], rshift(c, 8))
    end
    c = bxor(c, 0xFFFFFFFF)
    if c < 0 then c = c + 4294967296 end
    return c
  end
  local function base62_fixed(value, width)
    local out = {}
    for i = width, 1, -1 do
      out[i] = chars[value % 62]
      value = math.floor(value / 62)
    end
    return table.concat(out)
  end

  local path = wrk.path
  local headers = {}

  function init(args)
    -- wrk.headers has its Host only from here on.
    for k, v in pairs(wrk.headers) do headers[k] = v end
    -- Each wrk thread has its own Lua state: seed it differently.
    math.randomseed(os.time() + math.floor(os.clock() * 1e6) + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
  end

  function request()
    local body = {}
    for i = 1, 32 do body[i] = chars[math.random(0, 61)] end
    local head = prefix .. "_live_" .. table.concat(body)
    headers["Authorization"] = "Bearer " .. head .. base62_fixed(crc32(head), 6)
    return wrk.format(nil, path, headers)
  end
end

if mode == "rotate" then
  local keys = {}
  for key in (os.getenv("KG_KEYS") or ""):gmatch("[^,]+") do keys[#keys + 1] = key end
  assert(#keys > 0, "KG_KEYS is empty")
  local requests_by_key = {}
  local next_key = 0

  -- Built in init(): wrk sets wrk.headers.Host only then.
  function init(args)
    for i, key in ipairs(keys) do
      local headers = {}
      for k, v in pairs(wrk.headers) do headers[k] = v end
      headers["Authorization"] = "Bearer " .. key
      requests_by_key[i] = wrk.format(nil, wrk.path, headers)
    end
  end

  function request()
    next_key = next_key % #requests_by_key + 1
    return requests_by_key[next_key]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local function p(q) return latency:percentile(q) end
  io.write(string.format(
    'KG_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, p(50), p(90), p(99), p(99.9)))
end

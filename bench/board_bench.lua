-- bench/board_bench.lua — the board on a big log dir: 10^6 scalar events across 50 runs
-- (written here, with the TFRecord framing of nnvis.io.tensorboard and the C CRC of nnvis.http),
-- then the time from serve to the first /api/runs reply (every file read), one /api/scalars
-- reply (20,000 points downsampled to 2,000) and the same again (cached), and a poll that finds
-- nothing new.  Issue 28 asks for a first page in <= 2 s and a chart update in <= 200 ms.
-- TensorBoard is not installed here (Debian does not package it), so there is no comparison.
local nv = require "nnvis"
local TB = require "nnvis.io.tensorboard"
local http = require "nnvis.http"

local RUNS, PER_RUN = 50, 20000
local dir = os.tmpname()
os.remove(dir)

local function mask(c) return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xa282ead8) & 0xFFFFFFFF end
local function record(payload)
  local len = string.pack("<I8", #payload)
  return len .. string.pack("<I4", mask(http.crc32c(len))) .. payload .. string.pack("<I4", mask(http.crc32c(payload)))
end
local V = TB.varint
local tag = "\10" .. V(4) .. "loss"
local t0 = http.now()
for r = 1, RUNS do
  local d = string.format("%s/run%02d/train", dir, r)
  assert(nv.core.mkdirs(d))
  local f = assert(io.open(d .. "/events.out.tfevents.1.bench", "wb"))
  local parts = {}
  for i = 1, PER_RUN do
    local value = tag .. "\21" .. string.pack("<f", math.sin(i / 100) + r)
    local summary = "\10" .. V(#value) .. value
    parts[i] = record("\9" .. string.pack("<d", 1.7e9 + i) .. "\16" .. V(i) .. "\42" .. V(#summary) .. summary)
  end
  f:write(table.concat(parts))
  f:close()
end
local t_write = http.now() - t0

local function get(url)
  local p = io.popen("curl -s -o /dev/null -w '%{size_download}' '" .. url .. "'")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

local t1 = http.now()
local h = nv.board.serve{ logdir = dir, port = 0 }
local n_runs = get(h.url .. "api/runs")
local t_runs = http.now() - t1
local t2 = http.now()
local n_sc = get(h.url .. "api/scalars?run=run07%2Ftrain&tag=loss")
local t_sc = http.now() - t2
local t3 = http.now()
get(h.url .. "api/scalars?run=run07%2Ftrain&tag=loss")
local t_sc2 = http.now() - t3
http.sleep(1.05)
local t4 = http.now()
get(h.url .. "api/runs")
local t_poll = http.now() - t4
h:close()
os.execute("rm -rf '" .. dir .. "'")

print(string.format("%d scalar events in %d runs written in %.2f s", RUNS * PER_RUN, RUNS, t_write))
print(string.format("first /api/runs (every file read):     %7.0f ms  (%d bytes)", t_runs * 1000, n_runs))
print(string.format("/api/scalars, 20000 -> 2000 points:    %7.0f ms  (%d bytes)", t_sc * 1000, n_sc))
print(string.format("the same again (cached):               %7.0f ms", t_sc2 * 1000))
print(string.format("/api/runs with a rescan, nothing new:  %7.0f ms", t_poll * 1000))
print("(times include starting curl for each request; TensorBoard is not installed here to compare)")

-- bench/vgg16_forward.lua — a whole VGG16 forward at 224x224, batch 1, under no_grad, in a
-- process of its own so that its peak resident memory is its own.
local nv = require "nnvis"

local function status(key)
  local f = io.open("/proc/self/status")
  local s = f and f:read("a") or ""
  if f then f:close() end
  return (tonumber(s:match(key .. ":%s+(%d+)")) or 0) / 1024
end

local m = nv.models.vgg16 { init = false }   -- weights are zero: the arithmetic is the same
m:eval()
local x = nv.randn(1, 3, 224, 224)
local best = nv.no_grad(require("timing").best_of, 4, function() m(x) end)
print(string.format("VGG16 forward (224, batch 1, no_grad): %.3f s = %.1f GFLOPS; peak resident %.0f MiB " ..
  "(parameters %.0f MiB; target < 1024)", best, 30.95 / best, status("VmHWM"), 138357544 * 4 / 2 ^ 20))

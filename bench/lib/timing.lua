-- bench/lib/timing.lua — the shortest of n runs of f, in seconds (shared by the benchmarks).
local nv = require "nnvis"

local M = {}

function M.best_of(n, f)
  local best = math.huge
  for _ = 1, n do
    local t0 = nv.now()
    f()
    best = math.min(best, nv.now() - t0)
  end
  return best
end

return M

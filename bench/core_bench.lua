-- bench/core_bench.lua — sgemm GFLOPS with the OpenBLAS core nnvis chose (and, in child
-- processes, with the core OpenBLAS picks by itself and the one nnvis picks when
-- OPENBLAS_CORETYPE is unset), and elementwise / reduction throughput next to memcpy.
local nv = require "nnvis"

local best_of = require("timing").best_of

local function sgemm_gflops(n)
  local a, b = nv.randn(n, n), nv.randn(n, n)
  nv.matmul(a, b)
  local dt = best_of(5, function() nv.matmul(a, b) end)
  return 2 * n ^ 3 / dt / 1e9
end

if arg[1] == "--sgemm-only" then
  local cfg = nv.config()
  io.write(string.format("%s %.1f\n", cfg.blas_core, sgemm_gflops(2048)))
  os.exit(0)
end

local cfg = nv.config()
print(string.format("OpenBLAS core in use: %s (%s), threads: %d", cfg.blas_core,
  cfg.blas_core_chosen_by_nnvis and "chosen by nnvis" or
  ("OPENBLAS_CORETYPE=" .. tostring(os.getenv("OPENBLAS_CORETYPE")) .. " from the environment"), cfg.threads))
local g = sgemm_gflops(2048)
print(string.format("sgemm 2048x2048x2048: %.1f GFLOPS (%s)", g, cfg.blas_core))

-- the same call in child processes: the environment's setting vs nnvis' own choice
local lua = arg[-1] or "lua5.4"
local function child(envprefix)
  local p = io.popen(envprefix .. " " .. lua .. " bench/core_bench.lua --sgemm-only 2>/dev/null")
  local out = p:read("a")
  p:close()
  local core, gf = out:match("(%S+) ([%d%.]+)")
  return core, tonumber(gf)
end
local auto_core, auto = child("env -u OPENBLAS_CORETYPE")
local has_core, has = child("env OPENBLAS_CORETYPE=Haswell")
if auto and has then
  print(string.format("sgemm with OPENBLAS_CORETYPE unset (nnvis chooses %s): %.1f GFLOPS", auto_core, auto))
  print(string.format("sgemm with OPENBLAS_CORETYPE=Haswell (what OpenBLAS 0.3.21 detects here): %.1f GFLOPS", has))
  print(string.format("ratio nnvis' choice / Haswell: %.2fx", auto / has))
end

-- memory-bound ops against memcpy of the same size
local n = 16 * 1024 * 1024
local a, b = nv.randn(n), nv.randn(n)
local out = nv.zeros(n)
local mc = nv.core._memcpy_seconds(n, 10)
local memcpy_gbs = 2 * 4 * n / mc / 1e9
print(string.format("\nmemcpy of %d floats: %.1f GB/s (read + write)", n, memcpy_gbs))
local function report(name, bytes, f)
  f()
  local dt = best_of(5, f)
  local gbs = bytes / dt / 1e9
  print(string.format("%-22s %7.1f GB/s  %5.2fx memcpy", name, gbs, gbs / memcpy_gbs))
end
report("copy (t:copy)", 8 * n, function() out:copy(a) end)
report("add a+b", 12 * n, function() local _ = a + b end)
report("mul by scalar a*2", 8 * n, function() local _ = a * 2 end)
report("broadcast add (rows)", 8 * n + 4 * 1024, function() local _ = a:view(-1, 1024) + b:narrow(1, 1, 1024) end)
report("relu", 8 * n, function() local _ = a:relu() end)
report("exp", 8 * n, function() local _ = a:exp() end)
report("sum (all)", 4 * n, function() local _ = a:sum() end)
report("sum over last dim", 4 * n, function() local _ = a:view(-1, 1024):sum(2) end)
report("sum over first dim", 4 * n, function() local _ = a:view(-1, 1024):sum(1) end)
report("max over last dim", 4 * n, function() local _ = a:view(-1, 1024):max(2) end)

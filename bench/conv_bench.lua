-- bench/conv_bench.lua — VGG16's 13 convolution layers at 224x224, batch 1: forward and
-- forward+backward GFLOPS per layer next to the sgemm GFLOPS measured in the same run, and
-- each layer's forward with the built-in kernels (oneDNN off: Winograd F(2x2,3x3) on
-- OpenBLAS) and by im2col + gemm for comparison.
local nv = require "nnvis"

local best_of = require("timing").best_of

local cfg = nv.config()
local a, b = nv.randn(2048, 2048), nv.randn(2048, 2048)
nv.matmul(a, b)
local sg = 2 * 2048 ^ 3 / best_of(5, function() nv.matmul(a, b) end) / 1e9
a, b = nil, nil
print(string.format("OpenBLAS %s, %d threads; sgemm 2048: %.1f GFLOPS", cfg.blas_core, cfg.threads, sg))

local layers = { { 3, 64, 224 }, { 64, 64, 224 }, { 64, 128, 112 }, { 128, 128, 112 }, { 128, 256, 56 },
                 { 256, 256, 56 }, { 256, 256, 56 }, { 256, 512, 28 }, { 512, 512, 28 }, { 512, 512, 28 },
                 { 512, 512, 14 }, { 512, 512, 14 }, { 512, 512, 14 } }
print(string.format("\n%-5s %-16s %8s %8s %7s %8s %8s %10s %10s", "layer", "shape", "fwd ms", "GFLOPS", "/sgemm", "f+b ms", "GFLOPS",
  "winograd", "im2col ms"))
local tot_f, tot_fb, tot_flop = 0, 0, 0
nv.manual_seed(0)
for i, l in ipairs(layers) do
  local cin, cout, hw = l[1], l[2], l[3]
  local x = nv.randn(1, cin, hw, hw)
  local w = nv.randn(cout, cin, 3, 3) * 0.05
  local bias = nv.zeros(cout)
  local flop = 2 * cout * cin * 9 * hw * hw
  local tf = nv.no_grad(function()
    return best_of(3, function() nv.conv2d(x, w, bias, { padding = 1 }) end)
  end)
  local function fwd_with(cfg)
    nv.config(cfg)
    local t = nv.no_grad(function()
      return best_of(3, function() nv.conv2d(x, w, bias, { padding = 1 }) end)
    end)
    nv.config { onednn = true, winograd = true }
    return t
  end
  local tw = fwd_with { onednn = false, winograd = true }
  local ti = fwd_with { onednn = false, winograd = false }
  x:set_requires_grad(true); w:set_requires_grad(true); bias:set_requires_grad(true)
  local tfb = best_of(2, function()
    local y = nv.conv2d(x, w, bias, { padding = 1 })
    y:backward(nv.ones(y:shape()))
    x.grad, w.grad, bias.grad = nil, nil, nil
  end)
  tot_f, tot_fb, tot_flop = tot_f + tf, tot_fb + tfb, tot_flop + flop
  print(string.format("%-5d %-16s %8.2f %8.1f %6.0f%% %8.2f %8.1f %10.2f %10.2f", i, string.format("%d->%d @%d", cin, cout, hw),
    tf * 1e3, flop / tf / 1e9, 100 * flop / tf / 1e9 / sg, tfb * 1e3, 3 * flop / tfb / 1e9, tw * 1e3, ti * 1e3))
end
print(string.format("\nconv stack: %.1f GFLOP, forward %.3f s = %.1f GFLOPS = %.0f%% of sgemm (target >= 60%%)",
  tot_flop / 1e9, tot_f, tot_flop / tot_f / 1e9, 100 * tot_flop / tot_f / 1e9 / sg))
print(string.format("forward+backward %.3f s = %.1f GFLOPS", tot_fb, 3 * tot_flop / tot_fb / 1e9))
print(string.format("fwd and f+b: oneDNN's kernels (%s); winograd: the built-in Winograd F(2x2,3x3), which does 2.25x",
  require("nnvis.core").conv_impl(nv.randn(1, 64, 56, 56), nv.randn(64, 64, 3, 3), { padding = 1 })))
print("fewer multiply-adds than the direct convolution's counted here.  bench/forward_bench.lua measures whole models.")

-- the whole VGG16 forward runs in bench/vgg16_forward.lua, in its own process

-- bench/explain_bench.lua — what an explanation costs: each method's time as a multiple of
-- one forward of the same model (ResNet-18 at 224, batch 1, a forward that records the
-- graph), and, when Debian's python3-torch is installed, the same workloads' ratio to
-- PyTorch at the same thread count, all measured in this run (bench/torch_explain.py).
-- Ratios only: absolute times depend on the machine.  `lua5.4 bench/explain_bench.lua [quick]`
local nv = require "nnvis"
local best_of = require("timing").best_of

local quick = arg[1] == "quick"
local threads = nv.config().threads
nv.manual_seed(0)

-- PyTorch's numbers first (a child process: the two never compete for the cores)
local torch = {}
local py = "/usr/bin/python3"
local probe = io.popen(py .. " -c 'import torch, torchvision' 2>/dev/null && echo yes")
local has_torch = probe and probe:read("a"):match("yes")
if probe then probe:close() end
if has_torch then
  local dir = arg[0]:match("^(.*)/[^/]*$") or "."
  local p = io.popen(string.format("%s %s/torch_explain.py %d", py, dir, threads))
  for line in p:lines() do
    local k, v = line:match("^(%S+) (%S+)$")
    if k then torch[k] = tonumber(v) end
  end
  p:close()
end

local rows = {}
local function row(name, secs, base)
  rows[#rows + 1] = { name, secs, base }
  local t = torch[name]
  io.write(string.format("%-34s %8.3f s", name, secs))
  if base then io.write(string.format("  %6.2fx a forward", secs / base)) end
  if t then io.write(string.format("  %5.2fx PyTorch (%.3f s)", secs / t, t)) end
  io.write("\n")
  io.stdout:flush()
end

print(string.format("threads: %d, OpenBLAS core %s%s", threads, nv.config().blas_core,
  has_torch and "" or "; PyTorch not installed (apt-get install python3-torch python3-torchvision for ratios)"))

-- ResNet-18: every method against one forward
local r18 = nv.models.resnet18(); r18:eval()
local x = nv.rand(1, 3, 224, 224)
local fwd = best_of(3, function() r18(x:detach():set_requires_grad(true)) end)
row("resnet18.forward_graph", fwd)
row("resnet18.forward_b8", nv.no_grad(best_of, 3, function() r18(nv.rand(8, 3, 224, 224)) end))
local L = { layer = "layer4" }
local LB = { layer = "layer4", progress = false }
for _, m in ipairs { "gradcam", "gradcampp", "layercam", "xgradcam", "hirescam" } do
  row("resnet18." .. m, best_of(3, function() nv.cam[m](r18, x, L) end), fwd)
end
if not quick then
  row("resnet18.scorecam", best_of(1, function() nv.cam.scorecam(r18, x, LB) end), fwd)
  row("resnet18.ablationcam", best_of(1, function() nv.cam.ablationcam(r18, x, LB) end), fwd)
end
row("resnet18.saliency", best_of(3, function() nv.cam.saliency(r18, x) end), fwd)
row("resnet18.integrated_gradients", best_of(2, function() nv.cam.integrated_gradients(r18, x, { steps = 32, progress = false }) end), fwd)
row("resnet18.smoothgrad", best_of(2, function() nv.cam.smoothgrad(r18, x, { samples = 16, progress = false }) end), fwd)
row("resnet18.lrp", best_of(2, function() nv.cam.lrp(r18, x) end), fwd)
if not quick then
  -- 7x7 patches of 32 px at stride 32 (49 occluded inputs), RISE with 256 masks
  row("resnet18.occlusion_49", best_of(1, function() nv.cam.occlusion(r18, x, { patch = 32, stride = 32, progress = false }) end), fwd)
  row("resnet18.rise_256", best_of(1, function() nv.cam.rise(r18, x, { masks = 256, progress = false }) end), fwd)
end
r18 = nil
collectgarbage()

-- VGG16: Grad-CAM at features.28 and gradient ascent through features.0-14
local vgg = nv.models.vgg16(); vgg:eval()
local vf = best_of(3, function() vgg(x:detach():set_requires_grad(true)) end)
row("vgg16.forward_graph", vf)
row("vgg16.forward", nv.no_grad(best_of, 3, function() vgg(x) end))
row("vgg16.gradcam", best_of(3, function() nv.cam.gradcam(vgg, x, { layer = "features.28" }) end), vf)
local plain = { layer = "features.14", channel = 6, size = 128, steps = 40, param = "pixel", decorrelate = false,
                pad = false, jitter = false, scales = false, rotations = false }
row("vgg16.maximize40", best_of(2, function() nv.maximize(vgg, plain) end), vf)
vgg = nil
collectgarbage()

-- a small CNN's training step, batch 64 at 64x64
local cnn = nv.nn.Sequential {
  nv.nn.Conv2d(3, 32, 3, { padding = 1 }), nv.nn.ReLU(), nv.nn.MaxPool2d(2),
  nv.nn.Conv2d(32, 64, 3, { padding = 1 }), nv.nn.ReLU(), nv.nn.MaxPool2d(2),
  nv.nn.Flatten(), nv.nn.Linear(64 * 16 * 16, 10) }
local opt = nv.optim.Adam(cnn:parameters(), { lr = 1e-3 })
local xb, yb = nv.rand(64, 3, 64, 64), nv.tensor((function() local t = {} for i = 1, 64 do t[i] = i % 10 + 1 end return t end)())
row("train.small_cnn_step", best_of(5, function()
  opt:zero_grad()
  nv.cross_entropy(cnn(xb), yb):backward()
  opt:step()
end))

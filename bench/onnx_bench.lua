-- bench/onnx_bench.lua — ONNX import against PyTorch and against nnvis's native models:
-- logits of torchvision classifiers exported by torch.onnx.export (vs PyTorch's), the
-- imported ResNet-18's Grad-CAM at layer4 (vs nv.models.resnet18 with the same weights),
-- forward time imported / native, and loading: time against reading the file, peak memory
-- against the weights.  The models come from bench/lib/export_torchvision.py, which needs
-- Debian's python3-torch; without it the bench says so and skips.
--   NNVIS_ONNX_DIR (default /tmp/nnvis_onnx_bench): where the exports are (made if missing)
--   NNVIS_ONNX_MODELS: "all", or space-separated names (default resnet18)
local nv = require "nnvis"
local best_of = require("timing").best_of

local dir = os.getenv("NNVIS_ONNX_DIR") or "/tmp/nnvis_onnx_bench"
local models = os.getenv("NNVIS_ONNX_MODELS") or "resnet18"
local ALL = "resnet18 vgg11 mobilenet_v2 mobilenet_v3_small efficientnet_b0 densenet121 squeezenet1_0 " ..
            "shufflenet_v2_x0_5 googlenet regnet_x_400mf convnext_tiny"
if models == "all" then models = ALL end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local names = {}
for n in models:gmatch("%S+") do names[#names + 1] = n end
local missing = {}
for _, n in ipairs(names) do if not exists(dir .. "/" .. n .. ".onnx") then missing[#missing + 1] = n end end
if #missing > 0 then
  if not os.execute("/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null") then
    print("onnx_bench: skipped (needs python3-torch and python3-torchvision to export the models)")
    return
  end
  local cmd = string.format("/usr/bin/python3 bench/lib/export_torchvision.py %s %s > /dev/null 2>&1", dir,
    table.concat(missing, " "))
  if not os.execute(cmd) then print("onnx_bench: skipped (the export failed: " .. cmd .. ")"); return end
end

-- logits against PyTorch's
for _, n in ipairs(names) do
  local m, err = nv.onnx.load(dir .. "/" .. n .. ".onnx")
  if not m then print(n, err) else
    local e = assert(nv.load_safetensors(dir .. "/" .. n .. ".safetensors"))
    local y = nv.no_grad(m, e.x)
    print(string.format("%-20s max |logit - PyTorch's| %.2e (logits up to %.3g)", n,
      (y - e.logits):abs():max():item(), e.logits:abs():max():item()))
  end
end

if not exists(dir .. "/resnet18.onnx") then return end

-- Grad-CAM at layer4 and speed against the native ResNet-18 with the same weights
local imported = assert(nv.onnx.load(dir .. "/resnet18.onnx"))
local native = nv.models.resnet18()
native:load_state_dict(assert(nv.load_safetensors(dir .. "/resnet18_weights.safetensors")))
native:eval()
local x = assert(nv.load_safetensors(dir .. "/resnet18.safetensors")).x
local a = nv.cam.gradcam(imported, x, { layer = "layer4" })
local b = nv.cam.gradcam(native, x, { layer = "layer4" })
print(string.format("resnet18 Grad-CAM at layer4: max |imported - native| %.2e", (a - b):abs():max():item()))

local ti = nv.no_grad(best_of, 5, function() imported(x) end)
local tn = nv.no_grad(best_of, 5, function() native(x) end)
print(string.format("resnet18 forward (224, batch 1, no_grad): imported %.4f s, native %.4f s, ratio %.3f", ti, tn, ti / tn))

-- loading, in a process of its own so that its peak resident memory is the load's own
local path = dir .. "/resnet18.onnx"
local p = assert(io.popen("lua5.4 -e 'local nv = require \"nnvis\"; " ..
  "local function st(k) local f = io.open(\"/proc/self/status\"); local s = f:read(\"a\"); f:close(); " ..
  "return tonumber(s:match(k .. \":%s+(%d+)\")) * 1024 end; " ..
  "local base = st(\"VmRSS\"); local t0 = nv.now(); local m = assert(nv.onnx.load(\"" .. path .. "\")); " ..
  "print(nv.now() - t0, st(\"VmHWM\") - base)'"))
local tload, peak = p:read("a"):match("(%S+)%s+(%S+)")
p:close()
local tread = best_of(3, function()
  local fh = io.open(path, "rb")
  local _ = fh:read("a")
  fh:close()
end)
local weights = 0
for _, t in ipairs(imported:parameters()) do weights = weights + t:numel() * 4 end
for _, t in ipairs(imported:buffers()) do weights = weights + t:numel() * 4 end
print(string.format("resnet18 load: %.3f s = %.2f x reading the file (%.3f s); peak memory %.0f MiB = %.2f x the weights (%.0f MiB)",
  tonumber(tload), tonumber(tload) / tread, tread, tonumber(peak) / 2 ^ 20, tonumber(peak) / weights, weights / 2 ^ 20))

-- bench/forward_bench.lua — inference against ONNX Runtime and PyTorch, measured in this run
-- at the same thread count: ResNet-18 at 224 (batch 8 and 1), VGG16 at 224 (batch 1) and
-- ViT-B/16 at 224 (batch 8), in
-- eval mode under nv.no_grad (BatchNorm folded, Winograd 3x3 convolutions), as ratios
-- nnvis / ONNX Runtime and nnvis / PyTorch.  Ratios only: absolute times depend on the machine.
--   ONNX Runtime: onnxruntime-node from the npm registry, installed under build/ort on first
--   use (its CPU library is in the package; the install script, which fetches GPU parts, is
--   not run); the models are torchvision's, exported by bench/lib/export_torchvision.py
--   (needs Debian's python3-torch).  Each part that cannot run says so and is skipped.
local nv = require "nnvis"
local best_of = require("timing").best_of

local threads = nv.config().threads
local py = "/usr/bin/python3"
local dir = os.getenv("NNVIS_ONNX_DIR") or "/tmp/nnvis_onnx_bench"
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."

local function sh_ok(cmd) return os.execute(cmd .. " > /dev/null 2>&1") == true end
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end
local function read_cmd(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("a") or ""
  if p then p:close() end
  return s
end

-- PyTorch: its forwards, one child process (bench/torch_explain.py's "inference" workloads)
local torch = {}
local has_torch = sh_ok(py .. " -c 'import torch, torchvision'")
if has_torch then
  for line in read_cmd(string.format("%s %s/torch_explain.py %d inference", py, here, threads)):gmatch("[^\n]+") do
    local k, v = line:match("^(%S+) (%S+)$")
    if k then torch[k] = tonumber(v) end
  end
end

-- ONNX Runtime: node + onnxruntime-node + the exported models
local ort, ort_why = {}, nil
local node_path = os.getenv("NNVIS_ORT_NODE_PATH") or (root .. "/build/ort/node_modules")
if not sh_ok("command -v node") then ort_why = "no node"
elseif not exists(node_path .. "/onnxruntime-node/package.json") and
  not sh_ok(string.format("cd %s && mkdir -p build/ort && timeout 600 npm install --ignore-scripts --no-audit --no-fund " ..
    "--prefix build/ort onnxruntime-node@1.30.0", root)) then
  ort_why = "npm could not install onnxruntime-node"
elseif not has_torch then ort_why = "no python3-torch to export the models"
else
  local missing = {}
  for _, m in ipairs { "resnet18", "vgg16", "vit_b_16" } do
    if not exists(dir .. "/" .. m .. ".onnx") then missing[#missing + 1] = m end
  end
  if #missing > 0 and not sh_ok(string.format("%s %s/lib/export_torchvision.py %s %s", py, here, dir,
    table.concat(missing, " "))) then
    ort_why = "the export failed"
  end
end
local function ort_time(model, batch)
  if ort_why then return nil end
  local out = read_cmd(string.format("NODE_PATH=%s node %s/lib/ort_forward.js %s/%s.onnx %d 224 %d %d", node_path, here,
    dir, model, batch, threads, batch == 1 and 12 or 8))
  return tonumber(out:match("^%s*(%S+)"))
end

print(string.format("threads: %d, OpenBLAS core %s%s%s", threads, nv.config().blas_core,
  has_torch and "" or "; PyTorch: skipped (no python3-torch)", ort_why and ("; ONNX Runtime: skipped (" .. ort_why .. ")") or ""))

local function row(name, secs, model, batch)
  io.write(string.format("%-26s %8.3f s", name, secs))
  local o = model and ort_time(model, batch)
  if o then io.write(string.format("  %5.2fx ONNX Runtime (%.3f s)", secs / o, o)) end
  local t = torch[name]
  if t then io.write(string.format("  %5.2fx PyTorch (%.3f s)", secs / t, t)) end
  io.write("\n")
  io.stdout:flush()
end

-- the input is made once, outside the timing, and one warm-up forward sets up the kernels,
-- as the ONNX Runtime and PyTorch scripts do
local function forward_time(model, batch, n)
  local x = nv.rand(batch, 3, 224, 224)
  return nv.no_grad(function()
    model(x)
    return best_of(n, function() model(x) end)
  end)
end

nv.manual_seed(0)
local r18 = nv.models.resnet18()
r18:eval()
row("resnet18.forward_b8", forward_time(r18, 8, 8), "resnet18", 8)
row("resnet18.forward_b1", forward_time(r18, 1, 12), "resnet18", 1)
r18 = nil
collectgarbage()
local vgg = nv.models.vgg16()
vgg:eval()
row("vgg16.forward_b1", forward_time(vgg, 1, 8), "vgg16", 1)
vgg = nil
collectgarbage()
local vit = nv.models.vit_b_16()
vit:eval()
row("vit_b_16.forward_b8", forward_time(vit, 8, 4), "vit_b_16", 8)

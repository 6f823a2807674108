-- Models beyond 2-d CNNs, exported by Debian's PyTorch, run in nnvis as in PyTorch: R3D-18 (3-d
-- convolutions over a clip), Swin-T (shifted windows: ScatterND and Not build its masks) and
-- MaxViT-T (MBConv, block and grid attention with relative position bias).
-- Needs python3-torch and python3-torchvision (pending without them when run by hand, a failure
-- under `make test`).
local nv = require "nnvis"
local H = require "helpers"

local PY = "/usr/bin/python3"
local have_torch = H.sh(PY .. " -c 'import torch, torchvision'")

describe("torchvision models beyond 2-d CNNs", function()
  local it_torch = H.it_if(have_torch, "python3-torch and python3-torchvision")
  for _, case in ipairs { { "r3d_18", { 1, 3, 8, 56, 56 }, 400 }, { "swin_t", { 1, 3, 64, 64 }, 1000 },
                     { "maxvit_t", { 1, 3, 224, 224 }, 1000 } } do
    local name, shape, classes = case[1], case[2], case[3]
    it_torch(name .. " exported to ONNX gives PyTorch's outputs", function()
      local path, xf, yf = os.tmpname() .. ".onnx", os.tmpname(), os.tmpname()
      assert(H.sh(("%s spec/fixtures/export_torchvision.py %s %s %s %s 2>/dev/null"):format(PY, name, path, xf, yf)))
      local m, err = nv.onnx.load(path)
      os.remove(path)
      assert(m, err)
      local x, want = H.read_floats(xf, shape), H.read_floats(yf, { 1, classes })
      os.remove(xf); os.remove(yf)
      local got = nv.no_grad(function() return m(x) end)
      local rel = H.maxdiff(got, want) / want:abs():max():item()
      print(("\n  %s: max |difference| / max |output| = %.3g"):format(name, rel))
      assert.is_true(rel < 1e-4)
    end)
  end

  it_torch("an exported Swin-T's Grad-CAM explains its last stage's norm by default (pytorch-grad-cam's layer)", function()
    local path, xf, yf = os.tmpname() .. ".onnx", os.tmpname(), os.tmpname()
    assert(H.sh(("%s spec/fixtures/export_torchvision.py swin_t %s %s %s 2>/dev/null"):format(PY, path, xf, yf)))
    local m = assert(nv.onnx.load(path))
    local x = H.read_floats(xf, { 1, 3, 64, 64 })
    os.remove(path); os.remove(xf); os.remove(yf)
    local a = nv.cam.gradcam(m, x)
    assert.equal("norm", nv.cam.explained_layer())
    -- the final permute of that norm's (N,h,w,C) output gives the same activations: the same map
    local b = nv.cam.gradcam(m, x, { layer = "permute" })
    assert.near(0, H.maxdiff(a, b), 1e-6)
    -- the export fixed its batch size: Score-CAM's batches of masked inputs say what to pass
    local ok, err = pcall(nv.cam.scorecam, m, x)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("scorecam: the model failed on a batch of 32 masked inputs (a model exported with a " ..
      "fixed batch size takes one at a time: opts.batch_size = 1)", 1, true), err)
  end)
end)

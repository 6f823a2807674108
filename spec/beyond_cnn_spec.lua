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
end)

-- A torchvision weight file in .pth form loads into nv.models.resnet18() and gives PyTorch's
-- logits.  Needs Debian's python3-torch and python3-torchvision to make the file (45 MB, in
-- /tmp, not committed); pending when they are missing and run by hand, a failure under `make test`.
local nv = require "nnvis"
local H = require "helpers"

local PY = "/usr/bin/python3"
local have_torch = H.sh(PY .. " -c 'import torch, torchvision'")   -- without the sanitizer runtimes

local floats = H.read_floats

describe("nv.models.resnet18 and torchvision's weights", function()
  local it_torch = H.it_if(have_torch, "python3-torch and python3-torchvision")
  for _, format in ipairs { "zip", "legacy" } do
    it_torch(("loads torch.save(model.state_dict()) in the %s format and its logits equal PyTorch's")
      :format(format), function()
      local pth, xin, yout = os.tmpname() .. ".pth", os.tmpname(), os.tmpname()
      assert(H.sh(("%s spec/fixtures/resnet18_reference.py %s %s %s %s"):format(PY, pth, xin, yout, format)))
      local model = nv.models.resnet18():eval()
      model:load(pth)
      local x, want = floats(xin, { 1, 3, 224, 224 }), floats(yout, { 1, 1000 })
      os.remove(pth); os.remove(xin); os.remove(yout)
      local got = nv.no_grad(function() return model(x) end)
      local d = H.maxdiff(got, want)
      print(("\n  resnet18 (%s .pth): max |logit difference| = %.3g (logits up to %.3g)"):format(
        format, d, want:abs():max():item()))
      assert.is_true(d < 1e-3)
      assert.equal(want:argmax(2):item(), got:argmax(2):item())
    end)
  end
  if not have_torch then
    H.missing("skipped: python3-torch / python3-torchvision are not installed (" .. PY .. ")")
  end
end)

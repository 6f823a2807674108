-- Explanation methods that run many forwards run them in batches, and the batching changes
-- nothing but the time: results equal the one-at-a-time definitions.
local nv = require "nnvis"
local H = require "helpers"

local Res = nv.class("SpecRes", nv.nn.Module)
function Res:init()
  self.conv1 = nv.nn.Conv2d(3, 6, 3, { padding = 1 })
  self.conv2 = nv.nn.Conv2d(6, 6, 3, { padding = 1 })
  self.fc = nv.nn.Linear(6, 4)
end
function Res:forward(x)
  local a = self.conv1(x):relu()
  local b = (self.conv2(a) + a):relu()            -- a residual add after the target layer
  return self.fc(b:mean(4):mean(3))
end

describe("nnvis.cam batched methods", function()
  local m, x
  setup(function()
    nv.manual_seed(5)
    m = Res()
    x = nv.rand(2, 3, 8, 8)
  end)

  it("Ablation-CAM runs the layers above the target once per batch and equals its definition", function()
    local got, raw = nv.cam.ablationcam(m, x, { layer = "conv2", target = { 1, 3 } })
    -- the definition: zero map k of conv2's output, rerun the whole model, score drop
    m:eval()
    local A = nv.no_grad(function() local out; local h <close> = m.conv2:register_forward_hook(function(_, _, o) out = o end); m(x); return out end)
    local base = nv.no_grad(m, x)
    for i, c in ipairs { 1, 3 } do
      local w = {}
      for k = 1, 6 do
        local h <close> = m.conv2:register_forward_hook(function(_, _, o)
          local z = o:clone(); z:select(1, i):select(1, k):fill(0); return z end)
        local y = nv.no_grad(m, x)
        w[k] = (base:get(i, c) - y:get(i, c)) / base:get(i, c)
      end
      local want = (A:select(1, i) * nv.tensor(w):view(6, 1, 1)):sum(1):relu()
      H.close(raw:select(1, i), want, 1e-4)
    end
    assert.same({ 2, 8, 8 }, got:shape())
  end)

  it("Score-CAM gives the same map whatever the batch size", function()
    local a = nv.cam.scorecam(m, x, { layer = "conv1", batch_size = 4 })
    local b = nv.cam.scorecam(m, x, { layer = "conv1", batch_size = 32 })
    H.close(a, b, 1e-5)
  end)

  it("Integrated Gradients runs its steps as batches with the same result", function()
    local _, a = nv.cam.integrated_gradients(m, x, { steps = 12 })            -- one batch of 12
    local _, b = nv.cam.integrated_gradients(m, x, { steps = 12, batch_size = 5 })
    H.close(a, b, 1e-5)
    -- completeness: attributions sum to y(x) - y(baseline) (approximately, Riemann sum)
    local _, c = nv.cam.integrated_gradients(m, x, { steps = 64, target = 2 })
    local y = nv.no_grad(m, x):select(2, 2) - nv.no_grad(m, nv.zeros(2, 3, 8, 8)):select(2, 2)
    H.close(c:reshape(2, -1):sum(2), y, 2e-2)
  end)

  it("SmoothGrad draws the same noise whatever the batch size", function()
    nv.manual_seed(11)
    local _, a = nv.cam.smoothgrad(m, x, { samples = 6 })
    nv.manual_seed(11)
    local _, b = nv.cam.smoothgrad(m, x, { samples = 6, batch_size = 4 })
    H.close(a, b, 1e-5)
  end)

  it("shows a progress bar where asked, and none by default off a terminal", function()
    local f = io.tmpfile()
    nv.cam.scorecam(m, x, { layer = "conv1", batch_size = 2, progress = f })
    f:seek("set")
    local s = f:read("a")
    assert.truthy(s:find("scorecam [", 1, true))
    assert.truthy(s:find("12/12", 1, true))
    assert.truthy(s:find("scorecam done in", 1, true))
  end)
end)

local nv = require "nnvis"
local nn = nv.nn
local H = require "helpers"

-- conv 1x1 with channels (+x, -x) -> ReLU -> GAP -> identity linear: class 1 is the
-- evidence of bright pixels, class 2 of dark pixels, wherever they are
local function evidence_model()
  local m = nn.Sequential { nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2) }
  nv.no_grad(function()
    m:get("0").weight:copy(nv.tensor { 1, -1 }:view(2, 1, 1, 1))
    m:get("0").bias:fill(0)
    m:get("4").weight:copy(nv.eye(2))
    m:get("4").bias:fill(0)
  end)
  return m
end

-- sample 1: bright top-left quadrant (class 1), sample 2: dark bottom-right (class 2)
local function quadrant_inputs()
  local x = nv.zeros(2, 1, 8, 8)
  x:select(1, 1):narrow(2, 1, 4):narrow(3, 1, 4):fill(1)
  x:select(1, 2):narrow(2, 5, 4):narrow(3, 5, 4):fill(-1)
  return x
end

local function quadrant_mean(map, r, c) return map:narrow(1, r, 4):narrow(2, c, 4):mean():item() end

describe("nnvis.explain.cam", function()
  local m, x = evidence_model(), quadrant_inputs()

  for _, method in ipairs(nv.cam.methods) do
    it(method .. " puts the class evidence where it is, at the input's resolution, in [0,1]", function()
      local map = nv.cam[method](m, x, method == "guided_gradcam" and { layer = "1" } or nil)
      assert.same({ 2, 8, 8 }, map:shape())
      assert.is_true(map:min():item() >= 0 and map:max():item() <= 1 + 1e-6)
      assert.is_true(quadrant_mean(map:select(1, 1), 1, 1) > 0.95)
      assert.is_true(quadrant_mean(map:select(1, 1), 5, 5) < 0.05)
      assert.is_true(quadrant_mean(map:select(1, 2), 5, 5) > 0.95)
      assert.is_true(quadrant_mean(map:select(1, 2), 1, 1) < 0.05)
    end)
  end

  for _, method in ipairs { "saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "guided_gradcam" } do
    it(method .. " highlights the pixels that carry the evidence", function()
      local map = nv.cam[method](m, x, method == "guided_gradcam" and { layer = "1" } or nil)
      assert.same({ 2, 8, 8 }, map:shape())
      -- noise switches background ReLUs on half the time, so SmoothGrad's contrast is ~2x
      local k = method == "smoothgrad" and 1.5 or 3
      assert.is_true(quadrant_mean(map:select(1, 1), 1, 1) > k * quadrant_mean(map:select(1, 1), 5, 5) + 0.1)
      assert.is_true(quadrant_mean(map:select(1, 2), 5, 5) > k * quadrant_mean(map:select(1, 2), 1, 1) + 0.1)
    end)
  end

  it("Grad-CAM's raw map is ReLU(sum_k mean(dy/dA_k) A_k) (Selvaraju et al. Eq. 1-2)", function()
    local xs = nv.rand(1, 1, 4, 4)
    local _, raw = nv.cam.gradcam(m, xs, { layer = "1", target = 1 })
    -- dy1/dA = 1/16 on channel 1 (identity linear after GAP), 0 on channel 2
    local a1 = xs:select(2, 1):relu():squeeze(1)
    H.close(raw:squeeze(1), (a1 / 16):relu(), 1e-6)
  end)

  it("follows the target: a class id, one per sample, or a function of the output", function()
    local both = nv.zeros(1, 1, 8, 8)
    both:narrow(3, 1, 4):narrow(4, 1, 4):fill(1)     -- bright top-left: class 1
    both:narrow(3, 5, 4):narrow(4, 5, 4):fill(-1)    -- dark bottom-right: class 2
    local c1 = nv.cam.gradcam(m, both, { layer = "1", target = 1 }):squeeze(1)
    local c2 = nv.cam.gradcam(m, both, { layer = "1", target = { 2 } }):squeeze(1)
    local cf = nv.cam.gradcam(m, both, { layer = "1", target = function(out) return out:select(2, 2) end }):squeeze(1)
    assert.is_true(quadrant_mean(c1, 1, 1) > 0.9 and quadrant_mean(c1, 5, 5) < 0.1)
    assert.is_true(quadrant_mean(c2, 5, 5) > 0.9 and quadrant_mean(c2, 1, 1) < 0.1)
    H.close(cf, c2, 1e-6)
    assert.has_error(function() nv.cam.gradcam(m, both, { layer = "1", target = 3 }) end)
    assert.has_error(function() nv.cam.gradcam(m, both, { layer = "nope" }) end, "gradcam: the model has no layer 'nope'; the closest are: 0, 1, 2")
  end)

  it("accepts an unbatched (C,H,W) input and picks the last spatial layer by default", function()
    local map = nv.cam.gradcam(m, x:select(1, 1))
    assert.same({ 8, 8 }, map:shape())
    assert.is_true(quadrant_mean(map, 1, 1) > 0.95)
  end)

  it("integrated gradients' attributions sum to f(x) - f(baseline)", function()
    nv.manual_seed(4)
    local net = nn.Sequential { nn.Conv2d(1, 3, 3, { padding = 1 }), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 16, 2) }
    local xi = nv.randn(1, 1, 4, 4)
    local _, attr = nv.cam.integrated_gradients(net, xi, { target = 2, steps = 200 })
    local out = nv.no_grad(function() return net(xi):get(1, 2) - net(nv.zeros(1, 1, 4, 4)):get(1, 2) end)
    assert.is_true(math.abs(attr:sum():item() - out) < 0.02 * math.max(1, math.abs(out)))
  end)

  it("guided backprop drops negative gradients at ReLUs, and only while it runs", function()
    local function grad_of_x()
      local xin = nv.tensor({ 1, 1 }, { requires_grad = true })
      local y = (xin:relu() * nv.tensor { 1, -1 }):sum()
      return nv.grad(y, { xin })[1]:totable()
    end
    local was = nv.core.set_guided_relu(true)
    local guided = grad_of_x()
    nv.core.set_guided_relu(was)
    assert.same({ 1, 0 }, guided)
    assert.same({ 1, -1 }, grad_of_x())
    nv.cam.guided_backprop(m, x)
    assert.same({ 1, -1 }, grad_of_x())
  end)

  it("averages over flips and brightness with aug_smooth", function()
    local map = nv.cam.gradcam(m, x, { layer = "1", aug_smooth = true })
    assert.same({ 2, 8, 8 }, map:shape())
    assert.is_true(quadrant_mean(map:select(1, 1), 1, 1) > 0.9)
  end)

  describe("quality metrics", function()
    it("a map on the evidence deletes fast and inserts fast; its inverse does the opposite", function()
      local good = nv.cam.gradcam(m, x, { layer = "1" })
      local bad = 1 - good
      local dg, db = nv.cam.deletion(m, x, good, { steps = 16 }), nv.cam.deletion(m, x, bad, { steps = 16 })
      local ig, ib = nv.cam.insertion(m, x, good, { steps = 16 }), nv.cam.insertion(m, x, bad, { steps = 16 })
      assert.equal(17, #dg.curves[1])
      assert.is_true(dg.mean_auc < db.mean_auc)
      assert.is_true(ig.mean_auc > ib.mean_auc)
      for _, a in ipairs(dg.auc) do assert.is_true(a >= 0 and a <= 1) end
    end)

    it("keeping only the highlighted region keeps the confidence", function()
      local good = nv.cam.gradcam(m, x, { layer = "1" })
      local r = nv.cam.confidence_change(m, x, good)
      assert.equal(2, #r.drop)
      assert.is_true(r.average_drop < 5)
      local r2 = nv.cam.confidence_change(m, x, 1 - good, { keep = 0.25 })
      assert.is_true(r2.average_drop > r.average_drop)
    end)
  end)
end)

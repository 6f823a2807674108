-- The reverse pass computes only what leads to what was asked for (issue: explanations at
-- the cost of a forward pass).  core.backward_counts() says which op backwards ran and for
-- which inputs: conv2d's inputs are 1 = x, 2 = weight, 3 = bias.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"

local function chain()
  nv.manual_seed(3)
  local w = {}
  for k = 1, 3 do w[k] = nv.randn(4, 4, 3, 3):mul(0.2):set_requires_grad(true) end
  local b = nv.randn(4):set_requires_grad(true)
  local function run(x)
    local a1 = nv.conv2d(x, w[1], b, { padding = 1 }):relu()
    local a2 = nv.conv2d(a1, w[2], nil, { padding = 1 }):relu()
    local a3 = nv.conv2d(a2, w[3], nil, { padding = 1 })
    return a1, a2, a3:sum()
  end
  return run, w, b
end

describe("nnvis.autograd: pruned backward", function()
  before_each(function() core.backward_counts(true) end)

  it("grad at an intermediate visits only the layers above it and computes no weight gradient", function()
    local run = chain()
    local x = nv.randn(1, 4, 6, 6):set_requires_grad(true)
    local _, a2, y = run(x)
    core.backward_counts(true)
    local g = nv.grad(y, { a2 })[1]
    local c = core.backward_counts(true)
    assert.are.equal(1, c.conv2d.calls)            -- only the conv above a2
    assert.are.same({ 1, 0, 0 }, c.conv2d.inputs)  -- its input gradient, not its weight's
    assert.is_nil(c.relu)                          -- the relus below a2 are not visited
    -- and the gradient is the one the full pass gives
    local _, a2b, yb = run(x)
    local full = nv.grad(yb, { a2b, x })
    H.close(g, full[1], 1e-6)
  end)

  it("grad with respect to the input skips every weight gradient", function()
    local run = chain()
    local x = nv.randn(1, 4, 6, 6):set_requires_grad(true)
    local _, _, y = run(x)
    core.backward_counts(true)
    nv.grad(y, { x })
    local c = core.backward_counts(true)
    assert.are.equal(3, c.conv2d.calls)
    assert.are.same({ 3, 0, 0 }, c.conv2d.inputs)
  end)

  it("grad with respect to one weight computes no input gradient below that layer", function()
    local run, w = chain()
    local x = nv.randn(1, 4, 6, 6)
    local _, _, y = run(x)
    core.backward_counts(true)
    local gw = nv.grad(y, { w[2] })[1]
    local c = core.backward_counts(true)
    -- conv3: input grad; conv2: weight grad only; conv1 never visited
    assert.are.equal(2, c.conv2d.calls)
    assert.are.same({ 1, 1, 0 }, c.conv2d.inputs)
    assert.are.same(w[2]:shape(), gw:shape())
  end)

  it("backward skips the gradient of an input that does not require grad", function()
    local run, w, b = chain()
    local x = nv.randn(2, 4, 6, 6)               -- an image: no gradient wanted
    local _, _, y = run(x)
    y:backward()
    local c = core.backward_counts(true)
    assert.are.equal(3, c.conv2d.calls)
    assert.are.same({ 2, 3, 1 }, c.conv2d.inputs) -- no dx for the first conv
    for k = 1, 3 do assert.is_not_nil(w[k].grad) end
    assert.is_not_nil(b.grad)
  end)

  it("wrt tensors above and below each other both get every path's gradient", function()
    local x = nv.tensor({ 1, 2, 3 }, { requires_grad = true })
    local a = x * 2
    local y = (a * a):sum() + (x * 3):sum()
    local g = nv.grad(y, { a, x })
    H.close(g[1], { 4, 8, 12 })                   -- dy/da = 2a
    H.close(g[2], { 11, 19, 27 })                 -- dy/dx = 2a*2 + 3
  end)

  it("Grad-CAM on a conv net computes no weight gradient and no gradient below the layer", function()
    local m = nv.nn.Sequential {
      nv.nn.Conv2d(3, 8, 3, { padding = 1 }), nv.nn.ReLU(),
      nv.nn.Conv2d(8, 8, 3, { padding = 1 }), nv.nn.ReLU(),
      nv.nn.AdaptiveAvgPool2d(1), nv.nn.Flatten(), nv.nn.Linear(8, 5),
    }
    core.backward_counts(true)
    nv.cam.gradcam(m, nv.rand(2, 3, 16, 16), { layer = "2" })
    local c = core.backward_counts(true)
    assert.is_nil(c.conv2d)                       -- the target layer is the last conv
    assert.are.same({ 1, 0, 0 }, c.matmul.inputs) -- the classifier: input gradient only
  end)
  describe("Grad-CAM's forward", function()
    local function net()
      nv.manual_seed(5)
      local m = nv.nn.Sequential {
        nv.nn.Conv2d(3, 8, 3, { padding = 1 }), nv.nn.BatchNorm2d(8), nv.nn.ReLU(),
        nv.nn.Conv2d(8, 8, 3, { padding = 1 }), nv.nn.ReLU(),
        nv.nn.Conv2d(8, 6, 3, { padding = 1 }), nv.nn.ReLU(),
        nv.nn.AdaptiveAvgPool2d(1), nv.nn.Flatten(), nv.nn.Linear(6, 5),
      }
      m:get("1").running_mean:copy(nv.randn(8):mul(0.1))
      m:get("1").running_var:copy(nv.rand(8):add(0.5))
      m:eval()
      return m
    end
    -- the reference: the whole graph recorded from the input, as a PyTorch user writes it
    local function reference(m, x, layer)
      local A
      local h <close> = m:get(layer):register_forward_hook(function(_, _, out) A = out end)
      local out = m(x:detach():set_requires_grad(true))
      local ids = out:argmax(2)
      local G = nv.grad(out:gather(2, ids:view(-1, 1)):sum(), { A })[1]
      local raw = (A * G:mean(4):mean(3):view(A:size(1), A:size(2), 1, 1)):sum(2):relu()
      return raw:detach()
    end

    it("records no graph below the layer and gives the full graph's map", function()
      local m, x = net(), nv.rand(2, 3, 12, 12)
      local below
      local h <close> = m:get("2"):register_forward_hook(function(_, _, out) below = out end)
      local _, raw = nv.cam.gradcam(m, x, { layer = "4" })
      assert.is_false(below.requires_grad)        -- nothing below features 4 is recorded
      H.close(raw, reference(m, x, "4"), 1e-5)
    end)

    it("starts the graph at the default layer from the second call on, with the same map", function()
      local m, x = net(), nv.rand(2, 3, 12, 12)
      local ref = reference(m, x, "6")
      local _, first = nv.cam.gradcam(m, x)           -- finds the last spatial map: features 6
      local below
      local h <close> = m:get("4"):register_forward_hook(function(_, _, out) below = out end)
      local _, second = nv.cam.gradcam(m, x)
      assert.is_false(below.requires_grad)
      H.close(first, ref, 1e-5)
      H.close(second, ref, 1e-5)
    end)

    it("finds the default layer again when the model changed since", function()
      local m, x = net(), nv.rand(1, 3, 12, 12)
      nv.cam.gradcam(m, x)                             -- remembers features 6
      local m2 = nv.nn.Sequential {}
      for i = 0, 4 do m2:add(m:get(tostring(i))) end   -- the same modules, up to features 4
      m2:add(nv.nn.AdaptiveAvgPool2d(1)); m2:add(nv.nn.Flatten()); m2:add(nv.nn.Linear(8, 5))
      m2:eval()
      local _, raw = nv.cam.gradcam(m2, x)
      H.close(raw, reference(m2, x, "4"), 1e-5)
      -- a model whose remembered layer no longer runs through its hooks: the whole graph
      m.forward = function(self, t)
        for i = 0, 9 do
          local c = self:get(tostring(i))
          if i == 6 then t = c:forward(t) else t = c(t) end
        end
        return t
      end
      local _, again = nv.cam.gradcam(m, x)
      H.close(again, reference(m, x, "5"), 1e-5)   -- the last map that ran through hooks
    end)

    it("leaves gradient recording as it was, even when the forward fails", function()
      local m = net()
      assert.has_error(function() nv.cam.gradcam(m, nv.rand(1, 4, 12, 12), { layer = "4" }) end)
      assert.is_true(nv.is_grad_enabled())
      nv.no_grad(function()
        nv.cam.gradcam(m, nv.rand(1, 3, 12, 12), { layer = "4" })
        assert.is_false(nv.is_grad_enabled())
      end)
    end)
  end)
end)

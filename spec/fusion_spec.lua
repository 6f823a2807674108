-- Inference fusion: in eval mode under nv.no_grad a Sequential runs Conv2d + BatchNorm2d
-- (+ ReLU) as one convolution with the BatchNorm folded in; the result equals the unfused
-- one, hooked layers keep their own outputs, and the folded weights follow changes.
local nv = require "nnvis"
local nn = nv.nn
local H = require "helpers"

local function net()
  nv.manual_seed(4)
  local m = nn.Sequential { nn.Conv2d(3, 6, 3, { padding = 1 }), nn.BatchNorm2d(6), nn.ReLU(),
    nn.Conv2d(6, 6, 3, { bias = false }), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 1), nn.ReLU(), nn.Flatten() }
  nv.no_grad(function()
    for _, k in ipairs { "1", "4" } do
      local bn = m:get(k)
      bn.running_mean:copy(nv.randn(6) * 0.3)
      bn.running_var:copy(nv.rand(6) + 0.5)
      bn.weight:copy(nv.randn(6))
      bn.bias:copy(nv.randn(6))
    end
  end)
  return m:eval()
end

describe("inference fusion", function()
  it("gives the unfused result", function()
    local m = net()
    local x = nv.randn(2, 3, 9, 9)
    local want = m(x)                                   -- with the graph: unfused
    assert.is_nil(rawget(m:get("0"), "_folded"))
    H.close(nv.no_grad(function() return m(x) end), want, 1e-5)
    -- it did fold: both convs with a BatchNorm after them carry their folded weights
    assert.truthy(rawget(m:get("0"), "_folded"))
    assert.truthy(rawget(m:get("3"), "_folded"))
    assert.is_nil(rawget(m:get("5"), "_folded"))         -- conv + ReLU: nothing to fold
  end)

  it("leaves a hooked layer's output alone", function()
    local m = net()
    local x = nv.randn(1, 3, 9, 9)
    local seen
    local h <close> = m:get("1"):register_forward_hook(function(_, _, out) seen = out end)
    local y = nv.no_grad(function() return m(x) end)
    local bn_out = nv.batch_norm(m:get("0")(x), m:get("1").running_mean, m:get("1").running_var, m:get("1").weight,
      m:get("1").bias, { eps = m:get("1").eps })
    H.close(seen, bn_out, 1e-5)
    H.close(y, m(x), 1e-5)
    local cap = nv.capture(m, x, { layers = { "4" } })
    assert.is_truthy(cap["4"])
  end)

  it("refolds when the BatchNorm's statistics or the weights change", function()
    local m = net()
    local x = nv.randn(1, 3, 9, 9)
    nv.no_grad(function() return m(x) end)
    nv.no_grad(function() m:get("1").running_var:mul_(4); m:get("0").weight:mul_(-1) end)
    H.close(nv.no_grad(function() return m(x) end), m(x), 1e-5)
    m:get("1").running_mean = nv.randn(6)                -- replaced, not changed in place
    H.close(nv.no_grad(function() return m(x) end), m(x), 1e-5)
  end)

  it("runs in training mode and with gradients as before", function()
    local m = net():train()
    local x = nv.randn(2, 3, 9, 9)
    local y = nv.no_grad(function() return m(x) end)     -- batch statistics: not folded
    assert.equal(2, y:size(1))
    assert.has_error(function() nv.conv2d(x, nv.randn(2, 3, 1, 1), nil, { relu = true }) end,
      "conv2d: relu = true is for inference; call it under nv.no_grad")
    local r = nv.no_grad(function() return nv.conv2d(x, nv.randn(2, 3, 1, 1), nil, { relu = true }) end)
    assert.equal(0, r:lt(0):sum():item())
  end)
end)

describe("im2col / col2im on two threads", function()
  it("give the single-threaded convolution and its gradients", function()
    local before = nv.config().threads
    nv.manual_seed(8)
    local x = nv.randn(2, 64, 24, 24)
    local w = nv.randn(32, 64, 3, 3) * 0.05
    local function run()
      local xi = x:clone():set_requires_grad(true)
      local wi = w:clone():set_requires_grad(true)
      local y = nv.conv2d(xi, wi, nil, { padding = 1 })
      local gx, gw = table.unpack(nv.grad((y * y):sum(), { xi, wi }))
      local y1 = nv.conv2d(x:narrow(1, 1, 1), w, nil, { padding = 1, stride = 2 })
      return y, gx, gw, y1
    end
    for _, wino in ipairs { false, true, "onednn" } do  -- im2col's threads, Winograd's, oneDNN's
      nv.config { threads = 1, winograd = wino == true, onednn = wino == "onednn" }
      local a = { run() }
      nv.config { threads = 2 }
      local b = { run() }
      nv.config { threads = before, winograd = true, onednn = true }
      for i = 1, 4 do H.close(b[i], a[i], 1e-3 * a[i]:abs():max():item()) end
    end
  end)
end)

describe("fusion in ResNet blocks (nn.conv_bn_relu)", function()
  local function resnet()
    nv.manual_seed(6)
    local m = nv.models.resnet18 { num_classes = 7 }
    nv.no_grad(function()
      for _, bn in ipairs { m.bn1, m.layer1:get("0").bn1, m.layer2:get("0").bn2, m.layer2:get("0").downsample:get("1") } do
        bn.running_mean:copy(nv.randn(bn.running_mean:numel()) * 0.2)
        bn.running_var:copy(nv.rand(bn.running_var:numel()) + 0.5)
      end
    end)
    return m:eval()
  end

  it("folds every Conv2d + BatchNorm2d of ResNet-18 and gives the unfused logits", function()
    local m = resnet()
    local x = nv.randn(2, 3, 48, 48)
    local want = m(x)                                       -- with the graph: unfused
    H.close(nv.no_grad(function() return m(x) end), want, 1e-4)
    local folded, convs = 0, 0
    for name, c in m:named_modules() do
      if c.kind == "Conv2d" then
        convs = convs + 1
        if rawget(c, "_folded") then folded = folded + 1 end
      end
    end
    assert.equal(20, convs)
    assert.equal(20, folded)
  end)

  it("leaves a hooked BatchNorm its own output", function()
    local m = resnet()
    local x = nv.randn(1, 3, 32, 32)
    local want = m(x)
    local seen
    local block = m.layer1:get("0")
    local h <close> = block.bn1:register_forward_hook(function(_, _, out) seen = out end)
    local got = nv.no_grad(function() return m(x) end)
    H.close(got, want, 1e-4)
    assert.is_not_nil(seen)
    assert.same({ 1, 64, 8, 8 }, seen:shape())
    assert.is_nil(rawget(block.conv1, "_folded"))
  end)
end)

local nv = require "nnvis"

local function close(a, b, tol) assert(math.abs(a - b) <= (tol or 1e-6), string.format("%.9g vs %.9g", a, b)) end

-- one parameter p with gradient g each step, compared with the formula computed by hand
local function run(make, grads, p0)
  local p = nv.tensor({ p0 }, { requires_grad = true })
  local opt = make({ p })
  local out = {}
  for _, g in ipairs(grads) do
    p.grad = nv.tensor { g }
    opt:step()
    out[#out + 1] = p:get(1)
  end
  return out
end

describe("nnvis.nn.optim", function()
  it("SGD with momentum, dampening and weight decay follows PyTorch's update", function()
    local r = run(function(ps) return nv.optim.SGD(ps, { lr = 0.1, momentum = 0.9, weight_decay = 0.01 }) end, { 1, 2 }, 1)
    -- step 1: g = 1 + 0.01*1 = 1.01; buf = 1.01; p = 1 - 0.101 = 0.899
    close(r[1], 0.899)
    -- step 2: g = 2 + 0.00899 = 2.00899; buf = 0.909 + 2.00899 = 2.91799; p = 0.899 - 0.291799
    close(r[2], 0.899 - 0.1 * (0.9 * 1.01 + 2 + 0.01 * 0.899), 1e-6)
  end)

  it("SGD with Nesterov momentum", function()
    local r = run(function(ps) return nv.optim.SGD(ps, { lr = 0.1, momentum = 0.5, nesterov = true }) end, { 1, 1 }, 0)
    -- step 1: buf = 1, g = 1 + 0.5 = 1.5 -> p = -0.15; step 2: buf = 1.5, g = 1 + 0.75 -> p = -0.325
    close(r[1], -0.15)
    close(r[2], -0.325)
  end)

  it("Adam matches Kingma and Ba's algorithm with bias correction", function()
    local lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    local r = run(function(ps) return nv.optim.Adam(ps, { lr = lr }) end, { 0.5, -1 }, 2)
    local m, v, p = 0, 0, 2
    for t, g in ipairs { 0.5, -1 } do
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g * g
      p = p - lr * (m / (1 - b1 ^ t)) / (math.sqrt(v / (1 - b2 ^ t)) + eps)
      close(r[t], p, 1e-6)
    end
  end)

  it("AdamW decays the weights apart from the gradient", function()
    local r = run(function(ps) return nv.optim.AdamW(ps, { lr = 0.1, weight_decay = 0.5 }) end, { 1 }, 1)
    -- p = 1 * (1 - 0.05) - 0.1 * 1 / (1 + 1e-8)
    close(r[1], 0.95 - 0.1, 1e-6)
  end)

  it("step and cosine schedules set the learning rate", function()
    local p = nv.zeros(1):set_requires_grad(true)
    local opt = nv.optim.SGD({ p }, { lr = 1 })
    local s = nv.optim.StepLR(opt, { step_size = 2, gamma = 0.5 })
    local lrs = {}
    for i = 1, 4 do lrs[i] = s:step() end
    assert.same({ 1, 0.5, 0.5, 0.25 }, lrs)
    local opt2 = nv.optim.SGD({ p }, { lr = 1 })
    local c = nv.optim.CosineAnnealingLR(opt2, { T_max = 4 })
    close(c:step(), (1 + math.cos(math.pi / 4)) / 2)
    c:step(); c:step()
    close(c:step(), 0)
  end)

  it("rejects unknown options and empty parameter lists", function()
    assert.has_error(function() nv.optim.SGD({ nv.zeros(1) }, { lr = 0.1, momentun = 0.9 }) end,
      "SGD: unknown option 'momentun' (did you mean 'momentum'?)")
    assert.has_error(function() nv.optim.Adam({}) end, "Adam: expected a non-empty list of parameter tensors (or a module)")
  end)

  it("zero_grad clears the gradients", function()
    local p = nv.ones(2):set_requires_grad(true)
    local opt = nv.optim.SGD({ p }, { lr = 0.1 })
    p:sum():backward()
    opt:zero_grad()
    assert.is_nil(p.grad)
  end)
end)

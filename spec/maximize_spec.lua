local nv = require "nnvis"
local nn = nv.nn
local O = nv.objectives

-- one channel that responds to horizontal gradients: relu(x[., c+1] - x[., c-1])
local function edge_model(channels)
  local conv = nn.Conv2d(channels, 2, 3, { padding = 1 })
  nv.no_grad(function()
    conv.weight:fill(0)
    for c = 1, channels do
      conv.weight:select(1, 1):select(1, c):set(-1, 2, 1)
      conv.weight:select(1, 1):select(1, c):set(1, 2, 3)
    end
    conv.weight:select(1, 2):fill(0.1)
    conv.bias:fill(0)
  end)
  return nn.Sequential { conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2) }
end

local function channel_act(m, x, k)
  local c = nv.capture(m, x, { layers = { "1" } })
  return c["1"].output:select(2, k):mean(3):mean(2)
end

describe("nnvis.explain.maximize", function()
  for _, param in ipairs { "pixel", "fourier" } do
    it("makes an image (" .. param .. ") that excites the channel far more than random and real images", function()
      local m = edge_model(1)
      local img, hist = nv.maximize(m, { layer = "1", channel = 1, size = 28, steps = 256, lr = 0.1, seed = 3, param = param })
      assert.same({ 1, 28, 28 }, img:shape())
      assert.is_true(img:min():item() >= 0 and img:max():item() <= 1)
      assert.is_true(hist[#hist] > hist[1])
      local mine = channel_act(m, img:unsqueeze(1), 1):item()
      local random = channel_act(m, nv.rand(64, 1, 28, 28), 1)
      local real = channel_act(m, nv.data.fashion_mnist { split = "test", limit = 256 }.images, 1)
      -- the best of 64 random images and of 256 real ones, and the typical real one; the
      -- Fourier parameterization's 1/f prior favours smooth images over these 4-pixel stripes
      local k = param == "pixel" and 1 or 0.8
      assert.is_true(mine > 1.5 * k * random:max():item(), string.format("maximized %.3f vs random %.3f", mine, random:max():item()))
      assert.is_true(mine > 1.8 * k * real:max():item(), string.format("maximized %.3f vs real %.3f", mine, real:max():item()))
      assert.is_true(mine > 4 * k * real:mean():item())
    end)
  end

  it("is repeatable under a seed and works for RGB with color decorrelation", function()
    local m = edge_model(3)
    local a = nv.maximize(m, { layer = "1", channel = 1, size = 16, steps = 8, seed = 9 })
    local b = nv.maximize(m, { layer = "1", channel = 1, size = 16, steps = 8, seed = 9 })
    assert.same({ 3, 16, 16 }, a:shape())
    assert.same(a:totable(), b:totable())
  end)

  it("composes objectives with + and numeric weights, and reports progress", function()
    local m = edge_model(1)
    local obj = O.channel("1", 1) + 0.5 * O.class(2) - 0.1 * O.neuron("1", 2)
    assert.equal("1*channel(1,1) + 0.5*class(2) + -0.1*neuron(1,2)", tostring(obj))
    assert.equal("1*logprob(3)", tostring(O.class(3, { logprob = true })))
    local calls = 0
    local img = nv.maximize(m, { objective = obj, size = 12, steps = 5, seed = 1, tv = 0.1, l2 = 0.1, blur = 0.1,
                                 lp = { p = 4, weight = 0.1 }, progress = function(step, v, im)
                                   calls = calls + 1
                                   assert.equal(step, calls)
                                   assert.is_number(v)
                                   assert.same({ 1, 1, 12, 12 }, im:shape())
                                 end })
    assert.equal(5, calls)
    assert.same({ 1, 12, 12 }, img:shape())
  end)

  it("names what is missing", function()
    assert.has_error(function() nv.maximize(edge_model(1), {}) end,
      "maximize: give opts.objective, or opts.layer with opts.channel or opts.neuron, or opts.class")
    assert.has_error(function() nv.maximize(edge_model(1), { layer = "9", channel = 1, steps = 1 }) end,
      "maximize: the model has no layer '9'; the closest are: 0, 1, 2")
  end)

  it("stops each forward at the objective's layer: the layers above it never run", function()
    local m = nv.nn.Sequential { nv.nn.Conv2d(1, 4, 3, { padding = 1 }), nv.nn.ReLU(),
                                 nv.nn.Conv2d(4, 4, 3, { padding = 1 }), nv.nn.Flatten(), nv.nn.Linear(4 * 12 * 12, 3) }
    local above = 0
    local h <close> = m:get("2"):register_forward_hook(function() above = above + 1 end)
    local img, hist = nv.maximize(m, { layer = "1", channel = 2, size = 12, steps = 4, seed = 1 })
    assert.equal(0, above)
    assert.equal(4, #hist)
    assert.same({ 1, 12, 12 }, img:shape())
    -- a class objective needs the output: then the whole model runs
    nv.maximize(m, { class = 2, size = 12, steps = 3, seed = 1 })
    assert.equal(3, above)
  end)
end)

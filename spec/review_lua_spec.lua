-- Behaviour found missing in review of the Lua modules; each case used to fail or leak state.
local nv = require "nnvis"
local nn = nv.nn

local function net()
  nv.manual_seed(3)
  return nn.Sequential { nn.Conv2d(3, 4, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5) }
end

-- a model whose forward returns {logits, features}
local TwoOut = nv.class("TwoOut", nn.Module)
function TwoOut:init()
  self.conv = nn.Conv2d(3, 4, 3, { padding = 1 })
  self.relu = nn.ReLU()
  self.pool = nn.AdaptiveAvgPool2d(1)
  self.fc = nn.Linear(4, 5)
end
function TwoOut:forward(x)
  local f = self.relu(self.conv(x))
  return { self.fc(self.pool(f):flatten(2)), f }
end

describe("review of the Lua modules", function()
  local x = nv.rand(2, 3, 8, 8)

  it("deletion, insertion and confidence change accept a function target", function()
    local m = net()
    local f = function(o) return o:select(2, 2) end
    local maps = nv.cam.gradcam(m, x, { layer = "1", target = f })
    assert.equal(2, #nv.cam.deletion(m, x, maps, { target = f, steps = 4 }).auc)
    assert.equal(2, #nv.cam.insertion(m, x, maps, { target = f, steps = 4 }).auc)
    assert.equal(2, #nv.cam.confidence_change(m, x, maps, { target = f }).drop)
  end)

  it("explains and captures models whose forward returns a table", function()
    local m = TwoOut()
    local f = function(o) return o[1]:select(2, 2) end
    assert.same({ 2, 8, 8 }, nv.cam.gradcam(m, x, { layer = "relu", target = f }):shape())
    assert.same({ 2, 8, 8 }, nv.cam.gradcam(m, x, { layer = "relu" }):shape())   -- top class of the first output
    local cap = nv.capture(m, x, { layers = { "conv" }, grads = true, target = 1 })
    assert.same({ 2, 4, 8, 8 }, cap.conv.grad:shape())
    assert.truthy(nv.diagram(m, { 1, 3, 8, 8 }))
  end)

  it("capture keeps a layer named output", function()
    local M = nv.class("M", nn.Module)
    function M:init() self.conv = nn.Conv2d(3, 2, 1); self.output = nn.Flatten() end
    function M:forward(t) return self.output(self.conv(t)) end
    local cap = nv.capture(M(), x, { layers = { "conv", "output" }, grads = true, loss = function(o) return o:sum() end })
    assert.same({ 2, 128 }, cap.output.output:shape())
    assert.same({ 2, 128 }, cap.output.grad:shape())
    assert.same({ "conv", "output" }, cap.order)
  end)

  it("maximize hooks a custom objective's layers and leaves the model's gradients alone", function()
    local m = nn.Sequential { nn.Conv2d(1, 2, 3, { padding = 1 }), nn.ReLU() }
    local obj = nv.objectives.custom(function(a) return a["0"]:mean() end, { "0" })
    nv.maximize(m, { objective = obj, size = 16, steps = 2, channels = 1 })
    assert.is_nil(m:get("0").weight.grad)
  end)

  it("restores every module's own mode, also after an error", function()
    local m = nn.Sequential { nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3) }
    m:train()
    m:get("1"):eval()                      -- a frozen BatchNorm inside a training model
    nv.summary(m, { 1, 3, 8, 8 })
    nv.cam.gradcam(m, x, { layer = "2" })
    nv.capture(m, x)
    nv.diagram(m, { 1, 3, 8, 8 })
    nv.maximize(m, { layer = "2", channel = 1, size = 8, steps = 1 })
    assert.is_true(m.training)
    assert.is_false(m:get("1").training)
    pcall(nv.train.evaluate, m, x, nv.tensor { 1, 9 })   -- bad label: an error inside
    assert.is_true(m.training)
    assert.is_false(m:get("1").training)
    assert.has_error(function() nv.train.evaluate(m, nv.zeros(0, 3, 8, 8), nv.zeros(0)) end, "evaluate: no samples to evaluate")
  end)

  it("seeded shuffles and maximization leave the caller's random stream alone", function()
    nv.manual_seed(7)
    local a = nv.randn(4):totable()
    nv.manual_seed(7)
    for _ in nv.data.batches(nv.arange(10), nil, { shuffle = true, seed = 1 }) do end
    nv.maximize(net(), { layer = "1", channel = 1, size = 8, steps = 1, seed = 5 })
    nv.manual_seed(7)
    for _ in nv.data.batches(nv.arange(10), nil, { shuffle = true, seed = 1 }) do end
    assert.same(a, nv.randn(4):totable())
  end)

  it("writes TensorBoard wall times in seconds since 1970", function()
    local dir = os.tmpname()
    os.remove(dir)
    local w = nv.tensorboard.writer(dir)
    w:scalar("x", 1, 1)
    w:close()
    local data = io.open(w.path, "rb"):read("a")
    os.execute("rm -rf " .. dir)
    local wall = string.unpack("<d", data, 12 + 1 + 1)   -- first record's payload: field 1, a double
    assert.is_true(math.abs(wall - os.time()) < 60)
  end)

  it("SmoothGrad without a target explains the clean input's top class", function()
    local m = nn.Sequential { nn.Flatten(), nn.Linear(36, 4) }
    local xi = nv.rand(1, 1, 6, 6)
    local top = nv.no_grad(m, xi):argmax(2):item()
    nv.manual_seed(2)
    local a = nv.cam.smoothgrad(m, xi, { samples = 8 })
    nv.manual_seed(2)
    local b = nv.cam.smoothgrad(m, xi, { samples = 8, target = top })
    assert.is_true((a - b):abs():max():item() < 1e-6)
  end)

  it("refuses class ids for outputs that are not (N, C)", function()
    assert.has_error(function()
      nv.cam.saliency(nn.Sequential { nn.Conv2d(1, 3, 3, { padding = 1 }) }, nv.rand(1, 1, 4, 4), { target = 2 })
    end)
  end)

  it("counts BatchNorm batches only for forwards that succeed; sparklines show infinities", function()
    local bn = nn.BatchNorm1d(3)
    pcall(bn, nv.rand(1, 3))                -- one value per channel: batch statistics are impossible
    assert.equal(0, bn.num_batches_tracked:item())
    assert.equal("▁▅██", nv.plot.sparkline { 1, 2, math.huge, 3 })
  end)

  it("ModuleList holds modules for a user forward, with PyTorch's names", function()
    local Net = nv.class("Net", nn.Module)
    function Net:init() self.blocks = nn.ModuleList { nn.Linear(3, 3), nn.Linear(3, 3) }; self.head = nn.Linear(3, 1) end
    function Net:forward(t) for _, b in self.blocks:items() do t = b(t):relu() end return self.head(t) end
    local m = Net()
    assert.equal(2, #m.blocks)
    assert.equal(m.blocks:at(2), m:get("blocks.1"))
    local names = {}
    for name in m:named_parameters() do names[#names + 1] = name end
    assert.same({ "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "head.weight", "head.bias" }, names)
    assert.same({ 4, 1 }, m(nv.randn(4, 3)):shape())
    assert.has_error(function() m.blocks(nv.randn(1, 3)) end)
  end)

  it("BatchNorm with momentum = false keeps a cumulative average of the batch statistics", function()
    local bn = nn.BatchNorm1d(2, { momentum = false })
    local a, b = nv.randn(4, 2), nv.randn(6, 2) + 3
    bn(a); bn(b)
    local expect = (a:mean(1) + b:mean(1)) / 2
    assert.is_true((bn.running_mean - expect):abs():max():item() < 1e-5)
    assert.equal("BatchNorm1d(2, momentum=cumulative)", tostring(bn))
  end)
end)

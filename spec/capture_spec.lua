local nv = require "nnvis"
local nn = nv.nn
local capture = require "nnvis.inspect.capture"

local function net()
  local m = nn.Sequential { nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) }
  nv.no_grad(function()
    m:get("0").weight:copy(nv.tensor { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { -1, -1, -1 } })
    m:get("0").bias:fill(0)
    m:get("2").weight:copy(nv.tensor { { 1, 1, 1, 1 }, { 1, -1, 0, 0 } })
    m:get("2").bias:fill(0)
  end)
  return m
end

describe("nnvis.inspect.capture", function()
  it("returns the outputs of the named layers and removes its hooks", function()
    local m = net()
    local x = nv.tensor { { 1, 2, 3 }, { -1, 0, 1 } }
    local cap = nv.capture(m, x, { layers = { "0", "1" } })
    assert.same({ { 1, 2, 3, -6 }, { -1, 0, 1, 0 } }, cap["0"].output:totable())
    assert.same({ { 1, 2, 3, 0 }, { 0, 0, 1, 0 } }, cap["1"].output:totable())
    assert.same({ "0", "1" }, cap.order)
    for _, name in ipairs { "0", "1", "2" } do
      assert.equal(0, #rawget(m:get(name), "_hooks"))
    end
  end)

  it("returns the gradient of the target's score at each layer", function()
    local m = net()
    local x = nv.tensor { { 1, 2, 3 } }
    local cap = nv.capture(m, x, { layers = { "1", "0" }, grads = true, target = 1 })
    -- d out1 / d relu-output = row 1 of the last weight
    assert.same({ { 1, 1, 1, 1 } }, cap["1"].grad:totable())
    -- through the ReLU: the 4th unit is off
    assert.same({ { 1, 1, 1, 0 } }, cap["0"].grad:totable())
    local cap2 = nv.capture(m, x, { layers = { "1" }, grads = true, target = function(o) return o:select(2, 2) end })
    assert.same({ { 1, -1, 0, 0 } }, cap2["1"].grad:totable())
  end)

  it("defaults to every leaf layer and names unknown layers", function()
    local cap = nv.capture(net(), nv.ones(1, 3))
    assert.same({ "0", "1", "2" }, cap.order)
    assert.has_error(function() nv.capture(net(), nv.ones(1, 3), { layers = { "5" } }) end,
      "capture: the model has no layer '5'; the closest are: 0, 1, 2")
  end)

  it("tabulates statistics: zeros, dead units and gradient norms", function()
    local m = net()
    local x = nv.tensor { { 1, 2, 3 }, { 2, 1, 1 } }
    local st = capture.stats(nv.capture(m, x, { grads = true }))
    local relu = st.rows[2]
    assert.equal("1", relu.name)
    assert.equal(2 / 8, relu.zeros)        -- the 4th unit is 0 for both samples
    assert.equal(1 / 4, relu.dead)         -- and so it is dead
    assert.is_true(relu.grad_norm > 0)
    local text = tostring(st)
    assert.truthy(text:find("dead", 1, true))
    assert.truthy(text:find("25.0%", 1, true))
  end)
end)

-- hardtanh(x, min_val = -1, max_val = 1) as PyTorch's: x clamped to [min_val, max_val], its
-- gradient 1 strictly inside (min_val, max_val) and 0 outside.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"

describe("hardtanh", function()
  local x = nv.tensor { -3, -1.5, -0.5, 0, 0.25, 0.9, 2 }

  it("clamps to [-1, 1] by default, as core.hardtanh and as a method", function()
    local want = { -1, -1, -0.5, 0, 0.25, 0.9, 1 }
    H.close(core.hardtanh(x), want)
    H.close(x:hardtanh(), want)
  end)

  it("takes min_val and max_val", function()
    H.close(x:hardtanh(-0.5, 0.5), { -0.5, -0.5, -0.5, 0, 0.25, 0.5, 0.5 })
    H.close(core.hardtanh(x, 0, 2), { 0, 0, 0, 0, 0.25, 0.9, 2 })
    H.close(x:hardtanh(0.3, 0.3), { 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3 })
  end)

  it("passes the gradient strictly inside (min_val, max_val) and none outside", function()
    local t = nv.tensor({ -2, -0.5, 0.5, 1.5, 3 }, { requires_grad = true })
    local g = nv.grad(t:hardtanh(-1, 2):sum(), { t })[1]
    assert.same({ 0, 1, 1, 1, 0 }, g:totable())
  end)

  it("has the central-difference gradient, samples inside and outside, away from the bounds", function()
    local v = nv.tensor { { -1.7, -1.2, -0.8, -0.3 }, { 0.2, 0.7, 1.3, 1.8 } }
    H.gradcheck(function(t) return t:hardtanh() * nv.arange(8):view(2, 4) end, { v })
    H.gradcheck(function(t) return core.hardtanh(t, -1.5, 0.5) end, { v })
  end)

  it("refuses min_val greater than max_val, naming the function and both values", function()
    assert.has_error(function() x:hardtanh(2, 1) end, "hardtanh: min_val 2 is greater than max_val 1")
    assert.has_error(function() core.hardtanh(x, 0.5, -0.5) end, "hardtanh: min_val 0.5 is greater than max_val -0.5")
  end)

  it("refuses arguments that are not numbers or tensors", function()
    assert.has_error(function() core.hardtanh("x") end)
    assert.has_error(function() x:hardtanh("a") end)
  end)

  it("has its functional form nv.hardtanh from the op list, with no Lua edit", function()
    assert.same({ -1, 0.5, 1 }, nv.hardtanh(nv.tensor { -2, 0.5, 3 }):values())
    local listed = false
    for _, name in ipairs(core.unary_ops) do listed = listed or name == "hardtanh" end
    assert.is_true(listed)
  end)
end)

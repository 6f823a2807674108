-- Misuses and corner cases found in review: each used to read or write out of bounds,
-- leak, alias a caller's tensor, or fail.
local nv = require "nnvis"

describe("corner cases", function()
  it("narrow and view refuse sizes whose arithmetic would overflow", function()
    assert.has_error(function() nv.zeros(4):narrow(1, 2, math.maxinteger) end)
    assert.has_error(function() nv.zeros(2 ^ 20):view(2, 2 ^ 44 + 1, 2 ^ 19) end)
    assert.has_error(function() nv.zeros(2 ^ 20):reshape(2, 2 ^ 44 + 1, 2 ^ 19) end)
  end)

  it("backward uses its own copy of indices the caller may change", function()
    local x = nv.rand(2, 3):set_requires_grad(true)
    local v, i = x:max(2)
    local expect = nv.zeros(2, 3)
    for r = 1, 2 do expect:set(1, r, i:get(r)) end
    i:fill(1e6)
    v:sum():backward()
    assert.same(expect:totable(), x.grad:totable())
    local idx = nv.tensor { { 1, 2 } }
    local y = nv.rand(1, 3):set_requires_grad(true)
    local g = y:gather(2, idx)
    idx:fill(1e6)
    g:sum():backward()
    assert.same({ { 1, 1, 0 } }, y.grad:totable())
  end)

  it("never aliases or changes the gradient the caller passes to backward", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    local g = nv.ones(4)
    nv.cat({ x, x }, 1):backward(g)
    assert.same({ 1, 1, 1, 1 }, g:totable())
    assert.same({ 2, 2 }, x.grad:totable())
    g:fill(7)
    assert.same({ 2, 2 }, x.grad:totable())
  end)

  it("does not leak when an argument error is raised after a conversion", function()
    local x = nv.ones(3)
    collectgarbage(); collectgarbage()
    local before = nv.memory()
    for _ = 1, 50 do
      pcall(nv.Tensor.add, 2, {})
      pcall(nv.where, x, 1, {})
      pcall(nv.Tensor.add_, x, 1, {})
      pcall(nv.Tensor.index_select, x, 5, { 1 })
    end
    collectgarbage(); collectgarbage()
    local after = nv.memory()
    assert.equal(before.tensors, after.tensors)
    assert.equal(before.storages, after.storages)
  end)

  it("refuses in-place changes of expanded views", function()
    local x = nv.zeros(1, 3)
    assert.has_error(function() x:expand(4, 3):add_(1) end)
    assert.has_error(function() x:expand(4, 3):fill(1) end)
    assert.same({ { 0, 0, 0 } }, x:totable())
  end)

  it("cat and stack default to the first dim", function()
    assert.same({ 4 }, nv.cat { nv.ones(2), nv.ones(2) }:shape())
    assert.same({ 2, 2 }, nv.stack { nv.ones(2), nv.ones(2) }:shape())
  end)

  it("grad with no inputs returns an empty list and touches nothing", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    assert.same({}, nv.grad((x * 3):sum(), {}))
    assert.is_nil(x.grad)
  end)

  it("backward(nil, {retain_graph = true}) keeps the graph", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    local y = (x * x):sum()
    y:backward(nil, { retain_graph = true })
    y:backward()
    assert.same({ 4, 8 }, x.grad:totable())
  end)

  it("rejects a vanishing rotation scale, infinite histogram bounds and a missing color", function()
    assert.has_error(function() nv.core.rotate(nv.zeros(1, 4, 4), 10, 1e-320) end)
    assert.has_error(function() nv.ones(3):histc(10, -math.huge, 5) end)
    -- a drawing operation without its color draws in black
    local img = nv.core.draw_render("raster", 4, 4, 1, { { "rect", 0, 0, 2, 2, {} } })
    assert.equal(0, img:get(1, 1, 1))
    assert.equal(1, img:get(1, 4, 4))
  end)

  it("index_select refuses indices just past a view above 2^24", function()
    local base = nv.zeros(16777219 + 5)
    assert.has_error(function() base:narrow(1, 1, 16777219):index_select(1, { 16777220 }) end)
  end)

  it("stops a backward whose saved input was changed in place, and allows harmless changes", function()
    local w = nv.tensor({ 1, 2 }, { requires_grad = true })
    local x = nv.tensor { 3, 4 }
    local y = (w * x):sum()
    x:fill(0)
    assert.has_error(function() y:backward() end,
      "backward: an input of mul was changed in place after it was used (version 1, recorded 0): " ..
      "its gradient would be wrong; clone it before changing it, or change it after backward")
    local y2 = (w + x):sum()     -- add's backward does not read x
    x:fill(5)
    y2:backward()
    assert.same({ 1, 1 }, w.grad:totable())
  end)
end)

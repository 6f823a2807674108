-- Tensors index as Torch7's did: t[i] selects along dim 1, chains, assigns; #t is dim 1's size.
local nv = require "nnvis"

describe("tensor indexing", function()
  local function t23() return nv.arange(1, 7):reshape(2, 3) end

  it("t[i] is the slice i along dim 1, a view sharing storage", function()
    local t = t23()
    assert.same({ 4, 5, 6 }, t[2]:totable())
    t[2]:fill(0)
    assert.same({ { 1, 2, 3 }, { 0, 0, 0 } }, t:totable())
  end)

  it("t[i][j] chains down to a number for a 1-d tensor", function()
    local t = t23()
    assert.equal(2, t[1][2])
    assert.equal(6, t[2][3])
    assert.equal(7, nv.arange(1, 25):reshape(2, 3, 4)[1][2][3])
  end)

  it("negative indices count from the end", function()
    local t = t23()
    assert.equal(6, t[-1][-1])
    assert.same({ 1, 2, 3 }, t[-2]:totable())
  end)

  it("an index out of range raises naming the size", function()
    local t = t23()
    assert.has_error(function() return t[3] end,
      "index: index 3 is out of range for dim 1 of size 2 (tensor (2,3); 1-based, negative from the end)")
    assert.has_error(function() return t[0] end)
    assert.has_error(function() return t[1.5] end)
    assert.has_error(function() return nv.tensor(3)[1] end)
  end)

  it("t[i] = number fills the slice, t[i] = tensor broadcasts into it", function()
    local t = t23()
    t[1] = 0
    assert.same({ { 0, 0, 0 }, { 4, 5, 6 } }, t:totable())
    t[2] = nv.tensor { 7, 8, 9 }
    assert.same({ { 0, 0, 0 }, { 7, 8, 9 } }, t:totable())
    t[-1] = nv.tensor(1)
    assert.same({ 1, 1, 1 }, t[2]:totable())
    t[1][2] = 5
    assert.equal(5, t[1][2])
    assert.has_error(function() t[1] = nv.tensor { 1, 2 } end)
    assert.has_error(function() t[1] = "x" end)
  end)

  it("#t is the size of dim 1", function()
    assert.equal(2, #t23())
    assert.equal(5, #nv.zeros(5))
    assert.equal(0, #nv.tensor(1))
  end)

  it("leaves methods and fields alone", function()
    local t = t23():set_requires_grad(true)
    assert.is_true(t.requires_grad)
    assert.is_nil(t.grad)
    assert.equal(3, t:size(2))
    t.grad = nv.ones(2, 3)
    assert.same({ 1, 1, 1 }, t.grad[1]:totable())
  end)

  it("a slice of a tensor that requires grad carries the gradient", function()
    local x = nv.randn(3, 2):set_requires_grad(true)
    x[2]:sum():backward()
    assert.same({ { 0, 0 }, { 1, 1 }, { 0, 0 } }, x.grad:totable())
  end)
end)

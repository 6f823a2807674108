-- Elementwise ops, batch norm and max pooling share big buffers among OpenMP's threads
-- (csrc/core/nv.h, nv_part): the results, forward and backward, are the same bits on one thread
-- and on two, for sizes on both sides of the threshold and lengths that do not divide evenly.
local nv = require "nnvis"
local H = require "helpers"

local function run(n)
  nv.manual_seed(21)
  local x = nv.randn(2, 8, n, n + 3):set_requires_grad(true)
  local b = nv.randn(2, 8, n, n + 3)
  local w, bias = nv.randn(8):set_requires_grad(true), nv.randn(8):set_requires_grad(true)
  local rm, rv = nv.zeros(8), nv.ones(8)
  local y = (x:relu() + b) * 2 - x:exp() * 0.001 + x:sigmoid()
  local z = nv.batch_norm(y, rm, rv, w, bias, { training = true })
  local p = nv.max_pool2d(z, 2)
  local e = nv.no_grad(nv.batch_norm, y, rm, rv, w, bias)   -- eval: running statistics
  local g = nv.grad((p * p):sum() + z:sum(), { x, w, bias })
  return { y:detach(), z:detach(), p:detach(), e, g[1], g[2], g[3], rm:clone(), rv:clone() }
end

describe("parallel kernels", function()
  it("give the same bits on one thread and on two", function()
    local before = nv.config().threads
    for _, n in ipairs { 7, 61, 133 } do   -- 2*8*7*10 floats stay on one thread; 133 x 136 do not
      local one = H.with_config({ threads = 1 }, function() return run(n) end)
      local two = H.with_config({ threads = 2 }, function() return run(n) end)
      for i = 1, #one do
        assert.equal(0, (one[i] - two[i]):abs():max():item(), string.format("size %d, result %d", n, i))
      end
    end
    assert.equal(before, nv.config().threads)
  end)

  it("match the same ops on pieces small enough for one thread", function()
    nv.manual_seed(22)
    local x, b = nv.randn(2, 8, 133, 136), nv.randn(2, 8, 133, 136)   -- 289,408 floats
    local function f(u, v) return (u:relu() + v) * 2 - u:exp() * 0.001 + u:sigmoid() end
    local y = f(x, b)
    for r = 1, 133, 7 do   -- 7 rows: 15,232 floats a piece
      local len = math.min(7, 134 - r)
      local piece = f(x:narrow(3, r, len), b:narrow(3, r, len))
      assert.equal(0, (y:narrow(3, r, len) - piece):abs():max():item())
    end
    local p = nv.max_pool2d(y, 2)
    for c = 1, 8 do   -- one plane at a time: 18,088 floats
      local q = nv.max_pool2d(y:narrow(2, c, 1):narrow(1, 2, 1), 2)
      assert.equal(0, (p:narrow(2, c, 1):narrow(1, 2, 1) - q):abs():max():item())
    end
    -- batch norm against its formula
    local w, bias = nv.randn(8), nv.randn(8)
    local z = nv.batch_norm(y, nil, nil, w, bias, { training = true })
    local function cmean(t) return t:mean(1, true):mean(3, true):mean(4, true) end
    local mean = cmean(y)
    local var = cmean((y - mean) ^ 2)
    local want = (y - mean) / (var + 1e-5):sqrt() * w:view(1, 8, 1, 1) + bias:view(1, 8, 1, 1)
    H.close(z, want, 1e-4)
  end)
end)

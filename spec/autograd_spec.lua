local nv = require "nnvis"
local H = require "helpers"

describe("nnvis.autograd", function()
  setup(function() nv.manual_seed(7) end)

  describe("gradients agree with central differences", function()
    local A = H.away_from_zero
    local cases = {
      { "add (broadcast)", function(a, b) return a + b end, { 3, 4 }, { 4 } },
      { "sub (broadcast)", function(a, b) return a - b end, { 3, 1 }, { 1, 4 } },
      { "mul (broadcast)", function(a, b) return a * b end, { 2, 3, 4 }, { 3, 1 } },
      { "div", function(a, b) return a / b end, { 3, 4 }, { 3, 4 } },
      { "pow (tensor exponent)", function(a, b) return a:abs():pow(b) end, { 5 }, { 5 } },
      { "maximum", function(a, b) return a:maximum(b * 0.1) end, { 6 }, { 6 } },
      { "minimum", function(a, b) return (b * 0.1):minimum(a) end, { 6 }, { 6 } },
      { "matmul 2-D", function(a, b) return nv.matmul(a, b) end, { 3, 4 }, { 4, 2 } },
      { "matmul batched with broadcast", function(a, b) return nv.matmul(a, b) end, { 2, 3, 4 }, { 4, 5 } },
      { "matmul 1-D x 2-D", function(a, b) return nv.matmul(a, b) end, { 4 }, { 4, 3 } },
      { "matmul 2-D x 1-D", function(a, b) return nv.matmul(a, b) end, { 3, 4 }, { 4 } },
      { "matmul transposed", function(a, b) return nv.matmul(a:t(), b) end, { 4, 3 }, { 4, 2 } },
      { "where", function(a, b) return nv.where(a:gt(0), a, b) end, { 8 }, { 8 } },
      { "cat", function(a, b) return nv.cat({ a, b }, 2) end, { 2, 3 }, { 2, 2 } },
      { "stack", function(a, b) return nv.stack({ a, b }, 2) end, { 2, 3 }, { 2, 3 } },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        H.gradcheck(c[2], { A(table.unpack(c[3])), A(table.unpack(c[4])) })
      end)
    end

    local unary = {
      { "neg", function(x) return -x end },
      { "exp", function(x) return x:exp() end },
      { "log", function(x) return x:abs():log() end },
      { "sqrt", function(x) return x:abs():sqrt() end },
      { "rsqrt", function(x) return x:abs():rsqrt() end },
      { "abs", function(x) return x:abs() end },
      { "sin", function(x) return x:sin() end },
      { "cos", function(x) return x:cos() end },
      { "tanh", function(x) return x:tanh() end },
      { "sigmoid", function(x) return x:sigmoid() end },
      { "relu", function(x) return x:relu() end },
      { "pow 3", function(x) return x:pow(3) end },
      { "pow -1.5", function(x) return x:abs():pow(-1.5) end },
      { "clamp", function(x) return (x * 0.5 + 0.5):clamp(-0.5, 0.5) end },  -- |x| >= 0.25 keeps off the bounds
      { "leaky_relu", function(x) return x:leaky_relu(0.2) end },
      { "elu", function(x) return x:elu(1.3) end },
      { "gelu", function(x) return x:gelu() end },
      { "square", function(x) return x:square() end },
      { "reciprocal", function(x) return x:reciprocal() end },
      { "log1p", function(x) return x:abs():log1p() end },
      { "softplus", function(x) return x:softplus() end },
      { "sum all", function(x) return x:sum() end },
      { "sum dim", function(x) return x:sum(2) end },
      { "sum keepdim", function(x) return x:sum(1, true) end },
      { "mean dim", function(x) return x:mean(-1) end },
      { "mean all", function(x) return x:mean() end },
      { "max dim", function(x) return (x:max(2)) end },
      { "max all", function(x) return x:max() end },
      { "min dim keepdim", function(x) return (x:min(1, true)) end },
      { "var", function(x) return x:var(2) end },
      { "std", function(x) return x:std() end },
      { "logsumexp", function(x) return x:logsumexp(2) end },
      { "view", function(x) return x:view(4, 3) * nv.arange(12):view(4, 3) end },
      { "transpose", function(x) return x:t() * nv.arange(12):view(4, 3) end },
      { "permute", function(x) return x:view(3, 2, 2):permute(3, 1, 2):contiguous() * 2 end },
      { "narrow", function(x) return x:narrow(2, 2, 2) end },
      { "select", function(x) return x:select(1, 2) end },
      { "expand", function(x) return x:narrow(1, 1, 1):expand(5, 4) end },
      { "unsqueeze+squeeze", function(x) return x:unsqueeze(2):squeeze(2) * 3 end },
      { "clone", function(x) return x:clone() end },
      { "gather", function(x) return x:gather(2, nv.tensor { { 1, 4 }, { 2, 2 }, { 3, 1 } }) end },
      { "index_select", function(x) return x:index_select(1, { 3, 1, 3 }) end },
      { "reused input", function(x) return x * x + x end },
    }
    for _, c in ipairs(unary) do
      it(c[1], function()
        H.gradcheck(c[2], { A(3, 4) })
      end)
    end
  end)

  it("accumulates gradients into leaves across backward calls", function()
    local x = nv.tensor({ 1, 2, 3 }, { requires_grad = true })
    ;(x * 2):sum():backward()
    ;(x * 3):sum():backward()
    assert.same({ 5, 5, 5 }, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
  end)

  it("nv.grad returns gradients for intermediates without touching .grad", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    local h = x * 3
    local y = (h * h):sum()
    local g = nv.grad(y, { h, x })
    assert.same({ 6, 12 }, g[1]:totable())    -- dy/dh = 2h
    assert.same({ 18, 36 }, g[2]:totable())   -- dy/dx = 18x
    assert.is_nil(x.grad)
  end)

  it("no_grad records nothing and restores the mode even after an error", function()
    local x = nv.tensor({ 1 }, { requires_grad = true })
    local y = nv.no_grad(function() return x * 2 end)
    assert.is_false(y.requires_grad)
    assert.has_error(function() nv.no_grad(function() error("boom") end) end)
    assert.is_true(nv.is_grad_enabled())
  end)

  it("detach cuts the graph but shares the data", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    local d = (x * 1):detach()
    assert.is_false(d.requires_grad)
    assert.is_true(d.is_leaf)
  end)

  it("frees the graph after backward unless it is retained", function()
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    local y = (x:exp()):sum()
    y:backward({ retain_graph = true })
    y:backward()
    H.close(x.grad, (nv.tensor { 1, 2 }:exp() * 2))
    assert.has_error(function() y:backward() end,
      "backward: the graph was already freed by an earlier backward (pass retain_graph = true the first time)")
  end)

  it("explains why backward is impossible", function()
    assert.has_error(function() nv.tensor { 1 }:backward() end)
    local x = nv.tensor({ 1, 2 }, { requires_grad = true })
    assert.has_error(function() (x * 2):backward() end,
      "backward: grad can be implicit only for a single-element output, this one is (2)")
    assert.has_error(function() x:fill(0) end,
      "fill: in-place change of a tensor that requires grad (use nv.no_grad or detach)")
  end)

  it("keeps Lua memory and C allocations flat over 10,000 training steps", function()
    nv.manual_seed(1)
    local w = nv.randn(8, 4):set_requires_grad(true)
    local b = nv.zeros(4):set_requires_grad(true)
    local x = nv.randn(16, 8)
    local target = nv.randn(16, 4)
    local function step()
      local y = nv.matmul(x, w) + b
      local loss = ((y - target):square()):mean()
      loss:backward()
      nv.no_grad(function()
        w:add_(w.grad, -0.01)
        b:add_(b.grad, -0.01)
      end)
      w.grad = nil
      b.grad = nil
      return loss
    end
    local first = step():item()
    for _ = 1, 500 do step() end
    collectgarbage(); collectgarbage()
    local lua0, c0 = collectgarbage("count"), nv.memory()
    local last
    for _ = 1, 10000 do last = step() end
    last = last:item()
    collectgarbage(); collectgarbage()
    local lua1, c1 = collectgarbage("count"), nv.memory()
    assert.is_true(last < first)
    assert.is_true(lua1 - lua0 < 64, "Lua memory grew by " .. (lua1 - lua0) .. " KiB")
    assert.equal(c0.tensors, c1.tensors)
    assert.equal(c0.storages, c1.storages)
    assert.equal(c0.nodes, c1.nodes)
    assert.equal(c0.bytes, c1.bytes)
  end)
end)

-- Convolutions run on oneDNN (csrc/kernels/onednn.c) unless nv.config{onednn = false}: the same
-- values and gradients as the built-in kernels (im2col, Winograd) for every geometry conv2d
-- takes, gradients that accumulate, the fused ReLU and residual, and the weights kept in
-- oneDNN's layouts following in-place changes and freed with their storage.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"

local function with(on, f) return H.with_config({ onednn = on }, f) end

local function rel(a, b)
  return (a - b):abs():max():item() / math.max(b:abs():max():item(), 1e-6)
end

-- y and the gradients of sum(y * g) at x, w and b
local function run(x, w, b, opts, g)
  local xx, ww, bb = x:detach(), w:detach(), b and b:detach()
  for _, t in ipairs { xx, ww, bb } do t:set_requires_grad(true) end
  local y = nv.conv2d(xx, ww, bb, opts)
  local grads = nv.grad((y * g):sum(), { xx, ww, bb })
  return y:detach(), grads[1], grads[2], grads[3]
end

--            n cin  h   w cout kh kw  stride  padding  dilation groups
local cases = {
  { 2, 3, 9, 11, 5, 3, 3, { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 },
  { 1, 16, 8, 8, 32, 3, 3, { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 },
  { 2, 8, 7, 9, 8, 3, 3, { 2, 2 }, { 1, 1 }, { 1, 1 }, 1 },
  { 1, 8, 10, 10, 8, 3, 3, { 1, 1 }, { 2, 2 }, { 2, 2 }, 1 },
  { 2, 8, 9, 9, 16, 3, 3, { 1, 1 }, { 1, 1 }, { 1, 1 }, 4 },
  { 1, 6, 8, 8, 6, 3, 3, { 1, 1 }, { 1, 1 }, { 1, 1 }, 6 },     -- depthwise
  { 2, 4, 11, 11, 6, 1, 1, { 2, 2 }, { 0, 0 }, { 1, 1 }, 1 },
  { 1, 3, 20, 20, 5, 7, 7, { 2, 2 }, { 3, 3 }, { 1, 1 }, 1 },
  { 1, 4, 6, 7, 3, 2, 3, { 3, 2 }, { 1, 0 }, { 1, 2 }, 1 },     -- floor rule leaves input unread
  { 3, 32, 14, 14, 64, 3, 3, { 1, 1 }, { 1, 1 }, { 1, 1 }, 1 },
}

describe("oneDNN convolutions", function()
  -- oneDNN's own kernels throughout, even where Winograd would run first on this CPU
  local prefer
  setup(function() prefer = nv.config().prefer_winograd; nv.config { prefer_winograd = false } end)
  teardown(function() nv.config { prefer_winograd = prefer } end)

  it("are on by default, run oneDNN's kernels, and can be turned off", function()
    assert.is_true(nv.config().onednn)
    local x, w = nv.randn(2, 16, 12, 12), nv.randn(32, 16, 3, 3)
    for _, kind in ipairs { "forward", "input_grad", "weight_grad" } do
      assert.matches("^onednn ", core.conv_impl(x, w, { padding = 1 }, kind))
    end
    with(false, function()
      assert.is_false(nv.config().onednn)
      assert.equal("winograd", core.conv_impl(x, w, { padding = 1 }))
      assert.equal("im2col", core.conv_impl(x, w, { padding = 1 }, "weight_grad"))
    end)
    assert.has_error(function() nv.config { onednn = "yes" } end, "config: onednn must be a boolean, got string")
    assert.has_error(function() core.conv_impl(x, w, { padding = 1 }, "sideways") end)
  end)

  it("match the built-in kernels: values and all three gradients, every geometry", function()
    nv.manual_seed(11)
    for _, c in ipairs(cases) do
      local n, cin, h, w_, cout, kh, kw, st, pad, dil, g = table.unpack(c)
      local x, w, b = nv.randn(n, cin, h, w_), nv.randn(cout, cin // g, kh, kw) * 0.2, nv.randn(cout)
      local opts = { stride = st, padding = pad, dilation = dil, groups = g }
      local oh = (h + 2 * pad[1] - dil[1] * (kh - 1) - 1) // st[1] + 1
      local ow = (w_ + 2 * pad[2] - dil[2] * (kw - 1) - 1) // st[2] + 1
      local gy = nv.randn(n, cout, oh, ow)
      local a = { run(x, w, b, opts, gy) }
      local r = { with(false, function() return { run(x, w, b, opts, gy) } end) }
      r = r[1]
      assert.same({ n, cout, oh, ow }, a[1]:shape())
      for i, what in ipairs { "output", "input gradient", "weight gradient", "bias gradient" } do
        local e = rel(a[i], r[i])
        assert(e < 2e-6, string.format("%s of case %d: relative error %.2e", what, _, e))
      end
    end
  end)

  it("accumulate gradients into what is there", function()
    nv.manual_seed(12)
    local x = nv.randn(2, 8, 10, 10)
    local w, b = (nv.randn(16, 8, 3, 3) * 0.1), nv.randn(16)
    x:set_requires_grad(true); w:set_requires_grad(true); b:set_requires_grad(true)
    nv.conv2d(x, w, b, { padding = 1 }):sum():backward()
    local gx, gw, gb = x.grad:clone(), w.grad:clone(), b.grad:clone()
    nv.conv2d(x, w, b, { padding = 1 }):sum():backward()
    assert(rel(x.grad, gx * 2) < 1e-6 and rel(w.grad, gw * 2) < 1e-6 and rel(b.grad, gb * 2) < 1e-6)
    assert(rel(gb, nv.full({ 16 }, 200)) < 1e-6)   -- 2 samples x 10 x 10 positions
  end)

  it("fuse the ReLU and a residual into the convolution, as the built-in kernels do", function()
    nv.manual_seed(13)
    local x, w, b = nv.randn(2, 16, 9, 9), nv.randn(24, 16, 3, 3) * 0.1, nv.randn(24)
    local r = nv.randn(2, 24, 9, 9)
    local want = (nv.conv2d(x, w, b, { padding = 1 }):detach() + r):relu()
    nv.no_grad(function()
      local got = nv.conv2d(x, w, b, { padding = 1, relu = true, add = r })
      assert(rel(got, want) < 1e-6)
      local plain = nv.conv2d(x, w, b, { padding = 1, add = r })
      assert(plain:min():item() < 0, "no ReLU without relu = true")
      with(false, function()
        assert(rel(nv.conv2d(x, w, b, { padding = 1, relu = true, add = r }), want) < 1e-6)
      end)
      -- a residual needs the output's shape, and a tensor
      assert.has_error(function() nv.conv2d(x, w, b, { padding = 1, add = nv.randn(2, 24, 8, 8) }) end,
        "conv2d: add (2,24,8,8) must have the output's shape (2,24,9,9)")
      assert.has_error(function() nv.conv2d(x, w, b, { padding = 1, add = 3 }) end,
        "conv2d: add must be a tensor, got number")
    end)
    assert.has_error(function() nv.conv2d(x, w, b, { padding = 1, add = r }) end,
      "conv2d: add is for inference; call it under nv.no_grad")
  end)

  it("read and write channels-last activations as they are, with the same values", function()
    nv.manual_seed(17)
    local x, w, b = nv.randn(2, 16, 9, 9), nv.randn(24, 16, 3, 3) * 0.1, nv.randn(24)
    local w2 = nv.randn(8, 24, 3, 3) * 0.1
    local r = nv.randn(2, 24, 9, 9)
    nv.no_grad(function()
      local want = nv.conv2d(x, w, b, { padding = 1, relu = true })
      local y = nv.conv2d(x, w, b, { padding = 1, relu = true, channels_last = true })
      assert.same({ 2, 24, 9, 9 }, y:shape())
      assert.is_false(y:is_contiguous())
      assert.same({ 24 * 81, 1, 9 * 24, 24 }, y:stride())   -- (N,H,W,C) in memory
      assert(rel(y, want) < 1e-6)
      -- a channels-last input and residual are read directly; the output is NCHW unless asked
      local z = nv.conv2d(y, w2, nil, { padding = 1 })
      assert.is_true(z:is_contiguous())
      assert(rel(z, nv.conv2d(want, w2, nil, { padding = 1 })) < 1e-6)
      local rc = nv.conv2d(x, w, b, { padding = 1, channels_last = true }) -- a channels-last residual
      local got = nv.conv2d(x, w, b, { padding = 1, add = rc, relu = true })
      local plain = nv.conv2d(x, w, b, { padding = 1 })
      assert(rel(got, (plain + plain):relu()) < 1e-6)
      -- the built-in kernels take over with oneDNN off
      with(false, function()
        local yo = nv.conv2d(y, w2, nil, { padding = 1, add = r:narrow(2, 1, 8), channels_last = true })
        assert(rel(yo, nv.conv2d(want, w2, nil, { padding = 1 }) + r:narrow(2, 1, 8)) < 1e-6)
      end)
    end)
    assert.has_error(function() nv.conv2d(x, w, b, { channels_last = true }) end,
      "conv2d: channels_last = true is for inference; call it under nv.no_grad")
  end)

  it("pass channels-last outputs between an unhooked ResNet's blocks, NCHW out of a block alone", function()
    nv.manual_seed(18)
    local m = nv.models.resnet18 { num_classes = 10 }
    m:eval()
    local seen = {}
    local real = core.conv2d
    core.conv2d = function(x, w, b, opts)
      if opts and opts.channels_last then seen[#seen + 1] = true end
      return real(x, w, b, opts)
    end
    local ok, err = pcall(function()
      nv.no_grad(function() m(nv.randn(1, 3, 64, 64)) end)
      -- all 20: the stem (pooled channels-last), both of each block's, the downsampling ones
      assert.equal(20, #seen, "channels-last convolutions inside the network")
      local out = nv.no_grad(function() return m.layer1(nv.randn(1, 64, 16, 16)) end)
      assert.is_true(out:is_contiguous(), "a block called on its own returns NCHW")
      local h <close> = m.layer2:register_forward_hook(function() end)
      local n = #seen
      nv.no_grad(function() m(nv.randn(1, 3, 64, 64)) end)
      assert(#seen - n <= 8, "a hooked network passes NCHW between its blocks")
    end)
    core.conv2d = real
    assert(ok, err)
  end)

  it("pass channels-last outputs through a Sequential's max-pooling to its next convolution", function()
    nv.manual_seed(19)
    local nn = nv.nn
    local m = nn.Sequential { nn.Conv2d(3, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(16, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2) }
    m:eval()
    local x = nv.randn(2, 3, 16, 16)
    local want = m(x):detach()                      -- with the graph: one layer at a time
    local seen = {}
    local real = core.conv2d
    core.conv2d = function(xx, w, b, opts)
      seen[#seen + 1] = opts and opts.channels_last or false
      return real(xx, w, b, opts)
    end
    local ok, err = pcall(function()
      local got = nv.no_grad(function() return m(x) end)
      assert.same({ true, false }, seen, "the first convolution's output goes through a pool to a convolution")
      assert.is_true(got:is_contiguous(), "a Sequential's own output is NCHW")
      assert(rel(got, want) < 1e-6)
    end)
    core.conv2d = real
    assert(ok, err)
  end)

  it("keep weights in their own layout, follow in-place changes and free them with the weight", function()
    core.onednn_cache(true)
    nv.manual_seed(14)
    local x = nv.randn(1, 16, 12, 12)
    local w = nv.randn(32, 16, 3, 3)
    local y1 = nv.no_grad(nv.conv2d, x, w, nil, { padding = 1 })
    -- 16 -> 32 channels: every vector ISA's layout blocks the channels, so the weights are kept
    assert(core.onednn_cache() >= 32 * 16 * 9 * 4, "the reordered weights are kept")
    w:mul_(2)
    local y2 = nv.no_grad(nv.conv2d, x, w, nil, { padding = 1 })
    assert(rel(y2, y1 * 2) < 1e-6, "the kept weights followed the in-place change")
    w = nil
    collectgarbage()
    collectgarbage()
    assert.equal(0, core.onednn_cache())
    -- the input gradient (a forward with the flipped kernels, kept too) follows them as well
    local w3 = nv.randn(16, 16, 3, 3)
    local xg = nv.randn(1, 16, 12, 12):set_requires_grad(true)
    local g1 = nv.grad(nv.conv2d(xg, w3, nil, { padding = 1 }):sum(), { xg })[1]
    assert.matches("^onednn", core.conv_impl(xg, w3, { padding = 1 }, "input_grad"))
    w3:mul_(-3)
    local g2 = nv.grad(nv.conv2d(xg, w3, nil, { padding = 1 }):sum(), { xg })[1]
    assert(rel(g2, g1 * -3) < 1e-6, "the kept flipped kernels followed the in-place change")
    -- a view's weights are told apart by their offset in the storage
    local big = nv.randn(2, 32, 16, 3, 3)
    local a = nv.no_grad(nv.conv2d, x, big[1], nil, { padding = 1 })
    local b = nv.no_grad(nv.conv2d, x, big[2], nil, { padding = 1 })
    local ra = with(false, function() return nv.no_grad(nv.conv2d, x, big[1], nil, { padding = 1 }) end)
    local rb = with(false, function() return nv.no_grad(nv.conv2d, x, big[2], nil, { padding = 1 }) end)
    assert(rel(a, ra) < 2e-6 and rel(b, rb) < 2e-6)
  end)

  it("pass the gradient check through a strided, grouped, dilated convolution", function()
    nv.manual_seed(15)
    local x = nv.randn(1, 4, 7, 7)
    local w = nv.randn(6, 2, 3, 3) * 0.3
    assert.is_true(nv.gradcheck(function(xx, ww)
      return nv.conv2d(xx, ww, nil, { stride = 2, padding = 2, dilation = 2, groups = 2 })
    end, { x, w }))
  end)

  it("run ResNet-18 at eval to the built-in kernels' logits, residuals fused", function()
    nv.manual_seed(16)
    local m = nv.models.resnet18 { num_classes = 10 }
    m:eval()
    local x = nv.randn(2, 3, 64, 64)
    local a = nv.no_grad(function() return m(x) end)
    local r = with(false, function() return nv.no_grad(function() return m(x) end) end)
    local graph = m(x):detach()   -- no fusion when the graph is recorded
    assert(rel(a, r) < 1e-5 and rel(graph, r) < 1e-5)
  end)
end)

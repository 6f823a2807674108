-- Neural-network ops checked against direct loops written here (independent of the C
-- kernels) on small cases that exercise the edges, plus gradient checks.
local nv = require "nnvis"
local H = require "helpers"

-- x[n][c][i][j] from a tensor, 1-based
local function at(t) return t:totable() end

-- direct convolution (PyTorch semantics)
local function ref_conv2d(x, w, b, o)
  local st, pd, dl, g = o.stride or { 1, 1 }, o.padding or { 0, 0 }, o.dilation or { 1, 1 }, o.groups or 1
  local N, C, Hh, W = table.unpack(x:shape())
  local CO, CIg, KH, KW = table.unpack(w:shape())
  local OH = (Hh + 2 * pd[1] - dl[1] * (KH - 1) - 1) // st[1] + 1
  local OW = (W + 2 * pd[2] - dl[2] * (KW - 1) - 1) // st[2] + 1
  local X, Wt, B = at(x), at(w), b and b:totable()
  local out = {}
  local COg = CO // g
  for n = 1, N do
    out[n] = {}
    for co = 1, CO do
      out[n][co] = {}
      local grp = (co - 1) // COg
      for oh = 1, OH do
        out[n][co][oh] = {}
        for ow = 1, OW do
          local s = B and B[co] or 0
          for ci = 1, CIg do
            local cin = grp * CIg + ci
            for i = 1, KH do
              for j = 1, KW do
                local ih = (oh - 1) * st[1] - pd[1] + (i - 1) * dl[1] + 1
                local iw = (ow - 1) * st[2] - pd[2] + (j - 1) * dl[2] + 1
                if ih >= 1 and ih <= Hh and iw >= 1 and iw <= W then
                  s = s + Wt[co][ci][i][j] * X[n][cin][ih][iw]
                end
              end
            end
          end
          out[n][co][oh][ow] = s
        end
      end
    end
  end
  return nv.tensor(out)
end

local function out_size(n, k, s, p, d, ceil)
  local num = n + 2 * p - d * (k - 1) - 1
  local o = (ceil and math.ceil(num / s) or num // s) + 1
  if ceil and (o - 1) * s >= n + p then o = o - 1 end
  return o
end

local function ref_pool(x, k, o, kind)
  local st = o.stride or k
  local pd, dl = o.padding or { 0, 0 }, o.dilation or { 1, 1 }
  local N, C, Hh, W = table.unpack(x:shape())
  local OH = out_size(Hh, k[1], st[1], pd[1], dl[1], o.ceil_mode)
  local OW = out_size(W, k[2], st[2], pd[2], dl[2], o.ceil_mode)
  local X, out = at(x), {}
  local cip = o.count_include_pad ~= false
  for n = 1, N do
    out[n] = {}
    for c = 1, C do
      out[n][c] = {}
      for oh = 1, OH do
        out[n][c][oh] = {}
        for ow = 1, OW do
          local h0, w0 = (oh - 1) * st[1] - pd[1], (ow - 1) * st[2] - pd[2]
          if kind == "max" then
            local m = -math.huge
            for i = 0, k[1] - 1 do
              for j = 0, k[2] - 1 do
                local ih, iw = h0 + i * dl[1] + 1, w0 + j * dl[2] + 1
                if ih >= 1 and ih <= Hh and iw >= 1 and iw <= W then m = math.max(m, X[n][c][ih][iw]) end
              end
            end
            out[n][c][oh][ow] = m
          else
            -- PyTorch: window clipped to the padded input for the divisor
            local h1, w1 = math.min(h0 + k[1], Hh + pd[1]), math.min(w0 + k[2], W + pd[2])
            local area = (h1 - h0) * (w1 - w0)
            local s, cnt = 0, 0
            for ih = math.max(h0, 0), math.min(h1, Hh) - 1 do
              for iw = math.max(w0, 0), math.min(w1, W) - 1 do
                s = s + X[n][c][ih + 1][iw + 1]
                cnt = cnt + 1
              end
            end
            out[n][c][oh][ow] = s / (cip and area or cnt)
          end
        end
      end
    end
  end
  return nv.tensor(out)
end

describe("nnvis functional ops", function()
  setup(function() nv.manual_seed(3) end)

  describe("conv2d", function()
    local cases = {
      { "3x3 padding 1", { 2, 3, 7, 6 }, { 4, 3, 3, 3 }, { padding = { 1, 1 } } },
      { "non-square kernel, asymmetric stride", { 1, 2, 9, 8 }, { 3, 2, 2, 4 }, { stride = { 2, 3 }, padding = { 1, 2 } } },
      { "dilation 2", { 1, 2, 9, 9 }, { 2, 2, 3, 3 }, { dilation = { 2, 2 }, padding = { 2, 1 } } },
      { "groups 2", { 2, 4, 6, 5 }, { 6, 2, 3, 3 }, { groups = 2, padding = { 1, 1 } } },
      { "depthwise", { 1, 3, 5, 5 }, { 3, 1, 3, 3 }, { groups = 3, stride = { 2, 2 } } },
      { "1x1 stride 1", { 2, 5, 4, 3 }, { 7, 5, 1, 1 }, {} },
      { "padding larger than half the kernel", { 1, 1, 4, 4 }, { 2, 1, 3, 3 }, { padding = { 3, 2 } } },
    }
    for _, c in ipairs(cases) do
      it("matches direct loops: " .. c[1], function()
        local x, w, b = nv.randn(c[2]), nv.randn(c[3]), nv.randn(c[3][1])
        local opts = {}
        for k, v in pairs(c[4]) do opts[k] = v end
        H.close(nv.conv2d(x, w, b, opts), ref_conv2d(x, w, b, c[4]), 1e-4)
      end)
      it("has central-difference gradients: " .. c[1], function()
        local x, w, b = nv.randn(c[2]) * 0.5, nv.randn(c[3]) * 0.5, nv.randn(c[3][1])
        H.gradcheck(function(xx, ww, bb) return nv.conv2d(xx, ww, bb, c[4]) end, { x, w, b },
          { eps = 1e-2, tol = 2e-2, atol = 5e-3 })
      end)
    end

    it("accepts an unbatched (C,H,W) input and a number for stride and padding", function()
      local x, w = nv.randn(3, 6, 6), nv.randn(2, 3, 3, 3)
      local y = nv.conv2d(x, w, nil, { stride = 2, padding = 1 })
      assert.same({ 2, 3, 3 }, y:shape())
      H.close(y, ref_conv2d(x:unsqueeze(1), w, nil, { stride = { 2, 2 }, padding = { 1, 1 } }):squeeze(1), 1e-4)
    end)

    it("accepts padding = \"same\" and \"valid\" like PyTorch", function()
      local x, w = nv.randn(1, 2, 7, 9), nv.randn(3, 2, 3, 5)
      H.close(nv.conv2d(x, w, nil, { padding = "same" }), nv.conv2d(x, w, nil, { padding = { 1, 2 } }), 1e-6)
      assert.same({ 1, 3, 5, 5 }, nv.conv2d(x, w, nil, { padding = "valid" }):shape())
      assert.same({ 1, 3, 7, 9 }, nv.nn.Conv2d(2, 3, 3, { padding = "same", dilation = 2 })(x):shape())
      assert.has_error(function() nv.conv2d(x, nv.randn(3, 2, 2, 2), nil, { padding = "same" }) end,
        "conv2d: padding \"same\" with an even kernel needs asymmetric padding, use pad()")
    end)

    it("names the shapes when channels do not match", function()
      assert.has_error(function() nv.conv2d(nv.zeros(1, 4, 32, 32), nv.zeros(16, 3, 3, 3)) end,
        "conv2d: weight (16,3,3,3) expects 3 input channels, input has 4 (1,4,32,32)")
    end)
  end)

  describe("pooling", function()
    local maxcases = {
      { "2x2", { 2, 2, 6, 7 }, { 2, 2 }, {} },
      { "3x3 stride 2 padding 1", { 1, 3, 7, 7 }, { 3, 3 }, { stride = { 2, 2 }, padding = { 1, 1 } } },
      { "ceil_mode window off the edge", { 1, 1, 7, 6 }, { 3, 2 }, { stride = { 2, 2 }, ceil_mode = true } },
      { "dilation", { 1, 2, 9, 9 }, { 3, 3 }, { dilation = { 2, 2 }, stride = { 1, 2 } } },
    }
    for _, c in ipairs(maxcases) do
      it("max_pool2d matches direct loops: " .. c[1], function()
        local x = nv.randn(c[2])
        H.close(nv.max_pool2d(x, c[3], c[4]), ref_pool(x, c[3], c[4], "max"), 1e-6)
        -- distinct values 0.1 apart keep the maxima stable under the finite differences
        local n = 1
        for _, s in ipairs(c[2]) do n = n * s end
        local distinct = (nv.randperm(n) * 0.1):view(c[2])
        H.gradcheck(function(xx) return nv.max_pool2d(xx, c[3], c[4]) end, { distinct })
      end)
    end

    it("max_pool2d's 2x2 fast path: NaN wins, and without a gradient the same values", function()
      local x = nv.tensor({ { { { 1, 5, 2, 0 }, { 0 / 0, 3, 9, 9 } } } }, { requires_grad = true })
      local y = nv.max_pool2d(x, 2)
      assert.is_true(y:totable()[1][1][1][1] ~= y:totable()[1][1][1][1])   -- NaN
      assert.equal(9, y:totable()[1][1][1][2])
      y:sum():backward()
      assert.same({ 0, 0, 0, 0 }, x.grad:totable()[1][1][1])
      assert.same({ 1, 0, 1, 0 }, x.grad:totable()[1][1][2])                -- the NaN, then the first 9
      nv.manual_seed(4)
      local z = nv.randn(3, 5, 9, 8)
      local g = z:detach():set_requires_grad(true)
      H.close(nv.no_grad(function() return nv.max_pool2d(z, 2) end), nv.max_pool2d(g, 2):detach(), 0)
      H.close(nv.no_grad(function() return nv.max_pool2d(z, 3, { stride = 2, padding = 1 }) end),
        nv.max_pool2d(g, 3, { stride = 2, padding = 1 }):detach(), 0)
    end)

    it("max_pool2d pools a channels-last input as it is when no gradient is wanted", function()
      nv.manual_seed(21)
      for _, c in ipairs(maxcases) do
        local sz = c[2]
        local x = nv.randn(sz[1], sz[3], sz[4], sz[2]):permute(1, 4, 2, 3)   -- (N,C,H,W), NHWC in memory
        x[1][1][1][1] = 0 / 0
        local want = nv.max_pool2d(x:contiguous(), c[3], c[4])
        local got = nv.no_grad(nv.max_pool2d, x, c[3], c[4])
        local o = want:shape()
        assert.same(o, got:shape())
        assert.same({ o[2] * o[3] * o[4], 1, o[4] * o[2], o[2] }, got:stride(), c[1])  -- channels-last out
        local a, b = want:totable(), got:totable()
        assert.is_true(b[1][1][1][1] ~= b[1][1][1][1], c[1] .. ": NaN wins")
        a[1][1][1][1], b[1][1][1][1] = 0, 0
        assert.same(a, b, c[1])
        -- with a gradient wanted the input is pooled in NCHW (with its argmax), as before
        local g = x:detach():set_requires_grad(true)
        assert.is_true(nv.max_pool2d(g, c[3], c[4]):is_contiguous())
      end
    end)

    it("max_pool2d sends the gradient to the first maximum on ties", function()
      local x = nv.tensor({ { { { 1, 1 }, { 1, 1 } } } }, { requires_grad = true })
      nv.max_pool2d(x, 2):sum():backward()
      assert.same({ { { { 1, 0 }, { 0, 0 } } } }, x.grad:totable())
    end)

    local avgcases = {
      { "2x2", { 1, 2, 6, 6 }, { 2, 2 }, {} },
      { "padding, count_include_pad", { 1, 1, 5, 5 }, { 3, 3 }, { stride = { 2, 2 }, padding = { 1, 1 } } },
      { "padding, count_include_pad false", { 1, 1, 5, 5 }, { 3, 3 }, { stride = { 2, 2 }, padding = { 1, 1 }, count_include_pad = false } },
      { "ceil_mode", { 1, 1, 6, 5 }, { 3, 3 }, { stride = { 2, 2 }, ceil_mode = true, padding = { 1, 1 } } },
      { "ceil_mode no padding", { 1, 1, 5, 5 }, { 2, 2 }, { ceil_mode = true } },
    }
    for _, c in ipairs(avgcases) do
      it("avg_pool2d matches PyTorch's divisor rules: " .. c[1], function()
        local x = nv.randn(c[2])
        H.close(nv.avg_pool2d(x, c[3], c[4]), ref_pool(x, c[3], c[4], "avg"), 1e-5)
        H.gradcheck(function(xx) return nv.avg_pool2d(xx, c[3], c[4]) end, { nv.randn(c[2]) })
      end)
    end

    it("adaptive_avg_pool2d averages PyTorch's windows", function()
      local x = nv.arange(1, 26):view(1, 1, 5, 5)
      -- windows of 5 -> 3: rows [0,2), [1,4), [3,5)
      local y = nv.adaptive_avg_pool2d(x, 3)
      H.close(y:view(3, 3):select(1, 1), { (1 + 2 + 6 + 7) / 4, (2 + 3 + 4 + 7 + 8 + 9) / 6, (4 + 5 + 9 + 10) / 4 })
      H.close(nv.adaptive_avg_pool2d(x, 1):view(1), { 13 })
      H.gradcheck(function(xx) return nv.adaptive_avg_pool2d(xx, { 2, 3 }) end, { nv.randn(2, 2, 5, 7) })
    end)
  end)

  describe("batch_norm", function()
    it("normalizes with batch statistics in training and updates running stats with the unbiased variance", function()
      local x = nv.randn(4, 3, 2, 2) * 2 + 1
      local rm, rv = nv.zeros(3), nv.ones(3)
      local y = nv.batch_norm(x, rm, rv, nil, nil, { training = true, momentum = 0.1 })
      local per = x:permute(2, 1, 3, 4):reshape(3, -1)
      local mean, var = per:mean(2), per:var(2, { unbiased = false })
      H.close(y:permute(2, 1, 3, 4):reshape(3, -1):mean(2), nv.zeros(3), 1e-5)
      H.close(rm, mean * 0.1, 1e-5)
      H.close(rv, nv.ones(3) * 0.9 + per:var(2) * 0.1, 1e-5)
      local expect = (x - mean:view(1, 3, 1, 1)) / (var:view(1, 3, 1, 1) + 1e-5):sqrt()
      H.close(y, expect, 1e-4)
    end)

    it("uses the running statistics in eval mode", function()
      local x = nv.randn(2, 3)
      local rm, rv = nv.tensor { 1, 2, 3 }, nv.tensor { 4, 1, 0.25 }
      local w, b = nv.tensor { 1, 2, 3 }, nv.tensor { 0, 1, 0 }
      local y = nv.batch_norm(x, rm, rv, w, b, { training = false, eps = 0 })
      H.close(y, (x - rm) / rv:sqrt() * w + b, 1e-5)
    end)

    it("has central-difference gradients in both modes", function()
      H.gradcheck(function(xx, w, b) return nv.batch_norm(xx, nil, nil, w, b, { training = true }) end,
        { nv.randn(3, 2, 2, 2), nv.randn(2), nv.randn(2) }, { tol = 3e-2, atol = 5e-3 })
      H.gradcheck(function(xx, w, b) return nv.batch_norm(xx, nv.zeros(2), nv.ones(2) * 2, w, b, { training = false }) end,
        { nv.randn(3, 2, 4), nv.randn(2), nv.randn(2) })
    end)
  end)

  describe("activations and softmax", function()
    it("softmax and log_softmax are stable for large logits, over any dim", function()
      local x = nv.tensor { { 1000, 1001, 1002 }, { -1000, 0, 1000 } }
      local s = nv.softmax(x, 2)
      H.close(s:sum(2), { 1, 1 }, 1e-6)
      local e = { math.exp(-2), math.exp(-1), 1 }
      local z = e[1] + e[2] + e[3]
      H.close(s:select(1, 1), { e[1] / z, e[2] / z, e[3] / z }, 1e-6)
      H.close(nv.log_softmax(x, 2):select(1, 1), { -2 - math.log(z), -1 - math.log(z), -math.log(z) }, 1e-5)
      H.close(nv.softmax(x, 1):sum(1), { 1, 1, 1 }, 1e-6)
      H.gradcheck(function(t) return nv.softmax(t, 1) end, { nv.randn(3, 4, 2) })
      H.gradcheck(function(t) return nv.log_softmax(t, -1) end, { nv.randn(3, 4) })
      H.gradcheck(function(t) return nv.log_softmax(t, 2) end, { nv.randn(2, 3, 4) })
    end)
  end)

  describe("losses", function()
    it("cross_entropy equals the mean negative log-softmax at 1-based targets", function()
      local logits = nv.tensor { { 1, 2, 3 }, { 1, 0, -1 } }
      local l = nv.cross_entropy(logits, { 3, 1 }):item()
      local function lse(a, b, c) return math.log(math.exp(a) + math.exp(b) + math.exp(c)) end
      local expect = ((lse(1, 2, 3) - 3) + (lse(1, 0, -1) - 1)) / 2
      assert.is_true(math.abs(l - expect) < 1e-5)
      H.gradcheck(function(t) return nv.cross_entropy(t, { 2, 3, 1 }) end, { nv.randn(3, 4) })
    end)

    it("cross_entropy supports class weights and label smoothing like PyTorch", function()
      local logits = nv.tensor { { 0.5, -1, 2 }, { 1, 0.2, -0.3 } }
      local w = nv.tensor { 1, 2, 0.5 }
      local logp = nv.log_softmax(logits, 2):totable()
      -- weighted: -(w3*lp[1][3] + w1*lp[2][1]) / (w3 + w1)
      local weighted = -(0.5 * logp[1][3] + 1 * logp[2][1]) / 1.5
      assert.is_true(math.abs(nv.cross_entropy(logits, { 3, 1 }, { weight = w }):item() - weighted) < 1e-5)
      -- smoothing 0.1 without weights: 0.9*nll + 0.1 * mean over classes of -logp, averaged
      local eps = 0.1
      local nll = -(logp[1][3] + logp[2][1]) / 2
      local smooth = 0
      for i = 1, 2 do for c = 1, 3 do smooth = smooth - logp[i][c] end end
      smooth = smooth / 2 / 3
      local expect = (1 - eps) * nll + eps * smooth
      assert.is_true(math.abs(nv.cross_entropy(logits, { 3, 1 }, { label_smoothing = eps }):item() - expect) < 1e-5)
      H.gradcheck(function(t) return nv.cross_entropy(t, { 2, 1 }, { weight = w, label_smoothing = 0.2 }) end,
        { nv.randn(2, 3) })
    end)

    it("rejects class ids outside 1..C", function()
      assert.has_error(function() nv.cross_entropy(nv.zeros(2, 3), { 0, 3 }) end,
        "cross_entropy: class ids must be in 1..3, got values from 0 to 3")
    end)

    it("mse_loss and nll_loss", function()
      H.close(nv.mse_loss(nv.tensor { 1, 2 }, nv.tensor { 3, 2 }), nv.tensor(2))
      H.close(nv.nll_loss(nv.tensor { { -1, -2 }, { -3, -4 } }, { 2, 1 }), nv.tensor(2.5))
      H.gradcheck(function(a, b) return nv.mse_loss(a, b) end, { nv.randn(3, 2), nv.randn(3, 2) })
    end)
  end)

  describe("linear and dropout", function()
    it("linear computes x w^T + b", function()
      local x, w, b = nv.randn(4, 3), nv.randn(2, 3), nv.randn(2)
      H.close(nv.linear(x, w, b), nv.matmul(x, w:t()) + b, 1e-6)
      H.gradcheck(function(a, ww, bb) return nv.linear(a, ww, bb) end, { nv.randn(4, 3), nv.randn(2, 3), nv.randn(2) })
      assert.has_error(function() nv.linear(nv.zeros(4, 5), nv.zeros(2, 3)) end,
        "linear: input (4,5) has 5 features, weight (2,3) expects 3")
    end)

    it("dropout zeroes about p of the elements, rescales the rest, and is the identity in eval", function()
      local x = nv.ones(10000)
      local y = nv.dropout(x, 0.3, true)
      local zeros = y:eq(0):sum():item()
      assert.is_true(math.abs(zeros / 10000 - 0.3) < 0.03)
      H.close(y:max(), nv.tensor(1 / 0.7), 1e-5)
      assert.equal(x, nv.dropout(x, 0.3, false))
    end)
  end)

  describe("interpolate and pad", function()
    it("nearest picks floor(dst * in/out)", function()
      local x = nv.arange(1, 5):view(1, 1, 2, 2)
      assert.same({ { 1, 1, 2, 2 }, { 1, 1, 2, 2 }, { 3, 3, 4, 4 }, { 3, 3, 4, 4 } },
        nv.interpolate(x, { size = { 4, 4 } }):view(4, 4):totable())
      H.gradcheck(function(t) return nv.interpolate(t, { size = { 5, 3 } }) end, { nv.randn(1, 2, 3, 4) })
    end)

    it("bilinear with align_corners true and false follows PyTorch's source coordinates", function()
      local x = nv.tensor { { { { 0, 1 }, { 2, 3 } } } }
      -- align_corners = true: corners map to corners, 3 points per side
      H.close(nv.interpolate(x, { size = { 3, 3 }, mode = "bilinear", align_corners = true }):view(3, 3),
        { { 0, 0.5, 1 }, { 1, 1.5, 2 }, { 2, 2.5, 3 } })
      -- align_corners = false: src = (dst + 0.5) * 2/4 - 0.5, clamped at 0
      H.close(nv.interpolate(x, { size = { 4, 4 }, mode = "bilinear" }):view(4, 4):select(1, 1),
        { 0, 0.25, 0.75, 1 })
      H.gradcheck(function(t) return nv.interpolate(t, { size = { 5, 7 }, mode = "bilinear" }) end, { nv.randn(1, 1, 3, 4) })
      H.gradcheck(function(t) return nv.interpolate(t, { size = { 4, 2 }, mode = "bilinear", align_corners = true }) end,
        { nv.randn(1, 2, 3, 3) })
    end)

    it("pads with constant, reflect and replicate", function()
      local x = nv.tensor { { 1, 2, 3 } }
      assert.same({ { 0, 1, 2, 3, 0, 0 } }, nv.pad(x, { 1, 2 }):totable())
      assert.same({ { 3, 2, 1, 2, 3, 2 } }, nv.pad(x, { 2, 1 }, { mode = "reflect" }):totable())
      assert.same({ { 1, 1, 2, 3, 3, 3 } }, nv.pad(x, { 1, 2 }, { mode = "replicate" }):totable())
      local y = nv.pad(nv.ones(1, 2, 2), { 1, 0, 0, 1 }, { value = 5 })
      assert.same({ { { 5, 1, 1 }, { 5, 1, 1 }, { 5, 5, 5 } } }, y:totable())
      for _, mode in ipairs { "constant", "reflect", "replicate" } do
        H.gradcheck(function(t) return nv.pad(t, { 2, 1, 1, 2 }, { mode = mode }) end, { nv.randn(2, 3, 4) })
      end
    end)
  end)

  describe("rotate", function()
    it("turns images counter-clockwise about the centre and has central-difference gradients", function()
      local x = nv.zeros(1, 5, 5)
      x:set(1, 1, 3, 5)                                  -- right-middle
      local r = nv.core.rotate(x, 90)
      assert.equal(1, r:get(1, 1, 3))                    -- -> top-middle
      H.close(nv.core.rotate(x, 0), x, 1e-6)
      H.gradcheck(function(t) return nv.core.rotate(t, 17, 1.1) end, { nv.randn(2, 4, 5) })
    end)
  end)

  describe("cat, stack and flatten", function()
    it("flatten keeps leading dims", function()
      assert.same({ 2, 12 }, nv.zeros(2, 3, 4):flatten(2):shape())
      assert.same({ 24 }, nv.flatten(nv.zeros(2, 3, 4)):shape())
    end)
  end)
end)

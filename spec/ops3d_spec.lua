-- 3-d convolution and pooling (nnvis.ops3d) against the definitions computed element by
-- element, and their gradients against central differences.
local nv = require "nnvis"
local O = require "nnvis.tensor.ops3d"
require "nnvis.tensor.assert"

-- the direct sum: out[n][o][t][i][j] = b[o] + sum_{c,a,p,q} x[n][c][t*s+a*d-pad]... w[o][c][a][p][q]
local function naive_conv3d(x, w, b, s, p, d)
  local N, C, D, H, W = table.unpack(x:shape())
  local O_, _, kd, kh, kw = table.unpack(w:shape())
  local function osz(n, k, i) return (n + 2 * p[i] - d[i] * (k - 1) - 1) // s[i] + 1 end
  local Do, Ho, Wo = osz(D, kd, 1), osz(H, kh, 2), osz(W, kw, 3)
  local out = nv.zeros(N, O_, Do, Ho, Wo)
  for n = 1, N do for o = 1, O_ do for t = 1, Do do for i = 1, Ho do for j = 1, Wo do
    local acc = b and b:get(o) or 0
    for c = 1, C do for a = 1, kd do for pp = 1, kh do for q = 1, kw do
      local z = (t - 1) * s[1] + (a - 1) * d[1] - p[1] + 1
      local y = (i - 1) * s[2] + (pp - 1) * d[2] - p[2] + 1
      local xx = (j - 1) * s[3] + (q - 1) * d[3] - p[3] + 1
      if z >= 1 and z <= D and y >= 1 and y <= H and xx >= 1 and xx <= W then
        acc = acc + x:get(n, c, z, y, xx) * w:get(o, c, a, pp, q)
      end
    end end end end
    out:set(acc, n, o, t, i, j)
  end end end end end
  return out
end

local function naive_pool3d(x, k, s, p, max)
  local N, C, D, H, W = table.unpack(x:shape())
  local function osz(n, i) return (n + 2 * p[i] - k[i]) // s[i] + 1 end
  local Do, Ho, Wo = osz(D, 1), osz(H, 2), osz(W, 3)
  local out = nv.zeros(N, C, Do, Ho, Wo)
  for n = 1, N do for c = 1, C do for t = 1, Do do for i = 1, Ho do for j = 1, Wo do
    local acc = max and -math.huge or 0
    for a = 1, k[1] do for pp = 1, k[2] do for q = 1, k[3] do
      local z, y, xx = (t - 1) * s[1] + a - p[1], (i - 1) * s[2] + pp - p[2], (j - 1) * s[3] + q - p[3]
      local v = 0
      if z >= 1 and z <= D and y >= 1 and y <= H and xx >= 1 and xx <= W then v = x:get(n, c, z, y, xx)
      elseif max then v = -math.huge end
      if max then acc = math.max(acc, v) else acc = acc + v end
    end end end
    out:set(max and acc or acc / (k[1] * k[2] * k[3]), n, c, t, i, j)
  end end end end end
  return out
end

-- the transposed convolution by its definition: every input element scatters its kernel,
-- out[n][g*cog+o][t*s + a*d - p][..] += x[n][c][t][..] * w[c][o][a][..] (c in group g)
local function naive_conv_transpose3d(x, w, b, s, p, op, d, g)
  local N, C, D, H, W = table.unpack(x:shape())
  local _, cog, kd, kh, kw = table.unpack(w:shape())
  local function osz(n, k, i) return (n - 1) * s[i] - 2 * p[i] + d[i] * (k - 1) + op[i] + 1 end
  local Do, Ho, Wo = osz(D, kd, 1), osz(H, kh, 2), osz(W, kw, 3)
  local out = nv.zeros(N, cog * g, Do, Ho, Wo)
  local cg = C // g
  for n = 1, N do for c = 1, C do for t = 1, D do for i = 1, H do for j = 1, W do
    local v = x:get(n, c, t, i, j)
    local grp = (c - 1) // cg
    for o = 1, cog do for a = 1, kd do for pp = 1, kh do for q = 1, kw do
      local z = (t - 1) * s[1] + (a - 1) * d[1] - p[1] + 1
      local y = (i - 1) * s[2] + (pp - 1) * d[2] - p[2] + 1
      local xx = (j - 1) * s[3] + (q - 1) * d[3] - p[3] + 1
      if z >= 1 and z <= Do and y >= 1 and y <= Ho and xx >= 1 and xx <= Wo then
        local oc = grp * cog + o
        out:set(out:get(n, oc, z, y, xx) + v * w:get(c, o, a, pp, q), n, oc, z, y, xx)
      end
    end end end end
  end end end end end
  if b then out = out + b:view(1, -1, 1, 1, 1) end
  return out
end

local function close(a, b, tol) assert.near(0, (a - b):abs():max():item(), tol or 1e-4) end

describe("nnvis.tensor.ops3d", function()
  it("conv3d equals the direct sum: strides, padding, dilation, bias", function()
    nv.manual_seed(1)
    for _, c in ipairs {
      { s = { 1, 1, 1 }, p = { 0, 0, 0 }, d = { 1, 1, 1 } },
      { s = { 2, 1, 2 }, p = { 1, 1, 0 }, d = { 1, 1, 1 } },
      { s = { 1, 2, 1 }, p = { 2, 0, 1 }, d = { 2, 1, 2 } },
    } do
      local x, w, b = nv.randn(2, 3, 5, 6, 5), nv.randn(4, 3, 3, 2, 3), nv.randn(4)
      close(O.conv3d(x, w, b, { stride = c.s, padding = c.p, dilation = c.d }), naive_conv3d(x, w, b, c.s, c.p, c.d))
    end
    -- groups: two independent halves
    local x, w = nv.randn(1, 4, 4, 4, 4), nv.randn(2, 2, 2, 2, 2)
    local y = O.conv3d(x, w, nil, { groups = 2 })
    close(y:narrow(2, 1, 1), naive_conv3d(x:narrow(2, 1, 2), w:narrow(1, 1, 1), nil, { 1, 1, 1 }, { 0, 0, 0 }, { 1, 1, 1 }))
  end)

  it("conv_transpose3d equals the scatter of its definition: strides, padding, output padding, dilation, groups", function()
    nv.manual_seed(4)
    for _, c in ipairs {
      { s = { 1, 1, 1 }, p = { 0, 0, 0 }, op = { 0, 0, 0 }, d = { 1, 1, 1 }, g = 1 },
      { s = { 2, 1, 2 }, p = { 0, 1, 1 }, op = { 1, 0, 1 }, d = { 1, 1, 1 }, g = 1 },
      { s = { 1, 2, 1 }, p = { 1, 0, 2 }, op = { 0, 1, 0 }, d = { 2, 1, 2 }, g = 2 },
    } do
      local x, w, b = nv.randn(2, 4, 3, 4, 3), nv.randn(4, 3, 2, 3, 2), nv.randn(3 * c.g)
      close(O.conv_transpose3d(x, w, b, { stride = c.s, padding = c.p, output_padding = c.op, dilation = c.d, groups = c.g }),
        naive_conv_transpose3d(x, w, b, c.s, c.p, c.op, c.d, c.g))
    end
    assert.has_error(function() O.conv_transpose3d(nv.randn(1, 3, 2, 2, 2), nv.randn(4, 2, 2, 2, 2)) end,
      "conv_transpose3d: weight (4,2,2,2,2) takes 4 input channels in 1 group, input has 3 (1,3,2,2,2)")
    assert.has_error(function() O.conv_transpose3d(nv.randn(1, 2, 2, 2, 2), nv.randn(2, 2, 2, 2, 2), nil, { output_padding = 1 }) end,
      "conv_transpose3d: output_padding 1 must be smaller than the stride or the dilation (1, 1)")
  end)

  it("max_pool3d and avg_pool3d equal the direct windows", function()
    nv.manual_seed(2)
    local x = nv.randn(2, 2, 5, 6, 6)
    for _, c in ipairs { { k = { 2, 2, 2 }, s = { 2, 2, 2 }, p = { 0, 0, 0 } }, { k = { 3, 3, 2 }, s = { 1, 2, 2 }, p = { 1, 1, 1 } } } do
      close(O.max_pool3d(x, c.k, { stride = c.s, padding = c.p }), naive_pool3d(x, c.k, c.s, c.p, true))
      close(O.avg_pool3d(x, c.k, { stride = c.s, padding = c.p }), naive_pool3d(x, c.k, c.s, c.p, false))
    end
    -- without count_include_pad: the mean of the real elements
    local ones = nv.ones(1, 1, 3, 3, 3)
    local y = O.avg_pool3d(ones, 3, { stride = 1, padding = 1, count_include_pad = false })
    close(y, nv.ones(1, 1, 3, 3, 3))
    local a = O.adaptive_avg_pool3d(x, { 1, 1, 1 })
    close(a:reshape(2, 2), x:reshape(2, 2, -1):mean(3))
  end)

  it("have gradients that agree with central differences", function()
    nv.manual_seed(3)
    local x, w, b = nv.randn(1, 2, 4, 4, 4), nv.randn(3, 2, 2, 3, 2), nv.randn(3)
    assert.gradcheck(function(a, ww, bb) return O.conv3d(a, ww, bb, { stride = { 2, 1, 1 }, padding = 1 }) end, { x, w, b })
    assert.gradcheck(function(a, ww, bb)
      return O.conv_transpose3d(a, ww, bb, { stride = { 2, 1, 2 }, padding = { 1, 0, 1 }, output_padding = { 1, 0, 0 } })
    end, { nv.randn(1, 2, 2, 3, 2), nv.randn(2, 2, 2, 2, 3), nv.randn(2) })
    assert.gradcheck(function(a) return O.avg_pool3d(a, 2, { padding = 1, count_include_pad = false }) end, { nv.randn(1, 2, 4, 4, 4) })
    local r = nv.rand(1, 1, 4, 4, 4) + nv.arange(64):reshape(1, 1, 4, 4, 4) * 0.1   -- no ties
    assert.gradcheck(function(a) return O.max_pool3d(a, 2) end, { r })
    local rm, rv = nv.zeros(2), nv.ones(2)
    assert.gradcheck(function(a) return O.batch_norm3d(a, rm, rv, nil, nil, { training = true }) end, { nv.randn(2, 2, 2, 3, 3) })
  end)

  it("are layers (nv.nn.Conv3d, MaxPool3d, AvgPool3d, BatchNorm3d, AdaptiveAvgPool3d) and run ONNX's 3-d nodes", function()
    local nn = nv.nn
    local m = nn.Sequential { nn.Conv3d(3, 4, 3, { padding = 1 }), nn.BatchNorm3d(4), nn.ReLU(), nn.MaxPool3d(2),
                              nn.AvgPool3d(1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2) }
    assert.same({ 2, 2 }, m(nv.randn(2, 3, 4, 8, 8)):shape())
    assert.same({ 4, 3, 3, 3, 3 }, m[1].weight:shape())
    assert.matches("Conv3d", tostring(m))
    local W = require "onnx_writer"
    local path = W.file {
      opset = 13, inputs = { { "x", { 1, 2, 4, 6, 6 } } }, outputs = { "y" },
      nodes = { { op = "Conv", inputs = { "x", "w" }, outputs = { "c" }, attrs = { pads = { 1, 1, 1, 1, 1, 1 } } },
                { op = "MaxPool", inputs = { "c" }, outputs = { "y" }, attrs = { kernel_shape = { 2, 2, 2 }, strides = { 2, 2, 2 } } } },
      initializers = { W.tensor { name = "w", dims = { 3, 2, 3, 3, 3 }, floats = nv.randn(3 * 2 * 27):values() } },
    }
    local onnx, err = nv.onnx.load(path)
    os.remove(path)
    assert.truthy(onnx, err)
    local x = nv.randn(1, 2, 4, 6, 6)
    local wt = onnx:state_dict().w
    local want = O.max_pool3d(O.conv3d(x, wt, nil, { padding = 1 }), 2)
    close(nv.no_grad(onnx, x), want)
  end)

  local H = require "helpers"
  local have_torch = H.sh("/usr/bin/python3 -c 'import torch'")
  H.it_if(have_torch, "python3-torch")("nn.ConvTranspose3d gives torch.nn.ConvTranspose3d's output with its state dict", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local script = assert(io.open(dir .. "/make.py", "w"))
    script:write([[
import torch
torch.manual_seed(0)
m = torch.nn.ConvTranspose3d(4, 6, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0), groups=2)
x = torch.randn(2, 4, 3, 4, 3)
y = m(x)
d = "]] .. dir .. [["
m.weight.detach().numpy().tofile(d + "/w"); m.bias.detach().numpy().tofile(d + "/b")
x.numpy().tofile(d + "/x"); y.detach().numpy().tofile(d + "/y")
print(tuple(y.shape))
]])
    script:close()
    local ok, out = H.sh("/usr/bin/python3 " .. dir .. "/make.py")
    assert.is_true(ok, out)
    local m = nv.nn.ConvTranspose3d(4, 6, { 3, 2, 3 }, { stride = { 2, 1, 2 }, padding = { 1, 0, 1 }, output_padding = { 1, 0, 0 }, groups = 2 })
    assert.shape(m.weight, { 4, 3, 3, 2, 3 })
    m:load_state_dict { weight = H.read_floats(dir .. "/w", { 4, 3, 3, 2, 3 }), bias = H.read_floats(dir .. "/b", { 6 }) }
    local y = nv.no_grad(m, H.read_floats(dir .. "/x", { 2, 4, 3, 4, 3 }))
    assert.equal(out:match("%(.-%)"), tostring(y:shape()))
    close(y, H.read_floats(dir .. "/y", y:shape()), 1e-5)
    os.execute("rm -rf " .. dir)
  end)
end)

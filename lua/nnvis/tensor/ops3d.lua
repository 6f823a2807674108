--- nnvis.ops3d — 3-d convolution, pooling and batch norm for video and volumes (N, C, D, H, W),
-- composed of the 2-d kernels, so they run on the same gemm / oneDNN paths and their
-- gradients come from autograd:
--   conv3d: for each kernel depth j, the frames t*sd + j*dd - pd of every output depth t go
--     through one batched conv2d with the weight's slice j; the kd results are summed.
--   max_pool3d / avg_pool3d: a 2-d pool of every frame, then the depth window (max and sum
--     are separable); avg divides by the window's size or, without count_include_pad, by the
--     real elements in it.
--   batch_norm3d: the 2-d batch norm of (N, C, D, H*W), per channel over the rest.
--   adaptive_avg_pool3d: the 2-d adaptive pool of every frame, then PyTorch's depth bins.
-- Sizes follow PyTorch: out = floor((D + 2p - d (k - 1) - 1) / s) + 1 per dim.
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

local function triple(fname, name, v, min)
  if type(v) == "number" then v = { v, v, v } end
  if type(v) ~= "table" or #v ~= 3 then util.raise(string.format("%s: %s must be a number or 3 numbers", fname, name)) end
  for i = 1, 3 do
    if math.type(v[i]) ~= "integer" or v[i] < min then
      util.raise(string.format("%s: %s must be integers >= %d, got %s", fname, name, min, tostring(v[i])))
    end
  end
  return v
end

local function check5(fname, x)
  if not util.is_tensor(x) or x:dim() ~= 5 then
    util.raise(string.format("%s: expected an input (N,C,D,H,W), got %s", fname,
      util.is_tensor(x) and util.shape_str(x) or type(x)))
  end
end

-- x (N,C,D,H,W) with `pad` frames of value v added before and after the depth
local function pad_depth(x, pad, v)
  if pad == 0 then return x end
  local s = x:shape()
  local z = core.full({ s[1], s[2], pad, s[4], s[5] }, v or 0)
  return core.cat({ z, x, z }, 3)
end

-- the frames t*s + j*d (1-based: +1) of the depth axis, t = 0..n-1
local function frames(x, n, s, j, d)
  local idx = {}
  for t = 0, n - 1 do idx[#idx + 1] = t * s + j * d + 1 end
  return x:index_select(3, idx)
end

-- (N,C,D,H,W) -> (N*D, C, H, W) and back
local function fold(x) local s = x:shape(); return x:permute(1, 3, 2, 4, 5):reshape(s[1] * s[3], s[2], s[4], s[5]) end
local function unfold(y, n, d)
  local s = y:shape()
  return y:reshape(n, d, s[2], s[3], s[4]):permute(1, 3, 2, 4, 5)
end

local function out_size(fname, D, k, s, p, d)
  local o = (D + 2 * p - d * (k - 1) - 1) // s + 1
  if o < 1 then util.raise(string.format("%s: the padded depth %d is shorter than the dilated kernel %d", fname, D + 2 * p, d * (k - 1) + 1)) end
  return o
end

--- conv3d(x, weight [, bias] [, {stride = 1, padding = 0, dilation = 1, groups = 1}]):
--- x (N,Cin,D,H,W), weight (Cout, Cin/groups, kd, kh, kw), bias (Cout); stride, padding and
--- dilation a number or {d, h, w}.  (grad to x, weight, bias)
function M.conv3d(x, w, b, opts)
  opts = util.check_opts("conv3d", opts, { "stride", "padding", "dilation", "groups" })
  check5("conv3d", x)
  if not util.is_tensor(w) or w:dim() ~= 5 then util.raise("conv3d: weight must be (Cout, Cin/groups, kd, kh, kw)") end
  local st = triple("conv3d", "stride", opts.stride or 1, 1)
  local pd = triple("conv3d", "padding", opts.padding or 0, 0)
  local dl = triple("conv3d", "dilation", opts.dilation or 1, 1)
  local g = opts.groups or 1
  local N, D = x:size(1), x:size(3)
  local kd = w:size(3)
  if x:size(2) ~= w:size(2) * g then
    util.raise(string.format("conv3d: weight %s expects %d input channels, input has %d %s", util.shape_str(w), w:size(2) * g,
      x:size(2), util.shape_str(x)))
  end
  local Do = out_size("conv3d", D, kd, st[1], pd[1], dl[1])
  local xp = pad_depth(x, pd[1], 0)
  local acc
  for j = 0, kd - 1 do
    local xs = fold(frames(xp, Do, st[1], j, dl[1]))                        -- (N*Do, Cin, H, W)
    local y = core.conv2d(xs, w:select(3, j + 1), nil, { stride = { st[2], st[3] }, padding = { pd[2], pd[3] },
      dilation = { dl[2], dl[3] }, groups = g })
    acc = acc and (acc + y) or y
  end
  local out = unfold(acc, N, Do)                                             -- (N, Cout, Do, Ho, Wo)
  if b then out = out + b:view(1, b:numel(), 1, 1, 1) end
  return out
end

-- x with s - 1 zeros after every element of dim d (the input of a transposed convolution
-- seen as a convolution): (.., L, ..) -> (.., (L - 1) s + 1, ..), through cat and reshape, so
-- gradients flow
local function spread(x, d, s)
  if s == 1 then return x end
  local sh = x:shape()
  local L = sh[d]
  local xe = x:unsqueeze(d + 1)                                               -- (.., L, 1, ..)
  local zs = sh
  local zshape = {}
  for i = 1, #zs do zshape[#zshape + 1] = zs[i]; if i == d then zshape[#zshape + 1] = s - 1 end end
  zshape[d] = L
  local y = core.cat({ xe, core.zeros(zshape) }, d + 1)                       -- (.., L, s, ..)
  local merged = {}
  for i = 1, #sh do merged[i] = sh[i] end
  merged[d] = L * s
  return y:reshape(merged):narrow(d, 1, (L - 1) * s + 1)
end

-- x padded along dim d with `before` and `after` zeros (negative: cropped)
local function pad_dim(x, d, before, after)
  if before < 0 then x = x:narrow(d, 1 - before, x:size(d) + before); before = 0 end
  if after < 0 then x = x:narrow(d, 1, x:size(d) + after); after = 0 end
  if before == 0 and after == 0 then return x end
  local parts = {}
  local function zeros(n) local s = x:shape(); s[d] = n; return core.zeros(s) end
  if before > 0 then parts[#parts + 1] = zeros(before) end
  parts[#parts + 1] = x
  if after > 0 then parts[#parts + 1] = zeros(after) end
  return core.cat(parts, d)
end

--- conv_transpose3d(x, weight [, bias] [, {stride = 1, padding = 0, output_padding = 0,
--- dilation = 1, groups = 1}]): the transposed 3-d convolution (the gradient of conv3d with
--- respect to its input) of x (N,Cin,D,H,W) with weight (Cin, Cout/groups, kd, kh, kw), as
--- PyTorch's: out = (D - 1) s - 2p + d (k - 1) + output_padding + 1 per dim.  Computed as a
--- convolution of x spread by the stride (zeros between elements), padded by d (k - 1) - p,
--- with the kernel flipped and its channels swapped per group.  (grad to x, weight, bias)
function M.conv_transpose3d(x, w, b, opts)
  opts = util.check_opts("conv_transpose3d", opts, { "stride", "padding", "output_padding", "dilation", "groups" })
  check5("conv_transpose3d", x)
  if not util.is_tensor(w) or w:dim() ~= 5 then util.raise("conv_transpose3d: weight must be (Cin, Cout/groups, kd, kh, kw)") end
  local st = triple("conv_transpose3d", "stride", opts.stride or 1, 1)
  local pd = triple("conv_transpose3d", "padding", opts.padding or 0, 0)
  local op = triple("conv_transpose3d", "output_padding", opts.output_padding or 0, 0)
  local dl = triple("conv_transpose3d", "dilation", opts.dilation or 1, 1)
  local g = opts.groups or 1
  if math.type(g) ~= "integer" or g < 1 then util.raise("conv_transpose3d: groups must be an integer >= 1, got " .. tostring(g)) end
  local cin, cout_g = w:size(1), w:size(2)
  if x:size(2) ~= cin or cin % g ~= 0 then
    util.raise(string.format("conv_transpose3d: weight %s takes %d input channels in %d group%s, input has %d %s",
      util.shape_str(w), cin, g, g == 1 and "" or "s", x:size(2), util.shape_str(x)))
  end
  for i = 1, 3 do
    if op[i] >= math.max(st[i], dl[i]) then
      util.raise(string.format("conv_transpose3d: output_padding %d must be smaller than the stride or the dilation (%d, %d)",
        op[i], st[i], dl[i]))
    end
  end
  local k = { w:size(3), w:size(4), w:size(5) }
  local xs = x
  for i = 1, 3 do
    xs = spread(xs, i + 2, st[i])
    local edge = dl[i] * (k[i] - 1) - pd[i]
    xs = pad_dim(xs, i + 2, edge, edge + op[i])
    if xs:size(i + 2) < dl[i] * (k[i] - 1) + 1 then
      util.raise(string.format("conv_transpose3d: padding %d leaves no output along dim %d of %s", pd[i], i + 2, util.shape_str(x)))
    end
  end
  -- the kernel flipped in space and, per group, (Cin/g, Cout/g) -> (Cout/g, Cin/g)
  local wf = w
  for i = 3, 5 do wf = wf:index_select(i, core.arange(w:size(i), 0, -1)) end
  wf = wf:reshape(g, cin // g, cout_g, k[1], k[2], k[3]):transpose(2, 3):reshape(g * cout_g, cin // g, k[1], k[2], k[3])
  return M.conv3d(xs, wf, b, { dilation = dl, groups = g })
end

local function pool3d(fname, x, k, opts, max)
  check5(fname, x)
  local ks = triple(fname, "kernel_size", k, 1)
  local st = triple(fname, "stride", opts.stride or ks, 1)
  local pd = triple(fname, "padding", opts.padding or 0, 0)
  for i = 1, 3 do
    if pd[i] * 2 > ks[i] then util.raise(string.format("%s: padding %d is more than half the kernel %d", fname, pd[i], ks[i])) end
  end
  local N, C, D = x:size(1), x:size(2), x:size(3)
  local Do = out_size(fname, D, ks[1], st[1], pd[1], 1)
  if max then
    local y = core.max_pool2d(fold(x), { ks[2], ks[3] }, { stride = { st[2], st[3] }, padding = { pd[2], pd[3] } })
    local yp = pad_depth(unfold(y, N, D), pd[1], -math.huge)
    local acc
    for j = 0, ks[1] - 1 do
      local f = frames(yp, Do, st[1], j, 1)
      acc = acc and acc:maximum(f) or f
    end
    return acc
  end
  -- sums of each window (zeros in the padding), then the count
  local y = core.avg_pool2d(fold(x), { ks[2], ks[3] }, { stride = { st[2], st[3] }, padding = { pd[2], pd[3] },
    count_include_pad = true }) * (ks[2] * ks[3])
  local yp = pad_depth(unfold(y, N, D), pd[1], 0)
  local acc
  for j = 0, ks[1] - 1 do
    local f = frames(yp, Do, st[1], j, 1)
    acc = acc and (acc + f) or f
  end
  if opts.count_include_pad ~= false then return acc / (ks[1] * ks[2] * ks[3]) end
  local ones = core.ones(1, 1, D, x:size(4), x:size(5))
  local cnt = core.no_grad(function() return pool3d(fname, ones, k, { stride = opts.stride, padding = opts.padding }) end)
  return acc / (cnt * (ks[1] * ks[2] * ks[3]))
end

--- max_pool3d(x, kernel [, {stride = kernel, padding = 0}]) on (N,C,D,H,W) (grad)
function M.max_pool3d(x, k, opts)
  return pool3d("max_pool3d", x, k, util.check_opts("max_pool3d", opts, { "stride", "padding" }), true)
end

--- avg_pool3d(x, kernel [, {stride = kernel, padding = 0, count_include_pad = true}]) (grad)
function M.avg_pool3d(x, k, opts)
  return pool3d("avg_pool3d", x, k, util.check_opts("avg_pool3d", opts, { "stride", "padding", "count_include_pad" }), false)
end

--- adaptive_avg_pool3d(x, size): (N,C,D,H,W) averaged into size (a number or {d, h, w}) bins,
--- PyTorch's bins: [floor(i D / d), ceil((i + 1) D / d)) (grad)
function M.adaptive_avg_pool3d(x, size)
  check5("adaptive_avg_pool3d", x)
  local s = triple("adaptive_avg_pool3d", "output_size", size, 1)
  local N, D = x:size(1), x:size(3)
  local y = unfold(core.adaptive_avg_pool2d(fold(x), { s[2], s[3] }), N, D)  -- (N,C,D,h,w)
  local bins = {}
  for i = 0, s[1] - 1 do
    local a, b = (i * D) // s[1], -((-(i + 1) * D) // s[1])
    bins[#bins + 1] = y:narrow(3, a + 1, b - a):mean(3, true)
  end
  return core.cat(bins, 3)
end

--- batch_norm3d(x, running_mean, running_var, weight, bias [, opts]): nv.batch_norm of
--- (N,C,D,H,W), per channel over the batch and every position (grad)
function M.batch_norm3d(x, rm, rv, w, b, opts)
  check5("batch_norm3d", x)
  local s = x:shape()
  return core.batch_norm(x:reshape(s[1], s[2], s[3], s[4] * s[5]), rm, rv, w, b, opts):reshape(s)
end

return M

-- nnvis.nn.fusion — Conv2d + BatchNorm2d (+ ReLU, + a residual) run as one convolution in
-- inference.  Sequential's forward and the models' blocks (nn.conv_bn_relu,
-- nn.conv_bn_add_relu) use it.
local core = require "nnvis.core"
local own = require("nnvis.nn.module")._own

local nn = {}

-- ---- inference fusion: in eval mode without gradients, a Conv2d followed by a BatchNorm2d
-- runs as one convolution with the BatchNorm folded into its weights and bias (W' = W s,
-- b' = b s + t, s = gamma / sqrt(var + eps), t = beta - mean s), and a ReLU right after it
-- is applied by the convolution to its fresh output.  Only modules with no hooks are fused,
-- so a hooked or captured layer keeps its own output.  The folded weights are cached on the
-- conv and recomputed when any of the tensors they come from is changed or replaced.
local function unhooked(m)
  return #rawget(m, "_hooks") == 0 and #rawget(m, "_pre_hooks") == 0
end

-- the cache is valid while the same tensors are there, unchanged since
local function fold_valid(cache, src)
  if not cache then return false end
  for i = 1, 6 do
    local t = src[i]
    if not rawequal(cache.src[i], t) then return false end
    if t and cache.ver[i] ~= core.storage_version(t) then return false end
  end
  return true
end

local function folded(conv, bn)
  local w, b = conv.weight, conv.bias
  local src = { w, b or false, bn.weight or false, bn.bias or false, bn.running_mean, bn.running_var }
  local cache = rawget(conv, "_folded")
  if fold_valid(cache, src) then return cache.w, cache.b end
  local s = (bn.running_var + bn.eps):rsqrt()
  if bn.weight then s = s * bn.weight end
  local t = -bn.running_mean * s
  if bn.bias then t = t + bn.bias end
  local fw = (w * s:view(-1, 1, 1, 1)):contiguous()
  local fb = (b and (b * s + t) or t):contiguous()
  local ver = {}
  for i = 1, 6 do ver[i] = src[i] and core.storage_version(src[i]) or 0 end
  rawset(conv, "_folded", { src = src, ver = ver, w = fw, b = fb })
  return fw, fb
end

local function fusable_bn(m, cout)
  return m and m.kind == "BatchNorm2d" and unhooked(m) and not m.training and m.track_running_stats
    and m.running_mean and m.running_mean:numel() == cout
end

local function fusable_relu(m) return m and m.kind == "ReLU" and unhooked(m) end

-- conv, then bn and relu when given, as one convolution: the output, or nil when they cannot
-- be fused (a hook, a BatchNorm in training or without running statistics, an odd input)
local function fusable(conv, bn, relu, x)
  if conv.kind ~= "Conv2d" or not unhooked(conv) or getmetatable(x) ~= core.tensor_mt or x:dim() ~= 4 then return false end
  if bn and not fusable_bn(bn, conv.out_channels) then return false end
  if relu and not fusable_relu(relu) then return false end
  return true
end

-- channels_last: the output laid out (N,H,W,C) in memory, for a convolution that reads it next
local function fuse(conv, bn, relu, x, add, channels_last)
  if not fusable(conv, bn, relu, x) or (not bn and not relu and not add) then return nil end
  local w, b = conv.weight, conv.bias
  if bn then w, b = folded(conv, bn) end
  local ok, y = pcall(core.conv2d, x, w, b, { stride = conv.stride, padding = conv.padding, dilation = conv.dilation,
    groups = conv.groups, relu = relu and true or false, add = add, channels_last = channels_last or false })
  if not ok then return nil end   -- let the modules raise their own errors
  return y
end

-- whether list[j..] reads a channels-last tensor as it is and hands on only what a
-- convolution reads: a Conv2d, or unhooked MaxPool2d layers (which keep the layout) before
-- one; past the end, `tail` (the caller's say)
local function reads_nhwc(list, j, tail)
  local m = list[j] and list[j][2]
  if not m then return tail end
  if not unhooked(m) then return false end
  if m.kind == "Conv2d" then return true end
  return m.kind == "MaxPool2d" and reads_nhwc(list, j + 1, tail)
end

-- runs list[i..] from a Conv2d: returns the output and how many modules it consumed, or nil
-- (channels_last: the caller reads a channels-last output of the last module as it is)
local function fused_conv(list, i, x, channels_last)
  local conv = list[i][2]
  if conv.kind ~= "Conv2d" then return nil end
  local nxt = list[i + 1] and list[i + 1][2]
  local bn = fusable_bn(nxt, conv.out_channels) and nxt or nil
  local after = list[i + (bn and 2 or 1)]
  local relu = after and fusable_relu(after[2]) and after[2] or nil
  local used = 1 + (bn and 1 or 0) + (relu and 1 or 0)
  -- a convolution next reads a channels-last input as it is (no reorder either side)
  local y = fuse(conv, bn, relu, x, nil, reads_nhwc(list, i + used, channels_last))
  if not y then return nil end
  return y, used
end

--- nn.conv_bn_relu(conv, bn, relu, x [, channels_last]): relu(bn(conv(x))), bn and relu
--- optional (nil), for the forward of a user module; in eval mode without gradients, with
--- none of the three hooked, it runs as one convolution with the BatchNorm folded in (like
--- a Sequential's), and channels_last = true lays that output out (N,H,W,C) in memory, which
--- the next convolution reads fastest (view() needs reshape() on it).
function nn.conv_bn_relu(conv, bn, relu, x, channels_last)
  if not conv.training and not core.is_grad_enabled() then
    local y = fuse(conv, bn, relu, x, nil, channels_last)
    if y then return y end
  end
  local y = conv(x)
  if bn then y = bn(y) end
  if relu then y = relu(y) end
  return y
end

--- nn.conv_bn_add_relu(conv, bn, relu, x, residual [, channels_last]): relu(bn(conv(x)) +
--- residual()), for a residual block's last convolution; residual is a function giving the
--- tensor to add.  In eval mode without gradients, with none of the three hooked, residual
--- runs first and the addition and the ReLU happen in the convolution's epilogue; with only
--- relu hooked, conv and bn still run as one.  bn and relu may be nil; channels_last as for
--- nn.conv_bn_relu.
function nn.conv_bn_add_relu(conv, bn, relu, x, residual, channels_last)
  if not conv.training and not core.is_grad_enabled() and fusable(conv, bn, relu, x) then
    local r = residual()
    local y = fuse(conv, bn, relu, x, r, channels_last)
    if y then return y end
    y = nn.conv_bn_relu(conv, bn, nil, x) + r
    return relu and relu(y) or y
  end
  local y = nn.conv_bn_relu(conv, bn, nil, x) + residual()
  return relu and relu(y) or y
end

nn._fused_conv = fused_conv
return nn

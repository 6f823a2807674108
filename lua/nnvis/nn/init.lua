-- nnvis.nn — layers and containers in the manner of torch/nn and torch.nn (nv.nn).
--
--   local nn = nv.nn
--   local net = nn.Sequential { nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(), nn.Flatten(), nn.Linear(8*28*28, 10) }
--   local y = net(nv.randn(4, 1, 28, 28))          -- (4, 10)
--   for name, p in net:named_parameters() do print(name, p:size(1)) end   -- "0.weight", "0.bias", ...
--
-- A module of your own needs only `init` and `forward`:
--
--   local Residual = nv.class("Residual", nn.Module)
--   function Residual:init(c) self.conv = nn.Conv2d(c, c, 3, {padding = 1}); self.relu = nn.ReLU() end
--   function Residual:forward(x) return self.relu(self.conv(x) + x) end
--
-- Assigning a module to a field registers it as a child, in assignment order; assigning a leaf
-- tensor that requires grad registers it as a parameter (or call register_parameter /
-- register_buffer).  Names, order and the state dict's keys are PyTorch's, so a state dict
-- exported from PyTorch for the same architecture loads unchanged.
-- Shapes: N batch, C channels, H height, W width, D features.  Dims are 1-based (Flatten's
-- default start_dim = 2 is PyTorch's start_dim = 1: keep the batch dim).
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local F = require "nnvis.tensor.functional"
local class = require "nnvis.tensor.class"

local nn = {}

local is_tensor, shape_str = require("nnvis.tensor.util").is_tensor, require("nnvis.tensor.util").shape_str

local no_grad = core.no_grad

-- a hyperparameter with a height and a width: n or {h, w} -> {h, w}
local function pair(fname, what, v, min)
  if type(v) == "number" then v = { v, v } end
  if type(v) ~= "table" or #v ~= 2 or math.type(v[1]) ~= "integer" or math.type(v[2]) ~= "integer"
      or v[1] < min or v[2] < min then
    error(string.format("%s: %s must be an integer >= %d or a pair {h, w} of them", fname, what, min), 3)
  end
  return { v[1], v[2] }
end

local function check_int(fname, what, v, min)
  if math.type(v) ~= "integer" or v < min then
    error(string.format("%s: %s must be an integer >= %d, got %s", fname, what, min, tostring(v)), 3)
  end
  return v
end

local function copy_value(v)
  if type(v) ~= "table" or is_tensor(v) then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy_value(x) end
  return c
end

local initializers = require "nnvis.nn.initializers"
local init, make_param = initializers.init, initializers.make_param
nn.init = init

local module = require "nnvis.nn.module"
local Module, own, register, check_name = module.Module, module._own, module._register, module._check_name
nn.Module, nn.HookHandle, nn.Hooks, nn.hooks = module.Module, module.HookHandle, module.Hooks, module.hooks

------------------------------------------------------------------------------------------------
-- Containers
------------------------------------------------------------------------------------------------

--- nn.Sequential{a, b, c} (or nn.Sequential(a, b, c)): children "0", "1", ... applied in order
local Sequential = class("Sequential", Module)
nn.Sequential = Sequential

function Sequential:init(first, ...)
  local list = first
  if first == nil or class.isinstance(first, Module) then list = { first, ... } end
  if type(list) ~= "table" then error("Sequential: expected a list of modules, got " .. type(list), 3) end
  for i = 1, #list do
    if not class.isinstance(list[i], Module) then
      error(string.format("Sequential: element %d is not a module (got %s)", i, type(list[i])), 3)
    end
    self:add(list[i])
  end
end

--- appends a module, named name or the next index ("0", "1", ...); returns the container
function Sequential:add(m, name)
  if not class.isinstance(m, Module) then error("Sequential.add: expected a module, got " .. type(m), 2) end
  name = name ~= nil and tostring(name) or tostring(#self)
  if rawget(self, "_kinds")[name] ~= nil and rawget(self, name) ~= nil then
    error("Sequential.add: a child named '" .. name .. "' exists already", 2)
  end
  check_name(self, "Sequential.add", name)
  register(self, name, "module")
  rawset(self, name, m)
  return self
end
Sequential.append = Sequential.add

function Sequential.__len(self) return #own(self, "module") end

-- seq[i]: the i-th module, 1-based, as #seq counts them (children are named "0", "1", ...)
function Sequential.__index(self, k)
  if math.type(k) == "integer" then
    local e = own(self, "module")[k]
    return e and e[2]
  end
  return getmetatable(self)[k]
end

local fusion = require "nnvis.nn.fusion"
nn.conv_bn_relu, nn.conv_bn_add_relu = fusion.conv_bn_relu, fusion.conv_bn_add_relu
local fused_conv = fusion._fused_conv

--- nn._sequential_forward(seq, x, channels_last): seq's forward; with channels_last = true a
--- fused convolution at its end may leave its output (N,H,W,C) in memory, for a model's forward
--- that hands it straight to a convolution (a ResNet block's shortcut).  Internal to nnvis.
local function sequential_forward(self, x, channels_last)
  local list = own(self, "module")
  if self.training or core.is_grad_enabled() then
    for _, e in ipairs(list) do x = e[2](x) end
    return x
  end
  local i = 1
  while i <= #list do
    local y, used = fused_conv(list, i, x, channels_last)
    if y then x, i = y, i + used
    else x, i = list[i][2](x), i + 1 end
  end
  return x
end

function Sequential:forward(x) return sequential_forward(self, x, false) end

nn._sequential_forward = sequential_forward

--- ModuleList{a, b, ...}: holds modules (registered as "0", "1", ... like PyTorch) for a
--- user module's forward to use; it has no forward of its own.  list:at(i) is 1-based,
--- #list counts, ipairs-style iteration: for i, m in list:items() do
local ModuleList = class("ModuleList", Module)
nn.ModuleList = ModuleList

function ModuleList:init(list)
  list = list or {}
  if type(list) ~= "table" then error("ModuleList: expected a list of modules, got " .. type(list), 3) end
  for i = 1, #list do
    if not class.isinstance(list[i], Module) then
      error(string.format("ModuleList: element %d is not a module (got %s)", i, type(list[i])), 3)
    end
    self:append(list[i])
  end
end
ModuleList.append = Sequential.add
ModuleList.add = Sequential.add
ModuleList.__len = Sequential.__len
ModuleList.__index = Sequential.__index

function ModuleList:at(i)
  local e = own(self, "module")[i]
  if not e then error(string.format("ModuleList: index %s is out of range 1..%d", tostring(i), #self), 2) end
  return e[2]
end

function ModuleList:items()
  local list, i = own(self, "module"), 0
  return function()
    i = i + 1
    if list[i] then return i, list[i][2] end
  end
end

function ModuleList:forward()
  error("ModuleList: a list of modules has no forward; call its modules from your module's forward", 2)
end

------------------------------------------------------------------------------------------------
-- Layers with parameters
------------------------------------------------------------------------------------------------
local function fmt_pair(p) return p[1] .. "," .. p[2] end
local function is_pair(p, v) return p[1] == v and p[2] == v end

--- Conv2d(in, out, k, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true,
--- weight_init, bias_init}); weight (out, in/groups, kh, kw)
local Conv2d = class("Conv2d", Module)
nn.Conv2d = Conv2d

function Conv2d:init(cin, cout, k, opts)
  opts = check_opts("Conv2d", opts, { "stride", "padding", "dilation", "groups", "bias", "weight_init", "bias_init" })
  self.in_channels = check_int("Conv2d", "in_channels", cin, 1)
  self.out_channels = check_int("Conv2d", "out_channels", cout, 1)
  self.kernel_size = pair("Conv2d", "kernel_size", k, 1)
  self.stride = pair("Conv2d", "stride", opts.stride or 1, 1)
  self.dilation = pair("Conv2d", "dilation", opts.dilation or 1, 1)
  local padding = opts.padding or 0
  if padding == "valid" then padding = 0
  elseif padding == "same" then   -- PyTorch's rule: stride 1 and an even total padding
    if not is_pair(self.stride, 1) then error("Conv2d: padding \"same\" needs stride 1", 2) end
    padding = {}
    for i = 1, 2 do
      local total = self.dilation[i] * (self.kernel_size[i] - 1)
      if total % 2 ~= 0 then error("Conv2d: padding \"same\" with an even kernel needs asymmetric padding", 2) end
      padding[i] = total // 2
    end
  end
  self.padding = pair("Conv2d", "padding", padding, 0)
  self.groups = check_int("Conv2d", "groups", opts.groups or 1, 1)
  if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
    error(string.format("Conv2d: in_channels %d and out_channels %d must be divisible by groups %d",
      cin, cout, self.groups), 2)
  end
  local shape = { cout, cin // self.groups, self.kernel_size[1], self.kernel_size[2] }
  local fan_in, fan_out = init.fans(shape)
  local bound = 1 / math.sqrt(fan_in)
  local winit = opts.weight_init
  if winit == nil then winit = init.uniform(-bound, bound) end   -- kaiming_uniform, a = sqrt(5)
  self:register_parameter("weight", make_param(winit, shape, fan_in, fan_out))
  if opts.bias ~= false then
    local binit = opts.bias_init
    if binit == nil then binit = init.uniform(-bound, bound) end
    self:register_parameter("bias", make_param(binit, { cout }, fan_in, fan_out))
  else
    self:register_parameter("bias", nil)
  end
end

function Conv2d:forward(x)
  return core.conv2d(x, self.weight, self.bias,
    { stride = self.stride, padding = self.padding, dilation = self.dilation, groups = self.groups })
end

function Conv2d:config()
  return { in_channels = self.in_channels, out_channels = self.out_channels,
           kernel_size = copy_value(self.kernel_size), stride = copy_value(self.stride),
           padding = copy_value(self.padding), dilation = copy_value(self.dilation),
           groups = self.groups, bias = self.bias ~= nil }
end

-- Torch7's format: Conv2d(in -> out, kh x kw[, stride][, padding]); stride shows when it or the
-- padding is not the default
function Conv2d:repr()
  local s = string.format("Conv2d(%d -> %d, %dx%d", self.in_channels, self.out_channels,
    self.kernel_size[1], self.kernel_size[2])
  if not is_pair(self.stride, 1) or not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.stride) end
  if not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.padding) end
  if not is_pair(self.dilation, 1) then s = s .. ", dilation " .. fmt_pair(self.dilation) end
  if self.groups ~= 1 then s = s .. ", groups " .. self.groups end
  s = s .. ")"
  if self.bias == nil then s = s .. " without bias" end
  return s
end

--- Linear(in, out, {bias = true, weight_init, bias_init}): y = x W^T + b, W (out, in)
local Linear = class("Linear", Module)
nn.Linear = Linear

function Linear:init(fin, fout, opts)
  opts = check_opts("Linear", opts, { "bias", "weight_init", "bias_init" })
  self.in_features = check_int("Linear", "in_features", fin, 1)
  self.out_features = check_int("Linear", "out_features", fout, 1)
  local bound = 1 / math.sqrt(fin)
  local winit = opts.weight_init
  if winit == nil then winit = init.uniform(-bound, bound) end
  self:register_parameter("weight", make_param(winit, { fout, fin }, fin, fout))
  if opts.bias ~= false then
    local binit = opts.bias_init
    if binit == nil then binit = init.uniform(-bound, bound) end
    self:register_parameter("bias", make_param(binit, { fout }, fin, fout))
  else
    self:register_parameter("bias", nil)
  end
end

function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:config()
  return { in_features = self.in_features, out_features = self.out_features, bias = self.bias ~= nil }
end
function Linear:repr()
  return string.format("Linear(%d -> %d)%s", self.in_features, self.out_features,
    self.bias == nil and " without bias" or "")
end

-- Batch normalization (Ioffe and Szegedy 2015): y = (x - mean) / sqrt(var + eps) * weight + bias,
-- per channel (dim 2).  Training: batch statistics, and the running ones move by momentum
-- (unbiased variance); eval: the running statistics.
local BatchNorm = class("_BatchNorm", Module)
nn._BatchNorm = BatchNorm

function BatchNorm:init(c, opts)
  opts = check_opts(self.kind, opts, { "eps", "momentum", "affine", "track_running_stats" })
  self.num_features = check_int(self.kind, "num_features", c, 1)
  self.eps = opts.eps or 1e-5
  -- momentum = false is PyTorch's momentum=None: a cumulative average over the batches seen
  if opts.momentum == nil then self.momentum = 0.1 else self.momentum = opts.momentum end
  self.affine = opts.affine ~= false
  self.track_running_stats = opts.track_running_stats ~= false
  if self.affine then
    self:register_parameter("weight", core.ones(c))
    self:register_parameter("bias", core.zeros(c))
  else
    self:register_parameter("weight", nil)
    self:register_parameter("bias", nil)
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", core.zeros(c))
    self:register_buffer("running_var", core.ones(c))
    self:register_buffer("num_batches_tracked", core.zeros(1))
  else
    self:register_buffer("running_mean", nil)
    self:register_buffer("running_var", nil)
    self:register_buffer("num_batches_tracked", nil)
  end
end

function BatchNorm:forward(x)
  local d = x:dim()
  local ok = false
  for _, n in ipairs(self.input_dims) do ok = ok or d == n end
  if not ok then
    error(string.format("%s: expected %s input, got %s", self.kind, self.input_desc, shape_str(x)), 0)
  end
  if x:size(2) ~= self.num_features then
    error(string.format("%s: expected %d channels, input %s has %d", self.kind, self.num_features,
      shape_str(x), x:size(2)), 0)
  end
  local batch_stats = self.training or not self.track_running_stats
  local y = core.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
    { training = batch_stats, eps = self.eps,
      momentum = self.momentum or 1 / (self.track_running_stats and self.num_batches_tracked:item() + 1 or 1) })
  if self.training and self.track_running_stats then self.num_batches_tracked:add_(1) end
  return y
end

function BatchNorm:config()
  return { num_features = self.num_features, eps = self.eps, momentum = self.momentum,
           affine = self.affine, track_running_stats = self.track_running_stats }
end

function BatchNorm:repr()
  local s = string.format("%s(%d", self.kind, self.num_features)
  if self.eps ~= 1e-5 then s = s .. string.format(", eps=%g", self.eps) end
  if self.momentum == false then s = s .. ", momentum=cumulative"
  elseif self.momentum ~= 0.1 then s = s .. string.format(", momentum=%g", self.momentum) end
  if not self.affine then s = s .. ", affine=false" end
  if not self.track_running_stats then s = s .. ", track_running_stats=false" end
  return s .. ")"
end

--- BatchNorm2d(c, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true}) on (N,C,H,W)
local BatchNorm2d = class("BatchNorm2d", BatchNorm)
nn.BatchNorm2d = BatchNorm2d
BatchNorm2d.input_dims, BatchNorm2d.input_desc = { 4 }, "a 4-d (N,C,H,W)"

--- BatchNorm1d(c, opts) on (N,C) or (N,C,L)
local BatchNorm1d = class("BatchNorm1d", BatchNorm)
nn.BatchNorm1d = BatchNorm1d
BatchNorm1d.input_dims, BatchNorm1d.input_desc = { 2, 3 }, "a 2-d (N,C) or 3-d (N,C,L)"

------------------------------------------------------------------------------------------------
-- Layers without parameters
------------------------------------------------------------------------------------------------
-- a layer whose forward is f(x, ...hyperparameters); repr(self) gives its description
local function simple(name, forward, config, repr)
  local C = class(name, Module)
  nn[name] = C
  C.forward = forward
  if config then C.config = config end
  if repr then C.repr = repr end
  return C
end

--- ReLU(): max(x, 0) elementwise
simple("ReLU", function(_, x) return x:relu() end)
--- GELU(): x * Phi(x), the erf form, elementwise
simple("GELU", function(_, x) return x:gelu() end)
--- Sigmoid(): 1 / (1 + e^-x) elementwise
simple("Sigmoid", function(_, x) return x:sigmoid() end)
--- Tanh(): the hyperbolic tangent elementwise
simple("Tanh", function(_, x) return x:tanh() end)
--- Identity(): returns its input (a placeholder layer)
simple("Identity", function(_, x) return x end)

local LeakyReLU = simple("LeakyReLU", function(self, x) return x:leaky_relu(self.negative_slope) end,
  function(self) return { negative_slope = self.negative_slope } end,
  function(self) return string.format("LeakyReLU(%g)", self.negative_slope) end)
--- LeakyReLU(negative_slope = 0.01)
function LeakyReLU:init(slope) self.negative_slope = slope or 0.01 end

local ELU = simple("ELU", function(self, x) return x:elu(self.alpha) end,
  function(self) return { alpha = self.alpha } end,
  function(self) return string.format("ELU(alpha=%g)", self.alpha) end)
--- ELU(alpha = 1)
function ELU:init(alpha) self.alpha = alpha or 1 end

local Softmax = simple("Softmax", function(self, x) return core.softmax(x, self.dim) end,
  function(self) return { dim = self.dim } end,
  function(self) return string.format("Softmax(dim=%d)", self.dim) end)
--- Softmax(dim = -1): 1-based dim, -1 the last
function Softmax:init(d) self.dim = d or -1 end

local LogSoftmax = simple("LogSoftmax", function(self, x) return core.log_softmax(x, self.dim) end,
  function(self) return { dim = self.dim } end,
  function(self) return string.format("LogSoftmax(dim=%d)", self.dim) end)
--- LogSoftmax(dim = -1): log(softmax(x)) along a 1-based dim, -1 the last
function LogSoftmax:init(d) self.dim = d or -1 end

local Dropout = simple("Dropout", function(self, x) return F.dropout(x, self.p, self.training) end,
  function(self) return { p = self.p } end,
  function(self) return string.format("Dropout(%g)", self.p) end)
--- Dropout(p = 0.5): zeroes with probability p and scales by 1/(1-p) in training; identity in eval
function Dropout:init(p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then error("Dropout: p must be in [0, 1], got " .. tostring(p), 3) end
  self.p = p
end

--- Flatten(start_dim = 2, end_dim = -1): merges dims start_dim..end_dim (1-based; the default
--- keeps the batch dim, like PyTorch's nn.Flatten() whose start_dim = 1 is 0-based)
local Flatten = simple("Flatten", nil,
  function(self) return { start_dim = self.start_dim, end_dim = self.end_dim } end,
  function(self)
    if self.end_dim == -1 then return string.format("Flatten(start_dim=%d)", self.start_dim) end
    return string.format("Flatten(start_dim=%d, end_dim=%d)", self.start_dim, self.end_dim)
  end)
function Flatten:init(start_dim, end_dim) self.start_dim, self.end_dim = start_dim or 2, end_dim or -1 end
function Flatten:forward(x)
  local s = x:shape()
  local a, b = self.start_dim, self.end_dim
  if a < 0 then a = a + #s + 1 end
  if b < 0 then b = b + #s + 1 end
  if a < 1 or b > #s or a > b then
    error(string.format("Flatten: dims %d..%d out of range for input %s", self.start_dim, self.end_dim, shape_str(x)), 0)
  end
  local ns, n = {}, 1
  for i = 1, a - 1 do ns[#ns + 1] = s[i] end
  for i = a, b do n = n * s[i] end
  ns[#ns + 1] = n
  for i = b + 1, #s do ns[#ns + 1] = s[i] end
  return x:reshape(ns)
end

local function pool_repr(self)
  local s = string.format("%s(%dx%d, %s", self.kind, self.kernel_size[1], self.kernel_size[2], fmt_pair(self.stride))
  if not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.padding) end
  if self.dilation and not is_pair(self.dilation, 1) then s = s .. ", dilation " .. fmt_pair(self.dilation) end
  if self.ceil_mode then s = s .. ", ceil_mode" end
  if self.count_include_pad == false then s = s .. ", count_include_pad=false" end
  return s .. ")"
end

local function pool_config(self)
  return { kernel_size = copy_value(self.kernel_size), stride = copy_value(self.stride),
           padding = copy_value(self.padding), dilation = copy_value(self.dilation),
           ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad }
end

--- MaxPool2d(k, {stride = k, padding = 0, dilation = 1, ceil_mode = false})
local MaxPool2d = simple("MaxPool2d", nil, pool_config, pool_repr)
function MaxPool2d:init(k, opts)
  opts = check_opts("MaxPool2d", opts, { "stride", "padding", "dilation", "ceil_mode" })
  self.kernel_size = pair("MaxPool2d", "kernel_size", k, 1)
  self.stride = pair("MaxPool2d", "stride", opts.stride or self.kernel_size, 1)
  self.padding = pair("MaxPool2d", "padding", opts.padding or 0, 0)
  self.dilation = pair("MaxPool2d", "dilation", opts.dilation or 1, 1)
  self.ceil_mode = opts.ceil_mode or false
end
function MaxPool2d:forward(x)
  return core.max_pool2d(x, self.kernel_size, { stride = self.stride, padding = self.padding,
    dilation = self.dilation, ceil_mode = self.ceil_mode })
end

--- AvgPool2d(k, {stride = k, padding = 0, ceil_mode = false, count_include_pad = true})
local AvgPool2d = simple("AvgPool2d", nil, pool_config, pool_repr)
function AvgPool2d:init(k, opts)
  opts = check_opts("AvgPool2d", opts, { "stride", "padding", "ceil_mode", "count_include_pad" })
  self.kernel_size = pair("AvgPool2d", "kernel_size", k, 1)
  self.stride = pair("AvgPool2d", "stride", opts.stride or self.kernel_size, 1)
  self.padding = pair("AvgPool2d", "padding", opts.padding or 0, 0)
  self.ceil_mode = opts.ceil_mode or false
  self.count_include_pad = opts.count_include_pad ~= false
end
function AvgPool2d:forward(x)
  return core.avg_pool2d(x, self.kernel_size, { stride = self.stride, padding = self.padding,
    ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad })
end

--- AdaptiveAvgPool2d(size): output (N, C, size[1], size[2]) whatever the input's H, W
local AdaptiveAvgPool2d = simple("AdaptiveAvgPool2d",
  function(self, x) return core.adaptive_avg_pool2d(x, self.output_size) end,
  function(self) return { output_size = copy_value(self.output_size) } end,
  function(self) return string.format("AdaptiveAvgPool2d(%dx%d)", self.output_size[1], self.output_size[2]) end)
function AdaptiveAvgPool2d:init(size) self.output_size = pair("AdaptiveAvgPool2d", "output_size", size, 1) end

nn.class = class
-- what nnvis.nn3d's layers share with these
nn._helpers = { make_param = make_param, init = init, check_int = check_int, check_opts = check_opts }
require("nnvis.nn.nn3d")(nn)
require("nnvis.nn.vit").layers(nn)
return nn

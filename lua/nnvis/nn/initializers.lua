-- nnvis.nn.initializers — how layers fill their parameters (nv.nn.init): PyTorch's schemes
-- (Kaiming, Xavier, uniform, normal, constants) as makers (shape, fan_in, fan_out) -> tensor,
-- so a layer allocates each parameter once, and their in-place `_` forms.
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local is_tensor = require("nnvis.tensor.util").is_tensor
local no_grad = core.no_grad

local M = {}

------------------------------------------------------------------------------------------------
-- Initializers: nn.init.kaiming_uniform{a = math.sqrt(5)} etc. return a function
-- (shape, fan_in, fan_out) -> new tensor, so a layer fills its parameters in one allocation;
-- the `_` forms (nn.init.normal_(t, mean, std)) overwrite an existing tensor in place.
------------------------------------------------------------------------------------------------
local init = {}
M.init = init

local function gain(nonlinearity, a)
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "leaky_relu" then a = a or 0.01; return math.sqrt(2 / (1 + a * a)) end
  if nonlinearity == "tanh" then return 5 / 3 end
  return 1   -- linear, sigmoid, conv
end
init.gain = gain

local function uniform_new(shape, lo, hi)
  local t = core.rand(shape)             -- U[0, 1)
  t:mul_(hi - lo)
  if lo ~= 0 then t:add_(lo) end
  return t
end

local function normal_new(shape, mean, std)
  local t = core.randn(shape)
  t:mul_(std)
  if mean ~= 0 then t:add_(mean) end
  return t
end

function init.uniform(lo, hi) return function(shape) return uniform_new(shape, lo, hi) end end
function init.normal(mean, std) return function(shape) return normal_new(shape, mean or 0, std or 1) end end
function init.constant(v) return function(shape) return core.full(shape, v) end end
function init.zeros() return function(shape) return core.zeros(shape) end end
function init.ones() return function(shape) return core.ones(shape) end end

--- Kaiming (He et al. 2015) uniform: U(-b, b), b = gain * sqrt(3 / fan); PyTorch's default for
--- Conv2d and Linear weights is a = sqrt(5), which gives b = 1 / sqrt(fan_in).
function init.kaiming_uniform(opts)
  opts = check_opts("init.kaiming_uniform", opts, { "a", "mode", "nonlinearity" })
  return function(shape, fan_in, fan_out)
    local fan = opts.mode == "fan_out" and fan_out or fan_in
    local b = gain(opts.nonlinearity or "leaky_relu", opts.a or 0) * math.sqrt(3 / fan)
    return uniform_new(shape, -b, b)
  end
end

--- Kaiming normal: N(0, std^2), std = gain / sqrt(fan) (torchvision's conv init: fan_out, relu)
function init.kaiming_normal(opts)
  opts = check_opts("init.kaiming_normal", opts, { "a", "mode", "nonlinearity" })
  return function(shape, fan_in, fan_out)
    local fan = opts.mode == "fan_out" and fan_out or fan_in
    return normal_new(shape, 0, gain(opts.nonlinearity or "leaky_relu", opts.a or 0) / math.sqrt(fan))
  end
end

--- Glorot and Bengio 2010: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
function init.xavier_uniform(opts)
  opts = check_opts("init.xavier_uniform", opts, { "gain" })
  return function(shape, fan_in, fan_out)
    local b = (opts.gain or 1) * math.sqrt(6 / (fan_in + fan_out))
    return uniform_new(shape, -b, b)
  end
end

-- in-place forms for parameters that exist already
local function overwrite(t, maker)
  local fan_in, fan_out = init.fans(t)
  no_grad(function() t:copy(maker(t:shape(), fan_in, fan_out)) end)
  return t
end
function init.uniform_(t, lo, hi) return overwrite(t, init.uniform(lo or 0, hi or 1)) end
function init.normal_(t, mean, std) return overwrite(t, init.normal(mean or 0, std or 1)) end
function init.constant_(t, v) no_grad(function() t:fill(v) end); return t end
function init.zeros_(t) return init.constant_(t, 0) end
function init.ones_(t) return init.constant_(t, 1) end
function init.kaiming_uniform_(t, opts) return overwrite(t, init.kaiming_uniform(opts)) end
function init.kaiming_normal_(t, opts) return overwrite(t, init.kaiming_normal(opts)) end
function init.xavier_uniform_(t, opts) return overwrite(t, init.xavier_uniform(opts)) end

--- fan_in, fan_out of a weight (out, in, k...) as PyTorch computes them
function init.fans(t)
  local s = is_tensor(t) and t:shape() or t
  if #s < 2 then return s[1] or 1, s[1] or 1 end
  local rf = 1
  for i = 3, #s do rf = rf * s[i] end
  return s[2] * rf, s[1] * rf
end

-- a new parameter: maker(shape, fan_in, fan_out), or zeros when maker is false
local function make_param(maker, shape, fan_in, fan_out)
  local t = maker and maker(shape, fan_in, fan_out) or core.zeros(shape)
  return t:set_requires_grad(true)
end

M.make_param = make_param
return M

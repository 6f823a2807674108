-- nnvis.nn.optim — SGD (momentum, Nesterov, weight decay), Adam, AdamW, and the step and
-- cosine learning-rate schedules.  Updates are tensor ops run under no_grad; the formulas
-- are PyTorch's (torch.optim), written next to the code.
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts

local M = {}

local function param_list(fname, params)
  if type(params) == "table" and params.parameters and type(params.parameters) == "function" then
    params = params:parameters()
  end
  if type(params) ~= "table" or #params == 0 then
    error(fname .. ": expected a non-empty list of parameter tensors (or a module)", 3)
  end
  for i, p in ipairs(params) do
    if getmetatable(p) ~= core.tensor_mt then error(string.format("%s: parameter %d is not a tensor", fname, i), 3) end
  end
  return params
end

local no_grad = core.no_grad

local Optimizer = {}
Optimizer.__index = Optimizer

function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p.grad = nil end
end

local function new(cls, fname, params, opts, defaults)
  local self = setmetatable({ params = param_list(fname, params), state = {}, steps = 0 }, cls)
  opts = check_opts(fname, opts, require("nnvis.tensor.util").keys(defaults))
  for k, v in pairs(defaults) do self[k] = opts[k] == nil and v or opts[k] end
  if type(self.lr) ~= "number" or self.lr < 0 then error(fname .. ": lr must be a non-negative number", 3) end
  self.name = fname
  self.initial_lr = self.lr
  return self
end

--- SGD: g = grad + wd p;  buf = mu buf + (1 - dampening) g  (buf = g at the first step);
--- g = g + mu buf (Nesterov) or buf;  p = p - lr g.
-- Adam(lr=0.001, betas={0.9, 0.999}, eps=1e-08, weight_decay=0; 6 tensors, 1,234 values; 10 steps)
function Optimizer.__tostring(self)
  local keys, parts = {}, {}
  for k, v in pairs(self) do
    if k ~= "initial_lr" and k ~= "steps" and (type(v) == "number" or type(v) == "boolean" or
      (type(v) == "table" and type(v[1]) == "number")) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) if a == "lr" or b == "lr" then return a == "lr" end return a < b end)
  for _, k in ipairs(keys) do
    local v = self[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "table" and ("{" .. table.concat(v, ", ") .. "}") or tostring(v))
  end
  local n = 0
  for _, p in ipairs(self.params) do n = n + p:numel() end
  return string.format("%s(%s; %d tensors, %d values; %d steps)", self.name or "Optimizer", table.concat(parts, ", "),
    #self.params, n, self.steps)
end

local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD
SGD.__tostring = Optimizer.__tostring
--- SGD(params, {lr, momentum, dampening, nesterov, weight_decay}) as torch.optim.SGD
function M.SGD(params, opts)
  local self = new(SGD, "SGD", params, opts, { lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false })
  if self.nesterov and (self.momentum <= 0 or self.dampening ~= 0) then
    error("SGD: nesterov needs momentum > 0 and dampening = 0", 2)
  end
  return self
end

function SGD:step()
  self.steps = self.steps + 1
  no_grad(function()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
        if self.momentum ~= 0 then
          local buf = self.state[i]
          if not buf then
            buf = g:clone()
            self.state[i] = buf
          else
            buf:mul_(self.momentum):add_(g, 1 - self.dampening)
          end
          if self.nesterov then g = g + buf * self.momentum else g = buf end
        end
        p:add_(g, -self.lr)
      end
    end
  end)
end

--- Adam: g = grad + wd p (L2);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
--- p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).   (Kingma & Ba 2015, Alg. 1)
--- AdamW decouples the decay: p = p (1 - lr wd) first, then the Adam step without it.
---                                                               (Loshchilov & Hutter 2019)
local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam
Adam.__tostring = Optimizer.__tostring
local function adam(params, opts, decoupled, fname)
  local self = new(Adam, fname, params, opts,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = decoupled and 1e-2 or 0 })
  self.decoupled = decoupled
  return self
end
--- Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}) as torch.optim.Adam
function M.Adam(params, opts) return adam(params, opts, false, "Adam") end
--- AdamW(params, {lr, betas, eps, weight_decay = 1e-2}): Adam with decoupled weight decay
function M.AdamW(params, opts) return adam(params, opts, true, "AdamW") end

function Adam:step()
  self.steps = self.steps + 1
  local t, b1, b2 = self.steps, self.betas[1], self.betas[2]
  local c1, c2 = 1 - b1 ^ t, 1 - b2 ^ t
  no_grad(function()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        if self.weight_decay ~= 0 then
          if self.decoupled then p:mul_(1 - self.lr * self.weight_decay)
          else g = g + p * self.weight_decay end
        end
        local st = self.state[i]
        if not st then
          st = { m = core.zeros(p:shape()), v = core.zeros(p:shape()) }
          self.state[i] = st
        end
        st.m:mul_(b1):add_(g, 1 - b1)
        st.v:mul_(b2):add_(g:square(), 1 - b2)
        local denom = (st.v / c2):sqrt() + self.eps
        p:add_(st.m / denom, -self.lr / c1)
      end
    end
  end)
end

-- ---- learning-rate schedules ------------------------------------------------------------
--- StepLR: lr = lr0 * gamma ^ floor(epoch / step_size)
function M.StepLR(opt, opts)
  opts = check_opts("StepLR", opts, { "step_size", "gamma" })
  assert(opts.step_size and opts.step_size > 0, "StepLR: step_size must be positive")
  local s = { optimizer = opt, epoch = 0, step_size = opts.step_size, gamma = opts.gamma or 0.1 }
  function s:get_lr() return self.optimizer.initial_lr * self.gamma ^ (self.epoch // self.step_size) end
  function s:step()
    self.epoch = self.epoch + 1
    self.optimizer.lr = self:get_lr()
    return self.optimizer.lr
  end
  return s
end

--- CosineAnnealingLR: lr = eta_min + (lr0 - eta_min) (1 + cos(pi t / T_max)) / 2
--- (Loshchilov & Hutter 2017, SGDR, without restarts); optional linear warmup steps.
function M.CosineAnnealingLR(opt, opts)
  opts = check_opts("CosineAnnealingLR", opts, { "T_max", "eta_min", "warmup" })
  assert(opts.T_max and opts.T_max > 0, "CosineAnnealingLR: T_max must be positive")
  local s = { optimizer = opt, epoch = 0, T_max = opts.T_max, eta_min = opts.eta_min or 0, warmup = opts.warmup or 0 }
  function s:get_lr()
    local lr0, t = self.optimizer.initial_lr, self.epoch
    if t < self.warmup then return lr0 * (t + 1) / self.warmup end
    t = math.min(t - self.warmup, self.T_max)
    return self.eta_min + (lr0 - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
  end
  function s:step()
    self.epoch = self.epoch + 1
    self.optimizer.lr = self:get_lr()
    return self.optimizer.lr
  end
  if s.warmup > 0 then opt.lr = s:get_lr() end
  return s
end

return M

-- nnvis.tensor.functional — the functional ops of API.md that are compositions of core ops:
-- linear, dropout, the losses, flatten.  Their gradients come from the ops they use.
-- (conv2d, pooling, batch_norm, softmax, interpolate and pad are C ops in nnvis.core.)
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts

local F = {}

local shape_str = require("nnvis.tensor.util").shape_str

local function check_tensor(fname, t, what)
  if getmetatable(t) ~= core.tensor_mt then
    error(string.format("%s: %s must be a tensor, got %s", fname, what, type(t)), 3)
  end
end

--- y = x w^T + b, w (out, in), x (..., in)
function F.linear(x, w, b)
  check_tensor("linear", x, "input")
  check_tensor("linear", w, "weight")
  if w:dim() ~= 2 then error("linear: weight must be (out, in), got " .. shape_str(w), 2) end
  if x:dim() < 1 or x:size(-1) ~= w:size(2) then
    error(string.format("linear: input %s has %s features, weight %s expects %d",
      shape_str(x), x:dim() > 0 and tostring(x:size(-1)) or "no", shape_str(w), w:size(2)), 2)
  end
  if b and (b:dim() ~= 1 or b:size(1) ~= w:size(1)) then
    error(string.format("linear: bias %s does not match weight %s", shape_str(b), shape_str(w)), 2)
  end
  -- (..., in) tokens as one (rows, in) gemm rather than a batch of small ones
  local lead
  if x:dim() > 2 then
    lead = x:shape()
    lead[#lead] = w:size(1)
    x = x:reshape(-1, w:size(2))
  end
  local y = core.matmul(x, w:t())
  if b then y = y + b end
  if lead then y = y:reshape(lead) end
  return y
end

--- inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p)
function F.dropout(x, p, training)
  p = p or 0.5
  if p < 0 or p > 1 then error("dropout: p must be in [0, 1], got " .. tostring(p), 2) end
  if training == false or p == 0 then return x end
  if p == 1 then return x * 0 end
  local keep = core.rand(x:shape()):ge(p)   -- 1 with probability 1 - p
  return x * (keep * (1 / (1 - p)))
end

-- targets as a tensor of 1-based class ids: accepts a Lua list too
local function class_ids(fname, targets, n, c)
  if type(targets) == "table" and getmetatable(targets) == nil then targets = core.tensor(targets) end
  check_tensor(fname, targets, "targets")
  if targets:dim() ~= 1 or targets:size(1) ~= n then
    error(string.format("%s: targets %s must be (%d), one class id per sample", fname, shape_str(targets), n), 3)
  end
  local lo, hi = targets:min():item(), targets:max():item()
  local frac = (targets - targets:floor()):abs():max():item()
  if frac ~= 0 then
    local bad
    for i, v in ipairs(targets:contiguous():values()) do if v ~= math.floor(v) then bad = { i, v } break end end
    require("nnvis.tensor.util").raise(string.format("%s: class ids must be whole numbers (1..%d), got %g at position %d " ..
      "(labels are 1-based class ids, not probabilities or one-hot rows)", fname, c, bad[2], bad[1]))
  end
  if lo < 1 or hi > c then
    require("nnvis.tensor.util").raise(string.format("%s: class ids must be in 1..%d, got values from %g to %g%s", fname, c,
      lo, hi, lo == 0 and hi <= c - 1 and " (0-based? add 1: nnvis's class ids are 1-based)" or ""))
  end
  return targets
end

--- negative log-likelihood of log-probabilities (N, C) at 1-based targets, mean reduction;
--- opts.weight: per-class weights (C); the mean is then weighted (PyTorch's rule).
local function nll(fname, logp, targets, weight)
  local n, c = logp:size(1), logp:size(2)
  targets = class_ids(fname, targets, n, c)
  local picked = logp:gather(2, targets:view(n, 1)):view(n)
  if weight then
    local w = weight:index_select(1, targets)
    return -(picked * w):sum() / w:sum(), targets
  end
  return -picked:mean(), targets
end

--- nll_loss(logp, targets [, {weight}]): mean negative log-likelihood of 1-based class ids
function F.nll_loss(logp, targets, opts)
  opts = check_opts("nll_loss", opts, { "weight" })
  check_tensor("nll_loss", logp, "input")
  if logp:dim() ~= 2 then error("nll_loss: input must be (N, C), got " .. shape_str(logp), 2) end
  return (nll("nll_loss", logp, targets, opts.weight))
end

--- cross entropy of logits (N, C) against 1-based class ids (N), mean over the batch.
--- opts.label_smoothing (eps): target (1-eps) on the class plus eps/C everywhere;
--- opts.weight: per-class weights.  Same formula as PyTorch's F.cross_entropy.
function F.cross_entropy(logits, targets, opts)
  opts = check_opts("cross_entropy", opts, { "label_smoothing", "weight" })
  check_tensor("cross_entropy", logits, "logits")
  if logits:dim() ~= 2 then error("cross_entropy: logits must be (N, C), got " .. shape_str(logits), 2) end
  local logp = core.log_softmax(logits, 2)
  local eps = opts.label_smoothing or 0
  if eps < 0 or eps > 1 then error("cross_entropy: label_smoothing must be in [0, 1]", 2) end
  local nllv
  nllv, targets = nll("cross_entropy", logp, targets, opts.weight)
  if eps == 0 then return nllv end
  local n, c = logits:size(1), logits:size(2)
  -- smooth term: -sum_c w_c logp[i,c], summed over i, divided like the nll mean
  local s = opts.weight and (logp * opts.weight) or logp
  local denom
  if opts.weight then
    denom = opts.weight:index_select(1, targets):sum()
  else
    denom = n
  end
  local smooth = -s:sum() / denom
  return nllv * (1 - eps) + smooth * (eps / c)
end

--- mean squared error
function F.mse_loss(a, b)
  check_tensor("mse_loss", a, "input")
  check_tensor("mse_loss", b, "target")
  local ok = pcall(function() return a - b end)
  if not ok or #a:shape() ~= #b:shape() then
    error(string.format("mse_loss: input %s and target %s differ in shape", shape_str(a), shape_str(b)), 2)
  end
  return (a - b):square():mean()
end

--- flatten dims start_d.. into one (default 2 for a batch: (N, ...) -> (N, -1)), like torch.flatten's
--- start_dim (1-based here; nv.flatten(x) with no start flattens everything as torch does)
function F.flatten(x, start_d)
  return x:flatten(start_d or 1)
end

for _, name in ipairs { "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "layer_norm",
                        "softmax", "log_softmax", "interpolate", "pad" } do
  F[name] = core[name]
end

return F

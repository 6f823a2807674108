-- nnvis.explain.lrp — Layer-wise Relevance Propagation (Bach et al. 2015), with the rules and the
-- composites of Montavon et al. ("Layer-wise relevance propagation: an overview", 2019) as
-- zennit names them.
--
-- The relevance R of the target's score is passed from the output to the input layer by
-- layer.  For an affine layer z = W a + b (Linear, Conv2d, ONNX Conv/Gemm/MatMul) the rules
-- are, with s = R_out / z':
--   epsilon      R_in = a * W^T (R_out / (z + eps sign z))
--   gamma        R_in = a * W_g^T (R_out / z_g),  W_g = W + gamma W+,  z_g = W_g a + b_g
--   alpha_beta   R_in = a * (alpha W+^T (R_out / z+) - beta W-^T (R_out / z-)), alpha - beta = 1
--   zbox (z^B)   R_in = a W^T s - l W+^T s - h W-^T s,  z' = W a - W+ l - W- h  (inputs in [l, h])
-- ReLU, max-pooling, average pooling, reshapes and residual additions pass relevance as
-- their gradient does (the sum splits it in proportion to the summands); a BatchNorm right
-- after a convolution is merged into it (W' = W s, b' = b s + t) for the relevance pass and
-- then passes relevance through unchanged.
--
-- Implementation: each rule is a forward hook that keeps the layer's output value but
-- routes the gradient through the rule's modified layer: y = g(a) * stop(q) + stop(z - g q)
-- with q = z / stabilized(g), so that the gradient c = R / a carried between layers obeys
-- the rule.  One forward and one backward run the whole propagation, on any model whose
-- layers are modules (native or imported), with relevance R_in = x * dS/dx at the input.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local util = require "nnvis.tensor.util"
local targets = require "nnvis.inspect.targets"

local M = {}

local function sg(t) return t:detach() end

-- eps * sign(t), sign(0) = +1, so the denominator never vanishes
local function stabilize(t, eps)
  return t + (t:ge(0) * 2 - 1) * eps
end

-- the affine layer of module m: apply(a, W, b) -> z, and its weight and bias; nil otherwise
local function affine_of(m)
  local kind = m.kind
  if kind == "Conv2d" then
    local o = { stride = m.stride, padding = m.padding, dilation = m.dilation, groups = m.groups }
    return function(a, w, b) return core.conv2d(a, w, b, o) end, m.weight, m.bias
  elseif kind == "Linear" then
    local F = require "nnvis.tensor.functional"
    return function(a, w, b) return F.linear(a, w, b) end, m.weight, m.bias
  elseif kind == "Conv" or kind == "Gemm" or (kind == "MatMul" and m.weight) then
    local node, impl = rawget(m, "node"), rawget(m, "impl")
    if not node or not impl then return nil end
    return function(a, w, b) return impl(node, { a, w, b })[1] end, m.weight, m.bias
  end
  return nil
end

-- a module's output with its first tensor replaced (modules may return a list)
local function with_first(out, y)
  if util.is_tensor(out) then return y end
  local t = {}
  for k, v in pairs(out) do t[k] = v end
  t[1] = y
  return t
end

local function is_bn(m)
  return m.kind == "BatchNorm2d" or m.kind == "BatchNorm1d" or m.kind == "BatchNormalization"
end

-- a BatchNorm in eval mode as y = s x + t per channel: s, t (C)
local function bn_affine(m)
  local eps = m.eps or (rawget(m, "node") and rawget(m, "node").attrs.epsilon) or 1e-5
  local s = m.weight and (m.weight:detach() / (m.running_var + eps):sqrt()) or (m.running_var + eps):rsqrt()
  local t = (m.bias and m.bias:detach() or core.zeros(s:shape())) - m.running_mean * s
  return s, t
end

-- the default composites: the rule for the input layer, convolutions and dense layers
M.composites = {
  epsilon_gamma_box = { input = "zbox", conv = "gamma", dense = "epsilon" },
  epsilon_plus = { input = "zbox", conv = "alpha_beta", dense = "epsilon" },
  epsilon_alpha2_beta1 = { input = "zbox", conv = "alpha_beta", dense = "epsilon", alpha = 2, beta = 1 },
  epsilon = { input = "epsilon", conv = "epsilon", dense = "epsilon" },
}

local function is_conv(m) return m.kind == "Conv2d" or m.kind == "Conv" end

local leaves = util.leaves

--- nv.cam.lrp(model, x [, opts]) -> (N,H,W) map in [0,1] (the positive relevance summed over
--- channels, min-max normalized per sample) and the raw relevance (N,C,H,W) of each input
--- element, which sums to the target's score for bias-free models.  opts: target (as every
--- method); composite ("epsilon_gamma_box": z^B at the input layer, gamma in convolutions,
--- epsilon in dense layers; "epsilon_plus" (alpha 1 beta 0 in convolutions),
--- "epsilon_alpha2_beta1", "epsilon"); epsilon (1e-6), gamma (0.25), alpha / beta (1 / 0);
--- low / high (the input's bounds for z^B, numbers or tensors; default the batch's min and
--- max); rules (layer name -> "epsilon" | "gamma" | "alpha_beta" | "zbox" | "pass", overriding
--- the composite); merge_bn (true).
function M.lrp(model, x, opts)
  local c = M.composites[opts.composite or "epsilon_gamma_box"]
  if not c then
    error(string.format("lrp: unknown composite '%s' (epsilon_gamma_box, epsilon_plus, epsilon_alpha2_beta1, epsilon)",
      tostring(opts.composite)), 3)
  end
  local eps = opts.epsilon or 1e-6
  local gamma = opts.gamma or 0.25
  local alpha = opts.alpha or c.alpha or 1
  local beta = opts.beta or c.beta or 0
  if math.abs(alpha - beta - 1) > 1e-9 then error(string.format("lrp: alpha - beta must be 1, got %g - %g", alpha, beta), 3) end
  local rules = opts.rules or {}
  local xin = x:detach():clone():set_requires_grad(true)
  local lo = opts.low or x:min():item()
  local hi = opts.high or x:max():item()
  local L = (util.is_tensor(lo) and lo:detach():clone() or core.full(x:shape(), lo)):expand(table.unpack(x:shape())):contiguous()
  local Hh = (util.is_tensor(hi) and hi:detach():clone() or core.full(x:shape(), hi)):expand(table.unpack(x:shape())):contiguous()
  L:set_requires_grad(true)
  Hh:set_requires_grad(true)

  local list = leaves(model)
  local merged = {}            -- conv module -> the BN after it
  local after_bn = {}          -- BN modules merged into their conv
  if opts.merge_bn ~= false then
    for i = 1, #list - 1 do
      local a, b = list[i].module, list[i + 1].module
      if is_conv(a) and is_bn(b) and a.weight and a.weight:size(1) == b.running_mean:numel() then
        merged[a], after_bn[b] = b, true
      end
    end
  end

  local handles = hooks()
  local used_zbox = false
  local seen_first = false
  local function rule_hook(name, m)
    local apply, W, B = affine_of(m)
    return function(_, a, out)
      local z = util.is_tensor(out) and out or (type(out) == "table" and out[1])
      if not util.is_tensor(a) or not util.is_tensor(z) then return nil end
      local rule = rules[name]
      -- the first affine layer to run reads the input (perhaps reshaped): z^B's bounds apply
      local reads_input = not seen_first and a:numel() == xin:numel()
      seen_first = true
      if not rule then
        if reads_input then rule = c.input
        elseif is_conv(m) then rule = c.conv
        else rule = c.dense end
      end
      if rule == "pass" then return nil end
      local w, b = W:detach(), B and B:detach() or nil
      local zeff = z
      local bn = merged[m]
      if bn then
        -- the BN merged in: W' = W s, b' = b s + t (per output channel)
        local s, t = bn_affine(bn)
        local shape = { s:numel() }
        for _ = 2, w:dim() do shape[#shape + 1] = 1 end
        w = w * s:view(table.unpack(shape))
        b = (b and b * s or core.zeros(s:shape())) + t
        zeff = apply(a, w, b)
      end
      local function route(g, den)
        local q = sg(z / stabilize(den, eps))
        return g * q
      end
      local expr
      if rule == "epsilon" then
        expr = route(apply(a, w, b), sg(zeff))
      elseif rule == "gamma" then
        local g = apply(a, w + w:relu() * gamma, b and (b + b:relu() * gamma) or nil)
        expr = route(g, sg(g))
      elseif rule == "alpha_beta" then
        local ap = a:relu()
        local zp = apply(ap, w:relu(), b and b:relu() or nil)
        expr = route(zp, sg(zp)) * alpha
        if beta ~= 0 then
          local zn = apply(ap, -(-w):relu(), b and -(-b):relu() or nil)
          expr = expr - route(zn, sg(zn)) * beta
        end
      elseif rule == "zbox" then
        if not reads_input then
          error(string.format("lrp: the zbox rule is for the first layer, which reads the input; '%s' is not", name), 0)
        end
        used_zbox = true
        local l, h = L:reshape(a:shape()), Hh:reshape(a:shape())
        local g = apply(a, w, b) - apply(l, w:relu(), nil) - apply(h, -(-w):relu(), nil)
        expr = route(g, sg(g))
      else
        error(string.format("lrp: unknown rule '%s' for layer '%s' (epsilon, gamma, alpha_beta, zbox, pass)", tostring(rule), name), 0)
      end
      return with_first(out, expr + sg(z - expr))
    end
  end
  -- a merged BN: value unchanged, relevance passed through (R_in = R_out)
  local function bn_hook(_, a, out)
    local y = util.is_tensor(out) and out or (type(out) == "table" and out[1])
    if not util.is_tensor(a) or not util.is_tensor(y) then return nil end
    local q = sg(y / stabilize(sg(a), eps))
    local expr = a * q
    return with_first(out, expr + sg(y - expr))
  end
  local ok, err = pcall(function()
    for _, e in ipairs(list) do
      if affine_of(e.module) then handles:add(e.module, rule_hook(e.name, e.module))
      elseif after_bn[e.module] then handles:add(e.module, bn_hook) end
    end
  end)
  local function close() handles:remove() end
  if not ok then close(); error(err, 0) end
  local ok2, res = pcall(function()
    local out = model(xin)
    local scores = targets.scores(out, opts.target, "lrp")
    local wrt = used_zbox and { xin, L, Hh } or { xin }
    local g = core.grad(scores:sum(), wrt)
    local R = xin:detach() * g[1]
    if used_zbox then R = R + L:detach() * g[2] + Hh:detach() * g[3] end
    return { R = R, scores = scores:detach() }
  end)
  close()
  if not ok2 then error("lrp: " .. tostring(res), 0) end
  return res.R, res.scores
end

return M

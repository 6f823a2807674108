--- nnvis.attention — what a vision transformer attends to: the attention weights of its
-- layers as maps over the image (nv.cam.attention), and attention rollout (Abnar & Zuidema
-- 2020, nv.cam.rollout), which follows the attention through the layers with the residual
-- connections counted, and gradient-weighted relevance (Chefer, Gur & Wolf 2021,
-- nv.cam.relevance), which weights each layer's attention by the target's gradient.
--
--   local maps = nv.cam.attention(vit, x)                 -- the last attention layer, heads' mean
--   local roll = nv.cam.rollout(vit, x, {head_fusion = "max", discard_ratio = 0.9})
--
-- An attention layer is a module whose output is (N, heads, T, T) or (N, T, T) weights that
-- sum to 1 over the keys (the last dim): an nn.Softmax, or the Softmax node of an imported
-- ViT.  T = skip + h*w tokens; the map of a query token (default the class token, 1) is its
-- row over the h*w patch tokens, resized to the input.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local util = require "nnvis.tensor.util"

local M = {}

local function square(n)
  local g = math.floor(math.sqrt(n) + 0.5)
  if n > 0 and g * g == n then return g end
end

-- the attention layers of model on x, in the order they ran: {name, weights (N,H,T,T)}.
-- With score (a function of the model's output giving one score per sample), the weights
-- stay in the graph and each entry also gets grad: d(sum of scores)/d(weights)
local function attention_layers(model, x, names, fname, score)
  local list = {}
  local handles <close> = hooks()
  local wanted = {}
  for _, n in ipairs(names or {}) do wanted[util.find_layer(fname, model, n)] = n end
  for name, m in model:named_modules() do
    if name ~= "" and (names == nil and (m.kind == "Softmax") or wanted[m]) then
      handles:add(m, function(_, _, out)
        if util.is_tensor(out) and (out:dim() == 4 or out:dim() == 3) and out:size(-1) == out:size(-2) then
          local w = score and out or out:detach()
          if w:dim() == 3 then w = w:unsqueeze(2) end
          list[#list + 1] = { name = wanted[m] or name, weights = w }
        end
      end)
    end
  end
  local ok, err = pcall(util.with_mode, model, false, function()
    if not score then return core.no_grad(model, x) end
    local out = model(x:detach():set_requires_grad(true))      -- every layer's weights in the graph
    local ws = {}
    for i, e in ipairs(list) do ws[i] = e.weights end
    if #ws == 0 then return end
    local g = core.grad(score(out):sum(), ws)
    for i, e in ipairs(list) do e.weights, e.grad = e.weights:detach(), g[i] end
  end)
  handles:remove()
  if not ok then util.raise(fname .. ": the forward pass failed: " .. tostring(err)) end
  if #list == 0 then
    util.raise(fname .. ": no attention layer ran (a Softmax module whose output is (N, heads, T, T)); name one " ..
      "with opts.layer")
  end
  return list
end

-- the (N,h,w) maps of query row q over the patch tokens of (N,T,T) weights, skip tokens first
local function rows_as_maps(R, q, skip, x, fname)
  local N, T = R:size(1), R:size(2)
  skip = skip or (square(T - 1) and 1 or 0)
  local g = square(T - skip)
  if not g then util.raise(string.format("%s: %d tokens less %d do not form a square grid: pass opts.skip", fname, T, skip)) end
  local rows = R:select(2, q):narrow(2, skip + 1, g * g):reshape(N, g, g)
  local maps = core.interpolate(rows:unsqueeze(2), { size = { x:size(3), x:size(4) }, mode = "bilinear" }):squeeze(2)
  return maps, rows
end

local function fuse(W, how, fname)
  if how == "mean" or how == nil then return W:mean(2) end
  if how == "max" then return (W:max(2)) end
  if how == "min" then return (W:min(2)) end
  util.raise(fname .. ": head_fusion must be \"mean\", \"max\" or \"min\", got " .. tostring(how))
end

local function normalize(maps)
  local n = maps:size(1)
  local flat = maps:reshape(n, -1)
  local lo, hi = flat:min(2, true), flat:max(2, true)
  return ((flat - lo) / (hi - lo + 1e-7)):reshape(maps:shape())
end

--- nv.cam.attention(model, x [, opts]) -> (N,H,W) maps in [0,1], the raw (N,h,w) rows, and
--- the attention weights (N, heads, T, T): where query token opts.query (1, the class token)
--- looks in attention layer opts.layer (default the last one that ran), heads fused by
--- opts.head ("mean", "max", "min", or a head's number); opts.skip: tokens before the patch grid.
function M.attention(model, x, opts)
  opts = util.check_opts("attention", opts, { "layer", "head", "query", "skip" })
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local list = attention_layers(model, x, opts.layer and { opts.layer } or nil, "attention")
  local W = list[#list].weights
  local A
  if math.type(opts.head) == "integer" then
    if opts.head < 1 or opts.head > W:size(2) then
      util.raise(string.format("attention: head %d is not one of the layer's %d", opts.head, W:size(2)))
    end
    A = W:select(2, opts.head)
  else
    A = fuse(W, opts.head, "attention")
  end
  local maps, rows = rows_as_maps(A, opts.query or 1, opts.skip, x, "attention")
  return normalize(maps), rows, W
end

--- nv.cam.rollout(model, x [, opts]) -> (N,H,W) maps in [0,1] and the raw (N,h,w) rows:
--- attention rollout (Abnar & Zuidema 2020, Eq. 1 with A = 0.5 W + 0.5 I): each attention
--- layer's heads fused (opts.head_fusion "mean" | "max" | "min"), its smallest weights
--- dropped (opts.discard_ratio, 0: none; the class token's own kept), the identity added for
--- the residual path, rows renormalized, and the layers multiplied in order; the class
--- token's row (opts.query, 1) over the patch tokens is the map.  opts.layers: the attention
--- layers by name (default every Softmax module that outputs attention weights).
function M.rollout(model, x, opts)
  opts = util.check_opts("rollout", opts, { "head_fusion", "discard_ratio", "layers", "query", "skip" })
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local list = attention_layers(model, x, opts.layers, "rollout")
  local ws = {}
  for i, e in ipairs(list) do ws[i] = e.weights end
  local R = M.rollout_of(ws, opts)
  local maps, rows = rows_as_maps(R, opts.query or 1, opts.skip, x, "rollout")
  return normalize(maps), rows
end

--- nv.cam.relevance(model, x [, opts]) -> (N,H,W) maps in [0,1] and the raw (N,h,w) rows:
--- gradient-weighted attention relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model
--- Explainability", Eq. 5-6): each attention layer's weights A weighted by the gradient of
--- the target's score, A_bar = mean over heads of ReLU(dy/dA * A), accumulated from R = I as
--- R <- R + A_bar R, first layer first; the class token's row (opts.query, 1) over the patch
--- tokens is the map.  Class-specific, unlike rollout.  opts.target (a class id, one per
--- sample, or a function of the output; default the top class), opts.layers, opts.skip.
function M.relevance(model, x, opts)
  opts = util.check_opts("relevance", opts, { "target", "layers", "query", "skip" })
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local targets = require "nnvis.inspect.targets"
  local list = attention_layers(model, x, opts.layers, "relevance", function(out)
    return (targets.scores(out, opts.target, "relevance"))
  end)
  local R
  for _, e in ipairs(list) do
    local Abar = (e.grad * e.weights):relu():mean(2)                   -- (N,T,T), Eq. 5
    local N, T = Abar:size(1), Abar:size(2)
    R = R or core.eye(T):unsqueeze(1):expand(N, T, T):contiguous()
    R = R + core.matmul(Abar, R)                                       -- Eq. 6
  end
  local maps, rows = rows_as_maps(R, opts.query or 1, opts.skip, x, "relevance")
  return normalize(maps), rows
end

--- nv.cam.rollout_of(weights [, opts]) -> the (N,T,T) rollout of a list of attention weights
--- (N, heads, T, T), first layer first: opts.head_fusion and opts.discard_ratio as rollout's
function M.rollout_of(weights, opts)
  opts = opts or {}
  local ratio = opts.discard_ratio or 0
  if type(ratio) ~= "number" or ratio < 0 or ratio >= 1 then
    util.raise("rollout: discard_ratio must be in [0, 1), got " .. tostring(ratio))
  end
  local R
  for _, W in ipairs(weights) do
    local A = fuse(W, opts.head_fusion, "rollout")                     -- (N,T,T)
    local N, T = A:size(1), A:size(2)
    if ratio > 0 then
      -- the smallest weights of each sample dropped, never the class token's own (0,0)
      local flat = A:reshape(N, T * T)
      local k = math.floor(T * T * ratio)
      if k > 0 then
        -- each sample's k-th smallest weight is its threshold; the class token's own stays
        local low = flat:topk(k, 2, false)
        local keep = flat:gt(low:narrow(2, k, 1))
        keep:narrow(2, 1, 1):fill(1)
        A = (flat * keep):reshape(N, T, T)
      end
    end
    local I = core.eye(T):unsqueeze(1):expand(N, T, T)
    A = (A + I) * 0.5
    A = A / A:sum(3, true)
    R = R and core.matmul(A, R) or A
  end
  return R
end

return M

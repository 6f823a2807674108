-- nnvis.explain.metrics — how good an explanation is: the deletion and insertion curves
-- (Petsiuk et al. 2018) and the confidence kept in the highlighted region (Chattopadhyay et al.
-- 2018), all built on the pixels' ranks under a map.  The ROAD benchmark (nnvis.explain.perturb)
-- ranks pixels the same way.  Reached as nv.cam.deletion, nv.cam.insertion,
-- nv.cam.confidence_change and nv.cam.ranks.
local core = require "nnvis.core"
local targets = require "nnvis.inspect.targets"
local util = require "nnvis.tensor.util"

local M = {}

local EPS = 1e-7
local as_batch = util.image_batch
local no_grad = core.no_grad
local function with_eval(model, f) return util.with_mode(model, false, f) end
-- class-id targets for the helpers that need ids (a function target gives none)
local function class_target(t) if type(t) == "function" then return nil end return t end

-- the options each metric knows (checked on entry: a misspelled key raises)
M.known_options = {
  deletion = { "target", "steps", "baseline", "batch_size" },
  insertion = { "target", "steps", "baseline", "batch_size" },
  confidence_change = { "target", "keep" },
}

-- class probabilities (softmax; sigmoid of a single output) of the target for a batch, or the
-- target function's score
local function probs(model, xs, target, ids_i)
  local o = no_grad(model, xs)
  if type(target) == "function" then return no_grad(target, o):values() end
  return util.probs(util.first_tensor(o):reshape(xs:size(1), -1)):select(2, ids_i):values()
end

--- 0-based rank of every pixel of an (H,W) map, highest first (ties by position): the
--- inverse of the stable descending sort, as the ascending sort of the sorted positions
local function ranks(map)
  local flat = map:contiguous():view(-1)
  return (flat:argsort(1, true):argsort(1) - 1):view(map:shape())
end
M.ranks = ranks

local function trapezoid(ys)
  local s = 0
  for i = 2, #ys do s = s + (ys[i - 1] + ys[i]) / 2 end
  return s / (#ys - 1)
end

-- deletion / insertion curves (Petsiuk et al. 2018, RISE, Sec. 4.1): pixels taken in order
-- of decreasing saliency are replaced by the baseline (deletion) or revealed over it
-- (insertion); the target's probability after each of opts.steps (20) steps gives a curve
-- whose area (AUC, x in [0,1]) scores the map: low for deletion, high for insertion.
local function curve(kind, model, x, maps, opts)
  opts = util.check_opts(kind, opts, M.known_options[kind])
  local xb, single = as_batch(x, kind)
  if single then maps = maps:unsqueeze(1) end
  local n, c, H, W = table.unpack(xb:shape())
  local steps = opts.steps or 20
  local baseline = opts.baseline or (kind == "insertion" and core.interpolate(core.interpolate(xb,
    { size = { math.max(1, H // 8), math.max(1, W // 8) }, mode = "bilinear" }), { size = { H, W }, mode = "bilinear" })
    or core.zeros(xb:shape()))
  local res = { curves = {}, auc = {} }
  with_eval(model, function()
    local out = no_grad(model, xb)
    local _, ids = targets.scores(out, class_target(opts.target), kind)
    for i = 1, n do
      local r = ranks(maps:select(1, i))
      local frames = {}
      for s = 0, steps do
        local k = math.floor(s * H * W / steps + 0.5)
        local m = r:lt(k):view(1, H, W)                          -- 1 where the pixel is taken
        local xi, bi = xb:select(1, i), baseline:select(1, i)
        if kind == "deletion" then frames[s + 1] = xi * (1 - m) + bi * m
        else frames[s + 1] = bi * (1 - m) + xi * m end
      end
      local batch = core.stack(frames, 1)
      local ys = {}
      local bs = opts.batch_size or 32
      for s = 1, steps + 1, bs do
        local len = math.min(bs, steps + 2 - s)
        for _, v in ipairs(probs(model, batch:narrow(1, s, len), opts.target, ids and ids:get(i))) do ys[#ys + 1] = v end
      end
      res.curves[i] = ys
      res.auc[i] = trapezoid(ys)
    end
  end)
  local sum = 0
  for _, a in ipairs(res.auc) do sum = sum + a end
  res.mean_auc = sum / n
  return res
end

--- deletion curve and AUC of maps (N,H,W) for inputs x: {curves = {...}, auc = {...}, mean_auc}
function M.deletion(model, x, maps, opts) return curve("deletion", model, x, maps, opts) end
--- insertion curve (revealing pixels over a blurred copy) and its AUC
function M.insertion(model, x, maps, opts) return curve("insertion", model, x, maps, opts) end

--- Confidence when only the highlighted region is kept (Chattopadhyay et al. 2018, Sec. 6.1):
--- the input times the map (or, with opts.keep = f, only the top fraction f of pixels).
--- Returns {full = p(x), kept = p(x * map), drop = max(0, full - kept) / full per sample,
--- average_drop (percent), increase_rate (share of samples whose confidence rose)}.
function M.confidence_change(model, x, maps, opts)
  opts = util.check_opts("confidence_change", opts, M.known_options.confidence_change)
  local xb, single = as_batch(x, "confidence_change")
  if single then maps = maps:unsqueeze(1) end
  local n, _, H, W = table.unpack(xb:shape())
  local res = { full = {}, kept = {}, drop = {} }
  with_eval(model, function()
    local out = no_grad(model, xb)
    local _, ids = targets.scores(out, class_target(opts.target), "confidence_change")
    for i = 1, n do
      local m = maps:select(1, i)
      if opts.keep then m = ranks(m):lt(math.floor(opts.keep * H * W + 0.5)) end
      local both = core.stack({ xb:select(1, i), xb:select(1, i) * m:view(1, H, W) }, 1)
      local p = probs(model, both, opts.target, ids and ids:get(i))
      res.full[i], res.kept[i] = p[1], p[2]
      res.drop[i] = math.max(0, p[1] - p[2]) / math.max(p[1], EPS)
    end
  end)
  local d, inc = 0, 0
  for i = 1, n do
    d = d + res.drop[i]
    if res.kept[i] > res.full[i] then inc = inc + 1 end
  end
  res.average_drop = 100 * d / n
  res.increase_rate = inc / n
  return res
end

return M

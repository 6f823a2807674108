-- nnvis.explain.perturb — attributions that only run the model forward on changed inputs, and the
-- ROAD metric:
--   occlusion  (Zeiler & Fergus 2014): a patch slides over the input; each pixel's value is
--              the mean drop of the target's score over the patches that covered it.
--   rise       (Petsiuk et al. 2018): random low-resolution binary masks, upsampled
--              bilinearly with random shifts; the saliency is the masks' sum weighted by
--              the target's probability on each masked input, over N * p.
--   road       (Rong et al. 2022): remove and debias.  The most (MoRF) or least (LeRF)
--              relevant pixels are replaced by noisy linear imputation (each removed pixel
--              the weighted mean of its 8 neighbours, 1/6 direct and 1/12 diagonal, solved
--              over all removed pixels at once, plus a little noise), so the model cannot
--              tell removed pixels by their colour; the target's probability after each
--              fraction gives two curves and their AUC.
-- All run their inputs in batches of opts.batch_size and show a progress bar (opts.progress).
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"
local targets = require "nnvis.inspect.targets"

local M = {}

local no_grad = core.no_grad

-- the target's probability (class ids) or score (a function target) of a batch, given the
-- sample's class id
local function batch_probs(model, xs, target, id, fname)
  local o = no_grad(model, xs)
  if type(target) == "function" then
    local s = no_grad(targets.scores, o, target, fname)
    if s:numel() ~= xs:size(1) then
      error(string.format("%s: the target function must return one score per input (%d), got %d", fname, xs:size(1), s:numel()), 0)
    end
    return s
  end
  return util.probs(util.first_tensor(o):reshape(xs:size(1), -1)):select(2, id)
end

local function class_ids(model, x, target, fname)
  if type(target) == "function" then return nil end
  return select(2, no_grad(targets.scores, no_grad(model, x), target, fname))
end

-- the target's raw score (logit) of a batch, for occlusion (Captum uses the model's output)
local function batch_scores(model, xs, target, id, fname)
  local o = no_grad(model, xs)
  if type(target) == "function" then return no_grad(targets.scores, o, target, fname) end
  return util.first_tensor(o):reshape(xs:size(1), -1):select(2, id)
end

-- positions 1, 1 + stride, ... and the last one that fits (so the far edge is covered)
local function positions(size, patch, stride)
  local list = {}
  local p = 1
  while p + patch - 1 <= size do list[#list + 1] = p; p = p + stride end
  if list[#list] ~= size - patch + 1 then list[#list + 1] = size - patch + 1 end
  return list
end

local function blurred(x)
  local H, W = x:size(3), x:size(4)
  return core.interpolate(core.interpolate(x, { size = { math.max(1, H // 8), math.max(1, W // 8) }, mode = "bilinear" }),
    { size = { H, W }, mode = "bilinear" })
end

--- occlusion(model, x, opts) -> raw (N,H,W) mean score drop.  opts: patch (side, default
--- an eighth of the smaller side; or {h, w}), stride (half the patch), baseline (0, a number,
--- "blur", "mean", or a tensor like x), target, batch_size (64), progress
function M.occlusion(model, x, opts)
  local n, C, H, W = table.unpack(x:shape())
  local p = opts.patch or math.max(1, math.min(H, W) // 8)
  local ph, pw = type(p) == "table" and p[1] or p, type(p) == "table" and p[2] or p
  if ph < 1 or pw < 1 or ph > H or pw > W then
    error(string.format("occlusion: patch %dx%d does not fit the input (%d,%d,%d,%d)", ph, pw, n, C, H, W), 0)
  end
  local s = opts.stride or math.max(1, math.min(ph, pw) // 2)
  local sh, sw = type(s) == "table" and s[1] or s, type(s) == "table" and s[2] or s
  if sh < 1 or sw < 1 then error("occlusion: stride must be at least 1", 0) end
  local base = opts.baseline or 0
  if base == "blur" then base = blurred(x)
  elseif base == "mean" then base = x:mean(3, true):mean(4, true):expand(n, C, H, W)
  elseif type(base) == "number" then base = core.full({ n, C, H, W }, base)
  elseif util.is_tensor(base) then
    if base:dim() == 3 then base = base:unsqueeze(1) end
    base = base:expand(n, C, H, W)
  else error("occlusion: baseline must be a number, \"blur\", \"mean\" or a tensor", 0) end
  local ys, xs = positions(H, ph, sh), positions(W, pw, sw)
  local P = #ys * #xs
  local bs = opts.batch_size or 64
  local ids = class_ids(model, x, opts.target, "occlusion")
  local bar = util.progress("occlusion", n * P, opts.progress)
  local maps = {}
  for i = 1, n do
    local xi, bi = x:select(1, i), base:select(1, i)
    local id = ids and ids:get(i)
    local s0 = batch_scores(model, xi:unsqueeze(1), opts.target, id, "occlusion"):get(1)
    local sum, count = core.zeros({ H, W }), core.zeros({ H, W })
    local k = 0
    while k < P do
      local len = math.min(bs, P - k)
      local batch = xi:unsqueeze(1):expand(len, C, H, W):contiguous()
      local where = {}
      for j = 1, len do
        local q = k + j - 1
        local y0, x0 = ys[q // #xs + 1], xs[q % #xs + 1]
        where[j] = { y0, x0 }
        batch:select(1, j):narrow(2, y0, ph):narrow(3, x0, pw):copy(bi:narrow(2, y0, ph):narrow(3, x0, pw))
      end
      local sc = batch_scores(model, batch, opts.target, id, "occlusion"):values()
      for j = 1, len do
        local y0, x0 = where[j][1], where[j][2]
        sum:narrow(1, y0, ph):narrow(2, x0, pw):add_(s0 - sc[j])
        count:narrow(1, y0, ph):narrow(2, x0, pw):add_(1)
      end
      k = k + len
      bar:step(P * (i - 1) + k)
    end
    maps[i] = sum / count:clamp(1, math.huge)
  end
  bar:done()
  return core.stack(maps, 1)
end

--- rise(model, x, opts) -> raw (N,H,W) saliency.  opts: masks (1000), cells (7: the masks'
--- grid), p (0.5: the share of cells kept), seed (0; the caller's random stream is left as
--- it was), target, batch_size (64), progress
function M.rise(model, x, opts)
  local n, C, H, W = table.unpack(x:shape())
  local N = opts.masks or 1000
  local s = opts.cells or 7
  local p = opts.p or 0.5
  if N < 1 then error("rise: masks must be at least 1", 0) end
  if s < 1 or s > math.min(H, W) then error(string.format("rise: cells %d must be in [1, %d]", s, math.min(H, W)), 0) end
  if p <= 0 or p >= 1 then error("rise: p must be in (0, 1)", 0) end
  local bs = opts.batch_size or 64
  local ch, cw = math.ceil(H / s), math.ceil(W / s)
  local ids = class_ids(model, x, opts.target, "rise")
  local bar = util.progress("rise", N, opts.progress)
  local acc = core.zeros({ n, H, W })
  util.with_seed(opts.seed or 0, function()
    local done = 0
    while done < N do
      local len = math.min(bs, N - done)
      local grid = core.rand({ len, 1, s, s }):lt(p)
      local up = core.interpolate(grid, { size = { (s + 1) * ch, (s + 1) * cw }, mode = "bilinear", align_corners = false })
      local shifts = core.rand({ len, 2 }):values()
      local masks = {}
      for j = 1, len do
        local dy = math.floor(shifts[2 * j - 1] * ch) + 1
        local dx = math.floor(shifts[2 * j] * cw) + 1
        masks[j] = up:select(1, j):select(1, 1):narrow(1, dy, H):narrow(2, dx, W)
      end
      local M_ = core.stack(masks, 1)                                  -- (len,H,W)
      for i = 1, n do
        local xi = x:select(1, i):unsqueeze(1)
        local sc = batch_probs(model, M_:unsqueeze(2) * xi, opts.target, ids and ids:get(i), "rise")   -- (len)
        acc:select(1, i):add_((M_ * sc:view(len, 1, 1)):sum(1))
      end
      done = done + len
      bar:step(done)
    end
  end)
  bar:done()
  return acc / (N * p)
end

-- noisy linear imputation of the pixels where `removed` (S,1,H,W) is 1: each becomes the
-- weighted mean of its neighbours (1/6 direct, 1/12 diagonal, renormalized at the border),
-- solved by Jacobi iterations over all removed pixels together, then noise is added
local function impute(xs, removed, iters, noise)
  local S, C, H, W = table.unpack(xs:shape())
  local k = core.tensor({ { 1 / 12, 1 / 6, 1 / 12 }, { 1 / 6, 0, 1 / 6 }, { 1 / 12, 1 / 6, 1 / 12 } })
  local kc = k:view(1, 1, 3, 3):expand(C, 1, 3, 3):contiguous()
  local norm = core.conv2d(core.ones({ 1, 1, H, W }), k:view(1, 1, 3, 3), nil, { padding = 1 })   -- (1,1,H,W)
  local keep = 1 - removed
  local known = xs * keep
  -- start from the mean of the kept pixels
  local v = known + removed * (known:sum(3, true):sum(4, true) / keep:sum(3, true):sum(4, true):clamp(1, math.huge))
  for _ = 1, iters do
    local avg = core.conv2d(v, kc, nil, { padding = 1, groups = C }) / norm
    v = known + removed * avg
  end
  if noise > 0 then v = v + removed * core.randn(v:shape()) * noise end
  return v
end

local ranks_of = require("nnvis.explain.metrics").ranks

local function auc(xs, ys)
  local s = 0
  for i = 2, #ys do s = s + (xs[i] - xs[i - 1]) * (ys[i - 1] + ys[i]) / 2 end
  return s / (xs[#xs] - xs[1])
end

--- road(model, x, maps, opts) -> {fractions = {...}, morf = {curve per sample}, lerf = {...},
--- morf_auc = {...}, lerf_auc = {...}, mean_morf_auc, mean_lerf_auc}: the target's
--- probability with the given fractions of pixels removed, most relevant first (a good map:
--- low AUC) and least relevant first (a good map: high AUC).  opts: fractions ({0, 0.1, ...,
--- 0.9}), iterations (100, of the imputation), noise (0.01 of the input's range), seed (0),
--- target, batch_size (32)
function M.road(model, x, maps, opts)
  local n, C, H, W = table.unpack(x:shape())
  if not util.is_tensor(maps) or maps:dim() ~= 3 or maps:size(1) ~= n or maps:size(2) ~= H or maps:size(3) ~= W then
    error(string.format("road: maps must be (%d,%d,%d) for the input (%d,%d,%d,%d), got %s", n, H, W, n, C, H, W,
      util.is_tensor(maps) and util.shape_str(maps) or type(maps)), 0)
  end
  local fr = opts.fractions or { 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 }
  local iters = opts.iterations or 100
  local range = x:max():item() - x:min():item()
  local noise = (opts.noise or 0.01) * (range > 0 and range or 1)
  local ids = class_ids(model, x, opts.target, "road")
  local bs = opts.batch_size or 32
  local res = { fractions = fr, morf = {}, lerf = {}, morf_auc = {}, lerf_auc = {} }
  util.with_seed(opts.seed or 0, function()
    for i = 1, n do
      local r = ranks_of(maps:select(1, i))
      local xi = x:select(1, i)
      for _, order in ipairs({ "morf", "lerf" }) do
        local rm = {}
        for s, f in ipairs(fr) do
          local k = math.floor(f * H * W + 0.5)
          rm[s] = (order == "morf" and r:lt(k) or r:ge(H * W - k)):view(1, H, W)
        end
        local removed = core.stack(rm, 1)                                          -- (S,1,H,W)
        local S = #fr
        local xs = impute(xi:unsqueeze(1):expand(S, C, H, W), removed, iters, noise)
        local ys = {}
        for s0 = 1, S, bs do
          local len = math.min(bs, S - s0 + 1)
          for _, v in ipairs(batch_probs(model, xs:narrow(1, s0, len), opts.target, ids and ids:get(i), "road"):values()) do
            ys[#ys + 1] = v
          end
        end
        res[order][i] = ys
        res[order .. "_auc"][i] = auc(fr, ys)
      end
    end
  end)
  local a, b = 0, 0
  for i = 1, n do a = a + res.morf_auc[i]; b = b + res.lerf_auc[i] end
  res.mean_morf_auc, res.mean_lerf_auc = a / n, b / n
  return res
end

return M

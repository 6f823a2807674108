-- nnvis.explain.cam — class activation maps and gradient attributions.
--
-- Every method takes (model, x, opts) with x (N,C,H,W) (or (C,H,W)) and returns an
-- (N,H,W) map in [0,1] at the input's resolution (each sample min-max normalized).
-- opts.target: a 1-based class id, one id per sample, or a function of the output returning
-- a score per sample (regression, custom scores); default each sample's top class.
-- opts.layer: the dotted name of the layer whose activations A (N,K,h,w) are explained
-- (default: the last layer to produce a spatial map).  opts.aug_smooth: average over
-- horizontal flips and brightness changes (test-time augmentation).
-- Second return value: the raw map before upsampling and normalization, or the raw
-- attributions (N,C,H,W) for the gradient methods.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local targets = require "nnvis.inspect.targets"

local M = {}

-- every method registers itself beside its definition (nnvis.explain.methods): its name, the
-- name it goes by in its paper, its kind and the options it knows (checked on entry: a
-- misspelled key raises); nv.cam.methods, all_methods and known_options are read from there
local methods = require "nnvis.explain.methods"
M.known_options = {}
local function register(name, kind, title, options)
  methods.register { name = name, title = title, kind = kind, options = options }
  M.known_options[name] = options
end
local layer_keys = { "layer", "target", "aug_smooth", "tokens" }
local batched_keys = { "layer", "target", "aug_smooth", "tokens", "batch_size", "progress" }

local EPS = 1e-7

local util = require "nnvis.tensor.util"
local is_tensor = util.is_tensor

local as_batch = util.image_batch

local function with_eval(model, f) return util.with_mode(model, false, f) end

-- class-id targets for the helpers that need ids (a function target gives none)
local function class_target(t) if type(t) == "function" then return nil end return t end

local no_grad = core.no_grad

-- per-sample min-max normalization of (N,H,W) maps to [0,1]
--- per-sample min-max normalization of (N,H,W) maps to [0,1]
local function normalize(maps)
  local n = maps:size(1)
  local flat = maps:reshape(n, -1)
  local lo = flat:min(2, true)
  local hi = flat:max(2, true)
  return ((flat - lo) / (hi - lo + EPS)):reshape(maps:shape())
end
M.normalize = normalize

local function upsample(maps, h, w)
  if maps:size(2) == h and maps:size(3) == w then return maps end
  return core.interpolate(maps:unsqueeze(2), { size = { h, w }, mode = "bilinear" }):squeeze(2)
end

-- raw (N,h,w) maps, or a clip's (N,t,h,w), at the input's resolution (frames and time
-- bilinear), each sample normalized to [0,1]
local function finish(raw, x)
  raw = raw:detach()
  if x:dim() == 5 then
    local n, t, h, w = table.unpack(raw:shape())
    local T, H, W = x:size(3), x:size(4), x:size(5)
    local frames = upsample(raw:reshape(n * t, h, w), H, W):reshape(n, t, H * W)
    if t ~= T then
      frames = core.interpolate(frames:unsqueeze(2), { size = { T, H * W }, mode = "bilinear" }):squeeze(2)
    end
    return normalize(frames:reshape(n, T, H, W)), raw
  end
  return normalize(upsample(raw, x:size(3), x:size(4))), raw
end

-- The default layer (the last module to output a spatial map) of a model, per input shape
-- (C,H,W): found by the first call, so that later gradient methods can start the graph there.
local default_layers = setmetatable({}, { __mode = "k" })

-- a map (N,C,h,w), or a clip's (N,C,t,h,w), of more than one position
local function spatial(t)
  if not is_tensor(t) then return false end
  if t:dim() == 4 then return t:size(3) * t:size(4) > 1 end
  return t:dim() == 5 and t:size(3) * t:size(4) * t:size(5) > 1
end

-- ---- token layouts: a transformer layer's output (N, T, C), T = skip + h*w tokens (a class
-- token first in ViT), or a channels-last grid (N, h, w, C) as Swin writes it, read as the map
-- (N, C, h, w) every layer method works on; pytorch-grad-cam's reshape_transform, done here
local function square_grid(n)
  local g = math.floor(math.sqrt(n) + 0.5)
  if n > 1 and g * g == n then return g end
end

-- tokens (N, T, C) of a model whose input is (H, W): a grid of the input's aspect ratio
local function token_grid(T, skip, H, W)
  for _, s in ipairs(skip and { skip } or { 1, 0 }) do
    local n = T - s
    local g = square_grid(n)
    if g and (not H or H == W) then return g, g, s end
    if H and W and n > 1 then
      local h = math.floor(math.sqrt(n * H / W) + 0.5)
      if h >= 1 and n % h == 0 and math.abs((n // h) / h - W / H) < 0.2 then return h, n // h, s end
    end
  end
end

local function token_layout(A, tokens, x, fname, layer)
  if tokens == false or not is_tensor(A) then return nil end
  if A:dim() == 3 then
    local N, T, C = A:size(1), A:size(2), A:size(3)
    local h, w, skip
    if type(tokens) == "table" then h, w, skip = tokens[1], tokens[2], tokens.skip end
    if not h then h, w, skip = token_grid(T, skip, x:size(3), x:size(4)) end
    if not h then
      util.raise(string.format("%s: layer '%s' outputs (%d,%d,%d), tokens that form no grid of the input's shape: " ..
        "pass opts.tokens = {h, w, skip = k} (k tokens before the h*w grid, a class token: 1)", fname, tostring(layer),
        N, T, C))
    end
    skip = skip or (T - h * w)
    if skip < 0 or skip + h * w ~= T then
      util.raise(string.format("%s: opts.tokens = {%d, %d, skip = %d} does not fit layer '%s''s %d tokens", fname, h, w,
        skip, tostring(layer), T))
    end
    return { kind = "tokens", h = h, w = w, skip = skip }
  end
  if A:dim() == 4 and (tokens == "nhwc" or (type(tokens) == "table" and tokens.layout == "nhwc")) then
    return { kind = "nhwc" }
  end
end

-- the map (N, C, h, w) of a layer output in layout L
local function to_map(A, L)
  if L.kind == "nhwc" then return A:permute(1, 4, 2, 3) end
  return A:narrow(2, L.skip + 1, L.h * L.w):reshape(A:size(1), L.h, L.w, A:size(3)):permute(1, 4, 2, 3)
end

-- a map (N, C, h, w) back in layout L; the tokens before the grid come from like
local function from_map(M, L, like)
  local g = M:permute(1, 3, 4, 2):contiguous()
  if L.kind == "nhwc" then return g end
  local t = g:reshape(M:size(1), L.h * L.w, M:size(2))
  if L.skip > 0 then t = core.cat({ like:narrow(2, 1, L.skip):expand(M:size(1), L.skip, M:size(2)), t }, 2) end
  return t:contiguous()
end

-- whether t looks like a transformer's tokens (N, T, C) with T - 1 or T a square grid
local function tokens_like(t) return is_tensor(t) and t:dim() == 3 and (square_grid(t:size(2) - 1) or square_grid(t:size(2))) ~= nil end
-- pytorch-grad-cam's documented layer of a ViT / Swin: the last block's first norm
local function first_norm(name) return name:match("ln_1$") or name:match("norm1$") end

-- Runs the model on x, keeping the activations of opts.layer (or, without one, of the last
-- module to output a spatial map).  Returns A, output, the layer name.  With grad, only what
-- lies above the layer is recorded: the layers below it run without a graph (and so fused,
-- as inference), and a hook hands the rest of the model a fresh leaf A that requires grad,
-- so a gradient at A costs the layers above it only.  The gradient is the same: every path
-- from A to the output goes through that leaf.
local explained_layer   -- the layer the last forward_with_layer explained (for the warnings)
local ADAPTIVE = { AdaptiveAvgPool2d = true, AdaptiveMaxPool2d = true }
local function forward_with_layer(model, x, layer, grad, fname, tokens)
  local handles <close> = hooks()
  local seen, seen_tokens, order = {}, {}, 0
  local A, started
  local shape_key = table.concat(x:shape(), "x", 2)
  local known = default_layers[model]
  -- layers are matched as modules, not names: a position (2) or an alias (block5_conv3) works too
  local target = layer and util.find_layer(fname, model, layer)
  local start_mod
  if grad then
    if layer then start_mod = target
    elseif known and known[shape_key] then
      local ok, m = pcall(model.get, model, known[shape_key])
      start_mod = ok and m or nil
    end
  end
  local start = start_mod ~= nil
  local hooked = false
  for name, m in model:named_modules() do
    if m == start_mod and not hooked then
      hooked = true
      handles:add(m, function(_, _, out)
        if not is_tensor(out) then A = out return end
        A, started = out:detach():set_requires_grad(true), true
        core.set_grad_enabled(true)
        order = order + 1
        if not layer and spatial(A) then seen[#seen + 1] = { name = name, out = A, order = order }
        elseif not layer and tokens ~= false and tokens_like(A) then seen_tokens[#seen_tokens + 1] = { name = name, out = A, order = order } end
        return A
      end)
    elseif not layer and name ~= "" and not ADAPTIVE[m.kind] then
      -- (an adaptive pool before the classifier, VGG's avgpool to 7x7, only resamples the
      -- last map: pytorch-grad-cam's documentation names features[-1], so does nnvis)
      handles:add(m, function(_, inp, out)
        -- the last wins: a container returning its last layer's tensor (features, layer4) is
        -- called once, where a layer inside may run twice (a block's ReLU)
        order = order + 1
        if spatial(out) then seen[#seen + 1] = { name = name, out = out, order = order, inp = inp }
        elseif tokens ~= false and tokens_like(out) then seen_tokens[#seen_tokens + 1] = { name = name, out = out, order = order } end
      end)
    elseif m == target and not hooked then
      hooked = true
      handles:add(m, function(_, _, out) A = out end)
    end
  end
  local xin = x:detach()
  -- without a known start, a gradient is taken through the whole graph from the input
  if grad and not start then xin:set_requires_grad(true) end
  local was = core.set_grad_enabled(grad and not start or false)
  local ok, out = pcall(model, xin)
  core.set_grad_enabled(was)
  handles:remove()
  if not ok then util.raise(fname .. ": the forward pass failed: " .. tostring(out)) end
  if not layer then
    -- a transformer: token outputs after the last map (the patch embedding's) -> the last
    -- block's first norm (ln_1, norm1), else the last token output
    local pick = seen[#seen]
    local last_tokens = seen_tokens[#seen_tokens]
    if last_tokens and (not pick or last_tokens.order > pick.order) then
      pick = last_tokens
      for k = #seen_tokens, 1, -1 do
        if first_norm(seen_tokens[k].name) then pick = seen_tokens[k]; break end
      end
    end
    if not pick then util.raise(fname .. ": no layer of the model outputs a spatial map (N,C,h,w) or tokens; pass opts.layer") end
    -- a map that is only a channels-last output turned (N,h,w,C) -> (N,C,h,w) (Swin's final
    -- permute after its last stage's norm) is explained as that output, the norm, as
    -- pytorch-grad-cam's documentation names it for Swin: the same activations, so the same map
    local prev
    if pick == seen[#seen] and tokens == nil and is_tensor(pick.inp) then
      local id = core.tensor_id(pick.inp)
      for k = #seen - 1, 1, -1 do
        if core.tensor_id(seen[k].out) == id then prev = seen[k]; break end
      end
    end
    if prev and prev.out:dim() == 4 and pick.out:dim() == 4
      and prev.out:size(4) == pick.out:size(2) and prev.out:size(2) == pick.out:size(3) and prev.out:size(3) == pick.out:size(4)
      and prev.out:size(4) ~= prev.out:size(2) then
      pick, tokens = prev, "nhwc"
    end
    A, layer = pick.out, pick.name
    if not known then known = {} default_layers[model] = known end
    -- the model changed since its default layer was found and that layer never ran: again,
    -- recording the whole graph (a start below the last map is fine: the map is in the graph)
    if start and not started then
      known[shape_key] = nil
      return forward_with_layer(model, x, nil, grad, fname, tokens)
    end
    known[shape_key] = layer
  end
  explained_layer = layer
  local L = token_layout(A, tokens, x, fname, layer)
  if not L and (not is_tensor(A) or (A:dim() ~= 4 and not (A:dim() == 5 and x:dim() == 5))) then
    util.raise(string.format("%s: layer '%s' must output a map (N,C,h,w) or tokens (N,T,C)%s", fname, layer,
      is_tensor(A) and (", got (" .. table.concat(A:shape(), ",") .. ")") or ""))
  end
  return A, out, layer, L
end

-- activations A, their gradients G for the target's scores, the class ids used
local function acts_and_grads(model, x, opts, fname)
  local A, out, _, L = forward_with_layer(model, x, opts.layer, true, fname, opts.tokens)
  -- the scores are recorded even when called under nv.no_grad
  local was = core.set_grad_enabled(true)
  local ok, total, ids = pcall(function()
    local scores, ids = targets.scores(out, opts.target, fname)
    return scores:sum(), ids
  end)
  core.set_grad_enabled(was)
  if not ok then error(total, 0) end
  local G = core.grad(total, { A })[1]
  A = A:detach()
  if L then A, G = to_map(A, L), to_map(G, L) end
  return A, G, ids
end

-- over every position (h, w, and a clip's time): (N,K,...) -> (N,K)
local function spatial_sum(t) return t:reshape(t:size(1), t:size(2), -1):sum(3) end
local function spatial_mean(t) return t:reshape(t:size(1), t:size(2), -1):mean(3) end
-- w (N,K) as (N,K,1,1[,1]) against A
local function per_channel(w, A)
  local s = { w:size(1), w:size(2) }
  for _ = 3, A:dim() do s[#s + 1] = 1 end
  return w:view(s)
end
local function weighted(A, w)                                     -- sum_k w_k A_k
  return (A * per_channel(w, A)):sum(2)
end

-- ---- methods on a layer's activations -------------------------------------------------------
local layer_methods = {}

local function gradcam_raw(A, G) return weighted(A, spatial_mean(G)):relu() end

register("gradcam", "layer", "Grad-CAM", layer_keys)
--- Grad-CAM (Selvaraju et al. 2017, Eq. 1-2): alpha_k = mean_ij dy/dA_ij^k,
--- L = ReLU(sum_k alpha_k A^k)
function layer_methods.gradcam(model, x, opts)
  return gradcam_raw(acts_and_grads(model, x, opts, "gradcam"))
end

--- gradcam_of(A, G, x): Grad-CAM from activations A (N,K,h,w) a caller captured and the
--- target's gradient G there (nv.capture with grads): the (N,H,W) map in [0,1] at the size of
--- x (N,C,H,W), and the raw (N,h,w) map
function M.gradcam_of(A, G, x) return finish(gradcam_raw(A, G), x) end

register("gradcampp", "layer", "Grad-CAM++", layer_keys)
--- Grad-CAM++ (Chattopadhyay et al. 2018, Eq. 19 with the exponential-score closed form):
--- a_ij^k = g^2 / (2 g^2 + sum_ab A_ab^k g^3), w_k = sum_ij a_ij^k ReLU(g_ij^k)
function layer_methods.gradcampp(model, x, opts)
  local A, G = acts_and_grads(model, x, opts, "gradcampp")
  local g2 = G:square()
  local g3 = g2 * G
  local sumA = spatial_sum(A)
  local denom = g2 * 2 + g3 * per_channel(sumA, A) + EPS
  local a = core.where(G:ne(0), g2 / denom, 0)
  return weighted(A, spatial_sum(a * G:relu())):relu()
end

register("xgradcam", "layer", "XGrad-CAM", layer_keys)
--- XGrad-CAM (Fu et al. 2020, Eq. 13): w_k = sum_ij (A_ij^k / sum_ab A_ab^k) dy/dA_ij^k
function layer_methods.xgradcam(model, x, opts)
  local A, G = acts_and_grads(model, x, opts, "xgradcam")
  local sumA = spatial_sum(A)
  local w = spatial_sum(A * G) / (sumA + EPS)
  return weighted(A, w):relu()
end

register("layercam", "layer", "LayerCAM", layer_keys)
--- LayerCAM (Jiang et al. 2021, Eq. 5-6): L = ReLU(sum_k ReLU(g^k) * A^k), per position
function layer_methods.layercam(model, x, opts)
  local A, G = acts_and_grads(model, x, opts, "layercam")
  return (G:relu() * A):sum(2):relu()
end

register("hirescam", "layer", "HiResCAM", layer_keys)
--- HiResCAM (Draelos & Carin 2020, Eq. 5): L = ReLU(sum_k g^k * A^k), element-wise
function layer_methods.hirescam(model, x, opts)
  local A, G = acts_and_grads(model, x, opts, "hirescam")
  return (G * A):sum(2):relu()
end

-- the layer's activations for the gradient-free methods, which take images (N,C,H,W), not
-- clips: detached and as (N,K,h,w) maps (tokens turned into their grid); then the output, the
-- layer, the activations as the layer gave them, and their token layout (nil for maps)
local function image_layer_maps(model, x, opts, fname)
  if x:dim() == 5 then
    util.raise(fname .. ": a clip (N,C,T,H,W) is explained by gradcam, gradcampp, xgradcam, layercam or hirescam")
  end
  local A, out, layer, L = forward_with_layer(model, x, opts.layer, false, fname, opts.tokens)
  A = A:detach()
  return L and to_map(A, L) or A, out, layer, A, L
end

register("cam", "layer", "CAM", { "layer", "target", "aug_smooth", "fc", "tokens" })
--- CAM (Zhou et al. 2016, Eq. 2) for global-average-pooling models: M_c = sum_k w_k^c A^k
--- with w^c the row of the final linear layer (opts.fc, default the last Linear) for class c
function layer_methods.cam(model, x, opts)
  if type(opts.target) == "function" then util.raise("cam: CAM needs class targets, not a function") end
  local A, out = image_layer_maps(model, x, opts, "cam")
  local fc
  if opts.fc then fc = model:get(opts.fc)
  else
    for _, m in model:named_modules() do if m.kind == "Linear" then fc = m end end
  end
  if not fc or not fc.weight then util.raise("cam: no final Linear layer found; pass opts.fc") end
  if fc.weight:size(2) ~= A:size(2) then
    util.raise(string.format("cam: the linear layer has %d inputs but layer output has %d channels (CAM needs GAP + linear)",
      fc.weight:size(2), A:size(2)))
  end
  local _, ids = targets.scores(out, opts.target, "cam")
  local w = fc.weight:detach():index_select(1, ids)
  return weighted(A:detach(), w):relu()
end

register("eigencam", "layer", "Eigen-CAM", layer_keys)
--- Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component,
--- M = A_flat v1 with v1 the top right-singular vector of the centred (hw, K) matrix
--- (power iteration); class-agnostic, gradient-free.  The sign is chosen so the map
--- correlates positively with the mean activation.
function layer_methods.eigencam(model, x, opts)
  local A = image_layer_maps(model, x, opts, "eigencam")
  local n, k, h, w = table.unpack(A:shape())
  local maps = {}
  for i = 1, n do
    local Mx = A:select(1, i):reshape(k, h * w):t():contiguous()      -- (hw, K)
    local Mc = Mx - Mx:mean(1, true)
    local v = core.ones(k, 1) / math.sqrt(k)
    for _ = 1, 60 do
      v = core.matmul(Mc:t(), core.matmul(Mc, v))
      local nrm = v:square():sum():sqrt():item()
      if nrm == 0 then break end
      v = v / nrm
    end
    local proj = core.matmul(Mc, v):view(h, w)
    local meanmap = Mx:mean(2):view(h, w)
    if (proj * (meanmap - meanmap:mean())):sum():item() < 0 then proj = -proj end
    maps[i] = proj
  end
  return core.stack(maps, 1):relu()
end

-- the target's score for each row of a batch output o: class ids (one per row) or a function
local function batch_scores(o, target, ids, len, fname)
  local sc
  if type(target) == "function" then sc = no_grad(target, o)
  else sc = util.first_tensor(o):reshape(len, -1):gather(2, ids:view(len, 1)):view(len) end
  if sc:numel() ~= len then
    error(string.format("%s: the target function must return one score per input (%d), got %d", fname, len, sc:numel()), 0)
  end
  return sc
end

register("scorecam", "layer", "Score-CAM", batched_keys)
--- Score-CAM (Wang et al. 2020, Eq. 5-7): each activation map, upsampled and scaled to
--- [0,1], masks the input; the target's score on each masked input, softmaxed over the
--- maps, weights them: L = ReLU(sum_k softmax_k(s_k) A^k).  Gradient-free, K forwards
--- per sample, run opts.batch_size (32) masked inputs at a time; opts.progress.
function layer_methods.scorecam(model, x, opts)
  local A, out = image_layer_maps(model, x, opts, "scorecam")
  local _, ids = targets.scores(out, class_target(opts.target), "scorecam")
  local n, k = A:size(1), A:size(2)
  local H, W = x:size(3), x:size(4)
  local bs = opts.batch_size or 32
  local bar = util.progress("scorecam", n * k, opts.progress)
  local ws = {}
  for i = 1, n do
    local masks = normalize(upsample(A:select(1, i), H, W))           -- (K,H,W)
    local xi = x:select(1, i):unsqueeze(1)
    local scores = {}
    for s = 1, k, bs do
      local len = math.min(bs, k - s + 1)
      local batch = masks:narrow(1, s, len):unsqueeze(2) * xi        -- (len,C,H,W)
      local ok, o = pcall(no_grad, model, batch)
      if not ok then
        -- an export whose graph fixed its batch size (Reshape constants of batch 1) runs the
        -- image but not a batch of masked copies of it: say what to pass
        util.raise(string.format("scorecam: the model failed on a batch of %d masked inputs%s: %s", len,
          len > 1 and " (a model exported with a fixed batch size takes one at a time: opts.batch_size = 1)" or "",
          tostring(o):gsub("^[^\n]-%.lua:%d+: ", "")))
      end
      local sc = batch_scores(o, opts.target, ids and core.full({ len }, ids:get(i)), len, "scorecam")
      scores[#scores + 1] = sc
      bar:step((i - 1) * k + s + len - 1)
    end
    ws[i] = core.softmax(core.cat(scores, 1), 1)
  end
  bar:done()
  return weighted(A, core.stack(ws, 1)):relu()
end

register("ablationcam", "layer", "Ablation-CAM", batched_keys)
--- Ablation-CAM (Desai & Ramaswamy 2020, Eq. 3): w_k = (y_c - y_c^k) / y_c, y_c^k the score
--- with activation map k set to zero; L = ReLU(sum_k w_k A^k).  The layers below the
--- target layer run once: a hook replaces the layer's (1,K,h,w) output by a batch of
--- opts.batch_size (32) ablated copies, which the rest of the model runs as one batch
--- (models whose later layers mix in batch-1 tensors that cannot broadcast fall back to
--- running the whole model on each batch).  opts.progress.
function layer_methods.ablationcam(model, x, opts)
  local A, out, layer, raw, L = image_layer_maps(model, x, opts, "ablationcam")
  local base, ids = targets.scores(out, opts.target, "ablationcam")
  base = base:detach()
  local n, k = A:size(1), A:size(2)
  local bs = opts.batch_size or 32
  local mod = model:get(layer)
  local bar = util.progress("ablationcam", n * k, opts.progress)
  local suffix_only = true
  local ws = {}
  for i = 1, n do
    local ai = A:select(1, i)
    local drops = {}
    for s = 1, k, bs do
      local len = math.min(bs, k - s + 1)
      local ablated = ai:unsqueeze(1):expand(len, ai:size(1), ai:size(2), ai:size(3)):contiguous()
      for j = 1, len do ablated:select(1, j):select(1, s + j - 1):fill(0) end
      -- the hook hands the rest of the model the ablated maps in the layer's own layout
      local handed = L and from_map(ablated, L, raw:narrow(1, i, 1)) or ablated
      local function run(xb)
        local h <close> = mod:register_forward_hook(function() return handed end)
        local ok, o = pcall(no_grad, model, xb)
        if ok and util.first_tensor(o) and util.first_tensor(o):size(1) == len then return o end
        return nil, o
      end
      local o, err
      if suffix_only then
        o = run(x:narrow(1, i, 1))
        if not o then suffix_only = false end
      end
      if not o then
        o, err = run(x:narrow(1, i, 1):expand(len, x:size(2), x:size(3), x:size(4)))
        if not o then util.raise("ablationcam: " .. tostring(err)) end
      end
      drops[#drops + 1] = batch_scores(o, opts.target, ids and core.full({ len }, ids:get(i)), len, "ablationcam")
      bar:step((i - 1) * k + s + len - 1)
    end
    local y = base:get(i)
    ws[i] = (y - core.cat(drops, 1)) / (math.abs(y) > EPS and y or EPS)
  end
  bar:done()
  return weighted(A, core.stack(ws, 1)):relu()
end

-- flips the last dim (differentiable)
--- t flipped along its last dimension (differentiable)
local function hflip(t)
  local w = t:size(t:dim())
  return t:index_select(t:dim(), core.arange(w, 0, -1))
end
M.hflip = hflip


-- public entry points: batch handling, eval mode, test-time augmentation, upsampling
for name, f in pairs(layer_methods) do
 --- nv.cam.gradcam(model, x [, opts]) and the other layer methods (cam, gradcampp, xgradcam,
 --- layercam, hirescam, scorecam, eigencam, ablationcam): the (N,H,W) map in [0,1] of x at its
 --- resolution and the raw map; opts.layer, opts.target (a class id, one per sample, a function
 --- of the output, or a segmentation target {class = k [, mask = m]}: class k's scores summed
 --- over the mask, default the pixels predicted as k), opts.aug_smooth and each method's own
 --- (nv.cam.known_options); the formula is beside each method in lua/nnvis/explain/cam.lua.  A layer
 --- whose output is a transformer's tokens (N, T, C) is read as the map (N, C, h, w) of its
 --- h*w patch tokens (the class token dropped; the grid found from T and the input's shape, or
 --- opts.tokens = {h, w, skip = k}; opts.tokens = "nhwc" for Swin's (N, h, w, C) grids, false:
 --- never); a transformer's default layer is its last block's first norm (ln_1 / norm1), as
 --- pytorch-grad-cam's documentation recommends
  M[name] = function(model, x, opts)
    opts = util.check_opts(name, opts, M.known_options[name])
    local xb, single = as_batch(x, name)
    if type(opts.target) == "table" and opts.target.class ~= nil then
      opts = util.merge(opts, { target = targets.resolve(model, xb, opts.target, name) })
    end
    local raw = with_eval(model, function()
      if not opts.aug_smooth then return f(model, xb, opts) end
      -- average over {identity, horizontal flip} x {brightness 1, 1.1, 0.9}
      local acc, count = nil, 0
      for _, flip in ipairs { false, true } do
        for _, mul in ipairs { 1, 1.1, 0.9 } do
          local xi = xb * mul
          if flip then xi = hflip(xi) end
          local r = f(model, xi, opts)
          if flip then r = hflip(r) end
          acc = acc and (acc + r) or r
          count = count + 1
        end
      end
      return acc / count
    end)
    local map, rawmap = finish(raw, xb)
    local blank = M.blank_samples(rawmap)
    if #blank > 0 then util.warn(M.blank_message(name, blank, xb:size(1), explained_layer)) end
    if single then return map:select(1, 1), rawmap:select(1, 1) end
    return map, rawmap
  end
end
--- the layer the last layer method explained (its opts.layer, or the default it found)
function M.explained_layer() return explained_layer end

--- the samples (1-based) whose raw (N,h,w) map is zero everywhere: the ReLU of a weighted
--- sum that is negative at every position, drawn as a blank panel
function M.blank_samples(raw)
  local out = {}
  local mx = raw:reshape(raw:size(1), -1):abs():max(2)
  for i, v in ipairs(mx:values()) do if not (v > 0) then out[#out + 1] = i end end
  return out
end

--- what to say of blank maps: the method, the samples and the layer, and what to try
function M.blank_message(method, samples, n, layer)
  local which = #samples == n and (n == 1 and "the map is" or ("all " .. n .. " maps are"))
    or ("the maps of sample" .. (#samples == 1 and " " or "s ") .. table.concat(samples, ", ") .. " are")
  return string.format("%s: %s zero everywhere at layer '%s' (the weighted sum of its activations is nowhere positive, so the ReLU " ..
    "removes it): try an earlier layer (opts.layer), or HiResCAM or LayerCAM, which weight each position",
    method, which, tostring(layer))
end

-- attention maps and rollout of vision transformers (lua/nnvis/explain/attention.lua)
local attention = require "nnvis.explain.attention"
M.attention, M.rollout, M.rollout_of, M.relevance = attention.attention, attention.rollout, attention.rollout_of, attention.relevance

--- the CAM family (the layer methods), in the order they are defined: nv.cam.compare's default
M.methods = methods.names { layer = true }
M["gradcam++"] = M.gradcampp

-- ---- gradient attributions on the input -----------------------------------------------------
local function input_grad(model, x, target, fname, grad_opts)
  local xin = x:detach():set_requires_grad(true)
  local out = model(xin)
  local scores = targets.scores(out, target, fname)
  return core.grad(scores:sum(), { xin }, grad_opts)[1]
end

local function channel_max_abs(g) return g:abs():max(2) end      -- (N,C,H,W) -> (N,H,W)

local function input_method(name, f)
 --- nv.cam.saliency(model, x [, opts]) and the other input-gradient methods (smoothgrad,
 --- integrated_gradients, guided_backprop): the (N,H,W) map in [0,1] and the raw attributions
 --- (N,C,H,W); opts.target and each method's own (nv.cam.known_options)
  M[name] = function(model, x, opts)
    opts = util.check_opts(name, opts, M.known_options[name])
    local xb, single = as_batch(x, name)
    if type(opts.target) == "table" and opts.target.class ~= nil then
      opts = util.merge(opts, { target = targets.resolve(model, xb, opts.target, name) })
    end
    local map, attr = with_eval(model, function() return f(model, xb, opts) end)
    map = normalize(map:detach())
    if single then return map:select(1, 1), attr:select(1, 1) end
    return map, attr
  end
end

register("saliency", "input", "Saliency (gradient)", { "target" })
--- vanilla saliency (Simonyan et al. 2014, Eq. 2-3): max over channels of |dy/dx|
input_method("saliency", function(model, x, opts)
  local g = input_grad(model, x, opts.target, "saliency")
  return channel_max_abs(g), g
end)

-- Input gradients of the target's scores at many points derived from the samples of x:
-- point(i, r) gives the r-th of `per` points of sample i.  They run opts.batch_size points
-- at a time in one forward and one backward; without one, as many as nv.config's work_memory
-- holds (up to all `per` points of a sample, at most 32): the first point runs alone and its
-- graph's size (twice its forward's tensors, for the backward) sets the batch, which is said
-- when the budget cuts it.  Returns the (N,C,H,W) sum over r of each sample's gradients
-- (transformed by post, e.g. abs), with the target fixed per sample from the clean input.
local function batched_grads(model, x, opts, per, point, post, fname)
  local n = x:size(1)
  local target = opts.target
  local ids
  if type(target) ~= "function" then
    ids = select(2, no_grad(targets.scores, no_grad(model, x), target, fname))
  end
  local bs = opts.batch_size
  local most = math.min(per, 32)
  local bar = util.progress(fname, n * per, opts.progress)
  local sums = {}
  for i = 1, n do
    local acc
    local r0 = 1
    while r0 <= per do
      local len = math.min(bs or 1, per - r0 + 1)
      local pts = {}
      for r = r0, r0 + len - 1 do pts[#pts + 1] = point(i, r) end
      local xin = core.stack(pts, 1):detach():set_requires_grad(true)
      local before = not bs and core.stats().bytes
      local out = model(xin)
      if not bs then
        local each = math.max(1, 2 * (core.stats().bytes - before))
        local budget = util.work_memory()
        bs = math.max(1, math.min(most, budget // each))
        if bs < most then
          util.warn(string.format("%s: %d point%s a batch, not %d: each takes about %.0f MB of the work_memory budget " ..
            "(%.0f MB; nv.config{work_memory = bytes}, or opts.batch_size)", fname, bs, bs == 1 and "" or "s", most,
            each / 2 ^ 20, budget / 2 ^ 20))
        end
      end
      local sc = type(target) == "function" and targets.scores(out, target, fname)
        or targets.scores(out, core.full({ len }, ids:get(i)), fname)
      local g = core.grad(sc:sum(), { xin })[1]
      if post then g = post(g) end
      g = g:sum(1)
      acc = acc and (acc + g) or g
      bar:step((i - 1) * per + r0 + len - 1)
      r0 = r0 + len
    end
    sums[i] = acc
  end
  bar:done()
  return core.stack(sums, 1)
end

register("smoothgrad", "input", "SmoothGrad", { "target", "samples", "noise_level", "batch_size", "progress" })
--- SmoothGrad (Smilkov et al. 2017, Eq. 3): mean over n noisy copies x + N(0, sigma^2) of
--- |dy/dx|, sigma = noise_level * (max x - min x); opts.samples (25), opts.noise_level (0.15);
--- the copies run opts.batch_size at a time (all of them, up to 32).
input_method("smoothgrad", function(model, x, opts)
  local n = opts.samples or 25
  -- sigma per sample, from its own range; the target class fixed from the clean input
  local flat = x:reshape(x:size(1), -1)
  local sigma = ((flat:max(2) - flat:min(2)) * (opts.noise_level or 0.15)):values()
  local acc = batched_grads(model, x, opts, n, function(i)
    local xi = x:select(1, i)
    return xi + core.randn(xi:shape()) * sigma[i]
  end, function(g) return g:abs() end, "smoothgrad")
  acc = acc / n
  return acc:max(2), acc
end)

register("integrated_gradients", "input", "Integrated Gradients", { "target", "steps", "baseline", "batch_size", "progress" })
--- Integrated Gradients (Sundararajan et al. 2017, Eq. 3, Riemann sum): attr = (x - x') *
--- mean_k dy/dx (x' + k/m (x - x')), k = 1..m; the attributions sum to y(x) - y(x').
--- opts.steps (32), opts.baseline (zeros); the steps run as one batch (opts.batch_size).
--- Map: |sum over channels of attr|.
input_method("integrated_gradients", function(model, x, opts)
  local m = opts.steps or 32
  local base = opts.baseline or core.zeros(x:shape())
  if base:dim() == 3 then base = base:unsqueeze(1) end
  local diff = x - base
  local acc = batched_grads(model, x, opts, m, function(i, k)
    local bi = base:select(1, base:size(1) == 1 and 1 or i)
    return bi + diff:select(1, i) * (k / m)
  end, nil, "integrated_gradients")
  local attr = diff * (acc / m)
  return attr:sum(2):abs(), attr
end)

register("guided_backprop", "input", "Guided Backprop", { "target" })
--- guided backpropagation (Springenberg et al. 2015): gradients through ReLUs that pass
--- only positive gradients at positive inputs.  Map: max over channels of |g|.
input_method("guided_backprop", function(model, x, opts)
  local g = input_grad(model, x, opts.target, "guided_backprop", { guided = true })
  return channel_max_abs(g), g
end)

register("guided_gradcam", "combined", "Guided Grad-CAM", layer_keys)
--- Guided Grad-CAM (Selvaraju et al. 2017, Sec. 3): guided backpropagation times the
--- upsampled Grad-CAM map
function M.guided_gradcam(model, x, opts)
  opts = util.check_opts("guided_gradcam", opts, M.known_options.guided_gradcam)
  local gb, g = M.guided_backprop(model, x, { target = opts.target })
  local gc = M.gradcam(model, x, opts)
  local prod = gb * gc
  local single = prod:dim() == 2
  local n = single and prod:unsqueeze(1) or prod
  local res = normalize(n)
  if single then res = res:select(1, 1) end
  return res, g * (single and gc:unsqueeze(1) or gc:unsqueeze(2))
end

-- ---- quality of a map (lua/nnvis/explain/metrics.lua) -----------------------------------------
local metrics = require "nnvis.explain.metrics"
M.ranks, M.deletion, M.insertion, M.confidence_change = metrics.ranks, metrics.deletion, metrics.insertion, metrics.confidence_change
for name, keys in pairs(metrics.known_options) do M.known_options[name] = keys end

--- Several methods side by side: each method's map laid over the image in a panel named in
--- full (Grad-CAM++, Integrated Gradients), one colorbar, and a title with the class and its
--- probability.  x: (C,H,W) or (N,C,H,W): a batch gives a row per sample, each panel titled
--- with its sample's class; opts: methods (default: M.methods), image (what the maps are laid
--- over, (C,H,W) or like x; default x rescaled to [0,1]), alpha, nrow, classes (names by class
--- id), scale, and the options every method takes (layer, target).  Returns an image
--- (3,H',W') that nv.show describes as a CAM comparison.
function M.compare(model, x, opts)
  opts = opts or {}
  -- compare's own keys; the rest go to every method
  local own = { methods = true, image = true, alpha = true, nrow = true, classes = true, scale = true }
  local pass = {}
  for k, v in pairs(opts) do if not own[k] then pass[k] = v end end
  local xb = as_batch(x, "compare")
  local imgs = {}
  for i = 1, xb:size(1) do
    local im = opts.image
    if im and im:dim() == 4 then im = im:select(1, i) end
    imgs[i] = im or require("nnvis.draw.image").normalize(xb:select(1, i))
  end
  local names = opts.methods or M.methods
  for _, name in ipairs(names) do
    if not M[name] then util.raise(string.format("compare: '%s' is not a CAM method", tostring(name))) end
  end
  local g = require("nnvis.explain.cam_figure").compare(model, xb, imgs, names, function(name) return M[name](model, xb, pass) end, opts)
  return require("nnvis.draw.figure").label(g, "CAM comparison", opts.layer, require("nnvis.draw.figure").layout_canvas(g))
end

-- ---- perturbation methods and LRP (lua/nnvis/explain/perturb.lua, lua/nnvis/explain/lrp.lua) ------------------
M.known_options.road = { "target", "fractions", "iterations", "noise", "seed", "batch_size" }

register("occlusion", "perturbation", "Occlusion", { "target", "patch", "stride", "baseline", "batch_size", "progress" })
--- nv.cam.occlusion, nv.cam.rise and nv.cam.lrp, like the input-gradient methods, return the
--- (N,H,W) map in [0,1] and the raw attribution (occlusion: the mean score drop (N,H,W); rise:
--- the saliency (N,H,W); lrp: the relevance (N,C,H,W)); their options are beside them in
--- lua/nnvis/explain/perturb.lua and lua/nnvis/explain/lrp.lua
input_method("occlusion", function(model, x, opts)
  local raw = require("nnvis.explain.perturb").occlusion(model, x, opts)
  return raw, raw
end)
register("rise", "perturbation", "RISE", { "target", "masks", "cells", "p", "seed", "batch_size", "progress" })
input_method("rise", function(model, x, opts)
  local raw = require("nnvis.explain.perturb").rise(model, x, opts)
  return raw, raw
end)
register("lrp", "relevance", "LRP", { "target", "composite", "epsilon", "gamma", "alpha", "beta", "low", "high", "rules", "merge_bn" })
input_method("lrp", function(model, x, opts)
  local R = require("nnvis.explain.lrp").lrp(model, x, opts)
  return R:sum(2):relu(), R
end)

--- ROAD (Rong et al. 2022): remove-and-debias curves of maps (N,H,W) for inputs x, most- and
--- least-relevant first, with noisy linear imputation: {fractions, morf, lerf, morf_auc,
--- lerf_auc, mean_morf_auc (low is good), mean_lerf_auc (high is good)}
function M.road(model, x, maps, opts)
  opts = util.check_opts("road", opts, M.known_options.road)
  local xb, single = as_batch(x, "road")
  if single and util.is_tensor(maps) and maps:dim() == 2 then maps = maps:unsqueeze(1) end
  return with_eval(model, function() return require("nnvis.explain.perturb").road(model, xb, maps, opts) end)
end

--- every method that takes (model, x, opts) and returns (N,H,W) maps
M.all_methods = methods.names()

--- maps laid over their images as a figure, titled with the class and its probability and
--- with a colorbar (nnvis.cam_figure.overlay: opts model, classes, target, labels, title,
--- method, alpha, colormap, nrow, scale)
function M.overlay(x, maps, opts) return require("nnvis.explain.cam_figure").overlay(x, maps, opts) end

return M

-- nnvis.explain.maximize — activation maximization (feature visualization, as in Olah et al. 2017,
-- "Feature Visualization", and the Lucid library): find an input that excites a channel, a
-- neuron or a class logit, by gradient ascent on a parameterized image under random
-- transformations, with regularizers.
--
--   local O = nv.objectives
--   local img = nv.maximize(model, {objective = O.channel("features.6", 3) + 0.5 * O.class(2),
--                                   size = {64, 64}, steps = 256, seed = 1})
--
-- Parameterizations: "pixel" (sigmoid of free pixels) and "fourier" (a 1/f-scaled spectrum,
-- with colors decorrelated for RGB, then a sigmoid), any number of input channels.
-- Transforms: padding, jitter, random scale, random rotation.  Regularizers: L2 / Lp,
-- total variation, blur.  Optimizer: Adam.  Seedable; a progress callback.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local check_opts = require("nnvis.tensor.util").check_opts
local F = require "nnvis.tensor.functional"

local M = {}

-- ---- objectives ---------------------------------------------------------------------------
local Objective = {}
Objective.__index = Objective

local function objective(terms) return setmetatable({ terms = terms }, Objective) end
local function is_objective(o) return getmetatable(o) == Objective end

local function scaled(o, w)
  local t = {}
  for i, term in ipairs(o.terms) do
    t[i] = setmetatable({ weight = term.weight * w }, { __index = term })
  end
  return objective(t)
end

function Objective.__add(a, b)
  if not is_objective(a) or not is_objective(b) then error("objectives: + joins two objectives", 2) end
  local t = {}
  for _, x in ipairs(a.terms) do t[#t + 1] = x end
  for _, x in ipairs(b.terms) do t[#t + 1] = x end
  return objective(t)
end
function Objective.__mul(a, b)
  if type(a) == "number" then return scaled(b, a) end
  if type(b) == "number" then return scaled(a, b) end
  error("objectives: * multiplies an objective by a number", 2)
end
function Objective.__div(a, b) return scaled(a, 1 / b) end
function Objective.__unm(a) return scaled(a, -1) end
function Objective.__sub(a, b) return a + (-b) end
function Objective.__tostring(o)
  local parts = {}
  for _, t in ipairs(o.terms) do parts[#parts + 1] = string.format("%g*%s", t.weight, t.desc) end
  return table.concat(parts, " + ")
end

--- whether an objective reads the model's output (else only the layers it names)
function Objective:uses_output()
  for _, t in ipairs(self.terms) do if t.uses_output then return true end end
  return false
end

--- the layers an objective reads
function Objective:layers()
  local set, list = {}, {}
  for _, t in ipairs(self.terms) do
    if t.layer and not set[t.layer] then set[t.layer] = true; list[#list + 1] = t.layer end
    for _, l in ipairs(t.layers_extra or {}) do
      if not set[l] then set[l] = true; list[#list + 1] = l end
    end
  end
  return list
end

local O = {}
M.objectives = O

--- mean activation of channel k (1-based) of a layer's output (N,C,h,w) or (N,C)
function O.channel(layer, k)
  return objective { { weight = 1, layer = layer, desc = string.format("channel(%s,%d)", layer, k),
    value = function(a) return a:select(2, k):mean() end } }
end

--- activation of channel k at one position (default: the centre) of a layer's output
function O.neuron(layer, k, pos)
  return objective { { weight = 1, layer = layer, desc = string.format("neuron(%s,%d)", layer, k),
    value = function(a)
      local c = a:select(2, k)
      if c:dim() == 1 then return c:mean() end
      local y = pos and pos[1] or (c:size(2) + 1) // 2
      local x = pos and pos[2] or (c:size(3) + 1) // 2
      return c:select(2, y):select(2, x):mean()
    end } }
end

--- the logit of class k (1-based) of the model's output (N, classes); with
--- opts.logprob, its log-probability instead (bounded above by 0, so the image stops
--- growing more extreme once the class is certain)
function O.class(k, opts)
  opts = check_opts("objectives.class", opts, { "logprob" })
  local logprob = opts and opts.logprob
  return objective { { weight = 1, desc = string.format(logprob and "logprob(%d)" or "class(%d)", k),
    uses_output = true,
    value = function(_, out)
      local o = out:reshape(out:size(1), -1)
      if logprob then o = core.log_softmax(o, 2) end
      return o:select(2, k):mean()
    end } }
end

--- mean squared activation of a whole layer (DeepDream's objective)
function O.layer(layer)
  return objective { { weight = 1, layer = layer, desc = string.format("layer(%s)", layer),
    value = function(a) return a:square():mean() end } }
end

--- any function(acts, out) -> scalar, where acts maps layer names to outputs
function O.custom(fn, layers, desc)
  return objective { { weight = 1, layers_extra = layers, desc = desc or "custom", uses_output = true,
    value = function(_, out, acts) return fn(acts, out) end } }
end

local function evaluate(obj, acts, out)
  local total
  for _, t in ipairs(obj.terms) do
    local v = t.value(t.layer and acts[t.layer] or nil, out, acts)
    v = v * t.weight
    total = total and (total + v) or v
  end
  return total
end

-- ---- parameterizations --------------------------------------------------------------------
-- Lucid's square root of ImageNet's color correlation (Olah et al.): decorrelated -> RGB
local COLOR_SQRT = { { 0.26, 0.09, 0.02 }, { 0.27, 0.00, -0.05 }, { 0.27, -0.09, 0.03 } }

local function color_matrix()
  local m = core.tensor(COLOR_SQRT)
  local maxnorm = m:square():sum(1):sqrt():max():item()
  return m / maxnorm
end

-- real inverse DFT of a half spectrum (a + ib) of size (C, H, W//2+1) as matrix products
-- with cosine and sine bases: x = Cy A Cx' - Sy A Sx' - Sy B Cx' - Cy B Sx'
local function fourier_basis(h, w)
  local wf = w // 2 + 1
  local cy, sy, cx, sx = {}, {}, {}, {}
  for y = 0, h - 1 do
    cy[y + 1], sy[y + 1] = {}, {}
    for u = 0, h - 1 do
      local a = 2 * math.pi * u * y / h
      cy[y + 1][u + 1], sy[y + 1][u + 1] = math.cos(a), math.sin(a)
    end
  end
  for v = 0, wf - 1 do
    cx[v + 1], sx[v + 1] = {}, {}
    local c = (v == 0 or (w % 2 == 0 and v == w // 2)) and 1 or 2   -- the half spectrum's weights
    for x = 0, w - 1 do
      local a = 2 * math.pi * v * x / w
      cx[v + 1][x + 1], sx[v + 1][x + 1] = c * math.cos(a), c * math.sin(a)
    end
  end
  local norm = 1 / math.sqrt(h * w)
  -- 1/f scaling of each frequency (Lucid: 1 / max(f, 1/max(h, w)))
  local scale = {}
  for u = 0, h - 1 do
    scale[u + 1] = {}
    local fy = (u <= (h - 1) // 2 and u or u - h) / h
    for v = 0, wf - 1 do
      local f = math.sqrt(fy * fy + (v / w) ^ 2)
      scale[u + 1][v + 1] = 1 / math.max(f, 1 / math.max(h, w))
    end
  end
  return { cy = core.tensor(cy) * norm, sy = core.tensor(sy) * norm, cx = core.tensor(cx), sx = core.tensor(sx),
           scale = core.tensor(scale), wf = wf }
end

local function make_param(kind, c, h, w, decorrelate)
  if kind == "pixel" then
    local p = (core.randn(1, c, h, w) * 0.01):set_requires_grad(true)
    return { p }, function() return p:sigmoid() end
  end
  if kind ~= "fourier" then error("maximize: param must be \"pixel\" or \"fourier\", got " .. tostring(kind), 3) end
  local b = fourier_basis(h, w)
  local re = (core.randn(c, h, b.wf) * 0.01):set_requires_grad(true)
  local im = (core.randn(c, h, b.wf) * 0.01):set_requires_grad(true)
  local cm = decorrelate and color_matrix() or nil
  return { re, im }, function()
    local a, bb = re * b.scale, im * b.scale
    local x = core.matmul(core.matmul(b.cy, a), b.cx) - core.matmul(core.matmul(b.sy, a), b.sx)
            - core.matmul(core.matmul(b.sy, bb), b.cx) - core.matmul(core.matmul(b.cy, bb), b.sx)
    if cm then   -- decorrelated color space -> RGB
      x = core.matmul(x:permute(2, 3, 1), cm:t()):permute(3, 1, 2)
    end
    return x:unsqueeze(1):sigmoid()
  end
end

-- ---- transforms and regularizers ------------------------------------------------------------
local function rand_int(a, b) return a + math.floor(core.rand(1):item() * (b - a + 1)) end
local function choice(list) return list[rand_int(1, #list)] end

local function jitter(x, d)
  if d <= 0 then return x end
  local h, w = x:size(3), x:size(4)
  local dy, dx = rand_int(0, d), rand_int(0, d)
  return x:narrow(3, dy + 1, h - d):narrow(4, dx + 1, w - d)
end

local function total_variation(x)
  local h, w = x:size(3), x:size(4)
  local dy = x:narrow(3, 2, h - 1) - x:narrow(3, 1, h - 1)
  local dx = x:narrow(4, 2, w - 1) - x:narrow(4, 1, w - 1)
  return dy:abs():mean() + dx:abs():mean()
end

local function blur(x)
  return core.avg_pool2d(x, 3, { stride = 1, padding = 1, count_include_pad = false })
end

local function first_conv_channels(model)
  for _, m in model:named_modules() do
    if m.kind == "Conv2d" and m.weight then return m.weight:size(2) end
  end
end

-- a model whose first weighted layer is a Linear (an MLP on flattened images) takes (N, D)
local function flat_input(model)
  for _, m in model:named_modules() do
    if m.kind == "Conv2d" and m.weight then return nil end
    if m.kind == "Linear" and m.weight then return m.weight:size(2) end
  end
end

-- the name of the ReLU that follows a convolution or linear layer in its container, if any:
-- Keras' conv layers include their ReLU, so their patterns are the ReLU's
local function relu_after(model, name)
  if type(name) ~= "string" then return nil end
  local parent, last = name:match("^(.*)%.([^.]+)$")
  if not parent then parent, last = "", name end
  local ok, pm = pcall(model.get, model, parent)
  if not ok or not pm or not pm.named_children then return nil end
  local prev
  for child, m in pm:named_children() do
    if prev == last and m.kind == "ReLU" then return parent == "" and child or (parent .. "." .. child) end
    prev = child
  end
end

--- nv.maximize(model, opts) -> image (C,H,W) in [0,1], and the history of objective values.
--- What to maximize: opts.objective, or opts.layer with opts.channel / opts.neuron, or
--- opts.class.  Image: opts.size ({64, 64} or a number), opts.channels (default the first
--- convolution's input channels, else 3), opts.param ("fourier" | "pixel"), opts.decorrelate
--- (true for 3 channels), opts.normalize = {mean = {...}, std = {...}} (the model's input
--- normalization).  Transforms: opts.pad (size/8), opts.jitter (size/16), opts.scales
--- ({1, 0.975, 1.025, 0.95, 1.05}), opts.rotations (degrees, {-5 .. 5}); false disables one.
--- Regularizers: opts.l2, opts.lp = {p =, weight =}, opts.tv, opts.blur (weights).
--- opts.steps (256), opts.lr (0.05), opts.seed, opts.progress(step, value, image).
function M.maximize(model, opts)
  opts = check_opts("maximize", opts, { "blur", "channel", "channels", "class", "decorrelate", "jitter", "l2", "layer", "logprob", "lp", "lr", "neuron", "normalize", "objective", "pad", "param", "position", "progress", "rotations", "scales", "seed", "size", "steps", "tv" })
  local obj = opts.objective
  if not obj then
    if opts.class then obj = O.class(opts.class)
    elseif opts.layer and opts.neuron then obj = O.neuron(opts.layer, opts.neuron, opts.position)
    elseif opts.layer and opts.channel then obj = O.channel(opts.layer, opts.channel)
    elseif opts.layer then obj = O.layer(opts.layer)
    else error("maximize: give opts.objective, or opts.layer with opts.channel or opts.neuron, or opts.class", 2) end
  end
  if not is_objective(obj) then error("maximize: opts.objective must be built from nv.objectives", 2) end
  local D = flat_input(model)
  local size = opts.size
  if size == nil and D then
    -- an MLP on flattened images: a square gray image of its D inputs when D is a square
    local s = math.floor(math.sqrt(D) + 0.5)
    size = s * s == D and { s, s } or { 1, D }
  end
  size = size or 64
  if type(size) == "number" then size = { size, size } end
  local h, w = size[1], size[2]
  local c = opts.channels or first_conv_channels(model) or (D and 1) or 3
  if D and c * h * w ~= D then
    error(string.format("maximize: the model takes %d inputs (its first Linear), but %dx%dx%d images hold %d; pass " ..
      "size = {h, w} and channels = c with c*h*w = %d", D, c, h, w, c * h * w, D), 2)
  end
  -- a seed makes the result repeatable; the caller's random stream is restored afterwards
  local rng = opts.seed and core.rng_state()
  if opts.seed then core.manual_seed(opts.seed) end
  local decorrelate = opts.decorrelate
  if decorrelate == nil then decorrelate = c == 3 end
  if decorrelate and c ~= 3 then error("maximize: color decorrelation needs 3 channels", 2) end
  local params, to_image = make_param(opts.param or "fourier", c, h, w, decorrelate)
  local optim = require("nnvis.nn.optim").Adam(params, { lr = opts.lr or 0.05 })
  local pad = opts.pad == false and 0 or (opts.pad or math.max(1, math.min(h, w) // 8))
  local jit = opts.jitter == false and 0 or (opts.jitter or math.max(1, math.min(h, w) // 16))
  local scales = opts.scales == false and { 1 } or (opts.scales or { 1, 0.975, 1.025, 0.95, 1.05 })
  local rotations = opts.rotations == false and { 0 } or (opts.rotations or { -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5 })
  local mean, std
  if opts.normalize then
    mean = core.tensor(opts.normalize.mean):view(1, c, 1, 1)
    std = core.tensor(opts.normalize.std):view(1, c, 1, 1)
  end
  -- hooks on the layers the objective reads.  When it reads no output, the forward stops
  -- as soon as they have all run: the layers above them are never computed.
  local acts, got = {}, 0
  local handles <close> = hooks()
  local layers = obj:layers()
  for _, name in ipairs(layers) do
    local r = relu_after(model, name)
    local m = require("nnvis.tensor.util").find_layer("maximize", model, name)
    if r and (m.kind == "Conv2d" or m.kind == "Linear") then
      require("nnvis.tensor.util").warn(string.format("maximize: layer '%s' is a %s whose output is not yet rectified; its " ..
        "patterns are flatter than Keras' (a Keras convolution includes its ReLU): '%s', the ReLU after it, gives those",
        name, m.kind, r))
    end
  end
  local STOP = {}
  local stop_early = #layers > 0 and not obj:uses_output()
  for _, name in ipairs(layers) do
    local m = require("nnvis.tensor.util").find_layer("maximize", model, name)
    handles:add(m, function(_, _, out)
      if acts[name] == nil then got = got + 1 end
      acts[name] = out
      if stop_early and got == #layers then error(STOP, 0) end
    end)
  end
  local history = {}
  local ok, err = pcall(require("nnvis.tensor.util").with_mode, model, false, function()
    for step = 1, opts.steps or 256 do
      local img = to_image()
      local x = img
      if pad > 0 then x = F.pad(x, { pad, pad, pad, pad }, { value = 0.5 }) end
      x = jitter(x, jit)
      local s = choice(scales)
      if s ~= 1 then
        x = core.interpolate(x, { size = { math.max(2, math.floor(x:size(3) * s + 0.5)), math.max(2, math.floor(x:size(4) * s + 0.5)) },
                                  mode = "bilinear" })
      end
      local r = choice(rotations)
      if r ~= 0 then x = core.rotate(x, r) end
      x = jitter(x, math.max(0, jit // 2))
      -- back to the model's input size (models with a fixed-size head need it)
      if x:size(3) ~= h or x:size(4) ~= w then x = core.interpolate(x, { size = { h, w }, mode = "bilinear" }) end
      if mean then x = (x - mean) / std end
      if D then x = x:reshape(x:size(1), D) end     -- an MLP takes the image flattened
      for k in pairs(acts) do acts[k] = nil end
      got = 0
      local out
      if stop_early then
        local fine, e = pcall(model, x)
        if not fine and e ~= STOP then error(e, 0) end
        if fine then out = e end
      else
        out = model(x)
      end
      local value = evaluate(obj, acts, out)
      local loss = -value
      if opts.l2 then loss = loss + (img - 0.5):square():mean() * opts.l2 end
      if opts.lp then loss = loss + ((img - 0.5):abs():pow(opts.lp.p or 6)):mean() * (opts.lp.weight or 1) end
      if opts.tv then loss = loss + total_variation(img) * opts.tv end
      if opts.blur then loss = loss + (img - blur(img):detach()):square():mean() * opts.blur end
      -- gradients for the image's parameters only: the model's .grad stay untouched
      local g = core.grad(loss, params)
      for i, p in ipairs(params) do p.grad = g[i] end
      optim:step()
      history[step] = value:item()
      if opts.progress then opts.progress(step, history[step], img) end
    end
  end)
  handles:remove()
  if rng then core.set_rng_state(rng) end
  if not ok then
    err = tostring(err)
    if opts.size == nil and (err:find("features, weight", 1, true) or err:find("input channels", 1, true)) then
      err = err .. string.format(" (nv.maximize feeds %dx%dx%d images by default; pass size = {h, w} and channels = c of the model's input)",
        c, h, w)
    end
    error("maximize: " .. err, 2)
  end
  local was = core.set_grad_enabled(false)
  local final = to_image():select(1, 1):detach()
  core.set_grad_enabled(was)
  return final, history
end

setmetatable(M, { __call = function(_, ...) return M.maximize(...) end })
return M

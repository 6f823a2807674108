-- nnvis.inspect.landscape — the loss surface around a model's weights (Li et al. 2018, "Visualizing
-- the Loss Landscape of Neural Nets"): the loss along one or two random directions, each
-- filter-normalized (every filter of the direction scaled to the norm of the same filter of
-- the weights; one-dimensional parameters such as biases and BatchNorm's left out), or along
-- the line between two sets of weights.  The loss is evaluated on a data subset in batches,
-- without gradients, in eval mode; the weights are restored afterwards, also on error.
--
--   local c = nv.landscape.line(model, {x = x, y = y})                 -- c.alphas, c.losses
--   local s = nv.landscape.surface(model, {x = x, y = y, steps = 21})  -- s.losses (21,21)
--   local l = nv.landscape.line(model, {x = x, y = y, to = other:state_dict()})
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

local KEYS = { "x", "y", "loss", "loss_fn", "batch_size", "range", "steps", "seed", "to", "directions", "max_samples" }

local function params_of(model)
  local list = {}
  for name, p in model:named_parameters() do list[#list + 1] = { name = name, p = p } end
  if #list == 0 then error("landscape: the model has no parameters", 3) end
  return list
end

--- a random filter-normalized direction for the model's parameters: a table name -> tensor
--- (zero for one-dimensional parameters); opts.seed (the caller's random stream is kept)
function M.direction(model, opts)
  opts = opts or {}
  local list = params_of(model)
  return util.with_seed(opts.seed, function()
    local d = {}
    for _, e in ipairs(list) do
      local w = e.p:detach()
      if w:dim() <= 1 then d[e.name] = core.zeros(w:shape())
      else
        local r = core.randn(w:shape())
        local n = w:size(1)
        local wn = w:reshape(n, -1):square():sum(2, true):sqrt()
        local rn = r:reshape(n, -1):square():sum(2, true):sqrt():clamp(1e-12, math.huge)
        d[e.name] = (r:reshape(n, -1) / rn * wn):reshape(w:shape())
      end
    end
    return d
  end)
end

-- the loss on the data: a user function of the model, or loss(model(x), y) averaged over batches
local function evaluator(model, opts, fname)
  if opts.loss_fn then
    if type(opts.loss_fn) ~= "function" then error(fname .. ": loss_fn must be a function of the model", 3) end
    return function() local v = opts.loss_fn(model); return util.is_tensor(v) and v:item() or v end
  end
  local x, y = opts.x, opts.y
  if not util.is_tensor(x) or y == nil then error(fname .. ": give the data as opts.x and opts.y, or opts.loss_fn(model)", 3) end
  local n = x:size(1)
  if opts.max_samples and opts.max_samples < n then n = opts.max_samples end
  local lossf = opts.loss or require("nnvis.tensor.functional").cross_entropy
  local bs = opts.batch_size or 256
  return function()
    local sum = 0
    for s = 1, n, bs do
      local len = math.min(bs, n - s + 1)
      local out = core.no_grad(model, x:narrow(1, s, len))
      local l = core.no_grad(lossf, out, y:narrow(1, s, len))
      sum = sum + l:item() * len
    end
    return sum / n
  end
end

-- runs f with the weights set to w0 + sum_k a_k d_k for the coefficient lists it asks, then
-- restores the weights
local function with_weights(model, fname, f)
  local list = params_of(model)
  local saved = {}
  for i, e in ipairs(list) do saved[i] = e.p:detach():clone() end
  local function set(coefs, dirs)
    core.no_grad(function()
      for i, e in ipairs(list) do
        local w = saved[i]
        for k, a in ipairs(coefs) do
          local d = dirs[k][e.name]
          if d and a ~= 0 then w = w + d * a end
        end
        e.p:copy(w)
      end
    end)
  end
  local ok, res = pcall(util.with_mode, model, false, f, set)
  core.no_grad(function() for i, e in ipairs(list) do e.p:copy(saved[i]) end end)
  if not ok then error(fname .. ": " .. tostring(res), 0) end
  return res
end

local function grid(range, steps)
  local lo, hi = range[1], range[2]
  local a = {}
  for i = 1, steps do a[i] = steps == 1 and lo or lo + (hi - lo) * (i - 1) / (steps - 1) end
  return a
end

--- line(model, opts) -> {alphas = {...}, losses = {...}, direction}: the loss at w + a d for
--- a in opts.range ({-1, 1}; {-0.5, 1.5} with `to`) at opts.steps (21) points.  d: a random
--- filter-normalized direction (opts.seed), opts.directions[1] (name -> tensor), or with
--- opts.to (a state dict: name -> tensor) the difference to those weights, so a = 0 is the
--- model and a = 1 the other.  Data: opts.x, opts.y (and opts.loss, batch_size, max_samples),
--- or opts.loss_fn(model) -> number.
function M.line(model, opts)
  opts = util.check_opts("landscape.line", opts, KEYS)
  local eval = evaluator(model, opts, "landscape.line")
  local d
  if opts.to then
    d = {}
    for name, p in model:named_parameters() do
      local t = opts.to[name]
      if not util.is_tensor(t) then error(string.format("landscape.line: opts.to has no tensor '%s'", name), 2) end
      d[name] = t:detach() - p:detach()
    end
  else
    d = (opts.directions and opts.directions[1]) or M.direction(model, { seed = opts.seed or 0 })
  end
  local alphas = grid(opts.range or (opts.to and { -0.5, 1.5 } or { -1, 1 }), opts.steps or 21)
  local losses = with_weights(model, "landscape.line", function(set)
    local out = {}
    for i, a in ipairs(alphas) do set({ a }, { d }); out[i] = eval() end
    return out
  end)
  return { alphas = alphas, losses = losses, direction = d }
end

--- surface(model, opts) -> {alphas, betas, losses (steps x steps tensor: row i is betas[i],
--- column j alphas[j]), directions = {d1, d2}}: the loss at w + a d1 + b d2 over the square
--- opts.range ({-1, 1}) with opts.steps (21) points per side; two random filter-normalized
--- directions (seeds opts.seed and opts.seed + 1) or opts.directions.  Data as for line.
function M.surface(model, opts)
  opts = util.check_opts("landscape.surface", opts, KEYS)
  local eval = evaluator(model, opts, "landscape.surface")
  local seed = opts.seed or 0
  local dirs = opts.directions or { M.direction(model, { seed = seed }), M.direction(model, { seed = seed + 1 }) }
  local steps = opts.steps or 21
  local alphas = grid(opts.range or { -1, 1 }, steps)
  local rows = with_weights(model, "landscape.surface", function(set)
    local out = {}
    for i, b in ipairs(alphas) do
      out[i] = {}
      for j, a in ipairs(alphas) do set({ a, b }, dirs); out[i][j] = eval() end
    end
    return out
  end)
  return { alphas = alphas, betas = alphas, losses = core.tensor(rows), directions = dirs }
end

return M

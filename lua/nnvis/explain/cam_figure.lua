-- nnvis.explain.cam_figure — class activation maps drawn for people (nv.cam.overlay, nv.cam.compare):
-- each map laid over its image in a panel titled with the class name and probability, one
-- colorbar for the shared [0,1] scale of the maps, and a title saying what is shown.
local core = require "nnvis.core"
local image = require "nnvis.draw.image"
local util = require "nnvis.tensor.util"

local M = {}

-- the names methods go by in their papers (each registers its own: nnvis.explain.methods)
local methods = require "nnvis.explain.methods"
M.names = setmetatable({}, { __index = function(_, k) return methods.title(k) end })

local function batch(x)
  if x:dim() == 3 then return x:unsqueeze(1) end
  return x
end

-- class ids and probabilities of model on inputs xb (N,C,H,W): the target's when given
local function predictions(model, xb, target, classes, fname)
  local out = util.with_mode(model, false, function()
    return core.no_grad(function() return model(xb) end)
  end)
  local p = util.probs(util.first_tensor(out):detach():reshape(xb:size(1), -1))
  util.check_classes(fname, classes, p:size(2))
  local ids, probs = {}, {}
  for i = 1, xb:size(1) do
    local t = type(target) == "table" and target[i] or target
    if type(t) ~= "number" then t = p:select(1, i):argmax(1):item() end
    t = math.tointeger(t) or t        -- a class id prints as 10, not 10.0
    ids[i], probs[i] = t, p:get(i, t)
  end
  return ids, probs
end

local function class_name(names, id)
  return names and names[id] and tostring(names[id]) or ("class " .. id)
end

--- Maps laid over their images as a figure.  x: images (C,H,W) or (N,C,H,W) in [0,1];
--- maps (H,W) or (N,H,W) in [0,1].  opts: model (then each panel's title gives the class
--- and its probability, for opts.input = what the model takes, default x), classes (names
--- by class id), target (class ids whose probability is shown; default the top class),
--- labels (panel titles instead), title, method (its name for the title), alpha (0.5),
--- colormap ("jet"), nrow, scale.  Returns a (3,H,W) image labelled "CAM overlay".
function M.overlay(x, maps, opts)
  opts = util.check_opts("cam.overlay", opts, { "alpha", "classes", "colormap", "input", "labels", "method", "model", "nrow", "scale", "target", "title" })
  if x:dim() == 5 then
    -- a clip (N,C,T,H,W) and its maps (N,T,H,W): a grid of frames, a row per clip
    local n, c, t, h, w = table.unpack(x:shape())
    if maps:dim() ~= 4 or maps:size(1) ~= n or maps:size(2) ~= t then
      util.raise(string.format("cam.overlay: a clip %s needs maps (N,T,H,W) = (%d,%d,H,W), got %s", util.shape_str(x), n, t,
        util.shape_str(maps)))
    end
    local frames = x:detach():permute(1, 3, 2, 4, 5):reshape(n * t, c, h, w)
    local fm = maps:detach():reshape(n * t, maps:size(3), maps:size(4))
    local labels = opts.labels
    if not labels then
      labels = {}
      for i = 1, n do for k = 1, t do labels[#labels + 1] = n > 1 and string.format("clip %d, frame %d", i, k) or ("frame " .. k) end end
    end
    local o = {}
    for k, v in pairs(opts) do if k ~= "model" and k ~= "input" and k ~= "target" and k ~= "classes" then o[k] = v end end
    o.labels, o.nrow = labels, opts.nrow or t
    o.title = opts.title or string.format("%s over time: a row per clip, a panel per frame",
      opts.method and (M.names[opts.method] or opts.method) or "class activation map")
    return M.overlay(frames, fm, o)
  end
  local xb = batch(x:detach())
  local mb = maps:dim() == 2 and maps:unsqueeze(1) or maps
  local n = xb:size(1)
  if mb:size(1) ~= n then
    error(string.format("cam.overlay: %d images but %d maps", n, mb:size(1)), 2)
  end
  local labels = opts.labels
  if not labels and opts.model then
    local ids, probs = predictions(opts.model, batch(opts.input or x), opts.target, opts.classes, "cam.overlay")
    labels = {}
    for i = 1, n do labels[i] = string.format("%s  p=%.2f", class_name(opts.classes, ids[i]), probs[i]) end
  end
  -- the image and its colored map drawn one over the other by Cairo (opacity alpha)
  local tiles, over = {}, {}
  local cmap = opts.colormap or "jet"
  local h, w = xb:size(3), xb:size(4)
  for i = 1, n do
    tiles[i] = image.to_rgb(xb:select(1, i))
    local m = mb:select(1, i):detach()
    if m:size(1) ~= h or m:size(2) ~= w then m = image.resize(m, { h, w }) end
    over[i] = require("nnvis.draw.colormap").apply(m, cmap)
  end
  local method = opts.method and (M.names[opts.method] or opts.method)
  local target = opts.target and "the target class" or "the predicted class"
  local title = opts.title or string.format("%s of %s over %s%s", method or "class activation map", target,
    n > 1 and ("each of " .. n .. " inputs") or "the input",
    opts.labels and "" or opts.model and "; above each: the class and its probability" or "")
  return image.panels(tiles, { labels = labels, title = title, nrow = opts.nrow, scale = opts.scale, kind = "CAM overlay",
                               over = over, alpha = opts.alpha or 0.5,
                             colorbar = { vmin = 0, vmax = 1, colormap = cmap, label = "relevance (normalized)" } })
end

--- Several methods side by side (nv.cam.compare's drawing): opts as nv.cam.compare's;
--- maps_of(name) returns a method's (N,H,W) maps of the batch xb, imgs[i] sample i's image.
--- One sample: a panel per method and its class in the title; N samples: a row per sample.
function M.compare(model, xb, imgs, names, maps_of, opts)
  local n = xb:size(1)
  local ids, probs = predictions(model, xb, opts.target, opts.classes, "cam.compare")
  local tiles, labels = {}, {}
  for j, name in ipairs(names) do
    local maps = maps_of(name)
    for i = 1, n do
      local k = (i - 1) * #names + j
      tiles[k] = image.overlay(imgs[i], maps:select(1, i), { alpha = opts.alpha })
      labels[k] = M.names[name] or name
      if n > 1 then labels[k] = string.format("%s: %s %.2f", labels[k], class_name(opts.classes, ids[i]), probs[i]) end
    end
  end
  local what = n == 1 and string.format("%s (p=%.2f)", class_name(opts.classes, ids[1]), probs[1])
    or string.format("%d inputs (a row each, with its class)", n)
  local title = string.format("%d explanation methods for %s%s", #names, what,
    opts.layer and (", layer " .. opts.layer) or "")
  return image.grid(tiles, { nrow = n > 1 and #names or opts.nrow, labels = labels, title = title, scale = opts.scale,
                             kind = "CAM comparison",
                             colorbar = { vmin = 0, vmax = 1, colormap = "jet", label = "relevance (normalized)" } })
end

return M

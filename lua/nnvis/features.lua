-- nnvis.features — what a layer sees: one layer's activations for an input as a labelled
-- grid of feature maps, and a convolution's weights as a grid of filters (RGB for
-- 3-channel first layers, one tile per input channel otherwise).
local core = require "nnvis.core"
local check_opts = require("nnvis.util").check_opts
local image = require "nnvis.image"
local label = require("nnvis.figure").label

local M = {}

local function upscale(t, min_size)
  -- nearest-neighbour upscaling so that tiny maps and 3x3 filters stay visible
  local h, w = t:size(t:dim() - 1), t:size(t:dim())
  local f = math.max(1, math.ceil(min_size / math.max(h, w)))
  if f == 1 then return t end
  local x = t:dim() == 2 and t:unsqueeze(1) or t
  local y = core.interpolate(x, { size = { h * f, w * f }, mode = "nearest" })
  return t:dim() == 2 and y:select(1, 1) or y
end

--- Feature maps of `layer` for input x (one sample: (C,H,W) or (1,C,H,W)) as a grid image.
--- opts: max_channels (64), colormap ("viridis"; false for gray), per_tile (true: each map
--- scaled to its own range; false: one range for all), tile (min tile size, 48), nrow,
--- labels (true: "k max=..." captions).  Returns the image and the activations (C,h,w).
function M.maps(model, x, layer, opts)
  opts = check_opts("features.maps", opts, { "colormap", "labels", "max_channels", "max_tiles", "nrow", "per_tile", "tile" })
  if x:dim() == 3 then x = x:unsqueeze(1) end
  if x:size(1) ~= 1 then x = x:narrow(1, 1, 1) end
  local cap = require("nnvis.capture").capture(model, x, { layers = { layer } })
  local e = cap[layer]
  if not e then error(string.format("maps: layer '%s' produced no tensor output", layer), 2) end
  local a = e.output:select(1, 1)
  if a:dim() == 1 then a = a:view(a:size(1), 1, 1) end
  if a:dim() ~= 3 then error("maps: expected the layer to output (1,C,h,w), got (" .. table.concat(e.output:shape(), ",") .. ")", 2) end
  local c = math.min(a:size(1), opts.max_channels or 64)
  local lo, hi = a:min():item(), a:max():item()
  local tiles, labels = {}, {}
  local per_tile = opts.per_tile ~= false
  for k = 1, c do
    local m = a:select(1, k)
    local n = per_tile and image.normalize(m) or image.normalize(m, { min = lo, max = hi })
    n = upscale(n, opts.tile or 48)
    tiles[k] = opts.colormap == false and n:unsqueeze(1) or image.colormap(n, opts.colormap or "viridis")
    labels[k] = string.format("%d", k)
    if opts.labels ~= false then labels[k] = string.format("%d %.2g", k, m:max():item()) end
  end
  local g = image.grid(tiles, { nrow = opts.nrow, padding = 3, labels = labels })
  local pic = image.caption(g, string.format("%s: %d of %d channels, %dx%d", layer, c, a:size(1), a:size(2), a:size(3)))
  return label(pic, "feature maps", layer), a
end

--- A convolution's weights (Cout, Cin, kh, kw) as a grid.  First layers with 3 input
--- channels show one RGB tile per filter; otherwise one tile per (output, input) channel
--- pair, up to opts.max_tiles (256), with a diverging scale centred on zero.  opts: tile
--- (min tile size, 32), nrow, colormap (for single-channel tiles, default "gray").
--- layer_or_weight: a dotted layer name of model, or a weight tensor.
function M.filters(model, layer_or_weight, opts)
  opts = check_opts("features.filters", opts, { "colormap", "labels", "max_tiles", "nrow", "per_channel", "tile" })
  local w = layer_or_weight
  local title = "filters"
  if type(layer_or_weight) == "string" then
    local m = model:get(layer_or_weight)
    if not m or not m.weight then error(string.format("filters: layer '%s' has no weight", layer_or_weight), 2) end
    w = m.weight
    title = layer_or_weight
  end
  w = w:detach()
  if w:dim() ~= 4 then error("filters: expected a conv weight (Cout,Cin,kh,kw), got (" .. table.concat(w:shape(), ",") .. ")", 2) end
  local co, ci = w:size(1), w:size(2)
  -- one symmetric range for all filters, so 0 is mid-gray and signs are comparable
  local a = math.max(math.abs(w:min():item()), math.abs(w:max():item()), 1e-12)
  local scaled = (w / (2 * a) + 0.5):clamp(0, 1)
  local tiles, labels = {}, {}
  if ci == 3 and not opts.per_channel then
    for o = 1, co do
      tiles[o] = upscale(scaled:select(1, o), opts.tile or 32)
      labels[o] = tostring(o)
    end
  else
    local limit = opts.max_tiles or 256
    for o = 1, co do
      for i = 1, ci do
        if #tiles >= limit then break end
        local t = upscale(scaled:select(1, o):select(1, i), opts.tile or 32)
        tiles[#tiles + 1] = image.colormap(t, opts.colormap or "gray")
        labels[#labels + 1] = string.format("%d.%d", o, i)
      end
    end
  end
  local g = image.grid(tiles, { nrow = opts.nrow or ((ci == 3 or ci == 1) and math.ceil(math.sqrt(#tiles)) or ci <= 16 and ci or nil),
                                padding = 3, labels = opts.labels ~= false and labels or nil })
  return label(image.caption(g, string.format("%s: %dx%dx%dx%d, range +-%.3g", title, co, ci, w:size(3), w:size(4), a)),
    "filters", title)
end

return M

-- nnvis.inspect.features — what a layer sees: one layer's activations for an input as a labelled
-- grid of feature maps, and a convolution's weights as a grid of filters (RGB for
-- 3-channel first layers, one tile per input channel otherwise).
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local image = require "nnvis.draw.image"
local label = require("nnvis.draw.figure").label

local M = {}

--- Feature maps of `layer` for input x as a figure: a grid of maps, each enlarged
--- (nearest-neighbour) to a readable size.  x: one sample (C,H,W) or (1,C,H,W), or a batch
--- (N,C,H,W), drawn a row per sample ("s2 #5": sample 2, channel 5).  opts: max_channels
--- (64 for one sample, 16 a sample for a batch), colormap ("viridis"; false for gray),
--- per_tile (true: each map scaled to its own range, its maximum in its label; false: one
--- range for all and one colorbar), nrow, labels (false: channel numbers only), scale, tile
--- (the least tile side in pixels; never under nv.style.min_panel_px, 160).  The title says
--- which channels of how many are shown.  Returns the image and the activations: (C,h,w)
--- for one sample, (N,C,h,w) for a batch.
function M.maps(model, x, layer, opts)
  opts = check_opts("features.maps", opts, { "colormap", "labels", "max_channels", "max_tiles", "nrow", "per_tile", "scale", "tile" })
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local n = x:size(1)
  local cap = require("nnvis.inspect.capture").capture(model, x, { layers = { layer } })
  local e = cap[layer]
  if not e then error(string.format("maps: layer '%s' produced no tensor output", layer), 2) end
  local out = e.output
  if out:dim() == 5 then
    -- a clip's activations (N,C,T,h,w): a strip of frames per channel (one clip)
    if n ~= 1 then error("maps: a video layer's maps are drawn for one clip; pass x:narrow(1, i, 1)", 2) end
    local C, T = out:size(2), out:size(3)
    local c = math.min(C, opts.max_channels or 8)
    local tiles, labels = {}, {}
    local cmap = opts.colormap == false and "gray" or opts.colormap or "viridis"
    for k = 1, c do
      for t = 1, T do
        local m = out:select(1, 1):select(1, k):select(1, t)
        tiles[#tiles + 1] = image.colormap(image.normalize(m), cmap)
        labels[#labels + 1] = string.format("#%d t%d", k, t)
      end
    end
    local title = string.format("%s activations over time: %s%d channels (a row each) x %d frames, %dx%d", layer,
      c < C and (c .. " of ") or "all ", C, T, out:size(4), out:size(5))
    local g = image.grid(tiles, { nrow = T, labels = opts.labels ~= false and labels or nil, title = title,
                                  scale = opts.scale, kind = "feature maps" })
    return label(g, "feature maps", layer, require("nnvis.draw.figure").layout_canvas(g)), out:select(1, 1)
  end
  if out:dim() == 2 then out = out:view(out:size(1), out:size(2), 1, 1) end
  if out:dim() ~= 4 or out:size(1) ~= n then
    error("maps: expected the layer to output (N,C,h,w), got (" .. table.concat(e.output:shape(), ",") .. ")", 2)
  end
  local C = out:size(2)
  local c = math.min(C, opts.max_channels or (n == 1 and 64 or 16))
  local shown = out:narrow(2, 1, c)
  local lo, hi = shown:min():item(), shown:max():item()
  local tiles, labels = {}, {}
  local per_tile = opts.per_tile ~= false
  local cmap = opts.colormap == false and "gray" or opts.colormap or "viridis"
  for i = 1, n do
    local a = out:select(1, i)
    for k = 1, c do
      local m = a:select(1, k)
      local t = #tiles + 1
      local norm = per_tile and image.normalize(m) or image.normalize(m, { min = lo, max = hi })
      tiles[t] = image.colormap(norm, cmap)
      local name = n > 1 and string.format("s%d #%d", i, k) or string.format("#%d", k)
      labels[t] = name
      if opts.labels ~= false and per_tile then labels[t] = string.format("%s max %.2g", name, m:max():item()) end
    end
  end
  local title = string.format("%s activations%s: %s%d channels, %dx%d, %s", layer,
    n > 1 and string.format(" of %d inputs (a row each)", n) or "", c < C and (c .. " of ") or "all ",
    C, out:size(3), out:size(4),
    per_tile and "each scaled to its own range (#channel, its max)" or "one scale")
  local g = image.grid(tiles, { nrow = opts.nrow or (n > 1 and c or nil), labels = labels, title = title, scale = opts.scale,
                                kind = "feature maps",
                                min_px = opts.tile and math.max(opts.tile, require("nnvis.draw.style").min_panel_px),
                                colorbar = not per_tile and { vmin = lo, vmax = hi, colormap = cmap, label = "activation" } or nil })
  return label(g, "feature maps", layer, require("nnvis.draw.figure").layout_canvas(g)), n == 1 and out:select(1, 1) or out
end

--- A convolution's weights (Cout, Cin, kh, kw) as a figure.  First layers with 3 input
--- channels show one RGB tile per filter; otherwise one tile per (output, input) channel
--- pair ("o.i"), up to opts.max_tiles (64), on one diverging scale centred on zero with its
--- colorbar; the title says how many of how many are shown.  opts: nrow, colormap (for
--- single-channel tiles, default "RdBu_r": negative blue, zero white, positive red), labels (false: none), per_channel, scale, tile (the
--- least tile side in pixels, at least nv.style.min_panel_px).
--- layer_or_weight: a dotted layer name of model, or a weight tensor.
function M.filters(model, layer_or_weight, opts)
  opts = check_opts("features.filters", opts, { "colormap", "labels", "max_tiles", "nrow", "per_channel", "scale", "tile" })
  local w = layer_or_weight
  local title, name = "filters", nil
  if type(layer_or_weight) == "string" then
    local m = model:get(layer_or_weight)
    if not m or not m.weight then error(string.format("filters: layer '%s' has no weight", layer_or_weight), 2) end
    w = m.weight
    title, name = layer_or_weight .. " filters", layer_or_weight
  end
  w = w:detach()
  if w:dim() ~= 4 then error("filters: expected a conv weight (Cout,Cin,kh,kw), got (" .. table.concat(w:shape(), ",") .. ")", 2) end
  local co, ci = w:size(1), w:size(2)
  -- one symmetric range for all filters, so 0 is mid-gray and signs are comparable
  local a = math.max(math.abs(w:min():item()), math.abs(w:max():item()), 1e-12)
  local scaled = (w / (2 * a) + 0.5):clamp(0, 1)
  local tiles, labels = {}, {}
  -- signed weights on a diverging map centred on zero: negative blue, zero white, positive red
  local cmap = opts.colormap or "RdBu_r"
  local rgb = ci == 3 and not opts.per_channel
  local total = rgb and co or co * ci
  if rgb then
    for o = 1, math.min(co, opts.max_tiles or 64) do
      tiles[o] = scaled:select(1, o)
      labels[o] = tostring(o)
    end
  else
    local limit = opts.max_tiles or 64
    for o = 1, co do
      for i = 1, ci do
        if #tiles >= limit then break end
        tiles[#tiles + 1] = image.colormap(scaled:select(1, o):select(1, i), cmap)
        labels[#labels + 1] = ci == 1 and tostring(o) or string.format("%d.%d", o, i)
      end
    end
  end
  local shown = #tiles < total and string.format("%d of %d", #tiles, total) or string.format("all %d", total)
  local what = rgb and "RGB filters" or ci == 1 and "kernels (tile: output channel)" or "kernels (tile o.i: output o, input i)"
  local full = string.format("%s: %s %s of %dx%dx%dx%d, one scale", title, shown, what, co, ci, w:size(3), w:size(4))
  local g = image.grid(tiles, { nrow = opts.nrow or ((ci == 3 or ci == 1) and math.ceil(math.sqrt(#tiles)) or ci <= 16 and ci or nil),
                                labels = opts.labels ~= false and labels or nil, title = full, scale = opts.scale, kind = "filters",
                                min_px = opts.tile and math.max(opts.tile, require("nnvis.draw.style").min_panel_px),
                                colorbar = { vmin = -a, vmax = a, colormap = rgb and "gray" or cmap, label = rgb and "weight (per color channel)" or "weight" } })
  return label(g, "filters", name or title, require("nnvis.draw.figure").layout_canvas(g))
end

return M

-- nnvis.image — images as (C,H,W) float tensors in [0,1]: PNG load/save, colormaps,
-- normalization, resizing, overlays of heatmaps, grids with padding and per-tile
-- normalization, heatmaps with a colorbar, and captions in the built-in bitmap font.
local core = require "nnvis.core"
local io_ = require "nnvis.io"
local cmap = require "nnvis.colormap"
local Canvas = require "nnvis.canvas"

local M = {}

local shape_str, is_tensor = require("nnvis.util").shape_str, require("nnvis.util").is_tensor

--- PNG -> (C,H,W) float tensor in [0,1]; opts.mode "rgb" | "gray", opts.size {h, w}.
--- Returns nil, message for files that cannot be read.
M.load = io_.load_image

--- (C,H,W) or (H,W) tensor in [0,1] -> PNG (values clamped). true, or nil, message.
M.save = io_.save_image

M.colormaps = cmap.names

--- (H,W) or (1,H,W) map in [0,1] -> (3,H,W) RGB through a named colormap
--- (gray, jet, viridis, magma, inferno, turbo)
function M.colormap(map, name)
  if not is_tensor(map) then error("colormap: expected a tensor map", 2) end
  if map:dim() == 3 and map:size(1) == 1 then map = map:select(1, 1) end
  if map:dim() ~= 2 then error("colormap: expected an (H,W) map, got " .. shape_str(map), 2) end
  return cmap.apply(map, name or "viridis")
end

--- linearly rescales t so that [min, max] (default: t's own range) maps to [0,1];
--- a constant tensor maps to zeros
function M.normalize(t, opts)
  opts = opts or {}
  t = t:detach()
  local lo = opts.min or t:min():item()
  local hi = opts.max or t:max():item()
  if hi - lo <= 1e-12 then return core.zeros(t:shape()) end
  return ((t - lo) / (hi - lo)):clamp(0, 1)
end

--- (C,H,W) or (H,W) -> resized to {h, w}; mode "bilinear" (default) or "nearest"
function M.resize(img, size, mode)
  if type(size) == "number" then size = { size, size } end
  local two = img:dim() == 2
  local x = two and img:unsqueeze(1) or img
  if x:dim() ~= 3 then error("resize: expected (C,H,W) or (H,W), got " .. shape_str(img), 2) end
  local y = core.interpolate(x, { size = size, mode = mode or "bilinear", align_corners = false })
  return two and y:select(1, 1) or y
end

--- any image (1, 2, 3 or 4 channels, or (H,W)) as (3,H,W) RGB
function M.to_rgb(img)
  if img:dim() == 2 then img = img:unsqueeze(1) end
  local c = img:size(1)
  if c == 3 then return img end
  if c == 4 then return img:narrow(1, 1, 3) end
  if c == 1 or c == 2 then return img:narrow(1, 1, 1):expand(3, img:size(2), img:size(3)):contiguous() end
  error("to_rgb: expected 1 to 4 channels, got " .. shape_str(img), 2)
end

--- Lays a heatmap over an image: heat (H',W') or (1,H',W') in [0,1] (opts.normalize = true
--- rescales it first) is resized to the image, colored (opts.colormap, default "jet") and
--- blended: out = (1 - alpha) * image + alpha * color (opts.alpha, default 0.5).
function M.overlay(img, heat, opts)
  opts = opts or {}
  if not is_tensor(img) or not is_tensor(heat) then error("overlay: expected an image and a heatmap tensor", 2) end
  local rgb = M.to_rgb(img:detach())
  if heat:dim() == 3 and heat:size(1) == 1 then heat = heat:select(1, 1) end
  if heat:dim() ~= 2 then error("overlay: heatmap must be (H,W) or (1,H,W), got " .. shape_str(heat), 2) end
  heat = heat:detach()
  if opts.normalize then heat = M.normalize(heat) end
  local h, w = rgb:size(2), rgb:size(3)
  if heat:size(1) ~= h or heat:size(2) ~= w then heat = M.resize(heat, { h, w }) end
  local alpha = opts.alpha or 0.5
  if alpha < 0 or alpha > 1 then error("overlay: alpha must be in [0, 1]", 2) end
  local colored = cmap.apply(heat:clamp(0, 1), opts.colormap or "jet")
  return (rgb * (1 - alpha) + colored * alpha):clamp(0, 1)
end

--- Arranges images in a grid: imgs is an (N,C,H,W) tensor or a list of (C,H,W) / (H,W)
--- tensors (resized to the first one's size).  opts: nrow (images per row, default
--- ceil(sqrt(N))), padding (2), pad_value (1 = white), normalize (rescale the whole batch
--- to [0,1]), per_tile (rescale each image to its own [0,1]), labels (a caption per tile),
--- label_scale (1).  Returns a (C,H',W') image, C = 3 when the tiles mix channel counts
--- or labels are drawn.
function M.grid(imgs, opts)
  opts = opts or {}
  local list = {}
  if is_tensor(imgs) then
    if imgs:dim() ~= 4 then error("grid: expected (N,C,H,W) or a list of images, got " .. shape_str(imgs), 2) end
    for i = 1, imgs:size(1) do list[i] = imgs:select(1, i) end
  else
    for i, t in ipairs(imgs) do list[i] = t:dim() == 2 and t:unsqueeze(1) or t end
  end
  local n = #list
  if n == 0 then error("grid: no images", 2) end
  local c, h, w = list[1]:size(1), list[1]:size(2), list[1]:size(3)
  local mixed = false
  for i = 2, n do if list[i]:size(1) ~= c then mixed = true end end
  if mixed or opts.labels then c = 3 end
  if opts.normalize and not opts.per_tile then
    local lo, hi = math.huge, -math.huge
    for _, t in ipairs(list) do lo = math.min(lo, t:min():item()); hi = math.max(hi, t:max():item()) end
    for i, t in ipairs(list) do list[i] = M.normalize(t, { min = lo, max = hi }) end
  end
  local nrow = opts.nrow or math.ceil(math.sqrt(n))
  local rows = math.ceil(n / nrow)
  local pad = opts.padding or 2
  local scale = opts.label_scale or 1
  local lh = opts.labels and (8 * scale + 2) or 0
  local H = rows * (h + lh + pad) + pad
  local W = nrow * (w + pad) + pad
  local out = core.full({ c, H, W }, opts.pad_value or 1)
  local canvas = c == 3 and Canvas.wrap(out) or nil
  for i, t in ipairs(list) do
    t = t:detach()
    if t:size(2) ~= h or t:size(3) ~= w then t = M.resize(t, { h, w }) end
    if opts.per_tile then t = M.normalize(t) end
    if c == 3 then t = M.to_rgb(t) end
    local r, col = (i - 1) // nrow, (i - 1) % nrow
    local y, x = pad + r * (h + lh + pad) + lh + 1, pad + col * (w + pad) + 1
    out:narrow(2, y, h):narrow(3, x, w):copy(t:clamp(0, 1))
    if opts.labels and opts.labels[i] then
      local s = tostring(opts.labels[i])
      local maxc = math.max(1, w // (6 * scale))
      if #s > maxc then s = s:sub(1, maxc) end
      canvas:text(x, y - lh, s, opts.label_color or { 0, 0, 0 }, scale)
    end
  end
  return out
end

--- Adds a caption strip above an image (any channel count; the result is RGB).
--- opts.scale (1), opts.color ({0,0,0}), opts.bg (white)
function M.caption(img, text, opts)
  opts = opts or {}
  local rgb = M.to_rgb(img:detach())
  local scale = opts.scale or 1
  local lines = {}
  for line in (tostring(text) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  local lh = 8 * scale + 2
  local w = rgb:size(3)
  for _, l in ipairs(lines) do w = math.max(w, Canvas.text_width(l, scale) + 4) end
  local cv = Canvas.new(w, rgb:size(2) + #lines * lh + 2, opts.bg or 1)
  for i, l in ipairs(lines) do cv:text(3, 2 + (i - 1) * lh, l, opts.color or { 0, 0, 0 }, scale) end
  cv:paste(rgb, 1 + (w - rgb:size(3)) // 2, #lines * lh + 3)
  return cv:tensor()
end

--- draws text onto a copy of an image at (x, y) (1-based, top-left)
function M.text(img, text, x, y, opts)
  opts = opts or {}
  local out = M.to_rgb(img:detach()):clone()
  Canvas.wrap(out):text(x or 1, y or 1, text, opts.color or { 1, 1, 1 }, opts.scale or 1)
  return out
end

--- Picture of any 2-D tensor (a weight matrix, an attention-like map) with a colorbar:
--- values mapped through opts.colormap ("viridis") between opts.vmin and opts.vmax
--- (default: the data's range), each cell opts.cell pixels (auto, aiming at ~320 px),
--- optional opts.title.  Returns a (3,H,W) image.
function M.heatmap(t, opts)
  opts = opts or {}
  if not is_tensor(t) then error("heatmap: expected a tensor", 2) end
  if t:dim() == 1 then t = t:unsqueeze(1) end
  if t:dim() ~= 2 then error("heatmap: expected a 2-D tensor, got " .. shape_str(t), 2) end
  t = t:detach()
  local rows, cols = t:size(1), t:size(2)
  local vmin = opts.vmin or t:min():item()
  local vmax = opts.vmax or t:max():item()
  local cell = opts.cell or math.max(1, math.floor(320 / math.max(rows, cols)))
  local mh, mw = rows * cell, cols * cell
  local colored = cmap.apply(M.normalize(t, { min = vmin, max = vmax }), opts.colormap or "viridis")
  if cell > 1 then colored = core.interpolate(colored, { size = { mh, mw }, mode = "nearest" }) end
  local title_h = opts.title and 14 or 0
  local labels = { string.format("%.3g", vmax), string.format("%.3g", (vmin + vmax) / 2), string.format("%.3g", vmin) }
  local lw = 0
  for _, s in ipairs(labels) do lw = math.max(lw, Canvas.text_width(s)) end
  local bar_w, gap = 14, 8
  local W = 4 + mw + gap + bar_w + 4 + lw + 4
  local H = title_h + 4 + math.max(mh, 40) + 4
  local cv = Canvas.new(W, H, 1)
  if opts.title then cv:text(4, 3, opts.title, { 0, 0, 0 }) end
  local top = title_h + 5
  cv:paste(colored, 5, top)
  -- colorbar: top = vmax, bottom = vmin
  local bh = math.max(mh, 40)
  local ramp = (core.arange(bh - 1, -1, -1) / math.max(bh - 1, 1)):view(bh, 1):expand(bh, bar_w):contiguous()
  local bx = 5 + mw + gap
  cv:paste(cmap.apply(ramp, opts.colormap or "viridis"), bx, top)
  cv:box(bx - 1, top - 1, bar_w + 2, bh + 2, { 0, 0, 0 })
  cv:text(bx + bar_w + 4, top, labels[1], { 0, 0, 0 })
  cv:text(bx + bar_w + 4, top + bh // 2 - 4, labels[2], { 0, 0, 0 })
  cv:text(bx + bar_w + 4, top + bh - 8, labels[3], { 0, 0, 0 })
  return cv:tensor()
end

return M

-- nnvis.image — images as (C,H,W) float tensors in [0,1]: PNG and JPEG load/save,
-- torchvision's evaluation transform (preprocess) and its inverse, colormaps,
-- normalization, resizing, overlays of heatmaps, grids with padding and per-tile
-- normalization, heatmaps with a colorbar, and captions in the built-in bitmap font.
local core = require "nnvis.core"
local check_opts = require("nnvis.util").check_opts
local io_ = require "nnvis.io"
local cmap = require "nnvis.colormap"
local Canvas = require "nnvis.canvas"
local label = require("nnvis.figure").label   -- so nv.show can say what a picture is

local M = {}

local shape_str, is_tensor = require("nnvis.util").shape_str, require("nnvis.util").is_tensor

--- PNG or JPEG -> (C,H,W) float tensor in [0,1]; opts.mode "rgb" | "gray", opts.size {h, w}.
--- Returns nil, message for files that cannot be read.
M.load = io_.load_image

--- (C,H,W) or (H,W) tensor in [0,1] -> PNG or JPEG as the extension says (values clamped);
--- opts.quality for JPEG.  true, or nil, message.
M.save = io_.save_image

--- ImageNet's channel statistics, as torchvision's models expect their input normalized
M.IMAGENET_MEAN = { 0.485, 0.456, 0.406 }
M.IMAGENET_STD = { 0.229, 0.224, 0.225 }

-- Python's round(): halves to even (torchvision's CenterCrop uses it for the offsets)
local function py_round(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  return math.tointeger(f)
end

-- (out, n) weights of PIL's antialiased bilinear resampling (ImagingResample's
-- precompute_coeffs): a triangle filter widened by the scale when shrinking, so every input
-- pixel contributes; weights normalized per output pixel.
local function resample_matrix(out, n)
  local scale = n / out
  local fscale = math.max(scale, 1)
  local support = fscale   -- bilinear support 1 x filter scale
  local w = {}
  for i = 0, out - 1 do
    local center = (i + 0.5) * scale
    local lo = math.max(math.tointeger(math.floor(center - support + 0.5)) or 0, 0)
    local hi = math.min(math.tointeger(math.floor(center + support + 0.5)) or n, n)
    local row, sum = {}, 0
    for x = lo, hi - 1 do
      local v = 1 - math.abs((x - center + 0.5) / fscale)
      if v > 0 then row[x] = v; sum = sum + v end
    end
    for x = 0, n - 1 do w[i * n + x + 1] = sum > 0 and (row[x] or 0) / sum or 0 end
  end
  return core.tensor(w):view(out, n)
end

-- (B,H,W) -> (B,h,w) through PIL's resampling: columns then rows, each one matrix product
local function resample(x, h, w)
  local B, H, W = x:size(1), x:size(2), x:size(3)
  if W ~= w then
    x = core.matmul(x:reshape(B * H, W), resample_matrix(w, W):t()):view(B, H, w)
  end
  if H ~= h then
    local rows = x:permute(2, 1, 3):reshape(H, B * w)
    x = core.matmul(resample_matrix(h, H), rows):view(h, B, w):permute(2, 1, 3):contiguous()
  end
  return x
end

local function check_options(fname, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(("%s: opts must be a table, got %s"):format(fname, type(opts)), 3) end
  for k in pairs(opts) do
    if not known[k] then error(("%s: unknown option '%s'"):format(fname, tostring(k)), 3) end
  end
  return opts
end

local function check_stats(fname, v, default, name)
  v = v or default
  if type(v) ~= "table" or #v < 1 then error(("%s: opts.%s must be a list of numbers"):format(fname, name), 3) end
  for i = 1, #v do
    if type(v[i]) ~= "number" then error(("%s: opts.%s must be a list of numbers"):format(fname, name), 3) end
    if name == "std" and v[i] == 0 then error(("%s: opts.std has a zero"):format(fname), 3) end
  end
  return v
end

local function size2(fname, v, name)
  if v == false then return nil end
  if type(v) == "number" then
    if math.type(v) ~= "integer" or v < 1 then error(("%s: opts.%s must be a positive integer or {h, w}"):format(fname, name), 3) end
    return v
  end
  if type(v) ~= "table" or math.type(v[1]) ~= "integer" or math.type(v[2]) ~= "integer" or v[1] < 1 or v[2] < 1 then
    error(("%s: opts.%s must be a positive integer or {h, w}"):format(fname, name), 3)
  end
  return { v[1], v[2] }
end

local function check_batch(fname, x, what)
  if not is_tensor(x) or (x:dim() ~= 3 and x:dim() ~= 4) then
    error(("%s: expected a (C,H,W) or (N,C,H,W) %s, got %s"):format(fname, what,
      is_tensor(x) and shape_str(x) or type(x)), 3)
  end
end

local pre_opts = { resize = true, crop = true, mean = true, std = true }

--- torchvision's standard evaluation transform, Resize(resize) + CenterCrop(crop) +
--- Normalize(mean, std): img (C,H,W) or (N,C,H,W) in [0,1] -> (1,C,h,w) or (N,C,h,w) ready
--- for a model.  opts: resize (256: the shorter side becomes 256, the longer int(256 * long /
--- short); {h, w} for an exact size; false to skip), crop (224 or {h, w}, a centred crop with
--- Python's rounding of the offsets; false to skip), mean and std (ImageNet's).  Resizing is
--- PIL's antialiased bilinear (what torchvision applies to PIL images), computed in float.
--- Gray images become RGB and alpha is dropped when mean has 3 entries.
function M.preprocess(img, opts)
  opts = check_opts("preprocess", opts, { "crop", "mean", "resize", "std" })
  opts = check_options("preprocess", opts, pre_opts)
  check_batch("preprocess", img, "image tensor")
  local mean = check_stats("preprocess", opts.mean, M.IMAGENET_MEAN, "mean")
  local std = check_stats("preprocess", opts.std, M.IMAGENET_STD, "std")
  if #mean ~= #std then error(("preprocess: mean has %d entries, std %d"):format(#mean, #std), 2) end
  local resize = size2("preprocess", opts.resize == nil and 256 or opts.resize, "resize")
  local crop = size2("preprocess", opts.crop == nil and 224 or opts.crop, "crop")
  local x = img:detach()
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local N, C, H, W = x:size(1), x:size(2), x:size(3), x:size(4)
  if #mean == 3 and C ~= 3 then
    if C == 4 then x = x:narrow(2, 1, 3)
    elseif C == 1 or C == 2 then x = x:narrow(2, 1, 1):expand(N, 3, H, W)
    else error("preprocess: cannot make " .. shape_str(img) .. " RGB", 2) end
    C = 3
  elseif #mean ~= C and #mean ~= 1 then
    error(("preprocess: %d channels in %s, %d in mean and std"):format(C, shape_str(img), #mean), 2)
  end
  if resize then
    local h, w
    if type(resize) == "table" then h, w = resize[1], resize[2]
    elseif H <= W then h, w = resize, math.tointeger(resize * W // H)
    else h, w = math.tointeger(resize * H // W), resize end
    x = resample(x:contiguous():view(N * C, H, W), h, w):view(N, C, h, w)
    H, W = h, w
  end
  if crop then
    local ch, cw = type(crop) == "table" and crop[1] or crop, type(crop) == "table" and crop[2] or crop
    if ch > H or cw > W then
      error(("preprocess: crop %dx%d is larger than the resized image %dx%d"):format(ch, cw, H, W), 2)
    end
    x = x:narrow(3, py_round((H - ch) / 2) + 1, ch):narrow(4, py_round((W - cw) / 2) + 1, cw)
  end
  local m = core.tensor(mean):view(1, #mean, 1, 1)
  local s = core.tensor(std):view(1, #std, 1, 1)
  return ((x - m) / s):contiguous()
end

--- The inverse of preprocess's normalization, for display: x * std + mean, clamped to
--- [0,1]; (N,C,H,W) or (C,H,W) keep their shape.  opts: mean, std (ImageNet's).
function M.unnormalize(x, opts)
  opts = check_opts("image.unnormalize", opts, { "mean", "std" })
  opts = check_options("unnormalize", opts, { mean = true, std = true })
  check_batch("unnormalize", x, "tensor")
  local mean = check_stats("unnormalize", opts.mean, M.IMAGENET_MEAN, "mean")
  local std = check_stats("unnormalize", opts.std, M.IMAGENET_STD, "std")
  local c = x:size(x:dim() - 2)
  if #mean ~= c and #mean ~= 1 then
    error(("unnormalize: %d channels in %s, %d in mean"):format(c, shape_str(x), #mean), 2)
  end
  local shape = x:dim() == 4 and { 1, #mean, 1, 1 } or { #mean, 1, 1 }
  local m, s = core.tensor(mean):view(shape), core.tensor(std):view(shape)
  return (x:detach() * s + m):clamp(0, 1)
end

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
  opts = check_opts("image.normalize", opts, { "min", "max" })
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
  opts = check_opts("image.overlay", opts, { "alpha", "colormap", "normalize" })
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
  return label((rgb * (1 - alpha) + colored * alpha):clamp(0, 1), "overlay")
end

--- Arranges images in a grid: imgs is an (N,C,H,W) tensor or a list of (C,H,W) / (H,W)
--- tensors (resized to the first one's size).  opts: nrow (images per row, default
--- ceil(sqrt(N))), padding (2), pad_value (1 = white), normalize (rescale the whole batch
--- to [0,1]), per_tile (rescale each image to its own [0,1]), labels (a caption per tile),
--- label_scale (1).  Returns a (C,H',W') image, C = 3 when the tiles mix channel counts
--- or labels are drawn.
function M.grid(imgs, opts)
  opts = check_opts("image.grid", opts, { "bg", "color", "label_color", "label_scale", "labels", "normalize", "nrow", "pad_value", "padding", "per_tile", "scale" })
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
  return label(out, string.format("grid of %d images", n))
end

--- Adds a caption strip above an image (any channel count; the result is RGB).
--- opts.scale (1), opts.color ({0,0,0}), opts.bg (white)
function M.caption(img, text, opts)
  opts = check_opts("image.caption", opts, { "bg", "color", "scale" })
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
  local l = require("nnvis.figure").label_of(img) or {}
  return label(cv:tensor(), l.kind or "image", l.title or lines[1])
end

--- draws text onto a copy of an image at (x, y) (1-based, top-left)
function M.text(img, text, x, y, opts)
  opts = check_opts("image.text", opts, { "color", "scale" })
  local out = M.to_rgb(img:detach()):clone()
  Canvas.wrap(out):text(x or 1, y or 1, text, opts.color or { 1, 1, 1 }, opts.scale or 1)
  return out
end

--- Picture of any 2-D tensor (a weight matrix, an attention-like map) with a colorbar:
--- values mapped through opts.colormap ("viridis") between opts.vmin and opts.vmax
--- (default: the data's range), each cell opts.cell pixels (auto, aiming at ~320 px),
--- optional opts.title.  Returns a (3,H,W) image.
function M.heatmap(t, opts)
  opts = check_opts("image.heatmap", opts, { "cell", "colormap", "title", "vmax", "vmin" })
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
  return label(cv:tensor(), "heatmap", opts.title)
end

return M

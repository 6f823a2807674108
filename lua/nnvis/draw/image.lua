-- nnvis.draw.image — images as (C,H,W) float tensors in [0,1]: PNG and JPEG load/save,
-- torchvision's evaluation transform (preprocess) and its inverse, colormaps,
-- normalization, resizing, overlays of heatmaps, grids with padding and per-tile
-- normalization, heatmaps with a colorbar, and captions (drawn through nnvis.canvas, Cairo).
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local io_ = require "nnvis.io"
local cmap = require "nnvis.draw.colormap"
local labels = require "nnvis.draw.labels"   -- so nv.show can say what a picture is
local label = labels.label
local Canvas = require "nnvis.draw.canvas"
local style = require "nnvis.draw.style"

local M = {}

local shape_str, is_tensor = require("nnvis.tensor.util").shape_str, require("nnvis.tensor.util").is_tensor

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

-- an image laid out (H,W,C) or (N,H,W,C), as PIL, OpenCV and matplotlib hold them: channels
-- last and few, the height first and many
local function channels_last(x)
  local d = x:dim()
  if d ~= 3 and d ~= 4 then return false end
  local c, first = x:size(d), x:size(d - 2)
  return (c == 1 or c == 3 or c == 4) and first > 4
end

local function check_batch(fname, x, what)
  if not is_tensor(x) or (x:dim() ~= 3 and x:dim() ~= 4) then
    error(("%s: expected a (C,H,W) or (N,C,H,W) %s, got %s"):format(fname, what,
      is_tensor(x) and shape_str(x) or type(x)), 3)
  end
  if channels_last(x) then
    require("nnvis.tensor.util").raise(("%s: %s %s has its channels last; nnvis takes (C,H,W): x:permute(%s)"):format(fname,
      what, shape_str(x), x:dim() == 3 and "3, 1, 2" or "1, 4, 2, 3"))
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
  if img:dim() == 4 then
    require("nnvis.tensor.util").raise("to_rgb: expected one image (C,H,W), got a batch " .. shape_str(img) ..
      ": take one with x:select(1, i)")
  end
  if img:dim() == 3 and channels_last(img) then
    require("nnvis.tensor.util").raise("to_rgb: image " .. shape_str(img) .. " has its channels last; nnvis takes (C,H,W): " ..
      "x:permute(3, 1, 2)")
  end
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
  if img:dim() == 4 then
    error("overlay: expected one image (C,H,W), got a batch " .. shape_str(img) .. "; nv.cam.overlay(x, maps) lays " ..
      "each map of a batch over its image", 2)
  end
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

-- The drawn grid: panels of the tiles enlarged (nearest-neighbour) to at least
-- nv.style.min_panel_px pixels, each with its label fitted above it (shrunk, then wrapped,
-- never cut), an optional title and one colorbar for a shared scale.
local function panels(list, opts)
    local style = require "nnvis.draw.style"
  local scale = style.scale_of(opts)
  local n = #list
  local h, w = list[1]:size(2), list[1]:size(3)
  local ts = opts.tile_scale or 1   -- pixels per point of the tiles (plots drawn at scale 2: 2)
  local k = opts.enlarge == false and 1 / ts or style.enlarge(h, w, scale, opts.min_px)
  local ph, pw = h * k, w * k
  local nrow = opts.nrow or math.ceil(math.sqrt(n))
  local rows = math.ceil(n / nrow)
  local pad = opts.padding or style.pad
  local m = style.margin
  local ls = style.label_size * (opts.label_scale or 1)
  -- labels: each fitted to its panel's width; the strip is as tall as the tallest
  local fitted, strip = {}, 0
  local _, line_h = Canvas.measure("Ag", ls)
  if opts.labels then
    -- one size for every label (the smallest any needs, down to 1.5 points under the style's),
    -- and labels still too long at that size wrap
    -- ("\n" in a label starts a line of its own)
    local function each_line(label, f)
      for part in (tostring(label) .. "\n"):gmatch("(.-)\n") do f(part) end
    end
    local common = ls
    for i = 1, n do
      if opts.labels[i] then
        each_line(opts.labels[i], function(part) common = math.min(common, select(2, Canvas.fit(part, ls, pw, false, ls - 1.5))) end)
      end
    end
    for i = 1, n do
      if opts.labels[i] then
        local lines, size = {}, common
        each_line(opts.labels[i], function(part)
          for _, l in ipairs((Canvas.fit(part, common, pw, false, common))) do lines[#lines + 1] = l end
        end)
        local _, lh = Canvas.measure("Ag", size)
        fitted[i] = { lines = lines, size = size, lh = lh }
        strip = math.max(strip, #lines * lh)
      end
    end
    if strip > 0 then strip = math.ceil(strip + 2) end   -- whole points: tiles on the pixel grid
  end
  local cb = opts.colorbar
  local cbw = cb and Canvas.colorbar_width(cb.vmin, cb.vmax, cb.label) + 2 * pad or 0
  local gw = nrow * pw + (nrow - 1) * pad
  local W = m + gw + cbw + m
  local title_lines, title_size, tlh = nil, nil, 0
  if opts.title then
    title_lines, title_size = Canvas.fit(opts.title, style.title_size, W - 2 * m, true, style.title_size - 1.5)
    local _, h1 = Canvas.measure("Ag", title_size, true)
    tlh = h1
  end
  local top = math.ceil(m + (title_lines and #title_lines * tlh + style.pad or 0))
  local gh = rows * (strip + ph) + (rows - 1) * pad
  local H = top + gh + m
  local cv = Canvas.new(W, H, { scale = scale, bg = opts.bg or 1 })
  if title_lines then
    for i, l in ipairs(title_lines) do cv:text(l, W / 2, m + (i - 1) * tlh, { size = title_size, bold = true, ax = 0.5 }) end
  end
  for i, t in ipairs(list) do
    local r, col = (i - 1) // nrow, (i - 1) % nrow
    local x, y = m + col * (pw + pad), top + r * (strip + ph + pad)
    local name = "tile " .. i
    cv:panel(name, x, y, pw, strip + ph)
    cv:image(t, x, y + strip, pw, ph, false, 1, opts.over and opts.over[i], opts.alpha or 0.5)
    local f = fitted[i]
    if f then
      for j, l in ipairs(f.lines) do
        cv:text(l, x + pw / 2, y + (j - 1) * f.lh, { size = f.size, ax = 0.5, color = opts.label_color, panel = name })
      end
    end
  end
  if cb then
    cv:colorbar(m + gw + 2 * pad, top + strip, math.max(gh - strip, 40), cb.vmin, cb.vmax, cb.colormap, cb.label)
  end
  return cv:figure(opts.kind or string.format("grid of %d images", n), opts.title)
end

--- The drawn grid of nv.image.grid (opts as its, plus over: a list of (3,H,W) images laid
--- over the tiles with opacity opts.alpha, as CAM overlays are), for lists of (3,H,W) tiles
--- of one size
function M.panels(list, opts) return panels(list, opts or {}) end

--- Arranges images in a grid: imgs is an (N,C,H,W) tensor or a list of (C,H,W) / (H,W)
--- tensors (resized to the first one's size).  opts: nrow (images per row, default
--- ceil(sqrt(N))), padding, pad_value (1 = white), normalize (rescale the whole batch to
--- [0,1]), per_tile (rescale each image to its own [0,1]).  Without labels, title or
--- colorbar the result is the tiles pasted pixel for pixel (padding 2 pixels).  With
--- labels (a caption per tile), title or colorbar ({vmin, vmax, colormap, label}: one
--- shared scale) the grid is drawn as a figure (nnvis.canvas): tiles enlarged by
--- nearest-neighbour to at least nv.style.min_panel_px pixels (min_px sets another size; enlarge = false keeps
--- them; tile_scale = s with it draws tiles of s pixels per point, as plots are), each
--- label fitted above its tile in full (label_scale enlarges them), padding in points,
--- scale (pixels per point).  Returns a (C,H',W') image, C = 3 when the tiles mix channel counts or text is drawn.
function M.grid(imgs, opts)
  opts = check_opts("image.grid", opts, { "bg", "color", "colorbar", "enlarge", "kind", "label_color", "label_scale", "labels", "min_px", "normalize", "nrow", "pad_value", "padding", "per_tile", "scale", "tile_scale", "title" })
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
  local drawn = opts.labels or opts.title or opts.colorbar
  if mixed or drawn then c = 3 end
  if opts.normalize and not opts.per_tile then
    local lo, hi = math.huge, -math.huge
    for _, t in ipairs(list) do lo = math.min(lo, t:min():item()); hi = math.max(hi, t:max():item()) end
    for i, t in ipairs(list) do list[i] = M.normalize(t, { min = lo, max = hi }) end
  end
  for i, t in ipairs(list) do
    t = t:detach()
    if t:size(2) ~= h or t:size(3) ~= w then t = M.resize(t, { h, w }) end
    if opts.per_tile then t = M.normalize(t) end
    if c == 3 then t = M.to_rgb(t) end
    list[i] = drawn and t or t:clamp(0, 1)   -- Cairo clamps what it draws
  end
  if drawn then return panels(list, opts) end
  local nrow = opts.nrow or math.ceil(math.sqrt(n))
  local rows = math.ceil(n / nrow)
  local pad = opts.padding or 2
  local H = rows * (h + pad) + pad
  local W = nrow * (w + pad) + pad
  local out = core.full({ c, H, W }, opts.pad_value or 1)
  for i, t in ipairs(list) do
    local r, col = (i - 1) // nrow, (i - 1) % nrow
    local y, x = pad + r * (h + pad) + 1, pad + col * (w + pad) + 1
    out:narrow(2, y, h):narrow(3, x, w):copy(t)
  end
  return label(out, string.format("grid of %d images", n))
end

--- Adds a caption above an image (any channel count; the result is RGB), drawn in the
--- style's font: lines split at "\n", each fitted to the width (shrunk, then wrapped).
--- opts.scale (pixels per point: the image keeps one point per pixel, default
--- nv.style.scale), opts.color, opts.bg (white), opts.size (points)
function M.caption(img, text, opts)
  opts = check_opts("image.caption", opts, { "bg", "color", "scale", "size" })
    local style = require "nnvis.draw.style"
  local rgb = M.to_rgb(img:detach())
  local h, w = rgb:size(2), rgb:size(3)
  local size = opts.size or style.title_size
  local pad = style.pad
  local W = math.max(w, 120)
  local lines = {}
  for line in (tostring(text) .. "\n"):gmatch("(.-)\n") do
    local ls, sz = Canvas.fit(line, size, W - 2 * pad)
    for _, l in ipairs(ls) do lines[#lines + 1] = { l, sz } end
  end
  local th = pad
  for _, l in ipairs(lines) do local _, lh = Canvas.measure("Ag", l[2]); th = th + lh end
  th = math.ceil(th)
  local cv = Canvas.new(W, th + pad + h, { scale = opts.scale, bg = opts.bg or 1 })
  local y = pad
  for _, l in ipairs(lines) do
    local _, lh = Canvas.measure("Ag", l[2])
    cv:text(l[1], W / 2, y, { size = l[2], ax = 0.5, color = opts.color, panel = "image" })
    y = y + lh
  end
  local x0 = math.floor((W - w) / 2)
  cv:panel("image", 0, 0, W, th + pad + h)
  cv:image(rgb, x0, th + pad, w, h)
  local l = labels.label_of(img) or {}
  return cv:figure(l.kind or "image", l.title or (lines[1] and lines[1][1]))
end

--- draws text onto a copy of an image with the top-left of its box at pixel (x, y)
--- (1-based); opts.color (white), opts.size (points = pixels here, 10; opts.scale multiplies it)
function M.text(img, text, x, y, opts)
  opts = check_opts("image.text", opts, { "color", "scale", "size" })
    local rgb = M.to_rgb(img:detach())
  local cv = Canvas.new(rgb:size(3), rgb:size(2), { scale = 1 })
  cv:image(rgb, 0, 0)
  cv:text(text, (x or 1) - 1, (y or 1) - 1, { size = opts.size or 10 * (opts.scale or 1), color = opts.color or { 1, 1, 1 } })
  return cv:tensor()
end

--- overlay_mask(img, labels [, opts]): a segmentation drawn over its image: labels (H,W) (or
--- (1,H,W)) of 1-based class ids (a model's output (K,H,W) or (1,K,H,W): its arg-max), each
--- class in its palette colour blended with opacity opts.alpha (0.5), and a legend of the
--- classes present with opts.classes' names (else "class k"); opts.background (a class id,
--- e.g. 1 for "background") is left uncoloured; opts.title, opts.scale.  Returns the image.
function M.overlay_mask(img, labels, opts)
  opts = check_opts("image.overlay_mask", opts, { "alpha", "background", "classes", "scale", "title" })
  if not is_tensor(img) or not is_tensor(labels) then error("overlay_mask: expected an image and a label tensor", 2) end
  local rgb = M.to_rgb(img:detach())
  local lab = labels:detach()
  if lab:dim() == 4 and lab:size(1) == 1 then lab = lab:select(1, 1) end
  if lab:dim() == 3 and lab:size(1) > 1 then lab = lab:argmax(1) end      -- scores (K,H,W)
  if lab:dim() == 3 then lab = lab:select(1, 1) end
  if lab:dim() ~= 2 then error("overlay_mask: labels must be (H,W) class ids or (K,H,W) scores, got " .. shape_str(labels), 2) end
  local h, w = rgb:size(2), rgb:size(3)
  if lab:size(1) ~= h or lab:size(2) ~= w then
    lab = core.interpolate(lab:view(1, 1, lab:size(1), lab:size(2)), { size = { h, w }, mode = "nearest" }):view(h, w)
  end
  local style = require "nnvis.draw.style"
  local pal = style.palette
  local K = math.max(1, math.floor(lab:max():item() + 0.5))
  local rows = {}
  for k = 1, K do rows[k] = pal[(k - 1) % #pal + 1] end
  local lut = core.tensor(rows)                                              -- (K,3)
  local ids = lab:round():clamp(1, K):reshape(-1)
  local colored = lut:index_select(1, ids):t():reshape(3, h, w)
  local alpha = opts.alpha or 0.5
  local a = core.full({ 1, h, w }, alpha)
  if opts.background then a = a * lab:round():ne(opts.background):view(1, h, w) end
  local out = (rgb * (1 - a) + colored * a):clamp(0, 1)
  -- the legend: the classes present, most pixels first
  local present = {}
  local counts = lab:round():reshape(-1):histc(K, 0.5, K + 0.5):values()
  for k = 1, K do if counts[k] > 0 and k ~= opts.background then present[#present + 1] = k end end
  table.sort(present, function(p, q) return counts[p] > counts[q] end)
  local m, pad = style.margin, style.pad
  local pw, ph = w, h
  if math.max(pw, ph) < 240 then local s = 240 / math.max(pw, ph); pw, ph = pw * s, ph * s end
  local _, lh = Canvas.measure("Ag", style.label_size)
  local names = {}
  local lw = 0
  for i, k in ipairs(present) do
    names[i] = opts.classes and opts.classes[k] and tostring(opts.classes[k]) or ("class " .. k)
    lw = math.max(lw, Canvas.measure(names[i], style.label_size))
  end
  local title = opts.title or "segmentation"
  local tl, tsz = Canvas.fit(title, style.title_size, pw + lw + 40, true)
  local _, th = Canvas.measure("Ag", tsz, true)
  local top = m + #tl * th + pad
  local W = m + pw + pad * 2 + (#present > 0 and (lw + 22) or 0) + m
  local H = top + math.max(ph, #present * (lh + 4)) + m
  local cv = Canvas.new(W, H, { scale = opts.scale, bg = 1 })
  for i, l in ipairs(tl) do cv:text(l, W / 2, m + (i - 1) * th, { size = tsz, bold = true, ax = 0.5 }) end
  cv:image(out, m, top, pw, ph)
  cv:panel("image", m, top, pw, ph)
  local lx = m + pw + pad * 2
  for i, k in ipairs(present) do
    local y = top + (i - 1) * (lh + 4)
    cv:rect(lx, y + 2, 14, lh - 4, rows[k])
    cv:text(names[i], lx + 20, y + lh / 2, { size = style.label_size, ay = 0.5, panel = "legend" })
  end
  if #present > 0 then cv:panel("legend", lx, top, lw + 22, #present * (lh + 4)) end
  return cv:figure("segmentation", title)
end

--- Picture of any 2-D tensor (a weight matrix, an attention-like map) with a colorbar:
--- values mapped through opts.colormap ("viridis") between opts.vmin and opts.vmax
--- (default: the data's range); each cell opts.cell points (auto: the long side ~240
--- points, the short side at least 80); opts.title (default "<rows>x<cols> values"),
--- opts.label (the colorbar's), opts.scale; the rows and columns are numbered from 1 on
--- their axes, or named by opts.yticks / opts.xticks (a label per row / column; false: none),
--- with opts.ylabel / opts.xlabel.  Returns a (3,H,W) image; its layout has the panels "map"
--- and "colorbar".
function M.heatmap(t, opts)
  opts = check_opts("image.heatmap", opts, { "cell", "colormap", "label", "scale", "title", "vmax", "vmin", "xlabel",
                                             "xticks", "ylabel", "yticks" })
  if not is_tensor(t) then error("heatmap: expected a tensor", 2) end
  if t:dim() == 1 then t = t:unsqueeze(1) end
  if t:dim() ~= 2 then error("heatmap: expected a 2-D tensor, got " .. shape_str(t), 2) end
    local style = require "nnvis.draw.style"
  t = t:detach()
  local rows, cols = t:size(1), t:size(2)
  local vmin = opts.vmin or t:min():item()
  local vmax = opts.vmax or t:max():item()
  local cw, ch
  if opts.cell then cw, ch = opts.cell, opts.cell
  else
    local c = 240 / math.max(rows, cols)
    cw, ch = c, c
    if cols * cw < 80 then cw = 80 / cols end
    if rows * ch < 80 then ch = 80 / rows end
  end
  local mw, mh = cols * cw, rows * ch
  local colored = cmap.apply(M.normalize(t, { min = vmin, max = vmax }), opts.colormap or "viridis")
  local m, pad = style.margin, style.pad
  local title = opts.title or string.format("%dx%d values", rows, cols)
  local cbw = Canvas.colorbar_width(vmin, vmax, opts.label)
  local axl, axb = Canvas.cell_axes_room(rows, cols, opts)
  local W = m + axl + mw + 2 * pad + cbw + m
  local lines, size = Canvas.fit(title, style.title_size, W - 2 * m, true, style.title_size - 1.5)
  local _, tlh = Canvas.measure("Ag", size, true)
  local _, th = Canvas.measure("0", style.tick_size)
  local top = math.ceil(m + #lines * tlh + pad + th / 2)
  local H = top + mh + math.max(th / 2, axb) + m
  local cv = Canvas.new(W, H, { scale = opts.scale, bg = 1 })
  for i, l in ipairs(lines) do cv:text(l, W / 2, m + (i - 1) * tlh, { size = size, bold = true, ax = 0.5 }) end
  local left = m + axl
  cv:panel("map", left, top, mw, mh)
  -- more cells than pixels: averaged down (PIL's antialiased filter) rather than sampled
  local sc = style.scale_of(opts)
  local ph, pw = math.ceil(mh * sc), math.ceil(mw * sc)
  local smooth = false
  if ph < rows or pw < cols then
    colored, smooth = resample(colored, math.min(ph, rows), math.min(pw, cols)), true
  end
  cv:image(colored, left, top, mw, mh, smooth)
  cv:cell_axes(left, top, mw, mh, rows, cols, opts)
  if rows * cols <= 40000 then   -- each cell's value under the pointer in interactive HTML
    local v = t:contiguous():values()
    for i = 1, rows do
      for j = 1, cols do
        cv:datum(left + (j - 0.5) * cw, top + (i - 0.5) * ch, string.format("row %d, column %d: %.5g", i, j, v[(i - 1) * cols + j]))
      end
    end
  end
  cv:colorbar(left + mw + 2 * pad, top, mh, vmin, vmax, opts.colormap or "viridis", opts.label)
  return cv:figure("heatmap", opts.title)
end

return M

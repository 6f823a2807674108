-- nnvis.views — more pictures to look at, reached as nv.plot.<name>:
--   scatter(points, opts)            a 2-D embedding coloured by class, with a legend and
--                                    optional thumbnails at the points
--   grad_flow(flow, opts)            the gradient flow fit recorded (history.grad_flow): a
--                                    layers x steps heatmap of log10 gradient norms and one
--                                    line per layer, the vanishing/exploding thresholds marked
--   landscape(result, opts)          a loss landscape (nv.landscape.line: a curve;
--                                    nv.landscape.surface: a heatmap with contour lines)
--   neurons(model, opts)             an MLP's neurons as circles in layers, each connection's
--                                    width and colour by its weight, nodes by activation
--   decision_regions(model, x, y, opts)   a 2-D classifier's class probabilities over the
--                                    input plane with the training points
-- Each returns a (3,H,W) image labelled as a figure (nv.show, nv.figure.of describe it).
local core = require "nnvis.core"
local util = require "nnvis.util"
local Canvas = require "nnvis.canvas"
local plot = require "nnvis.plot"
local label = require("nnvis.figure").label

local M = {}

local function values(v)
  if util.is_tensor(v) then return v:contiguous():values() end
  return v
end

local function color_of(k) return plot.palette[(k - 1) % #plot.palette + 1] end

local function legend(cv, map, entries)
  if #entries == 0 then return end
  local w = 0
  for _, e in ipairs(entries) do w = math.max(w, Canvas.text_width(e[1])) end
  -- outside the plot, to the right of the frame
  local lx, ly = map.right + 10, map.top
  for i, e in ipairs(entries) do
    cv:rect(lx, ly + (i - 1) * 13 + 1, 8, 8, e[2])
    cv:text(lx + 12, ly + (i - 1) * 13 + 1, e[1], { 0, 0, 0 })
  end
end

local function legend_width(entries)
  local w = 0
  for _, e in ipairs(entries) do w = math.max(w, Canvas.text_width(e[1])) end
  return #entries > 0 and w + 30 or 0
end

--- scatter(points (N,2) [, opts]): opts.labels (N class ids), names (class names), images
--- ((N,C,H,W) thumbnails drawn at the points), thumbnail (16 px), title, xlabel, ylabel,
--- width (640), height (480), size (point size, 5)
function M.scatter(points, opts)
  opts = util.check_opts("plot.scatter", opts, { "labels", "names", "images", "thumbnail", "title", "xlabel", "ylabel",
    "width", "height", "size" })
  if not util.is_tensor(points) or points:dim() ~= 2 or points:size(2) < 2 then
    error("scatter: expected points (N,2), got " .. (util.is_tensor(points) and util.shape_str(points) or type(points)), 2)
  end
  local n = points:size(1)
  local px, py = values(points:select(2, 1)), values(points:select(2, 2))
  local labels = opts.labels and values(opts.labels)
  if labels and #labels ~= n then error(string.format("scatter: %d labels for %d points", #labels, n), 2) end
  local classes, seen = {}, {}
  for i = 1, n do
    local c = labels and labels[i] or 1
    if not seen[c] then seen[c] = true; classes[#classes + 1] = c end
  end
  table.sort(classes, function(a, b) return tostring(a) < tostring(b) and type(a) ~= "number" or (type(a) == "number" and type(b) == "number" and a < b) end)
  local index = {}
  for k, c in ipairs(classes) do index[c] = k end
  local entries = {}
  if labels then
    for k, c in ipairs(classes) do
      local name = opts.names and opts.names[c] or tostring(math.type(c) == "float" and math.floor(c) or c)
      entries[k] = { tostring(name), color_of(k) }
    end
  end
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for i = 1, n do
    xlo, xhi = math.min(xlo, px[i]), math.max(xhi, px[i])
    ylo, yhi = math.min(ylo, py[i]), math.max(yhi, py[i])
  end
  -- a margin between the data and the frame
  local mx, my = (xhi - xlo) * 0.05 + 1e-9, (yhi - ylo) * 0.05 + 1e-9
  local o = { title = opts.title or string.format("%d points", n), xlabel = opts.xlabel, ylabel = opts.ylabel,
    width = (opts.width or 640) - legend_width(entries), height = opts.height or 480 }
  local cv0, map = plot.frame(o, xlo - mx, xhi + mx, ylo - my, yhi + my)
  local cv = Canvas.new(cv0.w + legend_width(entries), cv0.h, 1)
  cv:paste(cv0:tensor(), 1, 1)
  local s = opts.size or 5
  local thumbs
  if opts.images then
    local t = opts.thumbnail or 16
    thumbs = core.interpolate(opts.images:detach(), { size = { t, t }, mode = "bilinear" }):clamp(0, 1)
  end
  for i = 1, n do
    local x, y = math.floor(map.x(px[i]) + 0.5), math.floor(map.y(py[i]) + 0.5)
    local col = color_of(index[labels and labels[i] or 1])
    if thumbs then
      local t = thumbs:size(3)
      local img = require("nnvis.image").to_rgb(thumbs:select(1, i))
      cv:paste(img, x - t // 2, y - t // 2)
      cv:box(x - t // 2 - 1, y - t // 2 - 1, t + 2, t + 2, col)
    else
      cv:rect(x - s // 2, y - s // 2, s, s, col)
    end
  end
  legend(cv, map, entries)
  return label(cv:tensor(), "scatter plot", o.title)
end

--- grad_flow(flow [, opts]): the gradient flow fit recorded (history.grad_flow).  opts.what
--- ("grad_norm" or "update_ratio"), vanish (1e-6) and explode (1e2) thresholds (for update
--- ratios 1e-5 and 1e-1), width (720).  A layers x steps heatmap of log10 values above one
--- line per layer with the thresholds as dashed lines.
function M.grad_flow(flow, opts)
  opts = util.check_opts("plot.grad_flow", opts, { "what", "vanish", "explode", "width", "title" })
  local what = opts.what or "grad_norm"
  local mat, layers = require("nnvis.trainlog").flow_matrix(flow, what)
  local ratio = what == "update_ratio"
  local vanish = opts.vanish or (ratio and 1e-5 or 1e-6)
  local explode = opts.explode or (ratio and 1e-1 or 1e2)
  local W = opts.width or 720
  local image = require "nnvis.image"
  local name = ratio and "weight-update ratio |dw|/|w|" or "gradient norm"
  -- one band of 18 px per layer, the steps stretched over the width
  local rows, cols = mat:size(1), mat:size(2)
  local band, cw = 18, math.max(cols, W - 160)
  local big = core.interpolate(mat:view(1, 1, rows, cols), { size = { rows * band, cw }, mode = "nearest" }):view(rows * band, cw)
  local hm = image.heatmap(big, { title = string.format("log10 %s: a row per layer, steps %d to %d left to right", name,
    flow.steps[1], flow.steps[#flow.steps]), cell = 1 })
  local series = {}
  for i, l in ipairs(layers) do
    local ys = {}
    for j = 1, #flow.steps do ys[j] = math.max(flow[what][l][j] or 0, 1e-30) end
    series[i] = { name = l, x = flow.steps, y = ys }
  end
  local first, last = flow.steps[1], flow.steps[#flow.steps]
  local thresholds = { [string.format("vanishing below %g", vanish)] = { 0.5, 0.5, 0.5 },
                       [string.format("exploding above %g", explode)] = { 0.8, 0, 0 } }
  series[#series + 1] = { name = string.format("vanishing below %g", vanish), x = { first, last }, y = { vanish, vanish } }
  series[#series + 1] = { name = string.format("exploding above %g", explode), x = { first, last }, y = { explode, explode } }
  -- plot.line orders named series by name; the colours follow that order
  table.sort(series, function(a, b) return tostring(a.name) < tostring(b.name) end)
  local colors, k = {}, 0
  for i, sr in ipairs(series) do
    if thresholds[sr.name] then colors[i] = thresholds[sr.name] else k = k + 1; colors[i] = color_of(k) end
  end
  local ln = plot.line(series, { title = opts.title or (name .. " per layer"), xlabel = "step", ylabel = name, logy = true,
    width = W, height = 360, colors = colors })
  -- the heatmap's row names beside it
  local lw = 0
  for _, l in ipairs(layers) do lw = math.max(lw, Canvas.text_width(l)) end
  local hh, hw = hm:size(2), hm:size(3)
  local cv = Canvas.new(math.max(W, hw + lw + 12), hh + ln:size(2) + 8, 1)
  cv:paste(hm, lw + 10, 1)
  for i, l in ipairs(layers) do cv:text(4, 19 + math.floor((i - 0.5) * band) - 3, l, { 0, 0, 0 }) end
  cv:paste(ln, 1, hh + 8)
  return label(cv:tensor(), "gradient flow", opts.title or name)
end

-- marching squares: the segments of the iso-line at level v over a grid (rows x cols values),
-- in grid coordinates (column, row), 1-based
local function contour_segments(g, rows, cols, v)
  local segs = {}
  local function at(i, j) return g[(i - 1) * cols + j] end
  local function lerp(a, b, fa, fb) return a + (b - a) * (v - fa) / (fb - fa) end
  for i = 1, rows - 1 do
    for j = 1, cols - 1 do
      local a, b, c, d = at(i, j), at(i, j + 1), at(i + 1, j + 1), at(i + 1, j)
      local pts = {}
      if (a < v) ~= (b < v) then pts[#pts + 1] = { lerp(j, j + 1, a, b), i } end
      if (b < v) ~= (c < v) then pts[#pts + 1] = { j + 1, lerp(i, i + 1, b, c) } end
      if (d < v) ~= (c < v) then pts[#pts + 1] = { lerp(j, j + 1, d, c), i + 1 } end
      if (a < v) ~= (d < v) then pts[#pts + 1] = { j, lerp(i, i + 1, a, d) } end
      if #pts == 2 then segs[#segs + 1] = { pts[1], pts[2] }
      elseif #pts == 4 then segs[#segs + 1] = { pts[1], pts[2] }; segs[#segs + 1] = { pts[3], pts[4] } end
    end
  end
  return segs
end

--- landscape(result [, opts]): nv.landscape.line's result as a curve of the loss against
--- the step along the direction; nv.landscape.surface's as a heatmap with opts.levels (10)
--- contour lines and a colorbar, the model's weights marked at the centre.  opts: title,
--- width, height, log (plot log10 of the loss)
function M.landscape(res, opts)
  opts = util.check_opts("plot.landscape", opts, { "title", "width", "height", "levels", "log" })
  if type(res) ~= "table" or not res.alphas or not res.losses then error("landscape: expected what nv.landscape.line or surface returned", 2) end
  if not util.is_tensor(res.losses) then
    local ys = res.losses
    if opts.log then ys = {} for i, v in ipairs(res.losses) do ys[i] = v end end
    return plot.line({ { name = "loss", x = res.alphas, y = ys } }, { title = opts.title or "loss along a filter-normalized direction",
      xlabel = "step along the direction (0 = the model)", ylabel = "loss", logy = opts.log, width = opts.width or 640,
      height = opts.height or 400, legend = false })
  end
  local L = res.losses:detach()
  if opts.log then L = L:clamp(1e-12, math.huge):log() / math.log(10) end
  local rows, cols = L:size(1), L:size(2)
  local size = math.min(opts.width or 480, opts.height or 480)
  local cell = math.max(2, math.floor(size / math.max(rows, cols)))
  local image = require "nnvis.image"
  local title = opts.title or ((opts.log and "log10 loss" or "loss") .. " around the weights (two filter-normalized directions)")
  local hm = image.heatmap(L, { title = title, cell = cell })
  local cv = Canvas.wrap(hm:clone())
  local g = L:contiguous():values()
  local lo, hi = L:min():item(), L:max():item()
  local levels = opts.levels or 10
  for k = 1, levels do
    local v = lo + (hi - lo) * k / (levels + 1)
    for _, s in ipairs(contour_segments(g, rows, cols, v)) do
      -- cell centres: column j at 5 + (j - 0.5) cell
      local x1, y1 = 5 + (s[1][1] - 0.5) * cell, 19 + (s[1][2] - 0.5) * cell
      local x2, y2 = 5 + (s[2][1] - 0.5) * cell, 19 + (s[2][2] - 0.5) * cell
      cv:line({ x1, y1, x2, y2 }, { 1, 1, 1 }, 1, 0.8)
    end
  end
  -- the model itself: the centre of the grid
  local cx, cy = 5 + (cols / 2) * cell, 19 + (rows / 2) * cell
  cv:rect(math.floor(cx) - 3, math.floor(cy) - 3, 7, 7, { 1, 0, 0 })
  return label(cv:tensor(), "loss landscape", title)
end

-- a filled circle with an outline, from one rectangle per pixel row and a polyline
local function disc(cv, cx, cy, r, fill, edge)
  cx, cy = math.floor(cx + 0.5), math.floor(cy + 0.5)
  local rects = {}
  for dy = -r, r do
    local hw = math.floor(math.sqrt(r * r - dy * dy) + 0.5)
    rects[#rects + 1] = cx - hw; rects[#rects + 1] = cy + dy; rects[#rects + 1] = 2 * hw + 1; rects[#rects + 1] = 1
  end
  core.fill_rects(cv.img, rects, fill)
  local pts = {}
  for k = 0, 32 do
    local a = 2 * math.pi * k / 32
    pts[#pts + 1] = cx + r * math.cos(a); pts[#pts + 1] = cy + r * math.sin(a)
  end
  cv:line(pts, edge, 1)
end

-- the Linear layers of an MLP, in order
local function linears(model)
  local list = {}
  for _, e in ipairs(util.leaves(model)) do
    if e.module.kind == "Linear" then list[#list + 1] = e end
  end
  return list
end

--- neurons(model [, opts]): an MLP's neurons as circles in layers (input, each Linear's
--- outputs), each connection drawn with width by |weight| and colour by sign (red positive,
--- blue negative).  opts: input (one sample (D) or (1,D): nodes coloured by their
--- activation), top_k (the strongest k connections into each neuron; default all up to
--- 64 inputs per neuron, else 8), max_neurons (64 per layer: more are shown as the first and
--- last few), width (800), height (500), title
function M.neurons(model, opts)
  opts = util.check_opts("plot.neurons", opts, { "input", "top_k", "max_neurons", "width", "height", "title" })
  local lin = linears(model)
  if #lin == 0 then error("neurons: the model has no Linear layer", 2) end
  local sizes = { lin[1].module.weight:size(2) }
  for i, e in ipairs(lin) do sizes[i + 1] = e.module.weight:size(1) end
  local acts
  if opts.input then
    local x = opts.input
    if x:dim() == 1 then x = x:unsqueeze(1) end
    local names = {}
    for i, e in ipairs(lin) do names[i] = e.name end
    local cap = require("nnvis.capture").capture(model, x, { layers = names })
    acts = { values(x:reshape(-1)) }
    for i, e in ipairs(lin) do acts[i + 1] = values(cap[e.name].output:reshape(-1)) end
  end
  local maxn = opts.max_neurons or 64
  local W, H = opts.width or 800, opts.height or 500
  local cv = Canvas.new(W, H, 1)
  local title = opts.title or string.format("neurons and connections: %s", table.concat(sizes, " -> "))
  cv:text(6, 4, title, { 0, 0, 0 })
  cv:text(6, 15, "lines: red positive, blue negative weight, width and opacity by |weight|" ..
    (acts and "; circles: activation for the input (viridis, centred on 0)" or ""), { 0.3, 0.3, 0.3 })
  local top, bottom = 34, H - 20
  -- shown neurons per layer: all, or the first and last maxn/2
  local shown, pos = {}, {}
  for l, n in ipairs(sizes) do
    local idx = {}
    if n <= maxn then for i = 1, n do idx[#idx + 1] = i end
    else
      for i = 1, maxn // 2 do idx[#idx + 1] = i end
      for i = n - maxn // 2 + 1, n do idx[#idx + 1] = i end
    end
    shown[l] = idx
    pos[l] = {}
    local x = 40 + (W - 80) * (l - 1) / math.max(#sizes - 1, 1)
    for k, i in ipairs(idx) do
      pos[l][i] = { x, top + (bottom - top) * (k - 0.5) / #idx }
    end
  end
  -- connections: the strongest top_k into each shown neuron
  for l = 1, #lin do
    local w = lin[l].module.weight:detach()
    local wmax = w:abs():max():item()
    if wmax == 0 then wmax = 1 end
    local k = opts.top_k or (sizes[l] <= 64 and sizes[l] or 8)
    local wv = w:contiguous():values()
    local cin = sizes[l]
    for _, j in ipairs(shown[l + 1]) do
      local cand = {}
      for _, i in ipairs(shown[l]) do cand[#cand + 1] = i end
      table.sort(cand, function(a, b) return math.abs(wv[(j - 1) * cin + a]) > math.abs(wv[(j - 1) * cin + b]) end)
      for c = 1, math.min(k, #cand) do
        local i = cand[c]
        local v = wv[(j - 1) * cin + i]
        local m = math.abs(v) / wmax
        local col = v >= 0 and { 0.84, 0.15, 0.16 } or { 0.12, 0.47, 0.71 }
        local p, q = pos[l][i], pos[l + 1][j]
        cv:line({ p[1], p[2], q[1], q[2] }, col, math.max(1, math.floor(m * 3 + 0.5)), 0.15 + 0.75 * m)
      end
    end
  end
  -- neurons
  local cmap = require "nnvis.colormap"
  for l = 1, #sizes do
    local r = math.max(2, math.min(8, math.floor((bottom - top) / #shown[l] / 2.5)))
    local amax = 0
    if acts then for _, i in ipairs(shown[l]) do amax = math.max(amax, math.abs(acts[l][i])) end end
    for _, i in ipairs(shown[l]) do
      local p = pos[l][i]
      local fill = { 0.95, 0.95, 0.95 }
      if acts then
        local t = amax > 0 and (acts[l][i] / amax + 1) / 2 or 0.5
        fill = cmap.color("viridis", t)
      end
      disc(cv, p[1], p[2], r, fill, { 0.2, 0.2, 0.2 })
    end
    local name = l == 1 and "input" or lin[l - 1].name
    local s = string.format("%s (%d)", name, sizes[l])
    cv:text_centered(math.floor(pos[l][shown[l][1]][1]), H - 14, s, { 0, 0, 0 })
  end
  return label(cv:tensor(), "neuron diagram", title)
end

--- decision_regions(model, x (N,2), y [, opts]): the class a 2-D classifier predicts over
--- the input plane, shaded by its probability, with the points x coloured by their labels y.
--- opts: resolution (360 px per side), margin (0.1 of the data's range), names, title
function M.decision_regions(model, x, y, opts)
  opts = util.check_opts("plot.decision_regions", opts, { "resolution", "margin", "names", "title" })
  if not util.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= 2 then
    error("decision_regions: expected inputs (N,2), got " .. (util.is_tensor(x) and util.shape_str(x) or type(x)), 2)
  end
  local R = opts.resolution or 360
  local px, py = values(x:select(2, 1)), values(x:select(2, 2))
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for i = 1, #px do xlo, xhi = math.min(xlo, px[i]), math.max(xhi, px[i]); ylo, yhi = math.min(ylo, py[i]), math.max(yhi, py[i]) end
  local m = opts.margin or 0.1
  local mx, my = (xhi - xlo) * m + 1e-6, (yhi - ylo) * m + 1e-6
  xlo, xhi, ylo, yhi = xlo - mx, xhi + mx, ylo - my, yhi + my
  -- the grid of inputs, row 1 at the top (high y)
  local gx = (core.arange(0, R) + 0.5) / R * (xhi - xlo) + xlo
  local gy = yhi - (core.arange(0, R) + 0.5) / R * (yhi - ylo)
  local grid = core.stack({ gx:view(1, R):expand(R, R), gy:view(R, 1):expand(R, R) }, 3):reshape(R * R, 2)
  local out = util.with_mode(model, false, function() return core.no_grad(model, grid) end)
  local p = core.softmax(util.first_tensor(out), 2)
  local pmax, cls = p:max(2)
  local k = p:size(2)
  local pal = {}
  for c = 1, k do pal[c] = color_of(c) end
  local palette = core.tensor(pal)                                                  -- (k,3)
  local col = palette:index_select(1, cls:view(-1))                                 -- (R*R,3)
  -- lighter where the model is unsure: mix with white by (1 - (pmax - 1/k) / (1 - 1/k))
  local conf = ((pmax:view(-1, 1) - 1 / k) / (1 - 1 / k)):clamp(0, 1) * 0.6 + 0.15
  local img = (col * conf + (1 - conf)):t():reshape(3, R, R):contiguous()
  local title = opts.title or "decision regions (shade: predicted probability)"
  local cv0, map = plot.frame({ title = title, width = math.max(R + 80, Canvas.text_width(title) + 24), height = R + 60 }, xlo, xhi, ylo, yhi)
  local entries = {}
  for c = 1, k do entries[c] = { tostring(opts.names and opts.names[c] or ("class " .. c)), pal[c] } end
  local cv = Canvas.new(cv0.w + legend_width(entries), cv0.h, 1)
  cv:paste(cv0:tensor(), 1, 1)
  local pw, ph = math.floor(map.right - map.left), math.floor(map.bottom - map.top)
  cv:paste(core.interpolate(img:unsqueeze(1), { size = { ph, pw }, mode = "bilinear" }):squeeze(1), math.floor(map.left) + 1,
    math.floor(map.top) + 1)
  local yv = values(y)
  for i = 1, #px do
    local xx, yy = math.floor(map.x(px[i]) + 0.5), math.floor(map.y(py[i]) + 0.5)
    cv:rect(xx - 2, yy - 2, 5, 5, pal[math.floor(yv[i])] or { 0, 0, 0 })
    cv:box(xx - 3, yy - 3, 7, 7, { 0, 0, 0 })
  end
  legend(cv, map, entries)
  return label(cv:tensor(), "decision regions", title), cls:view(R, R)
end

return M

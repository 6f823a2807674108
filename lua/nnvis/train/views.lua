-- nnvis.train.views — more pictures to look at, reached as nv.plot.<name>:
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
local util = require "nnvis.tensor.util"
local Canvas = require "nnvis.draw.canvas"
local plot = require "nnvis.draw.plot"
local label = require("nnvis.draw.figure").label

local M = {}

local style = require "nnvis.draw.style"

local function values(v)
  if util.is_tensor(v) then return v:contiguous():values() end
  return v
end

local function color_of(k) return style.palette[(k - 1) % #style.palette + 1] end

-- a legend of {name, colour} rows with its top-left at (x, y); its width in points
local function legend_width(entries)
  local w = 0
  for _, e in ipairs(entries) do w = math.max(w, Canvas.measure(e[1], style.label_size)) end
  return #entries > 0 and w + 22 or 0
end

local function legend(cv, x, y, entries)
  if #entries == 0 then return end
  local _, lh = Canvas.measure("Ag", style.label_size)
  local row = lh + 3
  cv:panel("legend", x, y, legend_width(entries), #entries * row)
  for i, e in ipairs(entries) do
    local cy = y + (i - 0.5) * row
    cv:rect(x, cy - 3.5, 7, 7, e[2])
    cv:text(e[1], x + 11, cy, { size = style.label_size, ay = 0.5, panel = "legend" })
  end
end

-- an image tensor (pixels) placed on a canvas at (x, y) points, at the canvas's scale
-- draws a figure image into cv at (x, y); its measured layout (texts and panels) comes along,
-- moved there, so the combined figure's layout still says what is drawn where
local function place(cv, img, x, y)
  local w, h = img:size(3) / cv.scale, img:size(2) / cv.scale
  cv:image(img, x, y, w, h)
  local lay = require("nnvis.draw.figure").layout(img)
  if lay then
    for _, t in ipairs(lay.texts) do
      local c = {}
      for k, v in pairs(t) do c[k] = v end
      c.x, c.y = t.x + x, t.y + y
      cv.layout.texts[#cv.layout.texts + 1] = c
    end
    for _, p in ipairs(lay.panels) do cv:panel(p.name, p.x + x, p.y + y, p.w, p.h) end
  end
  return w, h
end

--- scatter(points (N,2) [, opts]): opts.labels (N class ids), names (class names), images
--- ((N,C,H,W) thumbnails drawn at the points), thumbnail (12 points), title, xlabel, ylabel,
--- width (380 points), height (260), size (point diameter, 3.5 points), scale
function M.scatter(points, opts)
  opts = util.check_opts("plot.scatter", opts, { "labels", "names", "images", "thumbnail", "title", "xlabel", "ylabel",
    "width", "height", "size", "scale" })
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
  table.sort(classes, function(a, b)
    if type(a) == "number" and type(b) == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
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
  local title = opts.title or string.format("%d points", n)
  local reserve = legend_width(entries) + (#entries > 0 and style.pad * 2 or 0)
  local cv, map = plot.frame({ title = title, xlabel = opts.xlabel, ylabel = opts.ylabel, width = opts.width or 380,
    height = opts.height or 260, scale = opts.scale }, xlo, xhi, ylo, yhi, nil, nil, reserve)
  local r = (opts.size or 3.5) / 2
  local t = opts.thumbnail or 12
  for i = 1, n do
    local x, y = map.x(px[i]), map.y(py[i])
    local col = color_of(index[labels and labels[i] or 1])
    if opts.images then
      cv:image(require("nnvis.draw.image").to_rgb(opts.images:select(1, i)), x - t / 2, y - t / 2, t, t, true)
      cv:box(x - t / 2, y - t / 2, t, t, col, 1)
    else
      cv:circle(x, y, r, col)
    end
  end
  legend(cv, map.right + style.pad * 2, map.top, entries)
  return cv:figure("scatter plot", title)
end

--- grad_flow(flow [, opts]): the gradient flow fit recorded (history.grad_flow).  opts.what
--- ("grad_norm" or "update_ratio"), vanish (1e-6) and explode (1e2) thresholds (for update
--- ratios 1e-5 and 1e-1), width (380 points), title.  A layers x steps heatmap of log10
--- values above one line per layer with the thresholds as their own lines.
function M.grad_flow(flow, opts)
  opts = util.check_opts("plot.grad_flow", opts, { "what", "vanish", "explode", "width", "title", "scale" })
  local what = opts.what or "grad_norm"
  local mat, layers = require("nnvis.train.trainlog").flow_matrix(flow, what)
  local ratio = what == "update_ratio"
  local vanish = opts.vanish or (ratio and 1e-5 or 1e-6)
  local explode = opts.explode or (ratio and 1e-1 or 1e2)
  local W = opts.width or 380
  local image = require "nnvis.draw.image"
  local name = ratio and "weight-update ratio |dw|/|w|" or "gradient norm"
  local rows, cols = mat:size(1), mat:size(2)
  -- the row names, then the heatmap: 10 points per layer, the steps over the rest of the width
  local nw = 0
  for _, l in ipairs(layers) do nw = math.max(nw, Canvas.measure(l, style.tick_size)) end
  local band = 10
  local hm = image.heatmap(mat, { title = string.format("log10 %s: a row per layer, steps %d to %d", name,
    flow.steps[1], flow.steps[#flow.steps]), scale = opts.scale,
    cell = nil, yticks = false, xticks = flow.steps, xlabel = "step" })
  local series = {}
  for i, l in ipairs(layers) do
    local ys = {}
    for j = 1, #flow.steps do ys[j] = math.max(flow[what][l][j] or 0, 1e-30) end
    series[i] = { name = l, x = flow.steps, y = ys }
  end
  local first, last = flow.steps[1], flow.steps[#flow.steps]
  local vname, ename = string.format("vanishing below %g", vanish), string.format("exploding above %g", explode)
  local thresholds = { [vname] = { 0.5, 0.5, 0.5 }, [ename] = { 0.8, 0, 0 } }
  series[#series + 1] = { name = vname, x = { first, last }, y = { vanish, vanish } }
  series[#series + 1] = { name = ename, x = { first, last }, y = { explode, explode } }
  -- plot.line orders named series by name; the colours follow that order
  table.sort(series, function(a, b) return tostring(a.name) < tostring(b.name) end)
  local colors, k = {}, 0
  for i, sr in ipairs(series) do
    if thresholds[sr.name] then colors[i] = thresholds[sr.name] else k = k + 1; colors[i] = color_of(k) end
  end
  local ln = plot.line(series, { title = opts.title or (name .. " per layer"), xlabel = "step", ylabel = name, logy = true,
    width = W, height = 220, colors = colors, markers = false, scale = opts.scale })
  local sc = style.scale_of(opts)
  local hw, hh = hm:size(3) / sc, hm:size(2) / sc
  local lw, lh = ln:size(3) / sc, ln:size(2) / sc
  local cv = Canvas.new(math.max(lw, hw + nw + style.pad * 2), hh + lh + style.pad, { scale = opts.scale, bg = 1 })
  place(cv, hm, nw + style.pad * 2, 0)
  -- the heatmap's map panel: row names at its rows
  local lay = require("nnvis.draw.figure").layout(hm)
  local map_panel
  for _, pn in ipairs(lay and lay.panels or {}) do if pn.name == "map" then map_panel = pn end end
  if map_panel then
    for i, l in ipairs(layers) do
      cv:text(l, nw + style.pad, map_panel.y + (i - 0.5) * map_panel.h / rows, { size = style.tick_size, ax = 1, ay = 0.5 })
    end
  end
  place(cv, ln, 0, hh + style.pad)
  return cv:figure("gradient flow", opts.title or name)
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
--- width, height, log (plot log10 of the loss), scale
function M.landscape(res, opts)
  opts = util.check_opts("plot.landscape", opts, { "title", "width", "height", "levels", "log", "scale" })
  if type(res) ~= "table" or not res.alphas or not res.losses then error("landscape: expected what nv.landscape.line or surface returned", 2) end
  if not util.is_tensor(res.losses) then
    return plot.line({ { name = "loss", x = res.alphas, y = res.losses } }, { title = opts.title or "loss along a filter-normalized direction",
      xlabel = "step along the direction (0 = the model)", ylabel = "loss", logy = opts.log, width = opts.width or 320,
      height = opts.height or 200, legend = false, scale = opts.scale })
  end
  local L = res.losses:detach()
  if opts.log then L = L:clamp(1e-12, math.huge):log() / math.log(10) end
  local rows, cols = L:size(1), L:size(2)
  local title = opts.title or ((opts.log and "log10 loss" or "loss") .. " around the weights, two filter-normalized directions")
  local side = math.min(opts.width or 240, opts.height or 240)
  local lo, hi = L:min():item(), L:max():item()
  local cbw = Canvas.colorbar_width(lo, hi, opts.log and "log10 loss" or "loss")
  local m = style.margin
  local axes = { xticks = res.alphas, yticks = res.betas, xlabel = "alpha (first direction)", ylabel = "beta (second)" }
  local axl, axb = Canvas.cell_axes_room(rows, cols, axes)
  local W = m + axl + side + style.pad * 2 + cbw + m
  local tl, tsz = Canvas.fit(title, style.title_size, W - 2 * m, true)
  local _, th = Canvas.measure("Ag", tsz, true)
  local top = m + #tl * th + style.pad
  local cv = Canvas.new(W, top + side + axb + m, { scale = opts.scale, bg = 1 })
  for i, l in ipairs(tl) do cv:text(l, W / 2, m + (i - 1) * th, { size = tsz, bold = true, ax = 0.5 }) end
  local left = m + axl   -- the map's left edge, right of the row labels
  local cmap = require "nnvis.draw.colormap"
  local img = cmap.apply(require("nnvis.draw.image").normalize(L, { min = lo, max = hi }), "viridis")
  cv:image(img, left, top, side, side, true)
  cv:panel("map", left, top, side, side)
  local g = L:contiguous():values()
  local levels = opts.levels or 10
  local cw, chh = side / cols, side / rows
  for k = 1, levels do
    local v = lo + (hi - lo) * k / (levels + 1)
    for _, sgm in ipairs(contour_segments(g, rows, cols, v)) do
      local x1, y1 = left + (sgm[1][1] - 0.5) * cw, top + (sgm[1][2] - 0.5) * chh
      local x2, y2 = left + (sgm[2][1] - 0.5) * cw, top + (sgm[2][2] - 0.5) * chh
      cv:line({ x1, y1, x2, y2 }, { 1, 1, 1 }, 0.6, { alpha = 0.8 })
    end
  end
  -- the model itself: the centre of the grid
  cv:circle(left + side / 2, top + side / 2, 2.5, { 1, 0, 0 })
  cv:cell_axes(left, top, side, side, rows, cols, axes)
  cv:colorbar(left + side + style.pad * 2, top, side, lo, hi, "viridis", opts.log and "log10 loss" or "loss")
  return cv:figure("loss landscape", title)
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
--- last few), width (400 points), height (250), title, scale
function M.neurons(model, opts)
  opts = util.check_opts("plot.neurons", opts, { "input", "top_k", "max_neurons", "width", "height", "title", "scale" })
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
    local cap = require("nnvis.inspect.capture").capture(model, x, { layers = names })
    acts = { values(x:reshape(-1)) }
    for i, e in ipairs(lin) do acts[i + 1] = values(cap[e.name].output:reshape(-1)) end
  end
  local maxn = opts.max_neurons or 64
  local W, H = opts.width or 400, opts.height or 250
  local cv = Canvas.new(W, H, { scale = opts.scale, bg = 1 })
  local m = style.margin
  local title = opts.title or string.format("neurons and connections: %s", table.concat(sizes, " -> "))
  local tl, tsz = Canvas.fit(title, style.title_size, W - 2 * m, true)
  local _, th = Canvas.measure("Ag", tsz, true)
  for i, l in ipairs(tl) do cv:text(l, W / 2, m + (i - 1) * th, { size = tsz, bold = true, ax = 0.5 }) end
  local note = "lines: red positive, blue negative weight; width and opacity by |weight|" ..
    (acts and "; circles: activation for the input (viridis, centred on 0)" or "")
  local nl, nsz = Canvas.fit(note, style.tick_size, W - 2 * m)
  local _, nh = Canvas.measure("Ag", nsz)
  local y0 = m + #tl * th + 2
  for i, l in ipairs(nl) do cv:text(l, W / 2, y0 + (i - 1) * nh, { size = nsz, ax = 0.5, color = style.muted }) end
  local _, lh = Canvas.measure("Ag", style.tick_size)
  local top, bottom = y0 + #nl * nh + style.pad + 6, H - m - lh - 6
  local shown, pos, gaps = {}, {}, {}
  for l, n in ipairs(sizes) do
    local idx = {}
    if n <= maxn then for i = 1, n do idx[#idx + 1] = i end
    else
      for i = 1, maxn // 2 do idx[#idx + 1] = i end
      for i = n - maxn // 2 + 1, n do idx[#idx + 1] = i end
    end
    shown[l] = idx
    pos[l] = {}
    local x = m + 20 + (W - 2 * m - 40) * (l - 1) / math.max(#sizes - 1, 1)
    -- a layer shown in part keeps a slot of three between its halves for the ones left out
    local slots = #idx + (n > maxn and 3 or 0)
    for k, i in ipairs(idx) do
      local s = (n > maxn and k > maxn // 2) and k + 3 or k
      pos[l][i] = { x, top + (bottom - top) * (s - 0.5) / slots }
    end
    if n > maxn then gaps[l] = { x, top + (bottom - top) * (maxn // 2 + 1.5) / slots, n - #idx } end
  end
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
        local mag = math.abs(v) / wmax
        local col = v >= 0 and { 0.84, 0.15, 0.16 } or { 0.12, 0.47, 0.71 }
        local p, q = pos[l][i], pos[l + 1][j]
        cv:line({ p[1], p[2], q[1], q[2] }, col, 0.3 + 1.7 * mag, { alpha = 0.15 + 0.75 * mag })
      end
    end
  end
  local cmap = require "nnvis.draw.colormap"
  for l = 1, #sizes do
    local r = math.max(1.5, math.min(5, (bottom - top) / #shown[l] / 2.6))
    local amax = 0
    if acts then for _, i in ipairs(shown[l]) do amax = math.max(amax, math.abs(acts[l][i])) end end
    for _, i in ipairs(shown[l]) do
      local p = pos[l][i]
      local fill = { 0.95, 0.95, 0.95 }
      if acts then fill = cmap.color("viridis", amax > 0 and (acts[l][i] / amax + 1) / 2 or 0.5) end
      cv:circle(p[1], p[2], r, fill)
      cv:circle(p[1], p[2], r, { 0.2, 0.2, 0.2 }, 0.6)
    end
    if gaps[l] then
      local g = gaps[l]
      local more = string.format("⋮ %d more", g[3])
      local mw, mh = Canvas.measure(more, style.tick_size)
      local bx = math.max(m / 2, g[1] - 6)
      cv:rect(bx, g[2] - mh / 2 - 1, mw + 6, mh + 2, 1, 0.92)
      cv:box(bx, g[2] - mh / 2 - 1, mw + 6, mh + 2, { 0.6, 0.6, 0.6 }, 0.5)
      cv:text(more, bx + 3, g[2], { size = style.tick_size, ay = 0.5, color = style.text })
    end
    -- the layer's name under it, kept inside the figure (the last one was cut at the edge)
    local name = string.format("%s (%d)", l == 1 and "input" or lin[l - 1].name, sizes[l])
    local tw = Canvas.measure(name, style.tick_size)
    local x = math.max(m + tw / 2, math.min(W - m - tw / 2, pos[l][shown[l][1]][1]))
    cv:text(name, x, H - m, { size = style.tick_size, ax = 0.5, ay = 1 })
  end
  return cv:figure("neuron diagram", title)
end

--- decision_regions(model, x (N,2), y [, opts]): the class a 2-D classifier predicts over
--- the input plane, shaded by its probability, with the points x coloured by their labels y.
--- opts: resolution (240 cells per side), margin (0.1 of the data's range), names, title,
--- width (360 points), height (280), scale.  Returns the figure and the (R,R) predicted classes
--- (row 1 at the top).
function M.decision_regions(model, x, y, opts)
  opts = util.check_opts("plot.decision_regions", opts, { "resolution", "margin", "names", "title", "width", "height", "scale" })
  if not util.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= 2 then
    error("decision_regions: expected inputs (N,2), got " .. (util.is_tensor(x) and util.shape_str(x) or type(x)), 2)
  end
  local R = opts.resolution or 240
  local px, py = values(x:select(2, 1)), values(x:select(2, 2))
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for i = 1, #px do xlo, xhi = math.min(xlo, px[i]), math.max(xhi, px[i]); ylo, yhi = math.min(ylo, py[i]), math.max(yhi, py[i]) end
  local mg = opts.margin or 0.1
  local mx, my = (xhi - xlo) * mg + 1e-6, (yhi - ylo) * mg + 1e-6
  xlo, xhi, ylo, yhi = xlo - mx, xhi + mx, ylo - my, yhi + my
  local title = opts.title or "decision regions (shade: predicted probability)"
  local k
  local entries = {}
  local probe = util.with_mode(model, false, function() return core.no_grad(model, x:narrow(1, 1, 1)) end)
  k = util.first_tensor(probe):size(2)
  local pal = {}
  for c = 1, k do
    pal[c] = color_of(c)
    entries[c] = { tostring(opts.names and opts.names[c] or ("class " .. c)), pal[c] }
  end
  local reserve = legend_width(entries) + style.pad * 2
  local cv, map = plot.frame({ title = title, width = opts.width or 360, height = opts.height or 280, scale = opts.scale },
    xlo, xhi, ylo, yhi, nil, false, reserve)
  -- the frame pads its axes: the grid covers exactly what the frame shows
  local function inv_x(px_) return xlo + (px_ - map.x(xlo)) / (map.x(xhi) - map.x(xlo)) * (xhi - xlo) end
  local function inv_y(py_) return ylo + (py_ - map.y(ylo)) / (map.y(yhi) - map.y(ylo)) * (yhi - ylo) end
  local gx0, gx1 = inv_x(map.left), inv_x(map.right)
  local gy0, gy1 = inv_y(map.bottom), inv_y(map.top)
  local gx = (core.arange(0, R) + 0.5) / R * (gx1 - gx0) + gx0
  local gy = gy1 - (core.arange(0, R) + 0.5) / R * (gy1 - gy0)
  local grid = core.stack({ gx:view(1, R):expand(R, R), gy:view(R, 1):expand(R, R) }, 3):reshape(R * R, 2)
  local out = util.with_mode(model, false, function() return core.no_grad(model, grid) end)
  local p = core.softmax(util.first_tensor(out), 2)
  local pmax, cls = p:max(2)
  local palette = core.tensor(pal)
  local col = palette:index_select(1, cls:view(-1))
  local conf = ((pmax:view(-1, 1) - 1 / k) / (1 - 1 / k)):clamp(0, 1) * 0.6 + 0.15
  local img = (col * conf + (1 - conf)):t():reshape(3, R, R):contiguous()
  cv:image(img, map.left, map.top, map.right - map.left, map.bottom - map.top, true)
  cv:box(map.left, map.top, map.right - map.left, map.bottom - map.top, style.frame, style.frame_width)
  local yv = values(y)
  for i = 1, #px do
    local xx, yy = map.x(px[i]), map.y(py[i])
    cv:circle(xx, yy, 2.2, pal[math.floor(yv[i])] or { 0, 0, 0 })
    cv:circle(xx, yy, 2.2, { 0, 0, 0 }, 0.5)
  end
  legend(cv, map.right + style.pad * 2, map.top, entries)
  return cv:figure("decision regions", title), cls:view(R, R)
end

return M

-- nnvis.draw.canvas — a figure's drawing: rectangles, lines, circles, text in a real font and
-- images, recorded as a list of operations and replayed by Cairo (csrc/draw/draw.c) on a raster
-- (an image tensor, then PNG), an SVG or a PDF surface — one drawing path, three back ends.
-- Coordinates and sizes are points from the top-left corner; a raster has `scale` pixels
-- per point.  Text is measured with Cairo before it is placed, and every text box drawn is
-- kept in cv.layout.texts ({text, x, y, w, h, size, panel}) with the panels in
-- cv.layout.panels ({name, x, y, w, h}), so specs can check that nothing is cut.
local core = require "nnvis.core"
local style = require "nnvis.draw.style"

local Canvas = {}
Canvas.__index = Canvas

local function rgba(c, alpha)
  if type(c) == "number" then c = { c, c, c } end
  c = c or style.text
  return { c[1], c[2], c[3], alpha or c[4] or 1 }
end

--- a new canvas w x h points; opts.scale (pixels per point, default nv.style.scale), opts.bg
function Canvas.new(w, h, opts)
  opts = opts or {}
  if not (w >= 1 and h >= 1) then error(string.format("canvas: size %gx%g must be positive", w, h), 2) end
  local cv = setmetatable({ w = w, h = h, scale = style.scale_of(opts), ops = {},
                            layout = { width = w, height = h, texts = {}, panels = {} } }, Canvas)
  if opts.bg then cv:rect(0, 0, w, h, opts.bg) end
  return cv
end

--- width, height (ascent + descent) in points of s at size points (bold; mono: DejaVu Sans Mono)
function Canvas.measure(s, size, bold, mono)
  local w, a, d = core.text_extents(tostring(s), size or style.label_size, bold, mono)
  return w, a + d
end

--- Fits s into maxw points: the largest size from `size` down to `floor` (default
--- nv.style.min_size) at which it fits on one line, else the words wrapped onto lines at the
--- floor size (a word longer than the line is broken at characters, never dropped).
--- Returns the lines and the size.
function Canvas.fit(s, size, maxw, bold, floor)
  s = tostring(s)
  size = size or style.label_size
  floor = math.min(floor or style.min_size, size)
  local sz = size
  while sz >= floor do
    if Canvas.measure(s, sz, bold) <= maxw then return { s }, sz end
    sz = sz - 0.5
  end
  sz = floor
  local lines, cur = {}, ""
  local function push_word(word)
    local try = cur == "" and word or cur .. " " .. word
    if Canvas.measure(try, sz, bold) <= maxw then cur = try; return end
    if cur ~= "" then lines[#lines + 1] = cur; cur = "" end
    -- a word wider than the line: broken at characters
    while Canvas.measure(word, sz, bold) > maxw and #word > 1 do
      local n = #word
      while n > 1 and Canvas.measure(word:sub(1, n), sz, bold) > maxw do n = n - 1 end
      lines[#lines + 1] = word:sub(1, n)
      word = word:sub(n + 1)
    end
    cur = word
  end
  for word in s:gmatch("%S+") do push_word(word) end
  if cur ~= "" then lines[#lines + 1] = cur end
  return lines, sz
end

--- filled rectangle
function Canvas:rect(x, y, w, h, color, alpha)
  self.ops[#self.ops + 1] = { "rect", x, y, w, h, rgba(color, alpha) }
  return self
end

--- rectangle outline, line width lw (points)
function Canvas:box(x, y, w, h, color, lw)
  self.ops[#self.ops + 1] = { "rect", x, y, w, h, rgba(color), lw or style.frame_width }
  return self
end

--- polyline through {x1, y1, x2, y2, ...}; opts: dash (points), alpha, closed, fill
function Canvas:line(points, color, lw, opts)
  opts = opts or {}
  if #points >= 4 or (opts.fill and #points >= 6) then
    self.ops[#self.ops + 1] = { "path", points, rgba(color, opts.alpha), opts.fill and 0 or (lw or style.line_width),
                                opts.closed or opts.fill, opts.dash }
  end
  return self
end

--- filled circle (lw: outline instead)
function Canvas:circle(x, y, r, color, lw)
  self.ops[#self.ops + 1] = { "circle", x, y, r, rgba(color), lw }
  return self
end

--- Text s with the point (x, y) at fractions (ax, ay) of its box (0, 0: top-left; 0.5, 0:
--- top centre; 1, 0.5: right middle).  opts: size, color, ax, ay, angle (degrees, counter-
--- clockwise), bold, mono, panel (the name of the panel the text belongs to).  Returns the box
--- x, y, w, h in points (unrotated text).
function Canvas:text(s, x, y, opts)
  opts = opts or {}
  s = tostring(s)
  local size = opts.size or style.label_size
  local ax, ay = opts.ax or 0, opts.ay or 0
  self.ops[#self.ops + 1] = { "text", s, x, y, size, rgba(opts.color), ax, ay, opts.angle or 0, opts.bold, opts.mono }
  local w, h = Canvas.measure(s, size, opts.bold, opts.mono)
  local bx, by, bw, bh
  if opts.angle == 90 then bx, by, bw, bh = x - ay * h, y - (1 - ax) * w, h, w
  else bx, by, bw, bh = x - ax * w, y - ay * h, w, h end
  local t = self.layout.texts
  t[#t + 1] = { text = s, x = bx, y = by, w = bw, h = bh, size = size, panel = opts.panel }
  return bx, by, bw, bh
end

--- an image (C,H,W) in [0,1] (C = 1..4) drawn into the box x, y, w, h (default: one point
--- per pixel), nearest-neighbour unless smooth, with opacity alpha (1); over, a (3,H,W)
--- image of the same size, is blended in first: (1 - over_alpha) img + over_alpha over
function Canvas:image(img, x, y, w, h, smooth, alpha, over, over_alpha)
  if img:dim() == 2 then img = img:unsqueeze(1) end
  self.ops[#self.ops + 1] = { "image", img:detach(), x, y, w or img:size(3), h or img:size(2), not smooth, alpha or 1,
                              over and over:detach(), over_alpha }
  return self
end

--- true when the drawing holds raster images (pictures, heatmaps), not only vectors and text
function Canvas:has_images()
  for _, op in ipairs(self.ops) do if op[1] == "image" then return true end end
  return false
end

--- records a data point at (x, y) with its label ("loss: step 3, 0.412"): what interactive
--- HTML shows under the pointer (nnvis.interactive)
function Canvas:datum(x, y, label)
  local d = self.data
  if not d then d = {}; self.data = d end
  d[#d + 1] = { x, y, label }
end

--- records a panel (the box specs check texts against); returns the panel
function Canvas:panel(name, x, y, w, h)
  local p = { name = name, x = x, y = y, w = w, h = h }
  self.layout.panels[#self.layout.panels + 1] = p
  return p
end

--- the drawing as a (3,H,W) image tensor at the canvas's scale
function Canvas:tensor() return core.draw_render("raster", self.w, self.h, self.scale, self.ops) end

--- the drawing as SVG text
function Canvas:svg()
  -- made once: Cairo numbers glyphs and surfaces per process, so a second rendering differs
  self._svg = self._svg or core.draw_render("svg", self.w, self.h, 1, self.ops)
  return self._svg
end

--- the drawing as a PDF file's bytes
function Canvas:pdf()
  self._pdf = self._pdf or core.draw_render("pdf", self.w, self.h, 1, self.ops)
  return self._pdf
end

--- the raster image, labelled as a figure (kind, title) that also renders as SVG and PDF
function Canvas:figure(kind, title)
  local img = self:tensor()
  self.layout.scale = self.scale
  return require("nnvis.draw.labels").label(img, kind, title, self)
end

-- colorbar ticks: nice steps inside [vmin, vmax] in one format (at most 3 significant
-- digits), or the two ends when the range holds fewer than two nice ticks
local function bar_ticks(vmin, vmax)
  local plot = require "nnvis.draw.ticks"
  if not (vmax > vmin) then return { vmin }, { string.format("%.3g", vmin) } end
  local t, step = plot.ticks(vmin, vmax, 5)
  local inside = {}
  for _, v in ipairs(t) do if v >= vmin - 1e-9 * step and v <= vmax + 1e-9 * step then inside[#inside + 1] = v end end
  if #inside < 2 then inside = { vmin, vmax }; step = (vmax - vmin) end
  local f = plot.tick_format(inside, step)
  local labels = {}
  for i, v in ipairs(inside) do labels[i] = f(v) end
  return inside, labels
end

-- ---- axes of a grid of cells (heatmaps, loss surfaces, gradient-flow maps) ----------------
-- the cells that get a tick, at most `most`: every one, every other from 1, or 1 and the
-- multiples of 5, 10, 20, 50, ... (1, 10, 20, 30 rather than 1, 11, 21)
local function cell_ticks(n, most)
  local step, k = 1, 0
  while n / step + 1 > most do
    k = k + 1
    step = math.tointeger(({ 1, 2, 5 })[k % 3 + 1] * 10 ^ (k // 3))
  end
  local out = {}
  if step < 5 then
    for i = 1, n, step do out[#out + 1] = i end
  else
    out[1] = 1
    for i = step, n, step do out[#out + 1] = i end
  end
  return out
end

-- the label of cell i of an axis: labels[i] (strings or numbers; numbers with %.3g), or i
local function cell_label(labels, i)
  local v = labels and labels[i]
  if v == nil then return tostring(i) end
  if type(v) == "number" then return (math.tointeger(v) and tostring(math.tointeger(v))) or string.format("%.3g", v) end
  return tostring(v)
end

--- The room cell axes take: left (row labels, ylabel) and bottom (column labels, xlabel),
--- in points.  opts: xticks / yticks (a label per column / row, false: no axis), xlabel, ylabel.
function Canvas.cell_axes_room(rows, cols, opts)
  opts = opts or {}
  local _, th = Canvas.measure("0", style.tick_size)
  local _, lh = Canvas.measure("Ag", style.label_size)
  local left, bottom = 0, 0
  if opts.yticks ~= false then
    local w = 0
    for _, i in ipairs(cell_ticks(rows, 8)) do w = math.max(w, Canvas.measure(cell_label(opts.yticks, i), style.tick_size)) end
    left = style.tick_len + 2 + w + (opts.ylabel and lh + 2 or 0)
  end
  if opts.xticks ~= false then bottom = style.tick_len + 2 + th + (opts.xlabel and lh + 2 or 0) end
  return left, bottom
end

--- Ticks and labels of a grid of rows x cols cells drawn at (x, y, w, h): row numbers (or
--- opts.yticks) on the left, column numbers (or opts.xticks) below, 1-based, at most 8 and 10
--- of them in steps of 1, 2, 5, 10, ...; opts.xlabel and opts.ylabel name the axes.
function Canvas:cell_axes(x, y, w, h, rows, cols, opts)
  opts = opts or {}
  local ts, tl = style.tick_size, style.tick_len
  local _, th = Canvas.measure("0", ts)
  local _, lh = Canvas.measure("Ag", style.label_size)
  if opts.yticks ~= false then
    local maxw = 0
    for _, i in ipairs(cell_ticks(rows, 8)) do
      local ty = y + (i - 0.5) * h / rows
      self:line({ x - tl, ty, x, ty }, style.frame, style.frame_width)
      local s = cell_label(opts.yticks, i)
      self:text(s, x - tl - 2, ty, { size = ts, ax = 1, ay = 0.5, color = style.muted })
      maxw = math.max(maxw, Canvas.measure(s, ts))
    end
    if opts.ylabel then
      self:text(opts.ylabel, x - tl - 4 - maxw - lh / 2, y + h / 2, { size = style.label_size, ax = 0.5, ay = 0.5, angle = 90 })
    end
  end
  if opts.xticks ~= false then
    local lastx = -math.huge
    for _, j in ipairs(cell_ticks(cols, 10)) do
      local tx = x + (j - 0.5) * w / cols
      local s = cell_label(opts.xticks, j)
      local sw = Canvas.measure(s, ts)
      self:line({ tx, y + h, tx, y + h + tl }, style.frame, style.frame_width)
      if tx - sw / 2 > lastx + 3 then
        self:text(s, tx, y + h + tl + 2, { size = ts, ax = 0.5, color = style.muted })
        lastx = tx + sw / 2
      end
    end
    if opts.xlabel then
      self:text(opts.xlabel, x + w / 2, y + h + tl + 4 + th, { size = style.label_size, ax = 0.5 })
    end
  end
end

--- the width in points a colorbar with these values and label takes (bar, ticks, label)
function Canvas.colorbar_width(vmin, vmax, label)
  local _, labels = bar_ticks(vmin, vmax)
  local w = 0
  for _, l in ipairs(labels) do w = math.max(w, Canvas.measure(l, style.tick_size)) end
  local _, lh = Canvas.measure("Ag", style.label_size)
  return style.colorbar_width + style.tick_len + 2 + w + (label and style.pad + 2 * lh or 0)   -- up to 2 lines
end

--- A vertical colorbar with its top-left at (x, y), h points tall: the colormap `cmap`
--- from vmin (bottom) to vmax (top), nice ticks and an optional label along its side.
--- Recorded as the panel "colorbar".
function Canvas:colorbar(x, y, h, vmin, vmax, cmap, label)
  local n = math.max(2, math.floor(h * self.scale + 0.5))
  local ramp = (core.arange(n - 1, -1, -1) / (n - 1)):view(n, 1)
  local bw = style.colorbar_width
  self:image(require("nnvis.draw.colormap").apply(ramp, cmap or "viridis"), x, y, bw, h, true)
  self:box(x, y, bw, h, style.frame, style.frame_width * 0.75)
  local ticks, labels = bar_ticks(vmin, vmax)
  local tw = 0
  for i, v in ipairs(ticks) do
    local ty = vmax > vmin and y + (vmax - v) / (vmax - vmin) * h or y + h / 2
    self:line({ x + bw, ty, x + bw + style.tick_len, ty }, style.frame, style.frame_width)
    local _, _, w = self:text(labels[i], x + bw + style.tick_len + 2, ty, { size = style.tick_size, ay = 0.5, panel = "colorbar" })
    tw = math.max(tw, w)
  end
  local wtot = bw + style.tick_len + 2 + tw
  if label then   -- along the bar, read bottom to top; wrapped onto more lines when taller than it
    local lines, size = Canvas.fit(label, style.label_size, h)
    local _, lh = Canvas.measure("Ag", size)
    for i, l in ipairs(lines) do
      self:text(l, x + wtot + style.pad + (i - 1) * lh, y + h / 2, { size = size, ax = 0.5, angle = 90, panel = "colorbar" })
    end
    wtot = wtot + style.pad + #lines * lh
  end
  local _, th = Canvas.measure("0", style.tick_size)
  self:panel("colorbar", x, y - th / 2, wtot, h + th)
  return wtot
end

--- Canvas.text_width(s, size [, bold]): the width in points of text s at that font size
function Canvas.text_width(s, size, bold) return (Canvas.measure(s, size, bold)) end

return Canvas

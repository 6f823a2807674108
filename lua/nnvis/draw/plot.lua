-- nnvis.draw.plot — charts drawn by nnvis itself: line charts (several series, ticks, legend,
-- log scale) for training curves and histograms for weights, activations and gradients,
-- as (3,H,W) images for nv.image.save; and terminal renderings (sparklines, small
-- histograms) for the REPL.
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local Canvas = require "nnvis.draw.canvas"
local style = require "nnvis.draw.style"
local label = require("nnvis.draw.labels").label   -- so nv.show can say what a chart is

local M = {}

-- the qualitative palette (nnvis.style's, shared by every figure)
M.palette = style.palette

local function values(v)
  if getmetatable(v) == core.tensor_mt then return v:contiguous():values() end
  return v
end

-- ticks and their labels (nnvis.draw.ticks), here too for code that found them in plot
local ticks = require "nnvis.draw.ticks"
M.ticks, M.tick_format = ticks.ticks, ticks.tick_format

local SUP = { ["-"] = "⁻", ["0"] = "⁰", ["1"] = "¹", ["2"] = "²", ["3"] = "³", ["4"] = "⁴", ["5"] = "⁵",
              ["6"] = "⁶", ["7"] = "⁷", ["8"] = "⁸", ["9"] = "⁹" }
local function pow10(e) return "10" .. tostring(math.floor(e)):gsub(".", SUP) end

-- one axis: the data range [lo, hi] (log10 already applied when log) padded by a margin,
-- its major ticks with labels, and minor ticks (log axes: 2..9 x each decade)
local function axis(lo, hi, log, n, integer)
  local span = hi - lo
  if span <= 0 then span = math.abs(lo) > 0 and math.abs(lo) * 0.1 or 1 end
  local a, b = lo - 0.05 * span, hi + 0.05 * span
  local major, minor, labels = {}, {}, {}
  if log then
    for e = math.ceil(a - 1e-9), math.floor(b + 1e-9) do major[#major + 1] = e end
    for e = math.floor(a) - 1, math.ceil(b) do
      for m = 2, 9 do
        local v = e + math.log(m, 10)
        if v >= a and v <= b then minor[#minor + 1] = v end
      end
    end
    for i, e in ipairs(major) do labels[i] = pow10(e) end
    if #major < 2 then   -- less than two decades shown: the minor ticks carry labels too
      major, labels = {}, {}
      for e = math.floor(a) - 1, math.ceil(b) do
        for _, m in ipairs { 1, 2, 5 } do
          local v = e + math.log(m, 10)
          if v >= a and v <= b then
            major[#major + 1] = v
            labels[#labels + 1] = string.format("%.3g", 10 ^ v)   -- 1-2-5 steps: one %g format
          end
        end
      end
    end
    return { lo = a, hi = b, major = major, minor = minor, labels = labels }
  end
  local t, step
  if integer then
    -- whole numbers only (epochs, steps, counts): the smallest step of 1, 2, 5, 10, 20, ...
    -- that gives at most n + 1 ticks, so 2 or 3 points get a tick each
    local lo_i, hi_i = math.ceil(a - 1e-9), math.floor(b + 1e-9)
    step = 1
    local k = 0
    while (hi_i - lo_i) / step + 1 > n + 1 do
      k = k + 1
      step = ({ 1, 2, 5 })[k % 3 + 1] * 10 ^ (k // 3)
    end
    t = {}
    for v = math.ceil(lo_i / step) * step, hi_i, step do t[#t + 1] = math.tointeger(v) or v end
  else
    t, step = M.ticks(a, b, n)
  end
  for _, v in ipairs(t) do if v >= a - 1e-9 * step and v <= b + 1e-9 * step then major[#major + 1] = v end end
  local f = M.tick_format(major, step)
  for i, v in ipairs(major) do labels[i] = f(v) end
  return { lo = a, hi = b, major = major, minor = minor, labels = labels }
end

--- plot.frame(opts, xlo, xhi, ylo, yhi [, xint, ypad, reserve]) -> canvas, map: the frame
--- line charts, histograms and nnvis.views share, in points: title, axis labels, ticks in one
--- format per axis, a margin between the data and the frame (ypad = false: none below);
--- reserve points are left free on the right (for a legend); xint: integer x ticks.  map.x
--- and map.y turn data into canvas coordinates; map.left/right/top/bottom bound the plot.
local function frame(opts, xlo, xhi, ylo, yhi, xint, ypad, reserve, yint)
  local W, H = opts.width or 320, opts.height or 200
  local cv = Canvas.new(W, H, { scale = opts.scale, bg = 1 })
  local logy, logx = opts.logy, opts.logx
  local function ty(v) return logy and math.log(v, 10) or v end
  local function tx(v) return logx and math.log(v, 10) or v end
  local ya = axis(ty(ylo), ty(yhi), logy, 5, yint and not logy)
  if ypad == false then ya.lo = ty(ylo) end
  local xa = axis(tx(xlo), tx(xhi), logx, 6, xint)
  local ts, ls = style.tick_size, style.label_size
  local lw = 0
  for _, s in ipairs(ya.labels) do lw = math.max(lw, Canvas.measure(s, ts)) end
  local _, th = Canvas.measure("0", ts)
  local _, lh = Canvas.measure("Ag", ls)
  local title_lines, title_size
  local m = style.margin
  local top = m
  if opts.title then
    title_lines, title_size = Canvas.fit(opts.title, style.title_size, W - 2 * m, true, style.title_size - 1.5)
    local _, h1 = Canvas.measure("Ag", title_size, true)
    for i, l in ipairs(title_lines) do cv:text(l, W / 2, m + (i - 1) * h1, { size = title_size, bold = true, ax = 0.5 }) end
    top = m + #title_lines * h1 + style.pad
  end
  top = top + th / 2
  local left = m + (opts.ylabel and lh + style.pad or 0) + lw + style.tick_len + 2
  local right = W - m - math.max(0, Canvas.measure(xa.labels[#xa.labels] or "", ts) / 2 - m / 2) - (reserve or 0)
  local bottom = H - m - th - style.tick_len - 2 - (opts.xlabel and lh + style.pad or 0)
  local pw, ph = right - left, bottom - top
  if pw < 10 or ph < 10 then error(string.format("plot: %gx%g points leave no room for the data", W, H), 3) end
  local map = {}
  function map.x(v) return left + (tx(v) - xa.lo) / (xa.hi - xa.lo) * pw end
  function map.y(v) return bottom - (ty(v) - ya.lo) / (ya.hi - ya.lo) * ph end
  map.left, map.right, map.top, map.bottom = left, right, top, bottom
  cv:panel("plot", left, top, pw, ph)
  -- grid, ticks and their labels
  for i, v in ipairs(ya.major) do
    local y = bottom - (v - ya.lo) / (ya.hi - ya.lo) * ph
    cv:line({ left, y, right, y }, style.grid, 0.6)
    cv:line({ left - style.tick_len, y, left, y }, style.frame, style.frame_width)
    cv:text(ya.labels[i], left - style.tick_len - 2, y, { size = ts, ax = 1, ay = 0.5, color = style.muted })
  end
  for _, v in ipairs(ya.minor) do
    local y = bottom - (v - ya.lo) / (ya.hi - ya.lo) * ph
    cv:line({ left - style.tick_len / 2, y, left, y }, style.frame, style.frame_width * 0.8)
  end
  local lastx = -math.huge
  for i, v in ipairs(xa.major) do
    local x = left + (v - xa.lo) / (xa.hi - xa.lo) * pw
    cv:line({ x, top, x, bottom }, style.grid, 0.6)
    cv:line({ x, bottom, x, bottom + style.tick_len }, style.frame, style.frame_width)
    local sw = Canvas.measure(xa.labels[i], ts)
    if x - sw / 2 > lastx + 4 then
      cv:text(xa.labels[i], x, bottom + style.tick_len + 2, { size = ts, ax = 0.5, color = style.muted })
      lastx = x + sw / 2
    end
  end
  for _, v in ipairs(xa.minor) do
    local x = left + (v - xa.lo) / (xa.hi - xa.lo) * pw
    cv:line({ x, bottom, x, bottom + style.tick_len / 2 }, style.frame, style.frame_width * 0.8)
  end
  cv:box(left, top, pw, ph, style.frame, style.frame_width)
  if opts.xlabel then cv:text(opts.xlabel, left + pw / 2, H - m, { size = ls, ax = 0.5, ay = 1 }) end
  if opts.ylabel then cv:text(opts.ylabel, m, top + ph / 2, { size = ls, ax = 0.5, ay = 0, angle = 90 }) end
  return cv, map
end
M.frame = frame

-- series as a list of {name =, y =, x =} from the accepted forms
local function normalize_series(series)
  if getmetatable(series) == core.tensor_mt or (type(series) == "table" and type(series[1]) == "number") then
    return { { y = values(series) } }
  end
  local out = {}
  if series.y then return { { name = series.name, y = values(series.y), x = series.x and values(series.x) } } end
  if #series > 0 then   -- a list: its own order
    for _, s in ipairs(series) do
      if type(s) == "table" and s.y then out[#out + 1] = { name = s.name, y = values(s.y), x = s.x and values(s.x) }
      else out[#out + 1] = { y = values(s) } end
    end
    return out
  end
  for k, s in pairs(series) do
    if type(k) == "string" and type(s) == "table" and s.y then out[#out + 1] = { name = k, y = values(s.y), x = s.x and values(s.x) }
    elseif type(k) == "string" then out[#out + 1] = { name = k, y = values(s) }
    elseif type(s) == "table" and s.y then out[#out + 1] = { name = s.name, y = values(s.y), x = s.x and values(s.x) }
    else out[#out + 1] = { y = values(s) } end
  end
  -- a table name -> values has no order: names sorted, each validation series ("val_loss")
  -- right after its training one ("loss")
  local function key(s)
    local n = tostring(s.name)
    local base = n:match("^val[_ ](.+)$") or n:match("^validation[_ ](.+)$")
    return (base or n) .. (base and "\1" or "\0")
  end
  table.sort(out, function(a, b) return key(a) < key(b) end)
  return out
end

-- the training series a validation series belongs with ("val_loss", "val loss" -> "loss")
local function val_base(name)
  if name == nil then return nil end
  name = tostring(name)
  return name:match("^val[_ ](.+)$") or name:match("^validation[_ ](.+)$")
end

--- Line chart of one or several series.  series: an array of numbers or a tensor; a table
--- name -> values; or a list of {name =, y =, x =}.  opts: title, xlabel, ylabel, width (320)
--- and height (200) in points, scale (pixels per point, nv.style.scale = 2), logy, logx,
--- legend (true when named), colors, thickness, markers (default: on series of fewer than
--- 30 points).  x values that are all integers (epochs, steps) get integer ticks.  The
--- legend goes in the corner of the plot with no data, else outside on the right.
--- Returns a (3,H,W) image (a figure with svg() and a measured layout through nv.figure.of).
function M.line(series, opts)
  opts = check_opts("plot.line", opts, { "colors", "legend", "markers", "scale", "thickness", "title", "xlabel", "ylabel", "width", "height", "logx", "logy" })
  local ss = normalize_series(series)
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  local xint = true
  for _, s in ipairs(ss) do
    for i, v in ipairs(s.y) do
      local x = s.x and s.x[i] or i
      local ok = v == v and math.abs(v) ~= math.huge and (not opts.logy or v > 0) and (not opts.logx or x > 0)
      if ok then
        ylo, yhi = math.min(ylo, v), math.max(yhi, v)
        xlo, xhi = math.min(xlo, x), math.max(xhi, x)
        if x ~= math.floor(x) then xint = false end
      end
    end
  end
  if ylo == math.huge then ylo, yhi, xlo, xhi = 0, 1, 1, 2 end
  if yhi == ylo then yhi = ylo + (opts.logy and ylo * 9 or 1) end
  if xhi == xlo then xhi = xlo + 1 end
  -- a validation series takes its training series' colour, drawn dashed (loss and val_loss
  -- read as one pair)
  local slot, dashed, used = {}, {}, 0
  local by_name = {}
  for k, s in ipairs(ss) do
    local base = val_base(s.name)
    if base and by_name[base] then slot[k], dashed[k] = slot[by_name[base]], true
    else used = used + 1; slot[k] = used end
    if s.name ~= nil then by_name[tostring(s.name)] = by_name[tostring(s.name)] or k end
  end
  local function color_of(k)
    return (opts.colors and opts.colors[k]) or style.palette[(slot[k] - 1) % #style.palette + 1]
  end
  local named = {}
  if opts.legend ~= false then
    for k, s in ipairs(ss) do if s.name then named[#named + 1] = { tostring(s.name), k } end end
  end
  local ls = style.label_size
  local _, eh = Canvas.measure("Ag", ls)
  local lgw = 0
  for _, n in ipairs(named) do lgw = math.max(lgw, Canvas.measure(n[1], ls)) end
  lgw = lgw + 24 + 2 * style.pad
  local lgh = #named * eh + 2 * style.pad
  local function draw(reserve)
    local cv, map = frame(opts, xlo, xhi, ylo, yhi, xint, nil, reserve)
    local pts_all = {}
    for k, s in ipairs(ss) do
      local color = color_of(k)
      local pts, n = {}, 0
      local function flush()
        if #pts >= 4 then cv:line(pts, color, opts.thickness or style.line_width, dashed[k] and { dash = 4 } or nil) end
        pts = {}
      end
      for i, v in ipairs(s.y) do
        local x = s.x and s.x[i] or i
        if v ~= v or math.abs(v) == math.huge or (opts.logy and v <= 0) or (opts.logx and x <= 0) then flush()
        else
          local px, py = map.x(x), map.y(v)
          pts[#pts + 1] = px
          pts[#pts + 1] = py
          pts_all[#pts_all + 1] = { px, py }
          n = n + 1
          cv:datum(px, py, string.format("%s%s = %.6g, %s = %.6g", s.name and (tostring(s.name) .. ": ") or "",
            opts.xlabel or "x", x, opts.ylabel or "y", v))
        end
      end
      flush()
      local markers = opts.markers
      if markers == nil then markers = n < style.markers_below end
      if markers or n == 1 then
        for i, v in ipairs(s.y) do
          local x = s.x and s.x[i] or i
          if v == v and math.abs(v) ~= math.huge and not (opts.logy and v <= 0) and not (opts.logx and x <= 0) then
            cv:circle(map.x(x), map.y(v), 2.2, color)
          end
        end
      end
      -- the segments between points also count as data when placing the legend
      for i = 2, #s.y do
        local a, b = s.y[i - 1], s.y[i]
        if a == a and b == b and math.abs(a) ~= math.huge and math.abs(b) ~= math.huge and not (opts.logy and (a <= 0 or b <= 0)) then
          local x0, x1 = s.x and s.x[i - 1] or i - 1, s.x and s.x[i] or i
          for f = 0.25, 0.75, 0.25 do
            pts_all[#pts_all + 1] = { map.x(x0) + f * (map.x(x1) - map.x(x0)), map.y(a) + f * (map.y(b) - map.y(a)) }
          end
        end
      end
    end
    return cv, map, pts_all
  end
  local cv, map, pts = draw()
  if #named > 0 then
    local p = style.pad
    local corners = { { map.right - lgw - p, map.top + p }, { map.left + p, map.top + p },
                      { map.right - lgw - p, map.bottom - lgh - p }, { map.left + p, map.bottom - lgh - p } }
    local best, bestn = nil, math.huge
    for _, c in ipairs(corners) do
      local hits = 0
      for _, q in ipairs(pts) do
        if q[1] >= c[1] - 3 and q[1] <= c[1] + lgw + 3 and q[2] >= c[2] - 3 and q[2] <= c[2] + lgh + 3 then hits = hits + 1 end
      end
      if hits < bestn then best, bestn = c, hits end
    end
    local lx, ly
    if bestn == 0 and lgw < map.right - map.left - 2 * p and lgh < map.bottom - map.top - 2 * p then
      lx, ly = best[1], best[2]
    else   -- no free corner: outside the plot, on the right
      cv, map = draw(lgw + p)
      lx, ly = map.right + p + (opts.width or 320) - (map.right + lgw + p) - style.margin - p, map.top
      lx = (opts.width or 320) - style.margin - lgw
    end
    cv:rect(lx, ly, lgw, lgh, 1, 0.9)
    cv:box(lx, ly, lgw, lgh, { 0.75, 0.75, 0.75 }, 0.6)
    cv:panel("legend", lx, ly, lgw, lgh)
    for i, n in ipairs(named) do
      local y = ly + p + (i - 0.5) * eh
      cv:line({ lx + p, y, lx + p + 16, y }, color_of(n[2]), opts.thickness or style.line_width,
        dashed[n[2]] and { dash = 4 } or nil)
      cv:text(n[1], lx + p + 22, y, { size = ls, ay = 0.5, panel = "legend" })
    end
  end
  return cv:figure("line plot", opts.title)
end

--- Histogram of a tensor's (or a list's) values.  opts: bins (40), min, max, title, xlabel,
--- ylabel ("count"), logy, color, width, height (points), scale.  Returns a (3,H,W) image
--- and the counts.
function M.histogram(t, opts)
  opts = check_opts("plot.histogram", opts, { "bins", "color", "min", "max", "scale", "title", "xlabel", "ylabel", "width", "height", "logx", "logy" })
  if getmetatable(t) ~= core.tensor_mt then t = core.tensor(t) end
  local bins = opts.bins or 40
  local lo, hi = opts.min, opts.max
  if not lo or not hi then
    local d = t:detach()
    lo, hi = lo or d:min():item(), hi or d:max():item()
    if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  end
  local counts = t:detach():histc(bins, lo, hi):values()
  local cmax = 0
  for _, c in ipairs(counts) do cmax = math.max(cmax, c) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.ylabel = o.ylabel or "count"
  local cv, map = frame(o, lo, hi, opts.logy and 1 or 0, math.max(cmax, opts.logy and 10 or 1), false, false, nil, true)
  local color = opts.color or style.palette[1]
  local bw = (hi - lo) / bins
  local base = map.bottom
  for i, c in ipairs(counts) do
    if c > 0 and (not opts.logy or c >= 1) then
      local x0, x1 = map.x(lo + (i - 1) * bw), map.x(lo + i * bw)
      local y = map.y(c)
      if opts.logy and c == 1 then y = map.y(1) - 1 end
      cv:rect(x0 + 0.15, y, math.max(0.3, x1 - x0 - 0.3), base - y, color)
      cv:datum((x0 + x1) / 2, y, string.format("[%.4g, %.4g): %d", lo + (i - 1) * bw, lo + i * bw, c))
    end
  end
  return cv:figure("histogram", opts.title), counts
end

-- ---- terminal -------------------------------------------------------------------------------
local BLOCKS = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }

--- one-line sparkline of a series (an array or a tensor); opts.width resamples to that many
--- characters (by averaging)
function M.sparkline(v, opts)
  opts = check_opts("plot.sparkline", opts, { "width" })
  local y = values(v)
  local n = #y
  if n == 0 then return "" end
  local width = opts.width or n
  if width < n then
    local r = {}
    for i = 1, width do
      local a, b = math.floor((i - 1) * n / width) + 1, math.floor(i * n / width)
      local s = 0
      for j = a, b do s = s + y[j] end
      r[i] = s / (b - a + 1)
    end
    y = r
  end
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(y) do if x == x and math.abs(x) ~= math.huge then lo, hi = math.min(lo, x), math.max(hi, x) end end
  if lo > hi then lo, hi = 0, 0 end
  local out = {}
  for i, x in ipairs(y) do
    if x ~= x then out[i] = " "
    elseif x == math.huge then out[i] = BLOCKS[8]
    elseif x == -math.huge then out[i] = BLOCKS[1]
    else
      local k = hi > lo and math.floor((x - lo) / (hi - lo) * 7 + 0.5) + 1 or 4
      out[i] = BLOCKS[k]
    end
  end
  return table.concat(out)
end

--- small text histogram: one line per bin with its range, a bar of width proportional to the
--- count, and the count.  opts: bins (10), width (40), min, max
function M.text_histogram(t, opts)
  opts = check_opts("plot.text_histogram", opts, { "bins", "max", "min", "width" })
  if getmetatable(t) ~= core.tensor_mt then t = core.tensor(t) end
  local bins, width = opts.bins or 10, opts.width or 40
  local d = t:detach()
  local lo, hi = opts.min or d:min():item(), opts.max or d:max():item()
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  local counts = d:histc(bins, lo, hi):values()
  local cmax = 0
  for _, c in ipairs(counts) do cmax = math.max(cmax, c) end
  local lines = {}
  local bw = (hi - lo) / bins
  for i, c in ipairs(counts) do
    local len = cmax > 0 and math.floor(c / cmax * width + 0.5) or 0
    lines[i] = string.format("%10.4g .. %-10.4g |%s%s %d", lo + (i - 1) * bw, lo + i * bw,
      string.rep("█", len), string.rep(" ", width - len), math.floor(c))
  end
  return table.concat(lines, "\n")
end

return M

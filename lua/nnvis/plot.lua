-- nnvis.plot — charts drawn by nnvis itself: line charts (several series, ticks, legend,
-- log scale) for training curves and histograms for weights, activations and gradients,
-- as (3,H,W) images for nv.image.save; and terminal renderings (sparklines, small
-- histograms) for the REPL.
local core = require "nnvis.core"
local check_opts = require("nnvis.util").check_opts
local Canvas = require "nnvis.canvas"
local label = require("nnvis.figure").label   -- so nv.show can say what a chart is

local M = {}

-- a qualitative palette (Tableau-like hues)
M.palette = { { 0.12, 0.47, 0.71 }, { 1.00, 0.50, 0.05 }, { 0.17, 0.63, 0.17 }, { 0.84, 0.15, 0.16 },
              { 0.58, 0.40, 0.74 }, { 0.55, 0.34, 0.29 }, { 0.89, 0.47, 0.76 }, { 0.50, 0.50, 0.50 },
              { 0.74, 0.74, 0.13 }, { 0.09, 0.75, 0.81 } }

local function values(v)
  if getmetatable(v) == core.tensor_mt then return v:contiguous():values() end
  return v
end

--- "nice" tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten
function M.ticks(lo, hi, n)
  n = n or 5
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do
    if raw <= m * mag * 1.0000001 then step = m * mag; break end
  end
  local t = {}
  local first = math.ceil(lo / step - 1e-9) * step
  for v = first, hi + step * 1e-9, step do t[#t + 1] = math.abs(v) < step * 1e-9 and 0 or v end
  return t, step
end

local function fmt(v)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e5 or a < 1e-3 then return (string.format("%.0e", v):gsub("e%+?(%-?)0*(%d)", "e%1%2")) end
  local s = string.format("%.4f", v):gsub("0+$", ""):gsub("%.$", "")
  return s
end

--- plot.frame(opts, xlo, xhi, ylo, yhi) -> canvas, map: the axes, ticks, grid, title and
--- labels every chart shares (opts: width, height, title, xlabel, ylabel, logx, logy); map.x
--- and map.y turn data into pixel coordinates, map.left/right/top/bottom bound the plot area
local function frame(opts, xlo, xhi, ylo, yhi)
  local W, H = opts.width or 640, opts.height or 400
  local cv = Canvas.new(W, H, 1)
  local logy, logx = opts.logy, opts.logx
  local function ty(v) return logy and math.log(v, 10) or v end
  local function tx(v) return logx and math.log(v, 10) or v end
  -- ticks of one axis: powers of ten on a log scale, else "nice" steps; the range widens to them
  local function axis(log, lo, hi, t, n)
    local ticks
    if log then
      ticks = {}
      for e = math.floor(t(lo)), math.ceil(t(hi)) do ticks[#ticks + 1] = e end
      if #ticks == 1 then ticks[2] = ticks[1] + 1 end
      return ticks, ticks[1], ticks[#ticks]
    end
    ticks = M.ticks(lo, hi, n)
    return ticks, math.min(lo, ticks[1]), math.max(hi, ticks[#ticks])
  end
  local yt, xt
  yt, ylo, yhi = axis(logy, ylo, yhi, ty, 5)
  xt, xlo, xhi = axis(logx, xlo, xhi, tx, 6)
  local ylabels = {}
  local lw = 0
  for i, v in ipairs(yt) do
    ylabels[i] = logy and ("1e" .. v) or fmt(v)
    lw = math.max(lw, Canvas.text_width(ylabels[i]))
  end
  local left = 10 + lw + (opts.ylabel and 12 or 0)
  local top = opts.title and 24 or 10
  local right, bottom = W - 14, H - (opts.xlabel and 34 or 22)
  local pw, ph = right - left, bottom - top
  local map = {}
  function map.x(v) return left + (tx(v) - xlo) / (xhi - xlo) * pw end
  function map.y(v) return bottom - (ty(v) - ylo) / (yhi - ylo) * ph end
  map.left, map.right, map.top, map.bottom = left, right, top, bottom
  -- grid and ticks
  for i, v in ipairs(yt) do
    local y = math.floor(bottom - (v - ylo) / (yhi - ylo) * ph + 0.5)
    cv:rect(left, y, pw, 1, { 0.9, 0.9, 0.9 })
    cv:rect(left - 4, y, 4, 1, { 0, 0, 0 })
    cv:text(left - 6 - Canvas.text_width(ylabels[i]), y - 3, ylabels[i], { 0.2, 0.2, 0.2 })
  end
  local lastx = -math.huge
  for _, v in ipairs(xt) do
    local x = math.floor(left + (v - xlo) / (xhi - xlo) * pw + 0.5)
    cv:rect(x, top, 1, ph, { 0.93, 0.93, 0.93 })
    cv:rect(x, bottom, 1, 4, { 0, 0, 0 })
    local s = logx and ("1e" .. v) or fmt(v)
    local sw = Canvas.text_width(s)
    if x - sw / 2 > lastx + 4 then
      cv:text_centered(x, bottom + 7, s, { 0.2, 0.2, 0.2 })
      lastx = x + sw / 2
    end
  end
  cv:box(left, top, pw + 1, ph + 1, { 0, 0, 0 })
  if opts.title then cv:text_centered(W / 2, 7, opts.title, { 0, 0, 0 }) end
  if opts.xlabel then cv:text_centered(left + pw / 2, H - 12, opts.xlabel, { 0, 0, 0 }) end
  if opts.ylabel then cv:text_vertical(3, top + ph // 2 + Canvas.text_width(opts.ylabel) // 2, opts.ylabel, { 0, 0, 0 }) end
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
  for k, s in pairs(series) do
    if type(k) == "string" then out[#out + 1] = { name = k, y = values(s) }
    elseif type(s) == "table" and s.y then out[#out + 1] = { name = s.name, y = values(s.y), x = s.x and values(s.x) }
    else out[#out + 1] = { y = values(s) } end
  end
  table.sort(out, function(a, b) return tostring(a.name) < tostring(b.name) end)
  return out
end

--- Line chart of one or several series.  series: an array of numbers or a tensor; a table
--- name -> values; or a list of {name =, y =, x =}.  opts: title, xlabel, ylabel, width (640),
--- height (400), logy, logx, legend (true when named), colors.  Returns a (3,H,W) image.
function M.line(series, opts)
  opts = check_opts("plot.line", opts, { "colors", "legend", "thickness", "title", "xlabel", "ylabel", "width", "height", "logx", "logy" })
  local ss = normalize_series(series)
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(ss) do
    for i, v in ipairs(s.y) do
      local x = s.x and s.x[i] or i
      local ok = v == v and math.abs(v) ~= math.huge and (not opts.logy or v > 0) and (not opts.logx or x > 0)
      if ok then
        ylo, yhi = math.min(ylo, v), math.max(yhi, v)
        xlo, xhi = math.min(xlo, x), math.max(xhi, x)
      end
    end
  end
  if ylo == math.huge then ylo, yhi, xlo, xhi = 0, 1, 1, 2 end
  if yhi == ylo then yhi = ylo + (opts.logy and ylo * 9 or 1) end
  if xhi == xlo then xhi = xlo + 1 end
  local cv, map = frame(opts, xlo, xhi, ylo, yhi)
  for k, s in ipairs(ss) do
    local color = (opts.colors and opts.colors[k]) or M.palette[(k - 1) % #M.palette + 1]
    local pts = {}
    local function flush()
      if #pts >= 2 then cv:line(pts, color, opts.thickness or 2) end
      pts = {}
    end
    for i, v in ipairs(s.y) do
      local x = s.x and s.x[i] or i
      if v ~= v or math.abs(v) == math.huge or (opts.logy and v <= 0) then flush()
      else
        pts[#pts + 1] = map.x(x)
        pts[#pts + 1] = map.y(v)
      end
    end
    if #pts == 2 then cv:rect(math.floor(pts[1]) - 1, math.floor(pts[2]) - 1, 3, 3, color) end
    flush()
  end
  if opts.legend ~= false then
    local named = {}
    for k, s in ipairs(ss) do if s.name then named[#named + 1] = { tostring(s.name), k } end end
    if #named > 0 then
      local w = 0
      for _, n in ipairs(named) do w = math.max(w, Canvas.text_width(n[1])) end
      local lx, ly = map.right - w - 30, map.top + 6
      cv:rect(lx - 4, ly - 4, w + 30, #named * 12 + 6, { 1, 1, 1 }, 0.9)
      cv:box(lx - 4, ly - 4, w + 30, #named * 12 + 6, { 0.6, 0.6, 0.6 })
      for i, n in ipairs(named) do
        local color = (opts.colors and opts.colors[n[2]]) or M.palette[(n[2] - 1) % #M.palette + 1]
        cv:rect(lx, ly + (i - 1) * 12 + 3, 16, 2, color)
        cv:text(lx + 21, ly + (i - 1) * 12, n[1], { 0, 0, 0 })
      end
    end
  end
  return label(cv:tensor(), "line plot", opts.title)
end

--- Histogram of a tensor's (or a list's) values.  opts: bins (40), min, max, title, xlabel,
--- ylabel ("count"), logy, color, width, height.  Returns a (3,H,W) image and the counts.
function M.histogram(t, opts)
  opts = check_opts("plot.histogram", opts, { "bins", "color", "min", "max", "title", "xlabel", "ylabel", "width", "height", "logx", "logy" })
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
  local cv, map = frame(o, lo, hi, opts.logy and 1 or 0, math.max(cmax, opts.logy and 10 or 1))
  local color = opts.color or M.palette[1]
  local rects = {}
  local bw = (hi - lo) / bins
  for i, c in ipairs(counts) do
    if c > 0 and (not opts.logy or c >= 1) then
      local x0, x1 = math.floor(map.x(lo + (i - 1) * bw) + 0.5), math.floor(map.x(lo + i * bw) + 0.5)
      local y = math.floor(map.y(c) + 0.5)
      rects[#rects + 1] = { x0 + 1, y, math.max(1, x1 - x0 - 1), map.bottom - y }
    end
  end
  for _, r in ipairs(rects) do cv:rect(r[1], r[2], r[3], r[4], color) end
  return label(cv:tensor(), "histogram", opts.title), counts
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

-- scatter, grad_flow, landscape, neurons, decision_regions live in nnvis.views
setmetatable(M, { __index = function(t, k)
  local v = rawget(require("nnvis.views"), k)
  if v ~= nil then rawset(t, k, v) end
  return v
end })
return M

-- nnvis.draw.style — the one style every figure shares: font sizes (points), margins, line
-- widths, the palette and the raster scale (pixels per point, matplotlib's dpi / 72).
-- Change a field here (or in nv.style at run time) and every figure follows.
local M = {
  scale = 2,                 -- pixels per point in PNGs and image tensors (2x for today's screens)
  font = "DejaVu Sans",      -- through fontconfig and FreeType (Debian fonts-dejavu-core)
  title_size = 11,           -- figure titles
  label_size = 9,            -- axis labels, panel labels, legend entries
  tick_size = 8,             -- tick labels, colorbar numbers, small print
  min_size = 6,              -- text shrinks to fit down to this size, then wraps
  margin = 8,                -- around a figure's content
  pad = 4,                   -- between a panel and its label, between panels
  line_width = 1.5,          -- data lines
  frame_width = 0.8,         -- axes frames, panel borders
  tick_len = 3.5,            -- major ticks (minor ticks are half)
  min_panel_px = 160,        -- small images are enlarged (nearest-neighbour) to at least this
  markers_below = 30,        -- series with fewer points get a marker at each point
  colorbar_width = 10,
  text = { 0.10, 0.10, 0.10 },
  muted = { 0.35, 0.35, 0.35 },
  grid = { 0.90, 0.90, 0.90 },
  frame = { 0.20, 0.20, 0.20 },
  -- a qualitative palette (Tableau 10)
  palette = { { 0.12, 0.47, 0.71 }, { 1.00, 0.50, 0.05 }, { 0.17, 0.63, 0.17 }, { 0.84, 0.15, 0.16 },
              { 0.58, 0.40, 0.74 }, { 0.55, 0.34, 0.29 }, { 0.89, 0.47, 0.76 }, { 0.50, 0.50, 0.50 },
              { 0.74, 0.74, 0.13 }, { 0.09, 0.75, 0.81 } },
}

--- the scale (pixels per point) a drawing function uses: opts.scale, else the style's
function M.scale_of(opts)
  local s = opts and opts.scale or M.scale
  if type(s) ~= "number" or not (s > 0 and s <= 16) then error("scale must be a number in (0, 16], got " .. tostring(s), 3) end
  return s
end

--- the nearest-neighbour enlargement factor that makes an h x w image at least
--- min_panel_px pixels on its long side at the given scale (1 when it already is)
function M.enlarge(h, w, scale, min_px)
  local long = math.max(h, w)
  return math.max(1, math.ceil((min_px or M.min_panel_px) / (scale * long) - 1e-9))
end

return M

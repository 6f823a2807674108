-- bench/figure_bench.lua — drawing figures through Cairo: a 4x4 grid of 224x224 CAM overlays
-- with a title per panel and one colorbar (issue #10's budget: under 100 ms), its parts
-- (colormapping, the Cairo rendering, reading the raster back) and the same figure as SVG
-- and PDF.  Times are the best of 5 runs; the ratio column compares each to copying the 16
-- input images once (a memory-bound baseline measured in the same run).  Not a test.
local nv = require "nnvis"
local timing = require "timing"

nv.manual_seed(1)
local imgs, maps = nv.rand(16, 3, 224, 224), nv.rand(16, 224, 224)
local labels = {}
for i = 1, 16 do labels[i] = string.format("class %d  p=0.%02d", i, 90 - i) end

local base = timing.best_of(5, function() imgs:clone() end)
local rows = {}
local function row(name, t) rows[#rows + 1] = string.format("  %-46s %8.1f ms  %7.1fx copy", name, t * 1000, t / base) end

local fig
row("4x4 overlays 224x224 with titles (PNG scale 2)", timing.best_of(5, function()
  fig = nv.cam.overlay(imgs, maps, { labels = labels, title = "Grad-CAM, 16 images" })
end))
row("  colormapping 16 maps (C)", timing.best_of(5, function()
  for i = 1, 16 do nv.colormap.apply(maps:select(1, i), "jet") end
end))
local cv = nv.figure.layout_canvas(fig)
row("  Cairo rendering + raster read-back", timing.best_of(5, function() cv:tensor() end))
row("  PNG encoding of the result", timing.best_of(3, function() nv.core.png_encode(fig) end))
row("same figure as SVG", timing.best_of(3, function() cv._svg = nil; cv:svg() end))
row("same figure as PDF", timing.best_of(3, function() cv._pdf = nil; cv:pdf() end))
row("line plot, 2 series of 1000 points", timing.best_of(5, function()
  local a, b = {}, {}
  for i = 1, 1000 do a[i], b[i] = math.exp(-i / 300), math.exp(-i / 200) end
  nv.plot.line({ train = a, val = b }, { title = "loss" })
end))
print(string.format("figures (%dx%d pixels for the grid); baseline copy of 16 images %.2f ms", fig:size(3), fig:size(2), base * 1000))
print(table.concat(rows, "\n"))

-- tools/make_logo.lua — draws the nnvis logo (three layers of neurons, their connections in
-- nnvis's red and blue) with nnvis's own canvas: jupyter/nnvis_kernel/logo-{32x32,64x64}.png
-- and logo-svg.svg, which `make jupyter` installs with the kernelspec.  Run by hand:
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 tools/make_logo.lua
local nv = require "nnvis"
local Canvas = require "nnvis.draw.canvas"

local function logo(px)
  local cv = Canvas.new(32, 32, { scale = px / 32, bg = 1 })
  local layers = { { 9, 16, 23 }, { 6, 12.7, 19.3, 26 }, { 12, 20 } }
  local xs = { 5, 16, 27 }
  local red, blue = { 0.84, 0.15, 0.16 }, { 0.12, 0.47, 0.71 }
  for l = 1, 2 do
    for i, ya in ipairs(layers[l]) do
      for j, yb in ipairs(layers[l + 1]) do
        cv:line({ xs[l], ya, xs[l + 1], yb }, (i + j) % 2 == 0 and red or blue, 1.1, { alpha = 0.85 })
      end
    end
  end
  for l, ys in ipairs(layers) do
    for _, y in ipairs(ys) do
      cv:circle(xs[l], y, 2.6, { 1, 1, 1 })
      cv:circle(xs[l], y, 2.6, { 0.15, 0.15, 0.15 }, 0.9)
    end
  end
  return cv
end

local dir = "jupyter/nnvis_kernel/"
nv.image.save(logo(32):tensor(), dir .. "logo-32x32.png")
nv.image.save(logo(64):tensor(), dir .. "logo-64x64.png")
local f = assert(io.open(dir .. "logo-svg.svg", "w"))
f:write(logo(64):svg())
f:close()

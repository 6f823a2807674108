-- nnvis.colormap — colormaps as 256-entry lookup tables (a (256,3) tensor each) and their
-- application to 2-D tensors.  jet and gray are piecewise linear; viridis, magma and
-- inferno use the published 6th-degree polynomial fits of matplotlib's maps (Matt Zucker's
-- approximations), turbo Google's official polynomial approximation (Mikhailov 2019).
local core = require "nnvis.core"

local M = {}

local function clamp01(v) return v < 0 and 0 or (v > 1 and 1 or v) end

local function poly(c)   -- c[k] = {r, g, b} coefficient of t^(k-1)
  return function(t)
    local rgb = {}
    for ch = 1, 3 do
      local v = 0
      for k = #c, 1, -1 do v = v * t + c[k][ch] end
      rgb[ch] = clamp01(v)
    end
    return rgb
  end
end

local fns = {
  gray = function(t) return { t, t, t } end,
  jet = function(t)
    return { clamp01(1.5 - math.abs(4 * t - 3)), clamp01(1.5 - math.abs(4 * t - 2)), clamp01(1.5 - math.abs(4 * t - 1)) }
  end,
  viridis = poly {
    { 0.2777273272234177, 0.005407344544966578, 0.3340998053353061 },
    { 0.1050930431085774, 1.404613529898575, 1.384590162594685 },
    { -0.3308618287255563, 0.214847559468213, 0.09509516302823659 },
    { -4.634230498983486, -5.799100973351585, -19.33244095627987 },
    { 6.228269936347081, 14.17993336680509, 56.69055260068105 },
    { 4.776384997670288, -13.74514537774601, -65.35303263337234 },
    { -5.435455855934631, 4.645852612178535, 26.3124352495832 },
  },
  magma = poly {
    { -0.002136485053939582, -0.000749655052795221, -0.005386127855323933 },
    { 0.2516605407371642, 0.6775232436837668, 2.494026599312351 },
    { 8.353717279216625, -3.577719514958484, 0.3144679030132573 },
    { -27.66873308576866, 14.26473078096533, -13.64921318813922 },
    { 52.17613981234068, -27.94360607168351, 12.94416944238394 },
    { -50.76852536473588, 29.04658282127291, 4.23415299384598 },
    { 18.65570506591883, -11.48977351997711, -5.601961508734096 },
  },
  inferno = poly {
    { 0.0002189403691192265, 0.001651004631001012, -0.01948089843709184 },
    { 0.1065134194856116, 0.5639564367884091, 3.932712388889277 },
    { 11.60249308247187, -3.972853965665698, -15.9423941062914 },
    { -41.70399613139459, 17.43639888205313, 44.35414519872813 },
    { 77.162935699427, -33.40235894210092, -81.80730925738993 },
    { -71.31942824499214, 32.62606426397723, 73.20951985803202 },
    { 25.13112622477341, -12.24266895238567, -23.07032500287172 },
  },
  turbo = poly {
    { 0.13572138, 0.09140261, 0.10667330 },
    { 4.61539260, 2.19418839, 12.64194608 },
    { -42.66032258, 4.84296658, -60.58204836 },
    { 132.13108234, -14.18503333, 110.36276771 },
    { -152.94239396, 4.27729857, -89.90310912 },
    { 59.28637943, 2.82956604, 27.34824973 },
  },
}

M.names = { "gray", "jet", "viridis", "magma", "inferno", "turbo" }

local luts = {}

--- (256,3) lookup table of the named map
function M.lut(name)
  if luts[name] then return luts[name] end
  local f = fns[name]
  if not f then error(string.format("colormap: unknown colormap '%s' (have %s)", tostring(name), table.concat(M.names, ", ")), 3) end
  local rows = {}
  for i = 0, 255 do rows[i + 1] = f(i / 255) end
  luts[name] = core.tensor(rows)
  return luts[name]
end

--- RGB {r, g, b} of the map at t in [0,1]
function M.color(name, t)
  if not fns[name] then M.lut(name) end
  return fns[name](clamp01(t))
end

--- (H,W) tensor with values in [0,1] (clamped) -> (3,H,W) RGB image in [0,1]
function M.apply(t, name)
  if getmetatable(t) ~= core.tensor_mt then error("colormap: expected a tensor", 2) end
  if t:dim() ~= 2 then
    error("colormap: expected a 2-D (H,W) map, got (" .. table.concat(t:shape(), ",") .. ")", 2)
  end
  return core.colormap_apply(t:detach(), M.lut(name or "viridis"))
end

return M

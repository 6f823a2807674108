-- nnvis.draw.colormap — colormaps as 256-entry lookup tables (a (256,3) tensor each) and their
-- application to 2-D tensors.  jet, gray and hot are piecewise linear as matplotlib defines
-- them; viridis, magma and inferno use the published 6th-degree polynomial fits of
-- matplotlib's maps (Matt Zucker's approximations), turbo Google's official polynomial
-- approximation (Mikhailov 2019).  The diverging maps for signed values centred on zero
-- (bwr, seismic, coolwarm, RdBu) interpolate their published control colours: bwr and
-- seismic matplotlib's segments, coolwarm Moreland's (2009) table, RdBu ColorBrewer's 11
-- classes.  Any name with "_r" is its map reversed, as in matplotlib.
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

-- a map through equally spaced colours (hex strings or {r, g, b} in [0,1]), linearly
local function stops(list)
  local cs = {}
  for i, c in ipairs(list) do
    if type(c) == "string" then
      c = { tonumber(c:sub(2, 3), 16) / 255, tonumber(c:sub(4, 5), 16) / 255, tonumber(c:sub(6, 7), 16) / 255 }
    end
    cs[i] = c
  end
  local n = #cs - 1
  return function(t)
    local x = t * n
    local i = math.min(math.floor(x), n - 1)
    local f = x - i
    local a, b = cs[i + 1], cs[i + 2]
    return { a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, a[3] + (b[3] - a[3]) * f }
  end
end

local fns = {
  gray = function(t) return { t, t, t } end,
  -- matplotlib's hot: black, red, yellow, white (red from 0.0416; knots at 0.365079, 0.746032)
  hot = function(t)
    return { clamp01(0.0416 + (1 - 0.0416) * t / 0.365079), clamp01((t - 0.365079) / (0.746032 - 0.365079)),
             clamp01((t - 0.746032) / (1 - 0.746032)) }
  end,
  bwr = stops { { 0, 0, 1 }, { 1, 1, 1 }, { 1, 0, 0 } },
  seismic = stops { { 0, 0, 0.3 }, { 0, 0, 1 }, { 1, 1, 1 }, { 1, 0, 0 }, { 0.5, 0, 0 } },
  coolwarm = stops { { 0.2298, 0.2987, 0.7537 }, { 0.5543, 0.6901, 0.9955 }, { 0.8654, 0.8654, 0.8654 },
                     { 0.9567, 0.5980, 0.4773 }, { 0.7057, 0.0156, 0.1502 } },
  RdBu = stops { "#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3",
                 "#2166ac", "#053061" },
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

M.names = { "gray", "jet", "viridis", "magma", "inferno", "turbo", "hot", "bwr", "seismic", "coolwarm", "RdBu" }
-- matplotlib's other spellings of the same maps
local aliases = { grey = "gray", Greys_r = "gray", Greys = "gray_r", rdbu = "RdBu", rdbu_r = "RdBu_r" }

-- the function of a name: a map, an alias, or either with "_r" (reversed)
local function resolve(name)
  if type(name) ~= "string" then return nil end
  name = aliases[name] or name
  if fns[name] then return fns[name] end
  local base = name:match("^(.+)_r$")
  local f = base and fns[aliases[base] or base]
  if f then
    fns[name] = function(t) return f(1 - t) end
    return fns[name]
  end
end

local luts = {}

--- (256,3) lookup table of the named map (a name of M.names, matplotlib's spelling, or
--- either with "_r" for the map reversed)
function M.lut(name)
  if luts[name] then return luts[name] end
  local f = resolve(name)
  if not f then
    local near = require("nnvis.tensor.util").closest(tostring(name), M.names, 2)
    error(string.format("colormap: unknown colormap '%s' (did you mean %s? nnvis has %s, each also reversed with _r)",
      tostring(name), table.concat(near, " or "), table.concat(M.names, ", ")), 3)
  end
  local rows = {}
  for i = 0, 255 do rows[i + 1] = f(i / 255) end
  luts[name] = core.tensor(rows)
  return luts[name]
end

--- RGB {r, g, b} of the map at t in [0,1]
function M.color(name, t)
  local f = resolve(name)
  if not f then M.lut(name) end
  return f(clamp01(t))
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

-- nnvis.draw.ticks — where an axis puts its ticks and how it writes them: "nice" steps of 1,
-- 2 or 5 times a power of ten, and one label format per axis.  Used by plots, colorbars and
-- every gridded figure (canvas), so it sits below them.
local M = {}

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

--- the one format of an axis's tick labels, as a function of the value: fixed with the
--- decimals the step needs, or scientific for every tick when the numbers are very large
--- or small (never "1e5" beside "50000")
function M.tick_format(ticks, step)
  local amax = 0
  for _, v in ipairs(ticks) do amax = math.max(amax, math.abs(v)) end
  if amax >= 1e5 or (amax > 0 and amax < 1e-3) then
    -- mantissa digits enough to tell neighbours apart
    local e = math.floor(math.log(amax, 10))
    local d = math.max(0, math.min(3, e - math.floor(math.log(step, 10) + 1e-9)))
    return function(v)
      if v == 0 then return "0" end
      return (string.format("%." .. d .. "e", v):gsub("e%+?(%-?)0*(%d)", "e%1%2"))
    end
  end
  local d = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
  if math.abs(step / 10 ^ -d - math.floor(step / 10 ^ -d + 0.5)) > 1e-6 then d = d + 1 end   -- 2.5, 0.25
  return function(v)
    local r = string.format("%." .. d .. "f", v)
    if tonumber(r) == 0 then r = string.format("%." .. d .. "f", 0) end   -- no "-0.0"
    return r
  end
end

return M

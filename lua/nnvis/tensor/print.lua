-- nnvis.tensor.print — tostring of tensors in the Torch7 manner: aligned columns, tensors of
-- more than two dimensions printed slice by slice under "(i,j,.,.) =" headings, large
-- tensors abbreviated with "...", and a footer [nnvis.Tensor of size 2x3].
local M = {}

local EDGE = 3          -- rows / columns / slices kept at each end when abbreviating
local LIMIT = 1000      -- tensors with more elements are abbreviated

local function footer(t)
  local s = t:shape()
  if #s == 0 then return "[nnvis.Tensor of size scalar]" end
  return "[nnvis.Tensor of size " .. table.concat(s, "x") .. "]"
end

-- One number format for all the values shown, so columns line up.
local function choose_format(vals)
  local maxabs, minabs, allint = 0, math.huge, true
  for _, v in ipairs(vals) do
    if v ~= v or v == math.huge or v == -math.huge then
      allint = allint and true
    else
      local a = math.abs(v)
      if a > maxabs then maxabs = a end
      if a > 0 and a < minabs then minabs = a end
      if v ~= math.floor(v) then allint = false end
    end
  end
  if allint and maxabs < 1e9 then
    local w = #string.format("%d", math.floor(maxabs)) + 1
    return function(v)
      if v ~= v then return string.format("%" .. w .. "s", "nan") end
      if v == math.huge or v == -math.huge then return string.format("%" .. w .. "s", v > 0 and "inf" or "-inf") end
      return string.format("%" .. w .. "d", math.floor(v))
    end, w
  end
  local emax = maxabs > 0 and math.floor(math.log(maxabs, 10)) or 0
  local emin = minabs < math.huge and math.floor(math.log(minabs, 10)) or 0
  local fmt, w
  if emax > 5 or emax < -4 or emax - emin > 5 then
    fmt, w = "%.4e", 11
  else
    w = math.max(emax, 0) + 7
    fmt = "%." .. 4 .. "f"
  end
  return function(v)
    if v ~= v then return string.format("%" .. w .. "s", "nan") end
    return string.format("%" .. w .. "s", string.format(fmt, v))
  end, w
end

-- indices kept along a dimension of size n
local function keep(n, abbreviate)
  local idx = {}
  if abbreviate and n > 2 * EDGE + 1 then
    for i = 1, EDGE do idx[#idx + 1] = i end
    idx[#idx + 1] = false               -- the "..." marker
    for i = n - EDGE + 1, n do idx[#idx + 1] = i end
  else
    for i = 1, n do idx[i] = i end
  end
  return idx
end

local function matrix_lines(m, fmt, w, abbreviate, out)
  local rows, cols = m:size(1), m:size(2)
  local ri, ci = keep(rows, abbreviate), keep(cols, abbreviate)
  local data = m:contiguous():values()
  for _, r in ipairs(ri) do
    local cells = {}
    for _, c in ipairs(ci) do
      if not r then cells[#cells + 1] = string.format("%" .. w .. "s", c and ":" or " ")
      elseif not c then cells[#cells + 1] = string.format("%" .. w .. "s", "...")
      else cells[#cells + 1] = fmt(data[(r - 1) * cols + c]) end
    end
    out[#out + 1] = table.concat(cells, " ")
  end
end

-- the values that will be shown (for choosing the format) without copying huge tensors
local function shown_values(t, abbreviate)
  if not abbreviate then return t:values() end
  local vals = {}
  local function rec(x)
    if x:dim() <= 1 then
      local n = x:dim() == 0 and 1 or x:size(1)
      for _, i in ipairs(keep(n, true)) do
        if i then vals[#vals + 1] = x:dim() == 0 and x:item() or x:get(i) end
      end
      return
    end
    for _, i in ipairs(keep(x:size(1), true)) do if i then rec(x:select(1, i)) end end
  end
  rec(t)
  return vals
end

function M.tostring(t)
  local nd = t:dim()
  local n = t:numel()
  local abbreviate = n > LIMIT
  if n == 0 then return "[nnvis.Tensor with no elements of size " .. table.concat(t:shape(), "x") .. "]" end
  local fmt, w = choose_format(shown_values(t, abbreviate))
  local out = {}
  if nd == 0 then
    out[1] = (fmt(t:item()):gsub("^%s+", ""))
  elseif nd == 1 then
    -- a column, as Torch7 prints vectors
    local data = t:contiguous():values()
    for _, i in ipairs(keep(t:size(1), abbreviate)) do
      out[#out + 1] = i and fmt(data[i]) or string.format("%" .. w .. "s", ":")
    end
  elseif nd == 2 then
    matrix_lines(t, fmt, w, abbreviate, out)
  else
    local function rec(x, prefix)
      if x:dim() == 2 then
        out[#out + 1] = "(" .. table.concat(prefix, ",") .. ",.,.) = "
        matrix_lines(x, fmt, w, abbreviate, out)
        out[#out + 1] = ""
        return
      end
      for _, i in ipairs(keep(x:size(1), abbreviate)) do
        if i then
          prefix[#prefix + 1] = i
          rec(x:select(1, i), prefix)
          prefix[#prefix] = nil
        else
          out[#out + 1] = "(...)"
          out[#out + 1] = ""
        end
      end
    end
    rec(t, {})
  end
  out[#out + 1] = footer(t)
  return table.concat(out, "\n")
end

return M

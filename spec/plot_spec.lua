local nv = require "nnvis"
local P = nv.plot

-- number of pixels of (approximately) color c in a (3,H,W) image
local function count_color(img, c, tol)
  tol = tol or 0.02
  local m = nil
  for k = 1, 3 do
    local ok = (img:select(1, k) - c[k]):abs():le(tol)
    m = m and (m * ok) or ok
  end
  return m:sum():item()
end

describe("nnvis.draw.plot", function()
  it("ticks fall on 1, 2, 5 steps covering the range", function()
    local t, step = P.ticks(0, 1, 5)
    assert.equal(0.2, step)
    assert.equal(0, t[1])
    assert.is_true(math.abs(t[#t] - 1) < 1e-9)
    local t2, s2 = P.ticks(-37, 112, 6)
    assert.equal(50, s2)
    assert.same({ 0, 50, 100 }, t2)
  end)

  it("draws each series in its own color, where the data is", function()
    local rising, falling = {}, {}
    for i = 1, 50 do rising[i] = i; falling[i] = 51 - i end
    local img = P.line({ up = rising, down = falling }, { width = 300, height = 200 })
    assert.same({ 3, 400, 600 }, img:shape())   -- 300x200 points at 2 pixels per point
    local c1, c2 = P.palette[1], P.palette[2]
    assert.is_true(count_color(img, c1) > 100)   -- "down" (sorted first)
    assert.is_true(count_color(img, c2) > 100)   -- "up"
    -- "up" ends top-right: its color appears in the top-right region, "down" in the bottom-right
    local p = nv.figure.layout(img).panels[1]   -- the plot area, in points
    assert.equal("plot", p.name)
    local function region(fy) return img:narrow(2, math.floor((p.y + fy * p.h) * 2) + 1, math.floor(p.h * 0.4 * 2))
      :narrow(3, math.floor((p.x + 0.6 * p.w) * 2) + 1, math.floor(p.w * 0.4 * 2)) end
    local tr, br = region(0), region(0.6)
    assert.is_true(count_color(tr, c2) > 0)
    assert.is_true(count_color(br, c1) > 0)
  end)

  it("puts the legend's names in dark text and survives NaN and a log scale", function()
    local img = P.line({ { name = "loss", y = { 1, 0 / 0, 0.1, 0.01 } } }, { logy = true, title = "t", xlabel = "x", ylabel = "y" })
    assert.is_true(count_color(img, { 0.1, 0.1, 0.1 }, 0.05) > 50)   -- the style's text color
    assert.is_true(count_color(img, P.palette[1]) > 20)
  end)

  it("histogram counts the values into bins and draws one bar per non-empty bin", function()
    local img, counts = P.histogram(nv.tensor { 0, 0.1, 0.2, 0.9, 1 }, { bins = 2, min = 0, max = 1, width = 200, height = 120 })
    assert.same({ 3, 3 - 1 }, { counts[1], counts[2] })
    assert.is_true(count_color(img, P.palette[1]) > 100)
    local _, c2 = P.histogram(nv.randn(1000), { bins = 10 })
    local s = 0
    for _, c in ipairs(c2) do s = s + c end
    assert.equal(1000, s)
  end)

  it("renders sparklines and text histograms for the terminal", function()
    assert.equal("▁▃▅█", P.sparkline({ 0, 1, 2, 3.5 }))
    assert.equal(2 * 3, #P.sparkline({ 1, 2, 3, 4 }, { width = 2 }))  -- 2 glyphs of 3 bytes
    local h = P.text_histogram(nv.tensor { 1, 1, 1, 2 }, { bins = 2, width = 6 })
    local lines = {}
    for l in h:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(2, #lines)
    assert.truthy(lines[1]:find("██████ 3", 1, true))
    assert.truthy(lines[2]:find("██     1", 1, true))
  end)
end)

local nv = require "nnvis"
local nn = nv.nn

describe("nnvis.inspect.features", function()
  it("maps shows one tile per channel, brightest where the channel is active", function()
    local m = nn.Sequential { nn.Conv2d(1, 2, 1) }
    nv.no_grad(function()
      m:get("0").weight:copy(nv.tensor { 1, -1 }:view(2, 1, 1, 1))
      m:get("0").bias:fill(0)
    end)
    local x = nv.zeros(1, 8, 8)
    x:narrow(2, 1, 4):narrow(3, 1, 4):fill(1)
    local img, acts = nv.features.maps(m, x, "0", { colormap = "gray", tile = 8, labels = false })
    assert.same({ 2, 8, 8 }, acts:shape())
    assert.equal(3, img:size(1))
    -- channel 1 is bright top-left; channel 2 (negated) is bright everywhere else
    assert.equal(1, acts:select(1, 1):get(1, 1))
    assert.equal(-1, acts:select(1, 2):get(1, 1))
    assert.is_true(img:max():item() > 0.99 and img:min():item() < 0.01)
  end)

  it("filters draws RGB tiles for 3-channel first layers with 0 at mid-gray", function()
    local conv = nn.Conv2d(3, 4, 3)
    nv.no_grad(function() conv.weight:fill(0); conv.weight:select(1, 1):select(1, 1):fill(0.5) end)
    local m = nn.Sequential { conv }
    local img = nv.features.filters(m, "0", { tile = 3, labels = false })
    assert.equal(3, img:size(1))
    -- the first tile: red channel at 1 (max), green and blue at 0.5 (zero weight)
    local red = img:select(1, 1):gt(0.99) * (img:select(1, 2) - 0.5):abs():lt(0.01) * (img:select(1, 3) - 0.5):abs():lt(0.01)
    -- the 3x3 red filter fills its (enlarged) tile, and nothing else is that color
    local l = nv.figure.layout(img)
    local tile = l.panels[1]
    local side = math.floor(tile.w * l.scale + 0.5)
    assert.equal(side * side, red:sum():item())
  end)

  it("filters draws one tile per channel pair otherwise", function()
    local m = nn.Sequential { nn.Conv2d(2, 3, 3) }
    local img = nv.features.filters(m, "0", { tile = 6, labels = false, nrow = 2 })
    -- 6 tiles in rows of 2: 3 rows of panels, each enlarged to at least 160 pixels
    local l = nv.figure.layout(img)
    local tiles, rows = 0, {}
    for _, p in ipairs(l.panels) do
      if p.name:match("^tile") then tiles = tiles + 1; rows[p.y] = true; assert.is_true(p.w * l.scale >= 160) end
    end
    local nrows = 0
    for _ in pairs(rows) do nrows = nrows + 1 end
    assert.equal(6, tiles)
    assert.equal(3, nrows)
    assert.has_error(function() nv.features.filters(m, nv.zeros(3, 3)) end)
  end)
end)

describe("features' tile option", function()
  it("enlarges tiles beyond the 160-pixel floor", function()
    local m = nv.nn.Sequential { nv.nn.Conv2d(1, 2, 3) }
    local function side(img)
      local l = nv.figure.layout(img)
      for _, p in ipairs(l.panels) do if p.name:match("^tile") then return p.w * l.scale end end
    end
    local x = nv.rand(1, 1, 10, 10)
    local small, big = nv.features.maps(m, x, "0"), nv.features.maps(m, x, "0", { tile = 400 })
    assert.is_true(side(small) >= 160 and side(small) < 400)
    assert.is_true(side(big) >= 400)
    assert.is_true(side(nv.features.filters(m, "0", { tile = 300 })) >= 300)
  end)
end)

local nv = require "nnvis"
local H = require "helpers"
local I = nv.image

local function px(img, y, x)   -- {r, g, b} at 1-based (y, x)
  return { img:get(1, y, x), img:get(2, y, x), img:get(3, y, x) }
end

describe("nnvis.draw.image", function()
  describe("colormap", function()
    it("maps 0 and 1 to each map's published end colors", function()
      local ends = {
        gray = { { 0, 0, 0 }, { 1, 1, 1 } },
        jet = { { 0, 0, 0.5 }, { 0.5, 0, 0 } },
        viridis = { { 0.267, 0.005, 0.329 }, { 0.993, 0.906, 0.144 } },
        magma = { { 0.001, 0.000, 0.014 }, { 0.987, 0.991, 0.750 } },
        inferno = { { 0.001, 0.000, 0.014 }, { 0.988, 0.998, 0.645 } },
      }
      for name, e in pairs(ends) do
        local c = I.colormap(nv.tensor { { 0, 1 } }, name)
        assert.same({ 3, 1, 2 }, c:shape())
        for k = 1, 3 do
          assert.is_true(math.abs(c:get(k, 1, 1) - e[1][k]) < 0.03, name .. " start channel " .. k)
          assert.is_true(math.abs(c:get(k, 1, 2) - e[2][k]) < 0.03, name .. " end channel " .. k)
        end
      end
      -- turbo runs blue -> green -> red
      local t = I.colormap(nv.tensor { { 0.1, 0.5, 0.9 } }, "turbo")
      assert.is_true(t:get(3, 1, 1) > t:get(1, 1, 1))
      assert.is_true(t:get(2, 1, 2) > 0.8)
      assert.is_true(t:get(1, 1, 3) > t:get(3, 1, 3))
    end)

    it("clamps values outside [0,1] and rejects unknown names", function()
      local c = I.colormap(nv.tensor { { -5, 5 } }, "gray")
      assert.same({ 0, 1 }, { c:get(1, 1, 1), c:get(1, 1, 2) })
      assert.has_error(function() I.colormap(nv.zeros(2, 2), "rainbowz") end)
    end)
  end)

  it("overlay blends the colored heat with the image by alpha at the heat's position", function()
    local img = nv.zeros(1, 8, 8)
    local heat = nv.zeros(8, 8)
    heat:narrow(1, 1, 4):narrow(2, 5, 4):fill(1)   -- top-right quadrant
    local o = I.overlay(img, heat, { alpha = 0.5, colormap = "gray" })
    assert.same({ 3, 8, 8 }, o:shape())
    H.close(nv.tensor(px(o, 2, 7)), nv.tensor { 0.5, 0.5, 0.5 })
    H.close(nv.tensor(px(o, 7, 2)), nv.tensor { 0, 0, 0 })
    -- a small map is resized to the image
    local o2 = I.overlay(nv.ones(3, 16, 16), nv.tensor { { 0, 1 }, { 0, 0 } }, { alpha = 1, colormap = "gray" })
    assert.is_true(o2:get(1, 1, 16) > 0.9 and o2:get(1, 16, 1) < 0.1)
  end)

  it("grid places tiles row by row with padding and normalizes per tile", function()
    local a = nv.full({ 1, 4, 4 }, 0.2)
    local b = nv.full({ 1, 4, 4 }, 0.8)
    local g = I.grid({ a, b, a }, { nrow = 2, padding = 1, pad_value = 0 })
    assert.same({ 1, 1 + 2 * 5, 1 + 2 * 5 }, g:shape())
    assert.is_true(math.abs(g:get(1, 2, 2) - 0.2) < 1e-6)     -- first tile
    assert.is_true(math.abs(g:get(1, 2, 7) - 0.8) < 1e-6)     -- second tile, same row
    assert.is_true(math.abs(g:get(1, 7, 2) - 0.2) < 1e-6)     -- third tile, second row
    assert.equal(0, g:get(1, 1, 1))                            -- padding
    local ramp = nv.arange(16):view(1, 4, 4) * 10
    local pt = I.grid({ ramp }, { per_tile = true, padding = 0 })
    assert.equal(0, pt:min():item())
    assert.equal(1, pt:max():item())
  end)

  it("grid draws a caption above each tile", function()
    local g = I.grid(nv.ones(2, 1, 12, 40), { labels = { "cat", "dog" }, padding = 2 })
    assert.equal(3, g:size(1))
    local l = nv.figure.layout(g)
    local tile = l.panels[1]
    assert.equal("tile 1", tile.name)
    -- the caption's box lies above the tile's image, inside its panel, and is dark text
    local t = l.texts[1]
    assert.equal("cat", t.text)
    local s = l.scale
    local strip = g:narrow(2, math.floor(t.y * s) + 1, math.floor(t.h * s)):narrow(3, math.floor(t.x * s) + 1, math.floor(t.w * s))
    assert.is_true(strip:min():item() < 0.2)
    -- the tile itself (white) below the strip is intact
    assert.is_true(g:get(1, math.floor((tile.y + tile.h - 2) * s), math.floor((tile.x + 2) * s)) > 0.99)
  end)

  it("heatmap draws the map and a colorbar whose top is the max color", function()
    local t = nv.tensor { { 0, 1 }, { 2, 3 } }
    local img = I.heatmap(t, { colormap = "gray", cell = 10 })
    assert.equal(3, img:size(1))
    local l = nv.figure.layout(img)
    local map, bar
    for _, p in ipairs(l.panels) do if p.name == "map" then map = p elseif p.name == "colorbar" then bar = p end end
    local s = l.scale
    local function at(x, y) return px(img, math.floor(y * s) + 1, math.floor(x * s) + 1) end
    -- cell (2,2) holds the max -> white; cell (1,1) the min -> black
    H.close(nv.tensor(at(map.x + 15, map.y + 15)), nv.tensor { 1, 1, 1 })
    H.close(nv.tensor(at(map.x + 2, map.y + 2)), nv.tensor { 0, 0, 0 })
    H.close(nv.tensor(at(map.x + 15, map.y + 2)), nv.tensor { 1 / 3, 1 / 3, 1 / 3 }, 0.01)
    assert.is_true(at(bar.x + 5, map.y + 1)[1] > 0.9)               -- colorbar top: vmax
    assert.is_true(at(bar.x + 5, map.y + map.h - 1)[1] < 0.1)      -- colorbar bottom: vmin
  end)

  it("caption adds text above the image and keeps it intact", function()
    local img = nv.full({ 3, 10, 30 }, 0.5)
    local c = I.caption(img, "hi", { scale = 1 })
    local l = nv.figure.layout(c)
    assert.equal("hi", l.texts[1].text)
    assert.equal(math.floor(l.height + 0.999), c:size(2))
    assert.is_true(c:narrow(2, 1, 10):min():item() < 0.1)   -- dark text pixels
    assert.is_true(math.abs(c:get(1, c:size(2) - 5, c:size(3) // 2) - 0.5) <= 0.5 / 255 + 1e-6)   -- the image below, unchanged (8-bit)
  end)

  it("resize and normalize", function()
    assert.same({ 3, 5, 7 }, I.resize(nv.rand(3, 10, 14), { 5, 7 }):shape())
    local n = I.normalize(nv.tensor { 2, 4, 6 })
    H.close(n, nv.tensor { 0, 0.5, 1 })
    assert.same({ 0, 0 }, I.normalize(nv.tensor { 3, 3 }):totable())
  end)

  it("saves what it draws as a PNG that loads back", function()
    local path = os.tmpname() .. ".png"
    local img = I.heatmap(nv.randn(5, 5))
    assert(I.save(img, path))
    local back = assert(I.load(path))
    os.remove(path)
    assert.same(img:shape(), back:shape())
    assert.is_true(H.maxdiff(img, back) <= 1 / 255 + 1e-6)
  end)
end)

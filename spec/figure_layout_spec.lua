-- Figures drawn through Cairo (nnvis.canvas): every text box lies inside the figure and
-- inside its panel, titles and colorbars are there, sizes follow the scale, and the same
-- drawing writes valid PNG, SVG and PDF.
local nv = require "nnvis"
local nn = nv.nn

local function layout_of(img)
  local l = nv.figure.layout(img)
  assert.truthy(l, "the figure has a measured layout")
  return l
end

-- every text box inside the figure, and inside the panel it names
local function assert_texts_inside(l)
  local panels = {}
  for _, p in ipairs(l.panels) do panels[p.name] = p end
  local eps = 0.51
  for _, t in ipairs(l.texts) do
    assert.is_true(t.x >= -eps and t.y >= -eps and t.x + t.w <= l.width + eps and t.y + t.h <= l.height + eps,
      string.format("text %q at %.1f,%.1f %.1fx%.1f leaves the %gx%g figure", t.text, t.x, t.y, t.w, t.h, l.width, l.height))
    if t.panel then
      local p = panels[t.panel]
      assert.truthy(p, "panel " .. t.panel .. " recorded")
      assert.is_true(t.x >= p.x - eps and t.x + t.w <= p.x + p.w + eps and t.y >= p.y - eps and t.y + t.h <= p.y + p.h + eps,
        string.format("text %q (%.1f..%.1f) leaves panel %s (%.1f..%.1f)", t.text, t.x, t.x + t.w, p.name, p.x, p.x + p.w))
    end
  end
end

local function texts(l)
  local all = {}
  for _, t in ipairs(l.texts) do all[#all + 1] = t.text end
  return table.concat(all, " ")
end

local function has_panel(l, name)
  for _, p in ipairs(l.panels) do if p.name == name then return p end end
end

describe("nnvis figures", function()
  it("measure text with the real font: wider strings are wider, size scales extents", function()
    local Canvas = require "nnvis.draw.canvas"
    local w1, h1 = Canvas.measure("iiii", 10)
    local w2 = Canvas.measure("WWWW", 10)
    local w3, h3 = Canvas.measure("WWWW", 20)
    assert.is_true(w2 > w1 * 1.5)
    assert.is_true(math.abs(w3 - 2 * w2) < 0.05 * w3)
    assert.is_true(math.abs(h3 - 2 * h1) < 0.05 * h3)
  end)

  it("fit shrinks, then wraps, and never drops characters", function()
    local Canvas = require "nnvis.draw.canvas"
    local lines, size = Canvas.fit("integrated_gradients", 9, 60)
    local joined = table.concat(lines)
    assert.equal("integrated_gradients", joined)
    for _, l in ipairs(lines) do assert.is_true(Canvas.measure(l, size) <= 60 + 1e-6) end
    local one, s1 = Canvas.fit("short", 9, 200)
    assert.same({ "short" }, one)
    assert.equal(9, s1)
  end)

  it("grid labels appear in full inside their panels, with a title and one colorbar", function()
    local labels = { "Pullover/Pullover", "Trouser/Trouser", "integrated_gradients", "T-shirt/top" }
    local g = nv.image.grid(nv.rand(4, 1, 28, 28), { labels = labels, title = "four items", colorbar = { vmin = -0.282, vmax = 0.194 } })
    local l = layout_of(g)
    assert_texts_inside(l)
    local all = texts(l)
    local flat = table.concat((function() local t = {} for _, x in ipairs(l.texts) do t[#t + 1] = x.text end return t end)())
    for _, s in ipairs(labels) do assert.truthy(flat:find(s, 1, true), "label " .. s .. " drawn in full") end
    assert.truthy(all:find("four items", 1, true))
    assert.truthy(has_panel(l, "colorbar"))
    -- colorbar ticks: nice numbers with at most 3 significant digits
    for _, t in ipairs(l.texts) do
      if t.panel == "colorbar" and tonumber(t.text) then
        local digits = t.text:gsub("[^0-9]", ""):gsub("^0+", "")
        assert.is_true(#digits <= 3, t.text)
      end
    end
    -- 28x28 tiles enlarged to at least 160 pixels at scale 2
    local tile = has_panel(l, "tile 1")
    assert.is_true(tile.w * l.scale >= 160)
    assert.equal(math.floor(l.width * l.scale + 0.999), g:size(3))
  end)

  it("line plots keep one tick format per axis and integer ticks for epochs", function()
    local img = nv.plot.line({ train = { 2.1, 1.4, 0.9, 0.7 }, val = { 2.3, 1.6, 1.2, 1.1 } },
      { title = "loss per epoch", xlabel = "epoch", ylabel = "loss" })
    local l = layout_of(img)
    assert_texts_inside(l)
    local p = has_panel(l, "plot")
    local xt, yt = {}, {}
    for _, t in ipairs(l.texts) do
      if tonumber(t.text) and t.y > p.y + p.h then xt[#xt + 1] = t.text end
      if tonumber(t.text) and t.x + t.w <= p.x then yt[#yt + 1] = t.text end
    end
    assert.is_true(#xt >= 2 and #yt >= 2)
    for _, s in ipairs(xt) do assert.equal(math.floor(tonumber(s)), tonumber(s), "integer epoch tick " .. s) end
    local dec = #(yt[1]:match("%.(%d+)$") or "")
    for _, s in ipairs(yt) do assert.equal(dec, #(s:match("%.(%d+)$") or ""), "one format: " .. table.concat(yt, " ")) end
    assert.truthy(texts(l):find("loss per epoch", 1, true))
    -- the legend is a recorded panel inside the figure
    assert.truthy(has_panel(l, "legend"))
    assert.same({ 3, 400, 640 }, img:shape())   -- 320x200 points at scale 2
    assert.same({ 3, 200, 320 }, nv.plot.line({ 1, 2, 3 }, { scale = 1 }):shape())
  end)

  it("a large-valued axis never mixes 1e5 and 50000", function()
    local y = {}
    for i = 1, 40 do y[i] = i * 5e4 end
    local l = layout_of(nv.plot.line(y))
    local p = has_panel(l, "plot")
    local sci, plain = 0, 0
    for _, t in ipairs(l.texts) do
      if t.x + t.w <= p.x and tonumber(t.text) and t.text ~= "0" then
        if t.text:find("e", 1, true) then sci = sci + 1 else plain = plain + 1 end
      end
    end
    assert.is_true(sci == 0 or plain == 0)
  end)

  it("heatmaps carry a title and a colorbar, and show the values through the colormap", function()
    local t = nv.tensor { { 0, 1 }, { 2, 3 } }
    local img = nv.image.heatmap(t, { colormap = "gray", title = "w" })
    local l = layout_of(img)
    assert_texts_inside(l)
    local map = has_panel(l, "map")
    assert.truthy(has_panel(l, "colorbar"))
    local s = l.scale
    local function px(fx, fy)   -- pixel at fractions of the map panel
      local x = math.floor((map.x + fx * map.w) * s) + 1
      local y = math.floor((map.y + fy * map.h) * s) + 1
      return img:get(1, y, x)
    end
    assert.is_true(px(0.25, 0.25) < 0.02)                 -- 0: black
    assert.is_true(px(0.75, 0.75) > 0.98)                 -- 3: white
    assert.is_true(math.abs(px(0.75, 0.25) - 1 / 3) < 0.02)
    assert.is_true(math.abs(px(0.25, 0.75) - 2 / 3) < 0.02)
  end)

  it("heatmaps with more cells than pixels average them instead of sampling every other one", function()
    local t = nv.zeros(1000, 1000)
    for i = 1, 1000, 2 do t:narrow(1, i, 1):fill(1) end   -- alternating rows of 0 and 1
    local img = nv.image.heatmap(t, { colormap = "gray" })
    local l = layout_of(img)
    local map = has_panel(l, "map")
    local v = img:narrow(2, math.floor(map.y * l.scale) + 10, 100):narrow(3, math.floor(map.x * l.scale) + 10, 100):select(1, 1)
    assert.is_true(math.abs(v:mean():item() - 0.5) < 0.02)
    assert.is_true(v:max():item() - v:min():item() < 0.05)
  end)

  it("CAM overlays title each panel with class and probability, with a colorbar", function()
    local m = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3) }
    local x = nv.rand(2, 1, 12, 12)
    local maps = nv.cam.gradcam(m, x, { layer = "1" })
    local img = nv.cam.overlay(x, maps, { model = m, classes = { "cat", "dog", "bird" }, method = "gradcam" })
    local l = layout_of(img)
    assert_texts_inside(l)
    local all = texts(l)
    assert.truthy(all:find("Grad-CAM", 1, true))
    assert.truthy(all:find("p=0.", 1, true))
    assert.truthy(all:find("cat", 1, true) or all:find("dog", 1, true) or all:find("bird", 1, true))
    assert.truthy(has_panel(l, "colorbar"))
    local cmp = nv.cam.compare(m, x:select(1, 1), { methods = { "gradcam", "gradcampp", "layercam" }, layer = "1" })
    local lc = layout_of(cmp)
    assert_texts_inside(lc)
    assert.truthy(texts(lc):find("Grad-CAM++", 1, true))
    assert.truthy(texts(lc):find("LayerCAM", 1, true))
  end)

  it("feature maps and filters say how many of how many they show", function()
    local m = nn.Sequential { nn.Conv2d(1, 12, 3, { padding = 1 }), nn.ReLU() }
    local img = nv.features.maps(m, nv.rand(1, 8, 8), "1", { max_channels = 4 })
    local l = layout_of(img)
    assert_texts_inside(l)
    assert.truthy(texts(l):find("4 of 12 channels", 1, true))
    local m2 = nn.Sequential { nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 32, 3) }
    local f = nv.features.filters(m2, "2")
    local lf = layout_of(f)
    assert_texts_inside(lf)
    assert.truthy(texts(lf):find("64 of 128", 1, true))
    assert.truthy(has_panel(lf, "colorbar"))
  end)

  it("diagram boxes show kernel, channels and parameters, and texts stay in their boxes", function()
    local Net = nv.class("Net", nn.Module)
    function Net:init()
      self.conv = nn.Conv2d(1, 4, 3, { stride = 2, padding = 1 })
      self.drop = nn.Dropout(0.5)
      self.fc = nn.Linear(4 * 3 * 3, 2)
    end
    function Net:forward(x) return self.fc(self.drop(self.conv(x):relu():flatten(2))) end
    local net = Net()
    for _, dir in ipairs { "TB", "LR" } do
      local d = nv.diagram(net, { 1, 1, 6, 6 }, { direction = dir })
      local img = d:image()
      local l = layout_of(img)
      assert_texts_inside(l)
      local all = texts(l)
      assert.truthy(all:find("kernel 3x3  stride 2  pad 1", 1, true))
      assert.truthy(all:find("channels 1 → 4", 1, true))
      assert.truthy(all:find("40 params", 1, true))
      assert.truthy(all:find("relu (functional)", 1, true))
      assert.truthy(all:find("flatten (functional)", 1, true))
      assert.truthy(all:find("drop (Dropout)", 1, true))
      assert.truthy(all:find("[1,4,3,3]", 1, true))    -- an output shape on an edge
      local svg = d:svg()
      local _, titles = svg:gsub("<title>", "")
      assert.equal(#d.nodes, titles)
    end
  end)

  it("the Cairo binding refuses malformed drawings with errors that name it", function()
    local R = nv.core.draw_render
    assert.has_error(function() R("raster", 10, 10, 1, { { "blob" } }) end, "draw_render: unknown operation 'blob'")
    assert.has_error(function() R("raster", 10, 10, 1, { 5 }) end, "draw_render: operation 1 is no table")
    assert.has_error(function() R("raster", 0, 10, 1, {}) end)
    assert.has_error(function() R("raster", 1e5, 1e5, 16, {}) end)
    assert.has_error(function() R("raster", 10, 10, 1, { { "image", nv.zeros(5, 2, 2), 0, 0, 2, 2 } }) end)
    assert.has_error(function() R("raster", 10, 10, 1, { { "image", nv.zeros(3, 2, 2), 0, 0, 2, 2, true, 1, nv.zeros(3, 3, 3) } }) end)
    assert.has_error(function() R("vector", 10, 10, 1, {}) end)
    -- NaN coordinates are skipped, not drawn
    local img = R("raster", 4, 4, 1, { { "path", { 0 / 0, 1, 2, 2, 3, 3 }, { 0, 0, 0 }, 1 } })
    assert.same({ 3, 4, 4 }, img:shape())
  end)

  it("one drawing writes valid PNG, SVG and PDF", function()
    local fig = nv.figure.of(nv.plot.line({ loss = { 3, 2, 1 } }, { title = "loss" }))
    assert.equal("\137PNG", fig:png():sub(1, 4))
    local svg = fig:svg()
    assert.truthy(svg:find("<svg", 1, true))
    assert.equal("%PDF", fig:pdf():sub(1, 4))
    local path = os.tmpname()
    assert(fig:save(path .. ".pdf"))
    local f = io.open(path .. ".pdf", "rb")
    local head = f:read(4)
    f:close()
    assert.equal("%PDF", head)
    os.remove(path .. ".pdf"); os.remove(path)
    -- a grid of pictures renders as SVG on request, but keeps it out of every bundle
    local g = nv.figure.of(nv.image.grid(nv.rand(2, 3, 8, 8), { labels = { "a", "b" } }))
    assert.truthy(g:svg():find("<svg", 1, true))
    assert.is_nil(g:mimebundle()["image/svg+xml"])
    assert.truthy(fig:mimebundle()["image/svg+xml"])
    local d = nv.diagram(nn.Sequential { nn.Linear(2, 2) }, { 1, 2 })
    assert.equal("%PDF", d:pdf():sub(1, 4))
  end)
end)

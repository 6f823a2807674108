-- The pictures of nnvis.views (nv.plot.scatter, grad_flow, landscape, neurons,
-- decision_regions): what they show, checked at the pixels where it must be.
local nv = require "nnvis"
local core = require "nnvis.core"
local nn = nv.nn
require "nnvis.tensor.assert"

local quiet = { write = function() end, flush = function() end }

local function pixel(img, x, y) return { img:get(1, y, x), img:get(2, y, x), img:get(3, y, x) } end
local function near_color(a, b, tol)
  for k = 1, 3 do if math.abs(a[k] - b[k]) > (tol or 0.02) then return false end end
  return true
end

local function panel(img, name)
  local lay = nv.figure.layout(img)
  for _, p in ipairs(lay.panels) do if p.name == name then return p, lay.scale end end
end

local function texts(img)
  local out = {}
  for _, t in ipairs(nv.figure.layout(img).texts) do out[t.text] = t end
  return out
end

describe("nv.plot.scatter", function()
  it("draws each point in its class's colour and names the classes in a legend", function()
    local pts = nv.tensor({ { 0, 0 }, { 1, 1 }, { 0, 1 } })
    local img = nv.plot.scatter(pts, { labels = { 1, 2, 2 }, names = { "cat", "dog" }, size = 6 })
    assert.shape(img, { 3, 520, 760 })
    assert.equal("scatter plot", nv.figure.of(img).kind)
    local t = texts(img)
    assert.truthy(t.cat and t.dog)
    local plot, sc = panel(img, "plot")
    local legend = panel(img, "legend")
    assert.is_true(legend.x >= plot.x + plot.w, "the legend sits outside the data")
    -- the data range [0, 1] padded by 5% on each side
    local function at(x, y)
      local px = (plot.x + (x + 0.05) / 1.1 * plot.w) * sc
      local py = (plot.y + plot.h - (y + 0.05) / 1.1 * plot.h) * sc
      return pixel(img, math.floor(px) + 1, math.floor(py) + 1)
    end
    assert.is_true(near_color(at(0, 0), nv.style.palette[1], 0.05))
    assert.is_true(near_color(at(1, 1), nv.style.palette[2], 0.05))
    assert.is_true(near_color(at(0, 1), nv.style.palette[2], 0.05))
    assert.is_true(near_color(at(0.5, 0.5), { 1, 1, 1 }, 0.15))
    assert.has_error(function() nv.plot.scatter(nv.randn(3)) end, "scatter: expected points (N,2), got (3)")
  end)
end)

describe("nv.plot.decision_regions", function()
  it("colours the plane by the class the model predicts there", function()
    -- class 1 where x > 0, class 2 where x < 0
    local m = nn.Sequential { nn.Linear(2, 2) }
    nv.no_grad(function()
      m:get("0").weight:copy(nv.tensor({ { 10, 0 }, { -10, 0 } }))
      m:get("0").bias:fill(0)
    end)
    local x = nv.tensor({ { -1, -1 }, { 1, 1 }, { -1, 1 }, { 1, -1 } })
    local img, cls = nv.plot.decision_regions(m, x, nv.tensor({ 2, 1, 2, 1 }), { resolution = 50 })
    assert.shape(cls, { 50, 50 })
    assert.equal(2, cls:get(25, 1))
    assert.equal(1, cls:get(25, 50))
    assert.equal(nv.figure.of(img).kind, "decision regions")
  end)
end)

describe("nv.plot.neurons", function()
  it("draws every neuron of a small MLP and its strongest connections", function()
    nv.manual_seed(1)
    local m = nn.Sequential { nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) }
    local img = nv.plot.neurons(m, { input = nv.randn(3), width = 400, height = 300 })
    assert.shape(img, { 3, 600, 800 })
    local t = texts(img)
    assert.truthy(t["input (3)"] and t["0 (4)"] and t["2 (2)"])
    assert.truthy(nv.figure.of(img).title:find("3 -> 4 -> 2", 1, true))
    assert.has_error(function() nv.plot.neurons(nn.Sequential { nn.ReLU() }) end, "neurons: the model has no Linear layer")
  end)
end)

describe("nv.plot.grad_flow and nv.plot.landscape", function()
  it("draw what fit and nv.landscape recorded", function()
    nv.manual_seed(2)
    local m = nn.Sequential { nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2) }
    local x = nv.randn(32, 2)
    local y = (nv.rand(32) * 2):floor() + 1
    local h = nv.train.fit(m, { x = x, y = y, epochs = 2, batch_size = 8, progress = false, out = quiet, grad_flow = 1 })
    local g = nv.plot.grad_flow(h.grad_flow)
    assert.equal("gradient flow", nv.figure.of(g).kind)
    assert.is_true(g:size(3) >= 720)
    local s = nv.landscape.surface(m, { x = x, y = y, steps = 7 })
    local img = nv.plot.landscape(s)
    assert.equal("loss landscape", nv.figure.of(img).kind)
    -- the red mark of the model sits at the centre of the map, and a colorbar is beside it
    local map, sc = panel(img, "map")
    assert.is_true(near_color(pixel(img, math.floor((map.x + map.w / 2) * sc) + 1, math.floor((map.y + map.h / 2) * sc) + 1), { 1, 0, 0 }, 0.1))
    assert.truthy(panel(img, "colorbar"))
    local l = nv.plot.landscape(nv.landscape.line(m, { x = x, y = y, steps = 5 }))
    assert.equal("line plot", nv.figure.of(l).kind)
  end)
end)

describe("live decision regions", function()
  it("are redrawn in one display after every epoch of fit", function()
    nv.manual_seed(3)
    local m = nn.Sequential { nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2) }
    local x = nv.randn(40, 2)
    local y = (x:select(2, 1):gt(0) * -1 + 2)
    local shown = {}
    nv.show.set_display(function(bundle, o, fig) shown[#shown + 1] = { kind = fig.kind, id = o.display_id, update = o.update } end)
    local ok, err = pcall(nv.train.fit, m, { x = x, y = y, epochs = 3, batch_size = 10, progress = false, out = quiet,
      live = true, live_mode = "display", live_figure = function() return nv.plot.decision_regions(m, x, y, { resolution = 40 }) end })
    nv.show.set_display(nil)
    assert(ok, err)
    assert.equal(3, #shown)
    for i, s in ipairs(shown) do
      assert.equal("decision regions", s.kind)
      assert.equal(shown[1].id, s.id)
    end
  end)
end)

-- nnvis.ui.view.prepare: the data `nnvis view` serves (graph.json, feature maps, Grad-CAMs)
local nv = require "nnvis"
local view = require "nnvis.ui.view.prepare"
local H = require "helpers"

local read = H.read_all

describe("nnvis.ui.view.prepare", function()
  local dir
  after_each(function() if dir then os.execute("rm -rf '" .. dir .. "'") end end)

  it("writes the graph with scopes, details and weight statistics, and a map and a Grad-CAM per spatial layer", function()
    nv.manual_seed(2)
    local m = nv.models.resnet18 { num_classes = 10 }
    local x = nv.rand(1, 3, 64, 64)
    local g
    dir, g = view.prepare(m, { input = x, classes = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" } })
    local text = read(dir .. "/graph.json")
    assert.truthy(text:find('"name":"layer1.0.conv1"', 1, true))
    local by = {}
    for _, n in ipairs(g.nodes) do by[n.name] = n end
    local c = by["layer1.0.conv1"]
    assert.equal("Conv2d", c.kind)
    assert.equal("layer1.0", c.scope)
    assert.equal(64 * 64 * 9, c.params)
    local w = m:get("layer1.0.conv1").weight
    assert.near(w:mean():item(), c.weights[1].mean, 1e-6)
    assert.near(w:max():item(), c.weights[1].max, 1e-6)
    local total = 0
    for _, k in ipairs(c.weights[1].hist.counts) do total = total + k end
    assert.equal(w:numel(), total)
    assert.truthy(c.details[1]:find("kernel 3", 1, true))
    -- the maps and the Grad-CAM of the top class at this layer are PNG files
    for _, f in ipairs { c.maps, c.cam } do
      local img = assert(nv.image.load(dir .. "/" .. f))
      assert.is_true(img:dim() == 3 and (img:size(1) == 1 or img:size(1) == 3))
    end
    assert.equal(g.prediction.class, nv.no_grad(m:eval(), x):argmax(2):item())
    assert.equal(({ "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" })[g.prediction.class], g.prediction.name)
    -- a layer without a spatial output has neither
    assert.is_nil(by.fc.maps)
    assert.is_nil(by.fc.cam)
    -- the edges follow the data: the residual add has two predecessors
    local add
    for _, n in ipairs(g.nodes) do if n.kind == "op" and #n.preds == 2 then add = n end end
    assert.truthy(add, "a merge node")
  end)

  it("without an input image draws the graph only", function()
    dir = select(1, view.prepare(nv.nn.Sequential { nv.nn.Linear(4, 3), nv.nn.ReLU() }, { input = { 2, 4 } }))
    local g = read(dir .. "/graph.json")
    assert.truthy(g:find('"kind":"Linear"', 1, true))
    assert.is_nil(g:find('"maps"', 1, true))
    assert.has_error(function() view.prepare(nv.nn.Linear(2, 2), { inputs = { 1, 2 } }) end)
  end)
end)

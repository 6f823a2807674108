local nv = require "nnvis"
local nn = nv.nn

local Residual = nv.class("Residual", nn.Module)
function Residual:init(c)
  self.conv = nn.Conv2d(c, c, 3, { padding = 1 })
  self.relu = nn.ReLU()
end
function Residual:forward(x) return self.relu(self.conv(x) + x) end

local function find(d, name)
  for k, n in ipairs(d.nodes) do if n.name == name then return n, k end end
end

describe("nnvis.draw.diagram", function()
  it("draws a Sequential as a chain of boxes with names, types and output shapes", function()
    local m = nn.Sequential { nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2) }
    local d = nv.diagram(m, { 1, 1, 6, 6 })
    assert.equal(5, #d.nodes)                     -- input + 4 layers
    assert.equal(4, #d.edges)
    local conv = find(d, "0")
    assert.equal("Conv2d", conv.kind)
    assert.same({ 1, 4, 4, 4 }, conv.shape)
    for k = 2, 5 do assert.same({ k - 1 }, d.nodes[k].preds) end
  end)

  it("shows a residual branch as a merge with two inputs", function()
    local m = nn.Sequential { nn.Conv2d(2, 3, 1), Residual(3), nn.AdaptiveAvgPool2d(1) }
    local d = nv.diagram(m, { 1, 2, 5, 5 })
    local add, ai = find(d, "add")
    assert.truthy(add)
    assert.equal(2, #add.preds)
    local conv0 = select(2, find(d, "0"))
    local inner = select(2, find(d, "1.conv"))
    table.sort(add.preds)
    assert.same({ conv0, inner }, add.preds)     -- the skip from layer 0 and the conv branch
    local relu = find(d, "1.relu")
    assert.same({ ai }, relu.preds)
    -- folded to depth 1, the block is one box
    local d1 = nv.diagram(m, { 1, 2, 5, 5 }, { depth = 1 })
    assert.equal(4, #d1.nodes)
    assert.equal("Residual", find(d1, "1").kind)
  end)

  it("writes PNG, SVG and DOT with the same nodes and edges", function()
    local m = nn.Sequential { nn.Conv2d(2, 3, 1), Residual(3) }
    local d = nv.diagram(m, { 1, 2, 5, 5 })
    local img = d:image()
    -- width x height points at the diagram's scale (2 pixels per point by default)
    assert.same({ 3, math.ceil(d.height * d.scale), math.ceil(d.width * d.scale) }, img:shape())
    assert.is_true(img:min():item() < 0.2)       -- dark outlines and text are drawn
    local svg = d:svg()
    local _, boxes = svg:gsub('<g class="node"', "")
    assert.equal(#d.nodes, boxes)                -- one hover region (with its title) per node
    assert.truthy(svg:find("<title>1.conv (Conv2d)", 1, true))
    local arrows = 0
    for _, e in ipairs(d:edge_list()) do if #d:route(e) >= 4 then arrows = arrows + 1 end end
    assert.equal(#d.edges, arrows)
    local dot = d:dot()
    local _, dedges = dot:gsub("%->", "")
    assert.equal(#d.edges, dedges)
    assert.truthy(dot:match("^digraph model {"))
    local path = os.tmpname()
    assert(d:save_png(path .. ".png"))
    assert(d:save_svg(path .. ".svg"))
    assert.truthy(nv.image.load(path .. ".png"))
    os.remove(path .. ".png"); os.remove(path .. ".svg"); os.remove(path)
  end)
end)

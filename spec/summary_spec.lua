local nv = require "nnvis"
local nn = nv.nn

describe("nnvis.inspect.summary", function()
  it("gives torchinfo's figures for ResNet-18 at 1x3x64x64", function()
    local s = nv.summary(nv.models.resnet18(), { 1, 3, 64, 64 })
    assert.equal(11689512, s.total_params)
    assert.equal(11689512, s.trainable_params)
    assert.equal("148.57", string.format("%.2f", s.mult_adds / 1e6))
    local text = tostring(s)
    assert.truthy(text:find("Total params: 11,689,512", 1, true))
    assert.truthy(text:find("Total mult-adds (M): 148.57", 1, true))
  end)

  it("counts VGG16's 138,357,544 parameters", function()
    local s = nv.summary(nv.models.vgg16(), { 1, 3, 32, 32 }, { depth = 1 })
    assert.equal(138357544, s.total_params)
    assert.equal(3, #s.rows)    -- features, avgpool, classifier
  end)

  it("lists layers with dotted names, types, output shapes, parameters and mult-adds", function()
    local m = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3) }
    local s = nv.summary(m, { 2, 1, 5, 5 })
    assert.equal(4, #s.rows)
    local conv = s.rows[1]
    assert.same({ "0", "Conv2d" }, { conv.name, conv.kind })
    assert.same({ 2, 4, 5, 5 }, conv.output_shape)
    assert.equal(4 * 9 + 4, conv.params)
    assert.equal((4 * 9 + 4) * 2 * 25, conv.mult_adds)       -- (weight + bias) x N x H x W
    assert.equal(2 * 4 * 5 * 5 * 4, conv.activation_bytes)
    assert.same({ 2, 3 }, s.rows[4].output_shape)
    assert.equal(2 * (100 * 3 + 3), s.rows[4].mult_adds)     -- N x params for Linear
    assert.equal(s.total_params * 4, s.params_bytes)
    assert.equal(2 * 1 * 5 * 5 * 4, s.input_bytes)
  end)

  it("counts shared parameters once and separates non-trainable ones", function()
    local shared = nn.Linear(4, 4)
    local m = nn.Sequential { shared, nn.ReLU(), shared }
    local frozen = nn.Linear(4, 2)
    frozen.weight:set_requires_grad(false)
    m:add(frozen)
    local s = nv.summary(m, nv.randn(3, 4))
    assert.equal(20 + 10, s.total_params)
    assert.equal(8, s.non_trainable_params)
  end)

  it("controls the depth of the rows", function()
    local m = nv.models.resnet18({ num_classes = 10 })
    local s1 = nv.summary(m, { 1, 3, 32, 32 }, { depth = 1 })
    local s3 = nv.summary(m, { 1, 3, 32, 32 }, { depth = 3 })
    for _, r in ipairs(s1.rows) do assert.equal(1, r.depth) end
    assert.is_true(#s3.rows > #s1.rows)
    -- a collapsed container reports its whole subtree
    local layer1
    for _, r in ipairs(s1.rows) do if r.name == "layer1" then layer1 = r end end
    assert.equal(147968, layer1.params)
    assert.is_true(layer1.mult_adds > 0)
  end)
end)

-- ONNX's Mod, CumSum, Einsum, cubic and cropping Resize, and BatchNormalization in training
-- mode (issue 27): graphs of one or two nodes written by spec/onnx_writer.lua, values
-- checked against numbers worked out by hand (in the comments), gradients against central
-- differences.
local nv = require "nnvis"
local W = require "onnx_writer"
local H = require "helpers"
local ops = require "nnvis.nn.onnx_ops"

local function load(spec)
  local path = W.file(spec)
  local m, err = nv.onnx.load(path)
  os.remove(path)
  return m, err
end

-- a model of one node "n" of op over graph inputs named by `inputs` (shapes in `shapes`)
local function one(op, o)
  local graph_inputs = {}
  for i, name in ipairs(o.graph or {}) do graph_inputs[i] = { name, o.shapes[i] } end
  local m, err = load {
    opset = o.opset or 13,
    inputs = graph_inputs,
    outputs = o.outputs or { "y" },
    initializers = o.inits,
    nodes = { { op = op, name = "n", inputs = o.inputs or o.graph, outputs = o.outputs or { "y" }, attrs = o.attrs } },
  }
  assert(m, err)
  return m
end

local function ints(name, list, dims) return { name = name, ints = list, dims = dims } end
local function floats(name, list, dims) return { name = name, floats = list, dims = dims } end

local function values(v) return ops.intlist(v) end

-- f raises an error holding want (the error names the module that ran, then the node)
local function raises(f, want)
  local ok, err = pcall(f)
  assert.is_false(ok, "no error, expected: " .. want)
  assert.truthy(tostring(err):find(want, 1, true), "\n" .. tostring(err) .. "\nlacks\n" .. want)
end

describe("nnvis.onnx's Mod", function()
  local a = nv.tensor { -4.3, 7.2, 5.0, 4.3, -7.2, 8.0 }
  local b = nv.tensor { 2.1, -3.4, 8.0, -2.1, 3.4, 5.0 }

  it("takes the divisor's sign with fmod = 0 and the dividend's with fmod = 1", function()
    local py = one("Mod", { graph = { "a", "b" }, shapes = { { 6 }, { 6 } } })
    -- -4.3 - 2.1 floor(-2.05) = 2.0; 7.2 + 3.4 floor(-2.12) = -3.0; 4.3 + 2.1 floor(-2.05) = -2.0
    H.close(py(a, b), { 2.0, -3.0, 5.0, -2.0, 3.0, 3.0 }, 1e-5)
    local c = one("Mod", { graph = { "a", "b" }, shapes = { { 6 }, { 6 } }, attrs = { fmod = 1 } })
    H.close(c(a, b), { -0.1, 0.4, 5.0, 0.1, -0.4, 3.0 }, 1e-5)
  end)

  it("keeps shape arithmetic in integers, as Swin's window partition needs", function()
    local m = one("Mod", { inputs = { "p", "q" }, inits = { ints("p", { -7, 7, 9, 2 }), ints("q", { 3, -3, 4, 4 }) } })
    local y = m()
    assert.is_true(ops.ints.is(y))
    assert.same({ -7 % 3, 7 % -3, 1, 2 }, values(y))
    assert.same({ 2, -2, 1, 2 }, values(y))
    local c = one("Mod", { inputs = { "p", "q" }, attrs = { fmod = 1 },
                           inits = { ints("p", { -7, 7, 9, 2 }), ints("q", { 3, -3, 4, 4 }) } })
    assert.same({ -1, 1, 1, 2 }, values(c()))
  end)

  it("computes the padding of a window from a Shape, and refuses an integer Mod by zero", function()
    local m, err = load {
      opset = 14, inputs = { { "x", { 1, 3, 7, 9 } } }, outputs = { "y" },
      initializers = { ints("w", { 7 }) },
      nodes = { { op = "Shape", name = "s", inputs = { "x" }, outputs = { "s" } },
                { op = "Mod", name = "attn/Mod", inputs = { "s", "w" }, outputs = { "y" } } },
    }
    assert(m, err)
    assert.same({ 1, 3, 0, 2 }, values(m(nv.zeros(1, 3, 7, 9))))
    local z = one("Mod", { inputs = { "p", "q" }, inits = { ints("p", { 3 }), ints("q", { 0 }) } })
    raises(function() z() end, "onnx model: node n (Mod): integer Mod by zero")
  end)

  it("has the gradient of a - b q, q held", function()
    local m = one("Mod", { graph = { "a", "b" }, shapes = { { 6 }, { 6 } }, attrs = { fmod = 1 } })
    H.gradcheck(function(x, y) return m(x, y) end, { a:clone(), b:clone() }, { eps = 1e-3 })
    local p = one("Mod", { graph = { "a", "b" }, shapes = { { 6 }, { 6 } } })
    H.gradcheck(function(x, y) return p(x, y) end, { a:clone(), b:clone() }, { eps = 1e-3 })
  end)
end)

describe("nnvis.onnx's CumSum", function()
  local x = nv.tensor { 1, 2, 3, 4, 5 }
  local function cumsum(attrs, input, axis)
    local m = one("CumSum", { graph = { "x" }, shapes = { input:shape() }, inputs = { "x", "axis" },
                              inits = { ints("axis", { axis or 0 }, {}) }, attrs = attrs })
    return m(input)
  end

  it("sums inclusively, exclusively and from the end", function()
    H.close(cumsum({}, x), { 1, 3, 6, 10, 15 })
    H.close(cumsum({ exclusive = 1 }, x), { 0, 1, 3, 6, 10 })
    H.close(cumsum({ reverse = 1 }, x), { 15, 14, 12, 9, 5 })
    H.close(cumsum({ exclusive = 1, reverse = 1 }, x), { 14, 12, 9, 5, 0 })
  end)

  it("sums along the axis given, negative counting from the end", function()
    local t = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
    H.close(cumsum({}, t, 0), { { 1, 2, 3 }, { 5, 7, 9 } })
    H.close(cumsum({}, t, -1), { { 1, 3, 6 }, { 4, 9, 15 } })
    H.close(cumsum({ reverse = 1, exclusive = 1 }, t, 1), { { 5, 3, 0 }, { 11, 6, 0 } })
  end)

  it("agrees with a running sum on a long axis", function()
    local long = nv.randn(3, 37)
    local rows, want = long:totable(), {}
    for i, row in ipairs(rows) do
      local acc = 0
      want[i] = {}
      for j = 1, #row do acc = acc + row[j]; want[i][j] = acc end
    end
    H.close(cumsum({}, long, 1), want, 1e-5)
  end)

  it("sums shape values into shape values", function()
    local m = one("CumSum", { inputs = { "v", "axis" }, inits = { ints("v", { 2, 3, 4 }), ints("axis", { 0 }, {}) } })
    local y = m()
    assert.is_true(ops.ints.is(y))
    assert.same({ 2, 5, 9 }, values(y))
  end)

  it("has the gradient of the reversed scan", function()
    local m = one("CumSum", { graph = { "x" }, shapes = { { 2, 6 } }, inputs = { "x", "axis" },
                              inits = { ints("axis", { 1 }, {}) }, attrs = { exclusive = 1, reverse = 1 } })
    H.gradcheck(function(t) return m(t) end, { nv.randn(2, 6) })
  end)
end)

describe("nnvis.onnx's Einsum", function()
  local function einsum(eq, ...)
    local xs = { ... }
    local names, shapes = {}, {}
    for i, t in ipairs(xs) do names[i], shapes[i] = "x" .. i, t:shape() end
    local m = one("Einsum", { opset = 12, graph = names, shapes = shapes, attrs = { equation = eq } })
    return m(...), m
  end

  local a = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  local b = nv.tensor { { 1, 0 }, { 0, 1 }, { 1, 1 } }

  it("multiplies matrices, with the output explicit or implicit", function()
    -- rows of a times the columns of b: (1+3, 2+3), (4+6, 5+6)
    H.close(einsum("ij,jk->ik", a, b), { { 4, 5 }, { 10, 11 } })
    H.close(einsum("ij,jk", a, b), { { 4, 5 }, { 10, 11 } })
    H.close(einsum("ik,kj->ji", a, b), { { 4, 10 }, { 5, 11 } })
  end)

  it("transposes, sums, takes inner and outer products, traces and diagonals", function()
    H.close(einsum("ij->ji", a), a:t():contiguous())
    H.close(einsum("ba", a), a:t():contiguous())   -- implicit output: the letters in order
    H.close(einsum("ij->i", a), { 6, 15 })
    H.close(einsum("ij->", a), nv.tensor(21))
    H.close(einsum("i,i", nv.tensor { 1, 2, 3 }, nv.tensor { 4, 5, 6 }), nv.tensor(32))
    H.close(einsum("i,j->ij", nv.tensor { 1, 2 }, nv.tensor { 3, 4, 5 }), { { 3, 4, 5 }, { 6, 8, 10 } })
    local sq = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } }
    H.close(einsum("ii", sq), nv.tensor(15))
    H.close(einsum("ii->i", sq), { 1, 5, 9 })
    H.close(einsum("...ii->...i", nv.stack { sq, sq * 2 }), { { 1, 5, 9 }, { 2, 10, 18 } })
  end)

  it("contracts batches, attention's scores and three operands like matmul", function()
    local q, k = nv.randn(2, 3, 4, 5), nv.randn(2, 3, 6, 5)
    H.close(einsum("bhqd,bhkd->bhqk", q, k), nv.matmul(q, k:transpose(3, 4)), 1e-5)
    local x, y = nv.randn(4, 2, 3), nv.randn(4, 3, 5)
    H.close(einsum("bij,bjk->bik", x, y), nv.matmul(x, y), 1e-5)
    local p, r, s = nv.randn(2, 3), nv.randn(3, 4), nv.randn(4, 5)
    H.close(einsum("ij,jk,kl->il", p, r, s), nv.matmul(nv.matmul(p, r), s), 1e-5)
  end)

  it("broadcasts the dims of '...'", function()
    local x, y = nv.randn(1, 2, 3), nv.randn(4, 3, 2)
    H.close(einsum("...ij,...jk->...ik", x, y), nv.matmul(x:expand(4, 2, 3):contiguous(), y), 1e-5)
    local z, w = nv.randn(5, 2, 3), nv.randn(3, 4)
    H.close(einsum("...ij,jk", z, w), nv.matmul(z, w), 1e-5)
  end)

  it("refuses equations it cannot read, naming the node", function()
    local function refuses(eq, want, ...)
      local xs = { ... }
      local names, shapes = {}, {}
      for i, t in ipairs(xs) do names[i], shapes[i] = "x" .. i, t:shape() end
      local m = one("Einsum", { opset = 12, graph = names, shapes = shapes, attrs = { equation = eq } })
      raises(function() m(table.unpack(xs)) end, "onnx model: node n (Einsum): " .. want)
    end
    refuses("ij->iz", "equation 'ij->iz': the output's 'z' is in no input", a)
    refuses("ijk->i", "equation 'ijk->i': term 'ijk' does not fit an input of rank 2", a)
    refuses("ij,jk->ik", "equation 'ij,jk->ik' names 2 operands, the node has 1 input", a)
    refuses("ij->ii", "equation 'ij->ii': the output names 'i' twice", a)
    refuses("i1->i", "equation 'i1->i': term 'i1' must be letters and at most one '...'", nv.zeros(2, 2))
    refuses("ij,jk->ik", "equation 'ij,jk->ik': label 'j' is 3 in one input and 2 in input 2 (2,2)", a,
      nv.zeros(2, 2))
  end)

  it("has gradients through diagonals, batches and chains", function()
    H.gradcheck(function(x, y) return (einsum("bij,bjk->bik", x, y)) end, { nv.randn(2, 2, 3), nv.randn(2, 3, 2) })
    H.gradcheck(function(x) return (einsum("...ii->...i", x)) end, { nv.randn(2, 3, 3) })
    H.gradcheck(function(x, y, z) return (einsum("ij,jk,kl->il", x, y, z)) end,
      { nv.randn(2, 3), nv.randn(3, 2), nv.randn(2, 2) })
  end)
end)

describe("nnvis.onnx's Resize", function()
  local function resize(x, o)
    local inputs, inits = { "x", "roi", "", "" }, { floats("roi", o.roi or {}, { #(o.roi or {}) }) }
    if o.scales then inputs[3] = "s"; inits[#inits + 1] = floats("s", o.scales) end
    if o.sizes then inputs[4] = "z"; inits[#inits + 1] = ints("z", o.sizes) end
    local m = one("Resize", { graph = { "x" }, shapes = { x:shape() }, inputs = inputs, inits = inits,
                              attrs = o.attrs })
    return m(x), m
  end

  it("downsamples with align_corners over the scaled length, as ONNX's reference", function()
    -- width 4 at scale 0.6 is 2.4 long: x = 1 (4 - 1) / (2.4 - 1) = 2.142857, 3 + 0.142857
    local x = nv.tensor({ 1, 2, 3, 4, 5, 6, 7, 8 }):reshape(1, 1, 2, 4)
    local y = resize(x, { scales = { 1, 1, 0.6, 0.6 }, attrs = { mode = "linear",
                                                                 coordinate_transformation_mode = "align_corners" } })
    H.close(y, nv.tensor({ 1, 3 + 1 / 7 }):reshape(1, 1, 1, 2), 1e-5)
    -- with sizes the length is the size's: (4 - 1) / (2 - 1) = 3
    y = resize(x, { sizes = { 1, 1, 1, 2 },
                    attrs = { mode = "linear", coordinate_transformation_mode = "align_corners" } })
    H.close(y, nv.tensor({ 1, 4 }):reshape(1, 1, 1, 2), 1e-5)
  end)

  -- Keys' weights at t = 0.5 with a = -0.75: -0.09375, 0.59375, 0.59375, -0.09375;
  -- asymmetric x2 of {1, 2, 4, 8}: x = i / 2, edge values repeated past the ends
  it("interpolates cubically with Keys' kernel", function()
    local x = nv.tensor({ 1, 2, 4, 8 }):reshape(1, 1, 1, 4)
    local attrs = { mode = "cubic", coordinate_transformation_mode = "asymmetric" }
    local y = resize(x, { scales = { 1, 1, 1, 2 }, attrs = attrs })
    -- i = 1: 0.5 (1) + 0.59375 (2) - 0.09375 (4); i = 3: -0.09375 + 0.59375 (2 + 4) - 0.09375 (8)
    H.close(y, nv.tensor({ 1, 1.3125, 2, 2.71875, 4, 6.1875, 8, 8.375 }):reshape(1, 1, 1, 8), 1e-5)
    -- a = -0.5: weights -0.0625, 0.5625, 0.5625, -0.0625
    attrs.cubic_coeff_a = -0.5
    y = resize(x, { scales = { 1, 1, 1, 2 }, attrs = attrs })
    H.close(y:narrow(4, 4, 1):reshape(1), { -0.0625 + 0.5625 * 6 - 0.0625 * 8 }, 1e-5)
  end)

  it("drops and renormalizes the taps outside the input with exclude_outside", function()
    local x = nv.tensor({ 1, 2, 4, 8 }):reshape(1, 1, 1, 4)
    local y = resize(x, { scales = { 1, 1, 1, 2 }, attrs = { mode = "cubic", exclude_outside = 1,
                                                             coordinate_transformation_mode = "asymmetric" } })
    local v = y:reshape(8):totable()
    -- i = 1: (0.59375 (1 + 2) - 0.09375 (4)) / 1.09375; i = 7: (-0.09375 (4) + 0.59375 (8)) / 0.5
    assert.near(1.40625 / 1.09375, v[2], 1e-5)
    assert.near(8.75, v[8], 1e-5)
  end)

  it("crops and resizes a region, outside it the extrapolation value", function()
    local x = nv.arange(1, 17):reshape(4, 4)
    -- rows 0.4 .. 0.6 and columns 0.6 .. 0.8 of the 3-long axes: x = 1.2 + 0.3 i, 1.8 + 0.3 j
    local y = resize(x, { roi = { 0.4, 0.6, 0.6, 0.8 }, sizes = { 3, 3 },
                          attrs = { mode = "linear", coordinate_transformation_mode = "tf_crop_and_resize" } })
    H.close(y, { { 7.6, 7.9, 8.2 }, { 8.8, 9.1, 9.4 }, { 10, 10.3, 10.6 } }, 1e-5)
    y = resize(x, { roi = { 0.4, 0.6, 1.2, 1.7 }, sizes = { 3, 3 },
                    attrs = { mode = "linear", coordinate_transformation_mode = "tf_crop_and_resize",
                              extrapolation_value = 10.0 } })
    -- rows 1.2 + 1.2 i, columns 1.8 + 1.65 j: only (0, 0) and (1, 0) fall inside
    H.close(y, { { 4 * 1.2 + 2.8, 10, 10 }, { 4 * 2.4 + 2.8, 10, 10 }, { 10, 10, 10 } }, 1e-5)
  end)

  it("has gradients in cubic mode", function()
    local _, m = resize(nv.randn(1, 1, 3, 4), { scales = { 1, 1, 1.5, 2 }, attrs = { mode = "cubic" } })
    H.gradcheck(function(t) return m(t) end, { nv.randn(1, 1, 3, 4) })
  end)
end)

describe("nnvis.onnx's BatchNormalization with training_mode = 1", function()
  local x = nv.tensor({ -1, 0, 1, 2, 3, 4 }):reshape(2, 3, 1, 1)   -- channel c holds x[1][c], x[2][c]
  local function bn()
    return load {
      opset = 15, inputs = { { "x", { 2, 3, 1, 1 } } }, outputs = { "y", "rm", "rv" },
      initializers = { floats("s", { 1, 2, 1 }), floats("b", { 0, 0, 1 }), floats("m", { 0, 0, 0 }),
                       floats("v", { 1, 1, 1 }) },
      nodes = { { op = "BatchNormalization", name = "n", inputs = { "x", "s", "b", "m", "v" },
                  outputs = { "y", "rm", "rv" }, attrs = { training_mode = 1, momentum = 0.9, epsilon = 0.0 } } },
    }
  end

  it("normalizes with the batch's statistics and moves the running ones by the biased variance", function()
    local m = assert(bn())
    local y, rm, rv = m(x)
    -- each channel holds two values 3 apart: mean the middle, biased variance 2.25, so +-1
    H.close(y:reshape(2, 3), { { -1, -2, 0 }, { 1, 2, 2 } }, 1e-5)
    -- 0.9 running + 0.1 batch: batch means 0.5, 1.5, 2.5; variances 0.9 + 0.225
    H.close(rm, { 0.05, 0.15, 0.25 }, 1e-5)
    H.close(rv, { 1.125, 1.125, 1.125 }, 1e-5)
    -- the module is in eval: its buffers stay as loaded
    H.close(m:state_dict().m, { 0, 0, 0 })
  end)
end)

describe("nv.onnx.load of old opsets", function()
  it("refuses opsets before 7, as ONNX Runtime does, and says so", function()
    local m, err = load { opset = 6, inputs = { { "x", { 2 } } }, outputs = { "y" },
                          nodes = { { op = "Relu", name = "n", inputs = { "x" }, outputs = { "y" } } } }
    assert.is_nil(m)
    assert.truthy(err:find("opset 6 is older than opset 7, the oldest nnvis runs (ONNX Runtime, too, supports "
      .. "opset 7 and newer only); convert the model with onnx.version_converter", 1, true), err)
  end)
end)

describe("nnvis.onnx's ScatterND", function()
  local function scatter(reduction)
    return one("ScatterND", { graph = { "d", "u" }, shapes = { { 4, 3 }, { 3, 3 } }, inputs = { "d", "i", "u" },
                              inits = { ints("i", { 2, 0, 2 }, { 3, 1 }) }, attrs = { reduction = reduction } })
  end
  local d = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 10, 11, 12 } }
  local u = nv.tensor { { -1, -2, -3 }, { 3, 3, 3 }, { 2, 2, 2 } }

  it("replaces, adds, multiplies and keeps the max of the rows indices name (row 2 twice)", function()
    assert.same({ 3, 3, 3, 4, 5, 6, 2, 2, 2, 10, 11, 12 }, values(scatter("none")(d, u)))
    assert.same({ 4, 5, 6, 4, 5, 6, 8, 8, 8, 10, 11, 12 }, values(scatter("add")(d, u)))
    assert.same({ 3, 6, 9, 4, 5, 6, -14, -32, -54, 10, 11, 12 }, values(scatter("mul")(d, u)))
    assert.same({ 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, values(scatter("max")(d, u)))
    assert.same({ 1, 2, 3, 4, 5, 6, -1, -2, -3, 10, 11, 12 }, values(scatter("min")(d, u)))
  end)

  it("has the gradient of data and updates", function()
    for _, r in ipairs { "none", "add", "mul" } do
      local m = scatter(r)
      H.gradcheck(function(a, b) return m(a, b) end, { nv.randn(4, 3), nv.randn(3, 3) })
    end
  end)
end)

describe("nnvis.core.scatter_picks (ScatterND's writes as gathers)", function()
  local core = require "nnvis.core"
  it("lists each position's writes in order, round by round, and its last", function()
    local rounds, last = core.scatter_picks(5, core.tensor { 1, 3, 1, 0, 1 })
    assert.same({ 4, 1, 0, 2, 0, 0, 3, 0, 0, 0, 0, 5, 0, 0, 0 }, rounds:contiguous():values())
    assert.equal(2, rounds:dim())
    assert.same({ 4, 5, 0, 2, 0 }, last:values())
  end)
  it("refuses a position outside [0, n) or not whole, naming the write", function()
    assert.has_error(function() core.scatter_picks(3, core.tensor { 0, 3 }) end,
      "scatter_picks: write 2 goes to position 3, not a whole number in [0, 3)")
    assert.has_error(function() core.scatter_picks(3, core.tensor { 0.5 }) end,
      "scatter_picks: write 1 goes to position 0.5, not a whole number in [0, 3)")
  end)
end)

-- nv.onnx.load on hostile graphs (issue 24, items 5 and 6): every node is checked against
-- its op's declaration (lua/nnvis/nn/onnx_schema.lua) at load, so a missing input or a wrongly
-- typed attribute gives nil, message naming the node, the op and the input or attribute;
-- what only run time can tell fails with a clear error naming the node; no error text is a
-- Lua error from inside nnvis.  Loading costs time linear in the file, and sizes that come
-- from the file's numbers are bounded before anything is allocated.
-- Graphs are written by spec/onnx_writer.lua.
local nv = require "nnvis"
local W = require "onnx_writer"
local ops = require "nnvis.nn.onnx_ops"
local schema = require "nnvis.nn.onnx_schema"

-- text that must never reach a user: Lua's own errors, and locations inside nnvis
local INTERNAL = { "attempt to", "bad argument", "stack overflow", "a nil value", "lua/nnvis/[%w_/]+%.lua:%d+:" }

local function assert_clean(msg)
  for _, p in ipairs(INTERNAL) do
    assert.is_nil(tostring(msg):find(p), "internal error text: " .. tostring(msg))
  end
end

-- loads a model written from spec; the error with the temporary path replaced by <file>
local function load(spec)
  local path = W.file(spec)
  local m, err = nv.onnx.load(path)
  os.remove(path)
  if err then
    local i, j = err:find(path, 1, true)
    if i then err = err:sub(1, i - 1) .. "<file>" .. err:sub(j + 1) end
  end
  return m, err
end

-- a model of one node "n" reading graph input x (1,2,4,4) and the given initializers
local function one(op, o)
  o = o or {}
  return {
    opset = o.opset or 13,
    inputs = o.graph_inputs or { { "x", { 1, 2, 4, 4 } } },
    outputs = { "y" },
    initializers = o.inits,
    nodes = { { op = op, name = "n", inputs = o.inputs or { "x" }, outputs = o.outputs or { "y" }, attrs = o.attrs } },
  }
end

local function ints(name, list, dims) return { name = name, ints = list, dims = dims } end
local function floats(name, list, dims) return { name = name, floats = list, dims = dims } end

local function refused(spec, want)
  local m, err = load(spec)
  assert.is_nil(m, "loaded, expected: " .. want)
  assert.truthy(err:find("^onnx%.load: "), err)
  assert.truthy(err:find(want, 1, true), "\n" .. err .. "\nlacks\n" .. want)
  assert_clean(err)
  return err
end

-- runs a loaded model and expects a clear error naming the node
local function fails_at_run(spec, args, want)
  local m, err = load(spec)
  assert.truthy(m, err)
  local ok, e = pcall(m, table.unpack(args))
  assert.is_false(ok, "ran, expected: " .. want)
  assert.truthy(tostring(e):find(want, 1, true), "\n" .. tostring(e) .. "\nlacks\n" .. want)
  assert_clean(e)
  return e
end

local function quick(f)
  local t0 = nv.now()
  local r = table.pack(f())
  local dt = nv.now() - t0
  return dt, table.unpack(r, 1, r.n)
end

describe("ONNX op declarations", function()
  it("declare exactly the ops onnx_ops implements", function()
    local implemented, declared = {}, {}
    for k, v in pairs(ops) do
      if type(v) == "function" and k:match("^%u") then implemented[#implemented + 1] = k end
    end
    for k in pairs(schema.decl) do declared[#declared + 1] = k end
    table.sort(implemented)
    table.sort(declared)
    assert.same(implemented, declared)
    assert.is_true(#declared >= 75)
  end)

  it("hold variants in opset order, each with inputs, outputs and attributes read", function()
    for op, variants in pairs(schema.decl) do
      for i, v in ipairs(variants) do
        assert.equal(op, v.op)
        assert.is_table(v.inputs.names, op)
        assert.is_true(v.outputs.min >= 1, op .. " gives an output")
        if i > 1 then assert.is_true(v.since > variants[i - 1].since, op) end
      end
    end
    assert.equal(10, schema.variant("Slice", 13).since)
    assert.equal(1, schema.variant("Slice", 9).since)
    assert.same({ "data", "starts", "ends", "axes", "steps" }, schema.variant("Slice", 13).inputs.names)
    assert.same({ 2, 3, 4, 5 }, schema.variant("Slice", 13).inputs.int_pos)
  end)
end)

describe("nv.onnx.load refuses a node", function()
  -- the ops the fuzzer found, each with a missing input and a wrongly typed attribute (or,
  -- for ops without attributes, a wrong input)
  local cases = {
    { "Slice", one("Slice", { inputs = { "x", "", "e" }, inits = { ints("e", { 1 }) } }),
      "node n (Slice): input 2 (starts) is missing" },
    { "Slice", one("Slice", { opset = 9, attrs = { starts = "abc", ends = { 1 } } }),
      "node n (Slice): attribute starts must be a list of integers, got a string ('abc')" },
    { "Slice", one("Slice", { inputs = { "x", "s", "e" }, inits = { floats("s", { 0.5 }), ints("e", { 1 }) } }),
      "node n (Slice): input 2 (starts) must be integers, got a float tensor (1)" },
    { "ConvTranspose", one("ConvTranspose", { inputs = { "x" } }), "node n (ConvTranspose): input 2 (W) is missing" },
    { "ConvTranspose", one("ConvTranspose", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1 }, { 2, 1, 1, 1 }) },
                                              attrs = { group = 0 } }),
      "node n (ConvTranspose): attribute group must be >= 1, got 0" },
    { "ConvTranspose", one("ConvTranspose", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1 }, { 2, 1, 1, 1 }) },
                                              attrs = { group = 1.5 } }),
      "node n (ConvTranspose): attribute group must be an integer, got a float (1.5)" },
    { "Resize", one("Resize", { inputs = { "x" } }), "node n (Resize): needs input 3 (scales) or input 4 (sizes)" },
    { "Resize", one("Resize", { inputs = { "", "", "s" }, inits = { floats("s", { 1, 1, 2, 2 }) } }),
      "node n (Resize): input 1 (X) is missing" },
    { "Resize", one("Resize", { inputs = { "x", "", "s" }, inits = { floats("s", { 1, 1, 2, 2 }) },
                                attrs = { mode = 3 } }),
      "node n (Resize): attribute mode must be a string, got an integer (3)" },
    { "Add", one("Add"), "node n (Add): input 2 (B) is missing" },
    { "Add", one("Add", { inputs = { "x", "x", "x" } }), "node n (Add): has 3 inputs, Add takes at most 2 (A, B)" },
    { "AveragePool", one("AveragePool", { inputs = {}, attrs = { kernel_shape = { 2, 2 } } }),
      "node n (AveragePool): input 1 (X) is missing" },
    { "AveragePool", one("AveragePool", { attrs = { kernel_shape = W.floats { 2.5, 2 } } }),
      "node n (AveragePool): attribute kernel_shape must be a list of integers, got a list of 2 floats" },
    { "AveragePool", one("AveragePool"), "node n (AveragePool): attribute kernel_shape is missing" },
    { "BatchNormalization", one("BatchNormalization", { inputs = { "x", "s", "s", "s" },
                                                       inits = { floats("s", { 1, 1 }) } }),
      "node n (BatchNormalization): input 5 (input_var) is missing" },
    { "BatchNormalization", one("BatchNormalization", { inputs = { "x", "s", "s", "s", "s" },
                                                       inits = { floats("s", { 1, 1 }) },
                                                       attrs = { epsilon = "tiny" } }),
      "node n (BatchNormalization): attribute epsilon must be a number, got a string ('tiny')" },
    { "Cast", one("Cast", { inputs = {}, attrs = { to = 1 } }), "node n (Cast): input 1 (input) is missing" },
    { "Cast", one("Cast", { attrs = { to = "float" } }),
      "node n (Cast): attribute to must be an integer, got a string ('float')" },
    { "Cast", one("Cast"), "node n (Cast): attribute to is missing" },
    { "Cast", one("Cast", { attrs = { to = 99 } }), "node n (Cast): attribute to 99 is not supported" },
    { "Concat", one("Concat", { inputs = {}, attrs = { axis = 0 } }), "node n (Concat): input 1 (inputs) is missing" },
    { "Concat", one("Concat", { inputs = { "x", "x" }, attrs = { axis = { 0 } } }),
      "node n (Concat): attribute axis must be an integer, got a list of 1 integers" },
    { "Concat", one("Concat", { inputs = { "x", "", "x" }, attrs = { axis = 0 } }),
      "node n (Concat): input 2 (inputs) is missing" },
    { "Constant", one("Constant", { inputs = {} }),
      "node n (Constant): needs exactly one of the attributes value, value_float, value_floats, value_int, " ..
      "value_ints, has none" },
    { "Constant", one("Constant", { inputs = {}, attrs = { value_ints = "abc" } }),
      "node n (Constant): attribute value_ints must be a list of integers, got a string ('abc')" },
    { "Constant", one("Constant", { inputs = { "x" }, attrs = { value_int = 1 } }),
      "node n (Constant): has 1 inputs, Constant takes at most 0 (none)" },
    { "Constant", one("Constant", { inputs = {}, attrs = { value_string = "s" } }),
      "node n (Constant): attribute value_string is not supported" },
    { "Equal", one("Equal"), "node n (Equal): input 2 (B) is missing" },
    { "Equal", one("Equal", { inputs = { "", "x" } }), "node n (Equal): input 1 (A) is missing" },
    { "Expand", one("Expand"), "node n (Expand): input 2 (shape) is missing" },
    { "Expand", one("Expand", { inputs = { "x", "s" }, inits = { floats("s", { 2, 2 }) } }),
      "node n (Expand): input 2 (shape) must be integers, got a float tensor (2)" },
    { "Flatten", one("Flatten", { inputs = {} }), "node n (Flatten): input 1 (input) is missing" },
    { "Flatten", one("Flatten", { attrs = { axis = 1.5 } }),
      "node n (Flatten): attribute axis must be an integer, got a float (1.5)" },
    { "Gather", one("Gather"), "node n (Gather): input 2 (indices) is missing" },
    { "Gather", one("Gather", { inputs = { "x", "i" }, inits = { ints("i", { 0 }) }, attrs = { axis = "0" } }),
      "node n (Gather): attribute axis must be an integer, got a string ('0')" },
    { "Gemm", one("Gemm"), "node n (Gemm): input 2 (B) is missing" },
    { "Gemm", one("Gemm", { inputs = { "x", "x" }, attrs = { transA = 2 } }),
      "node n (Gemm): attribute transA 2 is not supported (nnvis runs 0, 1)" },
    { "Gemm", one("Gemm", { inputs = { "x", "x" }, attrs = { alpha = "one" } }),
      "node n (Gemm): attribute alpha must be a number, got a string ('one')" },
    { "LRN", one("LRN", { inputs = {}, attrs = { size = 3 } }), "node n (LRN): input 1 (X) is missing" },
    { "LRN", one("LRN", { attrs = { size = 2.5 } }),
      "node n (LRN): attribute size must be an integer, got a float (2.5)" },
    { "LRN", one("LRN", { attrs = { size = 0 } }), "node n (LRN): attribute size must be >= 1, got 0" },
    { "LRN", one("LRN"), "node n (LRN): attribute size is missing" },
    { "LeakyRelu", one("LeakyRelu", { inputs = {} }), "node n (LeakyRelu): input 1 (X) is missing" },
    { "LeakyRelu", one("LeakyRelu", { attrs = { alpha = "x" } }),
      "node n (LeakyRelu): attribute alpha must be a number, got a string ('x')" },
    { "MaxPool", one("MaxPool", { inputs = {}, attrs = { kernel_shape = { 2, 2 } } }),
      "node n (MaxPool): input 1 (X) is missing" },
    { "MaxPool", one("MaxPool", { attrs = { kernel_shape = { 2, 2 }, strides = { 0, 1 } } }),
      "node n (MaxPool): attribute strides: entry 1 (0) must be >= 1" },
    { "MaxPool", one("MaxPool", { attrs = { kernel_shape = { 2, 2 }, pads = "same" } }),
      "node n (MaxPool): attribute pads must be a list of integers, got a string ('same')" },
    { "MaxPool", one("MaxPool", { attrs = { kernel_shape = { 2, 2 }, strides = { 1, 1, 1 } } }),
      "node n (MaxPool): attribute strides has 3 entries, kernel_shape 2" },
    { "Pad", one("Pad"), "node n (Pad): input 2 (pads) is missing" },
    { "Pad", one("Pad", { inputs = { "x", "p" }, inits = { ints("p", { 0, 0, 0, 0, 0, 0, 0, 0 }) },
                          attrs = { mode = "wrap" } }),
      "node n (Pad): attribute mode 'wrap' is not supported (nnvis runs 'constant', 'reflect', 'edge')" },
    { "Pad", one("Pad", { opset = 10, attrs = { pads = 3 } }),
      "node n (Pad): attribute pads must be a list of integers, got an integer (3)" },
    { "Range", one("Range", { inputs = { "a", "b" }, inits = { ints("a", { 0 }, {}), ints("b", { 4 }, {}) } }),
      "node n (Range): input 3 (delta) is missing" },
    { "Range", one("Range", { inputs = { "a", "b", "b" }, inits = { ints("a", { 0, 1 }), ints("b", { 4 }, {}) } }),
      "node n (Range): input 1 (start) must be a single number, got integers (2)" },
    { "Reshape", one("Reshape"), "node n (Reshape): input 2 (shape) is missing" },
    { "Reshape", one("Reshape", { inputs = { "x", "s" }, inits = { ints("s", { -1 }) }, attrs = { allowzero = 2 } }),
      "node n (Reshape): attribute allowzero 2 is not supported (nnvis runs 0, 1)" },
    { "Reshape", one("Reshape", { inputs = { "x", "s" }, inits = { floats("s", { -1 }) } }),
      "node n (Reshape): input 2 (shape) must be integers, got a float tensor (1)" },
    { "Shape", one("Shape", { inputs = {} }), "node n (Shape): input 1 (data) is missing" },
    { "Shape", one("Shape", { opset = 15, attrs = { start = "x" } }),
      "node n (Shape): attribute start must be an integer, got a string ('x')" },
    { "Size", one("Size", { inputs = {} }), "node n (Size): input 1 (data) is missing" },
    { "Size", one("Size", { inputs = { "x", "x" } }), "node n (Size): has 2 inputs, Size takes at most 1 (data)" },
    { "Softmax", one("Softmax", { inputs = {} }), "node n (Softmax): input 1 (input) is missing" },
    { "Softmax", one("Softmax", { attrs = { axis = 1.5 } }),
      "node n (Softmax): attribute axis must be an integer, got a float (1.5)" },
    { "Split", one("Split", { inputs = {} }), "node n (Split): input 1 (input) is missing" },
    { "Split", one("Split", { opset = 11, attrs = { split = W.floats { 1.5 } } }),
      "node n (Split): attribute split must be a list of integers, got a list of 1 floats" },
    { "Split", one("Split", { opset = 11, attrs = { split = { 2, -1 } } }),
      "node n (Split): attribute split: entry 2 (-1) must be >= 0" },
    { "Squeeze", one("Squeeze", { inputs = {} }), "node n (Squeeze): input 1 (data) is missing" },
    { "Squeeze", one("Squeeze", { opset = 11, attrs = { axes = "x" } }),
      "node n (Squeeze): attribute axes must be a list of integers, got a string ('x')" },
    { "Sub", one("Sub"), "node n (Sub): input 2 (B) is missing" },
    { "Sub", one("Sub", { inputs = { "x", "x", "x" } }), "node n (Sub): has 3 inputs, Sub takes at most 2 (A, B)" },
    { "Transpose", one("Transpose", { inputs = {} }), "node n (Transpose): input 1 (data) is missing" },
    { "Transpose", one("Transpose", { attrs = { perm = "x" } }),
      "node n (Transpose): attribute perm must be a list of integers, got a string ('x')" },
    { "Transpose", one("Transpose", { attrs = { perm = { 0, 0, 1, 2 } } }),
      "node n (Transpose): attribute perm repeats 0" },
    { "Transpose", one("Transpose", { attrs = { perm = { 0, 5 } } }),
      "node n (Transpose): attribute perm (0,5) is not a permutation" },
    { "Unsqueeze", one("Unsqueeze"), "node n (Unsqueeze): input 2 (axes) is missing" },
    { "Unsqueeze", one("Unsqueeze", { opset = 11 }), "node n (Unsqueeze): attribute axes is missing" },
    { "Unsqueeze", one("Unsqueeze", { opset = 11, attrs = { axes = W.floats { 0.5 } } }),
      "node n (Unsqueeze): attribute axes must be a list of integers, got a list of 1 floats" },
    { "Upsample", one("Upsample", { opset = 9 }), "node n (Upsample): input 2 (scales) is missing" },
    { "Upsample", one("Upsample", { opset = 7 }), "node n (Upsample): attribute scales is missing" },
    { "Upsample", one("Upsample", { opset = 7, attrs = { scales = "2" } }),
      "node n (Upsample): attribute scales must be a list of numbers, got a string ('2')" },
    { "Upsample", one("Upsample", { opset = 7, attrs = { scales = { 1.0, 1.0, -2.0, 2.0 } } }),
      "node n (Upsample): attribute scales (1.0,1.0,-2.0,2.0) must be positive" },
    { "Conv", one("Conv", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1 }, { 1, 2, 1, 1 }) },
                            attrs = { dilations = { 1, 0 } } }),
      "node n (Conv): attribute dilations: entry 2 (0) must be >= 1" },
    { "Clip", one("Clip", { inputs = { "x", "lo" }, inits = { floats("lo", { 0, 1 }) } }),
      "node n (Clip): input 2 (min) must be a single number, got a float tensor (2)" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": " .. c[3]:gsub("^node n %(%w+%): ", ""), function()
      local err = refused(c[2], c[3])
      local want = "onnx.load: <file>: " .. c[3]
      assert.equal(want, err:sub(1, #want))
    end)
  end

  it("of every declared op whose required input is missing, or whose attribute has the wrong type", function()
    local wrong = { int = "x", float = "x", string = 1, ints = W.floats { 1.5 }, floats = "x", tensor = 1,
                    unsupported = 1 }
    local right = { Slice = { starts = { 0 }, ends = { 1 } }, Cast = { to = 1 }, Concat = { axis = 0 },
                    LRN = { size = 1 },
                    MaxPool = { kernel_shape = { 1, 1 } }, AveragePool = { kernel_shape = { 1, 1 } },
                    Unsqueeze = { axes = { 0 } }, Pad = { pads = { 0, 0, 0, 0, 0, 0, 0, 0 } },
                    Upsample = { scales = { 1.0, 1.0, 2.0, 2.0 } }, Constant = { value_float = 1.0 },
                    Einsum = { equation = "ij->ij" } }
    local checked = 0
    for op, variants in pairs(schema.decl) do
      for _, v in ipairs(variants) do
        local opset = math.max(v.since, 7)
        -- every position fed a value of its kind
        local inputs, inits = {}, {}
        for k = 1, #v.inputs.names do
          local kind = v.inputs.kinds[k]
          if kind == "int" then inputs[k] = "i"
          elseif kind == "num" then inputs[k] = "one"
          else inputs[k] = "x" end
        end
        inits = { ints("i", { 1 }), floats("one", { 1 }, {}) }
        local base = {}
        for name, val in pairs(right[op] or {}) do if v.attrs[name] then base[name] = val end end
        local outs = {}
        for k = 1, #v.outputs.names do outs[k] = "y" .. k end
        local function spec(ins, attrs)
          return { opset = opset, inputs = { { "x", { 1, 2, 4, 4 } } }, outputs = { "y1" }, initializers = inits,
                   nodes = { { op = op, name = "n", inputs = ins, outputs = outs, attrs = attrs } } }
        end
        local m, err = load(spec(inputs, base))
        assert.truthy(m, op .. " (opset " .. opset .. "): " .. tostring(err))
        -- a required input missing
        local k = v.inputs.required[1]
        if k then
          local ins = { table.unpack(inputs) }
          ins[k] = ""
          refused(spec(ins, base), string.format("node n (%s): input %d (%s) is missing", op, k, v.inputs.names[k]))
          checked = checked + 1
        end
        -- each attribute of the wrong type
        for name, a in pairs(v.attrs) do
          local attrs = {}
          for key, val in pairs(base) do attrs[key] = val end
          attrs[name] = wrong[a.type]
          local want = a.type == "unsupported" and string.format("node n (%s): attribute %s is not supported", op, name)
            or string.format("node n (%s): attribute %s must be ", op, name)
          refused(spec(inputs, attrs), want)
          checked = checked + 1
        end
      end
    end
    assert.is_true(checked > 200, checked)
  end)

  it("whose outputs outnumber the op's", function()
    refused(one("Relu", { outputs = { "y", "z" } }), "node n (Relu): has 2 outputs, Relu gives at most 1 (Y)")
    refused(one("Relu", { outputs = { "", "z" } }), "node n (Relu): has 2 outputs")
  end)

  it("holding more integers than a shape value may", function()
    local n = ops.ints.MAX + 1
    local raw = string.rep(string.pack("<i8", 1), n)
    refused({ opset = 13, inputs = { { "x", { 2 } } }, outputs = { "y" },
              initializers = { { name = "big", dims = { n }, data_type = W.INT64, raw = raw } },
              nodes = { { op = "Reshape", name = "n", inputs = { "x", "big" }, outputs = { "y" } } } },
      "initializer 'big' holds 1048577 integers, more than the 1048576 nnvis keeps as a shape value")
    local value = W.tensor { dims = { n }, data_type = W.INT64, raw = raw }
    refused(one("Constant", { inputs = {}, attrs = { value = value } }),
      "node n (Constant) holds 1048577 integers")
  end)
end)

describe("a loaded ONNX model", function()
  it("checks computed inputs at run time: integers where integers are needed", function()
    -- starts fed by a graph input: whole numbers in a float tensor are integers, others are not
    local spec = one("Slice", { inputs = { "x", "s", "e" }, graph_inputs = { { "x", { 1, 2, 4, 4 } }, { "s", { 1 } } },
                                inits = { ints("e", { 1 }) } })
    local m = assert(load(spec))
    assert.same({ 1, 2, 4, 4 }, m(nv.zeros(1, 2, 4, 4), nv.tensor { 0 }):shape())
    fails_at_run(spec, { nv.zeros(1, 2, 4, 4), nv.tensor { 0.5 } },
      "onnx model: node n (Slice): input 2 (starts) must be integers, got a float tensor (1) holding 0.5")
    fails_at_run(spec, { nv.zeros(1, 2, 4, 4), nv.tensor { 0 / 0 } }, "input 2 (starts) must be integers")
  end)

  it("checks computed inputs at run time: one number where one is needed", function()
    local spec = one("Range", { inputs = { "a", "b", "d" }, graph_inputs = { { "a", { 2 } } },
                                inits = { floats("b", { 4 }, {}), floats("d", { 1 }, {}) } })
    fails_at_run(spec, { nv.zeros(2) },
      "onnx model: node n (Range): input 1 (start) must be a single number, got a float tensor (2)")
  end)

  it("names an input no node computed (an optional output a node read)", function()
    fails_at_run({ opset = 13, inputs = { { "x", { 1, 2, 4, 4 } } }, outputs = { "z" },
                   initializers = { floats("s", { 1, 1 }) },
                   nodes = { { op = "BatchNormalization", name = "bn", inputs = { "x", "s", "s", "s", "s" },
                               outputs = { "y", "m", "v", "saved_mean", "saved_var" } },
                             { op = "Relu", name = "r", inputs = { "saved_mean" }, outputs = { "z" } } } },
      { nv.randn(1, 2, 4, 4) }, "onnx model: node r (Relu): input 1 (X) has no value")
  end)

  it("fails with the node's name where shapes do not fit, never with a Lua error", function()
    local x = nv.randn(1, 2, 4, 4)
    fails_at_run(one("Slice", { inputs = { "x", "s", "e" }, inits = { ints("s", { 0, 0 }), ints("e", { 1 }) } }), { x },
      "onnx model: node n (Slice): starts (0,0), ends (1), axes () and steps () differ in length")
    fails_at_run(one("MaxPool", { attrs = { kernel_shape = { 2 } } }), { x },
      "onnx model: node n (MaxPool): kernel_shape (2) does not fit the input (1,2,4,4)")
    fails_at_run(one("Transpose", { attrs = { perm = { 1, 0 } } }), { x },
      "onnx model: node n (Transpose): perm (1,0) does not fit the input (1,2,4,4)")
    fails_at_run(one("Flatten", { attrs = { axis = 7 } }), { x },
      "onnx model: node n (Flatten): axis 7 is out of range for rank 4")
    fails_at_run(one("ConvTranspose", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1, 1 }, { 3, 1, 1, 1 }) } }),
      { x },
      "onnx model: node n (ConvTranspose): weight (3,1,1,1) in 1 group does not take the input's 2 channels")
    fails_at_run(one("Resize", { inputs = { "x", "", "s" }, inits = { floats("s", { 2, 2 }) } }), { x },
      "onnx model: node n (Resize): input 3 (scales) holds 2 values, the input (1,2,4,4) has 4 axes")
    fails_at_run(one("Split", { inputs = { "x", "s" }, outputs = { "y", "z" }, inits = { ints("s", { 1, 2 }) },
                                attrs = { axis = 2 } }),
      { x }, "onnx model: node n (Split): split (1,2) does not cut dim 2 of (1,2,4,4) into 2 outputs")
    fails_at_run(one("Gemm", { inputs = { "x", "x" } }), { x },
      "onnx model: node n (Gemm): A (1,2,4,4) and B (1,2,4,4) must be matrices")
    fails_at_run(one("Add", { inputs = { "x", "w" }, inits = { floats("w", { 1, 2, 3 }) } }), { x },
      "onnx model: node n (Add): add: shapes (1,2,4,4) and (3) cannot be broadcast together")
  end)

  it("takes extreme attribute values without looping over them", function()
    local spec = one("Shape", { opset = 15, attrs = { start = math.maxinteger, ["end"] = math.mininteger } })
    local dt, m = quick(function() return load(spec) end)
    assert.truthy(m)
    local v = m(nv.randn(1, 2, 4, 4))
    assert.same({ 0 }, v.shape)
    dt = dt + quick(function() return m(nv.randn(1, 2, 4, 4)) end)
    assert.is_true(dt < 1, dt .. " s")
  end)

  it("loads and runs whatever the node names", function()
    local cases = {
      { "/", "//" }, { "/a/", "a." }, { ".", ".." }, { "/./", "/../" }, { "", "" },
      { "/a/x", "/a/_last" }, { "/a/b/_last", "/a/c" }, { "/a/tree_path", "/a/path" }, { "/_kinds/x", "/_order/y" },
      { "/a/training", "/a/forward" }, { "/a./b", "/a../b" },
    }
    for _, c in ipairs(cases) do
      local m, err = load { opset = 13, inputs = { { "x", { 2 } } }, outputs = { "y" },
                            nodes = { { op = "Relu", name = c[1], inputs = { "x" }, outputs = { "h" } },
                                      { op = "Neg", name = c[2], inputs = { "h" }, outputs = { "y" } } } }
      assert.truthy(m, c[1] .. " " .. c[2] .. ": " .. tostring(err))
      assert.same({ -1, 0 }, m(nv.tensor { 1, -1 }):totable())
      local nodes = 0
      for _, mod in m:named_modules() do if mod.kind == "Relu" or mod.kind == "Neg" then nodes = nodes + 1 end end
      assert.equal(2, nodes)
      m:train()
      m:eval()
    end
  end)
end)

describe("nv.onnx.load's cost", function()
  local function chain(names)
    local nodes, prev = {}, "x"
    for i, nm in ipairs(names) do
      nodes[i] = { op = "Relu", name = nm, inputs = { prev }, outputs = { "v" .. i } }
      prev = "v" .. i
    end
    return { opset = 13, inputs = { { "x", { 2 } } }, outputs = { prev }, nodes = nodes }
  end

  it("is linear in a node name's scope segments (1,000 segments)", function()
    local dt, m = quick(function() return load(chain { string.rep("/a", 1000) .. "/x" }) end)
    assert.truthy(m)
    assert.is_true(dt < 3, dt .. " s")
    local depth = #nv.onnx.scope_paths(string.rep("/a", 1000) .. "/x")
    assert.equal(64, depth)   -- deeper segments stay in the node's own name
    dt, m = quick(function() return load(chain { string.rep("/a.b", 50000) .. "/x" }) end)
    assert.truthy(m)
    assert.is_true(dt < 3, dt .. " s")
  end)

  it("is linear in a name's length, whatever its segments (segments of 2,000 growing dotted paths)", function()
    local segs, p = {}, "a"
    for i = 1, 1000 do segs[i] = p; p = p .. ".a" end
    local names = { "/" .. table.concat(segs, "/") .. "/x", string.rep("b", 200000) }
    local dt, m = quick(function() return load(chain(names)) end)
    assert.truthy(m)
    assert.is_true(dt < 3, dt .. " s")
  end)

  it("gives 20,000 nodes of one name unique names in linear time", function()
    local names = {}
    for i = 1, 20000 do names[i] = "r" end
    local dt, m = quick(function() return load(chain(names)) end)
    assert.truthy(m)
    assert.is_true(dt < 3, dt .. " s")
    assert.equal("Relu", m:get("r_20000").kind)
    for i = 1, 20000 do names[i] = "/s/r" end
    dt, m = quick(function() return load(chain(names)) end)
    assert.truthy(m)
    assert.is_true(dt < 3, dt .. " s")
    assert.equal("Relu", m:get("s.r_20000").kind)
  end)
end)

describe("sizes from a file's numbers", function()
  local HUGE = 1 << 40
  local x = nv.randn(1, 2, 4, 4)
  -- a cap of 256 MiB, whatever the machine's memory
  local saved
  setup(function()
    saved = nv.config().max_alloc
    nv.config { max_alloc = 1 << 28 }
  end)
  teardown(function() nv.config { max_alloc = saved } end)

  local function fast_failure(spec, args, want)
    local dt, err = quick(function() return fails_at_run(spec, args, want) end)
    assert.is_true(dt < 1, dt .. " s")
    return err
  end

  it("ConstantOfShape refuses a shape over max_alloc, or over the shape value limit, before allocating", function()
    fast_failure(one("ConstantOfShape", { inputs = { "s" }, inits = { ints("s", { HUGE, HUGE }) } }), { x },
      "onnx model: node n (ConstantOfShape): the output (1099511627776,1099511627776) needs")
    fast_failure(one("ConstantOfShape", { inputs = { "s" }, inits = { ints("s", { HUGE }) },
                                          attrs = { value = W.tensor { dims = { 1 }, ints = { 7 } } } }), { x },
      "onnx model: node n (ConstantOfShape): the integer output (1099511627776) would hold 1099511627776 integers, " ..
      "more than the 1048576 a shape value may hold")
    fast_failure(one("ConstantOfShape", { inputs = { "s" }, inits = { ints("s", { 2, -3 }) } }), { x },
      "onnx model: node n (ConstantOfShape): the output (2,-3) has a negative size")
  end)

  it("Range refuses a count over the limits before allocating", function()
    local function range(a, b, d) return one("Range", { inputs = { "a", "b", "d" }, inits = { a, b, d } }) end
    fast_failure(range(ints("a", { 0 }, {}), ints("b", { HUGE }, {}), ints("d", { 1 }, {})), { x },
      "onnx model: node n (Range): the integer output (1099511627776) would hold")
    fast_failure(range(floats("a", { 0 }, {}), floats("b", { 2 ^ 50 }, {}), floats("d", { 1 }, {})), { x },
      "onnx model: node n (Range): the output (1125899906842624) needs 4503599627370496 bytes, more than " ..
      "max_alloc (268435456; nv.config{max_alloc = ...})")
    fast_failure(range(floats("a", { 0 }, {}), floats("b", { 1 }, {}), floats("d", { 0 }, {})), { x },
      "onnx model: node n (Range): start 0.0, limit 1.0 and delta 0.0 must be finite, delta non-zero")
  end)

  it("Expand refuses an output over the limits, of a tensor or of a shape value", function()
    fast_failure(one("Expand", { inputs = { "x", "s" }, inits = { ints("s", { HUGE, 1, 1, 1 }) } }), { x },
      "onnx model: node n (Expand): the output (1099511627776,2,4,4) needs")
    fast_failure({ opset = 13, inputs = { { "x", { 1, 2, 4, 4 } } }, outputs = { "y" },
                   initializers = { ints("s", { HUGE, 4 }) },
                   nodes = { { op = "Shape", name = "sh", inputs = { "x" }, outputs = { "v" } },
                             { op = "Expand", name = "n", inputs = { "v", "s" }, outputs = { "y" } } } }, { x },
      "onnx model: node n (Expand): the integer output (1099511627776,4) would hold")
  end)

  it("broadcasting shape values refuses an output over the limit", function()
    fast_failure({ opset = 13, inputs = { { "x", { 1, 2, 4, 4 } } }, outputs = { "y" },
                   nodes = { { op = "ConstantOfShape", name = "a", inputs = { "s1" }, outputs = { "p" },
                               attrs = { value = W.tensor { dims = { 1 }, ints = { 1 } } } },
                             { op = "ConstantOfShape", name = "b", inputs = { "s2" }, outputs = { "q" },
                               attrs = { value = W.tensor { dims = { 1 }, ints = { 1 } } } },
                             { op = "Add", name = "n", inputs = { "p", "q" }, outputs = { "y" } } },
                   initializers = { ints("s1", { 1025, 1 }), ints("s2", { 1, 1024 }) } }, { x },
      "onnx model: node n (Add): the integer output (1025,1024) would hold 1049600 integers, more than the 1048576")
  end)

  it("Resize and Upsample refuse outputs over the limits before building any index", function()
    fast_failure(one("Resize", { inputs = { "x", "", "", "s" }, inits = { ints("s", { 1, 2, HUGE, HUGE }) } }), { x },
      "onnx model: node n (Resize): sizes (1,2,1099511627776,1099511627776) resize axis 2 to 1099511627776")
    fast_failure(one("Resize", { inputs = { "x", "", "s" }, inits = { floats("s", { 1, 1, 4096, 4096 }) } }), { x },
      "onnx model: node n (Resize): the resized output (1,2,16384,16384) needs")
    local err = fast_failure(one("Resize", { inputs = { "x", "", "s" },
                                             inits = { floats("s", { 1, 1, 2 ^ 100, 1 }) } }),
      { x }, "onnx model: node n (Resize): scales (1,1,")
    local want = "resize axis 2 to 5070602400912917605986812821504, more than the 16777216 nnvis resizes an axis to"
    assert.truthy(err:find(want, 1, true), err)
    fast_failure(one("Upsample", { opset = 9, inputs = { "x", "s" }, inits = { floats("s", { 1, 1, 1e6, 1e6 }) } }),
      { x },
      "onnx model: node n (Upsample): the resized output (1,2,4000000,4000000) needs")
    fast_failure(one("Upsample", { opset = 7, attrs = { scales = { 1.0, 1.0, 5000.0, 5000.0 } } }), { x },
      "onnx model: node n (Upsample): the resized output (1,2,20000,20000) needs")
  end)

  it("Pad and ConvTranspose refuse outputs over max_alloc", function()
    fast_failure(one("Pad", { inputs = { "x", "p" }, inits = { ints("p", { 0, 0, HUGE, 0, 0, 0, HUGE, 0 }) } }), { x },
      "onnx model: node n (Pad): the output (1,2,2199023255556,4) needs")
    fast_failure(one("ConvTranspose", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1 }, { 2, 1, 1, 1 }) },
                                        attrs = { strides = { 2147483647, 2147483647 } } }), { x },
      "onnx model: node n (ConvTranspose): the strided input (1,2,6442450942,6442450942) needs")
    refused(one("ConvTranspose", { inputs = { "x", "w" }, inits = { floats("w", { 1, 1 }, { 2, 1, 1, 1 }) },
                                   attrs = { strides = { HUGE, HUGE } } }),
      "node n (ConvTranspose): attribute strides: entry 1 (1099511627776) must be >= 1 and <= 2147483647")
  end)

  it("Tile is not an op nnvis runs: refused at load", function()
    local dt, m, err = quick(function()
      return load(one("Tile", { inputs = { "x", "r" }, inits = { ints("r", { HUGE, 1, 1, 1 }) } }))
    end)
    assert.is_nil(m)
    assert.equal("onnx.load: node n (Tile, opset 13) is not supported", err)
    assert.is_true(dt < 1)
  end)
end)

-- nnvis.nn.onnx_schema — what each ONNX op nnvis runs accepts: its inputs, outputs and
-- attributes, declared once per op (and per opset where ONNX changed the op), so that
-- nv.onnx.load checks every node once, before the model runs, and a hostile or broken graph
-- gives nil, "onnx.load: <file>: node X (Slice): input 2 (starts) is missing" instead of a
-- Lua error inside an op.  Run-time values (an input computed by other nodes) are checked by
-- onnx_ops.check_inputs from the same declaration.
--
-- A declaration is a list of variants, each holding from its opset (`since`) on:
--   inputs  = "X:float W:float B?:float"   one word a position: its ONNX name, then
--             ?  optional (absent or "")     * this and every later position (variadic)
--             :kind  any (default: a float tensor or a shape value), float (a tensor; a
--             shape value is converted), int (integers: a shape value, or a float tensor of
--             whole numbers fed as a graph input), num (one number)
--   outputs = "Y Indices?"                 the same words, without kinds
--   attrs   = { name = "type[range|:values][!]" }   type: int, float, string, ints, floats,
--             tensor, or unsupported (present: the node is refused); range: >=a, <=b, <b
--             (on every entry of a list); :a|b|c the allowed values; ! required.
--             Attributes not declared are not passed to the op.
--   check   = function(attrs, node) -> nil | message   what the words cannot say
local S = {}

local is_tensor = require("nnvis.tensor.util").is_tensor

------------------------------------------------------------------------------------------------
-- the declarations
------------------------------------------------------------------------------------------------
local AUTO_PAD = "string:NOTSET|SAME_UPPER|SAME_LOWER|VALID"

-- sizes of a window: nnvis's kernels take up to 2^31 - 1
local function window_attrs(extra)
  local a = { auto_pad = AUTO_PAD, dilations = "ints>=1<=2147483647", kernel_shape = "ints>=1<=2147483647",
              pads = "ints>=0<=2147483647", strides = "ints>=1<=2147483647" }
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

-- the lengths of a window's lists agree: kernel_shape, strides, dilations of n, pads of 2n
local function window_lengths(at)
  local n, from = at.kernel_shape and #at.kernel_shape, "kernel_shape"
  for _, k in ipairs { "strides", "dilations", "output_padding" } do
    if at[k] then
      if n and #at[k] ~= n then
        return string.format("attribute %s has %d entries, %s %d", k, #at[k], from, n)
      end
      if not n then n, from = #at[k], k end
    end
  end
  if at.pads and n and #at.pads ~= 2 * n then
    return string.format("attribute pads has %d entries, not 2 x %d", #at.pads, n)
  end
  if at.pads and #at.pads % 2 ~= 0 then
    return string.format("attribute pads has an odd number (%d) of entries", #at.pads)
  end
end

local function distinct(at, name)
  local list, seen = at[name], {}
  if not list then return end
  for _, v in ipairs(list) do
    if seen[v] then return string.format("attribute %s repeats %d", name, v) end
    seen[v] = true
  end
end

local function unary(attrs) return { { since = 1, inputs = "X:float", outputs = "Y", attrs = attrs } } end
local function binary() return { { since = 1, inputs = "A B", outputs = "C" } } end
local function variadic() return { { since = 1, inputs = "data_0*", outputs = "result" } } end

local REDUCE_ATTRS = { axes = "ints", keepdims = "int:0|1", noop_with_empty_axes = "int:0|1" }
-- axes as an attribute, and from `from` (13 for ReduceSum, 18 for the others) as an input
local function reduce(from)
  return { { since = 1, inputs = "data:float", outputs = "reduced", attrs = REDUCE_ATTRS,
             check = function(at) return distinct(at, "axes") end },
           { since = from, inputs = "data:float axes?:int", outputs = "reduced", attrs = REDUCE_ATTRS,
             check = function(at) return distinct(at, "axes") end } }
end

local function softmax()
  return { { since = 1, inputs = "input:float", outputs = "output", attrs = { axis = "int" } } }
end

local function pool(extra, outputs)
  return { { since = 1, inputs = "X:float", outputs = outputs or "Y",
             attrs = window_attrs(extra), check = function(at)
               if not at.kernel_shape then return "attribute kernel_shape is missing" end
               return window_lengths(at)
             end } }
end

-- TensorProto.DataType codes Cast runs (all but complex numbers)
local CAST_TO = "int:1|2|3|4|5|6|7|8|9|10|11|12|13|16!"

local CONSTANT_KEYS = { "value", "value_float", "value_floats", "value_int", "value_ints" }

S.decl = {
  Add = binary(), Sub = binary(), Mul = binary(), Div = binary(), Equal = binary(),
  Pow = { { since = 1, inputs = "X Y", outputs = "Z" } },
  Max = variadic(), Min = variadic(), Sum = variadic(), Mean = variadic(),
  Where = { { since = 1, inputs = "condition X Y", outputs = "output" } },
  Mod = { { since = 10, inputs = "A B", outputs = "C", attrs = { fmod = "int:0|1" } } },
  CumSum = { { since = 11, inputs = "x axis:int", outputs = "y",
                attrs = { exclusive = "int:0|1", reverse = "int:0|1" } } },
  Not = { { since = 1, inputs = "X", outputs = "Y" } },
  And = { { since = 7, inputs = "A B", outputs = "C" } },
  Or = { { since = 7, inputs = "A B", outputs = "C" } },
  Xor = { { since = 7, inputs = "A B", outputs = "C" } },
  ScatterND = { { since = 11, inputs = "data indices:int updates", outputs = "output",
                  attrs = { reduction = "string:none|add|mul|max|min" } } },
  Einsum = { { since = 12, inputs = "Inputs*", outputs = "Output", attrs = { equation = "string!" } } },

  Sqrt = unary(), Exp = unary(), Log = unary(), Abs = unary(), Neg = unary(), Reciprocal = unary(),
  Floor = unary(), Ceil = unary(), Sin = unary(), Cos = unary(), Erf = unary(), Relu = unary(),
  Sigmoid = unary(), Tanh = unary(), Softplus = unary(), HardSwish = unary(),
  LeakyRelu = unary { alpha = "float" }, Elu = unary { alpha = "float" },
  Selu = unary { alpha = "float", gamma = "float" }, HardSigmoid = unary { alpha = "float", beta = "float" },
  Gelu = unary { approximate = "string:none|tanh" },
  PRelu = { { since = 1, inputs = "X:float slope:float", outputs = "Y" } },
  Clip = { { since = 1, inputs = "input:float", outputs = "output", attrs = { min = "float", max = "float" } },
           { since = 11, inputs = "input min?:num max?:num", outputs = "output" } },

  Softmax = softmax(), LogSoftmax = softmax(),
  ReduceSum = reduce(13), ReduceMean = reduce(18), ReduceMax = reduce(18), ReduceMin = reduce(18),
  ReduceSumSquare = reduce(18), ReduceL2 = reduce(18),

  Gemm = { { since = 1, inputs = "A:float B:float C?:float", outputs = "Y",
             attrs = { alpha = "float", beta = "float", transA = "int:0|1", transB = "int:0|1" } } },
  MatMul = { { since = 1, inputs = "A:float B:float", outputs = "Y" } },

  Conv = { { since = 1, inputs = "X:float W:float B?:float", outputs = "Y",
             attrs = window_attrs { group = "int>=1" }, check = window_lengths } },
  ConvTranspose = { { since = 1, inputs = "X:float W:float B?:float", outputs = "Y",
                      attrs = window_attrs { group = "int>=1", output_padding = "ints>=0<=2147483647",
                                                          output_shape = "ints>=1<=2147483647" },
                      check = window_lengths } },
  MaxPool = pool({ ceil_mode = "int:0|1", storage_order = "int:0|1" }, "Y Indices?"),
  AveragePool = pool { ceil_mode = "int:0|1", count_include_pad = "int:0|1" },
  GlobalAveragePool = unary(), GlobalMaxPool = unary(),

  -- saved_mean and saved_var (before opset 14; PyTorch's exports list them) are not computed
  BatchNormalization = { { since = 1, inputs = "X:float scale:float B:float input_mean:float input_var:float",
                           outputs = "Y running_mean? running_var? saved_mean? saved_var?",
                           attrs = { epsilon = "float>=0", momentum = "float", spatial = "int:1" } },
                         { since = 14, inputs = "X:float scale:float B:float input_mean:float input_var:float",
                           outputs = "Y running_mean? running_var?",
                           attrs = { epsilon = "float>=0", momentum = "float", training_mode = "int:0|1" } } },
  InstanceNormalization = { { since = 1, inputs = "input:float scale:float B:float", outputs = "output",
                              attrs = { epsilon = "float>=0" } } },
  LayerNormalization = { { since = 1, inputs = "X:float Scale:float B?:float", outputs = "Y Mean? InvStdDev?",
                           attrs = { axis = "int", epsilon = "float>=0", stash_type = "int" } } },
  LRN = { { since = 1, inputs = "X:float", outputs = "Y",
            attrs = { alpha = "float", beta = "float", bias = "float", size = "int>=1!" } } },

  Reshape = { { since = 1, inputs = "data shape:int", outputs = "reshaped", attrs = { allowzero = "int:0|1" } } },
  Flatten = { { since = 1, inputs = "input", outputs = "output", attrs = { axis = "int" } } },
  Squeeze = { { since = 1, inputs = "data", outputs = "squeezed", attrs = { axes = "ints" },
                check = function(at) return distinct(at, "axes") end },
              { since = 13, inputs = "data axes?:int", outputs = "squeezed" } },
  Unsqueeze = { { since = 1, inputs = "data", outputs = "expanded", attrs = { axes = "ints!" },
                  check = function(at) return distinct(at, "axes") end },
                { since = 13, inputs = "data axes:int", outputs = "expanded" } },
  Transpose = { { since = 1, inputs = "data", outputs = "transposed", attrs = { perm = "ints>=0" },
                  check = function(at)
                    local bad = distinct(at, "perm")
                    if bad then return bad end
                    for _, p in ipairs(at.perm or {}) do
                      if p >= #at.perm then
                        return string.format("attribute perm (%s) is not a permutation", table.concat(at.perm, ","))
                      end
                    end
                  end } },
  Concat = { { since = 1, inputs = "inputs*", outputs = "concat_result", attrs = { axis = "int!" } } },
  Split = { { since = 1, inputs = "input", outputs = "outputs*", attrs = { axis = "int", split = "ints>=0" } },
            { since = 13, inputs = "input split?:int", outputs = "outputs*", attrs = { axis = "int" } },
            { since = 18, inputs = "input split?:int", outputs = "outputs*",
              attrs = { axis = "int", num_outputs = "int>=1" } } },
  Slice = { { since = 1, inputs = "data", outputs = "output",
              attrs = { starts = "ints!", ends = "ints!", axes = "ints" }, check = function(at)
                if #at.starts ~= #at.ends or (at.axes and #at.axes ~= #at.starts) then
                  return string.format("attributes starts, ends and axes differ in length (%d, %d, %d)", #at.starts,
                    #at.ends, at.axes and #at.axes or #at.starts)
                end
                return distinct(at, "axes")
              end },
            { since = 10, inputs = "data starts:int ends:int axes?:int steps?:int", outputs = "output" } },
  Gather = { { since = 1, inputs = "data indices:int", outputs = "output", attrs = { axis = "int" } } },
  Shape = { { since = 1, inputs = "data", outputs = "shape", attrs = { start = "int", ["end"] = "int" } } },
  Size = { { since = 1, inputs = "data", outputs = "size" } },
  Expand = { { since = 1, inputs = "input shape:int", outputs = "output" } },
  Identity = { { since = 1, inputs = "input", outputs = "output" } },
  Dropout = { { since = 1, inputs = "data:float", outputs = "output mask?",
                attrs = { ratio = "float>=0<1", seed = "int" } },
              { since = 12, inputs = "data:float ratio?:num training_mode?:num", outputs = "output mask?",
                attrs = { seed = "int" } } },

  Constant = { { since = 1, inputs = "", outputs = "output",
                 attrs = { value = "tensor", value_float = "float", value_floats = "floats", value_int = "int",
                           value_ints = "ints", sparse_value = "unsupported", value_string = "unsupported",
                           value_strings = "unsupported" },
                 check = function(at)
                   local have = {}
                   for _, k in ipairs(CONSTANT_KEYS) do if at[k] ~= nil then have[#have + 1] = k end end
                   if #have ~= 1 then
                     return string.format("needs exactly one of the attributes %s, has %s",
                       table.concat(CONSTANT_KEYS, ", "), #have == 0 and "none" or table.concat(have, ", "))
                   end
                 end } },
  ConstantOfShape = { { since = 1, inputs = "input:int", outputs = "output", attrs = { value = "tensor" },
                        check = function(at)
                          local v = at.value
                          if v == nil then return end
                          local n = is_tensor(v) and v:numel() or #v
                          if n ~= 1 then return string.format("attribute value must hold one number, holds %d", n) end
                        end } },
  Range = { { since = 1, inputs = "start:num limit:num delta:num", outputs = "output" } },
  Cast = { { since = 1, inputs = "input", outputs = "output", attrs = { to = CAST_TO, saturate = "int:0|1" } } },

  Pad = { { since = 1, inputs = "data:float", outputs = "output",
            attrs = { pads = "ints!", mode = "string:constant|reflect|edge", value = "float" } },
          { since = 11, inputs = "data:float pads:int constant_value?:num", outputs = "output",
            attrs = { mode = "string:constant|reflect|edge" } },
          { since = 18, inputs = "data:float pads:int constant_value?:num axes?:int", outputs = "output",
            attrs = { mode = "string:constant|reflect|edge" } } },
  Resize = { { since = 1, inputs = "X:float scales:float", outputs = "Y",
               attrs = { mode = "string:nearest|linear|bilinear" } },
             { since = 11, inputs = "X:float roi?:float scales?:float sizes?:int", outputs = "Y",
               attrs = { mode = "string:nearest|linear|bilinear|cubic",
                         coordinate_transformation_mode = "string:half_pixel|pytorch_half_pixel|align_corners|"
                           .. "asymmetric|tf_half_pixel_for_nn|tf_crop_and_resize",
                         nearest_mode = "string:round_prefer_floor|round_prefer_ceil|floor|ceil",
                         cubic_coeff_a = "float", exclude_outside = "int:0|1", extrapolation_value = "float",
                         antialias = "int:0", axes = "unsupported", keep_aspect_ratio_policy = "string:stretch" },
               check = function(_, node)
                 if (node.inputs[3] or "") == "" and (node.inputs[4] or "") == "" then
                   return "needs input 3 (scales) or input 4 (sizes)"
                 end
               end } },
  Upsample = { { since = 1, inputs = "X:float", outputs = "Y",
                 attrs = { scales = "floats!", mode = "string:nearest|linear|bilinear" },
                 check = function(at)
                   for _, s in ipairs(at.scales) do
                     if not (s > 0 and s < math.huge) then
                       return string.format("attribute scales (%s) must be positive", table.concat(at.scales, ","))
                     end
                   end
                 end },
               { since = 9, inputs = "X:float scales:float", outputs = "Y",
                 attrs = { mode = "string:nearest|linear|bilinear" } } },
}

------------------------------------------------------------------------------------------------
-- reading the declarations (once, when the module loads)
------------------------------------------------------------------------------------------------
local TYPES = { int = true, float = true, string = true, ints = true, floats = true, tensor = true, unsupported = true }

local function parse_positions(spec, op, with_kinds)
  local p = { names = {}, kinds = {}, optional = {}, min = 0, max = 0, variadic = false }
  for word in spec:gmatch("%S+") do
    local name, flag, kind = word:match("^([%w_]+)([?*]?):?(%a*)$")
    assert(name, "onnx_schema: bad word '" .. word .. "' in " .. op)
    kind = kind ~= "" and kind or "any"
    assert(with_kinds or kind == "any", "onnx_schema: outputs have no kinds (" .. op .. ")")
    assert(({ any = true, float = true, int = true, num = true })[kind], "onnx_schema: bad kind in " .. op)
    local k = #p.names + 1
    p.names[k], p.kinds[k], p.optional[k] = name, kind, flag == "?"
    if flag ~= "?" then p.min = k end
    p.max = k
    if flag == "*" then p.variadic, p.max = true, math.huge end
  end
  -- the positions a value must be checked at, at run time
  p.required, p.int_pos, p.num_pos = {}, {}, {}
  for k = 1, #p.names do
    if not p.optional[k] then p.required[#p.required + 1] = k end
    if p.kinds[k] == "int" then p.int_pos[#p.int_pos + 1] = k end
    if p.kinds[k] == "num" then p.num_pos[#p.num_pos + 1] = k end
  end
  return p
end

local function parse_attr(spec, op, name)
  local a = { required = spec:sub(-1) == "!" }
  if a.required then spec = spec:sub(1, -2) end
  local ty, rest = spec:match("^(%a+)(.*)$")
  assert(ty and TYPES[ty], "onnx_schema: bad type of attribute " .. name .. " in " .. op)
  a.type = ty
  a.list = ty == "ints" or ty == "floats"
  a.entry = (ty == "ints" or ty == "int") and "int" or "float"
  if rest:sub(1, 1) == ":" then
    a.values, a.value_list = {}, {}
    for v in rest:sub(2):gmatch("[^|]+") do
      local key = ty == "string" and v or math.tointeger(tonumber(v))
      a.values[key] = true
      a.value_list[#a.value_list + 1] = ty == "string" and "'" .. v .. "'" or v
    end
  elseif rest ~= "" then
    a.min = tonumber(rest:match(">=(%-?[%d.]+)"))
    a.max = tonumber(rest:match("<=(%-?[%d.]+)"))
    a.below = tonumber(rest:match("<(%-?[%d.]+)"))
    assert(a.min or a.max or a.below, "onnx_schema: bad range of attribute " .. name .. " in " .. op)
  end
  return a
end

for op, variants in pairs(S.decl) do
  for i, v in ipairs(variants) do
    assert(i == 1 or v.since > variants[i - 1].since, "onnx_schema: variants of " .. op .. " out of order")
    v.op = op
    v.inputs = parse_positions(v.inputs, op, true)
    v.outputs = parse_positions(v.outputs, op, false)
    local attrs = {}
    for name, spec in pairs(v.attrs or {}) do attrs[name] = parse_attr(spec, op, name) end
    v.attrs = attrs
  end
end

--- S.variant(op, opset): the declaration of op that holds at opset (nil for an op nnvis
--- does not declare)
function S.variant(op, opset)
  local variants = S.decl[op]
  if not variants then return nil end
  local pick
  for _, v in ipairs(variants) do if v.since <= opset then pick = v end end
  return pick or variants[1]
end

-- the ONNX name of position k
function S.position_name(p, k) return p.names[k] or p.names[#p.names] end
function S.position_kind(p, k) return p.kinds[k] or p.kinds[#p.kinds] end

------------------------------------------------------------------------------------------------
-- checking a node
------------------------------------------------------------------------------------------------
local function clip(s)
  if #s > 40 then return s:sub(1, 37) .. "..." end
  return s
end

--- S.describe(v): a value as a message names it: "a float tensor (2,3)", "an integer (3)"
function S.describe(v)
  if is_tensor(v) then return "a float tensor (" .. table.concat(v:shape(), ",") .. ")" end
  local t = type(v)
  if t == "table" and v.shape then return "integers (" .. table.concat(v.shape, ",") .. ")" end
  if t == "table" then
    local kind = "values"
    local first = v[1]
    if first == nil then return "an empty list" end
    if math.type(first) == "integer" then kind = "integers"
    elseif type(first) == "number" then kind = "floats"
    elseif type(first) == "string" then kind = "strings" end
    return string.format("a list of %d %s", #v, kind)
  end
  if math.type(v) == "integer" then return "an integer (" .. v .. ")" end
  if t == "number" then return "a float (" .. string.format("%.9g", v) .. ")" end
  if t == "string" then return "a string ('" .. clip(v) .. "')" end
  return "a " .. t
end

local function is_list(v) return type(v) == "table" and v.shape == nil and getmetatable(v) == nil end

-- the entry of an attribute out of its range or its values, or nil
local function out_of_range(a, x)
  if a.entry == "int" and math.type(x) ~= "integer" then return true end
  if a.entry == "float" and type(x) ~= "number" then return true end
  if a.min and not (x >= a.min) then return true end
  if a.max and not (x <= a.max) then return true end
  if a.below and not (x < a.below) then return true end
  return false
end

local function range_text(a)
  local parts = {}
  if a.min then parts[#parts + 1] = ">= " .. a.min end
  if a.max then parts[#parts + 1] = "<= " .. a.max end
  if a.below then parts[#parts + 1] = "< " .. a.below end
  return table.concat(parts, " and ")
end

local TYPE_TEXT = { int = "an integer", float = "a number", string = "a string", ints = "a list of integers",
                    floats = "a list of numbers", tensor = "a tensor" }

-- nil, or what is wrong with attribute `name` = v
local function check_attr(name, a, v)
  local ty = a.type
  if ty == "unsupported" then return string.format("attribute %s is not supported", name) end
  local ok
  if ty == "int" then ok = math.type(v) == "integer"
  elseif ty == "float" then ok = type(v) == "number"
  elseif ty == "string" then ok = type(v) == "string"
  elseif ty == "tensor" then ok = is_tensor(v) or (type(v) == "table" and v.shape ~= nil)
  else
    ok = is_list(v)
    if ok then
      for _, x in ipairs(v) do
        if (ty == "ints" and math.type(x) ~= "integer") or (ty == "floats" and type(x) ~= "number") then
          ok = false
          break
        end
      end
    end
  end
  if not ok then return string.format("attribute %s must be %s, got %s", name, TYPE_TEXT[ty], S.describe(v)) end
  if a.values then
    if not a.values[v] then
      return string.format("attribute %s %s is not supported (nnvis runs %s)", name,
        type(v) == "string" and "'" .. clip(v) .. "'" or tostring(v), table.concat(a.value_list, ", "))
    end
  elseif a.min or a.max or a.below then
    if a.list then
      for i, x in ipairs(v) do
        if out_of_range(a, x) then
          return string.format("attribute %s: entry %d (%s) must be %s", name, i, tostring(x), range_text(a))
        end
      end
    elseif out_of_range(a, v) then
      return string.format("attribute %s must be %s, got %s", name, range_text(a), tostring(v))
    end
  end
end

-- the count of positions used: up to the last non-empty name
local function used(list)
  local n = #list
  while n > 0 and list[n] == "" do n = n - 1 end
  return n
end

--- S.check_node(desc, opset, known) -> variant, attrs | nil, message: the node's arity,
--- input kinds (of the inputs whose values are known at load: known[name] = {kind =
--- "float" | "ints", shape = {...}}) and attributes against its declaration; attrs holds the
--- declared attributes only.  The message names the position or attribute, not the node.
function S.check_node(desc, opset, known)
  local v = S.variant(desc.op_type, opset)
  if not v then return nil, "is not supported" end
  local ins, outs = v.inputs, v.outputs
  local n_in = used(desc.inputs)
  if n_in > ins.max then
    return nil, string.format("has %d inputs, %s takes at most %d (%s)", n_in, desc.op_type, ins.max,
      ins.max == 0 and "none" or table.concat(ins.names, ", "))
  end
  for k = 1, math.max(ins.min, n_in) do
    local name = desc.inputs[k] or ""
    local pname = S.position_name(ins, k)
    if name == "" then
      if k <= #ins.names and not ins.optional[k] or k > #ins.names and ins.variadic then
        return nil, string.format("input %d (%s) is missing", k, pname)
      end
    else
      local kv, kind = known[name], S.position_kind(ins, k)
      if kv and kind == "int" and kv.kind == "float" then
        return nil, string.format("input %d (%s) must be integers, got a float tensor (%s)", k, pname,
          table.concat(kv.shape, ","))
      end
      if kv and kind == "num" then
        local cnt = 1
        for _, d in ipairs(kv.shape) do cnt = cnt * d end
        if cnt ~= 1 then
          return nil, string.format("input %d (%s) must be a single number, got %s (%s)", k, pname,
            kv.kind == "float" and "a float tensor" or "integers", table.concat(kv.shape, ","))
        end
      end
    end
  end
  local n_out = used(desc.outputs)
  if n_out > outs.max then
    return nil, string.format("has %d outputs, %s gives at most %d (%s)", n_out, desc.op_type, outs.max,
      table.concat(outs.names, ", "))
  end
  for k = 1, outs.min do
    if (desc.outputs[k] or "") == "" then
      return nil, string.format("output %d (%s) is missing", k, S.position_name(outs, k))
    end
  end
  local attrs = {}
  for name, a in pairs(v.attrs) do
    local val = desc.attrs[name]
    if val == nil then
      if a.required then return nil, string.format("attribute %s is missing", name) end
    else
      local bad = check_attr(name, a, val)
      if bad then return nil, bad end
      attrs[name] = val
    end
  end
  if v.check then
    local bad = v.check(attrs, desc)
    if bad then return nil, bad end
  end
  return v, attrs
end

return S

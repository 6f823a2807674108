-- nnvis.nn.onnx_ops — ONNX operators written with nnvis's differentiable ops, one function per
-- op_type: ops[op](node, inputs) -> outputs (a list).  `node` carries attrs (ONNX attribute
-- name -> value), opset (the default domain's version), name, and training (the module's
-- mode); `inputs` is a list indexed like the node's inputs (absent optional ones are nil).
--
-- Values are float32 tensors, or "shape values": the integer tensors of ONNX (Shape outputs,
-- int64 constants, indices, axes) kept as Lua integers, ints.new(shape, list), so the shape
-- arithmetic exports write (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) is evaluated
-- in Lua and never makes an nnvis tensor integer.  ONNX axes are 0-based and may be negative;
-- they are turned into nnvis's 1-based dims by dim_of.
--
-- Trust: nv.onnx.load checks each node's arity, input kinds and attributes against its
-- declaration (lua/nnvis/nn/onnx_schema.lua) before anything runs; check_inputs checks the
-- values computed at run time (integers where integers are needed, one number where one
-- is), and every op checks what depends on the values' shapes before it uses them.  Sizes
-- that come from numbers in the file are bounded before anything is allocated: a shape value
-- holds at most ints.MAX integers, a tensor at most nv.config().max_alloc bytes.
-- Spec: https://github.com/onnx/onnx/blob/main/docs/Operators.md (opsets 7 to 18).
local core = require "nnvis.core"
local F = require "nnvis.tensor.functional"
local schema = require "nnvis.nn.onnx_schema"

local is_tensor = require("nnvis.tensor.util").is_tensor

local ops = {}

local function fail(node, fmt, ...)
  error(string.format("onnx model: node %s (%s): " .. fmt, node.name, node.op_type, ...), 0)
end
ops.fail = fail

------------------------------------------------------------------------------------------------
-- shape values: {shape = {...}, [1..n] = integers}, row-major
------------------------------------------------------------------------------------------------
local Ints = { __name = "onnx.ints" }
Ints.__index = Ints
local ints = {}
ops.ints = ints

-- the most integers a shape value holds: real exports hold a handful, and a hostile file must
-- not grow a Lua table of gigabytes
ints.MAX = 1 << 20

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

-- "2,3,4" (whole floats, as sizes computed in floats are, without ".0")
local function shape_text(shape)
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = math.tointeger(d) or d end
  return table.concat(parts, ",")
end

-- the element count of shape, failing (before anything is allocated) when it passes limit;
-- float arithmetic, so no product of file-given sizes can wrap
local function count_upto(node, shape, limit, what)
  local n = 1.0
  for _, d in ipairs(shape) do
    if not (d >= 0) then fail(node, "%s (%s) has a negative size", what, shape_text(shape)) end
    n = n * d
  end
  if n > limit then return nil, n end
  return math.tointeger(n) or n
end

-- numel of a shape value about to be made, or a failure over ints.MAX
local function ints_room(node, shape, what)
  local n, over = count_upto(node, shape, ints.MAX, what or "the integer output")
  if not n then
    fail(node, "%s (%s) would hold %.0f integers, more than the %d a shape value may hold",
      what or "the integer output", shape_text(shape), over, ints.MAX)
  end
  return n
end
ops.ints_room = ints_room

-- a float tensor of this shape fits in nv.config().max_alloc, or a failure naming it
local function tensor_room(node, shape, what)
  local limit = core.config().max_alloc
  local n, over = count_upto(node, shape, limit / 4, what or "the output")
  if not n then
    fail(node, "%s (%s) needs %.0f bytes, more than max_alloc (%d; nv.config{max_alloc = ...})", what or "the output",
      shape_text(shape), over * 4, limit)
  end
  return n
end
ops.tensor_room = tensor_room

function ints.new(shape, list) list.shape = shape; return setmetatable(list, Ints) end
function ints.is(v) return getmetatable(v) == Ints end
function ints.from_desc(v) return ints.new(v.shape, v) end  -- the binding's {shape =, dtype =, ...}
function ints.scalar(i) return ints.new({}, { i }) end
function ints.vector(list)
  local c = {}
  for i, x in ipairs(list) do c[i] = x end
  return ints.new({ #c }, c)
end

-- a Lua list of the numbers in v (a shape value, a tensor, or nil)
local function values(v)
  if v == nil then return nil end
  if ints.is(v) then
    local c = {}
    for i = 1, numel(v.shape) do c[i] = v[i] end
    return c
  end
  if is_tensor(v) then
    local t = v:detach():contiguous():reshape(-1):totable()
    return t
  end
  if type(v) == "table" then return v end
  return { v }
end

-- an integer of the float x (truncated, as ONNX's Cast of floats to int64), or nil when x is
-- not finite or out of int64's range
local function trunc_int(x)
  local i = math.tointeger(x)
  if i then return i end
  if not (x > -2 ^ 63 and x < 2 ^ 63) then return nil end
  return math.tointeger(x < 0 and math.ceil(x) or math.floor(x))
end

-- integers of v (truncated: ONNX's Cast of floats to int64)
local function intlist(v)
  if is_tensor(v) and v:numel() > ints.MAX then
    error(string.format("onnx: a tensor of %d values is too large for integers (at most %d)", v:numel(), ints.MAX), 0)
  end
  local c = values(v)
  if not c then return nil end
  for i, x in ipairs(c) do
    local n = trunc_int(x)
    if not n then error("onnx: " .. tostring(x) .. " is not a 64-bit integer", 0) end
    c[i] = n
  end
  return c
end
ops.intlist = intlist

-- a float tensor of v (a shape value becomes one)
local function tensor_of(v)
  if is_tensor(v) then return v end
  if ints.is(v) then
    local flat = {}
    for i = 1, numel(v.shape) do flat[i] = v[i] + 0.0 end
    if #v.shape == 0 then return core.tensor(flat[1]) end
    if #flat == 0 then return core.zeros(v.shape) end
    return core.tensor(flat):reshape(v.shape)
  end
  if type(v) == "number" then return core.tensor(v) end
  error("onnx: expected a tensor, got " .. type(v), 0)
end
ops.tensor_of = tensor_of

local function shape_of(v) return is_tensor(v) and v:shape() or v.shape end

------------------------------------------------------------------------------------------------
-- run-time checks of a node's values against its declaration (lua/nnvis/nn/onnx_schema.lua)
------------------------------------------------------------------------------------------------
local function input_name(node, k) return node.decl and schema.position_name(node.decl.inputs, k) or "?" end

-- a float tensor where integers are needed (ONNX's int64 inputs fed as nnvis float tensors):
-- the shape value of its whole numbers
local function whole_numbers(node, k, t)
  local shape = t:shape()
  local n = t:numel()
  if n > ints.MAX then
    fail(node, "input %d (%s) must be integers, got a float tensor (%s) of more than %d values", k, input_name(node, k),
      shape_text(shape), ints.MAX)
  end
  local c = t:detach():contiguous():reshape(-1):totable()
  for i = 1, n do
    local x = math.tointeger(c[i])
    if not x then
      fail(node, "input %d (%s) must be integers, got a float tensor (%s) holding %s", k, input_name(node, k),
        shape_text(shape), tostring(c[i]))
    end
    c[i] = x
  end
  return ints.new(shape, c)
end

--- ops.check_inputs(node, inputs): the values a node receives at run time, against its
--- declaration: every required input present, integers (a float tensor of whole numbers is
--- converted in place) and single numbers where the op needs them
function ops.check_inputs(node, inputs)
  local p = node.decl and node.decl.inputs
  if not p then return end
  for _, k in ipairs(p.required) do
    if inputs[k] == nil and k <= #node.inputs then
      fail(node, "input %d (%s) has no value", k, input_name(node, k))
    end
  end
  for _, k in ipairs(p.int_pos) do
    local v = inputs[k]
    if v ~= nil and not ints.is(v) then
      if not is_tensor(v) then fail(node, "input %d (%s) must be integers, got %s", k, input_name(node, k), type(v)) end
      inputs[k] = whole_numbers(node, k, v)
    end
  end
  for _, k in ipairs(p.num_pos) do
    local v = inputs[k]
    if v ~= nil then
      local n = ints.is(v) and numel(v.shape) or is_tensor(v) and v:numel()
      if n ~= 1 then
        fail(node, "input %d (%s) must be a single number, got %s", k, input_name(node, k), schema.describe(v))
      end
    end
  end
end

--- ops.check_outputs(node, outs): every output the declaration does not mark optional was
--- computed (a node reading an optional one that was not finds no value: check_inputs)
function ops.check_outputs(node, outs)
  local p = node.decl and node.decl.outputs
  if not p then return end
  for k, name in ipairs(node.outputs) do
    if name ~= "" and outs[k] == nil and not p.optional[k] then
      fail(node, "output %d (%s) was not computed", k, schema.position_name(p, k))
    end
  end
end

-- 1-based dim of a 0-based ONNX axis (negative counts from the end) in a rank-r value
local function dim_of(node, axis, r)
  local a = axis < 0 and axis + r or axis
  if a < 0 or a >= r then fail(node, "axis %d is out of range for rank %d", axis, r) end
  return a + 1
end

local function strides_of(shape)
  local st, acc = {}, 1
  for d = #shape, 1, -1 do st[d] = acc; acc = acc * shape[d] end
  return st
end

-- numpy broadcasting of shapes
local function broadcast_shapes(node, a, b)
  local out, n = {}, math.max(#a, #b)
  for i = 1, n do
    local x, y = a[#a - n + i] or 1, b[#b - n + i] or 1
    if x ~= y and x ~= 1 and y ~= 1 then
      fail(node, "shapes (%s) and (%s) do not broadcast", shape_text(a), shape_text(b))
    end
    out[i] = x == 1 and y or x
  end
  return out
end

-- f applied elementwise to shape values broadcast together: f(a[i], b[i], ...)
local function int_map(node, list, f)
  local shape = list[1].shape
  for i = 2, #list do shape = broadcast_shapes(node, shape, list[i].shape) end
  local n = ints_room(node, shape)
  local r = #shape
  -- per value, the stride of each output dim (0 where it broadcasts)
  local st = {}
  for j, v in ipairs(list) do
    local own, s = strides_of(v.shape), {}
    for d = 1, r do
      local dv = d - (r - #v.shape)
      s[d] = (dv >= 1 and v.shape[dv] ~= 1) and own[dv] or 0
    end
    st[j] = s
  end
  local out, idx, args = {}, {}, {}
  for lin = 0, n - 1 do
    local rem = lin
    for j = 1, #list do idx[j] = 0 end
    for d = r, 1, -1 do
      local i = rem % shape[d]
      rem = rem // shape[d]
      for j = 1, #list do idx[j] = idx[j] + i * st[j][d] end
    end
    for j, v in ipairs(list) do args[j] = v[idx[j] + 1] end
    out[lin + 1] = f(table.unpack(args, 1, #list))
  end
  return ints.new(shape, out)
end

local function int_binary(node, a, b, f) return int_map(node, { a, b }, f) end

local function all_ints(inputs, n)
  for i = 1, n do if inputs[i] ~= nil and not ints.is(inputs[i]) then return false end end
  return true
end

------------------------------------------------------------------------------------------------
-- elementwise
------------------------------------------------------------------------------------------------
local function trunc_div(x, y)
  if y == 0 then return 0 end
  local q = x // y
  if q < 0 and q * y ~= x then q = q + 1 end   -- C's truncation, as ONNX runtimes do
  return q
end

local binary = {
  Add = { function(a, b) return a + b end, function(x, y) return x + y end },
  Sub = { function(a, b) return a - b end, function(x, y) return x - y end },
  Mul = { function(a, b) return a * b end, function(x, y) return x * y end },
  Div = { function(a, b) return a / b end, trunc_div },
  Pow = { function(a, b)
            if b:numel() == 1 and b:dim() == 0 or (b:numel() == 1 and not b.requires_grad) then
              return a:pow(b:detach():reshape(-1):totable()[1])   -- the cheap scalar power
            end
            return a:pow(b)
          end, function(x, y) return math.tointeger(x ^ y) or 0 end },
  Max = { function(a, b) return a:maximum(b) end, math.max },
  Min = { function(a, b) return a:minimum(b) end, math.min },
}
for op, f in pairs(binary) do
  ops[op] = function(node, inputs)
    if all_ints(inputs, #inputs) then
      local acc = inputs[1]
      for i = 2, #inputs do acc = int_binary(node, acc, inputs[i], f[2]) end
      return { acc }
    end
    local acc = tensor_of(inputs[1])
    for i = 2, #inputs do acc = f[1](acc, tensor_of(inputs[i])) end
    return { acc }
  end
end
ops.Sum = ops.Add
function ops.Mean(node, inputs)
  local s = ops.Add(node, inputs)[1]
  return { tensor_of(s) / #inputs }
end

function ops.Equal(node, inputs)
  if all_ints(inputs, 2) then return { int_binary(node, inputs[1], inputs[2], function(x, y) return x == y and 1 or 0 end) } end
  return { tensor_of(inputs[1]):eq(tensor_of(inputs[2])) }
end

function ops.Where(node, inputs)
  local c, a, b = inputs[1], inputs[2], inputs[3]
  if all_ints(inputs, 3) then
    return { int_map(node, { c, a, b }, function(k, x, y) if k ~= 0 then return x end return y end) }
  end
  return { core.where(tensor_of(c):ne(0), tensor_of(a), tensor_of(b)) }
end

-- erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7), from differentiable ops
local function erf(x)
  local ax = x:abs()
  local t = (ax * 0.3275911 + 1):reciprocal()
  local poly = ((((t * 1.061405429 - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
  return x:sign() * (1 - poly * (-(ax * ax)):exp())
end
ops.erf = erf

local function unary(f) return function(node, inputs) return { f(tensor_of(inputs[1]), node.attrs, node) } end end
ops.Sqrt = unary(function(x) return x:sqrt() end)
ops.Exp = unary(function(x) return x:exp() end)
ops.Log = unary(function(x) return x:log() end)
ops.Abs = unary(function(x) return x:abs() end)
ops.Neg = unary(function(x) return -x end)
ops.Reciprocal = unary(function(x) return x:reciprocal() end)
ops.Floor = unary(function(x) return x:floor() end)
ops.Ceil = unary(function(x) return x:ceil() end)
ops.Sin = unary(function(x) return x:sin() end)
ops.Cos = unary(function(x) return x:cos() end)
ops.Erf = unary(erf)
ops.Relu = unary(function(x) return x:relu() end)
ops.Sigmoid = unary(function(x) return x:sigmoid() end)
ops.Tanh = unary(function(x) return x:tanh() end)
ops.Softplus = unary(function(x) return x:softplus() end)
ops.LeakyRelu = unary(function(x, a) return x:leaky_relu(a.alpha or 0.01) end)
ops.Elu = unary(function(x, a) return x:elu(a.alpha or 1) end)
-- Selu: gamma * (x > 0 ? x : alpha (e^x - 1)) = gamma * elu(x, alpha)
ops.Selu = unary(function(x, a) return x:elu(a.alpha or 1.67326319217681884765625) * (a.gamma or 1.05070102214813232421875) end)
ops.HardSigmoid = unary(function(x, a) return (x * (a.alpha or 0.2) + (a.beta or 0.5)):clamp(0, 1) end)
ops.HardSwish = unary(function(x) return x * (x / 6 + 0.5):clamp(0, 1) end)
-- Gelu (opset 20): x/2 (1 + erf(x / sqrt 2)), or the tanh form
ops.Gelu = unary(function(x, a)
  if a.approximate == "tanh" then
    return x * 0.5 * ((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)):tanh() + x * 0.5
  end
  return x * 0.5 * (erf(x / math.sqrt(2)) + 1)
end)

-- PRelu: x for x > 0, slope * x otherwise (slope broadcast to x)
function ops.PRelu(node, inputs)
  local x, slope = tensor_of(inputs[1]), tensor_of(inputs[2])
  local pos = x:relu()
  return { pos + (x - pos) * slope }
end

-- the integer bound of shape values nearest a float one: the least integer >= x (up) or the
-- greatest <= x; nil for no bound (NaN)
local function int_bound(x, up)
  if x == nil or x ~= x then return nil end
  if x >= 2 ^ 63 then return math.maxinteger end
  if x <= -2 ^ 63 then return math.mininteger end
  return math.tointeger(up and math.ceil(x) or math.floor(x))
end

-- Clip: bounds as attributes (opset < 11) or as optional inputs
function ops.Clip(node, inputs)
  local lo, hi
  if node.opset < 11 then
    lo, hi = node.attrs.min, node.attrs.max
  else
    lo = inputs[2] and values(inputs[2])[1]
    hi = inputs[3] and values(inputs[3])[1]
  end
  if ints.is(inputs[1]) then
    local v = inputs[1]
    local ilo, ihi = int_bound(lo, true), int_bound(hi, false)   -- shape values stay integers
    local out = {}
    for i = 1, numel(v.shape) do
      local e = v[i]
      if ilo and e < ilo then e = ilo end
      if ihi and e > ihi then e = ihi end
      out[i] = e
    end
    return { ints.new(v.shape, out) }
  end
  return { tensor_of(inputs[1]):clamp(lo or -math.huge, hi or math.huge) }
end

------------------------------------------------------------------------------------------------
-- softmax and reductions
------------------------------------------------------------------------------------------------
-- opset < 13: the input is seen as 2-d (prod of dims before axis, prod after), softmax over
-- the second; opset >= 13: over one axis (default -1)
local function softmax_like(f)
  return function(node, inputs)
    local x = tensor_of(inputs[1])
    local r = x:dim()
    if node.opset < 13 then
      local d = dim_of(node, node.attrs.axis or 1, math.max(r, 1))
      local s, outer = x:shape(), 1
      for i = 1, d - 1 do outer = outer * s[i] end
      return { f(x:reshape(outer, -1), 2):reshape(s) }
    end
    return { f(x, dim_of(node, node.attrs.axis or -1, r)) }
  end
end
ops.Softmax = softmax_like(core.softmax)
ops.LogSoftmax = softmax_like(core.log_softmax)

-- the reduced axes: attribute, or (ReduceSum from 13, the others from 18) an input
local function reduce_axes(node, inputs, r)
  local axes = node.attrs.axes
  if inputs[2] ~= nil then axes = intlist(inputs[2]) end
  if axes == nil or #axes == 0 then
    if node.attrs.noop_with_empty_axes == 1 then return {} end
    axes = {}
    for i = 0, r - 1 do axes[#axes + 1] = i end
  end
  local dims, seen = {}, {}
  for i, a in ipairs(axes) do
    local d = dim_of(node, a, r)
    if seen[d] then fail(node, "axes (%s) name axis %d twice", shape_text(axes), d - 1) end
    seen[d], dims[i] = true, d
  end
  table.sort(dims, function(p, q) return p > q end)
  return dims
end

local function reduction(f)
  return function(node, inputs)
    local x = tensor_of(inputs[1])
    local dims = reduce_axes(node, inputs, x:dim())
    for _, d in ipairs(dims) do x = f(x, d) end
    if node.attrs.keepdims == 0 then
      for _, d in ipairs(dims) do x = x:squeeze(d) end
    end
    return { x }
  end
end
ops.ReduceMean = reduction(function(x, d) return x:mean(d, true) end)
ops.ReduceSum = reduction(function(x, d) return x:sum(d, true) end)
ops.ReduceMax = reduction(function(x, d) return (x:max(d, true)) end)
ops.ReduceMin = reduction(function(x, d) return (x:min(d, true)) end)
ops.ReduceSumSquare = reduction(function(x, d) return x:sum(d, true) end)
local sum_square = ops.ReduceSumSquare
ops.ReduceSumSquare = function(node, inputs) return sum_square(node, { tensor_of(inputs[1]):square(), inputs[2] }) end
ops.ReduceL2 = function(node, inputs) return { sum_square(node, { tensor_of(inputs[1]):square(), inputs[2] })[1]:sqrt() } end

------------------------------------------------------------------------------------------------
-- linear algebra
------------------------------------------------------------------------------------------------
-- Gemm: alpha op(A) op(B) + beta C
function ops.Gemm(node, inputs)
  local a, b, c = tensor_of(inputs[1]), tensor_of(inputs[2]), inputs[3]
  local at = node.attrs
  if a:dim() ~= 2 or b:dim() ~= 2 then
    fail(node, "A (%s) and B (%s) must be matrices", shape_text(a:shape()), shape_text(b:shape()))
  end
  if at.transA == 1 then a = a:t() end
  if at.transB == 1 then b = b:t() end
  local y = core.matmul(a, b)
  if (at.alpha or 1) ~= 1 then y = y * at.alpha end
  if c ~= nil then
    c = tensor_of(c)
    if (at.beta or 1) ~= 1 then c = c * at.beta end
    y = y + c
  end
  return { y }
end

function ops.MatMul(node, inputs) return { core.matmul(tensor_of(inputs[1]), tensor_of(inputs[2])) } end

------------------------------------------------------------------------------------------------
-- convolution and pooling
------------------------------------------------------------------------------------------------
-- explicit begin/end padding per spatial axis from pads or auto_pad
local function spatial_pads(node, in_sizes, kernel, strides, dilations)
  local at, n = node.attrs, #in_sizes
  local pb, pe = {}, {}
  local auto = at.auto_pad or "NOTSET"
  for i = 1, n do
    if auto == "SAME_UPPER" or auto == "SAME_LOWER" then
      local out = -(-in_sizes[i] // strides[i])   -- ceil
      local total = math.max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_sizes[i], 0)
      local small = total // 2
      if auto == "SAME_UPPER" then pb[i], pe[i] = small, total - small else pb[i], pe[i] = total - small, small end
    elseif auto == "VALID" then
      pb[i], pe[i] = 0, 0
    else
      local p = at.pads or {}
      pb[i], pe[i] = p[i] or 0, p[i + n] or 0
    end
  end
  return pb, pe
end

local function rep(v, n, def)
  local out = {}
  for i = 1, n do out[i] = v and v[i] or def end
  return out
end

-- (N,C,L) convolutions and pools run as (N,C,1,L)
local function as_2d(node, x, what)
  if x:dim() == 4 then return x, false end
  if x:dim() == 3 then return x:unsqueeze(3), true end
  fail(node, "%s supports 1-d and 2-d inputs, got (%s)", what, table.concat(x:shape(), ","))
end

-- the weight of a convolution of x, lifted like x
local function weight_2d(node, w, x, one)
  if w:dim() ~= (one and 3 or 4) then
    fail(node, "weight (%s) does not match the input (%s)", shape_text(w:shape()),
      shape_text(one and x:squeeze(3):shape() or x:shape()))
  end
  if one then return w:unsqueeze(3) end
  return w
end

-- the (N,C,H,W) shape of x padded by begin/end pads pb, pe (H, W), in floats (cannot wrap)
local function padded_shape(x, pb, pe)
  return { x:size(1), x:size(2), x:size(3) + (pb[1] + 0.0) + pe[1], x:size(4) + (pb[2] + 0.0) + pe[2] }
end

local function lift(v, one, def) if one then return { def, v[1] } end return v end

-- pads of nnvis's ops are symmetric: unequal ones go through nv.pad first
local function pad_input(x, pb, pe, value)
  if pb[1] == pe[1] and pb[2] == pe[2] then return x, { pb[1], pb[2] } end
  return F.pad(x, { pb[2], pe[2], pb[1], pe[1] }, { value = value }), { 0, 0 }
end

-- strides, dilations and begin/end pads of a 2-d window of kernel k over x (N,C,H,W);
-- one: x was (N,C,L), lifted to (N,C,1,L), and the attributes have one entry
local function window(node, x, one, k)
  local at = node.attrs
  local n = one and 1 or 2
  local strides = lift(rep(at.strides, n, 1), one, 1)
  local dil = lift(rep(at.dilations, n, 1), one, 1)
  local sizes = { x:size(3), x:size(4) }
  if one then
    local b1, e1 = spatial_pads(node, { sizes[2] }, { k[2] }, { strides[2] }, { dil[2] })
    return strides, dil, { 0, b1[1] }, { 0, e1[1] }, sizes
  end
  local pb, pe = spatial_pads(node, sizes, k, strides, dil)
  return strides, dil, pb, pe, sizes
end

-- 3-d convolutions and pools (video, volumes): nnvis.ops3d, with ONNX's pads (begin == end per
-- axis) or auto_pad
local function pads_3d(node, x, k, strides, dil)
  local sizes = { x:size(3), x:size(4), x:size(5) }
  local pb, pe = spatial_pads(node, sizes, k, strides, dil)
  for i = 1, 3 do
    if pb[i] ~= pe[i] then fail(node, "3-d inputs need equal padding at both ends of each axis, got pads %d and %d", pb[i], pe[i]) end
  end
  return pb
end

-- a 3-d (transposed) convolution node's input, weight, bias, attributes, strides and dilations
local function conv3d_args(node, inputs)
  local x, w = tensor_of(inputs[1]), tensor_of(inputs[2])
  if w:dim() ~= 5 then fail(node, "a 3-d input needs a 5-d weight, got (%s)", table.concat(w:shape(), ",")) end
  local at = node.attrs
  return x, w, inputs[3] and tensor_of(inputs[3]) or nil, at, rep(at.strides, 3, 1), rep(at.dilations, 3, 1)
end

local function conv3d_node(node, inputs)
  local x, w, b, at, strides, dil = conv3d_args(node, inputs)
  local pads = pads_3d(node, x, { w:size(3), w:size(4), w:size(5) }, strides, dil)
  return { require("nnvis.tensor.ops3d").conv3d(x, w, b, { stride = strides, padding = pads, dilation = dil, groups = at.group or 1 }) }
end

function ops.Conv(node, inputs)
  if is_tensor(inputs[1]) and inputs[1]:dim() == 5 then return conv3d_node(node, inputs) end
  local x, one = as_2d(node, tensor_of(inputs[1]), "Conv")
  local w = weight_2d(node, tensor_of(inputs[2]), x, one)
  local at = node.attrs
  local strides, dil, pb, pe = window(node, x, one, { w:size(3), w:size(4) })
  tensor_room(node, padded_shape(x, pb, pe), "the padded input")
  local padding
  x, padding = pad_input(x, pb, pe, 0)
  local b = inputs[3] and tensor_of(inputs[3]) or nil
  local y = core.conv2d(x, w, b, { stride = strides, padding = padding, dilation = dil, groups = at.group or 1 })
  if one then y = y:squeeze(3) end
  return { y }
end

-- zeros between the elements of dim d: (.., n, ..) -> (.., (n-1) s + 1, ..)
local function dilate(x, d, s)
  if s == 1 then return x end
  local shape = x:shape()
  local n = shape[d]
  local v = {}
  for i = 1, #shape do v[#v + 1] = shape[i]; if i == d then v[#v + 1] = 1 end end
  local zs = {}
  for i = 1, #v do zs[i] = v[i] end
  zs[d + 1] = s - 1
  local y = core.cat({ x:reshape(v), core.zeros(zs) }, d + 1)
  local out = {}
  for i = 1, #shape do out[i] = shape[i] end
  out[d] = n * s
  return y:reshape(out):narrow(d, 1, (n - 1) * s + 1)
end

-- ConvTranspose as a convolution: zeros inserted between the inputs (stride), padded by
-- dilation (k-1) - pad, convolved with the kernel flipped and its in/out channels swapped
-- 3-d (video, volumes): nnvis.ops3d.conv_transpose3d, with pads equal at both ends of an axis
-- (given, or computed from output_shape / auto_pad when they split evenly)
local function conv_transpose3d_node(node, inputs)
  local x, w, b, at, strides, dil = conv3d_args(node, inputs)
  local outpad = rep(at.output_padding, 3, 0)
  local p = at.pads or {}
  local pb, pe = {}, {}
  for i = 1, 3 do pb[i], pe[i] = p[i] or 0, p[i + 3] or 0 end
  if at.output_shape or (at.auto_pad and at.auto_pad ~= "NOTSET") then
    local os = at.output_shape
    if os and #os == 5 then os = { os[3], os[4], os[5] } end
    if os and #os ~= 3 then fail(node, "output_shape (%s) does not fit a 3-d input", shape_text(at.output_shape)) end
    for i = 1, 3 do
      local want = os and os[i] or x:size(i + 2) * strides[i]
      local total = strides[i] * (x:size(i + 2) - 1) + outpad[i] + (w:size(i + 2) - 1) * dil[i] + 1 - want
      if at.auto_pad == "SAME_UPPER" then pb[i] = total // 2; pe[i] = total - pb[i]
      else pe[i] = total // 2; pb[i] = total - pe[i] end
    end
  end
  for i = 1, 3 do
    if pb[i] ~= pe[i] or pb[i] < 0 then
      fail(node, "3-d inputs need equal padding at both ends of each axis, got pads %d and %d", pb[i], pe[i])
    end
  end
  return { require("nnvis.tensor.ops3d").conv_transpose3d(x, w, b, { stride = strides, padding = pb, output_padding = outpad,
    dilation = dil, groups = at.group or 1 }) }
end

function ops.ConvTranspose(node, inputs)
  if is_tensor(inputs[1]) and inputs[1]:dim() == 5 then return conv_transpose3d_node(node, inputs) end
  local x, one = as_2d(node, tensor_of(inputs[1]), "ConvTranspose")
  local w = weight_2d(node, tensor_of(inputs[2]), x, one)
  local at = node.attrs
  local g = at.group or 1
  local cin, cout_g, kh, kw = table.unpack(w:shape())
  if x:size(2) ~= cin or cin % g ~= 0 then
    fail(node, "weight (%s) in %d group%s does not take the input's %d channels", shape_text(w:shape()), g,
      g == 1 and "" or "s", x:size(2))
  end
  local strides = lift(rep(at.strides, 2, 1), one, 1)
  local dil = lift(rep(at.dilations, 2, 1), one, 1)
  local outpad = lift(rep(at.output_padding, 2, 0), one, 0)
  local k = { kh, kw }
  local n = one and 1 or 2
  local p = at.pads or {}
  local pb, pe = {}, {}
  for i = 1, 2 do
    local j = one and 1 or i
    pb[i] = (one and i == 1) and 0 or (p[j] or 0)
    pe[i] = (one and i == 1) and 0 or (p[j + n] or 0)
  end
  if at.output_shape or (at.auto_pad and at.auto_pad ~= "NOTSET") then
    local sizes = { x:size(3), x:size(4) }
    local os = at.output_shape
    if os and #os == n + 2 then os = { table.unpack(os, 3) } end   -- the whole (N,C,...) shape
    if os and #os ~= n then
      fail(node, "output_shape (%s) does not fit a %d-d input", shape_text(at.output_shape), n)
    end
    local want = os and lift(os, one, 1) or { sizes[1] * strides[1], sizes[2] * strides[2] }
    for i = 1, 2 do
      -- a negative total pads the end: the output_shape asks for more than the kernel covers
      local total = strides[i] * (sizes[i] - 1) + outpad[i] + (k[i] - 1) * dil[i] + 1 - want[i]
      if at.auto_pad == "SAME_UPPER" then pb[i] = total // 2; pe[i] = total - pb[i]
      else pe[i] = total // 2; pb[i] = total - pe[i] end
    end
  end
  local lo, hi, stretched, padded = {}, {}, {}, {}
  for i = 1, 2 do
    -- in floats until checked: file-given sizes cannot wrap
    local span = dil[i] * (k[i] - 1.0)
    local flo, fhi = span - pb[i], span - pe[i] + outpad[i]
    stretched[i] = (x:size(i + 2) - 1.0) * strides[i] + 1
    padded[i] = stretched[i] + math.max(flo, 0) + math.max(fhi, 0)
    -- the convolution's input: stretched, then padded (or cropped) by lo, hi
    if stretched[i] + flo + fhi < span + 1 or stretched[i] + flo < 1 or stretched[i] + fhi < 1 then
      fail(node, "pads (%s) leave no output for the input (%s)", shape_text({ pb[1], pb[2], pe[1], pe[2] }),
        shape_text(x:shape()))
    end
    lo[i], hi[i] = flo, fhi
  end
  tensor_room(node, { x:size(1), x:size(2), stretched[1], stretched[2] }, "the strided input")
  tensor_room(node, { x:size(1), x:size(2), padded[1], padded[2] }, "the padded input")
  for i = 1, 2 do lo[i], hi[i] = math.tointeger(lo[i]), math.tointeger(hi[i]) end
  local y = dilate(dilate(x, 3, strides[1]), 4, strides[2])
  -- negative padding crops
  for i = 1, 2 do
    if lo[i] < 0 then y = y:narrow(i + 2, 1 - lo[i], y:size(i + 2) + lo[i]); lo[i] = 0 end
    if hi[i] < 0 then y = y:narrow(i + 2, 1, y:size(i + 2) + hi[i]); hi[i] = 0 end
  end
  if lo[1] + lo[2] + hi[1] + hi[2] > 0 then y = F.pad(y, { lo[2], hi[2], lo[1], hi[1] }) end
  local flip_h, flip_w = {}, {}
  for i = 1, kh do flip_h[i] = kh + 1 - i end
  for i = 1, kw do flip_w[i] = kw + 1 - i end
  local wt = w:reshape(g, cin // g, cout_g, kh, kw):transpose(2, 3):reshape(g * cout_g, cin // g, kh, kw)
  wt = wt:index_select(3, flip_h):index_select(4, flip_w)
  local b = inputs[3] and tensor_of(inputs[3]) or nil
  local out = core.conv2d(y, wt, b, { stride = 1, padding = 0, dilation = dil, groups = g })
  if one then out = out:squeeze(3) end
  return { out }
end

local function pool(kind)
  return function(node, inputs)
    if #node.outputs > 1 and node.outputs[2] ~= "" then fail(node, "the Indices output of MaxPool is not supported") end
    if is_tensor(inputs[1]) and inputs[1]:dim() == 5 then
      local x, at = inputs[1], node.attrs
      local k, strides = at.kernel_shape, rep(at.strides, 3, 1)
      if at.ceil_mode == 1 then fail(node, "ceil_mode on 3-d inputs is not supported") end
      local dil = rep(at.dilations, 3, 1)
      for i = 1, 3 do if dil[i] ~= 1 then fail(node, "dilations on 3-d pools are not supported") end end
      local pads = pads_3d(node, x, k, strides, dil)
      local O3 = require "nnvis.tensor.ops3d"
      if kind == "MaxPool" then return { O3.max_pool3d(x, k, { stride = strides, padding = pads }) } end
      return { O3.avg_pool3d(x, k, { stride = strides, padding = pads, count_include_pad = at.count_include_pad == 1 }) }
    end
    local x, one = as_2d(node, tensor_of(inputs[1]), kind)
    local at = node.attrs
    if #at.kernel_shape ~= (one and 1 or 2) then
      fail(node, "kernel_shape (%s) does not fit the input (%s)", shape_text(at.kernel_shape),
        shape_text(tensor_of(inputs[1]):shape()))
    end
    local k = lift(at.kernel_shape, one, 1)
    local strides, dil, pb, pe, sizes = window(node, x, one, k)
    tensor_room(node, padded_shape(x, pb, pe), "the padded input")
    local ceil = at.ceil_mode == 1
    -- nnvis's pools, like PyTorch's, take symmetric pads of at most half the kernel
    local direct = pb[1] == pe[1] and pb[2] == pe[2] and pb[1] * 2 <= k[1] and pb[2] * 2 <= k[2]
    local y
    if kind == "MaxPool" then
      local padding = { pb[1], pb[2] }
      if not direct then x = F.pad(x, { pb[2], pe[2], pb[1], pe[1] }, { value = -math.huge }); padding = { 0, 0 } end
      y = core.max_pool2d(x, k, { stride = strides, padding = padding, dilation = dil, ceil_mode = ceil })
    else
      local include = at.count_include_pad == 1
      if direct then
        y = core.avg_pool2d(x, k, { stride = strides, padding = { pb[1], pb[2] }, ceil_mode = ceil,
                                    count_include_pad = include })
      else
        local padded = F.pad(x, { pb[2], pe[2], pb[1], pe[1] })
        local opts = { stride = strides, padding = 0, ceil_mode = ceil }
        y = core.avg_pool2d(padded, k, opts)
        if not include then
          -- average over the real elements only: divide by the share of them in each window
          local ones = F.pad(core.ones(1, 1, sizes[1], sizes[2]), { pb[2], pe[2], pb[1], pe[1] })
          y = y / core.avg_pool2d(ones, k, opts)
        end
      end
    end
    if one then y = y:squeeze(3) end
    return { y }
  end
end
ops.MaxPool = pool("MaxPool")
ops.AveragePool = pool("AveragePool")

local function global_pool(max)
  return function(node, inputs)
    local x = tensor_of(inputs[1])
    local s = x:shape()
    if #s < 3 then fail(node, "the input (%s) must be (N,C,...)", shape_text(s)) end
    local flat = x:reshape(s[1], s[2], -1)
    local y = max and (flat:max(3, true)) or flat:mean(3, true)
    local out = { s[1], s[2] }
    for i = 3, #s do out[i] = 1 end
    return { y:reshape(out) }
  end
end
ops.GlobalAveragePool = global_pool(false)
ops.GlobalMaxPool = global_pool(true)

------------------------------------------------------------------------------------------------
-- normalization
------------------------------------------------------------------------------------------------
-- BatchNormalization: running statistics in eval; batch statistics when the node says
-- training_mode = 1 (opset 14) or the module is in training.  ONNX's outputs 2 and 3 are then
-- the moved statistics, input_mean m + mean (1 - m) and input_var m + var (1 - m), var the
-- biased batch variance; in training the module's buffers move too, as PyTorch's (by 1 - m,
-- with the unbiased variance), while training_mode alone leaves them as they are.
function ops.BatchNormalization(node, inputs)
  local x = tensor_of(inputs[1])
  local at = node.attrs
  local mean, var = tensor_of(inputs[4]), tensor_of(inputs[5])
  if x:dim() < 2 then fail(node, "inputs of rank %d are not supported", x:dim()) end
  local shape5
  if x:dim() > 4 then   -- video, volumes: per channel over (N, D*H*W...), as (N, C, D, rest)
    shape5 = x:shape()
    x = x:reshape(shape5[1], shape5[2], shape5[3], -1)
  end
  local c = x:size(2)
  for k = 2, 5 do
    local v = tensor_of(inputs[k])
    if v:numel() ~= c then
      fail(node, "input %d (%s) holds %d values, the input (%s) has %d channels", k, input_name(node, k), v:numel(),
        shape_text(x:shape()), c)
    end
  end
  local m, eps = at.momentum or 0.9, at.epsilon or 1e-5
  local batch = node.training or at.training_mode == 1
  if not batch then
    local y = core.batch_norm(x, mean, var, tensor_of(inputs[2]), tensor_of(inputs[3]), { eps = eps })
    return { shape5 and y:reshape(shape5) or y, mean, var }
  end
  -- the moved statistics, before batch_norm moves the buffers in place
  local per_c = x:transpose(1, 2):contiguous():reshape(c, -1):detach()
  local bmean = per_c:mean(2)
  local bvar = (per_c - bmean:reshape(c, 1)):square():mean(2)
  local new_mean = mean:reshape(c) * m + bmean * (1 - m)
  local new_var = var:reshape(c) * m + bvar * (1 - m)
  local rm, rv = mean, var
  if not node.training then rm, rv = mean:clone(), var:clone() end
  local y = core.batch_norm(x, rm, rv, tensor_of(inputs[2]), tensor_of(inputs[3]),
    { training = true, momentum = 1 - m, eps = eps })
  if shape5 then y = y:reshape(shape5) end
  return { y, new_mean:reshape(mean:shape()), new_var:reshape(var:shape()) }
end

-- normalizes (N, C, rest) over rest, per sample and channel
local function normalize_last(x, eps)
  local m = x:mean(-1, true)
  local c = x - m
  return c / ((c * c):mean(-1, true) + eps):sqrt()
end

function ops.InstanceNormalization(node, inputs)
  local x = tensor_of(inputs[1])
  local s = x:shape()
  if #s < 2 then fail(node, "the input (%s) must be (N,C,...)", shape_text(s)) end
  local c = s[2]
  local scale, bias = tensor_of(inputs[2]), tensor_of(inputs[3])
  if scale:numel() ~= c or bias:numel() ~= c then
    fail(node, "scale (%s) and B (%s) must hold one value per channel of the input (%s)", shape_text(scale:shape()),
      shape_text(bias:shape()), shape_text(s))
  end
  local y = normalize_last(x:reshape(s[1], c, -1), node.attrs.epsilon or 1e-5)
  y = y * scale:reshape(1, c, 1) + bias:reshape(1, c, 1)
  return { y:reshape(s) }
end

-- LayerNormalization (opset 17): over the dims from axis (default -1) to the end
function ops.LayerNormalization(node, inputs)
  local x = tensor_of(inputs[1])
  local s = x:shape()
  local d = dim_of(node, node.attrs.axis or -1, #s)
  local outer = 1
  for i = 1, d - 1 do outer = outer * s[i] end
  local flat = x:reshape(outer, -1)
  local eps = node.attrs.epsilon or 1e-5
  local y = normalize_last(flat, eps):reshape(s)
  y = y * tensor_of(inputs[2])
  if inputs[3] ~= nil then y = y + tensor_of(inputs[3]) end
  if #node.outputs == 1 then return { y } end
  -- the optional Mean and InvStdDev outputs, of the input's shape with 1 from axis on
  local ms = {}
  for i = 1, #s do ms[i] = i < d and s[i] or 1 end
  local mean = flat:mean(-1, true)
  local inv = ((flat - mean):square():mean(-1, true) + eps):rsqrt()
  return { y, mean:reshape(ms), inv:reshape(ms) }
end

-- LRN (Krizhevsky et al. 2012): x / (bias + alpha/size * sum over a window of channels of x^2)^beta
function ops.LRN(node, inputs)
  local x = tensor_of(inputs[1])
  local at = node.attrs
  local size = at.size
  local s = x:shape()
  if #s < 2 then fail(node, "the input (%s) must be (N,C,...)", shape_text(s)) end
  tensor_room(node, { s[1], 1, s[2] + (size - 1.0), x:numel() // math.max(s[1] * s[2], 1) }, "the padded square")
  local sq = x:square():reshape(s[1], 1, s[2], -1)
  local before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
  local sum = core.avg_pool2d(F.pad(sq, { 0, 0, before, after }), { size, 1 }, { stride = 1 }) * size
  local denom = (sum:reshape(s) * ((at.alpha or 1e-4) / size) + (at.bias or 1)):pow(at.beta or 0.75)
  return { x / denom }
end

-- Reshape, Slice, Gather, Concat, Pad and the other data-moving ops: lua/nnvis/nn/onnx_ops_shape.lua
require("nnvis.nn.onnx_ops_shape")(ops, { all_ints = all_ints, broadcast_shapes = broadcast_shapes, dim_of = dim_of, fail = fail, int_binary = int_binary, intlist = intlist, ints = ints, ints_room = ints_room, numel = numel, shape_of = shape_of, shape_text = shape_text, strides_of = strides_of, tensor_of = tensor_of, tensor_room = tensor_room, trunc_int = trunc_int, values = values })

-- Mod, CumSum, Einsum, Resize and Upsample live in lua/nnvis/nn/onnx_ops_more.lua, on these helpers
require("nnvis.nn.onnx_ops_more")(ops, {
  fail = fail, ints = ints, numel = numel, shape_text = shape_text, tensor_room = tensor_room, ints_room = ints_room,
  values = values, intlist = intlist, tensor_of = tensor_of, shape_of = shape_of, dim_of = dim_of,
  int_map = int_map, all_ints = all_ints, input_name = input_name, broadcast_shapes = broadcast_shapes,
})

------------------------------------------------------------------------------------------------
-- which inputs are settings rather than data: float initializers there stay constants and
-- do not become parameters.  BatchNormalization's statistics are buffers.
------------------------------------------------------------------------------------------------
ops.static_inputs = {
  Resize = { [2] = true, [3] = true, [4] = true }, Upsample = { [2] = true },
  Clip = { [2] = true, [3] = true }, Pad = { [2] = true, [3] = true, [4] = true },
  Dropout = { [2] = true, [3] = true }, Reshape = { [2] = true }, Expand = { [2] = true },
  Slice = { [2] = true, [3] = true, [4] = true, [5] = true }, Split = { [2] = true },
  Squeeze = { [2] = true }, Unsqueeze = { [2] = true }, ConstantOfShape = { [1] = true },
  ReduceMean = { [2] = true }, ReduceSum = { [2] = true }, ReduceMax = { [2] = true }, ReduceMin = { [2] = true },
  Pow = { [2] = true }, CumSum = { [2] = true },
}
ops.buffer_inputs = { BatchNormalization = { [4] = true, [5] = true } }

-- names of a node's parameter inputs in its module (for nv.summary's per-layer counts)
ops.input_roles = {
  Conv = { [2] = "weight", [3] = "bias" }, ConvTranspose = { [2] = "weight", [3] = "bias" },
  Gemm = { [2] = "weight", [3] = "bias" }, MatMul = { [2] = "weight" },
  BatchNormalization = { [2] = "weight", [3] = "bias", [4] = "running_mean", [5] = "running_var" },
  InstanceNormalization = { [2] = "weight", [3] = "bias" }, LayerNormalization = { [2] = "weight", [3] = "bias" },
  PRelu = { [2] = "weight" },
}

return ops

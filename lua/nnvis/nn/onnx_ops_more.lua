-- nnvis.nn.onnx_ops_more — more ONNX operators for nnvis.onnx_ops, loaded by it:
-- require("nnvis.nn.onnx_ops_more")(ops, helpers) adds Mod, CumSum, Einsum, Resize and Upsample
-- to the ops table.  The conventions are onnx_ops.lua's: ops[op](node, inputs) -> outputs,
-- values are float tensors or shape values (ints), ONNX axes are 0-based, nnvis dims 1-based.
-- Tensors are computed with nnvis's differentiable ops only (index_select, cat, matmul, sums,
-- broadcasting), so gradients flow through every op here; the per-element Lua loops below
-- run over shape values or over one axis' index lists, never over a tensor's elements.
-- Spec: https://github.com/onnx/onnx/blob/main/docs/Operators.md; the reference
-- implementation (onnx/reference/ops/op_resize.py) where the text leaves Resize open.
local core = require "nnvis.core"
local is_tensor = require("nnvis.tensor.util").is_tensor

return function(ops, h)
  local fail, ints, numel, shape_text = h.fail, h.ints, h.numel, h.shape_text
  local tensor_room, ints_room, values, intlist = h.tensor_room, h.ints_room, h.values, h.intlist
  local tensor_of, shape_of, dim_of, int_map, all_ints = h.tensor_of, h.shape_of, h.dim_of, h.int_map, h.all_ints
  local input_name = h.input_name

  ----------------------------------------------------------------------------------------------
  -- Mod: fmod = 0, the sign of the divisor (Python's %); fmod = 1, the sign of the dividend
  -- (C's fmod).  a mod b = a - b q, q = floor(a / b) or trunc(a / b); q is piecewise constant,
  -- so da = dy and db = -q dy.
  ----------------------------------------------------------------------------------------------
  function ops.Mod(node, inputs)
    local c_style = node.attrs.fmod == 1
    if all_ints(inputs, 2) then
      return { int_map(node, { inputs[1], inputs[2] }, function(x, y)
        if y == 0 then fail(node, "integer Mod by zero") end
        if c_style then return math.fmod(x, y) end
        return x % y   -- Lua's integer % is floored, as Python's
      end) }
    end
    local a, b = tensor_of(inputs[1]), tensor_of(inputs[2])
    local q = a / b
    if c_style then q = q:sign() * q:abs():floor() else q = q:floor() end
    return { a - b * q }
  end

  ----------------------------------------------------------------------------------------------
  -- CumSum along one axis, optionally exclusive (the element itself left out) and reversed
  -- (summed from the end).  Tensors: a Hillis-Steele scan, log2(n) shifted adds (Hillis and
  -- Steele 1986), each one cat and one add, so the gradient is the scan's reverse.
  ----------------------------------------------------------------------------------------------
  -- x shifted by s along dim d, zeros entering: forward moves x[i] to i + s, reverse to i - s
  local function shifted(x, d, s, reverse)
    local n = x:size(d)
    local zs = x:shape()
    zs[d] = s
    if reverse then return core.cat({ x:narrow(d, s + 1, n - s), core.zeros(zs) }, d) end
    return core.cat({ core.zeros(zs), x:narrow(d, 1, n - s) }, d)
  end

  local function cumsum_ints(v, d, exclusive, reverse)
    local s = v.shape
    local n, inner = s[d], 1
    for i = d + 1, #s do inner = inner * s[i] end
    local out = {}
    local blocks = numel(s) // math.max(n * inner, 1)
    for b = 0, blocks - 1 do
      for k = 1, inner do
        local acc = 0
        local first, last, step = 0, n - 1, 1
        if reverse then first, last, step = n - 1, 0, -1 end
        for i = first, last, step do
          local at = b * n * inner + i * inner + k
          if exclusive then out[at] = acc; acc = acc + v[at]
          else acc = acc + v[at]; out[at] = acc end
        end
      end
    end
    return ints.new(s, out)
  end

  function ops.CumSum(node, inputs)
    local x, axis = inputs[1], intlist(inputs[2])
    if #axis ~= 1 then fail(node, "input 2 (axis) must hold one integer, holds %d", #axis) end
    local s = shape_of(x)
    if #s == 0 then fail(node, "the input must have at least one axis") end
    local d = dim_of(node, axis[1], #s)
    local exclusive, reverse = node.attrs.exclusive == 1, node.attrs.reverse == 1
    if ints.is(x) then return { cumsum_ints(x, d, exclusive, reverse) } end
    local n = s[d]
    local y = x
    local step = 1
    while step < n do
      y = y + shifted(y, d, step, reverse)
      step = step * 2
    end
    if exclusive and n > 0 then y = shifted(y, d, 1, reverse) end
    return { y }
  end

  ----------------------------------------------------------------------------------------------
  -- Einsum: each operand's repeated labels become its diagonal, labels no one else reads are
  -- summed, then the operands are contracted left to right, each pair as one batched matmul
  -- (batch labels, the left's own, the contracted ones) x (batch, contracted, the right's
  -- own), and the result is permuted to the output's labels.  "..." stands for the same
  -- broadcast dims in every operand, aligned from the right.
  ----------------------------------------------------------------------------------------------
  -- the labels of one term: a list of letters, "..." expanded to the ellipsis labels "1".."E"
  -- (the last e of them for an operand of e ellipsis dims)
  local function term_labels(node, eq, term, rank, E)
    local dots = select(2, term:gsub("%.%.%.", ""))
    local letters = term:gsub("%.%.%.", "")
    if dots > 1 or letters:find("[^%a]") then
      fail(node, "equation '%s': term '%s' must be letters and at most one '...'", eq, term)
    end
    local e = rank and (rank - #letters) or E
    if rank and (e < 0 or (dots == 0 and e ~= 0)) then
      fail(node, "equation '%s': term '%s' does not fit an input of rank %d", eq, term, rank)
    end
    local labels = {}
    local before = dots == 1 and term:find("...", 1, true) or #term + 1
    for c in term:sub(1, before - 1):gmatch("%a") do labels[#labels + 1] = c end
    if dots == 1 then for j = E - e + 1, E do labels[#labels + 1] = tostring(j) end end
    if dots == 1 then for c in term:sub(before + 3):gmatch("%a") do labels[#labels + 1] = c end end
    return labels, e
  end

  local function parse_einsum(node, eq, ranks)
    local text = eq:gsub("%s", "")
    local lhs, rhs = text:match("^(.-)%->(.*)$")
    lhs = lhs or text
    local terms = {}
    for t in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = t end
    if #terms ~= #ranks then
      fail(node, "equation '%s' names %d operand%s, the node has %d input%s", eq, #terms, #terms == 1 and "" or "s",
        #ranks, #ranks == 1 and "" or "s")
    end
    local E = 0
    for k, t in ipairs(terms) do
      local letters = t:gsub("%.%.%.", "")
      if t:find("...", 1, true) then E = math.max(E, ranks[k] - #letters) end
    end
    local labels, count = {}, {}
    for k, t in ipairs(terms) do
      labels[k] = term_labels(node, eq, t, ranks[k], E)
      for _, l in ipairs(labels[k]) do count[l] = (count[l] or 0) + 1 end
    end
    local out = {}
    if rhs then
      out = term_labels(node, eq, rhs, nil, E)
      local seen = {}
      for _, l in ipairs(out) do
        if seen[l] then fail(node, "equation '%s': the output names '%s' twice", eq, l) end
        if not count[l] then fail(node, "equation '%s': the output's '%s' is in no input", eq, l) end
        seen[l] = true
      end
    else
      -- implicit output: the ellipsis dims, then the letters named once, in alphabetical order
      for j = 1, E do out[#out + 1] = tostring(j) end
      local once = {}
      for l, c in pairs(count) do if c == 1 and l:find("%a") then once[#once + 1] = l end end
      table.sort(once)
      for _, l in ipairs(once) do out[#out + 1] = l end
    end
    return labels, out
  end

  -- position of label l in list, or nil
  local function find(list, l)
    for i, v in ipairs(list) do if v == l then return i end end
  end

  -- x permuted so that its labels read `order`
  local function permuted(x, labels, order)
    local p, same = {}, true
    for i, l in ipairs(order) do
      p[i] = find(labels, l)
      if p[i] ~= i then same = false end
    end
    if same or #p < 2 then return x end
    return x:permute(table.unpack(p))
  end

  -- the product of the sizes of labels
  local function size_of(labels, size)
    local n = 1
    for _, l in ipairs(labels) do n = n * size[l] end
    return n
  end

  local function sizes_of(labels, size)
    local s = {}
    for i, l in ipairs(labels) do s[i] = size[l] end
    return s
  end

  -- x with each repeated label taken once (its diagonal), its size-1 dims broadcast to the
  -- label's size, and the labels `keep` does not hold summed out
  local function prepare(node, x, labels, size, keep)
    labels = { table.unpack(labels) }
    local i = 1
    while i <= #labels do
      local j = find({ table.unpack(labels, i + 1) }, labels[i])
      if j then
        j = j + i
        local l, n = labels[i], x:size(i)
        if x:size(j) ~= n then
          fail(node, "label '%s' names dims of sizes %d and %d of one input", l, n, x:size(j))
        end
        -- the two dims last, merged, and every (n+1)th element of them
        local rest, p = {}, {}
        for k, v in ipairs(labels) do
          if k ~= i and k ~= j then rest[#rest + 1], p[#p + 1] = v, k end
        end
        p[#p + 1] = i
        p[#p + 1] = j
        local s = {}
        for k, d in ipairs(p) do s[k] = x:size(d) end
        local merged = {}
        for k = 1, #s - 2 do merged[k] = s[k] end
        merged[#merged + 1] = n * n
        local idx = {}
        for k = 1, n do idx[k] = (k - 1) * (n + 1) + 1 end
        x = x:permute(table.unpack(p)):contiguous():reshape(merged):index_select(#merged, idx)
        rest[#rest + 1] = l
        labels = rest
        i = 1
      else
        i = i + 1
      end
    end
    -- broadcast size-1 dims
    local want, grow = {}, false
    for k, l in ipairs(labels) do
      want[k] = size[l]
      if x:size(k) ~= size[l] then grow = true end
    end
    if grow then
      tensor_room(node, want, "the broadcast input")
      x = x:expand(want)
    end
    -- sum what no one else reads, from the last dim down so the positions hold
    for k = #labels, 1, -1 do
      if not keep[labels[k]] then
        x = x:sum(k)
        table.remove(labels, k)
      end
    end
    return x, labels
  end

  -- A (labels la) times B (labels lb), summing the labels both hold that `later` does not
  local function contract(node, a, la, b, lb, size, later)
    local batch, own_a, contracted, own_b = {}, {}, {}, {}
    for _, l in ipairs(la) do
      if find(lb, l) then
        if later[l] then batch[#batch + 1] = l else contracted[#contracted + 1] = l end
      else
        own_a[#own_a + 1] = l
      end
    end
    for _, l in ipairs(lb) do if not find(la, l) then own_b[#own_b + 1] = l end end
    local out = {}
    for _, list in ipairs { batch, own_a, own_b } do for _, l in ipairs(list) do out[#out + 1] = l end end
    tensor_room(node, sizes_of(out, size), "a partial product")
    local nb, m, k, n = size_of(batch, size), size_of(own_a, size), size_of(contracted, size), size_of(own_b, size)
    local order_a, order_b = {}, {}
    for _, list in ipairs { batch, own_a, contracted } do for _, l in ipairs(list) do order_a[#order_a + 1] = l end end
    for _, list in ipairs { batch, contracted, own_b } do for _, l in ipairs(list) do order_b[#order_b + 1] = l end end
    local am = permuted(a, la, order_a):contiguous():reshape(nb, m, k)
    local bm = permuted(b, lb, order_b):contiguous():reshape(nb, k, n)
    local y = core.matmul(am, bm)
    local s = sizes_of(out, size)
    return #s == 0 and y:reshape({}) or y:reshape(s), out
  end

  function ops.Einsum(node, inputs)
    local xs, ranks = {}, {}
    for k = 1, #node.inputs do
      if inputs[k] == nil then fail(node, "input %d (%s) has no value", k, input_name(node, k)) end
      xs[k] = tensor_of(inputs[k])
      ranks[k] = xs[k]:dim()
    end
    local eq = node.attrs.equation
    local labels, out = parse_einsum(node, eq, ranks)
    -- each label's size: equal across operands, or 1 where it broadcasts
    local size = {}
    for k, ls in ipairs(labels) do
      for i, l in ipairs(ls) do
        local n, had = xs[k]:size(i), size[l]
        if had and had ~= n and had ~= 1 and n ~= 1 then
          fail(node, "equation '%s': label '%s' is %d in one input and %d in input %d (%s)", eq,
            l:find("%a") and l or "...", had, n, k, shape_text(xs[k]:shape()))
        end
        size[l] = math.max(had or n, n)
      end
    end
    -- what is read after operand k: the output and the operands after k
    local function later_than(k)
      local set = {}
      for _, l in ipairs(out) do set[l] = true end
      for j = k + 1, #labels do for _, l in ipairs(labels[j]) do set[l] = true end end
      return set
    end
    local function with(set, ls)
      local s = {}
      for l in pairs(set) do s[l] = true end
      for _, l in ipairs(ls or {}) do s[l] = true end
      return s
    end
    local acc, la = prepare(node, xs[1], labels[1], size, with(later_than(1)))
    for k = 2, #xs do
      local later = later_than(k)
      local b, lb = prepare(node, xs[k], labels[k], size, with(later, la))
      acc, la = prepare(node, acc, la, size, with(later, lb))
      acc, la = contract(node, acc, la, b, lb, size, later)
    end
    return { permuted(acc, la, out) }
  end

  ----------------------------------------------------------------------------------------------
  -- Resize and Upsample
  ----------------------------------------------------------------------------------------------
  -- source coordinate of output index i (0-based) on an axis of input size n; s is the scale
  -- and m the output length as ONNX's reference computes it, s n (a float when scales are
  -- given: 4 values at scale 0.6 have length 2.4, not the 2 of the output's size); roi, the
  -- axis' {start, end} for tf_crop_and_resize
  local coordinate = {
    half_pixel = function(i, n, m, s) return (i + 0.5) / s - 0.5 end,
    pytorch_half_pixel = function(i, n, m, s) if m > 1 then return (i + 0.5) / s - 0.5 end return 0 end,
    align_corners = function(i, n, m) if m == 1 then return 0 end return i * (n - 1) / (m - 1) end,
    asymmetric = function(i, n, m, s) return i / s end,
    tf_half_pixel_for_nn = function(i, n, m, s) return (i + 0.5) / s end,
    tf_crop_and_resize = function(i, n, m, s, roi)
      if m == 1 then return (roi[2] - roi[1]) * (n - 1) / 2 + roi[1] * (n - 1) end
      return i * (roi[2] - roi[1]) * (n - 1) / (m - 1) + roi[1] * (n - 1)
    end,
  }

  local nearest_round = {
    round_prefer_floor = function(v) if v - math.floor(v) == 0.5 then return math.floor(v) end return math.floor(v + 0.5) end,
    round_prefer_ceil = function(v) return math.floor(v + 0.5) end,
    floor = math.floor,
    ceil = math.ceil,
  }

  -- the number of values in v (a shape value or a tensor)
  local function count_of(v) return ints.is(v) and numel(v.shape) or v:numel() end

  -- the Lua list of v's values when it holds one per axis of x's shape s (checked first, so a
  -- hostile input is never read whole)
  local function per_axis(node, v, k, s, times)
    times = times or 1
    if count_of(v) ~= #s * times then
      fail(node, "input %d (%s) holds %d values, the input (%s) has %d axes", k, input_name(node, k), count_of(v),
        shape_text(s), #s)
    end
    return values(v)
  end

  local MAX_RESIZE = 1 << 24

  -- the output size of each axis of a resize of shape s, from sizes or from scales, checked
  -- before anything is made
  local function resize_sizes(node, s, scales, sizes)
    local what = sizes and "sizes" or "scales"
    local list = sizes or scales
    if list == nil then fail(node, "needs scales or sizes") end
    if #list ~= #s then
      fail(node, "%s (%s) must have one entry per axis of the input (%s)", what, shape_text(list), shape_text(s))
    end
    local out, biggest = {}, {}
    for d = 1, #s do
      local m = sizes and sizes[d]
      if not sizes then
        local sc = scales[d]
        if not (sc > 0 and sc < math.huge) then
          fail(node, "scales (%s) must be positive and finite", shape_text(scales))
        end
        m = math.floor(s[d] * sc)
      end
      if not (m >= 1) then
        fail(node, "%s (%s) leave axis %d of the input (%s) empty", what, shape_text(list), d - 1, shape_text(s))
      end
      -- indices are float32 (exact to 2^24), and each axis' are a Lua list
      if m > MAX_RESIZE then
        fail(node, "%s (%s) resize axis %d to %.0f, more than the %d nnvis resizes an axis to", what, shape_text(list),
          d - 1, m, MAX_RESIZE)
      end
      out[d], biggest[d] = m, math.max(m, s[d])
    end
    -- each pass along one axis holds at most the larger size of every axis
    tensor_room(node, biggest, "the resized output")
    return out
  end

  -- Keys' cubic convolution weights (Keys 1981, eq. 15, a = A) of the 4 taps at -1, 0, 1, 2
  -- from the left neighbour, at fraction t in (0, 1] past it (ONNX's reference)
  local function cubic_weights(t, A)
    local u = 1 - t
    return {
      ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A,
      ((A + 2) * t - (A + 3)) * t * t + 1,
      ((A + 2) * u - (A + 3)) * u * u + 1,
      ((A * (u + 1) - 5 * A) * (u + 1) + 8 * A) * (u + 1) - 4 * A,
    }
  end

  -- x resized along dim d: out[i] = sum over taps k of w_k[i] x[idx_k[i]] (index lists and
  -- weight vectors of one axis)
  local function taps(x, d, idx, w)
    local ws = {}
    for k = 1, x:dim() do ws[k] = 1 end
    ws[d] = #idx[1]
    local y
    for k = 1, #idx do
      local t = x:index_select(d, idx[k]) * core.tensor(w[k]):reshape(ws)
      y = y and y + t or t
    end
    return y, ws
  end

  -- Resize and Upsample, separably along each resized axis: nearest picks source indices,
  -- linear blends two of them, cubic four (index_select and broadcasting, so gradients flow)
  local function resize(node, x, o)
    local s = x:shape()
    local r = #s
    local out = resize_sizes(node, s, o.scales, o.sizes)
    local coord = coordinate[o.ctm]
    if not coord then fail(node, "coordinate_transformation_mode '%s' is not supported", o.ctm) end
    local crop = o.ctm == "tf_crop_and_resize"
    for d = 1, r do
      local n, m = s[d], out[d]
      local sc = o.scales and o.scales[d] or m / n
      local roi = crop and { o.roi[d], o.roi[d + r] }
      if m ~= n or sc ~= 1 or (crop and (roi[1] ~= 0 or roi[2] ~= 1)) then
        local len = sc * n
        local src, inside = {}, {}
        for i = 0, m - 1 do
          local v = coord(i, n, len, sc, roi)
          src[i + 1] = v
          -- tf_crop_and_resize: outside the input, the extrapolation value
          inside[i + 1] = (not crop or (v >= 0 and v <= n - 1)) and 1 or 0
        end
        local ws
        if o.mode == "nearest" then
          local round = nearest_round[o.nearest_mode]
          if not round then fail(node, "nearest_mode '%s' is not supported", o.nearest_mode) end
          local idx = {}
          for i = 1, m do idx[i] = math.max(0, math.min(n - 1, round(src[i]))) + 1 end
          x = x:index_select(d, idx)
          ws = {}
          for k = 1, r do ws[k] = 1 end
          ws[d] = m
        elseif o.mode == "linear" or o.mode == "bilinear" then
          local i0, i1, w0, w1 = {}, {}, {}, {}
          for i = 1, m do
            local v = math.max(0, math.min(n - 1, src[i]))
            local f = math.floor(v)
            i0[i], i1[i], w0[i], w1[i] = f + 1, math.min(f + 1, n - 1) + 1, 1 - (v - f), v - f
          end
          x, ws = taps(x, d, { i0, i1 }, { w0, w1 })
        elseif o.mode == "cubic" then
          local idx, w = { {}, {}, {}, {} }, { {}, {}, {}, {} }
          for i = 1, m do
            local v = src[i]
            -- the left neighbour: floor(v), or v - 1 on a whole v (t = 1 weighs v alone)
            local f = math.floor(v)
            if f == v then f = v - 1 end
            local cw = cubic_weights(v - f, o.cubic_a)
            local total = 0
            for k = 1, 4 do
              local j = f - 2 + k
              if o.exclude_outside and (j < 0 or j > n - 1) then cw[k] = 0 end
              total = total + cw[k]
              idx[k][i] = math.max(0, math.min(n - 1, j)) + 1   -- edge padding
            end
            for k = 1, 4 do w[k][i] = o.exclude_outside and cw[k] / total or cw[k] end
          end
          x, ws = taps(x, d, idx, w)
        else
          fail(node, "mode '%s' is not supported", o.mode)
        end
        if crop then
          local keep = core.tensor(inside):reshape(ws)
          x = x * keep + (1 - keep) * o.extrapolation
        end
      end
    end
    return x
  end

  function ops.Resize(node, inputs)
    local x = tensor_of(inputs[1])
    local at = node.attrs
    local scales, sizes, roi
    local s = x:shape()
    local ctm = node.opset < 11 and "asymmetric" or (at.coordinate_transformation_mode or "half_pixel")
    if node.opset < 11 then
      scales = per_axis(node, inputs[2], 2, s)
    else
      if inputs[4] ~= nil and count_of(inputs[4]) > 0 then sizes = intlist(per_axis(node, inputs[4], 4, s))
      elseif inputs[3] ~= nil and count_of(inputs[3]) > 0 then scales = per_axis(node, inputs[3], 3, s)
      else fail(node, "needs input 3 (scales) or input 4 (sizes)") end
      if ctm == "tf_crop_and_resize" then
        if inputs[2] == nil then fail(node, "tf_crop_and_resize needs input 2 (roi)") end
        roi = per_axis(node, inputs[2], 2, s, 2)
      end
    end
    return { resize(node, x, {
      scales = scales, sizes = sizes, roi = roi, mode = at.mode or "nearest", ctm = ctm,
      nearest_mode = node.opset < 11 and "floor" or (at.nearest_mode or "round_prefer_floor"),
      cubic_a = at.cubic_coeff_a or -0.75, exclude_outside = at.exclude_outside == 1,
      extrapolation = at.extrapolation_value or 0,
    }) }
  end

  function ops.Upsample(node, inputs)
    local x = tensor_of(inputs[1])
    local scales = node.attrs.scales or per_axis(node, inputs[2], 2, x:shape())
    return { resize(node, x, { scales = scales, mode = node.attrs.mode or "nearest", ctm = "asymmetric",
                               nearest_mode = "floor" }) }
  end

  ----------------------------------------------------------------------------------------------
  -- Not, And, Or, Xor: booleans are shape values of 0 and 1 or float tensors of 0 and 1 (what
  -- Equal and Less give); any nonzero reads as true
  ----------------------------------------------------------------------------------------------
  function ops.Not(node, inputs)
    local x = inputs[1]
    if all_ints(inputs, 1) then return { int_map(node, { x }, function(v) return v == 0 and 1 or 0 end) } end
    return { tensor_of(x):eq(0) }
  end
  local logic = {
    And = { function(a, b) return a * b end, function(x, y) return (x ~= 0 and y ~= 0) and 1 or 0 end },
    Or = { function(a, b) return (a + b):ne(0) end, function(x, y) return (x ~= 0 or y ~= 0) and 1 or 0 end },
    Xor = { function(a, b) return a:ne(b) end, function(x, y) return ((x ~= 0) ~= (y ~= 0)) and 1 or 0 end },
  }
  for op, f in pairs(logic) do
    ops[op] = function(node, inputs)
      if all_ints(inputs, 2) then return { int_map(node, { inputs[1], inputs[2] }, f[2]) } end
      return { f[1](tensor_of(inputs[1]):ne(0), tensor_of(inputs[2]):ne(0)) }
    end
  end

  ----------------------------------------------------------------------------------------------
  -- ScatterND: data with the slices indices[..., :] (each k leading coordinates) replaced by
  -- updates' (Swin's attention masks, key-value caches), or combined with them (reduction add,
  -- mul, max, min; a position written twice combines both).  Tensors: with pick_r the updates'
  -- element of each position's r-th write (0: none) and u0 = [neutral, updates], none is
  -- data * keep + u0[pick_last], the others fold data with u0[pick_1], u0[pick_2] ..., so the
  -- gradient reaches data and updates; the picks come from core.scatter_picks (C), Lua only
  -- walks the index tuples.
  ----------------------------------------------------------------------------------------------
  function ops.ScatterND(node, inputs)
    local data, ind, upd = inputs[1], inputs[2], inputs[3]
    local reduction = node.attrs.reduction or "none"
    local ds, is, us = shape_of(data), shape_of(ind), shape_of(upd)
    local k = is[#is]
    if #is < 1 or k == nil or k < 1 or k > #ds then
      fail(node, "indices (%s) must end in a size between 1 and the data's rank %d", shape_text(is), #ds)
    end
    local want = {}
    for i = 1, #is - 1 do want[#want + 1] = is[i] end
    for i = k + 1, #ds do want[#want + 1] = ds[i] end
    if shape_text(want) ~= shape_text(us) then
      fail(node, "updates are (%s), data (%s) and indices (%s) need (%s)", shape_text(us), shape_text(ds),
        shape_text(is), shape_text(want))
    end
    local block = 1
    for i = k + 1, #ds do block = block * ds[i] end
    local n = numel(ds)
    if is_tensor(data) or is_tensor(upd) then tensor_room(node, ds) else ints_room(node, ds) end
    local idx = intlist(ind)
    -- the flat offset of each index tuple (one per tuple, checked), then every position it
    -- writes: offset * block + 0..block-1, in order; core.scatter_picks turns the writes into
    -- gathers: rounds[r][p] = 1 + the write that reached position p r-th, last[p] its last
    local offs = {}
    for t = 0, #idx // k - 1 do
      local off = 0
      for j = 1, k do
        local v = idx[t * k + j]
        if v < 0 then v = v + ds[j] end
        if v < 0 or v >= ds[j] then
          fail(node, "index %d is out of range for dim %d of size %d", idx[t * k + j], j - 1, ds[j])
        end
        off = off * ds[j] + v
      end
      offs[t + 1] = off
    end
    local rounds, last
    if #offs == 0 then
      rounds, last = core.zeros(1, n), core.zeros(n)
    else
      local pos = core.tensor(offs):view(#offs, 1) * block + core.arange(block):view(1, block)
      rounds, last = core.scatter_picks(n, pos:reshape(-1))
    end
    local combine = {
      add = { 0, function(a, b) return a + b end },
      mul = { 1, function(a, b) return a * b end },
      max = { -math.huge, function(a, b) return a:maximum(b) end },
      min = { math.huge, function(a, b) return a:minimum(b) end },
    }
    if not is_tensor(data) and not is_tensor(upd) then
      -- shape values (integers, exact in Lua, few: ints_room capped them)
      local dv, uv, out = values(data), values(upd), {}
      local lv, rv = last:values(), {}
      for r = 1, rounds:size(1) do rv[r] = rounds:select(1, r):values() end
      for q = 1, n do
        local v = dv[q]
        if reduction == "none" then
          if lv[q] > 0 then v = uv[math.floor(lv[q])] end
        else
          local f = combine[reduction][2]
          if reduction == "max" then f = math.max elseif reduction == "min" then f = math.min end
          for r = 1, #rv do
            if rv[r][q] > 0 then v = f(v, uv[math.floor(rv[r][q])]) end
          end
        end
        out[q] = v
      end
      return { ints.new(ds, out) }
    end
    local d, u = tensor_of(data):reshape(-1), tensor_of(upd):reshape(-1)
    local out
    if reduction == "none" then
      local ux = core.cat({ core.zeros(1), u:reshape(-1) }, 1)
      out = d * last:eq(0) + ux:index_select(1, last + 1)
    else
      local neutral, f = combine[reduction][1], combine[reduction][2]
      local ux = core.cat({ core.full({ 1 }, neutral), u:reshape(-1) }, 1)
      out = d
      for r = 1, rounds:size(1) do
        local pick = rounds:select(1, r)
        -- positions this round does not reach keep their value (the neutral element would
        -- turn max/min of nothing into an infinity)
        out = core.where(pick:gt(0), f(out, ux:index_select(1, pick + 1)), out)
      end
    end
    return { out:reshape(ds) }
  end

  return ops
end

-- nnvis.nn.onnx_ops_shape — the ONNX operators that move data rather than compute it, for
-- nnvis.nn.onnx_ops, loaded by it: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
-- Split, Slice, Gather, Shape, Size, Expand, Identity, Dropout, Constant, ConstantOfShape,
-- Range, Cast and Pad.  The conventions are onnx_ops.lua's (ops[op](node, inputs) -> outputs;
-- values are float tensors or shape values; ONNX axes 0-based, nnvis dims 1-based), and so
-- are the helpers it hands over.
local core = require "nnvis.core"
local F = require "nnvis.tensor.functional"
local is_tensor = require("nnvis.tensor.util").is_tensor

return function(ops, h)
  local all_ints, broadcast_shapes, dim_of, fail, int_binary, intlist, ints, ints_room, numel, shape_of, shape_text, strides_of, tensor_of, tensor_room, trunc_int, values =
    h.all_ints, h.broadcast_shapes, h.dim_of, h.fail, h.int_binary, h.intlist, h.ints, h.ints_room, h.numel, h.shape_of, h.shape_text, h.strides_of, h.tensor_of, h.tensor_room, h.trunc_int, h.values

  ------------------------------------------------------------------------------------------------
  -- shapes
  ------------------------------------------------------------------------------------------------
  local function reshape_value(v, shape)
    if is_tensor(v) then return v:reshape(shape) end
    local c = {}
    for i = 1, numel(v.shape) do c[i] = v[i] end
    return ints.new(shape, c)
  end

  -- the target of Reshape: 0 copies the input's dim (unless allowzero), -1 is inferred
  function ops.Reshape(node, inputs)
    local x = inputs[1]
    local shape = intlist(inputs[2]) or node.attrs.shape
    local s = shape_of(x)
    local n = numel(s)
    local out, known, infer = {}, 1.0, nil   -- known: the product of the given dims, in floats (cannot wrap)
    for i, d in ipairs(shape) do
      if d == 0 and node.attrs.allowzero ~= 1 then d = s[i] end
      if d == -1 then
        if infer then fail(node, "more than one -1 in the shape") end
        infer = i
      else
        if d == nil or d < 0 then fail(node, "bad target shape (%s)", shape_text(shape)) end
        known = known * d
      end
      out[i] = d
    end
    if infer then
      local k = known <= n and math.tointeger(known)
      if not k or k == 0 or n % k ~= 0 then
        fail(node, "cannot reshape (%s) to (%s)", shape_text(s), shape_text(shape))
      end
      out[infer] = n // k
    elseif known ~= n then
      fail(node, "cannot reshape (%s) to (%s)", shape_text(s), shape_text(out))
    end
    return { reshape_value(x, out) }
  end

  function ops.Flatten(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local given = node.attrs.axis or 1
    local axis = given < 0 and given + #s or given
    if axis < 0 or axis > #s then fail(node, "axis %d is out of range for rank %d", given, #s) end
    local outer = 1
    for i = 1, axis do outer = outer * s[i] end
    return { reshape_value(x, { outer, numel(s) // math.max(outer, 1) }) }
  end

  -- the input's axes list (attribute before opset 13, input from 13)
  local function axes_of(node, inputs, idx)
    if inputs[idx] ~= nil then return intlist(inputs[idx]) end
    return node.attrs.axes
  end

  function ops.Squeeze(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local axes = axes_of(node, inputs, 2)
    local drop = {}
    if axes then
      for _, a in ipairs(axes) do drop[dim_of(node, a, #s)] = true end
    else
      for i, d in ipairs(s) do if d == 1 then drop[i] = true end end
    end
    local out = {}
    for i, d in ipairs(s) do
      if drop[i] then
        if d ~= 1 then fail(node, "cannot squeeze dim %d of size %d", i - 1, d) end
      else
        out[#out + 1] = d
      end
    end
    return { reshape_value(x, out) }
  end

  function ops.Unsqueeze(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local axes = axes_of(node, inputs, 2)
    local r = #s + #axes
    local new = {}
    for _, a in ipairs(axes) do
      local d = dim_of(node, a, r)
      if new[d] then fail(node, "axes (%s) name axis %d twice", shape_text(axes), d - 1) end
      new[d] = true
    end
    local out, j = {}, 1
    for i = 1, r do
      if new[i] then out[i] = 1 else out[i] = s[j]; j = j + 1 end
    end
    return { reshape_value(x, out) }
  end

  function ops.Transpose(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local perm = node.attrs.perm
    if not perm then
      perm = {}
      for i = 1, #s do perm[i] = #s - i end
    end
    if #perm ~= #s then fail(node, "perm (%s) does not fit the input (%s)", shape_text(perm), shape_text(s)) end
    local p = {}
    for i, a in ipairs(perm) do p[i] = a + 1 end
    if is_tensor(x) then return { x:permute(table.unpack(p)) } end
    -- shape values: gather by the permuted strides
    local out_shape = {}
    for i, d in ipairs(p) do out_shape[i] = s[d] end
    local st, c = strides_of(s), {}
    for lin = 0, numel(out_shape) - 1 do
      local rem, src = lin, 0
      for d = #out_shape, 1, -1 do
        local i = rem % out_shape[d]
        rem = rem // out_shape[d]
        src = src + i * st[p[d]]
      end
      c[lin + 1] = x[src + 1]
    end
    return { ints.new(out_shape, c) }
  end

  -- slices of shape values along one dim: keep(d, list of 0-based indices)
  local function int_index(v, d, idx)
    local s = v.shape
    local out_shape = {}
    for i = 1, #s do out_shape[i] = s[i] end
    out_shape[d] = #idx
    local st = strides_of(s)
    local c = {}
    for lin = 0, numel(out_shape) - 1 do
      local rem, src = lin, 0
      for k = #out_shape, 1, -1 do
        local i = rem % out_shape[k]
        rem = rem // out_shape[k]
        src = src + (k == d and idx[i + 1] or i) * st[k]
      end
      c[lin + 1] = v[src + 1]
    end
    return ints.new(out_shape, c)
  end

  function ops.Concat(node, inputs)
    local list = {}
    for i = 1, inputs.n or #inputs do if inputs[i] ~= nil then list[#list + 1] = inputs[i] end end
    local r = #shape_of(list[1])
    local d = dim_of(node, node.attrs.axis, r)
    if all_ints(list, #list) then
      -- concatenation of shape values, through a transpose-free walk of the outer dims
      local s = list[1].shape
      local out_shape = {}
      for i = 1, r do out_shape[i] = s[i] end
      out_shape[d] = 0
      for _, v in ipairs(list) do
        local vs = v.shape
        local ok = #vs == r
        for i = 1, r do if i ~= d and vs[i] ~= s[i] then ok = false end end
        if not ok then
          fail(node, "inputs (%s) and (%s) do not concatenate along axis %d", shape_text(s), shape_text(vs), d - 1)
        end
        out_shape[d] = out_shape[d] + vs[d]
      end
      ints_room(node, out_shape)
      local outer, c = 1, {}
      for i = 1, d - 1 do outer = outer * s[i] end
      for o = 0, outer - 1 do
        for _, v in ipairs(list) do
          local block = numel(v.shape) // math.max(outer, 1)
          for k = 1, block do c[#c + 1] = v[o * block + k] end
        end
      end
      return { ints.new(out_shape, c) }
    end
    local ts = {}
    for i, v in ipairs(list) do ts[i] = tensor_of(v) end
    return { core.cat(ts, d) }
  end

  function ops.Split(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local d = dim_of(node, node.attrs.axis or 0, #s)
    local split = (inputs[2] ~= nil and intlist(inputs[2])) or node.attrs.split
    local n = #node.outputs
    if not split then
      split = {}
      local each = -(-s[d] // n)
      for i = 1, n do split[i] = math.max(math.min(each, s[d] - each * (i - 1)), 0) end
    end
    local total = 0
    for _, len in ipairs(split) do
      if len < 0 or len > s[d] then
        fail(node, "split (%s) does not fit dim %d of (%s)", shape_text(split), d - 1, shape_text(s))
      end
      total = total + len
    end
    if #split ~= n or total ~= s[d] then
      fail(node, "split (%s) does not cut dim %d of (%s) into %d output%s", shape_text(split), d - 1, shape_text(s), n,
        n == 1 and "" or "s")
    end
    local outs, start = {}, 0
    for i, len in ipairs(split) do
      if is_tensor(x) then outs[i] = x:narrow(d, start + 1, len)
      else
        local idx = {}
        for k = 1, len do idx[k] = start + k - 1 end
        outs[i] = int_index(x, d, idx)
      end
      start = start + len
    end
    return outs
  end

  -- Slice (starts, ends, axes, steps as inputs from opset 10, attributes before)
  function ops.Slice(node, inputs)
    local x = inputs[1]
    local s = shape_of(x)
    local starts, ends, axes, steps
    if node.opset < 10 then
      starts, ends, axes = node.attrs.starts, node.attrs.ends, node.attrs.axes
    else
      starts, ends, axes, steps = intlist(inputs[2]), intlist(inputs[3]), intlist(inputs[4]), intlist(inputs[5])
    end
    if #ends ~= #starts or (axes and #axes ~= #starts) or (steps and #steps ~= #starts) then
      fail(node, "starts (%s), ends (%s), axes (%s) and steps (%s) differ in length", shape_text(starts),
        shape_text(ends), shape_text(axes or {}), shape_text(steps or {}))
    end
    local seen = {}
    for i = 1, #starts do
      local d = dim_of(node, axes and axes[i] or (i - 1), #s)
      if seen[d] then fail(node, "axes (%s) name axis %d twice", shape_text(axes), d - 1) end
      seen[d] = true
      local n = s[d]
      local step = steps and steps[i] or 1
      if step == 0 then fail(node, "step 0") end
      local a, b = starts[i], ends[i]
      if a < 0 then a = a + n end
      if b < 0 then b = b + n end
      if step > 0 then
        a, b = math.max(0, math.min(a, n)), math.max(0, math.min(b, n))
      else
        a, b = math.max(-1, math.min(a, n - 1)), math.max(-1, math.min(b, n - 1))
      end
      local idx = {}
      if step > 0 then for k = a, b - 1, step do idx[#idx + 1] = k end
      else for k = a, b + 1, step do idx[#idx + 1] = k end end
      if is_tensor(x) then
        if #idx == 0 then fail(node, "an empty slice of (%s) is not supported", table.concat(s, ",")) end
        if step == 1 then x = x:narrow(d, a + 1, #idx)
        else
          for k, v in ipairs(idx) do idx[k] = v + 1 end
          x = x:index_select(d, idx)
        end
      else
        x = int_index(x, d, idx)
      end
      s = shape_of(x)
    end
    return { x }
  end

  function ops.Gather(node, inputs)
    local x, ind = inputs[1], inputs[2]
    local s = shape_of(x)
    local d = dim_of(node, node.attrs.axis or 0, #s)
    local idx = intlist(ind)
    for i, v in ipairs(idx) do
      if v < 0 then v = v + s[d] end
      if v < 0 or v >= s[d] then fail(node, "index %d is out of range for a dim of size %d", idx[i], s[d]) end
      idx[i] = v
    end
    local ishape = shape_of(ind)
    local out_shape = {}
    for i = 1, d - 1 do out_shape[#out_shape + 1] = s[i] end
    for _, k in ipairs(ishape) do out_shape[#out_shape + 1] = k end
    for i = d + 1, #s do out_shape[#out_shape + 1] = s[i] end
    if is_tensor(x) then
      tensor_room(node, out_shape)
      if #ishape == 0 then return { x:select(d, idx[1] + 1) } end
      local one = {}
      for i, v in ipairs(idx) do one[i] = v + 1 end
      return { x:index_select(d, one):reshape(out_shape) }
    end
    ints_room(node, out_shape)
    return { reshape_value(int_index(x, d, idx), out_shape) }
  end

  function ops.Shape(node, inputs)
    local s = shape_of(inputs[1])
    local a, b = node.attrs.start or 0, node.attrs["end"] or #s
    if a < 0 then a = a + #s end
    if b < 0 then b = b + #s end
    a, b = math.min(math.max(a, 0), #s), math.min(b, #s)   -- clamped first: a + 1 cannot wrap
    local c = {}
    for i = a + 1, b do c[#c + 1] = s[i] end
    return { ints.vector(c) }
  end

  function ops.Size(node, inputs) return { ints.scalar(numel(shape_of(inputs[1]))) } end

  function ops.Expand(node, inputs)
    local x = inputs[1]
    local target = intlist(inputs[2])
    local s = shape_of(x)
    for _, d in ipairs(target) do
      if d < 0 then fail(node, "shape (%s) has a negative size", shape_text(target)) end
    end
    local out = broadcast_shapes(node, s, target)
    if is_tensor(x) then
      tensor_room(node, out)
      local v = {}
      for i = 1, #out - #s do v[i] = 1 end
      for _, d in ipairs(s) do v[#v + 1] = d end
      return { x:reshape(v):expand(out):contiguous() }
    end
    return { int_binary(node, x, ints.new(out, {}), function(p) return p end) }
  end

  function ops.Identity(_, inputs) return { inputs[1] } end

  -- Dropout: ratio as an attribute (opset < 12) or input; identity in eval
  function ops.Dropout(node, inputs)
    local x = tensor_of(inputs[1])
    local ratio = node.attrs.ratio or 0.5
    if inputs[2] ~= nil then ratio = values(inputs[2])[1] end
    if not (ratio >= 0 and ratio < 1) then fail(node, "ratio %s is not in [0, 1)", tostring(ratio)) end
    local want_mask = #node.outputs > 1 and node.outputs[2] ~= ""
    if node.training and ratio > 0 then
      if not want_mask then return { F.dropout(x, ratio, true) } end
      local keep = core.rand(x:shape()):ge(ratio)
      return { x * (keep * (1 / (1 - ratio))), keep }
    end
    return { x, want_mask and core.ones(x:shape()) or nil }
  end

  -- a decoded attribute tensor: float tensors stay tensors, integer ones are shape values
  local function const_value(v)
    if is_tensor(v) then return v end
    if type(v) == "table" and v.shape then return ints.from_desc(v) end
    return v
  end
  ops.const_value = const_value

  function ops.Constant(node)
    local at = node.attrs
    if at.value ~= nil then return { const_value(at.value) } end
    if at.value_float then return { core.tensor(at.value_float) } end
    if at.value_floats then return { core.tensor(at.value_floats) } end
    if at.value_int then return { ints.scalar(at.value_int) } end
    if at.value_ints then return { ints.vector(at.value_ints) } end
    fail(node, "a Constant without value, value_float(s) or value_int(s) is not supported")
  end

  function ops.ConstantOfShape(node, inputs)
    local shape = intlist(inputs[1])
    local v = node.attrs.value and const_value(node.attrs.value) or core.tensor { 0.0 }
    if ints.is(v) then
      local c, x = {}, v[1]
      for i = 1, ints_room(node, shape) do c[i] = x end
      return { ints.new(shape, c) }
    end
    tensor_room(node, shape)
    return { core.full(shape, values(v)[1]) }
  end

  -- Range: start, start + delta, ... up to (not including) limit: max(ceil((limit - start) / delta), 0) values
  function ops.Range(node, inputs)
    local a, b, d = values(inputs[1])[1], values(inputs[2])[1], values(inputs[3])[1]
    local fa, fb, fd = a + 0.0, b + 0.0, d + 0.0
    if fd == 0 or not (math.abs(fa) < math.huge and math.abs(fb) < math.huge and math.abs(fd) < math.huge) then
      fail(node, "start %s, limit %s and delta %s must be finite, delta non-zero", tostring(a), tostring(b), tostring(d))
    end
    local count = math.max(math.ceil((fb - fa) / fd), 0)
    if all_ints(inputs, 3) then
      local n = ints_room(node, { count })
      local c = {}
      for i = 1, n do c[i] = a + (i - 1) * d end
      return { ints.new({ n }, c) }
    end
    tensor_room(node, { count })
    return { core.arange(fa, fb, fd) }
  end

  -- TensorProto.DataType codes of the float types; the rest are integers (or bool)
  local FLOAT_TYPES = { [1] = true, [10] = true, [11] = true, [16] = true }

  function ops.Cast(node, inputs)
    local x, to = inputs[1], node.attrs.to
    if FLOAT_TYPES[to] then return { tensor_of(x) } end
    if ints.is(x) then
      if to == 9 then
        local c = {}
        for i = 1, numel(x.shape) do c[i] = x[i] ~= 0 and 1 or 0 end
        return { ints.new(x.shape, c) }
      end
      return { x }
    end
    ints_room(node, x:shape(), "the cast of the input")
    local c = values(x)
    for i, v in ipairs(c) do
      local n = trunc_int(v)
      if not n then fail(node, "cannot cast %s to an integer", tostring(v)) end
      c[i] = to == 9 and (n ~= 0 and 1 or 0) or n
    end
    return { ints.new(x:shape(), c) }
  end

  ------------------------------------------------------------------------------------------------
  -- padding and resizing
  ------------------------------------------------------------------------------------------------
  -- constant padding of one dim by cat (nv.pad covers the last two)
  local function pad_dim(x, d, before, after, value)
    local parts = {}
    local s = x:shape()
    if before > 0 then s[d] = before; parts[#parts + 1] = core.full(s, value) end
    parts[#parts + 1] = x
    if after > 0 then
      local s2 = x:shape()
      s2[d] = after
      parts[#parts + 1] = core.full(s2, value)
    end
    if #parts == 1 then return x end
    return core.cat(parts, d)
  end

  function ops.Pad(node, inputs)
    local x = tensor_of(inputs[1])
    local at = node.attrs
    local pads, value
    if node.opset < 11 then
      pads, value = at.pads or at.paddings, at.value or 0
    else
      pads = intlist(inputs[2])
      value = inputs[3] ~= nil and values(inputs[3])[1] or 0
    end
    local r = x:dim()
    local pb, pe = {}, {}
    for i = 1, r do pb[i], pe[i] = 0, 0 end
    local axes = inputs[4] ~= nil and intlist(inputs[4]) or nil
    local n = axes and #axes or r
    if #pads ~= 2 * n then
      fail(node, "pads (%s) must hold %d values (begin and end of %d axes)", shape_text(pads), 2 * n, n)
    end
    local seen = {}
    for i = 1, n do
      local d = axes and dim_of(node, axes[i], r) or i
      if seen[d] then fail(node, "axes (%s) name axis %d twice", shape_text(axes), d - 1) end
      seen[d] = true
      pb[d], pe[d] = pads[i], pads[i + n]
      if pb[d] < 0 or pe[d] < 0 then fail(node, "negative pads are not supported") end
    end
    local out = x:shape()
    for d = 1, r do out[d] = out[d] + (pb[d] + 0.0) + pe[d] end
    tensor_room(node, out)
    local mode = at.mode or "constant"
    local nvmode = ({ constant = "constant", reflect = "reflect", edge = "replicate" })[mode]
    if not nvmode then fail(node, "mode '%s' is not supported", mode) end
    -- the last two dims through nv.pad, the others (constant mode only) by cat
    for d = 1, r - 2 do
      if pb[d] + pe[d] > 0 then
        if nvmode ~= "constant" then fail(node, "%s padding of dim %d is not supported", mode, d - 1) end
        x = pad_dim(x, d, pb[d], pe[d], value)
      end
    end
    if r >= 2 and pb[r - 1] + pe[r - 1] + pb[r] + pe[r] > 0 then
      if r == 2 or r == 3 then
        local v = r == 2 and x:unsqueeze(1) or x
        v = F.pad(v, { pb[r], pe[r], pb[r - 1], pe[r - 1] }, { mode = nvmode, value = value })
        x = r == 2 and v:squeeze(1) or v
      else
        local s = x:shape()
        local lead = {}
        for i = 1, r - 2 do lead[i] = s[i] end
        local v = x:reshape(1, -1, s[r - 1], s[r])
        v = F.pad(v, { pb[r], pe[r], pb[r - 1], pe[r - 1] }, { mode = nvmode, value = value })
        lead[#lead + 1] = v:size(3)
        lead[#lead + 1] = v:size(4)
        x = v:reshape(lead)
      end
    elseif r == 1 and pb[1] + pe[1] > 0 then
      x = pad_dim(x, 1, pb[1], pe[1], value)
    end
    return { x }
  end
end

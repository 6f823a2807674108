-- spec/onnx_writer.lua — a small ONNX protobuf encoder in pure Lua, so specs (and the
-- structured fuzzer) can build any graph, hostile ones included, in a few lines:
--
--   local W = require "onnx_writer"
--   local path = W.file {
--     opset = 13,
--     inputs = { { "x", { 1, 3, 8, 8 } } },
--     outputs = { "y" },
--     nodes = { { op = "Slice", name = "s", inputs = { "x", "starts", "ends" }, outputs = { "y" } } },
--     initializers = { { name = "starts", ints = { 0 } }, { name = "ends", ints = { 2 } } },
--   }
--   local m, err = nv.onnx.load(path); os.remove(path)
--
-- Field numbers follow csrc/io/onnx.proto.  Nothing is validated: names may be empty, attribute
-- types may disagree with their values (W.attr{type = 2, floats = {1.5}}), and any message
-- takes `extra`, raw bytes appended to its encoding.
--
-- Attribute values: an integer is INT, a float FLOAT, a string STRING, a list of integers
-- INTS, a list with a float FLOATS, a list of strings STRINGS (an empty list is INTS; say
-- W.floats{} or W.strings{} otherwise), W.tensor{...} TENSOR, W.attr{...} exactly the fields
-- given.
local W = {}

------------------------------------------------------------------------------------------------
-- wire format
------------------------------------------------------------------------------------------------
local VARINT, BYTES, FIXED32 = 0, 2, 5

-- a base-128 varint; negative numbers are their 64-bit two's complement (10 bytes), as
-- protobuf writes int32 and int64
local function varint(v)
  local n = math.tointeger(v)
  if not n then error("onnx_writer: varint of a non-integer " .. tostring(v), 3) end
  local out = {}
  repeat
    local b = n & 0x7f
    n = n >> 7   -- logical: a negative number ends after 10 bytes
    if n ~= 0 then b = b | 0x80 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end
W.varint = varint

local function key(field, wire) return varint(field << 3 | wire) end

local function f_varint(field, v) return key(field, VARINT) .. varint(v) end
local function f_bytes(field, s) return key(field, BYTES) .. varint(#s) .. s end
local function f_float(field, v) return key(field, FIXED32) .. string.pack("<f", v) end

-- repeated scalars, one field each (proto2 without [packed])
local function each(field, list, enc, out)
  for _, v in ipairs(list) do out[#out + 1] = enc(field, v) end
end

-- [packed = true]: one length-delimited field of the concatenated values
local function packed(field, list, enc)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = enc(v) end
  return f_bytes(field, table.concat(parts))
end

local function finish(out, t)
  if t.extra then out[#out + 1] = t.extra end
  return table.concat(out)
end

------------------------------------------------------------------------------------------------
-- messages
------------------------------------------------------------------------------------------------
local TensorMT = { __name = "onnx_writer.tensor" }
local AttrMT = { __name = "onnx_writer.attr" }
local ListMT = { __name = "onnx_writer.list" }

W.FLOAT, W.INT64, W.INT32, W.DOUBLE, W.BOOL, W.UINT8 = 1, 7, 6, 11, 9, 2
W.AT = { FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7, STRINGS = 8, TENSORS = 9 }

--- W.tensor{name =, dims =, data_type =, floats = | ints = | int32s = | doubles = | raw =,
--- external = {location =, offset =, length =}, extra =}:
--- a TensorProto (an initializer, or an attribute's value).  dims default to {#values};
--- data_type to FLOAT for floats, INT64 for ints.
function W.tensor(t) return setmetatable(t, TensorMT) end

local function encode_tensor(t)
  local out = {}
  local n = #(t.floats or t.ints or t.int32s or t.doubles or {})
  local dims = t.dims or (t.raw == nil and { n } or {})
  each(1, dims, f_varint, out)
  local dt = t.data_type or (t.ints and W.INT64) or (t.int32s and W.INT32) or (t.doubles and W.DOUBLE) or W.FLOAT
  out[#out + 1] = f_varint(2, dt)
  if t.floats then out[#out + 1] = packed(4, t.floats, function(v) return string.pack("<f", v) end) end
  if t.int32s then out[#out + 1] = packed(5, t.int32s, varint) end
  if t.ints then out[#out + 1] = packed(7, t.ints, varint) end
  if t.name then out[#out + 1] = f_bytes(8, t.name) end
  if t.raw then out[#out + 1] = f_bytes(9, t.raw) end
  if t.doubles then out[#out + 1] = packed(10, t.doubles, function(v) return string.pack("<d", v) end) end
  if t.external then   -- {location =, offset =, length =}: data_location EXTERNAL and its entries
    for _, k in ipairs { "location", "offset", "length" } do
      if t.external[k] ~= nil then out[#out + 1] = f_bytes(13, f_bytes(1, k) .. f_bytes(2, tostring(t.external[k]))) end
    end
    out[#out + 1] = f_varint(14, 1)
  end
  return finish(out, t)
end
W.encode_tensor = encode_tensor

--- W.attr{type =, f =, i =, s =, t =, floats =, ints =, strings =, tensors =, extra =}: an
--- attribute written with exactly these fields (type may be absent or any number)
function W.attr(t) return setmetatable(t, AttrMT) end
function W.ints(list) return setmetatable({ kind = "ints", list }, ListMT) end
function W.floats(list) return setmetatable({ kind = "floats", list }, ListMT) end
function W.strings(list) return setmetatable({ kind = "strings", list }, ListMT) end

-- the explicit fields of an attribute value
local function attr_fields(v)
  local mt = getmetatable(v)
  if mt == AttrMT then return v end
  if mt == TensorMT then return { type = W.AT.TENSOR, t = v } end
  if mt == ListMT then
    local k = v.kind
    return { type = W.AT[k:upper()], [k] = v[1] }
  end
  if math.type(v) == "integer" then return { type = W.AT.INT, i = v } end
  if type(v) == "number" then return { type = W.AT.FLOAT, f = v } end
  if type(v) == "string" then return { type = W.AT.STRING, s = v } end
  if type(v) == "table" then
    local kind = "ints"
    for _, x in ipairs(v) do
      if type(x) == "string" then kind = "strings"; break end
      if math.type(x) == "float" then kind = "floats" end
    end
    return { type = W.AT[kind:upper()], [kind] = v }
  end
  error("onnx_writer: cannot encode an attribute of type " .. type(v), 3)
end

local function encode_attr(name, v)
  local a = attr_fields(v)
  local out = { f_bytes(1, a.name or name) }
  if a.f then out[#out + 1] = f_float(2, a.f) end
  if a.i then out[#out + 1] = f_varint(3, a.i) end
  if a.s then out[#out + 1] = f_bytes(4, a.s) end
  if a.t then out[#out + 1] = f_bytes(5, encode_tensor(a.t)) end
  if a.floats then each(7, a.floats, f_float, out) end
  if a.ints then each(8, a.ints, f_varint, out) end
  if a.strings then each(9, a.strings, f_bytes, out) end
  if a.tensors then
    for _, t in ipairs(a.tensors) do out[#out + 1] = f_bytes(10, encode_tensor(t)) end
  end
  if a.type then out[#out + 1] = f_varint(20, a.type) end
  return finish(out, a)
end

-- attributes in a stable order: a list of {name, value}, or a map sorted by name
local function attr_list(attrs)
  if attrs == nil then return {} end
  if attrs[1] ~= nil then return attrs end
  local names = {}
  for k in pairs(attrs) do names[#names + 1] = k end
  table.sort(names)
  local list = {}
  for i, k in ipairs(names) do list[i] = { k, attrs[k] } end
  return list
end

--- node: {op =, name =, inputs = {...}, outputs = {...}, attrs = {name = value} or
--- {{name, value}, ...}, domain =, extra =}
local function encode_node(n)
  local out = {}
  each(1, n.inputs or {}, f_bytes, out)
  each(2, n.outputs or {}, f_bytes, out)
  if n.name then out[#out + 1] = f_bytes(3, n.name) end
  if n.op then out[#out + 1] = f_bytes(4, n.op) end
  for _, a in ipairs(attr_list(n.attrs)) do out[#out + 1] = f_bytes(5, encode_attr(a[1], a[2])) end
  if n.domain then out[#out + 1] = f_bytes(7, n.domain) end
  return finish(out, n)
end
W.encode_node = encode_node

-- value info: "x", {"x"}, {"x", {1, 3, "N"}}, or {name =, shape =, elem_type =}
local function encode_value_info(v)
  if type(v) == "string" then v = { v } end
  local name, shape = v.name or v[1], v.shape or v[2]
  local out = { f_bytes(1, name) }
  local tt = { f_varint(1, v.elem_type or W.FLOAT) }
  if shape then
    local dims = {}
    for _, d in ipairs(shape) do
      dims[#dims + 1] = f_bytes(1, type(d) == "string" and f_bytes(2, d) or f_varint(1, d))
    end
    tt[#tt + 1] = f_bytes(2, table.concat(dims))
  end
  out[#out + 1] = f_bytes(2, f_bytes(1, table.concat(tt)))
  return finish(out, v)
end

local function encode_graph(g)
  local out = {}
  for _, n in ipairs(g.nodes or {}) do out[#out + 1] = f_bytes(1, encode_node(n)) end
  out[#out + 1] = f_bytes(2, g.graph_name or "g")
  for _, t in ipairs(g.initializers or {}) do out[#out + 1] = f_bytes(5, encode_tensor(t)) end
  for _, v in ipairs(g.inputs or {}) do out[#out + 1] = f_bytes(11, encode_value_info(v)) end
  for _, v in ipairs(g.outputs or {}) do out[#out + 1] = f_bytes(12, encode_value_info(v)) end
  if g.graph_extra then out[#out + 1] = g.graph_extra end
  return table.concat(out)
end

--- W.model{opset = 13 | opsets = {{domain, version}, ...}, ir_version = 8, inputs =,
--- outputs =, nodes =, initializers =, graph_extra =, extra =} -> the file's bytes
function W.model(m)
  local out = { f_varint(1, m.ir_version or 8) }
  out[#out + 1] = f_bytes(7, encode_graph(m))
  local opsets = m.opsets or { { "", m.opset or 13 } }
  for _, o in ipairs(opsets) do
    local parts = {}
    if o[1] then parts[#parts + 1] = f_bytes(1, o[1]) end
    if o[2] then parts[#parts + 1] = f_varint(2, o[2]) end
    out[#out + 1] = f_bytes(8, table.concat(parts))
  end
  return finish(out, m)
end

--- W.write(path, model) writes W.model(model) to path; W.file(model) to a new temporary
--- file, whose path it returns
function W.write(path, m)
  local bytes = type(m) == "string" and m or W.model(m)   -- first: a bad model leaves no file
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

function W.file(m)
  local bytes = type(m) == "string" and m or W.model(m)
  return W.write(os.tmpname(), bytes)
end

return W

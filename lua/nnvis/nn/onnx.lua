-- nnvis.nn.onnx — ONNX models as nnvis modules (nv.onnx.load).
--
--   local model = assert(nv.onnx.load("resnet18.onnx"))     -- nil, message on a bad file
--   local logits = model(x)                                  -- graph inputs in order
--   local cam = nv.cam.gradcam(model, x, {layer = "layer4"}) -- PyTorch's module names
--
-- The graph runs on nnvis's ops and autograd (lua/nnvis/nn/onnx_ops.lua, one function per
-- op_type).  Every node is a sub-module named by its ONNX node name (or its first output's),
-- and node names that carry PyTorch's scope paths (/layer4/layer4.1/conv1/Conv, as
-- torch.onnx.export writes them) rebuild the module tree: layer4, layer4.1 and layer4.1.conv1
-- are modules whose output is the last value computed inside them, so forward hooks, and so
-- nv.summary, nv.diagram, nv.capture, nv.cam and nv.maximize, see what they see on a native
-- model.  named_modules() runs in execution order: a scope when its first node runs, each
-- node under its ONNX name.  Float initializers are parameters under their ONNX names
-- (BatchNormalization's statistics are buffers); state_dict() and load_state_dict() use
-- those names.  A loaded model is in eval mode; model:train() makes BatchNormalization use
-- batch statistics and Dropout drop.
-- Every node is checked against its op's declaration (lua/nnvis/nn/onnx_schema.lua) as the file
-- loads: a missing input, an attribute of the wrong type or out of range, an unsupported mode
-- give nil, "onnx.load: <file>: node X (Op): ...", and a loaded model's errors name their node.
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local nn = require "nnvis.nn"
local class = require "nnvis.tensor.class"
local ops = require "nnvis.nn.onnx_ops"
local schema = require "nnvis.nn.onnx_schema"

local is_tensor = require("nnvis.tensor.util").is_tensor
local ints = ops.ints

local M = {}
M.ops = ops

-- ONNX's default domain versions nnvis runs
local MIN_OPSET, MAX_OPSET = 7, 18

-- the deepest scope tree a node name builds (PyTorch's run to a dozen levels); the rest of a
-- deeper name stays in the node's own name
local MAX_SCOPE_DEPTH = 64

------------------------------------------------------------------------------------------------
-- a node: one module per ONNX node
------------------------------------------------------------------------------------------------
local Node = class("OnnxNode", nn.Module)
M.Node = Node

-- decl: the node's declaration (nnvis.onnx_schema), which check_inputs reads at run time
function Node:init(desc, opset, impl, decl)
  rawset(self, "kind", desc.op_type)
  rawset(self, "node", { name = desc.name, op_type = desc.op_type, attrs = desc.attrs, opset = opset,
                          inputs = desc.inputs, outputs = desc.outputs, training = false, decl = decl })
  rawset(self, "impl", impl)
end

local function run(impl, n, ins)
  ops.check_inputs(n, ins)
  local outs = impl(n, ins)
  ops.check_outputs(n, outs)
  return outs
end

-- forward(x1, x2, ...): the node's inputs in order; one output, or a list for several.  An
-- error from inside the op that does not name the node yet is made to.
function Node:forward(...)
  local n = rawget(self, "node")
  n.training = rawget(self, "training")
  local ok, outs = pcall(run, self.impl, n, table.pack(...))
  if not ok then
    local err = outs
    if type(err) == "string" and not err:find("node " .. n.name .. " (" .. n.op_type .. ")", 1, true) then
      -- nnvis's own error (a shape mismatch in add, matmul, ...): the node, not nnvis's line
      err = string.format("onnx model: node %s (%s): %s", n.name, n.op_type, (err:gsub("^[^\n]-%.lua:%d+: ", "")))
    end
    error(err, 0)
  end
  if #n.outputs <= 1 then return outs[1] end
  return outs
end

function Node:repr()
  return string.format("%s (%s)", self.kind, rawget(self, "node").name)
end

------------------------------------------------------------------------------------------------
-- a scope: a PyTorch module rebuilt from node names; called by the executor after its last
-- node, with the value that entered it and its output, so its hooks fire like a module's
------------------------------------------------------------------------------------------------
local Scope = class("OnnxScope", nn.Module)
M.Scope = Scope

function Scope:init(path) rawset(self, "path", path) end
function Scope:forward(_, out) return out end
function Scope:repr() return "Module (" .. rawget(self, "path") .. ")" end

------------------------------------------------------------------------------------------------
-- the model
------------------------------------------------------------------------------------------------
local Model = class("OnnxModel", nn.Module)
M.Model = Model

function Model:repr()
  local info = rawget(self, "_onnx")
  return string.format("OnnxModel (%s, opset %d, %d nodes)", info.file, info.opset, #info.nodes)
end

-- the named entries in execution order
function Model:named_modules() return require("nnvis.tensor.util").iterate(rawget(self, "_onnx").modules) end

function Model:modules()
  local out = {}
  for _, e in ipairs(rawget(self, "_onnx").modules) do out[#out + 1] = e[2] end
  return out
end

--- get(name): a node by its ONNX name, a scope by its dotted PyTorch path, or (as for any
--- module) a dotted path in the tree
function Model:get(path)
  local info = rawget(self, "_onnx")
  local m = info.by_name[path]
  if m then return m end
  return nn.Module.get(self, path)
end

-- parameters and buffers under their ONNX names live in a flat holder module
for _, name in ipairs { "named_parameters", "parameters", "named_buffers", "buffers", "state_dict" } do
  Model[name] = function(self, ...) return nn.Module[name](rawget(self, "_onnx").flat, ...) end
end
function Model:load_state_dict(sd, opts)
  local ok, a, b = pcall(nn.Module.load_state_dict, rawget(self, "_onnx").flat, sd, opts)
  if not ok then error(a, 2) end
  return a, b
end

local function first_tensor_input(info, node, env)
  for _, name in ipairs(node.inputs) do
    local v = env[name]
    if is_tensor(v) and not info.constant[name] then return v end
  end
end

--- model(x1, x2, ...): the graph's inputs in order -> its outputs in order
function Model:forward(...)
  local info = rawget(self, "_onnx")
  local args = table.pack(...)
  while args.n > 0 and args[args.n] == nil do args.n = args.n - 1 end
  if args.n ~= #info.inputs then
    error(string.format("onnx model: expected %d input%s (%s), got %d", #info.inputs, #info.inputs == 1 and "" or "s",
      table.concat(info.inputs, ", "), args.n), 3)
  end
  local env = setmetatable({}, { __index = info.values })
  for i, name in ipairs(info.inputs) do
    local v = args[i]
    if not is_tensor(v) then error(string.format("onnx model: input %d (%s) must be a tensor", i, name), 3) end
    env[name] = v
  end
  local scope_in = {}
  for _, e in ipairs(info.nodes) do
    for _, sc in ipairs(e.opens) do scope_in[sc] = first_tensor_input(info, e.desc, env) end
    local ins, nin = {}, #e.desc.inputs
    for k = 1, nin do
      local name = e.desc.inputs[k]
      if name ~= "" then ins[k] = env[name] end
    end
    local out = e.module(table.unpack(ins, 1, nin))
    local outs = e.desc.outputs
    if #outs == 1 then env[outs[1]] = out
    else
      for k, name in ipairs(outs) do if name ~= "" then env[name] = out[k] end end
    end
    -- scopes ending here, innermost first: their hooks may replace the value
    for _, sc in ipairs(e.closes) do
      local name = outs[1]
      env[name] = sc(scope_in[sc], env[name])
    end
  end
  local res = {}
  for i, name in ipairs(info.outputs) do res[i] = env[name] end
  return table.unpack(res, 1, #info.outputs)
end

------------------------------------------------------------------------------------------------
-- loading
------------------------------------------------------------------------------------------------
local function fail(fmt, ...) error(string.format("onnx.load: " .. fmt, ...), 0) end

-- the part of s after its last sep (a pattern for one character), or all of s.  Anchored:
-- an unanchored "[^/]*$" costs O(n^2) on a long name without the separator near its end.
local function last_part(s, sep) return s:match("^.*" .. sep .. "(.*)$") or s end

-- a name already used in parent: a child, a method, or one of the module's own fields
local function taken(parent, name)
  return rawget(parent, name) ~= nil or rawget(parent, "_kinds")[name] ~= nil or getmetatable(parent)[name] ~= nil
end

-- a child name nnvis accepts: no dots, not a method's or field's name; unique within the
-- parent (suffixes _2, _3, ... counted on per parent and name in `counters`, so n equal names
-- cost n steps, not n^2)
local function child_name(parent, want, counters)
  local name = want:gsub("%.", "_")
  if name == "" then name = "node" end
  if not taken(parent, name) then return name end
  local per = counters[parent]
  if not per then per = {}; counters[parent] = per end
  local k, cand = per[name] or 1, nil
  repeat
    k = k + 1
    cand = name .. "_" .. k
  until not taken(parent, cand)
  per[name] = k
  return cand
end

-- the pieces of a string joined, kept joined
local function joined(pieces)
  if #pieces > 1 then
    local s = table.concat(pieces)
    for i = #pieces, 2, -1 do pieces[i] = nil end
    pieces[1] = s
  end
  return pieces[1] or ""
end

-- the scope path of a node name /a/a.0/conv1/Conv -> {"a", "a.0", "a.0.conv1"}, or {} when
-- the name carries none.  A segment that extends its parent's path (a.0 under a) is a full
-- path already; any other is relative (conv1 under a.0).  At most MAX_SCOPE_DEPTH paths.
--- scope_paths(name): the PyTorch scope path of an ONNX node name, e.g. {"a", "a.0", "a.0.conv1"}
local function scope_paths(name)
  if name:sub(1, 1) ~= "/" then return {} end
  local segs = {}
  for seg in name:gmatch("[^/]+") do segs[#segs + 1] = seg end
  -- the full path so far, as pieces joined on demand (a name of n segments costs O(its
  -- length), not O(n^2)); acc: its dotted parts joined, the last path returned
  local prev, prev_len, acc, paths = {}, 0, "", {}
  for i = 1, #segs - 1 do
    local seg = segs[i]
    local rest
    -- the length test first: joining the pieces costs at most #seg
    if prev_len > 0 and #seg > prev_len and seg:byte(prev_len + 1) == 46 and seg:sub(1, prev_len) == joined(prev) then
      rest = seg:sub(prev_len + 2)         -- a full path extending the previous one
      prev, prev_len = { seg }, #seg
    else
      rest = seg                           -- relative to the previous one
      if prev_len > 0 then prev[#prev + 1] = "."; prev_len = prev_len + 1 end
      prev[#prev + 1] = seg
      prev_len = prev_len + #seg
    end
    -- every dotted prefix is a module too (features.0.0 needs features and features.0); those
    -- of the previous path are in paths already
    for part in rest:gmatch("[^.]+") do
      if #paths == MAX_SCOPE_DEPTH then return paths end
      acc = acc == "" and part or acc .. "." .. part
      paths[#paths + 1] = acc
    end
  end
  return paths
end
M.scope_paths = scope_paths

-- the element count of a shape (in floats: file-given sizes cannot wrap)
local function count(shape)
  local n = 1.0
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- what the checks need of a value known at load (a tensor, or a shape value or decoded
-- integer tensor): {kind = "float" | "ints", shape = {...}}
local function known_value(v)
  if is_tensor(v) then return { kind = "float", shape = v:shape() } end
  return { kind = "ints", shape = v.shape }
end

-- the same of a Constant node's output, from its (checked) attributes
local function known_constant(at)
  if at.value ~= nil then return known_value(at.value) end
  if at.value_float then return { kind = "float", shape = {} } end
  if at.value_floats then return { kind = "float", shape = { #at.value_floats } } end
  if at.value_int then return { kind = "ints", shape = {} } end
  return { kind = "ints", shape = { #at.value_ints } }
end

local function build(desc, path, opts)
  local opset = desc.opsets[""]
  if not opset then fail("%s: the model imports no default-domain (ai.onnx) opset", path) end
  if opset < MIN_OPSET then
    -- ONNX Runtime, too, runs opset 7 and newer only (its docs/Versioning.md)
    fail("%s: opset %d is older than opset %d, the oldest nnvis runs (ONNX Runtime, too, supports opset %d and"
      .. " newer only); convert the model with onnx.version_converter.convert_version(model, %d)", path, opset,
      MIN_OPSET, MIN_OPSET, MIN_OPSET)
  end
  if opset > MAX_OPSET then
    fail("%s: opset %d is not supported (nnvis runs opsets %d to %d)", path, opset, MIN_OPSET, MAX_OPSET)
  end
  local model = Model()
  local flat = nn.Module()
  rawset(flat, "kind", "OnnxModel")
  local info = { file = last_part(path, "/"), opset = opset, nodes = {}, modules = { { "", model } },
                 by_name = {}, values = {}, constant = {}, flat = flat }
  rawset(model, "_onnx", info)

  -- initializers: float ones used as data become parameters (or buffers), the rest constants
  local inits = {}
  for _, e in ipairs(desc.initializers) do
    if e.name == "" then fail("%s: an initializer has no name", path) end
    inits[e.name] = e.value
  end
  -- PyTorch's exporter keeps one copy of parameters with equal values (every LayerNorm's ones)
  -- and makes the others Identity nodes of it: they become their own parameters again, under
  -- their own names, so layers own their weights and counts match the PyTorch model
  local kept = {}
  for _, n in ipairs(desc.nodes) do
    local src, dst = n.inputs[1], n.outputs[1]
    if n.op_type == "Identity" and #n.inputs == 1 and #n.outputs == 1 and is_tensor(inits[src]) and dst ~= ""
       and inits[dst] == nil then
      local copy = inits[src]:clone()
      inits[dst] = copy
      desc.initializers[#desc.initializers + 1] = { name = dst, value = copy }
    else
      kept[#kept + 1] = n
    end
  end
  desc.nodes = kept
  local use = {}   -- name -> "param" | "buffer" | "static"
  for _, n in ipairs(desc.nodes) do
    local static, buffers = ops.static_inputs[n.op_type] or {}, ops.buffer_inputs[n.op_type] or {}
    for k, name in ipairs(n.inputs) do
      if inits[name] ~= nil then
        local u = static[k] and "static" or buffers[k] and "buffer" or "param"
        local was = use[name]
        if was == nil or was == "static" or (was == "buffer" and u == "param") then use[name] = u end
      end
    end
  end
  local order, kinds = rawget(flat, "_order"), rawget(flat, "_kinds")
  for _, e in ipairs(desc.initializers) do
    local v = e.value
    if is_tensor(v) then
      local u = use[e.name]
      if u == "param" or u == "buffer" then
        if u == "param" then v:set_requires_grad(true) end
        if kinds[e.name] == nil then order[#order + 1] = e.name end
        kinds[e.name] = u
        rawset(flat, e.name, v)
      else
        info.constant[e.name] = true
      end
      info.values[e.name] = v
    else
      local n = count(v.shape)
      if n > ints.MAX then
        fail("%s: initializer '%s' holds %.0f integers, more than the %d nnvis keeps as a shape value", path, e.name, n,
          ints.MAX)
      end
      info.values[e.name] = ints.from_desc(v)
      info.constant[e.name] = true
    end
  end
  -- what is known at load of the values nodes read: {kind = "float" | "ints", shape = {...}}
  local known = {}
  for name, v in pairs(info.values) do known[name] = known_value(v) end

  -- graph inputs not fed by initializers, in graph order
  info.inputs = {}
  for _, v in ipairs(desc.inputs) do
    if inits[v.name] == nil then info.inputs[#info.inputs + 1] = v.name end
  end
  info.outputs = {}
  for _, v in ipairs(desc.outputs) do info.outputs[#info.outputs + 1] = v.name end

  -- nodes, scopes, and the tree
  local scopes, scope_list, defined = {}, {}, {}
  for _, name in ipairs(info.inputs) do defined[name] = true end
  for name in pairs(inits) do defined[name] = true end
  local seen_names, next_suffix, counters, last = {}, {}, {}, {}
  for i, n in ipairs(desc.nodes) do
    if n.domain ~= "" and n.domain ~= "ai.onnx" then
      fail("node %s (%s, domain %s) is not supported", n.name, n.op_type, n.domain)
    end
    local impl = ops[n.op_type]
    if type(impl) ~= "function" or n.op_type:sub(1, 1):match("%l") or not schema.decl[n.op_type] then
      fail("node %s (%s, opset %d) is not supported", n.name ~= "" and n.name or (n.outputs[1] or "?"), n.op_type, opset)
    end
    for k, v in pairs(n.attrs) do
      if type(v) == "table" and v.unsupported_attribute_type then
        fail("node %s (%s, opset %d): attribute %s of type %d is not supported", n.name, n.op_type, opset, k,
          v.unsupported_attribute_type)
      end
    end
    -- arity, input kinds and attributes against the op's declaration; the op sees the
    -- declared attributes only
    local shown = n.name ~= "" and n.name or (n.outputs[1] or "?")
    local decl, attrs = schema.check_node(n, opset, known)
    if not decl then fail("%s: node %s (%s): %s", path, shown, n.op_type, attrs) end
    n.attrs = attrs
    if n.op_type == "Constant" then
      if attrs.value ~= nil then attrs.value = ops.const_value(attrs.value) end
      local kv = known_constant(attrs)
      if kv.kind == "ints" and count(kv.shape) > ints.MAX then
        fail("%s: node %s (Constant) holds %.0f integers, more than the %d nnvis keeps as a shape value", path, shown,
          count(kv.shape), ints.MAX)
      end
      known[n.outputs[1]] = kv
    else
      for _, name in ipairs(n.outputs) do known[name] = nil end
    end
    for k, name in ipairs(n.inputs) do
      if name ~= "" and not defined[name] then
        fail("%s: node %s (%s) reads '%s' before any node computes it (input %d)", path, n.name, n.op_type, name, k)
      end
    end
    if #n.outputs == 0 then fail("%s: node %s (%s) has no outputs", path, n.name, n.op_type) end
    for _, name in ipairs(n.outputs) do if name ~= "" then defined[name] = true end end
    local name = n.name ~= "" and n.name or n.outputs[1]
    if seen_names[name] then
      -- the next free suffix, counted on from the last one given to this name
      local base, k = name, next_suffix[name] or 1
      repeat
        k = k + 1
        name = base .. "_" .. k
      until not seen_names[name]
      next_suffix[base] = k
    end
    seen_names[name] = true
    n.name = name
    local module = Node(n, opset, impl, decl)
    -- its scopes
    local parent, opens = model, {}
    for _, p in ipairs(scope_paths(name)) do
      local sc = scopes[p]
      if not sc then
        sc = Scope(p)
        local local_name = child_name(parent, last_part(p, "%."), counters)
        parent:add_module(local_name, sc)
        rawset(sc, "tree_path", parent == model and local_name or rawget(parent, "tree_path") .. "." .. local_name)
        scopes[p] = sc
        scope_list[#scope_list + 1] = p
        info.modules[#info.modules + 1] = { p, sc }
        if not info.by_name[p] then info.by_name[p] = sc end
        opens[#opens + 1] = sc
      end
      last[sc] = i
      parent = sc
    end
    local local_name = child_name(parent, last_part(name, "/"), counters)
    parent:add_module(local_name, module)
    rawset(module, "tree_path", parent == model and local_name or rawget(parent, "tree_path") .. "." .. local_name)
    -- parameters under their roles, for per-layer counts
    local roles = ops.input_roles[n.op_type] or {}
    for k, iname in ipairs(n.inputs) do
      local kind = rawget(flat, "_kinds")[iname]
      if kind then
        local role = roles[k] or ("input" .. k)
        if kind == "param" then module:register_parameter(role, rawget(flat, iname))
        else module:register_buffer(role, rawget(flat, iname)) end
      end
    end
    info.modules[#info.modules + 1] = { name, module }
    info.by_name[name] = module
    info.nodes[i] = { desc = n, module = module, opens = opens, closes = {} }
  end
  -- each scope closes after its last node; several closing at one node go innermost first
  for _, p in ipairs(scope_list) do
    local sc = scopes[p]
    local closes = info.nodes[last[sc]].closes
    closes[#closes + 1] = sc
  end
  for _, e in ipairs(info.nodes) do
    table.sort(e.closes, function(a, b) return #rawget(a, "path") > #rawget(b, "path") end)
  end
  for _, name in ipairs(info.outputs) do
    if not defined[name] then fail("%s: graph output '%s' is never computed", path, name) end
  end
  if #info.outputs == 0 then fail("%s: the graph has no outputs", path) end
  model:train(opts and opts.train or false)
  return model
end

--- nv.onnx.load(path [, {train = false}]) -> module, or nil, message for a missing, broken,
--- hostile or unsupported file
function M.load(path, opts)
  opts = check_opts("onnx.load", opts, { "train" })
  if type(path) ~= "string" then error("onnx.load: path must be a string, got " .. type(path), 2) end
  local desc, err = core.onnx_read(path)
  if not desc then return nil, err end
  local ok, model = pcall(build, desc, path, opts)
  if not ok then
    local msg = tostring(model)
    if not msg:find("^onnx") then msg = "onnx.load: " .. path .. ": " .. msg end
    return nil, msg
  end
  return model
end

return M

-- nnvis.nn — layers and containers in the manner of torch/nn and torch.nn (nv.nn).
--
--   local nn = nv.nn
--   local net = nn.Sequential { nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(), nn.Flatten(), nn.Linear(8*28*28, 10) }
--   local y = net(nv.randn(4, 1, 28, 28))          -- (4, 10)
--   for name, p in net:named_parameters() do print(name, p:size(1)) end   -- "0.weight", "0.bias", ...
--
-- A module of your own needs only `init` and `forward`:
--
--   local Residual = nv.class("Residual", nn.Module)
--   function Residual:init(c) self.conv = nn.Conv2d(c, c, 3, {padding = 1}); self.relu = nn.ReLU() end
--   function Residual:forward(x) return self.relu(self.conv(x) + x) end
--
-- Assigning a module to a field registers it as a child, in assignment order; assigning a leaf
-- tensor that requires grad registers it as a parameter (or call register_parameter /
-- register_buffer).  Names, order and the state dict's keys are PyTorch's, so a state dict
-- exported from PyTorch for the same architecture loads unchanged.
-- Shapes: N batch, C channels, H height, W width, D features.  Dims are 1-based (Flatten's
-- default start_dim = 2 is PyTorch's start_dim = 1: keep the batch dim).
local core = require "nnvis.core"
local check_opts = require("nnvis.util").check_opts
local F = require "nnvis.functional"
local class = require "nnvis.class"

local nn = {}

local is_tensor, shape_str = require("nnvis.util").is_tensor, require("nnvis.util").shape_str

local no_grad = core.no_grad

-- a hyperparameter with a height and a width: n or {h, w} -> {h, w}
local function pair(fname, what, v, min)
  if type(v) == "number" then v = { v, v } end
  if type(v) ~= "table" or #v ~= 2 or math.type(v[1]) ~= "integer" or math.type(v[2]) ~= "integer"
      or v[1] < min or v[2] < min then
    error(string.format("%s: %s must be an integer >= %d or a pair {h, w} of them", fname, what, min), 3)
  end
  return { v[1], v[2] }
end

local function check_int(fname, what, v, min)
  if math.type(v) ~= "integer" or v < min then
    error(string.format("%s: %s must be an integer >= %d, got %s", fname, what, min, tostring(v)), 3)
  end
  return v
end

local function copy_value(v)
  if type(v) ~= "table" or is_tensor(v) then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy_value(x) end
  return c
end

------------------------------------------------------------------------------------------------
-- Initializers: nn.init.kaiming_uniform{a = math.sqrt(5)} etc. return a function
-- (shape, fan_in, fan_out) -> new tensor, so a layer fills its parameters in one allocation;
-- the `_` forms (nn.init.normal_(t, mean, std)) overwrite an existing tensor in place.
------------------------------------------------------------------------------------------------
local init = {}
nn.init = init

local function gain(nonlinearity, a)
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "leaky_relu" then a = a or 0.01; return math.sqrt(2 / (1 + a * a)) end
  if nonlinearity == "tanh" then return 5 / 3 end
  return 1   -- linear, sigmoid, conv
end
init.gain = gain

local function uniform_new(shape, lo, hi)
  local t = core.rand(shape)             -- U[0, 1)
  t:mul_(hi - lo)
  if lo ~= 0 then t:add_(lo) end
  return t
end

local function normal_new(shape, mean, std)
  local t = core.randn(shape)
  t:mul_(std)
  if mean ~= 0 then t:add_(mean) end
  return t
end

function init.uniform(lo, hi) return function(shape) return uniform_new(shape, lo, hi) end end
function init.normal(mean, std) return function(shape) return normal_new(shape, mean or 0, std or 1) end end
function init.constant(v) return function(shape) return core.full(shape, v) end end
function init.zeros() return function(shape) return core.zeros(shape) end end
function init.ones() return function(shape) return core.ones(shape) end end

--- Kaiming (He et al. 2015) uniform: U(-b, b), b = gain * sqrt(3 / fan); PyTorch's default for
--- Conv2d and Linear weights is a = sqrt(5), which gives b = 1 / sqrt(fan_in).
function init.kaiming_uniform(opts)
  opts = check_opts("init.kaiming_uniform", opts, { "a", "mode", "nonlinearity" })
  return function(shape, fan_in, fan_out)
    local fan = opts.mode == "fan_out" and fan_out or fan_in
    local b = gain(opts.nonlinearity or "leaky_relu", opts.a or 0) * math.sqrt(3 / fan)
    return uniform_new(shape, -b, b)
  end
end

--- Kaiming normal: N(0, std^2), std = gain / sqrt(fan) (torchvision's conv init: fan_out, relu)
function init.kaiming_normal(opts)
  opts = check_opts("init.kaiming_normal", opts, { "a", "mode", "nonlinearity" })
  return function(shape, fan_in, fan_out)
    local fan = opts.mode == "fan_out" and fan_out or fan_in
    return normal_new(shape, 0, gain(opts.nonlinearity or "leaky_relu", opts.a or 0) / math.sqrt(fan))
  end
end

--- Glorot and Bengio 2010: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
function init.xavier_uniform(opts)
  opts = check_opts("init.xavier_uniform", opts, { "gain" })
  return function(shape, fan_in, fan_out)
    local b = (opts.gain or 1) * math.sqrt(6 / (fan_in + fan_out))
    return uniform_new(shape, -b, b)
  end
end

-- in-place forms for parameters that exist already
local function overwrite(t, maker)
  local fan_in, fan_out = init.fans(t)
  no_grad(function() t:copy(maker(t:shape(), fan_in, fan_out)) end)
  return t
end
function init.uniform_(t, lo, hi) return overwrite(t, init.uniform(lo or 0, hi or 1)) end
function init.normal_(t, mean, std) return overwrite(t, init.normal(mean or 0, std or 1)) end
function init.constant_(t, v) no_grad(function() t:fill(v) end); return t end
function init.zeros_(t) return init.constant_(t, 0) end
function init.ones_(t) return init.constant_(t, 1) end
function init.kaiming_uniform_(t, opts) return overwrite(t, init.kaiming_uniform(opts)) end
function init.kaiming_normal_(t, opts) return overwrite(t, init.kaiming_normal(opts)) end
function init.xavier_uniform_(t, opts) return overwrite(t, init.xavier_uniform(opts)) end

--- fan_in, fan_out of a weight (out, in, k...) as PyTorch computes them
function init.fans(t)
  local s = is_tensor(t) and t:shape() or t
  if #s < 2 then return s[1] or 1, s[1] or 1 end
  local rf = 1
  for i = 3, #s do rf = rf * s[i] end
  return s[2] * rf, s[1] * rf
end

-- a new parameter: maker(shape, fan_in, fan_out), or zeros when maker is false
local function make_param(maker, shape, fan_in, fan_out)
  local t = maker and maker(shape, fan_in, fan_out) or core.zeros(shape)
  return t:set_requires_grad(true)
end

------------------------------------------------------------------------------------------------
-- Module: the base of every layer and model
------------------------------------------------------------------------------------------------
local Module = class("Module")
nn.Module = Module

-- Every instance carries, as raw fields: _order (registered names in definition order),
-- _kinds (name -> "module" | "param" | "buffer" | "buffer_np"), _hooks and _pre_hooks (lists of
-- {fn = f}), training, kind (the class name).  Values themselves are plain fields: self.weight.
function Module.__alloc(cls)
  local obj = setmetatable({}, cls)
  rawset(obj, "_order", {})
  rawset(obj, "_kinds", {})
  rawset(obj, "_hooks", {})
  rawset(obj, "_pre_hooks", {})
  rawset(obj, "training", true)
  rawset(obj, "kind", rawget(cls, "__name"))
  return obj
end

--- Module:init(...): a subclass's constructor (layers, parameters); the base does nothing
function Module:init() end

local function register(self, name, kind)
  local kinds = rawget(self, "_kinds")
  if kinds[name] == nil then
    local order = rawget(self, "_order")
    order[#order + 1] = name
  end
  kinds[name] = kind
end

-- new fields: modules become children, leaf tensors that require grad become parameters
function Module.__newindex(self, k, v)
  if type(k) == "string" then
    local kinds = rawget(self, "_kinds")
    if class.isinstance(v, Module) then
      register(self, k, "module")
    elseif is_tensor(v) then
      local was = kinds[k]
      if was == "buffer" or was == "buffer_np" or was == "param" then
        -- keeps its role
      elseif v.requires_grad and v.is_leaf then
        register(self, k, "param")
      end
    end
  end
  rawset(self, k, v)
end

local function check_name(self, fname, name)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(string.format("%s: name must be a non-empty string without '.', got %s", fname, tostring(name)), 3)
  end
  local existing = getmetatable(self)[name]
  if existing ~= nil and rawget(self, "_kinds")[name] == nil then
    error(string.format("%s: '%s' would hide the method %s.%s", fname, name, self.kind, name), 3)
  end
end

--- Registers t (a leaf tensor, or nil for an absent parameter such as a missing bias) as a
--- parameter; it is made to require grad.
function Module:register_parameter(name, t)
  check_name(self, "register_parameter", name)
  if t ~= nil then
    if not is_tensor(t) then error("register_parameter: '" .. name .. "' must be a tensor or nil", 2) end
    if not t.is_leaf then
      error("register_parameter: '" .. name .. "' must be a leaf tensor (use t:detach())", 2)
    end
    if not t.requires_grad then t:set_requires_grad(true) end
  end
  register(self, name, "param")
  rawset(self, name, t)
  return t
end

--- Registers a tensor that is part of the state but not trained (running statistics);
--- opts.persistent = false keeps it out of the state dict.
function Module:register_buffer(name, t, opts)
  opts = check_opts("register_buffer", opts, { "persistent" })
  check_name(self, "register_buffer", name)
  if t ~= nil and not is_tensor(t) then error("register_buffer: '" .. name .. "' must be a tensor or nil", 2) end
  register(self, name, (opts and opts.persistent == false) and "buffer_np" or "buffer")
  rawset(self, name, t)
  return t
end

--- Adds a child module under name (PyTorch's add_module / register_module).
function Module:add_module(name, m)
  check_name(self, "add_module", name)
  if m ~= nil and not class.isinstance(m, Module) then
    error(string.format("add_module: '%s' must be a module, got %s", name, type(m)), 2)
  end
  register(self, name, "module")
  rawset(self, name, m)
  return m
end
Module.register_module = Module.add_module
Module.register = Module.add_module

-- (name, value) of the registered entries of one kind, in definition order
local function own(self, want)
  local out = {}
  local kinds = rawget(self, "_kinds")
  for _, name in ipairs(rawget(self, "_order")) do
    local kind = kinds[name]
    local v = rawget(self, name)
    if v ~= nil and (kind == want or (want == "buffer" and kind == "buffer_np")) then
      if kind == "module" then
        if class.isinstance(v, Module) then out[#out + 1] = { name, v } end
      elseif is_tensor(v) then
        out[#out + 1] = { name, v, kind }
      end
    end
  end
  return out
end

local iterate = require("nnvis.util").iterate

local function join(prefix, name) return prefix == "" and name or prefix .. "." .. name end

-- {path, module} of the module tree in pre-order, each module once
local function module_list(self)
  local out, seen = {}, {}
  local function walk(m, path)
    if seen[m] then return end
    seen[m] = true
    out[#out + 1] = { path, m }
    for _, e in ipairs(own(m, "module")) do walk(e[2], join(path, e[1])) end
  end
  walk(self, "")
  return out
end

-- {path, tensor} of parameters or buffers, each module's own first, each tensor once;
-- opts.recurse = false: the module's own only
local function tensor_list(self, kind, opts)
  local out, seen = {}, {}
  local mods = (opts and opts.recurse == false) and { { "", self } } or module_list(self)
  for _, me in ipairs(mods) do
    for _, e in ipairs(own(me[2], kind)) do
      if not seen[e[2]] then
        seen[e[2]] = true
        out[#out + 1] = { join(me[1], e[1]), e[2] }
      end
    end
  end
  return out
end

--- for path, m in model:named_modules() — the root is "" (each module once, pre-order)
function Module:named_modules() return iterate(module_list(self)) end
--- for name, m in model:named_children() — the direct children
function Module:named_children() return iterate(own(self, "module")) end
--- array of the direct children
function Module:children()
  local out = {}
  for _, e in ipairs(own(self, "module")) do out[#out + 1] = e[2] end
  return out
end
--- array of every module, the root first
function Module:modules()
  local out = {}
  for _, e in ipairs(module_list(self)) do out[#out + 1] = e[2] end
  return out
end
--- for name, p in model:named_parameters() — dotted paths in definition order, shared ones once;
--- {recurse = false}: only the module's own (as PyTorch's recurse=False)
function Module:named_parameters(opts) return iterate(tensor_list(self, "param", opts)) end
--- for name, b in model:named_buffers() — buffers (running statistics) by dotted path
function Module:named_buffers(opts) return iterate(tensor_list(self, "buffer", opts)) end
--- array of the parameter tensors, definition order, shared ones once
function Module:parameters(opts)
  local out = {}
  for _, e in ipairs(tensor_list(self, "param", opts)) do out[#out + 1] = e[2] end
  return out
end
--- array of the buffer tensors (running statistics), definition order
function Module:buffers(opts)
  local out = {}
  for _, e in ipairs(tensor_list(self, "buffer", opts)) do out[#out + 1] = e[2] end
  return out
end

--- number of parameter elements (opts.trainable: only those that require grad)
function Module:num_parameters(opts)
  opts = check_opts("num_parameters", opts, { "trainable" })
  local n = 0
  for _, p in ipairs(self:parameters()) do
    if not (opts and opts.trainable) or p.requires_grad then n = n + p:numel() end
  end
  return n
end

--- sub-module (or parameter / buffer) by dotted path: model:get("layer1.0.conv1"); with a
--- number, the i-th child module, 1-based (seq:get(1) is the child named "0", as seq[1])
function Module:get(path)
  if type(path) == "number" then
    -- a number is a 1-based position among the children, never a name ("0", "1", ...)
    local kids = own(self, "module")
    local i = math.tointeger(path)
    if not i or i < 1 or i > #kids then
      error(string.format("get: %s has %d child module%s, no position %s (a number is a 1-based position; " ..
        "a string is a name)", self.kind, #kids, #kids == 1 and "" or "s", tostring(path)), 2)
    end
    return kids[i][2]
  end
  if type(path) ~= "string" then error("get: path must be a string, got " .. type(path), 2) end
  if path == "" then return self end
  local cur, walked = self, ""
  for part in (path .. "."):gmatch("([^.]*)%.") do
    local kind = class.isinstance(cur, Module) and rawget(cur, "_kinds")[part]
    local v = kind and rawget(cur, part)
    if v == nil and walked == "" and rawget(self, "_aliases") and rawget(self, "_aliases")[path] then
      return self:get(rawget(self, "_aliases")[path])
    end
    if v == nil then
      if walked == "" then error(string.format("get: %s has no '%s'", self.kind, path), 2) end
      error(string.format("get: %s has no '%s' ('%s' has no '%s')", self.kind, path, walked, part), 2)
    end
    cur, walked = v, join(walked, part)
  end
  return cur
end

--- alias(name, path): another name for the sub-module at path (Keras' "block5_conv3" for
--- VGG's "features.29"): get, nv.capture, nv.cam and nv.maximize accept it; returns self
function Module:alias(name, path)
  if type(name) ~= "string" or type(path) ~= "string" then error("alias: name and path must be strings", 2) end
  local al = rawget(self, "_aliases")
  if not al then al = {}; rawset(self, "_aliases", al) end
  al[name] = path
  return self
end

--- apply(fn): fn(m) on every module, children before parents (as PyTorch); returns self
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

--- train([mode = true]) / eval(): sets `training` on the whole tree; returns self
function Module:train(mode)
  if mode == nil then mode = true end
  for _, e in ipairs(module_list(self)) do rawset(e[2], "training", mode and true or false) end
  return self
end
--- eval mode (Dropout off, BatchNorm on its running statistics); returns self
function Module:eval() return self:train(false) end

--- clears the .grad of every parameter
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
  return self
end

--- sets requires_grad on every parameter (false freezes the model); returns self
function Module:requires_grad_(b)
  if b == nil then b = true end
  for _, p in ipairs(self:parameters()) do p:set_requires_grad(b) end
  return self
end

--- Module:forward(x, ...): what a subclass computes; the base says what to define
function Module:forward()
  error(self.kind .. ": the module has no forward; define " .. self.kind .. ":forward(x)", 2)
end

--- A hook handle (what register_forward_hook returns): h:remove(), or
--- `local h <close> = m:register_forward_hook(f)` to remove it at the end of the scope.
local HookHandle = class("HookHandle")
nn.HookHandle = HookHandle
function HookHandle:init(list, entry) self.list, self.entry = list, entry end
function HookHandle:remove()
  local list = self.list
  for i = #list, 1, -1 do
    if list[i] == self.entry then table.remove(list, i) end
  end
  self.entry.removed = true
end
HookHandle.__close = HookHandle.remove
function HookHandle.__tostring(h) return h.entry.removed and "HookHandle (removed)" or "HookHandle" end

local function check_fn(fname, fn)
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (mt and mt.__call) then
    error(fname .. ": expected a function, got " .. type(fn), 3)
  end
end

--- fn(module, input, output) runs after every forward; a non-nil return replaces the output
function Module:register_forward_hook(fn)
  check_fn("register_forward_hook", fn)
  local list, entry = rawget(self, "_hooks"), { fn = fn }
  list[#list + 1] = entry
  return HookHandle(list, entry)
end

--- fn(module, input) runs before every forward; a non-nil return replaces the input
function Module:register_forward_pre_hook(fn)
  check_fn("register_forward_pre_hook", fn)
  local list, entry = rawget(self, "_pre_hooks"), { fn = fn }
  list[#list + 1] = entry
  return HookHandle(list, entry)
end

local function snapshot(list)
  local c = {}
  for i = 1, #list do c[i] = list[i] end
  return c
end

-- Errors inside a forward name the module where they happened.  The innermost module that
-- sees a string error records itself (outer ones see the same message and keep it); the
-- outermost call then finds that module's path in its tree and raises
-- "features.3 (Linear): <message>" plus a hint for common mistakes.  Errors raised by hooks,
-- and error values that are not strings (maximize's STOP sentinel), pass through unchanged.
local failed = { msg = nil, module = nil }   -- the innermost module of the error in flight
local depth = 0

local function shape_of(x) return is_tensor(x) and table.concat(x:shape(), "x") or nil end

-- a hint for the usual mistakes, from the message and the model's input
local function hint(msg, m, root_input)
  local xin = shape_of(root_input)
  if msg:find("expected a 4%-d %(N,C,H,W%) input, got %(%d+,%d+,%d+%)") then
    return " — add the batch dimension with x:unsqueeze(1)"
  end
  if msg:find("has %d+ features, weight %(") and xin then
    return " — the input is " .. xin .. "; check that it has the size the model was built for"
  end
  if msg:find("expects %d+ input channels") and xin then
    return " — the input is " .. xin .. "; check its number of channels"
  end
  return ""
end

local function module_path(root, m)
  for path, sub in root:named_modules() do
    if sub == m then return require("nnvis.util").tree_path(path, sub) end
  end
end

local function on_error(self, err, x)
  if type(err) ~= "string" then return err end
  if failed.msg ~= err then failed.msg, failed.module = err, self end
  if depth > 0 then return err end
  local m = failed.module
  failed.msg, failed.module = nil, nil
  if m == false or m == self or m == nil then return err end   -- a hook's error, or the root's own
  local path = module_path(self, m)
  if not path then return err end
  -- the position inside nnvis that raised says nothing to the user: it goes, and the error is
  -- raised at the user's line instead (finish)
  err = err:gsub("^[^\n]-/lua/nnvis/[%w_]+%.lua:%d+: ", "")
  return string.format("%s (%s): %s%s", path, m.kind, err, hint(err, m, x)), true
end

local function finish(self, x, ok, ...)
  depth = depth - 1
  if ok then return ... end
  local msg, named = on_error(self, (...), x)
  -- a model the user called: raised at the user's line; one nnvis called (a CAM, a capture)
  -- as it is, for that caller to put in its own words
  if named and not require("nnvis.util").called_from_nnvis(2) then require("nnvis.util").raise(msg) end
  error(msg, 0)
end

local function run_hook(fn, ...)
  local ok, r = pcall(fn, ...)
  if not ok then
    if type(r) == "string" then failed.msg, failed.module = r, false end   -- keep it as it is
    error(r, 0)
  end
  return r
end

local function call(self, x, ...)
  local pre, post = rawget(self, "_pre_hooks"), rawget(self, "_hooks")
  if pre[1] == nil and post[1] == nil then return self:forward(x, ...) end
  for _, h in ipairs(snapshot(pre)) do
    if not h.removed then
      local r = run_hook(h.fn, self, x)
      if r ~= nil then x = r end
    end
  end
  local out = self:forward(x, ...)
  for _, h in ipairs(snapshot(post)) do
    if not h.removed then
      local r = run_hook(h.fn, self, x, out)
      if r ~= nil then out = r end
    end
  end
  return out
end

--- m(x, ...) = m:forward(x, ...) with the hooks around it; an error inside names the
--- module's path and type: "features.3 (Linear): linear: input (1,8192) has ..."
function Module.__call(self, x, ...)
  depth = depth + 1
  return finish(self, x, pcall(call, self, x, ...))
end

--- hyperparameters as a table (like Keras get_config); each layer lists its own
function Module:config() return {} end

--- one-line description; containers add their children below it.  The default is the kind,
--- and the instance's `name` string if it has one: "ResNet (resnet18)".
function Module:repr()
  local name = rawget(self, "name")
  return type(name) == "string" and self.kind .. " (" .. name .. ")" or self.kind
end

function Module.__tostring(self)
  local children = own(self, "module")
  local head = self:repr()
  if #children == 0 then return head end
  local lines = { head .. " {" }
  for _, e in ipairs(children) do
    lines[#lines + 1] = "  (" .. e[1] .. "): " .. tostring(e[2]):gsub("\n", "\n  ")
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

-- {key, tensor} of the state in PyTorch's order: each module's parameters, its persistent
-- buffers, then its children (shared modules appear under every name, as in PyTorch)
local function state_list(self)
  local out = {}
  local function walk(m, prefix, depth)
    if depth > 100 then error("state_dict: the module tree has a cycle", 4) end
    for _, e in ipairs(own(m, "param")) do out[#out + 1] = { join(prefix, e[1]), e[2] } end
    for _, e in ipairs(own(m, "buffer")) do
      if e[3] ~= "buffer_np" then out[#out + 1] = { join(prefix, e[1]), e[2] } end
    end
    for _, e in ipairs(own(m, "module")) do walk(e[2], join(prefix, e[1]), depth + 1) end
  end
  walk(self, "", 0)
  return out
end

--- table key -> tensor (detached, sharing storage with the module's), and the keys in order
function Module:state_dict()
  local sd, keys = {}, {}
  for _, e in ipairs(state_list(self)) do
    sd[e[1]] = e[2]:detach()
    keys[#keys + 1] = e[1]
  end
  return sd, keys
end

-- same shape, or both a single element (PyTorch's num_batches_tracked is 0-dimensional)
local function shapes_agree(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa == #sb then
    for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
    return true
  end
  return #sa <= 1 and #sb <= 1 and a:numel() == 1 and b:numel() == 1
end

local function list_str(names)
  local max = 20
  if #names <= max then return table.concat(names, ", ") end
  return table.concat(names, ", ", 1, max) .. string.format(" and %d more", #names - max)
end

--- Copies the tensors of sd into the module.  strict (default): every key must match, else one
--- error lists the missing keys, the unexpected keys and the shape mismatches; nothing is
--- copied then.  strict = false: returns the missing and the unexpected keys (mismatched
--- shapes still raise).
function Module:load_state_dict(sd, opts)
  opts = check_opts("load_state_dict", opts, { "strict" })
  if type(sd) ~= "table" or is_tensor(sd) then
    error("load_state_dict: expected a table of name -> tensor, got " .. type(sd), 2)
  end
  local strict = not (opts and opts.strict == false)
  local list = state_list(self)
  local mine = {}
  local missing, unexpected, mismatched = {}, {}, {}
  for _, e in ipairs(list) do
    local k, t = e[1], e[2]
    mine[k] = t
    local src = sd[k]
    if src == nil then
      missing[#missing + 1] = k
    elseif not is_tensor(src) then
      error(string.format("load_state_dict: '%s' must be a tensor, got %s", k, type(src)), 2)
    elseif not shapes_agree(t, src) then
      mismatched[#mismatched + 1] = string.format("%s is %s in the model, %s in the state dict",
        k, shape_str(t), shape_str(src))
    end
  end
  for k in pairs(sd) do
    if mine[tostring(k)] == nil or type(k) ~= "string" then unexpected[#unexpected + 1] = tostring(k) end
  end
  table.sort(unexpected)
  if #mismatched > 0 or (strict and (#missing > 0 or #unexpected > 0)) then
    local parts = {}
    if strict and #missing > 0 then parts[#parts + 1] = "missing keys: " .. list_str(missing) end
    if strict and #unexpected > 0 then parts[#parts + 1] = "unexpected keys: " .. list_str(unexpected) end
    if #mismatched > 0 then parts[#parts + 1] = "shape mismatch: " .. list_str(mismatched) end
    error(string.format("load_state_dict: cannot load into %s: %s", self.kind, table.concat(parts, "; ")), 2)
  end
  no_grad(function()
    for _, e in ipairs(list) do
      local src, t = sd[e[1]], e[2]
      if src ~= nil then
        if t:dim() == src:dim() then t:copy(src) else t:fill(src:item()) end
      end
    end
  end)
  return missing, unexpected
end

--- writes the state dict as safetensors; true (raises, naming the path, when it cannot)
function Module:save(path, meta)
  return require("nnvis.io").save_safetensors((self:state_dict()), path, meta)
end

local checkpoint_keys = { "state_dict", "model", "model_state_dict" }

-- the state dict inside what torch.save wrote: the object itself when all its values are
-- tensors, else the table under one of the usual checkpoint keys
local function state_dict_of(obj, path)
  if type(obj) ~= "table" then
    error(string.format("load: %s holds a %s, not a state dict", path, type(obj)), 3)
  end
  local all_tensors, keys = next(obj) ~= nil, {}
  for k, v in pairs(obj) do
    keys[#keys + 1] = tostring(k)
    if not is_tensor(v) then all_tensors = false end
  end
  if all_tensors then return obj end
  for _, k in ipairs(checkpoint_keys) do
    if type(obj[k]) == "table" and not is_tensor(obj[k]) then return obj[k] end
  end
  table.sort(keys)
  error(string.format("load: %s is not a state dict and has none under %s; its keys are: %s", path,
    table.concat(checkpoint_keys, ", "), list_str(keys)), 3)
end

--- Reads weights into the module from safetensors or from what torch.save wrote (.pth, .pt,
--- .bin; told apart by their bytes): a state dict, or a checkpoint holding one under
--- state_dict, model or model_state_dict.  Returns self, missing, unexpected (see
--- load_state_dict); raises on any failure, naming the file.
function Module:load(path, opts)
  opts = check_opts("load", opts, { "strict" })
  if type(path) ~= "string" then error("load: path must be a string, got " .. type(path), 2) end
  local pth = require "nnvis.pth"
  local kind, err = pth.sniff(path)
  if not kind then error("load: " .. err, 2) end
  local sd
  if kind == "safetensors" then
    sd, err = require("nnvis.io").load_safetensors(path)
    if not sd then error("load: " .. err, 2) end
  else
    local obj
    obj, err = pth.load(path)
    if obj == nil then error("load: " .. (err or (path .. " holds None")):gsub("^load_pth: ", ""), 2) end
    sd = state_dict_of(obj, path)
  end
  local ok, missing, unexpected = pcall(self.load_state_dict, self, sd, opts)
  if not ok then
    error(string.format("load: %s: %s", path, tostring(missing):gsub("^load_state_dict: ", "")), 2)
  end
  return self, missing, unexpected
end

------------------------------------------------------------------------------------------------
-- Containers
------------------------------------------------------------------------------------------------

--- nn.Sequential{a, b, c} (or nn.Sequential(a, b, c)): children "0", "1", ... applied in order
local Sequential = class("Sequential", Module)
nn.Sequential = Sequential

function Sequential:init(first, ...)
  local list = first
  if first == nil or class.isinstance(first, Module) then list = { first, ... } end
  if type(list) ~= "table" then error("Sequential: expected a list of modules, got " .. type(list), 3) end
  for i = 1, #list do
    if not class.isinstance(list[i], Module) then
      error(string.format("Sequential: element %d is not a module (got %s)", i, type(list[i])), 3)
    end
    self:add(list[i])
  end
end

--- appends a module, named name or the next index ("0", "1", ...); returns the container
function Sequential:add(m, name)
  if not class.isinstance(m, Module) then error("Sequential.add: expected a module, got " .. type(m), 2) end
  name = name ~= nil and tostring(name) or tostring(#self)
  if rawget(self, "_kinds")[name] ~= nil and rawget(self, name) ~= nil then
    error("Sequential.add: a child named '" .. name .. "' exists already", 2)
  end
  check_name(self, "Sequential.add", name)
  register(self, name, "module")
  rawset(self, name, m)
  return self
end
Sequential.append = Sequential.add

function Sequential.__len(self) return #own(self, "module") end

-- seq[i]: the i-th module, 1-based, as #seq counts them (children are named "0", "1", ...)
function Sequential.__index(self, k)
  if math.type(k) == "integer" then
    local e = own(self, "module")[k]
    return e and e[2]
  end
  return getmetatable(self)[k]
end

-- ---- inference fusion: in eval mode without gradients, a Conv2d followed by a BatchNorm2d
-- runs as one convolution with the BatchNorm folded into its weights and bias (W' = W s,
-- b' = b s + t, s = gamma / sqrt(var + eps), t = beta - mean s), and a ReLU right after it
-- is applied by the convolution to its fresh output.  Only modules with no hooks are fused,
-- so a hooked or captured layer keeps its own output.  The folded weights are cached on the
-- conv and recomputed when any of the tensors they come from is changed or replaced.
local function unhooked(m)
  return #rawget(m, "_hooks") == 0 and #rawget(m, "_pre_hooks") == 0
end

-- the cache is valid while the same tensors are there, unchanged since
local function fold_valid(cache, src)
  if not cache then return false end
  for i = 1, 6 do
    local t = src[i]
    if not rawequal(cache.src[i], t) then return false end
    if t and cache.ver[i] ~= core.storage_version(t) then return false end
  end
  return true
end

local function folded(conv, bn)
  local w, b = conv.weight, conv.bias
  local src = { w, b or false, bn.weight or false, bn.bias or false, bn.running_mean, bn.running_var }
  local cache = rawget(conv, "_folded")
  if fold_valid(cache, src) then return cache.w, cache.b end
  local s = (bn.running_var + bn.eps):rsqrt()
  if bn.weight then s = s * bn.weight end
  local t = -bn.running_mean * s
  if bn.bias then t = t + bn.bias end
  local fw = (w * s:view(-1, 1, 1, 1)):contiguous()
  local fb = (b and (b * s + t) or t):contiguous()
  local ver = {}
  for i = 1, 6 do ver[i] = src[i] and core.storage_version(src[i]) or 0 end
  rawset(conv, "_folded", { src = src, ver = ver, w = fw, b = fb })
  return fw, fb
end

local function fusable_bn(m, cout)
  return m and m.kind == "BatchNorm2d" and unhooked(m) and not m.training and m.track_running_stats
    and m.running_mean and m.running_mean:numel() == cout
end

local function fusable_relu(m) return m and m.kind == "ReLU" and unhooked(m) end

-- conv, then bn and relu when given, as one convolution: the output, or nil when they cannot
-- be fused (a hook, a BatchNorm in training or without running statistics, an odd input)
local function fusable(conv, bn, relu, x)
  if conv.kind ~= "Conv2d" or not unhooked(conv) or getmetatable(x) ~= core.tensor_mt or x:dim() ~= 4 then return false end
  if bn and not fusable_bn(bn, conv.out_channels) then return false end
  if relu and not fusable_relu(relu) then return false end
  return true
end

-- channels_last: the output laid out (N,H,W,C) in memory, for a convolution that reads it next
local function fuse(conv, bn, relu, x, add, channels_last)
  if not fusable(conv, bn, relu, x) or (not bn and not relu and not add) then return nil end
  local w, b = conv.weight, conv.bias
  if bn then w, b = folded(conv, bn) end
  local ok, y = pcall(core.conv2d, x, w, b, { stride = conv.stride, padding = conv.padding, dilation = conv.dilation,
    groups = conv.groups, relu = relu and true or false, add = add, channels_last = channels_last or false })
  if not ok then return nil end   -- let the modules raise their own errors
  return y
end

-- whether list[j..] reads a channels-last tensor as it is and hands on only what a
-- convolution reads: a Conv2d, or unhooked MaxPool2d layers (which keep the layout) before
-- one; past the end, `tail` (the caller's say)
local function reads_nhwc(list, j, tail)
  local m = list[j] and list[j][2]
  if not m then return tail end
  if not unhooked(m) then return false end
  if m.kind == "Conv2d" then return true end
  return m.kind == "MaxPool2d" and reads_nhwc(list, j + 1, tail)
end

-- runs list[i..] from a Conv2d: returns the output and how many modules it consumed, or nil
-- (channels_last: the caller reads a channels-last output of the last module as it is)
local function fused_conv(list, i, x, channels_last)
  local conv = list[i][2]
  if conv.kind ~= "Conv2d" then return nil end
  local nxt = list[i + 1] and list[i + 1][2]
  local bn = fusable_bn(nxt, conv.out_channels) and nxt or nil
  local after = list[i + (bn and 2 or 1)]
  local relu = after and fusable_relu(after[2]) and after[2] or nil
  local used = 1 + (bn and 1 or 0) + (relu and 1 or 0)
  -- a convolution next reads a channels-last input as it is (no reorder either side)
  local y = fuse(conv, bn, relu, x, nil, reads_nhwc(list, i + used, channels_last))
  if not y then return nil end
  return y, used
end

--- nn.conv_bn_relu(conv, bn, relu, x [, channels_last]): relu(bn(conv(x))), bn and relu
--- optional (nil), for the forward of a user module; in eval mode without gradients, with
--- none of the three hooked, it runs as one convolution with the BatchNorm folded in (like
--- a Sequential's), and channels_last = true lays that output out (N,H,W,C) in memory, which
--- the next convolution reads fastest (view() needs reshape() on it).
function nn.conv_bn_relu(conv, bn, relu, x, channels_last)
  if not conv.training and not core.is_grad_enabled() then
    local y = fuse(conv, bn, relu, x, nil, channels_last)
    if y then return y end
  end
  local y = conv(x)
  if bn then y = bn(y) end
  if relu then y = relu(y) end
  return y
end

--- nn.conv_bn_add_relu(conv, bn, relu, x, residual [, channels_last]): relu(bn(conv(x)) +
--- residual()), for a residual block's last convolution; residual is a function giving the
--- tensor to add.  In eval mode without gradients, with none of the three hooked, residual
--- runs first and the addition and the ReLU happen in the convolution's epilogue; with only
--- relu hooked, conv and bn still run as one.  bn and relu may be nil; channels_last as for
--- nn.conv_bn_relu.
function nn.conv_bn_add_relu(conv, bn, relu, x, residual, channels_last)
  if not conv.training and not core.is_grad_enabled() and fusable(conv, bn, relu, x) then
    local r = residual()
    local y = fuse(conv, bn, relu, x, r, channels_last)
    if y then return y end
    y = nn.conv_bn_relu(conv, bn, nil, x) + r
    return relu and relu(y) or y
  end
  local y = nn.conv_bn_relu(conv, bn, nil, x) + residual()
  return relu and relu(y) or y
end

--- nn._sequential_forward(seq, x, channels_last): seq's forward; with channels_last = true a
--- fused convolution at its end may leave its output (N,H,W,C) in memory, for a model's forward
--- that hands it straight to a convolution (a ResNet block's shortcut).  Internal to nnvis.
local function sequential_forward(self, x, channels_last)
  local list = own(self, "module")
  if self.training or core.is_grad_enabled() then
    for _, e in ipairs(list) do x = e[2](x) end
    return x
  end
  local i = 1
  while i <= #list do
    local y, used = fused_conv(list, i, x, channels_last)
    if y then x, i = y, i + used
    else x, i = list[i][2](x), i + 1 end
  end
  return x
end

function Sequential:forward(x) return sequential_forward(self, x, false) end

nn._sequential_forward = sequential_forward

--- ModuleList{a, b, ...}: holds modules (registered as "0", "1", ... like PyTorch) for a
--- user module's forward to use; it has no forward of its own.  list:at(i) is 1-based,
--- #list counts, ipairs-style iteration: for i, m in list:items() do
local ModuleList = class("ModuleList", Module)
nn.ModuleList = ModuleList

function ModuleList:init(list)
  list = list or {}
  if type(list) ~= "table" then error("ModuleList: expected a list of modules, got " .. type(list), 3) end
  for i = 1, #list do
    if not class.isinstance(list[i], Module) then
      error(string.format("ModuleList: element %d is not a module (got %s)", i, type(list[i])), 3)
    end
    self:append(list[i])
  end
end
ModuleList.append = Sequential.add
ModuleList.add = Sequential.add
ModuleList.__len = Sequential.__len
ModuleList.__index = Sequential.__index

function ModuleList:at(i)
  local e = own(self, "module")[i]
  if not e then error(string.format("ModuleList: index %s is out of range 1..%d", tostring(i), #self), 2) end
  return e[2]
end

function ModuleList:items()
  local list, i = own(self, "module"), 0
  return function()
    i = i + 1
    if list[i] then return i, list[i][2] end
  end
end

function ModuleList:forward()
  error("ModuleList: a list of modules has no forward; call its modules from your module's forward", 2)
end

------------------------------------------------------------------------------------------------
-- Layers with parameters
------------------------------------------------------------------------------------------------
local function fmt_pair(p) return p[1] .. "," .. p[2] end
local function is_pair(p, v) return p[1] == v and p[2] == v end

--- Conv2d(in, out, k, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true,
--- weight_init, bias_init}); weight (out, in/groups, kh, kw)
local Conv2d = class("Conv2d", Module)
nn.Conv2d = Conv2d

function Conv2d:init(cin, cout, k, opts)
  opts = check_opts("Conv2d", opts, { "stride", "padding", "dilation", "groups", "bias", "weight_init", "bias_init" })
  self.in_channels = check_int("Conv2d", "in_channels", cin, 1)
  self.out_channels = check_int("Conv2d", "out_channels", cout, 1)
  self.kernel_size = pair("Conv2d", "kernel_size", k, 1)
  self.stride = pair("Conv2d", "stride", opts.stride or 1, 1)
  self.dilation = pair("Conv2d", "dilation", opts.dilation or 1, 1)
  local padding = opts.padding or 0
  if padding == "valid" then padding = 0
  elseif padding == "same" then   -- PyTorch's rule: stride 1 and an even total padding
    if not is_pair(self.stride, 1) then error("Conv2d: padding \"same\" needs stride 1", 2) end
    padding = {}
    for i = 1, 2 do
      local total = self.dilation[i] * (self.kernel_size[i] - 1)
      if total % 2 ~= 0 then error("Conv2d: padding \"same\" with an even kernel needs asymmetric padding", 2) end
      padding[i] = total // 2
    end
  end
  self.padding = pair("Conv2d", "padding", padding, 0)
  self.groups = check_int("Conv2d", "groups", opts.groups or 1, 1)
  if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
    error(string.format("Conv2d: in_channels %d and out_channels %d must be divisible by groups %d",
      cin, cout, self.groups), 2)
  end
  local shape = { cout, cin // self.groups, self.kernel_size[1], self.kernel_size[2] }
  local fan_in, fan_out = init.fans(shape)
  local bound = 1 / math.sqrt(fan_in)
  local winit = opts.weight_init
  if winit == nil then winit = init.uniform(-bound, bound) end   -- kaiming_uniform, a = sqrt(5)
  self:register_parameter("weight", make_param(winit, shape, fan_in, fan_out))
  if opts.bias ~= false then
    local binit = opts.bias_init
    if binit == nil then binit = init.uniform(-bound, bound) end
    self:register_parameter("bias", make_param(binit, { cout }, fan_in, fan_out))
  else
    self:register_parameter("bias", nil)
  end
end

function Conv2d:forward(x)
  return core.conv2d(x, self.weight, self.bias,
    { stride = self.stride, padding = self.padding, dilation = self.dilation, groups = self.groups })
end

function Conv2d:config()
  return { in_channels = self.in_channels, out_channels = self.out_channels,
           kernel_size = copy_value(self.kernel_size), stride = copy_value(self.stride),
           padding = copy_value(self.padding), dilation = copy_value(self.dilation),
           groups = self.groups, bias = self.bias ~= nil }
end

-- Torch7's format: Conv2d(in -> out, kh x kw[, stride][, padding]); stride shows when it or the
-- padding is not the default
function Conv2d:repr()
  local s = string.format("Conv2d(%d -> %d, %dx%d", self.in_channels, self.out_channels,
    self.kernel_size[1], self.kernel_size[2])
  if not is_pair(self.stride, 1) or not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.stride) end
  if not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.padding) end
  if not is_pair(self.dilation, 1) then s = s .. ", dilation " .. fmt_pair(self.dilation) end
  if self.groups ~= 1 then s = s .. ", groups " .. self.groups end
  s = s .. ")"
  if self.bias == nil then s = s .. " without bias" end
  return s
end

--- Linear(in, out, {bias = true, weight_init, bias_init}): y = x W^T + b, W (out, in)
local Linear = class("Linear", Module)
nn.Linear = Linear

function Linear:init(fin, fout, opts)
  opts = check_opts("Linear", opts, { "bias", "weight_init", "bias_init" })
  self.in_features = check_int("Linear", "in_features", fin, 1)
  self.out_features = check_int("Linear", "out_features", fout, 1)
  local bound = 1 / math.sqrt(fin)
  local winit = opts.weight_init
  if winit == nil then winit = init.uniform(-bound, bound) end
  self:register_parameter("weight", make_param(winit, { fout, fin }, fin, fout))
  if opts.bias ~= false then
    local binit = opts.bias_init
    if binit == nil then binit = init.uniform(-bound, bound) end
    self:register_parameter("bias", make_param(binit, { fout }, fin, fout))
  else
    self:register_parameter("bias", nil)
  end
end

function Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function Linear:config()
  return { in_features = self.in_features, out_features = self.out_features, bias = self.bias ~= nil }
end
function Linear:repr()
  return string.format("Linear(%d -> %d)%s", self.in_features, self.out_features,
    self.bias == nil and " without bias" or "")
end

-- Batch normalization (Ioffe and Szegedy 2015): y = (x - mean) / sqrt(var + eps) * weight + bias,
-- per channel (dim 2).  Training: batch statistics, and the running ones move by momentum
-- (unbiased variance); eval: the running statistics.
local BatchNorm = class("_BatchNorm", Module)
nn._BatchNorm = BatchNorm

function BatchNorm:init(c, opts)
  opts = check_opts(self.kind, opts, { "eps", "momentum", "affine", "track_running_stats" })
  self.num_features = check_int(self.kind, "num_features", c, 1)
  self.eps = opts.eps or 1e-5
  -- momentum = false is PyTorch's momentum=None: a cumulative average over the batches seen
  if opts.momentum == nil then self.momentum = 0.1 else self.momentum = opts.momentum end
  self.affine = opts.affine ~= false
  self.track_running_stats = opts.track_running_stats ~= false
  if self.affine then
    self:register_parameter("weight", core.ones(c))
    self:register_parameter("bias", core.zeros(c))
  else
    self:register_parameter("weight", nil)
    self:register_parameter("bias", nil)
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", core.zeros(c))
    self:register_buffer("running_var", core.ones(c))
    self:register_buffer("num_batches_tracked", core.zeros(1))
  else
    self:register_buffer("running_mean", nil)
    self:register_buffer("running_var", nil)
    self:register_buffer("num_batches_tracked", nil)
  end
end

function BatchNorm:forward(x)
  local d = x:dim()
  local ok = false
  for _, n in ipairs(self.input_dims) do ok = ok or d == n end
  if not ok then
    error(string.format("%s: expected %s input, got %s", self.kind, self.input_desc, shape_str(x)), 0)
  end
  if x:size(2) ~= self.num_features then
    error(string.format("%s: expected %d channels, input %s has %d", self.kind, self.num_features,
      shape_str(x), x:size(2)), 0)
  end
  local batch_stats = self.training or not self.track_running_stats
  local y = core.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
    { training = batch_stats, eps = self.eps,
      momentum = self.momentum or 1 / (self.track_running_stats and self.num_batches_tracked:item() + 1 or 1) })
  if self.training and self.track_running_stats then self.num_batches_tracked:add_(1) end
  return y
end

function BatchNorm:config()
  return { num_features = self.num_features, eps = self.eps, momentum = self.momentum,
           affine = self.affine, track_running_stats = self.track_running_stats }
end

function BatchNorm:repr()
  local s = string.format("%s(%d", self.kind, self.num_features)
  if self.eps ~= 1e-5 then s = s .. string.format(", eps=%g", self.eps) end
  if self.momentum == false then s = s .. ", momentum=cumulative"
  elseif self.momentum ~= 0.1 then s = s .. string.format(", momentum=%g", self.momentum) end
  if not self.affine then s = s .. ", affine=false" end
  if not self.track_running_stats then s = s .. ", track_running_stats=false" end
  return s .. ")"
end

--- BatchNorm2d(c, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true}) on (N,C,H,W)
local BatchNorm2d = class("BatchNorm2d", BatchNorm)
nn.BatchNorm2d = BatchNorm2d
BatchNorm2d.input_dims, BatchNorm2d.input_desc = { 4 }, "a 4-d (N,C,H,W)"

--- BatchNorm1d(c, opts) on (N,C) or (N,C,L)
local BatchNorm1d = class("BatchNorm1d", BatchNorm)
nn.BatchNorm1d = BatchNorm1d
BatchNorm1d.input_dims, BatchNorm1d.input_desc = { 2, 3 }, "a 2-d (N,C) or 3-d (N,C,L)"

------------------------------------------------------------------------------------------------
-- Layers without parameters
------------------------------------------------------------------------------------------------
-- a layer whose forward is f(x, ...hyperparameters); repr(self) gives its description
local function simple(name, forward, config, repr)
  local C = class(name, Module)
  nn[name] = C
  C.forward = forward
  if config then C.config = config end
  if repr then C.repr = repr end
  return C
end

--- ReLU(): max(x, 0) elementwise
simple("ReLU", function(_, x) return x:relu() end)
--- GELU(): x * Phi(x), the erf form, elementwise
simple("GELU", function(_, x) return x:gelu() end)
--- Sigmoid(): 1 / (1 + e^-x) elementwise
simple("Sigmoid", function(_, x) return x:sigmoid() end)
--- Tanh(): the hyperbolic tangent elementwise
simple("Tanh", function(_, x) return x:tanh() end)
--- Identity(): returns its input (a placeholder layer)
simple("Identity", function(_, x) return x end)

local LeakyReLU = simple("LeakyReLU", function(self, x) return x:leaky_relu(self.negative_slope) end,
  function(self) return { negative_slope = self.negative_slope } end,
  function(self) return string.format("LeakyReLU(%g)", self.negative_slope) end)
--- LeakyReLU(negative_slope = 0.01)
function LeakyReLU:init(slope) self.negative_slope = slope or 0.01 end

local ELU = simple("ELU", function(self, x) return x:elu(self.alpha) end,
  function(self) return { alpha = self.alpha } end,
  function(self) return string.format("ELU(alpha=%g)", self.alpha) end)
--- ELU(alpha = 1)
function ELU:init(alpha) self.alpha = alpha or 1 end

local Softmax = simple("Softmax", function(self, x) return core.softmax(x, self.dim) end,
  function(self) return { dim = self.dim } end,
  function(self) return string.format("Softmax(dim=%d)", self.dim) end)
--- Softmax(dim = -1): 1-based dim, -1 the last
function Softmax:init(d) self.dim = d or -1 end

local LogSoftmax = simple("LogSoftmax", function(self, x) return core.log_softmax(x, self.dim) end,
  function(self) return { dim = self.dim } end,
  function(self) return string.format("LogSoftmax(dim=%d)", self.dim) end)
--- LogSoftmax(dim = -1): log(softmax(x)) along a 1-based dim, -1 the last
function LogSoftmax:init(d) self.dim = d or -1 end

local Dropout = simple("Dropout", function(self, x) return F.dropout(x, self.p, self.training) end,
  function(self) return { p = self.p } end,
  function(self) return string.format("Dropout(%g)", self.p) end)
--- Dropout(p = 0.5): zeroes with probability p and scales by 1/(1-p) in training; identity in eval
function Dropout:init(p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then error("Dropout: p must be in [0, 1], got " .. tostring(p), 3) end
  self.p = p
end

--- Flatten(start_dim = 2, end_dim = -1): merges dims start_dim..end_dim (1-based; the default
--- keeps the batch dim, like PyTorch's nn.Flatten() whose start_dim = 1 is 0-based)
local Flatten = simple("Flatten", nil,
  function(self) return { start_dim = self.start_dim, end_dim = self.end_dim } end,
  function(self)
    if self.end_dim == -1 then return string.format("Flatten(start_dim=%d)", self.start_dim) end
    return string.format("Flatten(start_dim=%d, end_dim=%d)", self.start_dim, self.end_dim)
  end)
function Flatten:init(start_dim, end_dim) self.start_dim, self.end_dim = start_dim or 2, end_dim or -1 end
function Flatten:forward(x)
  local s = x:shape()
  local a, b = self.start_dim, self.end_dim
  if a < 0 then a = a + #s + 1 end
  if b < 0 then b = b + #s + 1 end
  if a < 1 or b > #s or a > b then
    error(string.format("Flatten: dims %d..%d out of range for input %s", self.start_dim, self.end_dim, shape_str(x)), 0)
  end
  local ns, n = {}, 1
  for i = 1, a - 1 do ns[#ns + 1] = s[i] end
  for i = a, b do n = n * s[i] end
  ns[#ns + 1] = n
  for i = b + 1, #s do ns[#ns + 1] = s[i] end
  return x:reshape(ns)
end

local function pool_repr(self)
  local s = string.format("%s(%dx%d, %s", self.kind, self.kernel_size[1], self.kernel_size[2], fmt_pair(self.stride))
  if not is_pair(self.padding, 0) then s = s .. ", " .. fmt_pair(self.padding) end
  if self.dilation and not is_pair(self.dilation, 1) then s = s .. ", dilation " .. fmt_pair(self.dilation) end
  if self.ceil_mode then s = s .. ", ceil_mode" end
  if self.count_include_pad == false then s = s .. ", count_include_pad=false" end
  return s .. ")"
end

local function pool_config(self)
  return { kernel_size = copy_value(self.kernel_size), stride = copy_value(self.stride),
           padding = copy_value(self.padding), dilation = copy_value(self.dilation),
           ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad }
end

--- MaxPool2d(k, {stride = k, padding = 0, dilation = 1, ceil_mode = false})
local MaxPool2d = simple("MaxPool2d", nil, pool_config, pool_repr)
function MaxPool2d:init(k, opts)
  opts = check_opts("MaxPool2d", opts, { "stride", "padding", "dilation", "ceil_mode" })
  self.kernel_size = pair("MaxPool2d", "kernel_size", k, 1)
  self.stride = pair("MaxPool2d", "stride", opts.stride or self.kernel_size, 1)
  self.padding = pair("MaxPool2d", "padding", opts.padding or 0, 0)
  self.dilation = pair("MaxPool2d", "dilation", opts.dilation or 1, 1)
  self.ceil_mode = opts.ceil_mode or false
end
function MaxPool2d:forward(x)
  return core.max_pool2d(x, self.kernel_size, { stride = self.stride, padding = self.padding,
    dilation = self.dilation, ceil_mode = self.ceil_mode })
end

--- AvgPool2d(k, {stride = k, padding = 0, ceil_mode = false, count_include_pad = true})
local AvgPool2d = simple("AvgPool2d", nil, pool_config, pool_repr)
function AvgPool2d:init(k, opts)
  opts = check_opts("AvgPool2d", opts, { "stride", "padding", "ceil_mode", "count_include_pad" })
  self.kernel_size = pair("AvgPool2d", "kernel_size", k, 1)
  self.stride = pair("AvgPool2d", "stride", opts.stride or self.kernel_size, 1)
  self.padding = pair("AvgPool2d", "padding", opts.padding or 0, 0)
  self.ceil_mode = opts.ceil_mode or false
  self.count_include_pad = opts.count_include_pad ~= false
end
function AvgPool2d:forward(x)
  return core.avg_pool2d(x, self.kernel_size, { stride = self.stride, padding = self.padding,
    ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad })
end

--- AdaptiveAvgPool2d(size): output (N, C, size[1], size[2]) whatever the input's H, W
local AdaptiveAvgPool2d = simple("AdaptiveAvgPool2d",
  function(self, x) return core.adaptive_avg_pool2d(x, self.output_size) end,
  function(self) return { output_size = copy_value(self.output_size) } end,
  function(self) return string.format("AdaptiveAvgPool2d(%dx%d)", self.output_size[1], self.output_size[2]) end)
function AdaptiveAvgPool2d:init(size) self.output_size = pair("AdaptiveAvgPool2d", "output_size", size, 1) end

nn.class = class
-- what nnvis.nn3d's layers share with these
nn._helpers = { make_param = make_param, init = init, check_int = check_int, check_opts = check_opts }
require("nnvis.nn3d")(nn)
require("nnvis.vit").layers(nn)
return nn

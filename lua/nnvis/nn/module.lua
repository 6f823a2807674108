-- nnvis.nn.module — nv.nn.Module, the base of every layer and model: children and parameters
-- registered by assignment in PyTorch's order and names, train/eval, hooks (removed by
-- handle or by `<close>`), errors that name the module where they happened, the state dict
-- and its save/load.  The layers (nnvis.nn) and containers build on it.
local check_opts = require("nnvis.tensor.util").check_opts
local class = require "nnvis.tensor.class"
local is_tensor, shape_str = require("nnvis.tensor.util").is_tensor, require("nnvis.tensor.util").shape_str
local no_grad = require("nnvis.core").no_grad
local init = require("nnvis.nn.initializers").init

local nn = {}

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

local iterate = require("nnvis.tensor.util").iterate

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

--- nn.hooks(): a group of forward hooks removed together, the way nnvis's own tools (capture,
--- summary, CAMs, ...) hook a model: `local hooks <close> = nn.hooks()`, then hooks:add(m, fn)
--- for each module; every hook goes at hooks:remove() or when the scope is left, errors too
local Hooks = class("Hooks")
nn.Hooks = Hooks
function Hooks:init() self.handles = {} end
--- hooks:add(m, fn): m:register_forward_hook(fn), kept in the group; returns the handle
function Hooks:add(m, fn)
  local h = m:register_forward_hook(fn)
  self.handles[#self.handles + 1] = h
  return h
end
--- hooks:remove(): removes every hook of the group (again: nothing)
function Hooks:remove()
  for i = #self.handles, 1, -1 do self.handles[i]:remove(); self.handles[i] = nil end
end
Hooks.__close = Hooks.remove
--- nn.hooks(): a new, empty group of forward hooks (see Hooks above)
function nn.hooks() return Hooks() end
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
    if sub == m then return require("nnvis.tensor.util").tree_path(path, sub) end
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
  err = err:gsub("^[^\n]-/lua/nnvis/[%w_/]+%.lua:%d+: ", "")
  return string.format("%s (%s): %s%s", path, m.kind, err, hint(err, m, x)), true
end

local function finish(self, x, ok, ...)
  depth = depth - 1
  if ok then return ... end
  local msg, named = on_error(self, (...), x)
  -- a model the user called: raised at the user's line; one nnvis called (a CAM, a capture)
  -- as it is, for that caller to put in its own words
  if named and not require("nnvis.tensor.util").called_from_nnvis(2) then require("nnvis.tensor.util").raise(msg) end
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
-- a tensor, or one pth.load{lazy = true} will read on demand
local function is_deferred(v) return type(v) == "table" and type(v.materialize) == "function" and type(v.shape) == "function" end
local function tensor_like(v) return is_tensor(v) or is_deferred(v) end

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
    elseif not tensor_like(src) then
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
    local read = 0
    for _, e in ipairs(list) do
      local src, t = sd[e[1]], e[2]
      if src ~= nil then
        if is_deferred(src) then
          -- read now, copied, then let go: the state dict never sits beside the model whole
          src = src:materialize()
          read = read + src:numel() * 4
        end
        if t:dim() == src:dim() then t:copy(src) else t:fill(src:item()) end
        if read >= 4 * 2 ^ 20 then src = nil; collectgarbage(); read = 0 end
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
    if not tensor_like(v) then all_tensors = false end
  end
  if all_tensors then return obj end
  for _, k in ipairs(checkpoint_keys) do
    if type(obj[k]) == "table" and not tensor_like(obj[k]) then return obj[k] end
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
  local pth = require "nnvis.io.pth"
  local kind, err = pth.sniff(path)
  if not kind then error("load: " .. err, 2) end
  local sd
  if kind == "safetensors" then
    sd, err = require("nnvis.io").load_safetensors(path)
    if not sd then error("load: " .. err, 2) end
  end
  local close = function() end
  -- each tensor read is freed once copied: its buffer, of a size seldom met again, is not
  -- worth the allocator's cache, which would otherwise keep most of the file's bytes
  local core = require "nnvis.core"
  local _, limit = core.cache_limit()
  core.cache_limit(math.min(limit, 16 * 2 ^ 20))
  -- the archive of deferred tensors closes and the cache's limit comes back when this call
  -- ends, by an error too
  local _ <close> = setmetatable({}, { __close = function() close(); core.cache_limit(limit) end })
  if kind ~= "safetensors" then
    -- deferred tensors: each is read when it is copied into the model, and dropped
    local obj, c
    obj, err, c = pth.load(path, { lazy = true })
    close = c or close
    if obj == nil then error("load: " .. (err or (path .. " holds None")):gsub("^load_pth: ", ""), 2) end
    sd = state_dict_of(obj, path)
  end
  local ok, missing, unexpected = pcall(self.load_state_dict, self, sd, opts)
  sd = nil
  collectgarbage()
  if not ok then
    error(string.format("load: %s: %s", path, tostring(missing):gsub("^load_state_dict: ", "")), 2)
  end
  return self, missing, unexpected
end

-- for the containers in nnvis.nn, which register children the same way
nn._own, nn._register, nn._check_name = own, register, check_name
return nn

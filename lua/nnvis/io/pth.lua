--- nnvis.pth — what torch.save writes, read without executing code.
--
-- Two layouts (torch/serialization.py):
--   zip (the default since PyTorch 1.6, and torchvision's weight files): <folder>/data.pkl,
--     the object pickled with each storage as a persistent id ('storage', <type>, key,
--     location, numel), and the raw little-endian bytes of storage key in <folder>/data/<key>;
--   legacy (_use_new_zipfile_serialization=False): pickles of the magic number, the protocol
--     version and sys info, then the object (persistent ids with a sixth field, the view
--     metadata), then the sorted list of storage keys, then each storage as an 8-byte element
--     count and its bytes.
-- Tensors are _rebuild_tensor_v2(storage, offset, size, stride, ...) in the pickle; each is
-- built here as a float32 copy of its view (offset and strides checked against the storage),
-- so tensors that shared a storage in PyTorch do not share one here.
--
--     local sd = assert(require("nnvis.io.pth").load("resnet18.pth"))   -- name -> tensor
local core = require "nnvis.core"
local pickle = require "nnvis.io.pickle"

local M = {}

-- storage classes torch.save names, and the dtype (safetensors spelling) of their elements
local storage_dtypes = {
  FloatStorage = "F32", HalfStorage = "F16", BFloat16Storage = "BF16", DoubleStorage = "F64",
  LongStorage = "I64", IntStorage = "I32", ShortStorage = "I16", CharStorage = "I8",
  ByteStorage = "U8", BoolStorage = "BOOL",
}

local DATA_PKL_MAX = 1 << 28     -- a pickle of tensors' metadata; real ones are kilobytes
local MAX_DIMS = 8               -- NV_MAXDIM
local MAX_DEPTH = 200            -- containers inside containers; real checkpoints nest < 10

local function fail(fmt, ...) error({ msg = fmt:format(...) }, 0) end

-- A tensor to build once the storage bytes are at hand (legacy files store them after the
-- pickle): {storage = ref, offset, size, stride}.
local Pending = {}
local function is_int_array(t, n)
  if type(t) ~= "table" then return false end
  for i = 1, n do if math.type(t[i]) ~= "integer" then return false end end
  return #t == n
end

local function rebuild(args, n)
  local st, off, size, stride = args[1], args[2], args[3], args[4]
  if type(st) ~= "table" or not st.is_storage then fail("_rebuild_tensor_v2: first argument is not a storage") end
  if math.type(off) ~= "integer" then fail("_rebuild_tensor_v2: storage offset is not an integer") end
  if type(size) ~= "table" or type(stride) ~= "table" then fail("_rebuild_tensor_v2: size or stride is not a tuple") end
  local nd = #size
  if not is_int_array(size, nd) or not is_int_array(stride, nd) then
    fail("_rebuild_tensor_v2: size and stride must be tuples of the same number of integers")
  end
  if nd > MAX_DIMS then fail("_rebuild_tensor_v2: a tensor of %d dimensions (nnvis supports 0 to %d)", nd, MAX_DIMS) end
  for i = 1, nd do
    if size[i] < 0 or stride[i] < 0 then
      fail("_rebuild_tensor_v2: size (%s) or stride (%s) has a negative entry", table.concat(size, ","), table.concat(stride, ","))
    end
  end
  return setmetatable({ storage = st, offset = off, size = size, stride = stride }, Pending)
end

local function first_arg(args)
  if getmetatable(args[1]) ~= Pending then fail("_rebuild_parameter: data is not a tensor") end
  return args[1]
end

local function marker() return { value = true } end

local TENSOR_REBUILDERS = {
  ["torch._utils._rebuild_tensor_v2"] = true, ["torch._utils._rebuild_tensor"] = true,
  ["torch._utils._rebuild_parameter"] = true, ["torch._utils._rebuild_parameter_with_state"] = true,
}

-- the only globals a pickle may name
local function whitelist()
  local g = {
    ["collections.OrderedDict"] = { call = function() return {} end },
    ["torch._utils._rebuild_tensor_v2"] = { call = rebuild },
    ["torch._utils._rebuild_tensor"] = { call = rebuild },
    ["torch._utils._rebuild_parameter"] = { call = first_arg },
    ["torch._utils._rebuild_parameter_with_state"] = { call = first_arg },
    ["torch._tensor._rebuild_from_type_v2"] = { call = function(args)
      -- (func, type, args, state): func must itself be a whitelisted rebuild function
      local f, a = args[1], args[3]
      if type(f) ~= "table" or not f.entry or not f.entry.call or type(a) ~= "table" then
        fail("_rebuild_from_type_v2: malformed arguments")
      end
      -- only a tensor's own rebuild function: naming itself would recurse without end
      if not TENSOR_REBUILDERS[f.global] then
        fail("_rebuild_from_type_v2: %s is not a tensor rebuild function", tostring(f.global))
      end
      return f.entry.call(a, #a)
    end },
    ["torch.Tensor"] = marker(),
    ["torch.nn.parameter.Parameter"] = marker(),
  }
  for name, dt in pairs(storage_dtypes) do g["torch." .. name] = { value = true, dtype = dt } end
  return g
end

-- The Pending tensors in v, each once, walking nested tables (shared ones once) without
-- recursion: a hostile pickle nests 200,000 lists in 660 bytes, or puts a list inside itself
-- (every consumer of the value would then loop), and both are refused.
local function pendings(v)
  local found, list = {}, {}
  if getmetatable(v) == Pending then return { v } end
  if type(v) ~= "table" or getmetatable(v) ~= nil then return list end
  local done, open = {}, { [v] = true }
  local stack = { { t = v, k = nil } }
  while #stack > 0 do
    local top = stack[#stack]
    local k, x = next(top.t, top.k)
    if k == nil then
      open[top.t] = nil
      done[top.t] = true
      stack[#stack] = nil
    else
      top.k = k
      if getmetatable(x) == Pending then
        if not found[x] then found[x] = true; list[#list + 1] = x end
      elseif type(x) == "table" and getmetatable(x) == nil then
        if open[x] then fail("a container holds itself (a cycle at depth %d)", #stack) end
        if not done[x] then
          if #stack >= MAX_DEPTH then fail("containers nested deeper than %d levels", MAX_DEPTH) end
          open[x] = true
          stack[#stack + 1] = { t = x, k = nil }
        end
      end
    end
  end
  return list
end

-- Replaces every Pending in v by its tensor (built[p]); v is acyclic and shallow (pendings).
local function resolve(v, built, seen)
  if getmetatable(v) == Pending then return built[v] end
  if type(v) == "table" and getmetatable(v) == nil and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      if type(x) == "table" then v[k] = resolve(x, built, seen) end
    end
  end
  return v
end

-- Elements of its storage that a view reaches (offset + sum (size-1) stride + 1; 0 when
-- empty), in floating point so hostile sizes cannot wrap; and its element count.
local function reach(p)
  local last, n = p.offset + 0.0, 1.0
  for i = 1, #p.size do
    n = n * p.size[i]
    last = last + (p.size[i] - 1.0) * p.stride[i]
  end
  if n == 0 then return 0, 0 end
  return last + 1, n
end

-- A tensor not read yet (pth.load with lazy = true): its shape, and :materialize() reads its
-- storage's bytes and builds it.  A storage's bytes are dropped once its last view is built,
-- so a state dict copied into a model one tensor at a time never holds more than one storage
-- beside the model.
local Deferred = {}
Deferred.__index = Deferred
M.Deferred = Deferred
function Deferred:shape() return self.size end
function Deferred:dim() return #self.size end
function Deferred:numel()
  local n = 1
  for _, s in ipairs(self.size) do n = n * s end
  return n
end
function Deferred:materialize() return self.build() end
--- is_deferred(v): whether v is a tensor pth.load{lazy = true} has not read yet
function M.is_deferred(v) return getmetatable(v) == Deferred end

-- Builds every pending tensor of obj; bytes_of(storage, elements needed) -> its bytes.
-- Sizes are checked against the storages and nv.config's max_alloc before anything is read.
-- With drop(storage), deferred tensors are made instead, which build on demand and call
-- drop once every view of their storage is built.
local function build_all(obj, bytes_of, drop)
  local list = pendings(obj)
  local max_alloc = core.config().max_alloc
  local need = {}
  for _, p in ipairs(list) do
    local st = p.storage
    local r, n = reach(p)
    if n * 4 > max_alloc then
      fail("a tensor of size (%s) needs %.0f bytes, more than max_alloc (%d; nv.config{max_alloc = ...})",
        table.concat(p.size, ","), n * 4, max_alloc)
    end
    if r > st.numel then
      fail("storage %s: view of size (%s) at offset %d reaches element %.0f of a storage of %d %s elements (stride (%s))",
        st.key, table.concat(p.size, ","), p.offset, r - 1, st.numel, st.dtype, table.concat(p.stride, ","))
    end
    need[st] = math.max(need[st] or 0, math.tointeger(r) or 0)
  end
  local built = {}
  local left = {}     -- storage -> views not built yet (deferred)
  for _, p in ipairs(list) do left[p.storage] = (left[p.storage] or 0) + 1 end
  for _, p in ipairs(list) do
    local st = p.storage
    local function build()
      local b = bytes_of(st, need[st])
      local t, err = core.tensor_from_bytes(b, st.dtype, p.offset, p.size, p.stride, "storage " .. st.key)
      if not t then fail("%s", err) end
      return t
    end
    if drop then
      -- the tensor is not kept here (the caller holds it as long as it needs it); a second
      -- materialize reads it again
      local counted = false
      built[p] = setmetatable({ size = p.size, build = function()
        local t = build()
        if not counted then
          counted = true
          left[st] = left[st] - 1
          if left[st] == 0 then drop(st) end
        end
        return t
      end }, Deferred)
    else
      built[p] = build()
    end
  end
  return resolve(obj, built, {})
end

-- persistent id -> storage reference {is_storage, key, dtype, numel}, one per key
local function storage_loader(refs, fields)
  return function(pid)
    if type(pid) ~= "table" or pid[1] ~= "storage" then fail("unknown persistent id (not a storage)") end
    local ty, key, numel = pid[2], pid[3], pid[5]
    if type(ty) ~= "table" or not (ty.entry and ty.entry.dtype) then fail("storage of an unknown type") end
    if type(key) ~= "string" or not key:match("^[%w_]+$") then fail("storage key is not a plain name") end
    if math.type(numel) ~= "integer" or numel < 0 then fail("storage %s: element count is not an integer", key) end
    local es = core.dtype_size(ty.entry.dtype)
    if numel > core.config().max_alloc // es then
      fail("storage %s: %d %s elements are more than max_alloc (%d bytes; nv.config{max_alloc = ...})", key, numel,
        ty.entry.dtype, core.config().max_alloc)
    end
    if fields == 6 and pid[6] ~= nil then fail("storage %s: old-style view metadata is not supported", key) end
    local r = refs[key]
    if r and (r.dtype ~= ty.entry.dtype or r.numel ~= numel) then
      fail("storage %s is named with two types or sizes", key)
    end
    if not r then
      r = { is_storage = true, key = key, dtype = ty.entry.dtype, numel = numel }
      refs[key] = r
    end
    return r
  end
end

local function load_zip(path, lazy)
  local z, err = core.zip_open(path)
  if not z then fail("%s", err) end
  local prefix
  for _, name in ipairs(z:names()) do
    local p = name:match("^([^/]+)/data%.pkl$")
    if p then
      if prefix then fail("%s: the archive holds two pickles (%s/ and %s/)", path, prefix, p) end
      prefix = p
    end
  end
  if not prefix then
    z:close()
    fail("%s: a zip archive without <folder>/data.pkl (not written by torch.save)", path)
  end
  local order = z:read(prefix .. "/byteorder", 64)
  if order and order ~= "little" then fail("%s: byte order %q is not supported", path, order) end
  local pkl, perr = z:read(prefix .. "/data.pkl", DATA_PKL_MAX)
  if not pkl then fail("%s", perr) end
  local refs = {}
  local obj, e = pickle.load(pkl, 1, { globals = whitelist(), persistent_load = storage_loader(refs, 5) })
  if obj == nil and type(e) == "string" then z:close(); fail("%s", e) end
  local cache = {}
  local function bytes_of(st, elems)
    local b = cache[st.key]
    if b then return b end
    local es = core.dtype_size(st.dtype)
    local want = st.numel * es      -- storage_loader capped numel by max_alloc: no wrap
    local rerr
    -- only the bytes its views reach: a storage larger than its tensors is not inflated whole
    b, rerr = z:read(prefix .. "/data/" .. st.key, want, elems * es)
    if not b then fail("%s", rerr) end
    cache[st.key] = b
    return b
  end
  if lazy then
    -- the archive stays open for the deferred tensors: the returned close() closes it
    local ok, res = pcall(build_all, obj, bytes_of, function(st) cache[st.key] = nil end)
    if not ok then z:close(); error(res, 0) end
    return res, function() z:close() end
  end
  local ok, res = pcall(build_all, obj, bytes_of)
  z:close()
  if not ok then error(res, 0) end
  return res
end

-- 0x1950a86a20f9469cfc6c, little-endian: what torch.save's legacy format starts with
local MAGIC = string.char(0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19)

local function load_legacy(path)
  local f, err = io.open(path, "rb")
  if not f then fail("%s", err) end
  local size = f:seek("end")
  if size > core.config().max_alloc then
    f:close()
    fail("%s: a legacy file of %d bytes is read whole, more than max_alloc (%d; nv.config{max_alloc = ...})", path,
      size, core.config().max_alloc)
  end
  f:seek("set")
  local data = f:read("a")
  f:close()
  local pos = 1
  local function next_pickle(what, opts)
    local v, p = pickle.load(data, pos, opts)
    if v == nil and type(p) == "string" then fail("%s: %s: %s", path, what, p) end
    pos = p
    return v
  end
  local magic = next_pickle("magic number")
  if getmetatable(magic) ~= pickle.BigInt or magic.bytes ~= MAGIC then
    fail("%s: not a torch.save file (wrong magic number)", path)
  end
  local proto = next_pickle("protocol version")
  if proto ~= 1001 then fail("%s: legacy protocol version %s is not supported", path, tostring(proto)) end
  local info = next_pickle("sys info")
  if type(info) ~= "table" or info.little_endian == false then
    fail("%s: written on a big-endian machine, which is not supported", path)
  end
  local refs = {}
  local obj = next_pickle("object", { globals = whitelist(), persistent_load = storage_loader(refs, 6) })
  local keys = next_pickle("storage keys")
  if type(keys) ~= "table" then fail("%s: storage keys are not a list", path) end
  local bytes = {}
  for _, key in ipairs(keys) do
    local r = refs[key]
    if type(key) ~= "string" or not r then fail("%s: storage %s is listed but not used", path, tostring(key)) end
    if pos + 7 > #data then fail("%s: truncated before the size of storage %s", path, key) end
    local n = string.unpack("<i8", data, pos)
    pos = pos + 8
    local es = core.dtype_size(r.dtype)
    if n ~= r.numel then
      fail("%s: storage %s holds %d elements, its tensors were saved with %d", path, key, n, r.numel)
    end
    if n < 0 or n > (#data - pos + 1) // es then
      fail("%s: truncated: storage %s needs %d bytes, %d left", path, key, n * es, #data - pos + 1)
    end
    bytes[key] = data:sub(pos, pos + n * es - 1)
    pos = pos + n * es
  end
  return build_all(obj, function(st)
    local b = bytes[st.key]
    if not b then fail("%s: storage %s has no data in the file", path, st.key) end
    return b
  end)
end

--- What torch.save wrote at path, as Lua values (see nnvis.pickle); tensors are float32.
--- Returns the value, or nil, "load_pth: ..." on a file it cannot or will not read.  With
--- opts.lazy (zip archives), tensors are deferred (pth.is_deferred; :shape(), :materialize())
--- and a third result closes the archive once they are read: a state dict copied into a
--- model tensor by tensor then costs one storage beside the model, not a second model.
function M.load(path, opts)
  if type(path) ~= "string" then error("load_pth: path must be a string, got " .. type(path), 2) end
  local lazy = opts ~= nil and opts.lazy
  local ok, res, closer = pcall(function()
    local f, err = io.open(path, "rb")
    if not f then fail("%s", err) end
    local head = f:read(4) or ""
    f:close()
    if head:sub(1, 4) == "PK\3\4" then return load_zip(path, lazy) end
    if head:sub(1, 3) == "\128\2\138" then return load_legacy(path) end
    fail("%s: not a file written by torch.save (neither a zip archive nor a legacy pickle)", path)
  end)
  if ok then
    if lazy then return res, nil, closer or function() end end
    return res
  end
  if type(res) == "table" and res.msg then
    if res.msg:match("refuses global") then
      return nil, "load_pth: " .. res.msg:match("refuses global [^ ]+") ..
        " (only tensors and plain containers are read)"
    end
    return nil, "load_pth: " .. res.msg
  end
  error(res, 0)
end

--- "pth" (zip or legacy torch.save), "safetensors", or nil, message: told apart by the bytes
function M.sniff(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local head = f:read(9) or ""
  f:close()
  if head:sub(1, 4) == "PK\3\4" or head:sub(1, 3) == "\128\2\138" then return "pth" end
  if #head == 9 and head:sub(9, 9) == "{" then return "safetensors" end
  return nil, path .. ": neither safetensors nor a torch.save file"
end

return M

-- fuzz/api_fuzz.lua — random calls of the public Lua API: every function of nnvis.core,
-- every tensor method and the nn layers' constructors, with random tensors (0-4 dims, sizes
-- 0-5, views), numbers at the edges (NaN, +-inf, 1e300, 2^31, 2^32+1, maxinteger...), strings,
-- tables and option tables with the keys nnvis reads set to such values, each call in pcall.
-- A crash or sanitizer report ends the process (`make fuzz` runs this under ASan+UBSan); a
-- call that takes over 2 s is reported as a hang and fails the run.  Memory is capped with
-- nv.config{max_alloc}.  Usage: lua5.4 fuzz/api_fuzz.lua [--seconds S] [--calls N] [--seed K]
local nv = require "nnvis"
local core = nv.core

local seconds, maxcalls, seed = 60, math.huge, os.time()
for i = 1, #arg do
  if arg[i] == "--seconds" then seconds = tonumber(arg[i + 1]) end
  if arg[i] == "--calls" then maxcalls = tonumber(arg[i + 1]) end
  if arg[i] == "--seed" then seed = tonumber(arg[i + 1]) end
end
math.randomseed(seed)
nv.manual_seed(seed)
nv.config { max_alloc = 256 << 20 }

local R = math.random
local nums = { 0, 1, -1, 2, 3, 0.5, -0.5, 1e300, -1e300, 0 / 0, 1 / 0, -1 / 0, 2 ^ 31, 2 ^ 31 - 1,
  math.tointeger(2 ^ 31 - 1), 2 ^ 32 + 1, math.tointeger(2 ^ 32 + 1), math.maxinteger, math.mininteger,
  2 ^ 53, 1e-30, 7, 64, -2147483648 }
local keys = { "stride", "padding", "dilation", "groups", "ceil_mode", "count_include_pad", "size",
  "scale_factor", "mode", "align_corners", "value", "training", "momentum", "eps", "requires_grad",
  "keepdim", "retain_graph", "grad", "bias", "kernel", "output_size", "dim" }

local function rtensor()
  local nd = R(0, 4)
  local size = {}
  for i = 1, nd do size[i] = R(0, 5) == 0 and 0 or R(1, 5) end
  local t = nd == 0 and nv.tensor(R() * 4 - 2) or nv.randn(size)
  local k = R(1, 8)
  if k == 1 and nd >= 2 then t = t:transpose(1, 2) end
  if k == 2 then t = t:set_requires_grad(true) end
  if k == 3 and nd >= 1 and t:size(1) > 1 then t = t:narrow(1, 2, t:size(1) - 1) end
  if k == 4 and nd == 1 then t = t:unsqueeze(1):expand(3, t:size(1)) end
  return t
end

local value
local function ropts()
  local o = {}
  for _ = 1, R(0, 4) do o[keys[R(#keys)]] = value(1) end
  return o
end

function value(depth)
  local k = R(1, 14)
  if k <= 4 then return rtensor() end
  if k <= 8 then return nums[R(#nums)] end
  if k == 9 then return nil end
  if k == 10 then return ({ "nearest", "bilinear", "reflect", "x", "", "same", "valid" })[R(7)] end
  if k == 11 then return { nums[R(#nums)], nums[R(#nums)] } end
  if k == 12 and depth < 1 then return ropts() end
  if k == 13 then return { rtensor(), rtensor() } end
  return R(0, 1) == 1
end

-- what a fuzzer must not call: writers (a number coerces to a file name), process-wide settings,
-- what reaches the network or makes folders (spec/weights_spec.lua covers them on loopback)
local skip = { _memcpy_seconds = true, png_save = true, safetensors_save = true, jpeg_save = true,
  config = true, cache_limit = true, set_grad_enabled = true, set_guided_relu = true,
  manual_seed = true, set_rng_state = true, isatty = true, backward_counts = true,
  http_get = true, mkdirs = true }
local targets = {}
for k, v in pairs(core) do
  if type(v) == "function" and not skip[k] and not k:match("save") and not k:match("write") then
    targets[#targets + 1] = { k, v }
  end
end
for k, v in pairs(core.Tensor) do
  if type(v) == "function" then targets[#targets + 1] = { "Tensor:" .. k, v, method = true } end
end
for _, k in ipairs { "Conv2d", "Linear", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout", "Softmax" } do
  targets[#targets + 1] = { "nn." .. k, function(...) local m = nv.nn[k](...); return m(rtensor()) end }
end
-- the readers written in Lua (the .pth unpickler, the ONNX graph builder) and the loaders
-- around the C readers, on mutated copies of the repository's own files
local here = (arg[0]:match("^(.*)/fuzz/[^/]*$") or ".")
local seeds = {}
for _, f in ipairs { "spec/fixtures/cnn_zip.pth", "spec/fixtures/cnn_legacy.pth", "spec/fixtures/views.pth",
                     "spec/fixtures/checkpoint.pth", "spec/fixtures/onnx/pads.onnx", "spec/fixtures/onnx/clip7.onnx",
                     "spec/fixtures/tiny_photo.jpg", "spec/fixtures/cnn.safetensors" } do
  local h = io.open(here .. "/" .. f, "rb")
  if h then seeds[#seeds + 1] = h:read("a"); h:close() end
end
local tmpfile = os.tmpname()
local function mutated()
  local b = seeds[R(#seeds)]
  local parts = {}
  local pos = 1
  for _ = 1, R(1, 8) do
    local at = R(pos, #b)
    parts[#parts + 1] = b:sub(pos, at - 1)
    local k = R(1, 4)
    if k == 1 then parts[#parts + 1] = string.char(R(0, 255))                 -- replace a byte
    elseif k == 2 then parts[#parts + 1] = ("\255"):rep(R(1, 8))             -- big lengths
    elseif k == 3 then at = at + R(1, 64) end                                 -- delete a run
    pos = at + 1
  end
  if R(1, 4) > 1 then parts[#parts + 1] = b:sub(pos, R(pos, #b)) end         -- maybe truncate
  local h = io.open(tmpfile, "wb"); h:write(table.concat(parts)); h:close()
  return tmpfile
end
if #seeds > 0 then
  for _, l in ipairs {
    { "load_pth", function() return nv.load_pth(mutated()) end },
    { "onnx.load", function() return nv.onnx.load(mutated()) end },
    { "image.load", function() return nv.image.load(mutated()) end },
    { "load_safetensors", function() return nv.load_safetensors(mutated()) end },
  } do targets[#targets + 1] = { l[1], l[2] } end
end
table.sort(targets, function(a, b) return a[1] < b[1] end)

local t_end = nv.now() + seconds
local calls, raised, slow = 0, 0, {}
while calls < maxcalls and nv.now() < t_end do
  for _ = 1, 200 do
    local tg = targets[R(#targets)]
    local args = {}
    local n = R(0, 4)
    if tg.method then args[1] = rtensor(); n = n + 1 end
    for i = #args + 1, n do args[i] = value(0) end
    local t0 = nv.now()
    local ok = pcall(tg[2], table.unpack(args, 1, n))
    local dt = nv.now() - t0
    calls = calls + 1
    if not ok then raised = raised + 1 end
    if dt > 2 then slow[#slow + 1] = string.format("%s took %.1f s (seed %d, call %d)", tg[1], dt, seed, calls) end
  end
  if calls % 20000 == 0 then collectgarbage() end
end
print(string.format("api fuzz: %d calls of %d functions in %.0f s, %d raised an error, %d hangs, seed %d",
  calls, #targets, seconds, raised, #slow, seed))
for _, s in ipairs(slow) do print("  hang: " .. s) end
os.remove(tmpfile)
os.exit(#slow == 0 and 0 or 1)

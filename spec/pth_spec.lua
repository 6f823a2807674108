-- PyTorch checkpoints: nv.load_pth and Module:load on the fixtures that
-- spec/fixtures/make_pth_fixtures.py made with Debian's PyTorch.
local nv = require "nnvis"
local H = require "helpers"
local pickle = require "nnvis.io.pickle"
local nn = nv.nn

local FIX = "spec/fixtures/"

local function small_cnn()
  return nn.Sequential { nn.Conv2d(3, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3) }
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

-- asserts that load_pth returns nil and a message matching pattern
local function refused(path, pattern)
  local v, err = nv.load_pth(path)
  assert.is_nil(v)
  assert.matches(pattern, err)
end

local function same_dict(got, want, tol)
  assert.same(keys(want), keys(got))
  for k, t in pairs(want) do H.close(got[k], t, tol or 0, k) end
end

describe("nv.load_pth", function()
  local ref = assert(nv.load_safetensors(FIX .. "cnn.safetensors"))

  it("reads a state dict in the zip format with the values of its safetensors copy", function()
    same_dict(assert(nv.load_pth(FIX .. "cnn_zip.pth")), ref)
  end)

  it("reads the legacy format with the same values", function()
    same_dict(assert(nv.load_pth(FIX .. "cnn_legacy.pth")), ref)
  end)

  it("reads float16 tensors to within float16's rounding", function()
    local sd = assert(nv.load_pth(FIX .. "cnn_f16.pth"))
    same_dict(sd, ref, 1e-3)
    assert.equal(1, sd["1.num_batches_tracked"]:item())
  end)

  it("reads a training checkpoint as nested tables: epoch, state dict, optimizer state", function()
    local ck = assert(nv.load_pth(FIX .. "checkpoint.pth"))
    assert.equal(3, ck.epoch)
    assert.equal(0.25, ck.best)
    assert.equal("small", ck.name)
    assert.same({ true, false }, ck.flags)    -- None is absent
    assert.same(keys(ref), keys(ck.model))
    local groups = ck.optimizer.param_groups
    assert.equal(0.1, groups[1].lr)
    assert.equal(0.9, groups[1].momentum)
    assert.same({ 0, 1, 2, 3, 4, 5 }, groups[1].params)
    -- SGD's state is keyed by parameter index (0-based, as in PyTorch)
    assert.same({ 4, 3, 3, 3 }, ck.optimizer.state[0].momentum_buffer:shape())
    assert.same({ 3 }, ck.optimizer.state[5].momentum_buffer:shape())
  end)

  for _, f in ipairs { "views.pth", "views_legacy.pth" } do
    it("reads views sharing one storage with their offsets and strides (" .. f .. ")", function()
      local v = assert(nv.load_pth(FIX .. f))
      local t = nv.arange(12):view(3, 4)
      H.close(v.a, t, 0)
      H.close(v.b, t:narrow(1, 2, 2), 0)
      H.close(v.c, t:t(), 0)
      H.close(v.d, t:select(2, 2), 0)
      assert.equal(6, v.e:item())
      assert.equal(0, v.e:dim())
    end)
  end

  it("converts float64, bfloat16, int64, int32, uint8 and bool to float32", function()
    local d = assert(nv.load_pth(FIX .. "dtypes.pth"))
    assert.same({ -1.5, 0, 2.25, 3, -4, 65504 }, d.f64:values())
    assert.same({ -1.5, 0, 2.25, 3, -4, 65504 }, d.f16:values())
    assert.same({ -1.5, 0, 2.25, 3, -4, 65536 }, d.bf16:values())   -- bf16 rounds 65504 up
    assert.same({ -3, 0, 2 ^ 40 }, d.i64:values())
    assert.same({ -7, 8 }, d.i32:values())
    assert.same({ 0, 200, 255 }, d.u8:values())
    assert.same({ 1, 0, 1 }, d.bool:values())
    assert.equal(42, d.i64_scalar:item())
  end)

  describe("on hostile files", function()
    it("refuses a pickle naming another global, without running it", function()
      local v, err = nv.load_pth(FIX .. "evil_system.pth")
      assert.is_nil(v)
      assert.equal("load_pth: refuses global posix.system (only tensors and plain containers are read)", err)
    end)

    it("refuses a view reaching past its storage", function()
      refused(FIX .. "forged_view.pth", "view of size %(1000,1000%) at offset 0 reaches element 999999 of a storage of 12")
      refused(FIX .. "forged_offset.pth", "at offset 10 reaches element 13")
    end)

    it("refuses a zip entry with a forged size", function()
      refused(FIX .. "forged_size.pth", "^load_pth: .*forged_size.pth: ")
    end)

    it("refuses truncated zip and legacy files", function()
      for _, f in ipairs { "truncated.pth", "truncated_legacy.pth" } do
        refused(FIX .. f, "^load_pth: .*" .. f:gsub("%.", "%%.") .. ": ")
      end
    end)

    it("refuses files that are not torch.save output and missing files", function()
      refused(FIX .. "cnn.safetensors", "not a file written by torch.save")
      refused("/nonexistent.pth", "No such file")
    end)

    it("survives every truncation of a legacy file", function()
      local full = assert(io.open(FIX .. "views_legacy.pth", "rb")):read("a")
      local path = os.tmpname()
      for n = 0, #full - 1, 7 do
        local f = assert(io.open(path, "wb"))
        f:write(full:sub(1, n))
        f:close()
        local v, err = nv.load_pth(path)
        assert.is_nil(v)
        assert.is_string(err)
      end
      os.remove(path)
    end)

    it("survives flipped bytes in a zip file (an error or a value, never a crash)", function()
      local full = assert(io.open(FIX .. "views.pth", "rb")):read("a")
      local path = os.tmpname()
      for i = 1, #full, 5 do
        local f = assert(io.open(path, "wb"))
        f:write(full:sub(1, i - 1), string.char((full:byte(i) + 101) % 256), full:sub(i + 1))
        f:close()
        local v, err = nv.load_pth(path)
        assert.is_true(v ~= nil or type(err) == "string")
      end
      os.remove(path)
    end)
  end)
end)

describe("nnvis.io.pickle", function()
  it("refuses GLOBAL os.system before anything is called", function()
    local v, err = pickle.load("\128\2cos\nsystem\nX\4\0\0\0echo\133R.")
    assert.is_nil(v)
    assert.equal("refuses global os.system", err)
  end)

  it("reads plain containers, numbers and strings", function()
    -- pickle.dumps({'a': [1, -2, 3.5, None, True], 'b': (300, 70000)}, protocol=2)
    local s = "\128\2}q\0(X\1\0\0\0aq\1]q\2(K\1J\254\255\255\255G@\12\0\0\0\0\0\0N\136eX\1\0\0\0bq\3M,\1J" ..
      "p\17\1\0\134q\4u."
    local v = assert(pickle.load(s))
    assert.same({ a = { 1, -2, 3.5, nil, true }, b = { 300, 70000 } }, v)
  end)

  it("checks every stack and memo access", function()
    for _, s in ipairs { "\128\2s.", "\128\2h\5.", "\128\2e.", "\128\2K", "\128\2X\255\255\0\0ab.", "\128\2(." } do
      local v, err = pickle.load(s)
      assert.is_nil(v)
      assert.is_string(err)
    end
  end)
end)

describe("Module:load", function()
  local io_ = assert(nv.load_safetensors(FIX .. "cnn_io.safetensors"))

  for _, f in ipairs { "cnn.safetensors", "cnn_zip.pth", "cnn_legacy.pth" } do
    it("loads " .. f .. " (told apart by its bytes) and gives PyTorch's outputs", function()
      local m = small_cnn():eval()
      assert.equal(m, m:load(FIX .. f))
      H.close(nv.no_grad(function() return m(io_.input) end), io_.output, 1e-5)
    end)
  end

  it("takes the state dict of a training checkpoint from its 'model' key", function()
    local m = small_cnn():eval()
    m:load(FIX .. "checkpoint.pth")
    local want = assert(nv.load_safetensors(FIX .. "checkpoint_io.safetensors")).output
    H.close(nv.no_grad(function() return m(io_.input) end), want, 1e-5)
  end)

  it("raises, naming the file and its keys, for a checkpoint without a state dict", function()
    assert.error_matches(function() small_cnn():load(FIX .. "other_checkpoint.pth") end,
      "other_checkpoint.pth is not a state dict and has none under state_dict, model, " ..
      "model_state_dict; its keys are: epoch, weights")
    assert.error_matches(function() small_cnn():load(FIX .. "views.pth") end,
      "views.pth: cannot load into Sequential: missing keys: 0.weight")
  end)

  it("raises for a refused, truncated or missing file", function()
    assert.error_matches(function() small_cnn():load(FIX .. "evil_system.pth") end,
      "load: refuses global posix.system")
    assert.error_matches(function() small_cnn():load(FIX .. "truncated.pth") end, "load: .*truncated.pth")
    assert.error_matches(function() small_cnn():load("/nonexistent.pth") end, "load: /nonexistent.pth")
    assert.error_matches(function() small_cnn():load(FIX .. "photo_baseline.jpg") end,
      "neither safetensors nor a torch.save file")
  end)

  it("raises naming missing and unexpected keys", function()
    local m = nn.Sequential { nn.Conv2d(3, 4, 3, { padding = 1 }), nn.BatchNorm2d(4) }
    assert.error_matches(function() m:load(FIX .. "cnn_zip.pth") end,
      "cnn_zip.pth: cannot load into Sequential: unexpected keys: 5.bias, 5.weight")
  end)
end)

describe("Module:load of a large checkpoint", function()
  local have_torch = H.sh("/usr/bin/python3 -c 'import torch'")
  H.it_if(have_torch, "python3-torch")("reads one tensor at a time: memory grows by little beside the model", function()
    -- under make test SANITIZE=1 the load runs with the sanitizers (their runtimes preloaded),
    -- and AddressSanitizer keeps freed memory in quarantine: the values are checked, not the peak
    local asan = os.getenv("NNVIS_BUILD") == "build-asan"
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    -- 16 x (1024 x 1024) float32 = 64 MiB of weights, saved by PyTorch
    local ok, out = H.sh("/usr/bin/python3 -c \"import torch; torch.manual_seed(0); " ..
      "m = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(16)]); " ..
      "torch.save(m.state_dict(), '" .. dir .. "/big.pth'); print(float(m[15].weight[5, 7]))\"")
    assert.is_true(ok, out)
    -- in a process of its own, so that its peak resident memory is the load's
    local script = dir .. "/load.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local nv = require "nnvis"
local function hwm() for l in io.lines("/proc/self/status") do local v = l:match("^VmHWM:%s+(%d+)") if v then return tonumber(v) * 1024 end end end
local layers = {}
for i = 1, 16 do layers[i] = nv.nn.Linear(1024, 1024, { bias = false, weight_init = false }) end
local m = nv.nn.Sequential(layers)
collectgarbage()
local before = hwm()
m:load(arg[1])
io.write(before, " ", hwm(), " ", m:get("15").weight:get(6, 8), "\n")
]])
    f:close()
    local cmd = "LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath .. "' lua5.4 " .. script .. " " .. dir .. "/big.pth"
    local ok2, res
    if asan then
      local p = io.popen(cmd .. " 2>&1")
      res = p:read("a")
      ok2 = p:close()
    else
      ok2, res = H.sh(cmd)
    end
    assert.is_true(ok2, res)
    local before, after, v = res:match("(%d+) (%d+) (%S+)")
    local grew = (tonumber(after) - tonumber(before)) / (64 * 2 ^ 20)
    if not asan then assert.is_true(grew < 0.3, string.format("the load's peak grew by %.2f x the weights", grew)) end
    assert.near(tonumber(out:match("%S+")), tonumber(v), 1e-6)
    os.execute("rm -rf " .. dir)
  end)
end)

-- Regressions of the structured fuzzing round on the .pth readers (issue: hardening, round 2).
-- The files under spec/fixtures/hostile/ are made by spec/fixtures/make_hostile_fixtures.py;
-- each one is refused with nil and a message, quickly, and never crashes, hangs or raises.
local nv = require "nnvis"
local core = nv.core
local pickle = require "nnvis.io.pickle"

local DIR = "spec/fixtures/hostile/"

-- load_pth returns nil and a message matching pattern, within a second
local function refused(name, pattern)
  local t0 = nv.now()
  local v, err = nv.load_pth(DIR .. name)
  local dt = nv.now() - t0
  assert.is_nil(v, name .. " loaded")
  assert.is_string(err)
  assert.matches("^load_pth: ", err)
  assert.matches(pattern, err)
  assert.is_true(dt < 1, name .. " took " .. dt .. " s")
  return err
end

describe("nv.load_pth on structured-fuzzing findings", function()
  it("refuses a storage offset near INT64_MAX instead of reading the bytes before the storage", function()
    refused("offset_overflow.pth", "at offset 9223372036854775807 reaches element")
    refused("offset_overflow_u8.pth", "at offset 9223372036854775807 reaches element")
  end)

  it("tensor_from_bytes saturates offset + reach instead of wrapping past its bounds check", function()
    local b = string.pack("<ffff", 1, 2, 3, 4)
    for _, dtype in ipairs { "F32", "U8", "F64" } do
      for _, off in ipairs { math.maxinteger, math.maxinteger - 7, math.maxinteger // 2 + 1 } do
        local t, err = core.tensor_from_bytes(b, dtype, off, { 8 }, { 1 }, "w")
        assert.is_nil(t)
        assert.matches("w: view of size %(8%) at offset " .. off .. " reaches element", err)
      end
    end
    -- a huge stride with a small offset saturates too
    local t, err = core.tensor_from_bytes(b, "F32", 3, { 2 }, { math.maxinteger }, "w")
    assert.is_nil(t)
    assert.matches("reaches element", err)
  end)

  it("stops at a negative string length instead of stepping back onto the same opcode", function()
    refused("legacy_negative_length.pth", "negative length %-5")
    for _, s in ipairs {
      "\128\2T\251\255\255\255.",                               -- BINSTRING -5: back onto itself
      "\128\2\141" .. string.pack("<I8", 0x8000000000000005) .. ".",  -- BINUNICODE8 past 2^63
      "\128\2\141" .. string.pack("<i8", -1) .. ".",
      "\128\2X\255\255\255\127.",                               -- past the end
    } do
      local v, err = pickle.load(s)
      assert.is_nil(v)
      assert.is_string(err)
      assert.not_matches("format", err)
    end
  end)

  it("refuses a list that holds itself and _rebuild_from_type_v2 named on its own arguments", function()
    refused("self_list.pth", "a container holds itself")
    refused("rebuild_from_type_loop.pth", "_rebuild_from_type_v2 is not a tensor rebuild function")
  end)

  it("refuses 200,000 nested lists with a message, not a stack overflow", function()
    refused("deep_nesting.pth", "containers nested deeper than 200 levels")
  end)

  it("refuses 9 dimensions and an element count whose byte size wraps, returning nil", function()
    refused("nine_dims.pth", "a tensor of 9 dimensions %(nnvis supports 0 to 8%)")
    refused("count_wraps.pth", "storage 0: 4611686018427387904 F32 elements are more than max_alloc")
  end)

  it("refuses a bzip2 bomb before inflating it", function()
    refused("bzip2_bomb.pth", "would inflate 268435456 bytes from %d+ %(more than 1100:1")
  end)

  it("caps a storage by nv.config's max_alloc", function()
    local cfg = nv.config()
    nv.config { max_alloc = 1 << 23 }
    local ok, v, err = pcall(nv.load_pth, DIR .. "small_view_of_big_storage.pth")
    nv.config { max_alloc = cfg.max_alloc }
    assert.is_true(ok)
    assert.is_nil(v)
    assert.matches("storage 0: 4194304 F32 elements are more than max_alloc %(8388608 bytes", err)
  end)

  it("inflates only the bytes a storage's tensors reach", function()
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    local sd = assert(nv.load_pth(DIR .. "small_view_of_big_storage.pth"))
    local grew = collectgarbage("count") - before
    collectgarbage("restart")
    assert.same({ 1.5, -2, 3.25, 4 }, sd.w:values())
    assert.is_true(grew < 1024, ("Lua memory grew %.0f KiB for a 16-byte view of a 16 MiB storage"):format(grew))
  end)

  it("reads an archive whose entry names are not UTF-8, as names() lists them", function()
    local sd = assert(nv.load_pth(DIR .. "non_utf8_name.pth"))
    assert.same({ 1.5, -2, 3.25, 4 }, sd.w:values())
    local z = assert(core.zip_open(DIR .. "non_utf8_name.pth"))
    for _, name in ipairs(z:names()) do assert.is_string(z:read(name)) end
    z:close()
  end)

  it("zip:read with a count refuses an entry of another size and reads only its head", function()
    local z = assert(core.zip_open(DIR .. "small_view_of_big_storage.pth"))
    local v, err = z:read("archive/data/0", 100, 10)
    assert.is_nil(v)
    assert.matches("declares 16777216 bytes, more than the limit of 100", err)
    assert.equal(string.pack("<f", 1.5), z:read("archive/data/0", 1 << 24, 4))
    assert.has_error(function() z:read("archive/data/0", 10, 11) end)
    z:close()
  end)
end)

describe("the C core's overflow findings", function()
  it("conv2d with a padding and a stride near INT_MAX computes its column range in 64 bits", function()
    -- UBSan (make test SANITIZE=1) reported 1 + 2147483647 in the column-range helper
    -- output positions o * INT_MAX - INT_MAX: only o = 1 lands on the input (its first cell)
    for _, case in ipairs {
      { { padding = { 0, 2147483647 }, stride = { 1, 2147483647 } }, { 1, 1, 2, 3 }, { 0, 1, 0, 0, 1, 0 } },
      { { padding = { 2147483647, 0 }, stride = { 2147483647, 1 } }, { 1, 1, 3, 2 }, { 0, 0, 1, 1, 0, 0 } },
      { { padding = 2147483647, stride = 2147483647 }, { 1, 1, 3, 3 }, { 0, 0, 0, 0, 1, 0, 0, 0, 0 } },
    } do
      local y = nv.conv2d(nv.ones(1, 1, 2, 2), nv.ones(1, 1, 1, 1), nil, case[1])
      assert.same(case[2], y:shape())
      assert.same(case[3], y:values())
    end
  end)
end)

describe("ONNX external data stays inside the model's folder", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local src = assert(io.open("spec/fixtures/onnx/external_ok.onnx", "rb")):read("a")
    local f = assert(io.open(dir .. "/m.onnx", "wb"))
    f:write(src)
    f:close()
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("loads with the data file beside it", function()
    assert(os.execute("cp spec/fixtures/onnx/external.bin " .. dir .. "/external.bin"))
    assert.truthy(nv.onnx.load(dir .. "/m.onnx"))
  end)

  it("refuses a symlink inside the folder that leads out of it", function()
    local target = io.popen("readlink -f spec/fixtures/onnx/external.bin"):read("l")
    assert(os.execute("ln -s " .. target .. " " .. dir .. "/external.bin"))
    local m, err = nv.onnx.load(dir .. "/m.onnx")
    assert.is_nil(m)
    assert.matches("leads outside the model's folder", err)
  end)

  it("reports an external-data offset near INT64_MAX without overflowing (UBSan found onnx.c:452)", function()
    local W = require "onnx_writer"
    assert(os.execute("cp spec/fixtures/onnx/external.bin " .. dir .. "/w.bin"))
    local f = assert(io.open(dir .. "/big.onnx", "wb"))
    f:write(W.model {
      opset = 13, inputs = { { "x", { 1, 4 } } }, outputs = { "y" },
      nodes = { { op = "Add", inputs = { "x", "w" }, outputs = { "y" } } },
      initializers = { W.tensor { name = "w", dims = { 4 }, data_type = W.FLOAT,
                                  external = { location = "w.bin", offset = math.maxinteger } } },
    })
    f:close()
    local m, err = nv.onnx.load(dir .. "/big.onnx")
    assert.is_nil(m)
    assert.matches("external data of 16 bytes at offset 9223372036854775807 lies outside", err)
  end)

  it("refuses a FIFO at once instead of blocking in open", function()
    assert(os.execute("mkfifo " .. dir .. "/external.bin"))
    local t0 = nv.now()
    local m, err = nv.onnx.load(dir .. "/m.onnx")
    assert.is_nil(m)
    assert.matches("not a regular file", err)
    assert.is_true(nv.now() - t0 < 1)
  end)
end)

-- Regressions of the fuzzing findings (issue: hardening): each call raises an error that names
-- the argument (or, for files, returns nil and a message), quickly, and never crashes.
local nv = require "nnvis"

local function raises(f, pattern)
  local t0 = nv.now()
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
  assert.is_true(nv.now() - t0 < 1, "took " .. (nv.now() - t0) .. " s")
end

describe("nnvis hardening", function()
  it("pad refuses paddings whose sum would wrap", function()
    raises(function() nv.pad(nv.tensor { { 1, 2, 3 } }, { 2147483647, 2147483647 }) end, "pad: padded size %(1,4294967297%)")
    raises(function() nv.pad(nv.randn(1, 1, 2, 2), { 2 ^ 32 + 1, 0 }) end, "pad: padding must be between 0 and 2147483647")
    raises(function() nv.pad(nv.randn(1, 1, 2, 2), { math.tointeger(2 ^ 32 + 1), 0 }) end, "pad: padding must be between")
  end)

  it("conv2d refuses a padding whose output size overflows instead of dividing by zero", function()
    raises(function() nv.conv2d(nv.randn(1, 1, 2, 2), nv.randn(1, 1, 1, 1), nil, { padding = 2147483647 }) end,
      "conv2d: output %(4294967296,4294967296%)")
    raises(function() nv.conv2d(nv.randn(1, 1, 4, 4), nv.randn(1, 1, 1, 1), nil, { stride = 2 ^ 32 + 1 }) end,
      "conv2d: stride must be between 1 and 2147483647, got 4294967297")
    raises(function() nv.conv2d(nv.randn(1, 1, 4, 4), nv.randn(1, 1, 1, 1), nil, { stride = math.tointeger(2 ^ 32 + 1) }) end,
      "conv2d: stride must be between")
    raises(function() nv.conv2d(nv.randn(1, 1, 2, 2), nv.randn(1, 1, 1, 1), nil, { groups = 1e300 }) end,
      "conv2d: groups must be an integer, got 1e%+300")
    raises(function() nv.conv2d(nv.randn(1, 1, 2, 2), nv.randn(1, 1, 1, 1), nil, { dilation = 0 / 0 }) end,
      "conv2d: dilation must be an integer")
    raises(function() nv.conv2d(nv.randn(1, 1, 2, 2), nv.randn(1, 1, 1, 1), nil, { padding = 1 / 0 }) end,
      "conv2d: padding must be an integer")
  end)

  it("pooling with a huge window visits only the taps inside the input", function()
    for _, f in ipairs {
      function() return nv.max_pool2d(nv.randn(1, 1, 2, 6), 2147483647, { ceil_mode = true, padding = { 2, 0 } }) end,
      function() return nv.avg_pool2d(nv.randn(1, 2, 7, 2), 1073741824, { ceil_mode = true }) end,
    } do
      local t0 = nv.now()
      local ok, r = pcall(f)       -- PyTorch's rules give a 1x1 output here; an error would do too
      assert.is_true(nv.now() - t0 < 1)
      if ok then assert.are.same({ 1, 1 }, { r:size(3), r:size(4) }) end
    end
    -- the answer is still right: the max of the whole input
    local x = nv.randn(1, 1, 2, 6)
    local m = nv.max_pool2d(x, 2147483647, { ceil_mode = true, padding = { 2, 0 } })
    assert.are.equal(x:max():item(), m:item())
  end)

  it("sizes are bounded: expand, zeros and views cannot overflow or exceed max_alloc", function()
    raises(function() return nv.tensor(1):expand(2 ^ 40, 2 ^ 40):numel() end, "expand: a tensor of .* exceeds max_alloc")
    raises(function() return nv.tensor(1):expand(1e12):sum() end, "expand: a tensor of 1000000000000 elements")
    raises(function() return nv.zeros(0, 2 ^ 31, 2 ^ 31, 2 ^ 31) end, "zeros: a tensor of more than 2%^63 elements")
    local cfg = nv.config()
    assert.is_true(cfg.max_alloc >= 2 ^ 20)
    nv.config { max_alloc = 2 ^ 24 }
    local ok, err = pcall(nv.zeros, 4096, 4096)
    nv.config { max_alloc = cfg.max_alloc }
    assert.is_false(ok)
    assert.matches("exceeds max_alloc %(0.0156 GiB%)", err)
    raises(function() nv.config { max_alloc = 5 } end, "config: max_alloc must be between 1 MiB")
  end)

  it("float options are refused when NaN, infinite or out of range", function()
    raises(function() nv.interpolate(nv.randn(1, 1, 2, 2), { scale_factor = 0 / 0 }) end, "interpolate: scale_factor must be positive and finite")
    raises(function() nv.interpolate(nv.randn(1, 1, 2, 2), { scale_factor = 1 / 0 }) end, "interpolate: scale_factor must be positive and finite")
    raises(function() nv.interpolate(nv.randn(1, 1, 2, 2), { scale_factor = 1e300 }) end, "interpolate: scale_factor")
  end)

  it("narrow and select check their indices before any arithmetic", function()
    raises(function() nv.randn(3):narrow(1, math.mininteger, 1) end, "narrow: start must be between 1 and 4")
    raises(function() nv.randn(3):narrow(1, 2, math.maxinteger) end, "narrow: length must be between 0 and 2")
    raises(function() nv.randn(3):select(1, math.mininteger) end, "select: index must be between %-3 and 3")
  end)

  it("a 68-byte PNG claiming 16384x16384 RGBA16 is refused before anything is reserved", function()
    local function be32(n) return string.char(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255) end
    local function chunk(kind, data)
      return be32(#data) .. kind .. data .. be32(require("nnvis.core").crc32 and 0 or 0)
    end
    local ihdr = be32(16384) .. be32(16384) .. string.char(16, 6, 0, 0, 0)
    local bytes = "\137PNG\r\n\26\n" .. chunk("IHDR", ihdr) .. chunk("IDAT", ("\0"):rep(11)) .. chunk("IEND", "")
    local path = os.tmpname()
    local f = io.open(path, "wb"); f:write(bytes); f:close()
    local t0 = nv.now()
    local img, err = nv.image.load(path)
    os.remove(path)
    assert.is_nil(img)
    assert.is_string(err)
    assert.is_true(nv.now() - t0 < 1)
  end)

  it("a 28-byte IDX file whose sizes overflow is refused", function()
    local path = os.tmpname()
    local f = io.open(path, "wb")
    f:write("\0\0\8\4", "\0\0\0\0", "\128\0\0\0", "\128\0\0\0", "\128\0\0\0", "\0\0\0\0")
    f:close()
    local t, err = nv.io.load_idx(path)
    os.remove(path)
    assert.is_nil(t)
    assert.matches("elements", err)
  end)
end)

describe("nnvis hardening: the text measurer", function()
  it("refuses a NaN or huge font size, and a bad call never breaks later measurements", function()
    local core = nv.core
    local w0 = core.text_extents("accuracy", 9)
    for _, size in ipairs { 0 / 0, 1 / 0, -1, 0, 1e300 } do
      local ok, err = pcall(core.text_extents, "accuracy", size)
      assert.is_false(ok)
      assert.matches("text_extents: size must be in", err)
    end
    assert.equal(w0, core.text_extents("accuracy", 9))
    assert.is_true(w0 > 10)
  end)
end)

describe("nnvis hardening: sort of nothing", function()
  it("argsort, sort and topk of an empty dimension return empty results (the API fuzzer's UBSan finding)", function()
    assert.same({ 0 }, nv.zeros(0):argsort():shape())
    local v, i = nv.zeros(2, 0):sort(2)
    assert.same({ 2, 0 }, v:shape())
    assert.same({ 2, 0 }, i:shape())
    assert.same({ 3, 0 }, select(2, nv.zeros(3, 4):topk(0, 2)):shape())
  end)
end)

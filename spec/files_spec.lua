-- Specs for nnvis.io and the file readers behind it (csrc/io/png.c, safetensors.c, idx.c): PNG, safetensors, IDX.
-- Test files are built here byte by byte (zlib streams use stored, uncompressed deflate
-- blocks), so each spec knows exactly what a file holds and nothing binary is committed.
local core = require "nnvis.core"
local nio = require "nnvis.io"

-- ---- byte-level builders ---------------------------------------------------------------
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end

-- Deflate with stored blocks only (RFC 1951 §3.2.4): valid, uncompressed.
local function deflate_stored(s)
  local out, i = {}, 1
  repeat
    local piece = s:sub(i, i + 65534)
    i = i + #piece
    local final = i > #s and 1 or 0
    out[#out + 1] = string.pack("<BI2I2", final, #piece, ~#piece & 0xFFFF) .. piece
  until i > #s
  return table.concat(out)
end

local function zlib(s) return "\x78\x01" .. deflate_stored(s) .. string.pack(">I4", adler32(s)) end

local function gzip(s)
  return "\x1f\x8b\x08\0\0\0\0\0\0\255" .. deflate_stored(s) .. string.pack("<I4I4", crc32(s), #s)
end

local function chunk(kind, data)
  return string.pack(">I4", #data) .. kind .. data .. string.pack(">I4", crc32(kind .. data))
end

-- rows: the packed bytes of each scanline (filter type 0 is prepended here).
-- opts.plte / opts.trns: contents of those chunks.
local function png(w, h, color_type, depth, rows, opts)
  opts = opts or {}
  local raw = {}
  for i, r in ipairs(rows) do raw[i] = "\0" .. r end
  return "\137PNG\r\n\26\n"
    .. chunk("IHDR", string.pack(">I4I4BBBBB", w, h, depth, color_type, 0, 0, 0))
    .. (opts.plte and chunk("PLTE", opts.plte) or "")
    .. (opts.trns and chunk("tRNS", opts.trns) or "")
    .. chunk("IDAT", zlib(table.concat(raw)))
    .. chunk("IEND", "")
end

local function u16(...) return string.pack(">" .. ("I2"):rep(select("#", ...)), ...) end

local function idx(type_code, dims, data)
  local head = string.char(0, 0, type_code, #dims)
  for _, d in ipairs(dims) do head = head .. string.pack(">I4", d) end
  return head .. data
end

-- entries: list of {name, dtype, shape, payload}; offsets follow the payloads in order.
local function safetensors(entries, meta)
  local parts, data, off = {}, {}, 0
  if meta then
    local m = {}
    for k, v in pairs(meta) do m[#m + 1] = ('"%s":"%s"'):format(k, v) end
    parts[#parts + 1] = '"__metadata__":{' .. table.concat(m, ",") .. "}"
  end
  for _, e in ipairs(entries) do
    local name, dtype, shape, payload = e[1], e[2], e[3], e[4]
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(
      name, dtype, table.concat(shape, ","), off, off + #payload)
    data[#data + 1] = payload
    off = off + #payload
  end
  local header = "{" .. table.concat(parts, ",") .. "}"
  return string.pack("<I8", #header) .. header .. table.concat(data)
end

local function raw_safetensors(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

-- ---- files -----------------------------------------------------------------------------
local temp_files = {}

local function tmp(content)
  local path = os.tmpname()
  temp_files[#temp_files + 1] = path
  if content then
    local f = assert(io.open(path, "wb"))
    f:write(content)
    f:close()
  end
  return path
end

local read_all = require("helpers").read_all

local function flat(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then for _, v in ipairs(x) do walk(v) end else out[#out + 1] = x end
  end
  walk(t:totable())
  return out
end

local function assert_values(expected, t, tol)
  local got = flat(t)
  assert.are.equal(#expected, #got)
  for i, v in ipairs(expected) do assert.is_near(v, got[i], tol or 1e-6) end
end

local function load_png(bytes, mode) return nio.load_image(tmp(bytes), mode and {mode = mode}) end

describe("nnvis.io", function()
  teardown(function()
    for _, p in ipairs(temp_files) do os.remove(p) end
  end)

  describe("png", function()
    it("reads 1-, 2-, 4-, 8- and 16-bit gray as one channel scaled to [0,1]", function()
      local cases = {
        {1, 8, string.char(0xA0), {1, 0, 1, 0, 0, 0, 0, 0}},
        {2, 4, string.char(0x1B), {0, 1 / 3, 2 / 3, 1}},
        {4, 2, string.char(0x0F), {0, 1}},
        {8, 2, string.char(0, 51), {0, 0.2}},
        {16, 2, u16(0, 32768), {0, 32768 / 65535}},
      }
      for _, c in ipairs(cases) do
        local img = assert(load_png(png(c[2], 1, 0, c[1], {c[3]})))
        assert.are.same({1, 1, c[2]}, img:shape())
        assert_values(c[4], img)
      end
    end)

    it("reads 8- and 16-bit gray+alpha as two channels", function()
      local img = assert(load_png(png(1, 1, 4, 8, {string.char(51, 204)})))
      assert.are.same({2, 1, 1}, img:shape())
      assert_values({0.2, 0.8}, img)
      img = assert(load_png(png(2, 1, 4, 16, {u16(65535, 0, 1, 65535)})))
      assert.are.same({2, 1, 2}, img:shape())
      assert_values({1, 1 / 65535, 0, 1}, img)
    end)

    it("reads 8- and 16-bit RGB as three channels in (C,H,W) order", function()
      local img = assert(load_png(png(2, 1, 2, 8, {string.char(255, 0, 0, 0, 51, 255)})))
      assert.are.same({3, 1, 2}, img:shape())
      assert_values({1, 0, 0, 0.2, 0, 1}, img)   -- R plane, G plane, B plane
      img = assert(load_png(png(1, 2, 2, 16, {u16(1, 2, 65535), u16(0, 65535, 0)})))
      assert.are.same({3, 2, 1}, img:shape())
      assert_values({1 / 65535, 0, 2 / 65535, 1, 1, 0}, img)
    end)

    it("reads 8- and 16-bit RGBA as four channels", function()
      local img = assert(load_png(png(1, 1, 6, 8, {string.char(255, 51, 0, 102)})))
      assert.are.same({4, 1, 1}, img:shape())
      assert_values({1, 0.2, 0, 0.4}, img)
      img = assert(load_png(png(1, 1, 6, 16, {u16(0, 65535, 32768, 1)})))
      assert_values({0, 1, 32768 / 65535, 1 / 65535}, img)
    end)

    it("reads 1-, 2-, 4- and 8-bit palettes as RGB", function()
      local plte = string.char(255, 0, 0, 0, 0, 255)
      local cases = {
        {1, string.char(0x40)},   -- indices 0 1
        {2, string.char(0x10)},   -- 0 1 (2 bits each)
        {4, string.char(0x01)},   -- 0 1
        {8, string.char(0, 1)},
      }
      for _, c in ipairs(cases) do
        local img = assert(load_png(png(2, 1, 3, c[1], {c[2]}, {plte = plte})))
        assert.are.same({3, 1, 2}, img:shape())
        assert_values({1, 0, 0, 0, 0, 1}, img)
      end
    end)

    it("adds an alpha channel for a palette with transparency", function()
      local img = assert(load_png(png(2, 1, 3, 8, {string.char(0, 1)},
        {plte = string.char(255, 0, 0, 0, 0, 255), trns = string.char(51)})))
      assert.are.same({4, 1, 2}, img:shape())
      assert_values({1, 0, 0, 0, 0, 1, 0.2, 1}, img)   -- entries past tRNS are opaque
    end)

    it("turns a gray color key (tRNS) into an alpha channel", function()
      local img = assert(load_png(png(2, 1, 0, 8, {string.char(7, 9)}, {trns = u16(7)})))
      assert.are.same({2, 1, 2}, img:shape())
      assert_values({7 / 255, 9 / 255, 0, 1}, img)
    end)

    it("replicates gray and drops alpha in rgb mode", function()
      local img = assert(load_png(png(1, 1, 4, 8, {string.char(51, 0)}), "rgb"))
      assert.are.same({3, 1, 1}, img:shape())
      assert_values({0.2, 0.2, 0.2}, img)
      img = assert(load_png(png(1, 1, 6, 8, {string.char(255, 51, 0, 0)}), "rgb"))
      assert_values({1, 0.2, 0}, img)
    end)

    it("converts to luminance 0.299 R + 0.587 G + 0.114 B in gray mode", function()
      local rgb = string.char(255, 0, 0, 0, 255, 0, 255, 128, 0)
      local img = assert(load_png(png(3, 1, 2, 8, {rgb}), "gray"))
      assert.are.same({1, 1, 3}, img:shape())
      assert_values({0.299, 0.587, (0.299 * 255 + 0.587 * 128) / 255}, img, 1e-5)
      img = assert(load_png(png(1, 1, 0, 16, {u16(12345)}), "gray"))
      assert_values({12345 / 65535}, img)   -- gray files pass through exactly
    end)

    it("resizes bilinearly to opts.size = {h, w}", function()
      local bytes = png(2, 2, 0, 8, {string.char(0, 255), string.char(0, 255)})
      local img = assert(nio.load_image(tmp(bytes), {size = {1, 4}}))
      assert.are.same({1, 1, 4}, img:shape())
      assert_values({0, 0.25, 0.75, 1}, img)   -- PyTorch's align_corners = false
      assert.are.same({3, 2, 2}, assert(nio.load_image(tmp(bytes), {mode = "rgb", size = 2})):shape())
      assert.error_matches(function() nio.load_image("x.png", {size = {0, 4}}) end,
        "load_image: opts.size must be a positive integer or {h, w}", nil, true)
    end)

    it("loads from a string of bytes with png_load_bytes", function()
      local img = assert(core.png_load_bytes(png(1, 1, 0, 8, {string.char(51)})))
      assert_values({0.2}, img)
    end)

    for c = 1, 4 do
      it(("round-trips %d-channel 8-bit images through save_image"):format(c), function()
        local h, w, vals = 3, 5, {}
        for i = 1, c * h * w do vals[i] = ((i * 37) % 256) / 255 end
        local planes, k = {}, 0
        for ci = 1, c do
          planes[ci] = {}
          for y = 1, h do
            planes[ci][y] = {}
            for x = 1, w do k = k + 1; planes[ci][y][x] = vals[k] end
          end
        end
        local path = tmp()
        assert.is_true(nio.save_image(core.tensor(planes), path))
        local back = assert(nio.load_image(path))
        assert.are.same({c, h, w}, back:shape())
        assert_values(vals, back)
      end)
    end

    it("saves an (H,W) tensor as a one-channel image", function()
      local path = tmp()
      assert.is_true(nio.save_image(core.tensor{{0, 1}, {0.2, 0.4}}, path))
      local back = assert(nio.load_image(path))
      assert.are.same({1, 2, 2}, back:shape())
      assert_values({0, 1, 0.2, 0.4}, back)
    end)

    it("clamps to [0,1], sends NaN to 0 and rounds to the nearest of 256 levels", function()
      local path = tmp()
      local t = core.tensor{{-0.5, 1.7, 0 / 0, 0.5, 0.1 / 255, 0.6 / 255}}
      assert.is_true(nio.save_image(t, path))
      assert_values({0, 1, 0, 128 / 255, 0, 1 / 255}, assert(nio.load_image(path)))
    end)

    it("saves views with any strides in logical order", function()
      local path = tmp()
      local t = core.tensor{{0, 1, 0.2}, {0.4, 0.6, 0.8}}:transpose(1, 2)   -- (3,2)
      assert.is_true(nio.save_image(t, path))
      assert_values({0, 0.4, 1, 0.6, 0.2, 0.8}, assert(nio.load_image(path)))
    end)

    it("raises for tensors that are not images, naming the shape", function()
      assert.has_error(function() nio.save_image(core.zeros{5, 3, 3}, tmp()) end,
        "png_save: expected (C,H,W) with C in 1..4 or (H,W), got (5,3,3)")
      assert.has_error(function() core.png_save(core.zeros{1, 2, 3, 4}, tmp()) end,
        "png_save: expected (C,H,W) with C in 1..4 or (H,W), got (1,2,3,4)")
      assert.has_error(function() core.png_save(core.zeros{3, 0, 4}, tmp()) end,
        "png_save: expected (C,H,W) with C in 1..4 or (H,W), got (3,0,4)")
      assert.error_matches(function() nio.save_image({}, tmp()) end,
        "save_image: image must be a tensor")
    end)

    it("raises for an unknown mode", function()
      assert.error_matches(function() nio.load_image("x.png", {mode = "cmyk"}) end,
        'load_image: opts.mode must be "rgb" or "gray", got cmyk', nil, true)
    end)

    it("raises, naming the path and the reason, for a file that cannot be written", function()
      assert.error_matches(function() nio.save_image(core.zeros{1, 1}, "/nonexistent-dir/x.png") end,
        "save_image: cannot write /nonexistent-dir/x.png: No such file or directory", 1, true)
    end)

    it("returns nil and a message for missing, truncated, forged or non-image files", function()
      local good = png(2, 2, 2, 8, {string.char(1, 2, 3, 4, 5, 6), string.char(1, 2, 3, 4, 5, 6)})
      local cases = {
        {"/nonexistent-dir/x.png", "cannot open /nonexistent-dir/x.png"},
        {tmp("hello, not a png"), "neither a PNG nor a JPEG file (first bytes 68 65 6c 6c of 16)"},
        {tmp(""), "neither a PNG nor a JPEG file"},
        {tmp(good:sub(1, 40)), "not a readable PNG"},
        {tmp(good:sub(1, #good - 20)), "not a readable PNG"},
        {tmp(good:sub(1, 30) .. "X" .. good:sub(32)), "not a readable PNG"},   -- bad CRC
        {tmp(png(100000, 100000, 0, 8, {""})), "100000x100000 pixels is larger than the limit"},
      }
      for _, c in ipairs(cases) do
        local img, err = nio.load_image(c[1])
        assert.is_nil(img)
        assert.matches(c[2], err, 1, true)
      end
      local img, err = core.png_load_bytes("\137PNG")
      assert.is_nil(img)
      assert.matches("png_load_bytes: not a readable PNG", err, 1, true)
    end)
  end)

  describe("safetensors", function()
    it("round-trips tensors and metadata", function()
      local path = tmp()
      local tbl = {
        ["conv.weight"] = core.tensor{{1, 2, 3}, {4, 5, 6}},
        bias = core.tensor{-0.5},
        scalar = core.tensor(7),
        empty = core.zeros{0, 3},
      }
      local meta = {format = "pt", note = 'quote " backslash \\ newline \n tab \t é'}
      assert.is_true(nio.save_safetensors(tbl, path, meta))
      local back, m = assert(nio.load_safetensors(path))
      assert.are.same(meta, m)
      for name, t in pairs(tbl) do
        assert.are.same(t:shape(), back[name]:shape())
        assert.are.same(t:totable(), back[name]:totable())
      end
      local n = 0
      for _ in pairs(back) do n = n + 1 end
      assert.are.equal(4, n)
    end)

    it("writes sorted keys and a header padded with spaces to a multiple of 8 bytes", function()
      local path = tmp()
      assert.is_true(nio.save_safetensors({b = core.zeros{2}, a = core.ones{3}}, path, {k = "v"}))
      local s = read_all(path)
      local n = string.unpack("<I8", s)
      local header = s:sub(9, 8 + n)
      assert.are.equal(0, n % 8)
      assert.are.equal(8 + n + 4 * 5, #s)
      assert.are.equal('{"__metadata__":{"k":"v"},'
        .. '"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},'
        .. '"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}', header:match("^(.-)%s*$"))
      assert.are.equal(string.pack("<fff", 1, 1, 1), s:sub(9 + n, 20 + n))
    end)

    it("returns an empty metadata table when the file has none", function()
      local path = tmp()
      assert.is_true(nio.save_safetensors({x = core.ones{1}}, path))
      local t, meta = assert(nio.load_safetensors(path))
      assert.are.same({}, meta)
      assert.are.same({1}, t.x:totable())
      assert.is_nil(read_all(path):find("__metadata__", 1, true))
    end)

    it("saves views with any strides in logical order", function()
      local path = tmp()
      local t = core.tensor{{1, 2, 3}, {4, 5, 6}}:transpose(1, 2)
      assert.is_true(nio.save_safetensors({t = t}, path))
      assert.are.same({{1, 4}, {2, 5}, {3, 6}}, assert(nio.load_safetensors(path)).t:totable())
    end)

    it("converts F16, BF16, F64, I64, I32, I16, I8, U8 and BOOL to float32", function()
      local path = tmp(safetensors({
        -- 1.5, -2, 65504 (largest half), 2^-24 (smallest subnormal), +inf
        {"h", "F16", {5}, string.pack("<I2I2I2I2I2", 0x3E00, 0xC000, 0x7BFF, 0x0001, 0x7C00)},
        {"bf", "BF16", {2}, string.pack("<I2I2", 0x3F80, 0xC040)},   -- 1, -3
        {"d", "F64", {2, 1}, string.pack("<dd", 0.25, -1e10)},
        {"i64", "I64", {2}, string.pack("<i8i8", -7, 1 << 40)},
        {"i32", "I32", {1, 1}, string.pack("<i4", -70000)},
        {"i16", "I16", {2}, string.pack("<i2i2", -2, 300)},
        {"i8", "I8", {2}, string.pack("<i1i1", -128, 127)},
        {"u8", "U8", {3}, string.char(0, 1, 255)},
        {"b", "BOOL", {2}, string.char(0, 1)},
      }, {source = "hand-built"}))
      local t, meta = assert(nio.load_safetensors(path))
      assert.are.equal("hand-built", meta.source)
      local h = flat(t.h)
      assert.are.same({1.5, -2, 65504, 2 ^ -24}, {h[1], h[2], h[3], h[4]})
      assert.are.equal(math.huge, h[5])
      assert.are.same({1, -3}, t.bf:totable())
      assert.are.same({{0.25}, {-1e10}}, t.d:totable())
      assert.are.same({-7, 2 ^ 40}, t.i64:totable())
      assert.are.same({{-70000}}, t.i32:totable())
      assert.are.same({-2, 300}, t.i16:totable())
      assert.are.same({-128, 127}, t.i8:totable())
      assert.are.same({0, 1, 255}, t.u8:totable())
      assert.are.same({0, 1}, t.b:totable())
    end)

    it("accepts a header with whitespace, escapes and unknown entry fields", function()
      local header = '{ "w\\u00e9\\ud83d\\ude00\\n" : { "dtype" : "F32", "shape" : [ 1 ],'
        .. ' "data_offsets" : [ 0 , 4 ], "extra": {"nested": [true, false, null, -1.5e3]} } }  '
      local t = assert(nio.load_safetensors(tmp(raw_safetensors(header, string.pack("<f", 3)))))
      assert.are.same({3}, t["wé😀\n"]:totable())
    end)

    it("returns nil and a message naming the problem for corrupt files", function()
      local f32, zeros8 = string.pack("<f", 1), ("\0"):rep(8)
      local good = safetensors({{"a", "F32", {2}, f32 .. f32}, {"b", "F32", {1}, f32}})
      -- the JSON of one header entry
      local function entry(name, dtype, shape, offsets)
        return ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%s]}'):format(
          name, dtype, shape, offsets)
      end
      local function file(entries, data) return raw_safetensors("{" .. entries .. "}", data) end
      local json = "header is not valid JSON: "
      local cases = {
        {"", "too short for a safetensors header"},
        {"\1\2\3", "too short for a safetensors header"},
        {string.pack("<I8", 1000) .. "{}",
          "header length 1000 is larger than the rest of the file"},
        {string.pack("<I8", -1), "is larger than the rest of the file"},
        {good:sub(1, #good - 2), "run past the end of the data"},
        {file(entry("a", "F32", "1", "0,400"), f32),
          "data_offsets [0, 400] run past the end of the data (4 bytes"},
        {file(entry("a", "F32", "1", "8,4"), zeros8), "data_offsets [8, 4] have begin > end"},
        {file(entry("a", "F32", "1", "0,4") .. "," .. entry("b", "F32", "1", "2,6"), zeros8),
          "data of tensors 'a' [0, 4] and 'b' [2, 6] overlap"},
        {file(entry("a", "F32", "1", "0,4") .. "," .. entry("b", "F32", "1", "0,4"), f32),
          "data of tensors 'a' [0, 4] and 'b' [0, 4] overlap"},
        {file(entry("a", "F32", "2", "0,4"), f32),
          "tensor 'a' of shape (2) and dtype F32 needs 8 bytes, data_offsets [0, 4] hold 4"},
        {file(entry("a", "F8_E4M3", "1", "0,1"), "\0"), 'unsupported dtype "F8_E4M3"'},
        {file(entry("a", "F32", "-1", "0,4"), f32), "shape entry 1 is not a non-negative integer"},
        {file(entry("a", "F32", "1.5", "0,4"), f32), "shape entry 1 is not a non-negative integer"},
        {file(entry("a", "F32", "4294967296,4294967296,4294967296", "0,4"), f32), "is too large"},
        {file(entry("a", "F32", "1,1,1,1,1,1,1,1,1", "0,4"), f32),
          "has 9 dimensions, nnvis supports at most 8"},
        {file(entry("a", "F32", "1", "0"), f32), "data_offsets must be [begin, end]"},
        {file('"a":{"dtype":"F32","shape":[1]}', f32), 'missing "data_offsets"'},
        {file('"a":[1,2]', ""), "expected an object with dtype, shape and data_offsets"},
        {file('"__metadata__":{"k":1}', ""), "'k' is not a string"},
        {file(entry("a", "F32", "1", "0,4") .. "," .. entry("a", "F32", "1", "4,8"), f32 .. f32),
          "'a' appears twice"},
        {raw_safetensors('{"a": [1, 2,}'), json .. "unexpected character at byte 12"},
        {raw_safetensors('{"a": "unterminated}'), json .. "unterminated string"},
        {raw_safetensors('{"a": "\\x"}'), json .. "bad escape"},
        {raw_safetensors('{"\\ud83d": 1}'), json .. "unpaired surrogate"},
        {raw_safetensors('{"a": 01}'), json .. "expected ',' or '}'"},
        {raw_safetensors('{"a": tru}'), json .. "unexpected character"},
        {raw_safetensors('{} {}'), json .. "trailing characters after the JSON value"},
        {raw_safetensors(("["):rep(40) .. ("]"):rep(40)), json .. "nesting deeper than 32 levels"},
        {raw_safetensors('[]'), "header is not a JSON object"},
      }
      collectgarbage()
      local before = core.stats().tensors
      for i, c in ipairs(cases) do
        local t, err = nio.load_safetensors(tmp(c[1]))
        assert.is_nil(t, "case " .. i)
        assert.is_string(err, "case " .. i)
        assert.matches(c[2], err, 1, true)
      end
      assert.are.equal(before, core.stats().tensors)   -- failures leave nothing allocated
      local t, err = nio.load_safetensors("/nonexistent-dir/x.safetensors")
      assert.is_nil(t)
      assert.matches("cannot open /nonexistent-dir/x.safetensors", err, 1, true)
    end)

    it("raises for tables that are not name -> tensor", function()
      assert.has_error(function() nio.save_safetensors({a = 1}, tmp()) end,
        "safetensors_save: value of 'a' is not a tensor (got a number)")
      assert.has_error(function() nio.save_safetensors({core.zeros{1}}, tmp()) end,
        "safetensors_save: tensor keys must be strings, got a number")
      assert.has_error(function() nio.save_safetensors({a = core.zeros{1}}, tmp(), {k = 1}) end,
        "safetensors_save: metadata must map strings to strings, 'k' is a number")
      assert.has_error(function() nio.save_safetensors({__metadata__ = core.zeros{1}}, tmp()) end,
        'safetensors_save: "__metadata__" cannot be a tensor name')
    end)

    it("raises, naming the path and the reason, when the file cannot be written", function()
      assert.error_matches(function() nio.save_safetensors({a = core.zeros{1}}, "/nonexistent-dir/x.safetensors") end,
        "save_safetensors: cannot write /nonexistent-dir/x.safetensors: No such file or directory", 1, true)
    end)
  end)

  describe("idx", function()
    local dir = "/usr/share/datasets/fashion-mnist/"

    it("reads the Fashion-MNIST test labels: 10000 labels, 1000 of each class 0..9", function()
      local labels = assert(nio.load_idx(dir .. "t10k-labels-idx1-ubyte.gz"))
      assert.are.same({10000}, labels:shape())
      local counts = {}
      for _, v in ipairs(labels:totable()) do
        assert.are.equal(math.floor(v), v)
        counts[v] = (counts[v] or 0) + 1
      end
      for c = 0, 9 do assert.are.equal(1000, counts[c]) end
      assert.are.same({9, 2, 1, 1, 6}, {table.unpack(labels:totable(), 1, 5)})
    end)

    it("reads the Fashion-MNIST test images as (10000,28,28) raw bytes", function()
      local images = assert(nio.load_idx(dir .. "t10k-images-idx3-ubyte.gz"))
      assert.are.same({10000, 28, 28}, images:shape())
      assert.are.equal(0, images:min():item())
      assert.are.equal(255, images:max():item())
    end)

    it("reads plain and gzip-compressed files alike", function()
      local bytes = idx(0x08, {2, 3}, string.char(0, 1, 2, 3, 254, 255))
      for _, b in ipairs({bytes, gzip(bytes)}) do
        local t = assert(nio.load_idx(tmp(b)))
        assert.are.same({{0, 1, 2, 3, 254, 255}}, {flat(t)})
        assert.are.same({2, 3}, t:shape())
      end
    end)

    it("reads every IDX data type big-endian, without scaling", function()
      local cases = {
        {0x09, {2}, string.pack(">i1i1", -1, -128), {-1, -128}},
        {0x0B, {2}, string.pack(">i2i2", -2, 300), {-2, 300}},
        {0x0C, {2}, string.pack(">i4i4", -70000, 5), {-70000, 5}},
        {0x0D, {2}, string.pack(">ff", 1.5, -0.25), {1.5, -0.25}},
        {0x0E, {1, 2}, string.pack(">dd", 1e10, -3), {1e10, -3}},
      }
      for _, c in ipairs(cases) do
        local t = assert(nio.load_idx(tmp(idx(c[1], c[2], c[3]))))
        assert.are.same(c[2], t:shape())
        assert.are.same(c[4], flat(t))
      end
    end)

    it("reads a dimension of size 0 as an empty tensor", function()
      assert.are.same({0, 5}, assert(nio.load_idx(tmp(idx(0x08, {0, 5}, "")))):shape())
    end)

    it("returns nil and a message for truncated, forged or foreign files", function()
      local long = idx(0x08, {1000}, ("\7"):rep(1000))
      local gz = gzip(long)
      local cases = {
        {"", "0 bytes are too short for an IDX header"},
        {idx(0x08, {10}, ("\0"):rep(5)), "truncated: (10) ubyte data needs 10 bytes, found 5"},
        {gz:sub(1, #gz // 2), "truncated: (1000) ubyte data needs 1000 bytes"},
        {idx(0x08, {2}, ("\0"):rep(5)), "more data than (2) ubyte needs (2 bytes)"},
        {"\1\2\8\1\0\0\0\1\5", "not an IDX file (first bytes 01 02 08 01"},
        {"\0\0\7\1\0\0\0\1\5", "unknown IDX data type 0x07"},
        {"\0\0\8\9", "IDX file has 9 dimensions, nnvis reads 1 to 8"},
        {"\0\0\8\0", "IDX file has 0 dimensions"},
        {"\0\0\8\3\0\0", "truncated IDX header (3 dimensions need 12 bytes, found 2)"},
        {idx(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, ""), "hold more than"},
        {gzip(idx(0x0E, {65536, 65536, 2}, ("\0"):rep(100))),
          "IDX dimensions (65536,65536,2) need 68719476736 bytes, more than max_alloc"},
        {"\x1f\x8b\x08\0\0\0\0\0\0\255" .. ("\255"):rep(40), "corrupt gzip data"},
      }
      for i, c in ipairs(cases) do
        local t, err = nio.load_idx(tmp(c[1]))
        assert.is_nil(t, "case " .. i)
        assert.is_string(err, "case " .. i)
        assert.matches(c[2], err, 1, true)
      end
      local t, err = nio.load_idx("/nonexistent-dir/x.idx")
      assert.is_nil(t)
      assert.matches("cannot open /nonexistent-dir/x.idx: No such file or directory", err, 1, true)
    end)
  end)
end)

-- Photos the way torchvision has them: JPEG in and out, the evaluation transform, the
-- ImageNet class names.
local nv = require "nnvis"
local H = require "helpers"

local FIX = "spec/fixtures/"

-- PPM (P6) or PGM (P5) with maxval 255 -> (C,H,W) tensor in [0,1]
local function read_pnm(path)
  local s = assert(io.open(path, "rb")):read("a")
  local magic, w, h, maxval, pos = s:match("^(P[56])%s+(%d+)%s+(%d+)%s+(%d+)%s()")
  assert(magic and tonumber(maxval) == 255, "not an 8-bit PPM/PGM: " .. path)
  w, h = tonumber(w), tonumber(h)
  local c = magic == "P6" and 3 or 1
  local v = {}
  for y = 0, h - 1 do
    for x = 0, w - 1 do
      for k = 0, c - 1 do
        v[k * h * w + y * w + x + 1] = s:byte(pos + (y * w + x) * c + k) / 255
      end
    end
  end
  return nv.tensor(v):view(c, h, w)
end

local function have(cmd) return (H.sh(cmd .. " </dev/null")) end   -- without the sanitizer runtimes

describe("nv.image.load of JPEG files", function()
  local djpeg = have("djpeg -version </dev/null")
  for _, f in ipairs { "photo_baseline", "photo_progressive", "gray_baseline", "gray_progressive" } do
    it("decodes " .. f .. ".jpg exactly as libjpeg-turbo's djpeg does", function()
      assert(djpeg, "djpeg is missing: `make deps` installs libjpeg-turbo-progs")
      local ref = os.tmpname()
      assert(os.execute(("djpeg -pnm -outfile %s %s%s.jpg"):format(ref, FIX, f)))
      local want = read_pnm(ref)
      os.remove(ref)
      local got = assert(nv.image.load(FIX .. f .. ".jpg"))
      assert.same(want:shape(), got:shape())
      assert.equal(0, H.maxdiff(got, want))
    end)
  end

  it("gives gray files one channel, and converts on request", function()
    assert.same({ 1, 30, 40 }, nv.image.load(FIX .. "gray_baseline.jpg"):shape())
    assert.same({ 3, 30, 40 }, nv.image.load(FIX .. "gray_baseline.jpg", { mode = "rgb" }):shape())
    assert.same({ 1, 30, 40 }, nv.image.load(FIX .. "photo_baseline.jpg", { mode = "gray" }):shape())
  end)

  it("returns nil and a message for truncated or corrupt JPEGs and for other files", function()
    local v, err = nv.image.load(FIX .. "truncated.jpg")
    assert.is_nil(v)
    assert.matches("truncated.jpg: not a readable JPEG", err)
    v, err = nv.image.load(FIX .. "cnn_zip.pth")
    assert.is_nil(v)
    assert.matches("neither a PNG nor a JPEG file", err)
    local full = assert(io.open(FIX .. "photo_progressive.jpg", "rb")):read("a")
    local path = os.tmpname()
    for i = 3, #full, 3 do   -- flipped bytes everywhere: an error or an image, never a crash
      local f = assert(io.open(path, "wb"))
      f:write(full:sub(1, i - 1), string.char((full:byte(i) + 77) % 256), full:sub(i + 1))
      f:close()
      local img, e = nv.image.load(path)
      assert.is_true(img ~= nil or type(e) == "string")
    end
    os.remove(path)
  end)

  it("refuses a header claiming more pixels than the limit before decoding", function()
    local s = assert(io.open(FIX .. "photo_baseline.jpg", "rb")):read("a")
    local sof = s:find("\255\192", 1, true)            -- SOF0: FF C0 len(2) P(1) H(2) W(2)
    local forged = s:sub(1, sof + 4) .. "\78\32\78\32" .. s:sub(sof + 9)
    local v, err = nv.core.jpeg_load_bytes(forged)
    assert.is_nil(v)
    assert.matches("20000x20000 pixels is outside the limit", err)
  end)
end)

describe("nv.image.save", function()
  local img = assert(nv.image.load(FIX .. "photo_baseline.jpg"))

  it("writes JPEG for .jpg and .jpeg, PNG for .png, by the extension", function()
    local dir = os.tmpname()
    os.remove(dir)
    for _, ext in ipairs { ".jpg", ".jpeg", ".JPG", ".png" } do
      local path = dir .. ext
      assert.is_true(nv.image.save(img, path, ext ~= ".png" and { quality = 95 } or nil))
      local head = assert(io.open(path, "rb")):read(4)
      if ext == ".png" then assert.equal("\137PNG", head) else assert.equal("\255\216\255", head:sub(1, 3)) end
      local back = assert(nv.image.load(path))
      if ext == ".png" then assert.is_true(H.maxdiff(back, img) < 1e-6)
      else assert.is_true((back - img):abs():mean():item() < 0.03) end   -- lossy
      os.remove(path)
    end
  end)

  it("writes gray and RGBA images as JPEG (alpha dropped)", function()
    local path = os.tmpname() .. ".jpg"
    assert.is_true(nv.image.save(nv.rand(30, 20), path))
    assert.same({ 1, 30, 20 }, nv.image.load(path):shape())
    assert.is_true(nv.image.save(nv.rand(4, 8, 9), path))
    assert.same({ 3, 8, 9 }, nv.image.load(path):shape())
    os.remove(path)
  end)

  it("refuses an extension it cannot write and unknown options", function()
    assert.has_error(function() nv.image.save(img, "/tmp/out.bmp") end,
      "save_image: cannot write .bmp files (/tmp/out.bmp); nnvis writes .png, .jpg and .jpeg")
    assert.has_error(function() nv.image.save(img, "/tmp/out.jpg", { qualty = 3 }) end,
      "save_image: unknown option 'qualty'")
    assert.has_error(function() nv.image.save(img, "/tmp/out.jpg", { quality = 0 }) end,
      "save_image: opts.quality must be an integer in 1..100, got 0")
  end)
end)

describe("nv.image.preprocess", function()
  it("resizes the shorter side, centre-crops and normalizes with ImageNet's statistics", function()
    local img = nv.rand(3, 48, 64)
    local x = nv.image.preprocess(img, { resize = 32, crop = 24 })
    assert.same({ 1, 3, 24, 24 }, x:shape())
    assert.same({ 2, 3, 224, 224 }, nv.image.preprocess(nv.rand(2, 3, 300, 250)):shape())
    -- a constant image stays constant: (v - mean) / std per channel
    local c = nv.image.preprocess(nv.full({ 3, 40, 50 }, 0.5), { resize = 20, crop = 16 })
    for k, m in ipairs(nv.image.IMAGENET_MEAN) do
      H.close(c:select(2, k), nv.full({ 1, 16, 16 }, (0.5 - m) / nv.image.IMAGENET_STD[k]), 1e-5)
    end
  end)

  it("without resize and crop only normalizes, and unnormalize undoes it", function()
    local img = nv.rand(3, 10, 12)
    local x = nv.image.preprocess(img, { resize = false, crop = false })
    assert.same({ 1, 3, 10, 12 }, x:shape())
    H.close(nv.image.unnormalize(x):select(1, 1), img, 1e-5)
    H.close(nv.image.unnormalize(x:select(1, 1)), img, 1e-5)
  end)

  it("makes gray images RGB", function()
    assert.same({ 1, 3, 8, 8 }, nv.image.preprocess(nv.rand(1, 10, 10), { resize = 8, crop = 8 }):shape())
  end)

  it("raises for unknown options and impossible crops", function()
    assert.has_error(function() nv.image.preprocess(nv.rand(3, 8, 8), { crpo = 4 }) end,
      "preprocess: unknown option 'crpo' (did you mean 'crop'?)")
    assert.has_error(function() nv.image.preprocess(nv.rand(3, 8, 8), { resize = 8, crop = 10 }) end,
      "preprocess: crop 10x10 is larger than the resized image 8x8")
    assert.has_error(function() nv.image.preprocess(nv.rand(8, 8)) end,
      "preprocess: expected a (C,H,W) or (N,C,H,W) image tensor, got (8,8)")
  end)

  local torch = have("/usr/bin/python3 -c 'import torch, torchvision'")
  local it_torch = H.it_if(torch, "python3-torch and python3-torchvision")
  it_torch("agrees with torchvision's Resize, CenterCrop, ToTensor, Normalize on a JPEG (needs python3-torchvision)", function()
    local bin = os.tmpname()
    local py = [[
import struct, sys
from PIL import Image
from torchvision import transforms as T
x = T.Compose([T.Resize(32), T.CenterCrop(24), T.ToTensor(),
               T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(Image.open(sys.argv[1]).convert("RGB"))
open(sys.argv[2], "wb").write(struct.pack("<%df" % x.numel(), *x.flatten().tolist()))
]]
    local f = assert(io.popen(("%s/usr/bin/python3 - %stiny_photo.jpg %s"):format(H.CLEAN, FIX, bin), "w"))
    f:write(py)
    assert(f:close())
    local b = assert(io.open(bin, "rb")):read("a")
    os.remove(bin)
    local v = {}
    for i = 1, #b // 4 do v[i] = string.unpack("<f", b, 4 * i - 3) end
    local x = nv.image.preprocess(assert(nv.image.load(FIX .. "tiny_photo.jpg")), { resize = 32, crop = 24 })
    -- PIL resamples in 8 bits: within one level of 255 (/ std) of nnvis's float resampling
    assert.is_true(H.maxdiff(x, nv.tensor(v):view(1, 3, 24, 24)) < 0.02)
  end)
end)

describe("nv.data.imagenet_classes", function()
  it("has the 1,000 names, 1-based, in torchvision's order", function()
    local c = nv.data.imagenet_classes
    assert.equal(1000, #c)
    assert.equal("tench", c[1])
    assert.equal("tabby", c[282])
    assert.equal("toilet tissue", c[1000])
  end)
end)

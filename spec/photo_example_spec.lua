-- examples/photo_gradcam.lua runs end to end on a tiny committed JPEG.
local nv = require "nnvis"

describe("examples/photo_gradcam.lua", function()
  it("saves a captioned Grad-CAM overlay of a JPEG photo, warning loudly about random weights", function()
    local out = os.tmpname() .. ".jpg"
    local p = assert(io.popen(("lua5.4 examples/photo_gradcam.lua spec/fixtures/tiny_photo.jpg - %s 2>&1"):format(out)))
    local text = p:read("a")
    assert.is_true(p:close(), text)
    assert.matches("WARNING: no weights given: RANDOM weights", text)
    assert.matches("tiny_photo.jpg: class %d+, .+, p = [%d.]+ %-> ", text)
    local img = assert(nv.image.load(out))
    os.remove(out)
    assert.equal(3, img:size(1))
    assert.is_true(img:size(2) > 224)   -- the 224 x 224 crop plus the caption strip
  end)
end)

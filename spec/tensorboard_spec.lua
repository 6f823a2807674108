local nv = require "nnvis"
local TB = nv.tensorboard

local R = require "tb_reader"
local decode = R.decode

local read_records = R.read_records

describe("nnvis.io.tensorboard", function()
  it("computes CRC-32C (check value of '123456789' is 0xE3069283)", function()
    assert.equal(0xE3069283, TB.crc32c("123456789"))
    assert.equal(0, TB.crc32c(""))
  end)

  it("writes framed records that decode to a version event, scalars, histograms and images", function()
    local dir = os.tmpname()
    os.remove(dir)
    local w = assert(TB.writer(dir))
    w:scalar("loss", 0.5, 3)
    w:histogram("weights", nv.tensor { 1, 2, 2, 3 }, 4, { bins = 2 })
    w:image("picture", nv.ones(3, 2, 5) * 0.5, 5)
    w:close()
    local recs = read_records(w.path)
    os.execute("rm -rf " .. dir)
    assert.equal(4, #recs)
    local e0 = decode(recs[1])
    assert.equal("brain.Event:2", e0[3][1])
    -- scalar: Event.step = 3, summary.value.tag/simple_value
    local e1 = decode(recs[2])
    assert.equal(3, e1[2][1])
    local v1 = decode(decode(e1[5][1])[1][1])   -- Event.summary -> Summary.value
    assert.equal("loss", v1[1][1])
    assert.is_true(math.abs(v1[2][1] - 0.5) < 1e-7)
    -- histogram: min, max, num, sum, sum_squares, bucket limits and counts
    local e2 = decode(recs[3])
    assert.equal(4, e2[2][1])
    local v2 = decode(decode(e2[5][1])[1][1])
    assert.equal("weights", v2[1][1])
    local h = decode(v2[5][1])
    assert.same({ 1, 3, 4, 8, 18 }, { h[1][1], h[2][1], h[3][1], h[4][1], h[5][1] })
    local counts = { string.unpack("<dd", h[7][1]) }
    assert.same({ 1, 3 }, { counts[1], counts[2] })
    -- image: height, width, colorspace and a PNG that decodes back
    local v3 = decode(decode(decode(recs[4])[5][1])[1][1])
    assert.equal("picture", v3[1][1])
    local img = decode(v3[4][1])
    assert.same({ 2, 5, 3 }, { img[1][1], img[2][1], img[3][1] })
    local back = nv.core.png_load_bytes(img[4][1])
    assert.same({ 3, 2, 5 }, back:shape())
  end)
end)

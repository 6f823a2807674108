local nv = require "nnvis"

describe("nnvis.io.data", function()
  it("reads the Fashion-MNIST test split with 1-based labels and images in [0,1]", function()
    local d = nv.data.fashion_mnist { split = "test" }
    assert.same({ 10000, 1, 28, 28 }, d.images:shape())
    assert.same({ 10000 }, d.labels:shape())
    assert.equal(1, d.labels:min():item())
    assert.equal(10, d.labels:max():item())
    assert.equal(10, d.labels:select(1, 1):item())     -- the first test image is an ankle boot
    assert.equal("Ankle boot", d.classes[10])
    assert.is_true(d.images:min():item() >= 0 and d.images:max():item() <= 1)
    -- each class has exactly 1,000 test images
    assert.equal(1000, d.labels:eq(3):sum():item())
  end)

  it("names the Debian package when the files are missing", function()
    local ok, err = pcall(nv.data.fashion_mnist, { path = "/nonexistent" })
    assert.is_false(ok)
    assert.truthy(err:find("apt-get install dataset-fashion-mnist", 1, true))
  end)

  it("gives a clear error for a corrupt file instead of crashing", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local f = io.open(dir .. "/t10k-images-idx3-ubyte", "wb")
    f:write("\0\0\8\3\0\0\39\16\0\0\0\28\0\0\0\28garbage")
    f:close()
    f = io.open(dir .. "/t10k-labels-idx1-ubyte", "wb")
    f:write("\0\0\8\1\0\0\39\16\1\2")
    f:close()
    local ok, err = pcall(nv.data.fashion_mnist, { split = "test", path = dir })
    os.execute("rm -rf " .. dir)
    assert.is_false(ok)
    assert.truthy(err:find("fashion_mnist:", 1, true), err)
    assert.truthy(err:lower():find("truncated", 1, true), err)
  end)

  it("iterates over batches, shuffled repeatably under a seed", function()
    local x = nv.arange(10):view(10, 1)
    local y = nv.arange(10)
    local sizes, seen = {}, {}
    for bx, by in nv.data.batches(x, y, { batch_size = 4 }) do
      sizes[#sizes + 1] = bx:size(1)
      for _, v in ipairs(by:totable()) do seen[#seen + 1] = v end
    end
    assert.same({ 4, 4, 2 }, sizes)
    assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, seen)
    local function order(seed)
      local o = {}
      for _, by in nv.data.batches(x, y, { batch_size = 3, shuffle = true, seed = seed, drop_last = true }) do
        for _, v in ipairs(by:totable()) do o[#o + 1] = v end
      end
      return o
    end
    assert.same(order(5), order(5))
    assert.equal(9, #order(5))
    assert.are_not.same(order(5), order(6))
  end)
end)

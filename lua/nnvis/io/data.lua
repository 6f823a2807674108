-- nnvis.io.data — datasets and batches: the IDX reader (MNIST's format, gzip or not),
-- Fashion-MNIST from Debian's dataset-fashion-mnist package, and a seeded batch iterator.
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local io_ = require "nnvis.io"

local M = {}

M.DEFAULT_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

--- Fashion-MNIST's ten classes, in label order (label k + 1 here is the dataset's k)
M.fashion_mnist_classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                            "Sneaker", "Bag", "Ankle boot" }

-- nv.data.imagenet_classes: the 1,000 ImageNet class names, 1-based, read on first use
setmetatable(M, { __index = function(t, k)
  if k == "imagenet_classes" then
    local v = require "nnvis.io.imagenet_classes"
    rawset(t, k, v)
    return v
  end
end })

local Decoded = require("nnvis.tensor.class")("ImagenetTop")
function Decoded.__tostring(d)
  local out = {}
  for i, e in ipairs(d) do out[i] = string.format("%d. %s (class %d) %.4f", i, e.name, e.class, e.prob) end
  return table.concat(out, "\n")
end

--- nv.data.imagenet_decode(probs [, top = 5]), as Keras' decode_predictions: for scores of
--- ImageNet's 1,000 classes, (1000) or (N,1000), the top classes of each sample, best first,
--- as {class = id (1-based), name, prob}; a list per sample for (N,1000), one list for (1000).
--- Logits are turned into probabilities (softmax) when they do not already sum to 1.
function M.imagenet_decode(probs, top)
  local util = require "nnvis.tensor.util"
  top = top or 5
  if not util.is_tensor(probs) then util.raise("imagenet_decode: expected a tensor of scores, got " .. type(probs)) end
  local single = probs:dim() == 1
  local p = single and probs:unsqueeze(1) or probs
  if p:dim() ~= 2 or p:size(2) ~= 1000 then
    util.raise("imagenet_decode: expected scores of ImageNet's 1000 classes, (1000) or (N,1000), got " .. util.shape_str(probs))
  end
  if math.type(top) ~= "integer" or top < 1 or top > 1000 then
    util.raise("imagenet_decode: top must be an integer in 1..1000, got " .. tostring(top))
  end
  p = p:detach()
  local sums = p:sum(2):values()
  local mn = p:min():item()
  local is_prob = mn >= 0
  for _, s in ipairs(sums) do if math.abs(s - 1) > 1e-3 then is_prob = false end end
  if not is_prob then p = core.softmax(p, 2) end
  local vals, idx = p:topk(top, 2)
  local names = M.imagenet_classes
  local out = {}
  for i = 1, p:size(1) do
    local list = setmetatable({}, Decoded)
    for j = 1, top do
      local id = math.tointeger(idx:get(i, j))
      list[j] = { class = id, name = names[id], prob = vals:get(i, j) }
    end
    out[i] = list
  end
  return single and out[1] or out
end

--- IDX file -> float tensor of its shape (raw values); nil, message on a bad file
function M.idx(path) return io_.load_idx(path) end

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

--- Fashion-MNIST split: {images = (N,1,28,28) in [0,1], labels = (N) 1-based, classes}.
--- opts.split "train" (60,000) or "test" (10,000); opts.path the folder with the four
--- *-idx?-ubyte(.gz) files (default: Debian's package folder); opts.limit keeps the first n.
function M.fashion_mnist(opts)
  opts = check_opts("fashion_mnist", opts, { "split", "path", "limit" })
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error('fashion_mnist: split must be "train" or "test", got ' .. tostring(split), 2)
  end
  local dir = opts.path or M.DEFAULT_FASHION_MNIST
  local prefix = split == "train" and "train" or "t10k"
  local function find(kind)
    for _, ext in ipairs { ".gz", "" } do
      local p = string.format("%s/%s-%s%s", dir, prefix, kind, ext)
      if exists(p) then return p end
    end
  end
  local ip, lp = find("images-idx3-ubyte"), find("labels-idx1-ubyte")
  if not ip or not lp then
    error(string.format("fashion_mnist: no %s-images-idx3-ubyte(.gz) and %s-labels-idx1-ubyte(.gz) in %s; " ..
      "install Debian's package with `apt-get install dataset-fashion-mnist` (or pass opts.path)", prefix, prefix, dir), 2)
  end
  local images, err = io_.load_idx(ip)
  if not images then error("fashion_mnist: " .. err, 2) end
  local labels, err2 = io_.load_idx(lp)
  if not labels then error("fashion_mnist: " .. err2, 2) end
  local s = images:shape()
  if #s ~= 3 or s[2] ~= 28 or s[3] ~= 28 or labels:dim() ~= 1 or labels:size(1) ~= s[1] then
    error(string.format("fashion_mnist: unexpected shapes: images (%s), labels (%s)",
      table.concat(s, ","), table.concat(labels:shape(), ",")), 2)
  end
  local lo, hi = labels:min():item(), labels:max():item()
  if lo < 0 or hi > 9 then error(string.format("fashion_mnist: labels out of range 0..9 (%g..%g)", lo, hi), 2) end
  local n = s[1]
  if opts.limit and opts.limit < n then
    n = opts.limit
    images, labels = images:narrow(1, 1, n), labels:narrow(1, 1, n)
  end
  return {
    images = (images:reshape(n, 1, 28, 28) * (1 / 255)),
    labels = labels + 1,
    classes = M.fashion_mnist_classes,
    n = n,
  }
end

--- Items of a dataset pasted at a random quadrant of a larger, empty canvas, for models and
--- explanations that must find where the item is (CAMs that localise):
--- nv.data.placed(d, {classes = {2, 8, 9}, n = 1200 [, first = 1, size = 56]}) -> x (n,1,size,size),
--- y (n) the 1-based position of each item's label in `classes`, quad (list of 0..3: top-left,
--- top-right, bottom-left, bottom-right), and the index after the last item read.
function M.placed(d, opts)
  opts = check_opts("placed", opts, { "classes", "n", "first", "size" })
  local classes, n, size = opts.classes, opts.n, opts.size or 56
  if type(classes) ~= "table" or #classes == 0 then error("placed: classes must be a list of labels", 2) end
  local h, w = d.images:size(3), d.images:size(4)
  if size < 2 * h or size < 2 * w then error("placed: size must hold 2x2 items", 2) end
  local x = core.zeros(n, d.images:size(2), size, size)
  local y, quad = {}, {}
  local k, i = 0, opts.first or 1
  while k < n do
    if i > d.images:size(1) then error(("placed: the dataset has only %d items of these classes"):format(k), 2) end
    local lab = d.labels:get(i)
    for c, want in ipairs(classes) do
      if lab == want then
        k = k + 1
        local q = math.floor(core.rand(1):item() * 4)       -- 0..3
        local oy, ox = (q // 2) * (size - h) + 1, (q % 2) * (size - w) + 1
        x:select(1, k):narrow(2, oy, h):narrow(3, ox, w):copy(d.images:select(1, i))
        y[k], quad[k] = c, q
        break
      end
    end
    i = i + 1
  end
  return x, core.tensor(y), quad, i
end

--- Iterator over mini-batches of (x, y) selected along dim 1:
---   for x, y, i in nv.data.batches(images, labels, {batch_size = 64, shuffle = true, seed = 1}) do
--- y may be nil.  drop_last drops a final short batch.  The seed makes the order repeatable.
function M.batches(x, y, opts)
  opts = check_opts("batches", opts, { "batch_size", "drop_last", "seed", "shuffle" })
  local n = x:size(1)
  if y and y:size(1) ~= n then
    error(string.format("batches: x has %d samples, y has %d", n, y:size(1)), 2)
  end
  local bs = opts.batch_size or 64
  if bs < 1 then error("batches: batch_size must be >= 1", 2) end
  local order
  if opts.shuffle then   -- a seed makes the order repeatable without reseeding the caller's stream
    order = require("nnvis.tensor.util").with_seed(opts.seed, core.randperm, n)
  end
  local start, k = 1, 0
  return function()
    if start > n then return nil end
    local len = math.min(bs, n - start + 1)
    if len < bs and opts.drop_last then return nil end
    local bx, by
    if order then
      local idx = order:narrow(1, start, len)
      bx = x:index_select(1, idx)
      by = y and y:index_select(1, idx)
    else
      bx = x:narrow(1, start, len)
      by = y and y:narrow(1, start, len)
    end
    start = start + len
    k = k + 1
    return bx, by, k
  end
end

return M

-- nnvis.inspect.project — what a layer's features look like over a data set: the features
-- themselves (batched forwards, flattened per sample), exact PCA through LAPACK's symmetric
-- eigensolver, exact t-SNE (van der Maaten & Hinton 2008) for up to a few thousand points,
-- and TensorBoard projector files (tensors.tsv, metadata.tsv, a sprite of thumbnails and
-- projector_config.pbtxt) that TensorBoard's Projector tab opens.
--
--   local f = nv.project.features(model, x, "classifier.1")        -- (N, D)
--   local p = nv.project.pca(f, 2)          -- p.points (N,2), p.explained_ratio, p.components
--   local t = nv.project.tsne(f, {perplexity = 30, seed = 1})      -- t.points (N,2)
--   nv.project.projector("runs/emb", f, {labels = y, images = x, names = classes})
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

local function check_matrix(x, fname)
  if not util.is_tensor(x) or x:dim() ~= 2 then
    error(string.format("%s: expected features (N, D), got %s", fname, util.is_tensor(x) and util.shape_str(x) or type(x)), 3)
  end
  if x:size(1) < 2 then error(fname .. ": needs at least 2 points, got " .. x:size(1), 3) end
end

--- features(model, x, layer [, opts]) -> (N, D): the output of `layer` (a dotted name) for
--- every sample of x, flattened per sample, run opts.batch_size (256) samples at a time in
--- eval mode without gradients; layer nil gives the model's output
function M.features(model, x, layer, opts)
  opts = util.check_opts("project.features", opts, { "batch_size" })
  if not util.is_tensor(x) or x:dim() < 2 then error("features: expected a batch of inputs (N, ...)", 2) end
  local mod = model
  if layer then
    local m = util.find_layer("features", model, layer)
    mod = m
  end
  local bs = opts.batch_size or 256
  local parts = {}
  util.with_mode(model, false, function()
    for s = 1, x:size(1), bs do
      local len = math.min(bs, x:size(1) - s + 1)
      local got
      local h <close> = mod:register_forward_hook(function(_, _, out) got = util.first_tensor(out) end)
      local out = core.no_grad(model, x:narrow(1, s, len))
      if not layer then got = util.first_tensor(out) end
      parts[#parts + 1] = got:detach():reshape(len, -1)
    end
  end)
  return core.cat(parts, 1)
end

--- pca(x, k) -> {points (N,k), components (k,D) (unit rows), explained_variance (k values),
--- explained_ratio (k values, shares of the total variance), mean (D)}: exact principal
--- components of the rows of x (the covariance's eigenvectors, by LAPACK's dsyevd; for
--- D > N the Gram matrix's).  Each component's sign makes its largest loading positive.
function M.pca(x, k)
  check_matrix(x, "pca")
  local n, d = x:size(1), x:size(2)
  k = k or 2
  if math.type(k) ~= "integer" or k < 1 or k > math.min(n, d) then
    error(string.format("pca: k must be an integer in [1, %d] for features (%d,%d), got %s", math.min(n, d), n, d, tostring(k)), 2)
  end
  local mean = x:mean(1)
  local xc = (x - mean):contiguous()
  local comps, vals
  local total = xc:square():sum():item() / (n - 1)
  if d <= n then
    local cov = core.matmul(xc:t(), xc) / (n - 1)
    local w, v = core.eigh(cov:contiguous())
    comps = v:narrow(2, d - k + 1, k):t()                                  -- ascending: the last k
    vals = w:narrow(1, d - k + 1, k)
  else
    local gram = core.matmul(xc, xc:t()) / (n - 1)
    local w, u = core.eigh(gram:contiguous())
    vals = w:narrow(1, n - k + 1, k)
    local uk = u:narrow(2, n - k + 1, k)                                   -- (n,k)
    comps = core.matmul(xc:t(), uk):t()                                    -- (k,d), unnormalized
    comps = comps / comps:square():sum(2, true):sqrt():clamp(1e-30, math.huge)
  end
  -- largest first
  local order = core.arange(k, 0, -1)
  comps = comps:index_select(1, order):contiguous()
  vals = vals:index_select(1, order)
  -- deterministic signs: the largest |loading| of each component positive
  local signs = {}
  for i = 1, k do
    local row = comps:select(1, i)
    local j = row:abs():argmax(1):item()
    signs[i] = row:get(j) < 0 and -1 or 1
  end
  comps = comps * core.tensor(signs):view(k, 1)
  local ev = vals:clamp(0, math.huge):values()
  local ratio = {}
  for i = 1, k do ratio[i] = total > 0 and ev[i] / total or 0 end
  return { points = core.matmul(xc, comps:t()), components = comps, explained_variance = ev, explained_ratio = ratio,
           mean = mean }
end

-- squared Euclidean distances between the rows of x (N,N), diagonal 0
local function sqdist(x)
  local sq = x:square():sum(2, true)
  return (sq + sq:t() - core.matmul(x, x:t()) * 2):clamp(0, math.huge)
end

-- P_{j|i} with each row's Gaussian bandwidth found by bisection (all rows at once) so that
-- the row's entropy is log(perplexity); symmetrized and normalized
local function affinities(D, perplexity)
  local n = D:size(1)
  local logU = math.log(perplexity)
  local eye = core.eye(n)
  local offdiag = 1 - eye
  local beta = core.ones({ n, 1 })
  local lo = core.zeros({ n, 1 })
  local hi = core.full({ n, 1 }, math.huge)
  -- scale the distances so the first guesses are in range
  local scale = (D:sum() / (n * (n - 1))):item()
  if scale <= 0 then scale = 1 end
  local Ds = D / scale
  local P
  for _ = 1, 64 do
    P = (-(Ds * beta)):exp() * offdiag
    local sumP = P:sum(2, true):clamp(1e-30, math.huge)
    local H = sumP:log() + beta * (Ds * P):sum(2, true) / sumP
    local too_flat = H:gt(logU)                                             -- entropy too high: raise beta
    lo = core.where(too_flat, beta, lo)
    hi = core.where(too_flat, hi, beta)
    local up = core.where(hi:eq(math.huge), beta * 2, (beta + hi) / 2)
    local down = (beta + lo) / 2
    beta = core.where(too_flat, up, down)
  end
  P = P / P:sum(2, true):clamp(1e-30, math.huge)
  P = (P + P:t()) / (2 * n)
  return P:clamp(1e-12, math.huge) * offdiag
end

--- tsne(x [, opts]) -> {points (N,2), kl (the final KL divergence), iterations}: exact t-SNE
--- (van der Maaten & Hinton 2008) of the rows of x.  opts: dims (2), perplexity (30, at most
--- (N-1)/3), iterations (1000), learning_rate ("auto": max(N / 48, 50)), exaggeration (12,
--- for the first 250 iterations), init ("pca", or "random" drawn with opts.seed), seed (0),
--- pca_dims (50: the features are first reduced to that many principal components).  The
--- caller's random stream is left as it was.  N is limited to 5000 (the N x N matrices).
function M.tsne(x, opts)
  opts = util.check_opts("tsne", opts, { "dims", "perplexity", "iterations", "learning_rate", "exaggeration", "init",
    "seed", "pca_dims" })
  check_matrix(x, "tsne")
  local n = x:size(1)
  if n > 5000 then error(string.format("tsne: %d points is too many for exact t-SNE (at most 5000); subsample", n), 2) end
  local dims = opts.dims or 2
  local perp = opts.perplexity or math.min(30, (n - 1) / 3)
  if perp <= 0 or perp > (n - 1) / 3 + 1e-9 then
    error(string.format("tsne: perplexity must be in (0, %g] for %d points, got %g", (n - 1) / 3, n, perp), 2)
  end
  local iters = opts.iterations or 1000
  local lr = opts.learning_rate or "auto"
  if lr == "auto" then lr = math.max(n / 48, 50) end
  local exag = opts.exaggeration or 12
  local pd = opts.pca_dims or 50
  x = x:detach()
  if x:size(2) > pd and n > pd then x = M.pca(x, pd).points end
  local P = affinities(sqdist(x), perp)
  local Y
  if (opts.init or "pca") == "pca" then
    local p = M.pca(x, math.min(dims, x:size(2))).points
    Y = p / (p:select(2, 1):std():item() + 1e-12) * 1e-4
  elseif opts.init == "random" then
    Y = util.with_seed(opts.seed or 0, function() return core.randn({ n, dims }) * 1e-4 end)
  else
    error("tsne: init must be \"pca\" or \"random\", got " .. tostring(opts.init), 2)
  end
  Y = Y:contiguous()
  local offdiag = 1 - core.eye(n)
  local vel = core.zeros(Y:shape())
  local gains = core.ones(Y:shape())
  local kl
  for it = 1, iters do
    local early = it <= 250
    local Pe = early and P * exag or P
    local num = (1 / (1 + sqdist(Y))) * offdiag
    local Q = (num / num:sum()):clamp(1e-12, math.huge)
    local PQ = (Pe - Q) * num
    local grad = (Y * PQ:sum(2, true) - core.matmul(PQ, Y)) * 4
    -- delta-bar-delta gains (Jacobs 1988), as the reference implementation
    local same = (grad:gt(0)):eq(vel:gt(0))
    gains = core.where(same, gains * 0.8, gains + 0.2):clamp(0.01, math.huge)
    local mom = it <= 250 and 0.5 or 0.8
    vel = vel * mom - gains * grad * lr
    Y = Y + vel
    Y = Y - Y:mean(1, true)
    if it == iters then kl = (P * (P:clamp(1e-12, math.huge) / Q):log()):sum():item() end
  end
  return { points = Y, kl = kl, iterations = iters }
end

local function label_text(v, names)
  if names and type(v) == "number" and names[v] then return tostring(names[v]) end
  if type(v) == "number" and math.type(v) == "float" and v == math.floor(v) then return tostring(math.floor(v)) end
  return tostring(v)
end

--- projector(dir, features (N,D) [, opts]) -> path of projector_config.pbtxt: writes the
--- files TensorBoard's Projector reads from a log directory.  opts: labels (N class ids, a
--- tensor or a list), names (class names for the ids), metadata (a table column name ->
--- list of N values, for more columns), images ((N,C,H,W) in [0,1]: a sprite of thumbnails,
--- at most 8192x8192 pixels), thumbnail (the sprite's tile size, default the image size
--- capped at 64), name (the tensor's name, "features")
function M.projector(dir, feats, opts)
  opts = util.check_opts("projector", opts, { "labels", "names", "metadata", "images", "thumbnail", "name" })
  if type(dir) ~= "string" then error("projector: dir must be a string", 2) end
  check_matrix(feats, "projector")
  local n, d = feats:size(1), feats:size(2)
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  local function write(name, s)
    local f, err = io.open(dir .. "/" .. name, "wb")
    if not f then error("projector: cannot write " .. dir .. "/" .. name .. ": " .. tostring(err), 3) end
    f:write(s)
    f:close()
  end
  -- tensors.tsv: one row per point, tab-separated
  local v = feats:detach():contiguous():values()
  local rows = {}
  for i = 1, n do
    local r = {}
    for j = 1, d do r[j] = string.format("%.6g", v[(i - 1) * d + j]) end
    rows[i] = table.concat(r, "\t")
  end
  write("tensors.tsv", table.concat(rows, "\n") .. "\n")
  -- metadata.tsv: a single column has no header; several have one
  local cols, names = {}, {}
  if opts.labels ~= nil then
    local l = util.is_tensor(opts.labels) and opts.labels:contiguous():values() or opts.labels
    if #l ~= n then error(string.format("projector: %d labels for %d points", #l, n), 2) end
    cols[#cols + 1] = l
    names[#names + 1] = "label"
  end
  for k, col in pairs(opts.metadata or {}) do
    if #col ~= n then error(string.format("projector: metadata column '%s' has %d values for %d points", k, #col, n), 2) end
    cols[#cols + 1] = col
    names[#names + 1] = k
  end
  local meta
  if #cols > 0 then
    local out = {}
    if #cols > 1 then out[1] = table.concat(names, "\t") end
    for i = 1, n do
      local r = {}
      for c = 1, #cols do r[c] = label_text(cols[c][i], c == 1 and opts.labels ~= nil and opts.names or nil):gsub("[\t\n]", " ") end
      out[#out + 1] = table.concat(r, "\t")
    end
    write("metadata.tsv", table.concat(out, "\n") .. "\n")
    meta = "metadata.tsv"
  end
  -- sprite.png: thumbnails in a square grid, row-major
  local sprite
  if opts.images ~= nil then
    local imgs = opts.images
    if not util.is_tensor(imgs) or imgs:dim() ~= 4 or imgs:size(1) ~= n then
      error(string.format("projector: images must be (%d,C,H,W), got %s", n, util.is_tensor(imgs) and util.shape_str(imgs) or type(imgs)), 2)
    end
    local t = opts.thumbnail or math.min(64, math.max(imgs:size(3), imgs:size(4)))
    local per = math.ceil(math.sqrt(n))
    if per * t > 8192 then error(string.format("projector: a sprite of %d thumbnails of %d px exceeds 8192 px; use a smaller thumbnail", n, t), 2) end
    local small = core.interpolate(imgs:detach(), { size = { t, t }, mode = "bilinear" }):clamp(0, 1)
    local c = small:size(2)
    if c == 1 then small = small:expand(n, 3, t, t) elseif c ~= 3 then small = small:narrow(2, 1, 3) end
    local canvas = core.ones({ 3, per * t, per * t })
    for i = 1, n do
      local r, col = (i - 1) // per, (i - 1) % per
      canvas:narrow(2, r * t + 1, t):narrow(3, col * t + 1, t):copy(small:select(1, i))
    end
    assert(require("nnvis.io").save_image(canvas, dir .. "/sprite.png"))
    sprite = t
  end
  local cfg = { "embeddings {", string.format('  tensor_name: "%s"', (opts.name or "features"):gsub('"', "")),
    '  tensor_path: "tensors.tsv"' }
  if meta then cfg[#cfg + 1] = '  metadata_path: "metadata.tsv"' end
  if sprite then
    cfg[#cfg + 1] = '  sprite {'
    cfg[#cfg + 1] = '    image_path: "sprite.png"'
    cfg[#cfg + 1] = "    single_image_dim: " .. sprite
    cfg[#cfg + 1] = "    single_image_dim: " .. sprite
    cfg[#cfg + 1] = "  }"
  end
  cfg[#cfg + 1] = "}"
  write("projector_config.pbtxt", table.concat(cfg, "\n") .. "\n")
  return dir .. "/projector_config.pbtxt"
end

return M

--- nnvis.core_docs — what the C core's public functions do (nv.tensor, nv.randn, nv.conv2d,
-- tensor methods, ...), in the form nnvis.doc gives every entry: public name -> {signature,
-- text, example}.  The core is csrc/ (kernels, autograd) and csrc/lua_*.c (the bindings).
-- Conventions for all of them: tensors are float32; dims and indices are 1-based, negative
-- dims count from the end; functions marked (grad) record the autograd graph when an input
-- requires grad.
local D = {}

local function e(signature, text, example) return { signature = signature, text = text, example = example } end

-- ---- creation ------------------------------------------------------------------------------
D["nv.tensor"] = e("nv.tensor(data)",
  "A new tensor from a number (0-d), a list of numbers, or nested lists of equal lengths\n" ..
  "(one dim per level).", "local t = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 } }   -- (2,3)")
D["nv.zeros"] = e("nv.zeros(size...)", "A tensor of zeros; size as numbers or one table: nv.zeros(2, 3), nv.zeros({2, 3}).",
  "local z = nv.zeros(1, 3, 224, 224)")
D["nv.ones"] = e("nv.ones(size...)", "A tensor of ones; size as numbers or one table.")
D["nv.full"] = e("nv.full(size, value)", "A tensor of size (a table) filled with value.", "nv.full({2, 2}, 0.5)")
D["nv.rand"] = e("nv.rand(size...)", "Uniform random values in [0, 1) from nnvis's generator (nv.manual_seed).")
D["nv.randn"] = e("nv.randn(size...)", "Standard normal random values (mean 0, std 1) from nnvis's generator.",
  "nv.manual_seed(0)\nlocal x = nv.randn(8, 3, 32, 32)")
D["nv.randperm"] = e("nv.randperm(n)", "A random permutation of 1..n (as floats), from nnvis's generator.")
D["nv.arange"] = e("nv.arange([start = 0,] stop [, step = 1])",
  "The values start, start + step, ... below stop, as torch.arange.", "nv.arange(5)      -- 0 1 2 3 4")
D["nv.eye"] = e("nv.eye(n [, m])", "The (n,m) identity matrix (m = n by default).")
D["nv.manual_seed"] = e("nv.manual_seed(seed)",
  "Seeds nnvis's random generator (nv.rand, nv.randn, dropout, shuffling), so runs repeat.")
D["nv.now"] = e("nv.now()", "Seconds from a monotonic clock, for timing: local t0 = nv.now(); ...; print(nv.now() - t0).")
D["nv.memory"] = e("nv.memory()",
  "The allocator's figures: {tensors, storages, nodes (graph nodes alive), bytes (in live storages),\n" ..
  "cached_bytes (freed buffers kept for reuse)}.")

-- ---- combining, selecting -------------------------------------------------------------------
D["nv.cat"] = e("nv.cat(list, dim)", "Joins tensors along an existing dim (the others equal). (grad)",
  "nv.cat({ a, b }, 1)")
D["nv.stack"] = e("nv.stack(list, dim)", "Joins tensors of one shape along a new dim. (grad)")
D["nv.where"] = e("nv.where(cond, a, b)",
  "Elementwise a where cond is non-zero, else b; a and b tensors or numbers, broadcast. (grad to a, b)")
D["nv.matmul"] = e("nv.matmul(a, b)",
  "Matrix product (BLAS sgemm): (n,k) x (k,m), batched over leading dims with broadcasting, vectors\n" ..
  "as in torch.matmul. (grad)")

-- ---- autograd -----------------------------------------------------------------------------
D["nv.grad"] = e("nv.grad(y, inputs [, {grad = g, retain_graph = false, guided = false}])",
  "The gradients of y (a scalar, or any shape with grad = g of its shape) with respect to each\n" ..
  "tensor of inputs, as a list, without touching their .grad; only the part of the graph that\n" ..
  "reaches inputs runs.  guided = true: guided backpropagation, each ReLU passing only positive\n" ..
  "gradients (a hook of this pass; core.set_guided_relu(on) sets the default for old callers).", "local g = nv.grad((x * x):sum(), { x })[1]   -- 2x")
D["nv.no_grad"] = e("nv.no_grad(fn, ...)",
  "Calls fn(...) with graph recording off and returns its results; the mode is restored even when\n" ..
  "fn raises.", "local y = nv.no_grad(model, x)")
D["nv.is_grad_enabled"] = e("nv.is_grad_enabled()", "Whether operations record the autograd graph now.")
D["nv.set_grad_enabled"] = e("nv.set_grad_enabled(on)",
  "Turns graph recording on or off; returns the previous mode (to restore it).")

-- ---- neural-network ops -----------------------------------------------------------------------
D["nv.conv2d"] = e("nv.conv2d(x, weight [, bias] [, {stride = 1, padding = 0, dilation = 1, groups = 1}])",
  "2-d convolution (cross-correlation, as PyTorch): x (N,Cin,H,W), weight (Cout,Cin/groups,kh,kw),\n" ..
  "bias (Cout); stride, padding and dilation a number or {h, w}.  Runs on oneDNN, Winograd or\n" ..
  "im2col + gemm (nv.config). (grad to x, weight, bias)",
  "local y = nv.conv2d(x, w, b, { padding = 1 })")
D["nv.max_pool2d"] = e("nv.max_pool2d(x, kernel [, {stride = kernel, padding = 0, dilation = 1, ceil_mode = false}])",
  "2-d max pooling of (N,C,H,W) or (C,H,W); NaN wins as in PyTorch. (grad)")
D["nv.avg_pool2d"] = e("nv.avg_pool2d(x, kernel [, {stride = kernel, padding = 0, ceil_mode = false, count_include_pad = true}])",
  "2-d average pooling, PyTorch's rules for padding and ceil_mode. (grad)")
D["nv.adaptive_avg_pool2d"] = e("nv.adaptive_avg_pool2d(x, size)",
  "Average pooling to an output of size (a number or {h, w}), PyTorch's bins. (grad)",
  "nv.adaptive_avg_pool2d(x, 1)   -- global average pooling")
D["nv.batch_norm"] = e("nv.batch_norm(x, running_mean, running_var, weight, bias [, {training = false, momentum = 0.1, eps = 1e-5}])",
  "Batch normalization over (N,C,...) per channel: with training, the batch's statistics (and the\n" ..
  "running ones updated in place), else the running ones. (grad)")
D["nv.layer_norm"] = e("nv.layer_norm(x, weight, bias [, eps = 1e-5])",
  "Layer normalization over the last dim in one fused pass, for inference: (x - mean) / sqrt(var + eps)\n" ..
  "* weight + bias (weight and bias may be nil).  Raises when a gradient would be needed;\n" ..
  "nv.nn.LayerNorm uses it under nv.no_grad and composes differentiable ops otherwise.",
  "nv.no_grad(function() return nv.layer_norm(x, nil, nil) end)")
D["nv.softmax"] = e("nv.softmax(x, dim)", "exp(x) / sum(exp(x)) along dim, computed stably in one pass. (grad)")
D["nv.log_softmax"] = e("nv.log_softmax(x, dim)", "log(softmax(x, dim)), stably (x - logsumexp). (grad)")
D["nv.interpolate"] = e("nv.interpolate(x, {size = {h, w} | scale_factor = s, mode = \"nearest\" | \"bilinear\", align_corners = false})",
  "Resizes (N,C,H,W) as torch.nn.functional.interpolate. (grad)", "nv.interpolate(x, { size = { 224, 224 }, mode = \"bilinear\" })")
D["nv.pad"] = e("nv.pad(x, {left, right [, top, bottom]} [, {mode = \"constant\" | \"reflect\" | \"replicate\", value = 0}])",
  "Pads the last dims (the last first, as torch.nn.functional.pad). (grad)")

-- ---- Tensor methods: shape and views ---------------------------------------------------------
D["Tensor:dim"] = e("t:dim()", "The number of dimensions.")
D["Tensor:size"] = e("t:size([dim])", "The size of dim, or (no dim) the shape as t:shape() gives it.")
D["Tensor:numel"] = e("t:numel()", "The number of elements.")
D["Tensor:stride"] = e("t:stride([dim])", "The stride of dim in elements, or all strides as a list.")
D["Tensor:is_contiguous"] = e("t:is_contiguous()", "Whether the elements lie in memory in row-major order without gaps.")
D["Tensor:contiguous"] = e("t:contiguous()", "t itself when contiguous, else a contiguous copy. (grad)")
D["Tensor:view"] = e("t:view(size...)", "A view of a contiguous t with another shape (one -1 is inferred); shares storage. (grad)")
D["Tensor:reshape"] = e("t:reshape(size...)", "t with another shape: a view when possible, else a copy; one -1 inferred. (grad)",
  "x:reshape(x:size(1), -1)")
D["Tensor:transpose"] = e("t:transpose(d1, d2)", "A view with dims d1 and d2 swapped. (grad)")
D["Tensor:t"] = e("t:t()", "The transpose of a 2-d tensor (a view). (grad)")
D["Tensor:permute"] = e("t:permute(d1, d2, ...)", "A view with the dims in the given order. (grad)",
  "img:permute(3, 1, 2)   -- (H,W,C) -> (C,H,W)")
D["Tensor:squeeze"] = e("t:squeeze([dim])", "A view without dim (which must be 1), or without every size-1 dim. (grad)")
D["Tensor:unsqueeze"] = e("t:unsqueeze(dim)", "A view with a new size-1 dim at dim. (grad)", "x:unsqueeze(1)   -- (C,H,W) -> (1,C,H,W)")
D["Tensor:expand"] = e("t:expand(size...)", "A broadcast view: size-1 dims repeated (stride 0), without copying. (grad)")
D["Tensor:narrow"] = e("t:narrow(dim, start, length)", "A view of length elements of dim from start (1-based). (grad)")
D["Tensor:select"] = e("t:select(dim, index)", "A view of one index of dim, that dim removed. (grad)", "batch:select(1, 1)   -- the first sample")
D["Tensor:index_select"] = e("t:index_select(dim, indices)",
  "A copy of the entries of dim at indices (a list or tensor of 1-based positions). (grad)")
D["Tensor:gather"] = e("t:gather(dim, index)",
  "out[i][j] = t[i][index[i][j]] along dim (torch.gather), index 1-based. (grad)")
D["Tensor:clone"] = e("t:clone()", "A copy with its own storage. (grad)")
D["Tensor:detach"] = e("t:detach()", "The same values (shared storage) outside the autograd graph.")

-- ---- element access ------------------------------------------------------------------------
D["Tensor:item"] = e("t:item()", "The value of a one-element tensor as a Lua number.")
D["Tensor:get"] = e("t:get(i, j, ...)", "The element at 1-based indices, as a Lua number.")
D["Tensor:set"] = e("t:set(value, i, j, ...)", "Writes value at 1-based indices, in place; returns t.")
D["Tensor:values"] = e("t:values()", "All elements in row-major order as a flat Lua list.")
D["Tensor:totable"] = e("t:totable()", "The elements as nested Lua lists, one level per dim.")
D["Tensor:fill"] = e("t:fill(value)", "Sets every element to value, in place; returns t.")
D["Tensor:copy"] = e("t:copy(src)", "Copies src (broadcast to t's shape) into t, in place; returns t.")

-- ---- arithmetic (broadcasting) ----------------------------------------------------------------
D["Tensor:add"] = e("t:add(u)", "t + u, elementwise with broadcasting; u a tensor or a number (also the + operator). (grad)")
D["Tensor:sub"] = e("t:sub(u)", "t - u with broadcasting (also -). (grad)")
D["Tensor:mul"] = e("t:mul(u)", "t * u elementwise with broadcasting (also *). (grad)")
D["Tensor:div"] = e("t:div(u)", "t / u elementwise with broadcasting (also /). (grad)")
D["Tensor:pow"] = e("t:pow(p)", "t ^ p elementwise; p a number (a cheap op of its own) or a tensor (also ^). (grad)")
D["Tensor:add_"] = e("t:add_(u [, alpha = 1])", "t += alpha * u in place (optimizers' update); returns t.")
D["Tensor:mul_"] = e("t:mul_(s)", "t *= s in place; returns t.")
D["Tensor:matmul"] = e("t:matmul(u)", "The matrix product t x u, as nv.matmul. (grad)", "local y = x:matmul(w:t())")
D["Tensor:maximum"] = e("t:maximum(u)", "The elementwise larger of t and u (broadcast). (grad)")
D["Tensor:minimum"] = e("t:minimum(u)", "The elementwise smaller of t and u (broadcast). (grad)")
D["Tensor:clamp"] = e("t:clamp(min, max)", "Each element limited to [min, max] (either may be -math.huge / math.huge). (grad)")
D["Tensor:hardtanh"] = e("t:hardtanh([min_val = -1 [, max_val = 1]])",
  "t clamped to [min_val, max_val] (PyTorch's hardtanh); the gradient is 1 strictly inside\n" ..
  "(min_val, max_val) and 0 outside; min_val > max_val raises naming both. (grad)", "x:hardtanh(0, 6)   -- ReLU6")

-- ---- elementwise functions -------------------------------------------------------------------
for name, what in pairs {
  abs = "|t|", neg = "-t", exp = "e^t", log = "the natural logarithm", log1p = "log(1 + t), exact near 0",
  sqrt = "the square root", rsqrt = "1 / sqrt(t)", square = "t^2", reciprocal = "1 / t", sin = "sine", cos = "cosine",
  tanh = "the hyperbolic tangent", sigmoid = "1 / (1 + e^-t)", relu = "max(t, 0)", softplus = "log(1 + e^t)",
  gelu = "t * Phi(t) (the erf form)", sign = "-1, 0 or 1 (no gradient)", floor = "the largest integer <= t (no gradient)",
  ceil = "the smallest integer >= t (no gradient)", round = "the nearest integer, halves away from zero (no gradient)",
} do
  local grad = what:find("no gradient", 1, true) and "" or " (grad)"
  D["Tensor:" .. name] = e("t:" .. name .. "()", "Elementwise " .. what .. "." .. grad)
end
D["Tensor:leaky_relu"] = e("t:leaky_relu([slope = 0.01])", "t where t > 0, slope * t elsewhere. (grad)")
D["Tensor:elu"] = e("t:elu([alpha = 1])", "t where t > 0, alpha (e^t - 1) elsewhere. (grad)")

-- ---- comparisons (0/1 tensors, no gradient) -----------------------------------------------------
for name, op in pairs { eq = "==", ne = "~=", lt = "<", le = "<=", gt = ">", ge = ">=" } do
  D["Tensor:" .. name] = e("t:" .. name .. "(u)", "1 where t " .. op .. " u (broadcast; u a tensor or a number), else 0.")
end

-- ---- reductions -------------------------------------------------------------------------------
D["Tensor:sum"] = e("t:sum([dim [, keepdim = false]])", "The sum of all elements (a 0-d tensor), or along dim. (grad)")
D["Tensor:mean"] = e("t:mean([dim [, keepdim = false]])", "The mean of all elements, or along dim. (grad)")
D["Tensor:var"] = e("t:var([dim [, {unbiased = true, keepdim = false}]])", "The variance (n - 1 in the denominator unless unbiased = false). (grad)")
D["Tensor:std"] = e("t:std([dim [, {unbiased = true, keepdim = false}]])", "The standard deviation. (grad)")
D["Tensor:max"] = e("t:max([dim [, keepdim = false]])",
  "The largest element (a 0-d tensor); with dim, the values and their 1-based indices along dim.\n" ..
  "NaN is the largest; the first of equal values wins. (grad to the values)",
  "local p, class = probs:max(2)")
D["Tensor:min"] = e("t:min([dim [, keepdim = false]])", "The smallest element, or values and 1-based indices along dim. (grad)")
D["Tensor:argmax"] = e("t:argmax([dim [, keepdim = false]])", "The 1-based position of the largest element (flat), or along dim.")
D["Tensor:argmin"] = e("t:argmin([dim [, keepdim = false]])", "The 1-based position of the smallest element, or along dim.")
D["Tensor:argsort"] = e("t:argsort([dim = last [, descending = false [, k]]])",
  "The 1-based positions that sort t along dim (the first k of them); NaN largest, ties in order.\n" ..
  "t:sort and t:topk gather the values from them.")
D["Tensor:logsumexp"] = e("t:logsumexp(dim [, keepdim = false])", "log(sum(exp(t))) along dim, stably. (grad)")
D["Tensor:histc"] = e("t:histc([bins = 100 [, min, max]])",
  "Counts of the elements in bins equal bins over [min, max] (default t's own range), as torch.histc.")

-- ---- autograd on tensors ---------------------------------------------------------------------
D["Tensor:backward"] = e("t:backward([grad] [, {retain_graph = false}])",
  "Backpropagates from t (a scalar, or with grad of its shape) and accumulates into the .grad of\n" ..
  "the leaves that require grad.", "loss:backward()\nprint(w.grad)")
D["Tensor:set_requires_grad"] = e("t:set_requires_grad([on = true])",
  "Marks a leaf tensor as one whose gradient is wanted (t.requires_grad); returns t.")

return D

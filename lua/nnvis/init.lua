-- nnvis — look inside neural networks.  `local nv = require "nnvis"` loads the C core
-- (tensors, kernels, autograd, file formats) and the Lua modules on top of it.
-- GNU OpenMP's idle threads sleep soon (csrc/lua/lua_ompenv.c): set before the core loads libgomp
local omp_ok, omp_spin = pcall(require, "nnvis.ompenv")
omp_spin = omp_ok and omp_spin or false
local core = require "nnvis.core"

-- The modules' names before they were packaged by layer (lua/nnvis/LAYERS.md): once nnvis is
-- loaded, require "nnvis.cam" still gives nnvis.explain.cam, for code and notebooks written
-- against the flat layout.  New code uses the new names.
local MOVED = {
  assert = "tensor.assert", attention = "explain.attention", cam = "explain.cam",
  cam_figure = "explain.cam_figure", canvas = "draw.canvas", capture = "inspect.capture",
  class = "tensor.class", cli = "app.cli", colormap = "draw.colormap", core_docs = "app.core_docs",
  data = "io.data", diagram = "draw.diagram", diff = "ui.diff", doc = "app.doc",
  features = "inspect.features", figure = "draw.figure", functional = "tensor.functional",
  gradcheck = "tensor.gradcheck", image = "draw.image", imagenet_classes = "io.imagenet_classes",
  interactive = "draw.interactive", introspect = "app.introspect", kernel = "app.kernel",
  landscape = "inspect.landscape", lrp = "explain.lrp", maximize = "explain.maximize",
  models = "nn.models", nn3d = "nn.nn3d", onnx = "nn.onnx", onnx_ops = "nn.onnx_ops",
  onnx_ops_more = "nn.onnx_ops_more", onnx_schema = "nn.onnx_schema", ops3d = "tensor.ops3d",
  optim = "nn.optim", perturb = "explain.perturb", pickle = "io.pickle", plot = "draw.plot",
  print = "tensor.print", project = "inspect.project", pth = "io.pth", report = "ui.report",
  show = "draw.show", style = "draw.style", summary = "inspect.summary",
  targets = "inspect.targets", tensorboard = "io.tensorboard", train = "train.train",
  trainlog = "train.trainlog", util = "tensor.util", views = "train.views", vit = "nn.vit",
  weights = "io.weights",
}
table.insert(package.searchers, function(name)
  local new = MOVED[name:match("^nnvis%.([%w_]+)$") or ""]
  if not new then return nil end
  return function() return require("nnvis." .. new) end, "nnvis." .. new
end)


local nv = {}
nv.core = core
nv.Tensor = core.Tensor          -- the methods table: add methods here to extend tensors
nv.version = "scm-1"
nv.class = require "nnvis.tensor.class"  -- the class helper: local Block = nv.class("Block", nv.nn.Module)

-- creation, random numbers, clock
for _, name in ipairs { "tensor", "zeros", "ones", "full", "rand", "randn", "randperm", "arange",
                        "eye", "manual_seed", "now", "where", "cat", "stack", "matmul", "grad",
                        "is_grad_enabled", "set_grad_enabled" } do
  nv[name] = core[name]
end

--- nv.memory(): the allocator's figures {tensors, storages, nodes, bytes, cached_bytes} (core.stats)
nv.memory = core.stats

--- nv.stats(cap): per-layer statistics of a capture (rows {name, shape, mean, std, min, max,
--- zeros, dead, grad_norm, grad_mean_abs}); the allocator's figures are nv.memory()
function nv.stats(cap)
  if type(cap) ~= "table" or type(cap.order) ~= "table" then
    require("nnvis.tensor.util").raise("stats: expected a capture (nv.capture(model, x [, opts])), got " ..
      (cap == nil and "nothing" or type(cap)) .. "; the allocator's figures are nv.memory()")
  end
  return require("nnvis.inspect.capture").stats(cap)
end

-- the tensor methods written in Lua (printing, shape, sort, topk, ...): nnvis.tensor.methods
nv.Size = require("nnvis.tensor.methods").Size

-- functional ops: linear, conv2d, pooling, normalization, softmax, losses, resampling
for name, f in pairs(require "nnvis.tensor.functional") do nv[name] = f end

-- functional forms of the tensor methods: nv.relu(x) == x:relu().  The unary ops come from the
-- C core's one list of ops (csrc/ops/ops.def, as core.unary_ops), so a new op there gets its
-- nv.<name> here with no edit; the rest are the methods that are not unary ops
local functional_forms = { "clamp", "sum", "mean", "max", "min", "argmax", "argmin", "var", "std", "logsumexp",
                           "gather", "index_select", "transpose", "permute", "reshape", "view",
                           "pow", "maximum", "minimum" }
for _, name in ipairs(core.unary_ops) do functional_forms[#functional_forms + 1] = name end
for _, name in ipairs(functional_forms) do
 --- nv.relu(x), nv.sum(x, d), ...: the functional form of each tensor method in the list above,
 --- the same as x:relu(), x:sum(d) (see the README's "The library" for their arguments)
  nv[name] = nv[name] or function(x, ...) return core.Tensor[name](x, ...) end
end

--- Runs fn(...) with graph recording off and returns its results; the previous mode is
--- restored even when fn raises.
nv.no_grad = core.no_grad

--- nv.config() reports the BLAS core in use, the thread count, and grad mode;
--- nv.config{threads = n} sets the thread count first.
local Config = nv.class("Config")
function Config.__tostring(c)
  return string.format("nnvis config: %s core %s%s, %d thread%s, grad %s", (c.blas_config or "BLAS"):match("^%S+ %S+") or "BLAS",
    tostring(c.blas_core), c.blas_core_chosen_by_nnvis and " (chosen by nnvis)" or "", c.threads,
    c.threads == 1 and "" or "s", c.grad_enabled and "on" or "off") .. (c.winograd and "" or ", winograd off")
end
--- nv.config([opts]): the BLAS core in use, the thread count, grad mode, max_alloc, the
--- convolution kernels and omp_spincount (the GOMP_SPINCOUNT nnvis set, or false when the
--- user's own OpenMP settings were kept), as a table that prints on a few lines.
--- opts.threads sets the thread count, opts.max_alloc the allocation cap in bytes (default
--- 3/4 of physical memory); opts.onednn (default true) runs convolutions on oneDNN (false:
--- the built-in kernels); opts.winograd (default true) whether 3x3 stride-1 convolutions with
--- 16 or more channels may run by Winograd's F(2x2,3x3) (2.25 times fewer multiplications,
--- the direct sum's values to rounding; false: im2col + gemm); opts.prefer_winograd ("auto",
--- true or false) whether those run Winograd rather than oneDNN, forward and input gradient:
--- "auto" does on CPUs without AVX-512 (where oneDNN has only direct kernels, which measured
--- slower) for maps of 64 or more 2x2 tiles; prefer_winograd_auto says what "auto" does here.
--- opts.work_memory (1 GiB): the memory SmoothGrad and Integrated Gradients may give one batch
--- of their graphs; they choose their batch from it and say so when it is cut.
function nv.config(opts)
  -- work_memory is the Lua side's (batched explanations); the rest the core's
  local wm
  if type(opts) == "table" and opts.work_memory ~= nil then
    wm = opts.work_memory
    local rest = {}
    for k, v in pairs(opts) do if k ~= "work_memory" then rest[k] = v end end
    opts = rest
  end
  local c = core.config(opts)
  if wm ~= nil then require("nnvis.tensor.util").work_memory(wm) end
  c.work_memory = require("nnvis.tensor.util").work_memory()
  c.omp_spincount = omp_spin
  return setmetatable(c, Config)
end

-- nv.show's "board" mode: the live board (nnvis.ui.board.live), which sits above the drawing
-- layer that show belongs to, so the facade plugs it in; it loads on first use
require("nnvis.draw.show").register("board", function(fig, opts, out)
  return require("nnvis.ui.board.live").write(fig, opts, out)
end)

-- modules loaded on first use, so `require "nnvis"` stays cheap
local lazy = { image = "nnvis.draw.image", nn = "nnvis.nn", optim = "nnvis.nn.optim", models = "nnvis.nn.models",
               data = "nnvis.io.data", train = "nnvis.train.train", cam = "nnvis.explain.cam", io = "nnvis.io",
               tensorboard = "nnvis.io.tensorboard", colormap = "nnvis.draw.colormap", canvas = "nnvis.draw.canvas", style = "nnvis.draw.style",
               features = "nnvis.inspect.features", onnx = "nnvis.nn.onnx", project = "nnvis.inspect.project", landscape = "nnvis.inspect.landscape",
               figure = "nnvis.draw.figure", show = "nnvis.draw.show", weights = "nnvis.io.weights", view = "nnvis.ui.view",
               board = "nnvis.ui.board" }
-- namespaces made of several modules: nv.plot is the charts (nnvis.draw.plot) and the views
-- of models and training (nnvis.train.views: scatter, grad_flow, landscape, neurons,
-- decision_regions), which sit higher, beside what they draw
local composite = {
  plot = function()
    local t = {}
    for k, v in pairs(require "nnvis.draw.plot") do t[k] = v end
    for k, v in pairs(require "nnvis.train.views") do if t[k] == nil then t[k] = v end end
    return t
  end,
}
setmetatable(nv, {
  __index = function(t, k)
    local m = lazy[k] or composite[k]
    if m then
      local mod = type(m) == "function" and m() or require(m)
      rawset(t, k, mod)
      return mod
    end
  end,
  -- the namespaces nv loads on first use (name -> module), which the documentation registry
  -- (nnvis.app.doc) lists: a namespace added above is documented with no other edit
  __namespaces = function()
    local out = {}
    for k, m in pairs(lazy) do out[k] = m end
    for k in pairs(composite) do out[k] = true end
    return out
  end,
  -- the names of the modules not loaded yet, for the REPL's completion
  __complete = function()
    local names = {}
    for k in pairs(lazy) do names[#names + 1] = k end
    for k in pairs(composite) do names[#names + 1] = k end
    return names
  end,
})

--- nv.summary(model, input_or_shape [, {depth = 3}]): the layer table of a model
function nv.summary(model, input, opts) return require("nnvis.inspect.summary").summary(model, input, opts) end

--- nv.report(model, x [, opts]): a self-contained HTML report on a model and an input batch
--- (summary, diagram, statistics with warnings, feature maps, CAMs, curves); :save(path)
function nv.report(model, x, opts) return require("nnvis.ui.report").report(model, x, opts) end

--- nv.diff(a, b [, x [, opts]]): what changed between two models or state dicts (a figure):
--- per-layer ‖ΔW‖/‖W‖ (d.layers), frozen, added, removed and reshaped parameters, ΔW
--- histograms of the layers that moved most and, with inputs x, both predictions and Grad-CAMs
--- with their difference; opts: top (3), layer, target, samples (4), classes, title
function nv.diff(a, b, x, opts) return require("nnvis.ui.diff").diff(a, b, x, opts) end

--- nv.capture(model, x, {layers = {...}, grads = bool, target = ...}): name -> {output, grad}
function nv.capture(model, x, opts) return require("nnvis.inspect.capture").capture(model, x, opts) end

--- nv.maximize(model, {layer =, channel = | neuron = | class = | objective =, ...}): an image
--- (C,H,W) in [0,1] that excites the unit; nv.objectives builds composable objectives
function nv.maximize(model, opts) return require("nnvis.explain.maximize").maximize(model, opts) end
nv.objectives = setmetatable({}, { __index = function(_, k) return require("nnvis.explain.maximize").objectives[k] end })

--- nv.diagram(model, input_or_shape [, {depth = d}]): the model's structure as a picture
--- (d:image(), d:save_png(path), d:save_svg(path), d:dot())
function nv.diagram(model, input, opts) return require("nnvis.draw.diagram").diagram(model, input, opts) end

--- nv.gradcheck(f, inputs [, {eps = 1e-2, rtol = 1e-2, atol = 2e-3, seed}]): autograd
--- against central differences; true, or raises naming the worst element
function nv.gradcheck(f, inputs, opts) return require("nnvis.tensor.gradcheck").gradcheck(f, inputs, opts) end

-- files
--- nv.load_safetensors(path): a safetensors file -> table name -> tensor and its metadata, or nil, message
function nv.load_safetensors(path) return require("nnvis.io").load_safetensors(path) end
--- nv.save_safetensors(tbl, path [, meta]): writes name -> tensor as F32 safetensors; true (raises when it cannot write)
function nv.save_safetensors(tbl, path, meta) return require("nnvis.io").save_safetensors(tbl, path, meta) end
--- what torch.save wrote (zip or legacy format) as Lua values; never executes code;
--- nil, message on a bad file
function nv.load_pth(path) return require("nnvis.io.pth").load(path) end

return nv

--- nnvis.cli — the `nnvis COMMAND ...` commands (bin/nnvis runs them): a model file explored
-- from the shell, without writing Lua.
--
--   nnvis summary resnet18.onnx --depth 2
--   nnvis diagram m.pth --arch resnet18 -o resnet18.svg --direction LR
--   nnvis cam resnet18.onnx cat.jpg dog.jpg --method gradcam -o cams/
--   nnvis report resnet18.onnx cat.jpg -o report.html
--   nnvis diff before.pth after.pth --arch resnet18
--   nnvis board runs/ --port 6006
--   nnvis help [COMMAND]
--
-- MODEL is an ONNX file, or a .pth / .pt / .safetensors file with --arch (any nv.models
-- name).  Images are read as RGB and preprocessed as torchvision's models expect (resize to
-- --size's shorter side * 256/224, centre crop to --size, --mean / --std), unless the model's
-- input says otherwise.  Bad arguments print the command's usage and exit 2; a file that
-- cannot be read prints its message and exits 1.
local M = {}

local USAGE = {
  summary = [[
usage: nnvis summary MODEL [--arch NAME] [--input 1,3,224,224] [--depth N]
  The model's layers, output shapes and parameter counts (torchinfo's table).]],
  diagram = [[
usage: nnvis diagram MODEL -o OUT.svg|png|pdf|dot [--arch NAME] [--input 1,3,224,224] [--depth N] [--direction TB|LR]
  The model's structure as a picture, or as Graphviz's dot text.]],
  cam = [[
usage: nnvis cam MODEL IMAGE... [--arch NAME] [--method gradcam] [--layer L] [--target K|top] [--classes FILE]
                 [--size 224] [--mean 0.485,0.456,0.406] [--std 0.229,0.224,0.225] [-o DIR]
  Each image's class activation map laid over it, titled with the class (ImageNet's names for
  a model with 1000 outputs, or one name per line of --classes), written to DIR (default .)
  as IMAGE_METHOD.png.  --method: any nv.cam method (gradcam, gradcampp, layercam, ...).]],
  report = [[
usage: nnvis report MODEL IMAGE... -o REPORT.html [--arch NAME] [--classes FILE] [--size 224] [--mean ...] [--std ...]
  One self-contained HTML page about the model and the images (nv.report).]],
  diff = [[
usage: nnvis diff A B [--arch NAME] [-o OUT.html|png] [IMAGE...]
  What changed between two models: per-layer relative weight change, the layers that moved
  most, frozen and added parameters (nv.diff); with images, both models' predictions and CAMs.]],
  board = [[
usage: nnvis board LOGDIR... [--port 6006] [--host 127.0.0.1]
  Serves the board, a page showing the TensorBoard event files under each LOGDIR (scalars,
  histograms, images, text, hparams, projector, graphs), live, until Ctrl-C.  --port 0 picks a
  free port.  A --host other than 127.0.0.1 lets anyone who can reach the port read the logs.]],
  view = [[
usage: nnvis view MODEL [--input IMAGE] [--arch NAME] [--classes FILE] [--size 224] [--mean ...] [--std ...]
                  [--port 0] [--host 127.0.0.1]
  Serves the model's graph as a page (Netron's way): zoom and pan, scopes that fold, search,
  a node's shapes, parameters and weight statistics; with --input, its feature maps for the
  image and the Grad-CAM of the top class there.  Until Ctrl-C; --port 0 (the default) picks a
  free port.]],
  help = "usage: nnvis help [COMMAND]",
}
M.commands = { "summary", "diagram", "cam", "report", "diff", "board", "view", "help" }

local Usage = {}   -- a usage error: exit 2
local function usage_error(cmd, fmt, ...)
  error(setmetatable({ cmd = cmd, msg = string.format(fmt, ...) }, Usage), 0)
end
local FileError = {}   -- a file that cannot be read: exit 1
local function file_error(msg) error(setmetatable({ msg = msg }, FileError), 0) end

-- options: --name value, --name=value, -o value; flags in `flags` take no value
local function parse(cmd, args, known)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, val = a:match("^%-%-([%w_-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w_-]+)$") or (a == "-o" and "o") end
    if name then
      if not known[name] then usage_error(cmd, "unknown option %s", a) end
      if val == nil then
        i = i + 1
        val = args[i]
        if val == nil then usage_error(cmd, "option %s needs a value", a) end
      end
      opts[name] = val
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage_error(cmd, "unknown option %s", a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

local function numbers(cmd, name, s, n)
  local out = {}
  for part in s:gmatch("[^,]+") do
    local v = tonumber(part)
    if not v then usage_error(cmd, "--%s must be numbers separated by commas, got %q", name, s) end
    out[#out + 1] = v
  end
  if n and #out ~= n then usage_error(cmd, "--%s needs %d numbers, got %d", name, n, #out) end
  return out
end

local function integer(cmd, name, s)
  local v = math.tointeger(tonumber(s))
  if not v or v < 1 then usage_error(cmd, "--%s must be a positive integer, got %q", name, s) end
  return v
end

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

-- the model and its input shape: an ONNX file (shape from its graph), or weights for an
-- nv.models architecture (--arch), its number of classes read from the weights
local function load_model(cmd, path, opts)
  local nv = require "nnvis"
  if not exists(path) then file_error(path .. ": No such file or directory") end
  local ext = (path:match("%.([%w]+)$") or ""):lower()
  if ext == "onnx" then
    if opts.arch then usage_error(cmd, "--arch is for .pth and .safetensors files, not ONNX") end
    local m, err = nv.onnx.load(path)
    if not m then file_error(err) end
    local desc = nv.core.onnx_read(path)
    local shape = {}
    local first = desc and desc.inputs and desc.inputs[1]
    for i, d in ipairs(first and first.shape or {}) do
      shape[i] = math.tointeger(d) and d > 0 and d or (i == 1 and 1 or 224)
    end
    return m, #shape > 0 and shape or nil
  end
  if not opts.arch then
    usage_error(cmd, "%s holds weights only: name the architecture with --arch (one of %s)", path,
      table.concat(nv.models.available, ", "))
  end
  local ctor = nv.models[opts.arch]
  if type(ctor) ~= "function" then
    usage_error(cmd, "--arch %s is not an nv.models architecture (one of %s)", opts.arch, table.concat(nv.models.available, ", "))
  end
  local sd, err
  if ext == "safetensors" then sd, err = nv.load_safetensors(path) else sd, err = nv.load_pth(path) end
  if not sd then file_error(err) end
  if type(sd) == "table" and type(sd.state_dict) == "table" then sd = sd.state_dict end
  if type(sd) == "table" and type(sd.model) == "table" then sd = sd.model end
  -- the classifier's size from the weights: the last 2-d weight's rows
  local model = ctor()
  local num_classes
  for name, t in pairs(model:state_dict()) do
    local w = sd[name]
    if w and nv.core.tensor_mt == getmetatable(w) and w:dim() == 2 and t:dim() == 2 and w:size(1) ~= t:size(1)
      and w:size(2) == t:size(2) then num_classes = w:size(1) end
  end
  if num_classes then model = ctor({ num_classes = num_classes }) end
  local ok, lerr = pcall(model.load, model, path)
  if not ok then file_error(tostring(lerr):gsub("^[^\n]-:%d+: ", "")) end
  model:eval()
  local shape = opts.arch == "fashion_cnn" and { 1, 1, 28, 28 } or { 1, 3, 224, 224 }
  return model, shape
end

local function input_shape(cmd, opts, default)
  if opts.input then return numbers(cmd, "input", opts.input) end
  return default or { 1, 3, 224, 224 }
end

local function out_ok(cmd, path, exts)
  local ext = (path:match("%.([%w]+)$") or ""):lower()
  for _, e in ipairs(exts) do if e == ext then return ext end end
  usage_error(cmd, "-o %s: the file's extension must be one of .%s", path, table.concat(exts, ", ."))
end

-- the class names: --classes FILE (one per line), ImageNet's for 1000 outputs, or none
local function class_names(cmd, opts, n_out)
  local nv = require "nnvis"
  if opts.classes then
    local f, err = io.open(opts.classes)
    if not f then file_error(err) end
    local names = {}
    for l in f:lines() do if l:match("%S") then names[#names + 1] = l:match("^%s*(.-)%s*$") end end
    f:close()
    return names
  end
  if n_out == 1000 then return nv.data.imagenet_classes end
end

-- images read and preprocessed into a batch; the pictures to draw on (cropped the same way)
local function images(cmd, paths, opts, shape)
  local nv = require "nnvis"
  if #paths == 0 then usage_error(cmd, "give at least one IMAGE") end
  local C = shape and shape[2] or 3
  local size = opts.size and integer(cmd, "size", opts.size) or (shape and shape[3]) or 224
  local mean = opts.mean and numbers(cmd, "mean", opts.mean) or (C == 1 and { 0.5 } or nv.image.IMAGENET_MEAN)
  local std = opts.std and numbers(cmd, "std", opts.std) or (C == 1 and { 0.5 } or nv.image.IMAGENET_STD)
  local xs, pics = {}, {}
  for i, p in ipairs(paths) do
    local img, err = nv.image.load(p, { mode = C == 1 and "gray" or "rgb" })
    if not img then file_error(err) end
    local resize = math.floor(size * 256 / 224 + 0.5)
    xs[i] = nv.image.preprocess(img, { resize = resize, crop = size, mean = mean, std = std }):select(1, 1)
    pics[i] = nv.image.preprocess(img, { resize = resize, crop = size, mean = { 0, 0, 0 }, std = { 1, 1, 1 } }):select(1, 1)
      :narrow(1, 1, math.min(3, C))
  end
  return nv.stack(xs, 1), pics
end

local function basename(p) return (p:match("[^/]*$"):gsub("%.[^.]*$", "")) end

local run = {}

function run.summary(args)
  local opts, pos = parse("summary", args, { arch = true, input = true, depth = true })
  if #pos ~= 1 then usage_error("summary", "give one MODEL") end
  local model, shape = load_model("summary", pos[1], opts)
  local depth = opts.depth and integer("summary", "depth", opts.depth) or nil
  print(require("nnvis").summary(model, input_shape("summary", opts, shape), { depth = depth }))
end

function run.diagram(args)
  local opts, pos = parse("diagram", args, { arch = true, input = true, depth = true, direction = true, o = true })
  if #pos ~= 1 then usage_error("diagram", "give one MODEL") end
  if not opts.o then usage_error("diagram", "give the output file with -o OUT.svg|png|pdf|dot") end
  local ext = out_ok("diagram", opts.o, { "svg", "png", "pdf", "dot" })
  if opts.direction and opts.direction ~= "TB" and opts.direction ~= "LR" then
    usage_error("diagram", "--direction must be TB or LR, got %s", opts.direction)
  end
  local model, shape = load_model("diagram", pos[1], opts)
  local d = require("nnvis").diagram(model, input_shape("diagram", opts, shape),
    { depth = opts.depth and integer("diagram", "depth", opts.depth) or nil, direction = opts.direction })
  local util = require "nnvis.tensor.util"
  if ext == "png" then d:save_png(opts.o)
  elseif ext == "svg" then d:save_svg(opts.o)
  elseif ext == "pdf" then util.write_file("diagram", opts.o, d:pdf())
  else util.write_file("diagram", opts.o, d:dot()) end
  print(string.format("%s: %d layers drawn", opts.o, #d.nodes))
end

-- MODEL IMAGE...: the model, the images as a batch and as pictures, their paths, and the
-- class names (--classes, or ImageNet's for 1000 outputs)
local function model_and_images(cmd, pos, opts)
  local model, shape = load_model(cmd, pos[1], opts)
  local paths = { table.unpack(pos, 2) }
  local x, pics = images(cmd, paths, opts, shape)
  local out = require("nnvis").no_grad(model, x:narrow(1, 1, 1))
  return model, x, pics, paths, class_names(cmd, opts, require("nnvis.tensor.util").first_tensor(out):size(2))
end

function run.cam(args)
  local nv = require "nnvis"
  local opts, pos = parse("cam", args, { arch = true, method = true, layer = true, target = true, classes = true,
                                         size = true, mean = true, std = true, o = true })
  if #pos < 2 then usage_error("cam", "give a MODEL and at least one IMAGE") end
  local method = opts.method or "gradcam"
  if type(nv.cam[method]) ~= "function" or method == "overlay" or method == "compare" then
    usage_error("cam", "--method %s is not an nv.cam method (e.g. gradcam, gradcampp, layercam, hirescam, scorecam)", method)
  end
  local target
  if opts.target and opts.target ~= "top" then target = integer("cam", "target", opts.target) end
  local model, x, pics, paths, classes = model_and_images("cam", pos, opts)
  local dir = opts.o or "."
  local ok, merr = nv.core.mkdirs(dir)
  if not ok then file_error(merr) end
  for i, p in ipairs(paths) do
    local xi = x:narrow(1, i, 1)
    local map = nv.cam[method](model, xi, { layer = opts.layer, target = target })
    local img = nv.cam.overlay(pics[i], map, { model = model, input = xi, classes = classes, target = target, method = method })
    local file = string.format("%s/%s_%s.png", dir, basename(p), method)
    nv.image.save(img, file)
    print(file)
  end
end

function run.report(args)
  local nv = require "nnvis"
  local opts, pos = parse("report", args, { arch = true, classes = true, size = true, mean = true, std = true, o = true })
  if #pos < 2 then usage_error("report", "give a MODEL and at least one IMAGE") end
  if not opts.o then usage_error("report", "give the output file with -o REPORT.html") end
  out_ok("report", opts.o, { "html", "htm" })
  local model, x, pics, _, classes = model_and_images("report", pos, opts)
  nv.report(model, x, { classes = classes, image = nv.stack(pics, 1), title = basename(pos[1]) }):save(opts.o)
  print(opts.o)
end

function run.diff(args)
  local nv = require "nnvis"
  local opts, pos = parse("diff", args, { arch = true, o = true, size = true, mean = true, std = true })
  if #pos < 2 then usage_error("diff", "give two models A and B") end
  if type(nv.diff) ~= "function" then file_error("nnvis diff: nv.diff is not available in this build") end
  local a, shape = load_model("diff", pos[1], opts)
  local b = load_model("diff", pos[2], opts)
  local x
  if #pos > 2 then
    x = images("diff", { table.unpack(pos, 3) }, opts, shape)
  end
  local d = nv.diff(a, b, x)
  if opts.o then
    local ext = out_ok("diff", opts.o, { "html", "png", "svg", "txt" })
    if ext == "html" then require("nnvis.tensor.util").write_file("diff", opts.o, d:html()) else d:save(opts.o) end
    print(opts.o)
  else
    print(d:text())
  end
end

-- board and view: serve(opts), print the URL, serve until Ctrl-C (exit 0); a failure to start
-- (a port in use) is the command's error (exit 1)
local function serve_until_interrupted(cmd, serve, opts)
  local ok, h = pcall(serve, opts)
  if not ok then file_error((tostring(h):gsub("^[^\n]-:%d+: ", ""):gsub("^" .. cmd .. "%.serve: ", ""))) end
  print("nnvis " .. cmd .. ": " .. h.url .. "  (Ctrl-C stops it)")
  io.stdout:flush()
  h:wait()
end

-- the port option of the serving commands: an integer in 0..65535
local function port_of(cmd, s, default)
  if not s then return default end
  local port = math.tointeger(tonumber(s))
  if not port or port < 0 or port > 65535 then usage_error(cmd, "--port must be an integer in 0..65535, got %q", s) end
  return port
end

function run.board(args)
  local opts, pos = parse("board", args, { port = true, host = true })
  if #pos == 0 then usage_error("board", "give at least one LOGDIR") end
  local port = port_of("board", opts.port, 6006)
  serve_until_interrupted("board", require("nnvis.ui.board").serve, { logdir = pos, port = port, host = opts.host })
end

function run.view(args)
  local opts, pos = parse("view", args, { input = true, arch = true, classes = true, size = true, mean = true, std = true,
                                          port = true, host = true })
  if #pos ~= 1 then usage_error("view", "give one MODEL") end
  local port = port_of("view", opts.port, 0)
  local model, shape = load_model("view", pos[1], opts)
  local input, image, classes = shape or { 1, 3, 224, 224 }, nil, nil
  if opts.input then
    local x, pics = images("view", { opts.input }, opts, shape)
    input, image = x, pics[1]
    local out = require("nnvis").no_grad(model, x)
    classes = class_names("view", opts, require("nnvis.tensor.util").first_tensor(out):size(2))
  end
  serve_until_interrupted("view", require("nnvis.ui.view").serve, { model = model, input = input, image = image,
    classes = classes, port = port, host = opts.host, title = basename(pos[1]) })
end

function run.help(args)
  local cmd = args[1]
  if cmd and not USAGE[cmd] then usage_error("help", "no command %s (commands: %s)", cmd, table.concat(M.commands, ", ")) end
  if cmd then print(USAGE[cmd]) return end
  print("usage: nnvis [COMMAND ...] | nnvis [script.lua [args...]] | nnvis -e CODE [-i]\n")
  print("commands:")
  for _, c in ipairs(M.commands) do print("  " .. (USAGE[c]:match("^usage: (.-)\n") or USAGE[c]:match("^usage: (.*)$"))) end
  print("\nWithout a command: the REPL.  `nnvis help COMMAND` tells more.")
end

--- main(cmd, args) -> exit code: 0, 1 (a file that cannot be read or written) or 2 (bad
--- arguments: the command's usage is printed)
function M.main(cmd, args)
  if not run[cmd] then
    io.stderr:write("nnvis: no command ", tostring(cmd), " (commands: ", table.concat(M.commands, ", "), ")\n")
    return 2
  end
  local ok, err = pcall(run[cmd], args)
  if ok then return 0 end
  if getmetatable(err) == Usage then
    io.stderr:write("nnvis ", err.cmd, ": ", err.msg, "\n", USAGE[err.cmd], "\n")
    return 2
  end
  if getmetatable(err) == FileError then
    io.stderr:write("nnvis ", cmd, ": ", err.msg, "\n")
    return 1
  end
  -- raised inside nnvis (a write that failed, a model that cannot run this input)
  io.stderr:write("nnvis ", cmd, ": ", (tostring(err):gsub("^[^\n]-%.lua:%d+: ", "")), "\n")
  return 1
end

M.usage = USAGE
return M

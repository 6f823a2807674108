-- examples/explore_onnx.lua — a CNN exported to ONNX, explored like nnvis's own models:
-- summary, diagram, top-5 classes and the Grad-CAM of the top class, saved as pictures.
--
--   lua5.4 examples/explore_onnx.lua MODEL.onnx IMAGE.(png|jpg) [OUTDIR] [LAYER]
--
-- In PyTorch:  torch.onnx.export(model.eval(), torch.rand(1, 3, 224, 224), "resnet18.onnx",
--                                input_names=["x"], output_names=["logits"])
-- The image goes through torchvision's evaluation transform (resize 256, centre crop 224,
-- ImageNet's mean and std), as torchvision's classifiers expect.  LAYER (e.g. layer4) defaults to the last layer with a
-- spatial output.
local nv = require "nnvis"

local model_path, image_path, outdir, layer = arg[1], arg[2], arg[3] or "out", arg[4]
if not model_path or not image_path then
  io.stderr:write("usage: lua5.4 examples/explore_onnx.lua MODEL.onnx IMAGE.png [OUTDIR] [LAYER]\n")
  os.exit(2)
end
os.execute("mkdir -p '" .. outdir .. "'")

local model = assert(nv.onnx.load(model_path))
local photo = assert(nv.image.load(image_path, { mode = "rgb" }))   -- PNG or JPEG
local x = nv.image.preprocess(photo)                                 -- (1,3,224,224), torchvision's transform
local img = nv.image.preprocess(photo, { mean = { 0, 0, 0 }, std = { 1, 1, 1 } }):select(1, 1)   -- what the model sees

print(model:repr())
print(nv.summary(model, x, { depth = 2 }))
local d = nv.diagram(model, x, { depth = 1 })
d:save_png(outdir .. "/diagram.png")

local logits = nv.no_grad(model, x)
local probs = nv.softmax(logits, 2):select(1, 1)
local classes = #probs:shape() == 1 and probs:size(1) == 1000 and nv.data.imagenet_classes or nil
print("top-5 classes:")
local order = {}
for i, p in ipairs(probs:totable()) do order[i] = { i, p } end
table.sort(order, function(a, b) return a[2] > b[2] end)
for k = 1, math.min(5, #order) do
  local id, p = order[k][1], order[k][2]
  print(string.format("  %2d. class %4d  %6.2f%%  %s", k, id, 100 * p, classes and classes[id] or ""))
end

local cam = nv.cam.gradcam(model, x, { layer = layer, target = order[1][1] })
nv.image.save(img, outdir .. "/input.png")
nv.image.save(nv.image.overlay(img, cam:select(1, 1)), outdir .. "/gradcam.png")
print(string.format("saved %s/diagram.png, %s/input.png, %s/gradcam.png (Grad-CAM of class %d at %s)",
  outdir, outdir, outdir, order[1][1], layer or "the last spatial layer"))

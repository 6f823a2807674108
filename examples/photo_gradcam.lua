-- A photo through a torchvision ResNet-18: JPEG (or PNG) in, torchvision's evaluation
-- transform, the top class, and its Grad-CAM (Selvaraju et al. 2017) laid over the photo,
-- saved with the class name and probability in a caption.
--
--   lua5.4 examples/photo_gradcam.lua photo.jpg [resnet18.pth] [out/photo_gradcam.jpg]
--
-- The weights: in PyTorch, torch.save(torchvision.models.resnet18(weights="DEFAULT")
-- .state_dict(), "resnet18.pth").  Without them the model has random weights, and says so.
local nv = require "nnvis"

local photo, weights, out = arg[1], arg[2], arg[3] or "out/photo_gradcam.jpg"
if weights == "" or weights == "-" then weights = nil end
if not photo then
  io.stderr:write("usage: lua5.4 examples/photo_gradcam.lua photo.jpg [resnet18.pth] [out.jpg|out.png]\n")
  os.exit(2)
end

local model = nv.models.resnet18()
if weights then
  model:load(weights)   -- raises, naming the file, when it cannot
else
  nv.manual_seed(0)
  print("WARNING: no weights given: RANDOM weights, so the class and the map mean nothing")
end
model:eval()

local img = assert(nv.image.load(photo, { mode = "rgb" }))
local x = nv.image.preprocess(img)                       -- (1,3,224,224), ImageNet-normalized
local probs = nv.no_grad(function() return nv.softmax(model(x), 2) end)
local class = math.tointeger(probs:argmax(2):item())   -- 1-based class id
local p = probs:select(1, 1):get(class)
local name = nv.data.imagenet_classes[class]
local cam = nv.cam.gradcam(model, x, { layer = "layer4", target = class })   -- (1,224,224)
local shown = nv.image.unnormalize(x):select(1, 1)       -- the crop the model saw
local pic = nv.image.overlay(shown, cam:select(1, 1), { alpha = 0.45 })
local title = string.format("%s %.2f%s", name, p, weights and "" or " (random weights)")
pic = nv.image.caption(pic, title, { scale = 2 })
os.execute("mkdir -p '" .. (out:match("^(.*)/[^/]*$") or ".") .. "'")
assert(nv.image.save(pic, out))
print(string.format("%s: class %d, %s, p = %.3f -> %s", photo, class, name, p, out))

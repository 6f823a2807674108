-- nnvis.nn.models — classic architectures with torchvision's layout and parameter names (nv.models),
-- so that a state dict exported from torchvision loads unchanged:
--
--   local net = nv.models.resnet18()
--   net:load("resnet18.safetensors")        -- torchvision's state_dict saved as safetensors
--   net:eval()
--   local logits = net(img:unsqueeze(1))    -- (1, 1000)
--
-- Every builder takes opts.num_classes (default 1000) and opts.init: "torchvision" (default;
-- Kaiming-normal convolutions as torchvision initializes them), "default" (each layer's PyTorch
-- default) or false (zero weights: fastest, for loading weights next).  Each model has a `name`.
-- opts.weights names one of torchvision's weight sets ("IMAGENET1K_V1", "IMAGENET1K_V2" where
-- torchvision has one, "DEFAULT"; nnvis.weights lists them), downloaded once into ~/.cache/nnvis
-- (or found in PyTorch's cache) and loaded: nv.models.vgg16 { weights = "IMAGENET1K_V1" }.
-- opts.progress (with weights): the download's progress on stderr, nil when it is a terminal.
-- Shapes: N batch, 3 input channels, H and W any size from 32 up (the pooling is adaptive).
local class = require "nnvis.tensor.class"
local check_opts = require("nnvis.tensor.util").check_opts
local nn = require "nnvis.nn"
local core = require "nnvis.core"

local M = {}

-- weight and bias initializers for a builder's convolutions and linear layers
local function initializers(opts)
  local mode = opts.init
  if mode == nil then mode = "torchvision" end
  if mode == false or mode == "none" then
    return { weight_init = false, bias_init = false }, { weight_init = false, bias_init = false }
  elseif mode == "default" then
    return {}, {}
  elseif mode == "torchvision" then
    return { weight_init = nn.init.kaiming_normal { mode = "fan_out", nonlinearity = "relu" }, bias_init = false },
           { weight_init = nn.init.normal(0, 0.01), bias_init = false }
  end
  error("models: opts.init must be \"torchvision\", \"default\" or false, got " .. tostring(mode), 3)
end

local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- build(opts) as the model `name`, with torchvision's weight set opts.weights loaded when given
-- (the name is checked before the model is built: a typo fails fast, not after allocating it)
local function with_weights(name, opts, build)
  if type(opts) ~= "table" or opts.weights == nil or opts.weights == false then return build(opts) end
  local weights = require "nnvis.io.weights"
  local set = weights.resolve(name, opts.weights)
  if opts.num_classes ~= nil and set.num_classes and opts.num_classes ~= set.num_classes then
    require("nnvis.tensor.util").raise(("%s: the weights %s have %d classes, opts.num_classes is %s")
      :format(name, set.name, set.num_classes, tostring(opts.num_classes)))
  end
  -- the file first (a failed download costs no model), then no random initialization to
  -- overwrite: the weights replace every parameter
  weights.fetch(set, nil, { progress = opts.progress })
  local init = opts.init
  if init == nil then init = false end
  local m = build(with(opts, { init = init }))
  return weights.load(m, set, { progress = opts.progress })
end

------------------------------------------------------------------------------------------------
-- VGG (Simonyan and Zisserman 2015), torchvision's variant with adaptive pooling to 7x7
------------------------------------------------------------------------------------------------
local VGG = class("VGG", nn.Module)
M.VGG = VGG

local vgg_cfgs = {
  vgg11 = { 64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M" },
  vgg13 = { 64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M" },
  vgg16 = { 64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M" },
  vgg19 = { 64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M" },
}

--- features: conv 3x3 pad 1 [BN] ReLU blocks and 2x2 max pools; avgpool to 7x7; classifier:
--- Linear(25088, 4096) ReLU Dropout Linear(4096, 4096) ReLU Dropout Linear(4096, num_classes)
function VGG:init(cfg, opts)
  opts = check_opts("vgg", opts, { "batch_norm", "dropout", "num_classes", "init", "weights", "progress" })
  local conv_init, lin_init = initializers(opts)
  local features = nn.Sequential {}
  local cin = 3
  -- Keras' names of the same layers (block5_conv3, block5_pool, fc1, fc2, predictions), as
  -- the articles use them: a Keras convolution includes its ReLU, so its name is the ReLU's
  local aliases, block, conv = {}, 1, 0
  for _, v in ipairs(cfg) do
    if v == "M" then
      features:add(nn.MaxPool2d(2, { stride = 2 }))
      aliases[string.format("block%d_pool", block)] = "features." .. (#features - 1)
      block, conv = block + 1, 0
    else
      features:add(nn.Conv2d(cin, v, 3, with(conv_init, { padding = 1 })))
      if opts.batch_norm then features:add(nn.BatchNorm2d(v)) end
      features:add(nn.ReLU())
      conv = conv + 1
      aliases[string.format("block%d_conv%d", block, conv)] = "features." .. (#features - 1)
      cin = v
    end
  end
  aliases.fc1, aliases.fc2, aliases.predictions = "classifier.1", "classifier.4", "classifier.6"
  for k, v in pairs(aliases) do self:alias(k, v) end
  local p = opts.dropout or 0.5
  self.num_classes, self.batch_norm, self.dropout = opts.num_classes or 1000, opts.batch_norm or false, p
  self.features = features
  self.avgpool = nn.AdaptiveAvgPool2d(7)
  self.classifier = nn.Sequential {
    nn.Linear(512 * 7 * 7, 4096, lin_init), nn.ReLU(), nn.Dropout(p),
    nn.Linear(4096, 4096, lin_init), nn.ReLU(), nn.Dropout(p),
    nn.Linear(4096, opts.num_classes or 1000, lin_init),
  }
end

function VGG:forward(x)
  x = self.avgpool(self.features(x))
  return self.classifier(x:flatten(2))
end

function VGG:config()
  return { name = self.name, num_classes = self.num_classes, batch_norm = self.batch_norm, dropout = self.dropout }
end

for name, cfg in pairs(vgg_cfgs) do
 --- nv.models.vgg11/13/16/19(opts): torchvision's VGG (opts.num_classes, opts.init, opts.dropout,
 --- opts.weights = "IMAGENET1K_V1" or "DEFAULT" for torchvision's trained weights)
  M[name] = function(opts)
    return with_weights(name, opts, function(o)
      local m = VGG(cfg, o)
      m.name = name
      return m
    end)
  end
 --- nv.models.vgg11_bn ... vgg19_bn(opts): VGG with batch norm after each convolution
  M[name .. "_bn"] = function(opts)
    return with_weights(name .. "_bn", opts, function(o)
      local m = VGG(cfg, with(o or {}, { batch_norm = true }))
      m.name = name .. "_bn"
      return m
    end)
  end
end

------------------------------------------------------------------------------------------------
-- ResNet (He et al. 2016), torchvision's v1.5 (the stride of a Bottleneck is on its 3x3 conv)
------------------------------------------------------------------------------------------------

--- BasicBlock(inplanes, planes, stride, downsample): relu(bn2(conv2(relu(bn1(conv1(x))))) + x)
local BasicBlock = class("BasicBlock", nn.Module)
M.BasicBlock = BasicBlock
BasicBlock.expansion = 1

function BasicBlock:init(inplanes, planes, stride, downsample, conv_init)
  self.conv1 = nn.Conv2d(inplanes, planes, 3, with(conv_init, { stride = stride, padding = 1, bias = false }))
  self.bn1 = nn.BatchNorm2d(planes)
  self.relu = nn.ReLU()
  self.conv2 = nn.Conv2d(planes, planes, 3, with(conv_init, { padding = 1, bias = false }))
  self.bn2 = nn.BatchNorm2d(planes)
  self.downsample = downsample
end

local conv_bn_relu = nn.conv_bn_relu

-- Inside an unhooked ResNet's forward the blocks pass their outputs on channels-last (oneDNN
-- reads and writes that layout without reorders); a block called on its own, or any block
-- of a hooked network, returns NCHW.  Inside a block, the first convolution's output goes
-- only to the next convolution, so it is channels-last whenever it fuses.
local chain = false

-- the tensor a block adds: x, or its downsampled copy (channels-last inside a chain, where
-- nothing observes it and the convolution that adds it reads that layout best)
local function shortcut(self, x)
  local ds = self.downsample
  if not ds then return x end
  if chain and ds.kind == "Sequential" then return nn._sequential_forward(ds, x, true) end
  return ds(x)
end

function BasicBlock:forward(x)
  local out = conv_bn_relu(self.conv1, self.bn1, self.relu, x, true)
  return nn.conv_bn_add_relu(self.conv2, self.bn2, self.relu, out,
    function() return shortcut(self, x) end, chain)
end

--- Bottleneck(inplanes, planes, stride, downsample): 1x1 -> 3x3 (stride) -> 1x1 (4 planes) + x
local Bottleneck = class("Bottleneck", nn.Module)
M.Bottleneck = Bottleneck
Bottleneck.expansion = 4

function Bottleneck:init(inplanes, planes, stride, downsample, conv_init)
  self.conv1 = nn.Conv2d(inplanes, planes, 1, with(conv_init, { bias = false }))
  self.bn1 = nn.BatchNorm2d(planes)
  self.conv2 = nn.Conv2d(planes, planes, 3, with(conv_init, { stride = stride, padding = 1, bias = false }))
  self.bn2 = nn.BatchNorm2d(planes)
  self.conv3 = nn.Conv2d(planes, planes * 4, 1, with(conv_init, { bias = false }))
  self.bn3 = nn.BatchNorm2d(planes * 4)
  self.relu = nn.ReLU()
  self.downsample = downsample
end

function Bottleneck:forward(x)
  local out = conv_bn_relu(self.conv1, self.bn1, self.relu, x, true)
  out = conv_bn_relu(self.conv2, self.bn2, self.relu, out, true)
  return nn.conv_bn_add_relu(self.conv3, self.bn3, self.relu, out,
    function() return shortcut(self, x) end, chain)
end

--- ResNet(block, layers, opts): torchvision's ResNet from its residual block (BasicBlock or
--- Bottleneck) and the block counts of its four stages; nv.models.resnet18 ... resnet152 make
--- the standard ones (opts.num_classes, opts.init), with torchvision's parameter names
local ResNet = class("ResNet", nn.Module)
M.ResNet = ResNet

function ResNet:init(block, layers, opts)
  opts = check_opts("resnet", opts, { "num_classes", "init", "weights", "progress" })
  local conv_init, lin_init = initializers(opts)
  local inplanes = 64
  self.num_classes, self.layers = opts.num_classes or 1000, { layers[1], layers[2], layers[3], layers[4] }
  self.block = rawget(block, "__name")
  self.conv1 = nn.Conv2d(3, 64, 7, with(conv_init, { stride = 2, padding = 3, bias = false }))
  self.bn1 = nn.BatchNorm2d(64)
  self.relu = nn.ReLU()
  self.maxpool = nn.MaxPool2d(3, { stride = 2, padding = 1 })
  local function make_layer(planes, n, stride)
    local downsample
    if stride ~= 1 or inplanes ~= planes * block.expansion then
      downsample = nn.Sequential {
        nn.Conv2d(inplanes, planes * block.expansion, 1, with(conv_init, { stride = stride, bias = false })),
        nn.BatchNorm2d(planes * block.expansion),
      }
    end
    local seq = nn.Sequential { block(inplanes, planes, stride, downsample, conv_init) }
    inplanes = planes * block.expansion
    for _ = 2, n do seq:add(block(inplanes, planes, 1, nil, conv_init)) end
    return seq
  end
  self.layer1 = make_layer(64, layers[1], 1)
  self.layer2 = make_layer(128, layers[2], 2)
  self.layer3 = make_layer(256, layers[3], 2)
  self.layer4 = make_layer(512, layers[4], 2)
  self.avgpool = nn.AdaptiveAvgPool2d(1)
  -- torchvision leaves fc at Linear's default initialization
  local fc_init = (opts.init == false or opts.init == "none") and lin_init or {}
  self.fc = nn.Linear(512 * block.expansion, opts.num_classes or 1000, fc_init)
end

local function hooked(m)
  for _, sub in m:named_modules() do
    if #rawget(sub, "_hooks") > 0 or #rawget(sub, "_pre_hooks") > 0 then return true end
  end
  return false
end

function ResNet:forward(x)
  local was, now = chain, not self.training and not core.is_grad_enabled() and not hooked(self)
  -- the stem's output, and so the max-pooling's, is channels-last inside a chain
  x = self.maxpool(conv_bn_relu(self.conv1, self.bn1, self.relu, x, now))
  chain = now
  local ok, y = pcall(function() return self.layer4(self.layer3(self.layer2(self.layer1(x)))) end)
  chain = was
  if not ok then error(y, 0) end
  return self.fc(self.avgpool(y):flatten(2))
end

function ResNet:config()
  return { name = self.name, num_classes = self.num_classes, block = self.block,
           layers = { table.unpack(self.layers) } }
end

local resnet_cfgs = {
  resnet18 = { BasicBlock, { 2, 2, 2, 2 } },
  resnet34 = { BasicBlock, { 3, 4, 6, 3 } },
  resnet50 = { Bottleneck, { 3, 4, 6, 3 } },
  resnet101 = { Bottleneck, { 3, 4, 23, 3 } },
  resnet152 = { Bottleneck, { 3, 8, 36, 3 } },
}
for name, cfg in pairs(resnet_cfgs) do
 --- nv.models.resnet18/34/50/101/152(opts): torchvision's ResNet (opts.num_classes, opts.init,
 --- opts.weights = "IMAGENET1K_V1", "IMAGENET1K_V2" (resnet50 and up) or "DEFAULT")
  M[name] = function(opts)
    return with_weights(name, opts, function(o)
      local m = ResNet(cfg[1], cfg[2], o)
      m.name = name
      return m
    end)
  end
end

------------------------------------------------------------------------------------------------
-- A small CNN for Fashion-MNIST (1x28x28, 10 classes), 207k parameters: with Adam (lr 1e-3,
-- batch 128) 89.8% test accuracy after 3 epochs, 90.7% after 5, 91.1% after 6.  features: conv(1->16) BN ReLU
-- pool, conv(16->32) BN ReLU pool; classifier: Linear(1568 -> 128) ReLU Dropout(0.25)
-- Linear(128 -> 10).  opts.channels = {32, 64} gives the wider classic variant (more accurate,
-- several times slower per batch).
------------------------------------------------------------------------------------------------
local FashionCNN = class("FashionCNN", nn.Module)
M.FashionCNN = FashionCNN

function FashionCNN:init(opts)
  opts = check_opts("fashion_cnn", opts, { "channels", "dropout", "hidden", "num_classes", "init", "weights",
                                           "progress" })
  local c1, c2, hidden = opts.channels and opts.channels[1] or 16, opts.channels and opts.channels[2] or 32, opts.hidden or 128
  self.num_classes, self.channels, self.hidden = opts.num_classes or 10, { c1, c2 }, hidden
  self.dropout = opts.dropout or 0.25
  self.features = nn.Sequential {
    nn.Conv2d(1, c1, 3, { padding = 1 }), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(c1, c2, 3, { padding = 1 }), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
  }
  self.classifier = nn.Sequential {
    nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Dropout(self.dropout),
    nn.Linear(hidden, opts.num_classes or 10),
  }
end

function FashionCNN:config()
  return { name = self.name, num_classes = self.num_classes, channels = { self.channels[1], self.channels[2] },
           hidden = self.hidden, dropout = self.dropout }
end

function FashionCNN:forward(x)
  return self.classifier(self.features(x):flatten(2))
end

--- fashion_cnn({num_classes = 10, dropout = 0.25, channels = {16, 32}, hidden = 128})
function M.fashion_cnn(opts)
  return with_weights("fashion_cnn", opts, function(o)
    local m = FashionCNN(o)
    m.name = "fashion_cnn"
    return m
  end)
end

require("nnvis.nn.vit").models(nn, M, with_weights)

--- names of the builders
M.available = { "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
                "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vit_b_16", "vit_b_32", "vit_l_16",
                "vit_l_32", "fashion_cnn" }

return M

-- nnvis.models: torchvision's architectures (parameter counts and names), forward shapes, and
-- the small Fashion-MNIST CNN.  VGG16 is built once: 138M parameters take seconds and 550 MB.
local nv = require "nnvis"
local H = require "helpers"
local class = require "nnvis.tensor.class"
local models = nv.models

local function keyset(m)
  local sd, keys = m:state_dict()
  return sd, keys
end

describe("nnvis.nn.models", function()
  setup(function() nv.manual_seed(11) end)
  teardown(function() collectgarbage(); collectgarbage() end)

  describe("VGG", function()
    local vgg16
    setup(function() vgg16 = models.vgg16() end)
    teardown(function() vgg16 = nil; collectgarbage(); collectgarbage() end)

    it("vgg16 has torchvision's 138,357,544 parameters and names", function()
      assert.equal(138357544, vgg16:num_parameters())
      assert.equal("vgg16", vgg16.name)
      local sd, keys = keyset(vgg16)
      assert.equal(32, #keys)                          -- 13 convs + 3 linears, weight and bias
      assert.equal("features.0.weight", keys[1])
      assert.same({ 512, 512, 3, 3 }, sd["features.28.weight"]:shape())
      assert.same({ 1000 }, sd["classifier.6.bias"]:shape())
      assert.same({ 4096, 25088 }, sd["classifier.0.weight"]:shape())
      assert.equal("AdaptiveAvgPool2d", vgg16:get("avgpool").kind)
      assert.equal("Dropout", vgg16:get("classifier.5").kind)
    end)

    it("vgg16 maps a batch of images of any size >= 32 to (N, 1000) logits", function()
      vgg16:eval()
      local y = nv.no_grad(function() return vgg16(nv.randn(1, 3, 32, 32)) end)
      assert.same({ 1, 1000 }, y:shape())
    end)

    it("initializes like torchvision: Kaiming-normal convolutions, N(0, 0.01) linears, zero biases", function()
      local w = vgg16:get("features.2.weight")             -- 64 -> 64, fan_out = 576
      assert.is_true(math.abs(w:std():item() / math.sqrt(2 / 576) - 1) < 0.05)
      assert.equal(0, vgg16:get("features.2.bias"):abs():max():item())
      assert.is_true(math.abs(vgg16:get("classifier.6.weight"):std():item() / 0.01 - 1) < 0.05)
    end)

    it("vgg11 and vgg16_bn have torchvision's parameter counts and BatchNorm names", function()
      local m = models.vgg11 { init = false }
      assert.equal(132863336, m:num_parameters())
      m = nil
      collectgarbage()
      m = models.vgg16_bn { init = false }
      assert.equal(138365992, m:num_parameters())
      local sd = m:state_dict()
      assert.same({ 64 }, sd["features.1.running_var"]:shape())
      assert.same({ 512, 512, 3, 3 }, sd["features.40.weight"]:shape())
      assert.equal("vgg16_bn", m.name)
      m, sd = nil, nil
      collectgarbage()
    end)

    it("takes num_classes", function()
      local m = models.vgg11 { num_classes = 7, init = false }
      assert.same({ 7, 4096 }, m:get("classifier.6.weight"):shape())
      m = nil
      collectgarbage()
    end)
  end)

  describe("ResNet", function()
    it("resnet18, 34 and 50 have torchvision's parameter counts", function()
      assert.equal(11689512, models.resnet18():num_parameters())
      assert.equal(21797672, models.resnet34 { init = false }:num_parameters())
      assert.equal(25557032, models.resnet50 { init = false }:num_parameters())
    end)

    it("resnet18 uses torchvision's state dict keys", function()
      local m = models.resnet18()
      local sd, keys = keyset(m)
      assert.equal(122, #keys)
      assert.equal("conv1.weight", keys[1])
      assert.equal("fc.bias", keys[#keys])
      for _, k in ipairs { "layer2.0.downsample.1.running_var", "layer2.0.downsample.0.weight", "fc.weight",
                           "layer1.1.bn2.num_batches_tracked", "layer4.1.conv2.weight", "bn1.running_mean" } do
        assert.is_not_nil(sd[k], k)
      end
      assert.is_nil(sd["layer1.0.downsample.0.weight"])      -- no projection where the shape is kept
      assert.is_nil(sd["conv1.bias"])
      assert.same({ 1000, 512 }, sd["fc.weight"]:shape())
      assert.equal("ResNet (resnet18) {", tostring(m):match("^[^\n]+"))
      assert.equal("  (conv1): Conv2d(3 -> 64, 7x7, 2,2, 3,3) without bias", tostring(m):match("\n([^\n]+)"))
      assert.same({ name = "resnet18", num_classes = 1000, block = "BasicBlock", layers = { 2, 2, 2, 2 } }, m:config())
    end)

    it("resnet50 has Bottleneck blocks with conv3/bn3 and a projection in layer1", function()
      local m = models.resnet50 { init = false }
      assert.is_true(class.isinstance(m:get("layer3.5"), models.Bottleneck))
      assert.same({ 256, 64, 1, 1 }, m:get("layer1.0.downsample.0.weight"):shape())
      assert.same({ 2048 }, m:get("layer4.2.bn3.running_mean"):shape())
      assert.same({ 1000, 2048 }, m:get("fc.weight"):shape())
      assert.equal("resnet50", m.name)
    end)

    it("resnet18 maps (1,3,64,64) to (1,1000) and takes num_classes", function()
      local m = models.resnet18 { num_classes = 5 }
      m:eval()
      assert.same({ 1, 5 }, m(nv.randn(1, 3, 64, 64)):shape())
      assert.same({ 1, 1000 }, models.resnet18()(nv.randn(1, 3, 64, 64)):shape())
    end)

    it("BasicBlock is a plain user-style module: its forward is the residual sum", function()
      local m = models.resnet18()
      m:eval()
      local block = m:get("layer2.0")
      local x = nv.randn(1, 64, 8, 8)
      local out = block.bn2(block.conv2(block.bn1(block.conv1(x)):relu()))
      H.close(block(x), (out + block.downsample(x)):relu(), 1e-5)
      assert.equal("BasicBlock", block.kind)
    end)

    it("a resnet18 state dict round-trips through a file, and loads with 0-dim num_batches_tracked", function()
      local a = models.resnet18 { num_classes = 4 }
      a(nv.randn(2, 3, 32, 32))             -- training step moves the running statistics
      a:eval()
      local path = os.tmpname()
      assert.is_true(a:save(path))
      local b = models.resnet18 { num_classes = 4 }:eval()
      b:load(path)
      os.remove(path)
      local x = nv.randn(1, 3, 48, 48)
      H.close(b(x), a(x), 1e-5)
      -- PyTorch stores num_batches_tracked as a 0-dim int64 scalar
      local sd = a:state_dict()
      for k, v in pairs(sd) do
        if k:match("num_batches_tracked$") then sd[k] = nv.tensor(v:item()) end
      end
      local c = models.resnet18 { num_classes = 4, init = false }:eval()
      c:load_state_dict(sd)
      H.close(c(x), a(x), 1e-5)
      assert.equal(1, c:get("bn1.num_batches_tracked"):item())
    end)

    it("refuses a VGG state dict, naming the keys", function()
      local m = models.resnet18 { num_classes = 3, init = false }
      local ok, err = pcall(m.load_state_dict, m, { ["features.0.weight"] = nv.zeros(64, 3, 3, 3) })
      assert.is_false(ok)
      assert.truthy(err:find("missing keys: conv1.weight, bn1.weight, ", 1, true))
      assert.truthy(err:find("and 102 more; unexpected keys: features.0.weight", 1, true))
    end)
  end)

  describe("fashion_cnn", function()
    it("maps (4,1,28,28) to (4,10) logits and learns a small batch", function()
      local m = models.fashion_cnn()
      assert.equal("fashion_cnn", m.name)
      assert.same({ 4, 10 }, m(nv.rand(4, 1, 28, 28)):shape())
      local x = nv.rand(16, 1, 28, 28)
      local y = {}
      for i = 1, 16 do y[i] = (i - 1) % 10 + 1 end
      local first, loss
      for _ = 1, 15 do
        m:zero_grad()
        loss = nv.cross_entropy(m(x), y)
        first = first or loss:item()
        loss:backward()
        nv.no_grad(function()
          for _, p in ipairs(m:parameters()) do p:add_(p.grad, -0.05) end
        end)
      end
      assert.is_true(loss:item() < 0.5 * first, string.format("loss %g -> %g", first, loss:item()))
    end)

    it("is small: two conv blocks and two linear layers", function()
      local m = models.fashion_cnn()
      local convs, linears = 0, 0
      for _, sub in m:named_modules() do
        if sub.kind == "Conv2d" then convs = convs + 1 end
        if sub.kind == "Linear" then linears = linears + 1 end
      end
      assert.equal(2, convs)
      assert.equal(2, linears)
      assert.is_true(m:num_parameters() < 500000)
    end)
  end)
end)

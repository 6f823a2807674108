-- spec/fixtures/onnx's SmallCNN written natively, with the fixture's weights, for comparing
-- an imported model with the native one
local nv = require "nnvis"

local M = {}

function M.small_cnn()
  local DIR = "spec/fixtures/onnx/"
  local nn = nv.nn
  local Block = nv.class("Block", nn.Module)
  function Block:init(c)
    self.conv1 = nn.Conv2d(c, c, 3, { padding = 1, bias = false })
    self.bn1 = nn.BatchNorm2d(c)
    self.relu = nn.ReLU()
    self.conv2 = nn.Conv2d(c, c, 3, { padding = 1, bias = false })
    self.bn2 = nn.BatchNorm2d(c)
  end
  function Block:forward(x)
    return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)
  end
  local Net = nv.class("SmallCNN", nn.Module)
  function Net:init()
    self.stem = nn.Sequential { nn.Conv2d(3, 8, 3, { padding = 1 }), nn.BatchNorm2d(8), nn.ReLU() }
    self.block = Block(8)
    self.dw = nn.Conv2d(8, 8, 3, { stride = 2, padding = 1, groups = 8 })
    self.pw = nn.Conv2d(8, 8, 1)
    self.pool = nn.MaxPool2d(2)
    self.fc = nn.Linear(256, 5)
  end
  function Net:forward(x)
    x = self.dw(self.block(self.stem(x)))
    x = nv.cat({ self.pw(x):relu(), x:sigmoid() }, 2)
    x = self.pool(x)
    return self.fc(x:view(x:size(1), -1))
  end
  local net = Net()
  local sd = assert(nv.load_safetensors(DIR .. "small_cnn_weights.safetensors"))
  net:load_state_dict(sd, { strict = false })
  return net:eval()
end

return M

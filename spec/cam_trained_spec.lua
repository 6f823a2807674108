-- A model trained to recognize Fashion-MNIST items placed in one quadrant of a larger
-- canvas: its class activation maps must peak on the item.
local nv = require "nnvis"
local nn = nv.nn

local CLASSES = { 2, 8, 9 }          -- Trouser, Sneaker, Bag (1-based Fashion-MNIST labels)

-- items of the chosen classes pasted at a random quadrant of a 56x56 canvas
local function placed(d, first, n) return nv.data.placed(d, { classes = CLASSES, n = n, first = first }) end

local function peak_quadrant(map)   -- map (56,56) -> quadrant 0..3 of its maximum
  local v, idx = map:reshape(56 * 56):max(1)
  local p = idx:item() - 1
  local r, c = p // 56, p % 56
  return (r >= 28 and 2 or 0) + (c >= 28 and 1 or 0)
end

describe("nnvis.cam on a trained model", function()
  local model, tx, ty, tq
  setup(function()
    nv.manual_seed(11)
    local train = nv.data.fashion_mnist { split = "train", limit = 6000 }
    local x, y = placed(train, 1, 1200)
    model = nn.Sequential { nn.Conv2d(1, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(32, 3) }
    nv.train.fit(model, { x = x, y = y, epochs = 6, batch_size = 32, lr = 3e-3, seed = 2, progress = false,
                          out = { write = function() end, flush = function() end } })
    local test = nv.data.fashion_mnist { split = "test", limit = 2000 }
    tx, ty, tq = placed(test, 1, 100)
  end)

  it("classifies the placed items well", function()
    local acc = nv.train.evaluate(model, tx, ty).accuracy
    assert.is_true(acc > 0.9, "accuracy " .. acc)
  end)

  for _, method in ipairs { "gradcam", "cam", "gradcampp", "layercam", "scorecam" } do
    it(method .. " peaks in the item's quadrant for the large majority of images", function()
      local maps = nv.cam[method](model, tx, { layer = "4", target = ty })
      local hits = 0
      for i = 1, 100 do
        if peak_quadrant(maps:select(1, i)) == tq[i] then hits = hits + 1 end
      end
      assert.is_true(hits >= 80, method .. ": " .. hits .. "/100 peaks on the item")
    end)
  end
end)

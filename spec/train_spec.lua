local nv = require "nnvis"

-- a linear classifier as a bare Lua object: a callable with parameters()
local function tiny_model(d, c)
  local w = (nv.randn(c, d) * 0.1):set_requires_grad(true)
  local b = nv.zeros(c):set_requires_grad(true)
  return setmetatable({ training = true, parameters = function() return { w, b } end,
                        train = function(self) self.training = true end,
                        eval = function(self) self.training = false end },
                      { __call = function(_, x) return nv.linear(x, w, b) end })
end

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end,
           flush = function() end, text = function() return table.concat(buf) end }
end

describe("nnvis.train", function()
  it("fits a separable problem, keeps per-step and per-epoch history, and logs plain lines off a terminal", function()
    nv.manual_seed(0)
    local x = nv.randn(256, 2)
    local y = (x:select(2, 1):gt(0) + 1)          -- class 2 when the first feature is positive
    local m = tiny_model(2, 2)
    local out = sink()
    local h = nv.train.fit(m, { x = x, y = y, epochs = 3, batch_size = 32, seed = 1, lr = 0.05,
                                progress = false, log_every = 4, out = out, val_x = x, val_y = y })
    assert.equal(24, #h.steps.loss)
    assert.equal(3, #h.epochs.loss)
    assert.is_true(h.epochs.loss[3] < h.epochs.loss[1])
    assert.is_true(h.epochs.val_accuracy[3] > 0.95)
    assert.is_true(h.epochs.images_per_second[1] > 0)
    local text = out.text()
    assert.truthy(text:find("epoch 1/3 step 4/8", 1, true), text)
    assert.truthy(text:find("val_acc", 1, true))
    local r = nv.train.evaluate(m, x, y)
    assert.equal(256, r.n)
    assert.is_true(math.abs(r.accuracy - h.epochs.val_accuracy[3]) < 1e-9)
  end)

  it("draws a progress bar with carriage returns on a terminal", function()
    local x, y = nv.randn(20, 2), nv.ones(20)
    local out = sink()
    nv.train.fit(tiny_model(2, 2), { x = x, y = y, batch_size = 10, progress = true, out = out })
    local text = out.text()
    assert.truthy(text:find("\repoch 1/1 [", 1, true))
    assert.truthy(text:find("2/2", 1, true))
  end)
end)

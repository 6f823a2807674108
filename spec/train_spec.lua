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

describe("nnvis.train.train", function()
  it("fits a separable problem, keeps per-step and per-epoch history, and logs plain lines off a terminal", function()
    nv.manual_seed(0)
    local x = nv.randn(256, 2)
    local y = (x:select(2, 1):gt(0) + 1)          -- class 2 when the first feature is positive
    local m = tiny_model(2, 2)
    local out = sink()
    local h = nv.train.fit(m, { x = x, y = y, epochs = 3, batch_size = 32, seed = 1, lr = 0.05,
                                log_every = 4, out = out, val_x = x, val_y = y })
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

  -- what a terminal shows of text: "\r" returns to the line's start, "\27[K" erases to its end
  local function screen(text)
    local lines, cur, col = {}, {}, 1
    local i = 1
    while i <= #text do
      local c = text:sub(i, i)
      if c == "\r" then col = 1
      elseif c == "\n" then lines[#lines + 1] = table.concat(cur); cur, col = {}, 1
      elseif text:sub(i, i + 2) == "\27[K" then
        for k = col, #cur do cur[k] = nil end
        i = i + 2
      else cur[col] = c; col = col + 1 end
      i = i + 1
    end
    if #cur > 0 then lines[#lines + 1] = table.concat(cur) end
    return lines
  end

  it("leaves no end of a longer bar behind the epoch's line on a terminal", function()
    local x, y = nv.randn(40, 2), nv.ones(40)
    local out = sink()
    nv.train.fit(tiny_model(2, 2), { x = x, y = y, batch_size = 10, progress = true, out = out })
    local lines = screen(out.text())
    assert.equal(1, #lines)
    assert.matches("^epoch 1/1 loss [%d.]+ acc [%d.]+ %([%d.]+ s, %d+ img/s%)$", lines[1])
  end)

  it("prints nothing at all with progress = false", function()
    local x, y = nv.randn(40, 2), nv.ones(40)
    local out = sink()
    nv.train.fit(tiny_model(2, 2), { x = x, y = y, batch_size = 10, epochs = 2, progress = false, out = out,
                                     log_every = 1, val_x = x, val_y = y })
    assert.equal("", out.text())
  end)

  it("returns the history so far when interrupted (Ctrl-C), and says so", function()
    local x, y = nv.randn(40, 2), nv.ones(40)
    local out = sink()
    local h = nv.train.fit(tiny_model(2, 2), { x = x, y = y, batch_size = 10, epochs = 3, out = out,
      on_step = function(info) if info.step == 6 then error("interrupted!") end end })
    assert.is_true(h.interrupted)
    assert.equal(6, #h.steps.loss)
    assert.equal(1, #h.epochs.loss)
    assert.matches("fit: interrupted at step 6 %(epoch 2 of 3%)", out.text())
    -- any other error still raises
    assert.has_error(function()
      nv.train.fit(tiny_model(2, 2), { x = x, y = y, batch_size = 10, out = sink(),
        on_step = function() error("my bug") end })
    end, "my bug")
  end)

  it("loads a saved history as a history: print, plot and report take it", function()
    local x, y = nv.randn(40, 2), (nv.randn(40):gt(0) + 1)
    local m = nv.nn.Sequential { nv.nn.Linear(2, 2) }
    local h = nv.train.fit(m, { x = x, y = y, batch_size = 10, epochs = 3, out = sink(), val_x = x, val_y = y })
    local path = os.tmpname()
    nv.train.save_history(h, path, { test_accuracy = 0.5 })
    local g = assert(nv.train.load_history(path))
    os.remove(path)
    for e = 1, 3 do assert.near(h.epochs.loss[e], g.epochs.loss[e], 1e-5) end
    assert.same(h.epoch_end_steps, g.epoch_end_steps)
    assert.equal(0.5, g.test_accuracy)
    assert.matches("training history: 3 epochs, 12 steps", tostring(g))
    local img, panels = g:plot()
    assert.matches("training curves: 3 epochs, 12 steps", nv.figure.layout(img).texts[1].text)
    -- the epoch curves of loss and accuracy, training and validation, side by side
    for name, wants in pairs { loss = { "|loss|", "|val loss|", "|epoch|" }, accuracy = { "|accuracy|", "|val accuracy|" } } do
      local texts = {}
      for _, t in ipairs(nv.figure.layout(panels[name]).texts) do texts[#texts + 1] = t.text end
      texts = "|" .. table.concat(texts, "|") .. "|"
      for _, want in ipairs(wants) do assert.truthy(texts:find(want, 1, true), want .. " not in " .. texts) end
    end
    assert.is_true(img:size(3) > 1.8 * panels.loss:size(3))
    assert.truthy(nv.report(m, x:narrow(1, 1, 2), { history = g, samples = 0, feature_layers = {} }))
  end)

  it("refuses a live mode it does not support instead of ignoring it", function()
    local x, y = nv.randn(8, 2), (nv.randn(8):gt(0) + 1)
    assert.has_error(function()
      nv.train.fit(tiny_model(2, 2), { x = x, y = y, out = sink(), live = true, live_mode = "file" })
    end, "fit: live_mode 'file' is not supported (kitty, iterm, sixel, display, text, board)")
    assert.has_error(function()
      nv.train.fit(tiny_model(2, 2), { x = x, y = y, out = sink(), live = "boards" })
    end, "fit: live must be true, false or \"board\", got boards")
    assert.has_error(function()
      nv.train.fit(tiny_model(2, 2), { x = x, y = y, out = sink(), hparams = { lr = 1 } })
    end, "fit: hparams needs tensorboard = dir")
  end)

  it("writes a sparkline line with live_mode = \"text\"", function()
    local x, y = nv.randn(8, 2), (nv.randn(8):gt(0) + 1)
    local buf = {}
    local out = { write = function(_, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end end }
    nv.train.fit(tiny_model(2, 2), { x = x, y = y, out = out, progress = false, live = true, live_mode = "text", batch_size = 4 })
    assert.truthy(table.concat(buf):find("^loss [▁▂▃▄▅▆▇█]+ %d"), table.concat(buf))
  end)
end)

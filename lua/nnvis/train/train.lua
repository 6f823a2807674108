-- nnvis.train.train — a small trainer for classifiers: fit() with a progress bar on a terminal
-- (plain periodic lines otherwise), loss and accuracy history per step and per epoch kept
-- for plotting, and evaluate().
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts
local F = require "nnvis.tensor.functional"
local data = require "nnvis.io.data"

local T = {}

local no_grad = core.no_grad

-- number of correct top-1 predictions
local function correct(logits, y)
  return logits:argmax(2):view(-1):eq(y):sum():item()
end

--- Loss and top-1 accuracy of model on (x, y) in eval mode, without recording a graph.
--- opts.batch_size (256), opts.loss (cross_entropy).  Returns {loss =, accuracy =, n =}.
function T.evaluate(model, x, y, opts)
  opts = check_opts("evaluate", opts, { "batch_size", "loss" })
  local lossf = opts.loss or F.cross_entropy
  if x:size(1) == 0 then error("evaluate: no samples to evaluate", 2) end
  local total, right, n = 0, 0, 0
  require("nnvis.tensor.util").with_mode(model, false, no_grad, function()
    for bx, by in data.batches(x, y, { batch_size = opts.batch_size or 256 }) do
      local out = model(bx)
      local b = bx:size(1)
      total = total + lossf(out, by):item() * b
      right = right + correct(out, by)
      n = n + b
    end
  end)
  return { loss = total / n, accuracy = right / n, n = n }
end

local util = require "nnvis.tensor.util"
local bar = util.bar

-- the history fit() returns: tostring is a summary with sparklines, :plot() the curves
local History = require("nnvis.tensor.class")("History")

local function last(t) return t[#t] end

function History.__tostring(h)
  local plot = require "nnvis.draw.plot"
  local e = h.epochs
  local lines = { string.format("training history: %d epoch%s, %d steps", #e.loss, #e.loss == 1 and "" or "s", #h.steps.loss) }
  local function series(name, v, fmt)
    if #v > 0 then
      lines[#lines + 1] = string.format("  %-13s " .. fmt .. " -> " .. fmt .. "  %s", name, v[1], last(v), plot.sparkline(v, { width = 40 }))
    end
  end
  series("step loss", h.steps.loss, "%.4f")
  series("loss", e.loss, "%.4f")
  series("accuracy", e.accuracy, "%.4f")
  series("val_loss", e.val_loss, "%.4f")
  series("val_accuracy", e.val_accuracy, "%.4f")
  return table.concat(lines, "\n")
end

--- The training curves as an image (shown by nv.show), as Keras users plot them: loss and,
--- beside it, accuracy, for training and validation, by epoch; with fewer than two epochs, by
--- step (the validation values at the step their epoch ended).  opts: title, width, height
--- (of each panel, in points).  Returns the image and its panels by name ({loss =, accuracy =}).
function History:plot(opts)
  opts = util.check_opts("History:plot", opts, { "title", "width", "height" })
  local plot, e, s = require("nnvis.draw.plot"), self.epochs, self.steps
  local by_epoch = #e.loss >= 2
  local ends = self.epoch_end_steps or {}
  local function panel(what, train, val, step_train)
    local series = {}
    if by_epoch then
      if #train > 0 then series[#series + 1] = { name = what, y = train } end
    elseif #step_train > 0 then
      series[#series + 1] = { name = "step " .. what, y = step_train }
    end
    if #val > 0 then series[#series + 1] = { name = "val " .. what, y = val, x = not by_epoch and ends or nil } end
    if #series == 0 then return nil end
    return plot.line(series, { title = what, xlabel = by_epoch and "epoch" or "step", ylabel = what,
      width = opts.width or 320, height = opts.height or 200 })
  end
  local panels, named = {}, {}
  named.loss = panel("loss", e.loss, e.val_loss, s.loss)
  named.accuracy = panel("accuracy", e.accuracy, e.val_accuracy, s.accuracy or {})
  panels[#panels + 1] = named.loss
  panels[#panels + 1] = named.accuracy
  if #panels == 0 then panels[1] = plot.line({}, { title = "loss (no steps recorded)" }) end
  local title = opts.title or string.format("training curves: %d epoch%s, %d steps", #e.loss, #e.loss == 1 and "" or "s", #s.loss)
  return require("nnvis.draw.image").grid(panels, { nrow = #panels, title = title, enlarge = false,
    tile_scale = require("nnvis.draw.style").scale, kind = "training curves" }), named
end

-- live view after each epoch: the curves redrawn in a terminal that shows images (the same
-- kitty image id replaced), in a notebook as one display updated in place (display_id, one
-- per fit), a sparkline line otherwise
local live_fits = 0
local LIVE_MODES = { kitty = true, iterm = true, sixel = true, display = true, text = true, board = true }
local function show_live(hist, opts, out, tty, display_id, final)
  local show = require "nnvis.draw.show"
  local mode = opts.live_mode or show.detect(nil, tty or opts.out ~= nil)
  if mode == "board" then
    -- the board gets the history's new points as they come (one run per fit)
    return show.writer("board")(nil, { history = hist, run = "fit-" .. live_fits, final = final }, out)
  end
  if mode == "kitty" or mode == "iterm" or mode == "sixel" or mode == "display" then
    local fig = opts.live_figure and opts.live_figure(hist) or hist:plot()
    show(fig, { mode = mode, out = out, id = 7001, width = 480, display_id = display_id,
                        update = display_id and hist.epoch_end_steps[2] ~= nil or nil })
  else
    out:write("loss ", require("nnvis.draw.plot").sparkline(hist.steps.loss, { width = 60 }),
      string.format(" %.4f\n", last(hist.steps.loss) or 0))
  end
end

--- Trains a classifier.  opts: x, y (training data, y 1-based ids); val_x, val_y (optional);
--- epochs (1); batch_size (64); optimizer (default Adam, lr 1e-3); loss (cross_entropy);
--- live (redraw the loss curves after each epoch with nv.show: inline in kitty/iTerm2/sixel
--- terminals, one display updated in place in the Jupyter kernel, a sparkline otherwise;
--- default: on in the kernel, or when NNVIS_LIVE=1 and the output is a terminal; "board": the
--- curves go to the live board page as they come, nv.board); live_mode (kitty, iterm, sixel,
--- display, text or board; anything else raises); live_figure (a function(history) returning what the live view
--- shows instead of the curves, e.g. function() return nv.plot.decision_regions(m, x, y) end);
--- scheduler (stepped once per epoch); seed (shuffling); max_steps; progress (auto: a bar on
--- a terminal, else a line every log_every steps); on_step(info) / on_epoch(info) callbacks.
--- tensorboard (a log directory: the TensorBoard logs Keras' callback writes, see
--- lua/nnvis/train/trainlog.lua), update_freq ("epoch", "batch" or N steps), histogram_freq (every
--- k epochs: weight and gradient histograms and tb_images (4) images with their Grad-CAM;
--- activation_histograms = true adds every leaf layer's activations); hparams (a table of
--- name -> value written with the logs, for the board's hyperparameter table);
--- grad_flow (true or every N steps: per-layer gradient norms and update ratios in
--- history.grad_flow, drawn by nv.plot.grad_flow).
--- Returns the history: {steps = {loss = {...}, accuracy = {...}}, epochs = {loss =, accuracy =,
--- val_loss =, val_accuracy =, seconds =, images_per_second = }}.
function T.fit(model, opts)
  opts = check_opts("fit", opts, { "activation_histograms", "batch_size", "drop_last", "epochs", "grad_flow", "hparams", "histogram_freq", "live", "live_figure", "live_mode", "log_every", "loss", "lr", "max_steps", "on_epoch", "on_step", "optimizer", "out", "progress", "scheduler", "seed", "shuffle", "tb_images", "tensorboard", "update_freq", "val_x", "val_y", "x", "y" })
  local x, y = opts.x, opts.y
  if not x or not y then error("fit: opts.x and opts.y (training data) are required", 2) end
  for _, e in ipairs { { "x", x }, { "y", y }, { "val_x", opts.val_x or x }, { "val_y", opts.val_y or y } } do
    local name, v = e[1], e[2]
    if not util.is_tensor(v) then
      error(string.format("fit: opts.%s must be a tensor, got a %s%s", name, type(v),
        type(v) == "table" and (" (nv.tensor{...} makes one of a list)") or ""), 2)
    end
  end
  if x:dim() == 0 or y:dim() == 0 or x:size(1) ~= y:size(1) then
    error(string.format("fit: x %s and y %s must hold the same number of samples (first dimension)",
      util.shape_str(x), util.shape_str(y)), 2)
  end
  if (opts.val_x == nil) ~= (opts.val_y == nil) then error("fit: give both val_x and val_y, or neither", 2) end
  local epochs, bs = opts.epochs or 1, opts.batch_size or 64
  local opt = opts.optimizer or require("nnvis.nn.optim").Adam(model:parameters(), { lr = opts.lr or 1e-3 })
  local lossf = opts.loss or F.cross_entropy
  -- progress: true a bar, false nothing at all, nil a bar on a terminal and lines otherwise
  local quiet = opts.progress == false
  local tty = opts.progress
  if tty == nil then tty = opts.out == nil and core.isatty(1) end
  local log_every = opts.log_every or 100
  local out = opts.out or io.stdout
  local hist = { steps = { loss = {}, accuracy = {} },
                 epochs = { loss = {}, accuracy = {}, val_loss = {}, val_accuracy = {}, seconds = {}, images_per_second = {} },
                 epoch_end_steps = {} }
  setmetatable(hist, History)
  local live = opts.live
  if live == "board" then
    if opts.live_mode ~= nil and opts.live_mode ~= "board" then
      error("fit: live = \"board\" and live_mode = \"" .. tostring(opts.live_mode) .. "\" disagree; give one", 2)
    end
    opts = util.merge(opts, { live_mode = "board" })
    live = true
  elseif live ~= nil and type(live) ~= "boolean" then
    error("fit: live must be true, false or \"board\", got " .. tostring(live), 2)
  end
  if opts.live_mode ~= nil and not LIVE_MODES[opts.live_mode] then
    error("fit: live_mode '" .. tostring(opts.live_mode) .. "' is not supported (kitty, iterm, sixel, display, text, board)", 2)
  end
  if live == nil then
    live = (os.getenv("NNVIS_LIVE") == "1" and tty) or (opts.out == nil and require("nnvis.draw.show").detect(nil, false) == "display")
  end
  live_fits = live_fits + 1
  local display_id = string.format("nnvis-fit-%d-%d", os.time(), live_fits)
  local n = x:size(1)
  local per_epoch = opts.drop_last and n // bs or math.ceil(n / bs)
  local step = 0
  local log = require("nnvis.train.trainlog").new(model, opts, per_epoch)
  -- a bar line is rewritten in place: "\r" and, on a terminal, erase to its end ("\27[K"), so
  -- a shorter line leaves nothing of a longer one behind
  local function status(line, final)
    if quiet then return end
    if tty then
      out:write("\r", line, "\27[K", final and "\n" or "")
    else
      out:write(line, "\n")
    end
    if out.flush then out:flush() end
  end
  local function train()
  for epoch = 1, epochs do
    if model.train then model:train() end
    local t0 = core.now()
    local sum_loss, right, seen = 0, 0, 0
    for bx, by, k in data.batches(x, y, { batch_size = bs, shuffle = opts.shuffle ~= false,
                                          seed = opts.seed and opts.seed + epoch, drop_last = opts.drop_last }) do
      local logits = model(bx)
      local loss = lossf(logits, by)
      opt:zero_grad()
      loss:backward()
      if log then log:before_step(step + 1) end
      opt:step()
      step = step + 1
      local b = bx:size(1)
      local lv = loss:item()
      local c = no_grad(correct, logits, by)
      sum_loss, right, seen = sum_loss + lv * b, right + c, seen + b
      hist.steps.loss[step] = lv
      hist.steps.accuracy[step] = c / b
      local dt = core.now() - t0
      local info = { epoch = epoch, step = step, batch = k, loss = lv, accuracy = c / b,
                     images_per_second = seen / math.max(dt, 1e-9) }
      if tty then
        status(string.format("epoch %d/%d [%s] %d/%d loss %.4f acc %.3f %5.0f img/s", epoch, epochs,
          bar(k / per_epoch, 24), k, per_epoch, sum_loss / seen, right / seen, info.images_per_second))
      elseif k % log_every == 0 then
        status(string.format("epoch %d/%d step %d/%d loss %.4f acc %.3f %.0f img/s", epoch, epochs, k, per_epoch,
          sum_loss / seen, right / seen, info.images_per_second))
      end
      if log then log:after_step(step, info, opt.lr) end
      if live and opts.live_mode == "board" then show_live(hist, opts, out, tty, display_id) end
      if opts.on_step then opts.on_step(info) end
      if opts.max_steps and step >= opts.max_steps then break end
    end
    local secs = core.now() - t0
    local e = hist.epochs
    e.loss[epoch], e.accuracy[epoch], e.seconds[epoch] = sum_loss / seen, right / seen, secs
    e.images_per_second[epoch] = seen / secs
    local line = string.format("epoch %d/%d loss %.4f acc %.4f (%.1f s, %.0f img/s)", epoch, epochs,
      e.loss[epoch], e.accuracy[epoch], secs, seen / secs)
    if opts.val_x then
      local r = T.evaluate(model, opts.val_x, opts.val_y, { loss = lossf })
      e.val_loss[epoch], e.val_accuracy[epoch] = r.loss, r.accuracy
      line = line .. string.format(" val_loss %.4f val_acc %.4f", r.loss, r.accuracy)
    end
    status(line, true)
    hist.epoch_end_steps[epoch] = step
    if log then log:epoch(epoch, hist, x, opt.lr) end
    if live then show_live(hist, opts, out, tty, display_id, true) end   -- asked for, so shown even when quiet
    if opts.scheduler then opts.scheduler:step() end
    if opts.on_epoch then opts.on_epoch({ epoch = epoch, history = hist }) end
    if opts.max_steps and step >= opts.max_steps then break end
  end
  end
  -- Ctrl-C (the standalone interpreter's "interrupted!") ends training, not the history: what
  -- was recorded so far is returned (hist.interrupted = true), its logs closed
  local ok, err = pcall(train)
  if not ok and not tostring(err):find("interrupted!", 1, true) then
    if log then pcall(log.close, log, hist) end
    error(err, 0)
  end
  if not ok then
    hist.interrupted = true
    if not quiet then
      out:write(string.format("%sfit: interrupted at step %d (epoch %d of %d); returning the history so far\n",
        tty and "\n" or "", step, #hist.epochs.loss + 1, epochs))
    end
  end
  if log then log:close(hist) end
  return hist
end

--- Writes the history fit returned as a Lua file beside a saved model (step_loss,
--- step_accuracy, epoch_loss, epoch_accuracy, epoch_val_loss, epoch_val_accuracy, ...; `extra`
--- adds number fields such as test_accuracy); true, and raises when it cannot write.
function T.save_history(hist, path, extra)
  local out = {}
  local function w(...) for _, x in ipairs { ... } do out[#out + 1] = x end end
  local function list(t)
    local s = {}
    for i, v in ipairs(t or {}) do s[i] = string.format("%.6g", v) end
    return "{" .. table.concat(s, ",") .. "}"
  end
  w("return {\n")
  w("  step_loss = ", list(hist.steps.loss), ",\n")
  w("  step_accuracy = ", list(hist.steps.accuracy), ",\n")
  for _, k in ipairs { "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second" } do
    w("  epoch_", k, " = ", list(hist.epochs[k]), ",\n")
  end
  w("  epoch_end_steps = ", list(hist.epoch_end_steps), ",\n")
  local keys = {}
  for k in pairs(extra or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do w(string.format("  %s = %.6f,\n", k, extra[k])) end
  w("}\n")
  return require("nnvis.tensor.util").write_file("save_history", path, table.concat(out))
end

--- Reads a history written by save_history as the history fit returns (h:plot(), print(h),
--- nv.report{history = h}), with the file's extra fields (test_accuracy, ...) kept on it; nil,
--- message when the file is missing or bad.
function T.load_history(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, err end
  local ok, h = pcall(chunk)
  if not ok or type(h) ~= "table" then return nil, path .. ": not a history" end
  local function list(k)
    local v = h[k]
    if v == nil then return {} end
    if type(v) ~= "table" then error({ msg = path .. ": " .. k .. " is not a list" }) end
    for _, x in ipairs(v) do if type(x) ~= "number" then error({ msg = path .. ": " .. k .. " holds a non-number" }) end end
    return v
  end
  local okb, res = pcall(function()
    local hist = setmetatable({ steps = { loss = list("step_loss"), accuracy = list("step_accuracy") }, epochs = {},
                                epoch_end_steps = list("epoch_end_steps") }, History)
    for _, k in ipairs { "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second" } do
      hist.epochs[k] = list("epoch_" .. k)
    end
    -- files written before epoch_end_steps was saved: epochs of equal length
    local ne, ns = #hist.epochs.loss, #hist.steps.loss
    if #hist.epoch_end_steps ~= ne then
      for e = 1, ne do hist.epoch_end_steps[e] = math.floor(ns * e / ne + 0.5) end
    end
    -- the file's own fields too (step_loss, epoch_loss, test_accuracy, ...), as it names them
    for k, v in pairs(h) do
      if type(k) == "string" and hist[k] == nil then hist[k] = v end
    end
    return hist
  end)
  if not okb then return nil, type(res) == "table" and res.msg or tostring(res) end
  return res
end

return T

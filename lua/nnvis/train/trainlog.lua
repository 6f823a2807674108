-- nnvis.train.trainlog — what nv.train.fit records beside the loss, with no callback code:
--   * TensorBoard logs as Keras' TensorBoard callback writes them (`tensorboard = dir`): two
--     runs, dir/train and dir/validation, with Keras' tags: epoch_loss, epoch_accuracy (both
--     runs), epoch_learning_rate, and batch_loss, batch_accuracy, batch_learning_rate per step
--     (update_freq = "batch", or every N steps); the model's diagram (text tag nnvis/graph_svg,
--     which nnvis's board draws); hparams (fit's `hparams` table, for the board's table); with
--     histogram_freq = k, every k epochs the weight and gradient histograms of every layer
--     (`0.weight`, `0.weight/gradient`), the activations of every leaf layer on a training batch
--     with activation_histograms = true (`activation/<layer>`), and a few training images with
--     their Grad-CAM laid over them;
--   * gradient flow (`grad_flow = true` or every N steps): per layer, the gradient norm and
--     the weight-update ratio |dw| / |w| at the recorded steps, in history.grad_flow, also
--     written to TensorBoard.
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

local Log = require("nnvis.tensor.class")("TrainLog")

-- the layers that own parameters, in order, and their parameters
local function layers_of(model)
  local order, params = {}, {}
  for name, p in model:named_parameters() do
    local layer = name:match("^(.*)%.[^.]+$") or name
    if not params[layer] then order[#order + 1] = layer; params[layer] = {} end
    params[layer][#params[layer] + 1] = { name = name, p = p }
  end
  return order, params
end

--- a logger for fit's options (nil when nothing is asked for)
function M.new(model, opts, per_epoch)
  if not opts.tensorboard and not opts.grad_flow then
    for _, k in ipairs { "histogram_freq", "hparams", "activation_histograms", "update_freq" } do
      if opts[k] ~= nil then error("fit: " .. k .. " needs tensorboard = dir", 3) end
    end
    return nil
  end
  local self = setmetatable({ model = model, opts = opts }, Log)
  if opts.tensorboard then
    if type(opts.tensorboard) ~= "string" then error("fit: tensorboard must be a log directory (a string)", 3) end
    local tb = require "nnvis.io.tensorboard"
    self.dir = opts.tensorboard
    self.tb = assert(tb.writer(self.dir .. "/train"))
    self.tb_val = assert(tb.writer(self.dir .. "/validation"))
    if opts.hparams then self.tb:hparams(opts.hparams) end
  elseif opts.hparams or opts.activation_histograms then
    error("fit: hparams and activation_histograms need tensorboard = dir", 3)
  end
  local uf = opts.update_freq or "epoch"
  if uf ~= "epoch" and uf ~= "batch" and not (math.type(uf) == "integer" and uf >= 1) then
    error("fit: update_freq must be \"epoch\", \"batch\" or a number of steps, got " .. tostring(uf), 3)
  end
  self.update_every = uf == "batch" and 1 or (uf ~= "epoch" and uf or nil)
  local hf = opts.histogram_freq or 0
  if math.type(hf) ~= "integer" or hf < 0 then error("fit: histogram_freq must be a whole number of epochs", 3) end
  self.histogram_freq = hf
  local gf = opts.grad_flow
  if gf == true then gf = math.max(1, per_epoch // 10) end
  if gf and not (math.type(gf) == "integer" and gf >= 1) then error("fit: grad_flow must be true or a number of steps", 3) end
  self.flow_every = gf or nil
  if self.tb and not self.flow_every and hf > 0 then self.flow_every = math.max(1, per_epoch // 10) end
  self.order, self.params = layers_of(model)
  self.flow = { steps = {}, layers = self.order, grad_norm = {}, update_ratio = {} }
  for _, l in ipairs(self.order) do self.flow.grad_norm[l], self.flow.update_ratio[l] = {}, {} end
  return self
end

local function norm(t) return t:square():sum():sqrt():item() end

--- after backward, before the optimizer's step: gradient norms (and a copy of the weights
--- for the update ratio) at the recorded steps
function Log:before_step(step)
  self.snap = nil
  if not self.flow_every or step % self.flow_every ~= 0 then return end
  local snap = {}
  for _, l in ipairs(self.order) do
    local g2, w = 0, {}
    for _, e in ipairs(self.params[l]) do
      if e.p.grad then g2 = g2 + e.p.grad:square():sum():item() end
      w[#w + 1] = e.p:detach():clone()
    end
    snap[l] = { grad = math.sqrt(g2), w = w }
  end
  self.snap = snap
end

--- after the step: the update ratios, and the step's scalars
function Log:after_step(step, info, lr)
  if self.snap then
    local f = self.flow
    f.steps[#f.steps + 1] = step
    for _, l in ipairs(self.order) do
      local s = self.snap[l]
      local d2, w2 = 0, 0
      for k, e in ipairs(self.params[l]) do
        local old = s.w[k]
        d2 = d2 + (e.p:detach() - old):square():sum():item()
        w2 = w2 + old:square():sum():item()
      end
      local ratio = w2 > 0 and math.sqrt(d2 / w2) or 0
      f.grad_norm[l][#f.steps] = s.grad
      f.update_ratio[l][#f.steps] = ratio
      if self.tb then
        self.tb:scalar("grad_norm/" .. l, s.grad, step)
        self.tb:scalar("update_ratio/" .. l, ratio, step)
      end
    end
    self.snap = nil
  end
  if self.tb and self.update_every and step % self.update_every == 0 then
    self.tb:scalar("batch_loss", info.loss, step)
    self.tb:scalar("batch_accuracy", info.accuracy, step)
    if lr then self.tb:scalar("batch_learning_rate", lr, step) end
  end
end

--- at the end of an epoch: epoch scalars, and every histogram_freq epochs the histograms and
--- a few images with their Grad-CAM
function Log:epoch(epoch, hist, x, lr)
  if not self.tb then return end
  local e = hist.epochs
  if epoch == 1 then self:graph(x) end
  self.tb:scalar("epoch_loss", e.loss[epoch], epoch)
  self.tb:scalar("epoch_accuracy", e.accuracy[epoch], epoch)
  if lr then self.tb:scalar("epoch_learning_rate", lr, epoch) end
  if e.val_loss[epoch] then
    self.tb_val:scalar("epoch_loss", e.val_loss[epoch], epoch)
    self.tb_val:scalar("epoch_accuracy", e.val_accuracy[epoch], epoch)
    self.tb_val:flush()
  end
  if self.histogram_freq > 0 and epoch % self.histogram_freq == 0 then
    if self.opts.activation_histograms then self:activations(x, epoch) end
    for _, l in ipairs(self.order) do
      for _, p in ipairs(self.params[l]) do
        self.tb:histogram(p.name, p.p:detach(), epoch)
        -- fit zeroes gradients at the start of a step: at an epoch's end they are its last step's
        local g = p.p.grad and p.p.grad:detach()
        if g then self.tb:histogram(p.name .. "/gradient", g, epoch) end
      end
    end
    self:images(x, epoch)
  end
  self.tb:flush()
end

-- the model's diagram on one training sample, once: its SVG as the text tag nnvis/graph_svg
-- (nnvis's board draws it; TensorBoard shows it as text).  A model the diagram cannot trace
-- is left out, with a warning
function Log:graph(x)
  local ok, svg = pcall(function()
    return require("nnvis.draw.diagram").diagram(self.model, x:narrow(1, 1, 1)):svg()
  end)
  if ok and svg then self.tb:text("nnvis/graph_svg", svg, 0)
  else util.warn("fit: the model's graph is not in the TensorBoard log: " .. tostring(svg)) end
end

-- the activations of every leaf layer on a training batch, as histograms activation/<layer>
function Log:activations(x, epoch)
  local xs = x:narrow(1, 1, math.min(64, x:size(1)))
  local cap = require("nnvis.inspect.capture").capture(self.model, xs)
  for _, name in ipairs(cap.order) do
    local e = rawget(cap, name)
    if e and e.output:numel() > 0 then self.tb:histogram("activation/" .. name, e.output, epoch) end
  end
end

-- up to opts.tb_images (4) training images with their Grad-CAM (when the model and the data allow)
function Log:images(x, epoch)
  local k = self.opts.tb_images or 4
  if k <= 0 or x:dim() ~= 4 then return end
  local xs = x:narrow(1, 1, math.min(k, x:size(1)))
  local image = require "nnvis.draw.image"
  local ok, maps = pcall(require("nnvis.explain.cam").gradcam, self.model, xs)
  for i = 1, xs:size(1) do
    local img = image.normalize(xs:select(1, i))
    if ok then img = image.overlay(img, maps:select(1, i), { alpha = 0.5 }) end
    self.tb:image(string.format("gradcam/%d", i), image.to_rgb(img), epoch)
  end
end

--- closes the TensorBoard file; the gradient flow goes into the history
function Log:close(hist)
  if self.flow_every then hist.grad_flow = self.flow end
  if self.tb then hist.tensorboard = self.dir; self.tb:close(); self.tb_val:close() end
end

--- the gradient flow recorded by fit (history.grad_flow) as a (layers x steps) tensor of
--- log10 gradient norms (or of update ratios with what = "update_ratio"), and the layer names
function M.flow_matrix(flow, what)
  local key = what or "grad_norm"
  if type(flow) ~= "table" or not flow[key] then error("flow_matrix: expected history.grad_flow", 2) end
  local rows = {}
  for i, l in ipairs(flow.layers) do
    local r = {}
    for j = 1, #flow.steps do r[j] = math.log(math.max(flow[key][l][j] or 0, 1e-30), 10) end
    rows[i] = r
  end
  return core.tensor(rows), flow.layers
end

return M

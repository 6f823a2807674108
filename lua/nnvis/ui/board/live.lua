-- nnvis.ui.board.live — the board as a live view from a script or the REPL, Visdom-style:
-- `nv.train.fit{..., live = "board"}` and `nv.show(x, {to = "board"})` send curves, images and
-- figures to a board page that updates as they arrive, with no log dir to manage.  The first
-- use starts one board for the process on a temporary log dir (127.0.0.1, port 6006 or a free
-- one when that is taken) and prints its URL; each fit is a run of its own (fit-1, fit-2, ...),
-- pictures go to the run "show".  The data reaches the board's server (its own thread) as event
-- files, written here and flushed at most every half second.
local core = require "nnvis.core"
local tensorboard = require "nnvis.io.tensorboard"

local M = {}

local session      -- {dir, handle, url, writers = run -> writer, steps = run -> last step written}

--- the port the live board tries first (6006, TensorBoard's; a free one when it is taken;
--- 0: any free one)
M.port = 6006

local function start(out)
  if session then return session end
  local dir = require("nnvis.tensor.util").temp_dir("nnvis-board-")
  local board = require "nnvis.ui.board"
  local ok, h, err = pcall(board.serve, { logdir = dir, port = M.port })
  if not (ok and h) and M.port ~= 0 then ok, h, err = pcall(board.serve, { logdir = dir, port = 0 }) end
  if not (ok and h) then err = ok and err or h; h = nil end
  if not h then error("board: cannot start the live board: " .. tostring(err), 3) end
  session = { dir = dir, handle = h, url = h.url, writers = {}, steps = {}, epochs = {}, flushed = 0, shown = 0 }
  out = out or io.stdout
  out:write("nnvis: live board at ", h.url, " (logs in ", dir, ")\n")
  if out.flush then out:flush() end
  return session
end

--- the live board of this process: {dir, url, handle}, started on first use
function M.session(out) return start(out) end

local function writer(s, run)
  local w = s.writers[run]
  if not w then
    w = assert(tensorboard.writer(s.dir .. "/" .. run))
    s.writers[run], s.steps[run], s.epochs[run] = w, 0, 0
  end
  return w
end

local function flush(s, force)
  local now = core.now()
  if not force and now - s.flushed < 0.5 then return end
  for _, w in pairs(s.writers) do w:flush() end
  s.flushed = now
end

--- history(hist, run [, opts]): writes what fit's history gained since the last call as the
--- run's scalars (batch_loss and batch_accuracy per step, epoch_* per epoch, the validation's
--- as epoch_val_*); opts.final flushes at once
function M.history(hist, run, opts)
  local s = start(opts and opts.out)
  local w = writer(s, run)
  local steps, e = hist.steps, hist.epochs
  for i = s.steps[run] + 1, #steps.loss do
    w:scalar("batch_loss", steps.loss[i], i)
    if steps.accuracy[i] then w:scalar("batch_accuracy", steps.accuracy[i], i) end
  end
  s.steps[run] = #steps.loss
  for k = s.epochs[run] + 1, #e.loss do
    w:scalar("epoch_loss", e.loss[k], k)
    w:scalar("epoch_accuracy", e.accuracy[k], k)
    if e.val_loss[k] then
      w:scalar("epoch_val_loss", e.val_loss[k], k)
      w:scalar("epoch_val_accuracy", e.val_accuracy[k], k)
    end
  end
  s.epochs[run] = #e.loss
  flush(s, opts and opts.final)
  return s
end

--- write(fig, opts, out): nv.show's "board" mode (registered by the facade): fit's history
--- when opts.history is given (M.history), else the figure (M.show)
function M.write(fig, opts, out)
  if opts.history then return M.history(opts.history, opts.run or "fit", { out = out, final = opts.final }) end
  return M.show(fig, opts, out)
end

--- show(fig, opts, out): a figure: the figure as an image of the run "show"
--- (opts.run), tagged opts.tag or its title or kind, at the next step; returns {url =}
function M.show(fig, opts, out)
  local s = start(out)
  local run = opts.run or "show"
  local w = writer(s, run)
  s.shown = s.shown + 1
  local tag = opts.tag or fig.title or fig.kind or "figure"
  w:image(tostring(tag), fig:image(), s.shown)
  flush(s, true)
  return { url = s.url, run = run, tag = tag, step = s.shown }
end

--- close(): stops the live board and closes its writers (the log dir stays)
function M.close()
  if not session then return end
  for _, w in pairs(session.writers) do w:close() end
  session.handle:close()
  session = nil
end

return M

-- nnvis.image — image helpers: PNG load/save (through nnvis.io).
local io_ = require "nnvis.io"

local M = {}

--- PNG -> (C,H,W) float tensor in [0,1]; opts.mode "rgb" | "gray", opts.size {h, w}.
--- Returns nil, message for files that cannot be read.
M.load = io_.load_image

--- (C,H,W) or (H,W) tensor in [0,1] -> PNG (values clamped). true, or nil, message.
M.save = io_.save_image

return M

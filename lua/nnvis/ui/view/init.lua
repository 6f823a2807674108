-- nnvis.ui.view — nv.view: a model in the browser, as Netron shows one.  The graph as nnvis's
-- diagram draws it, with zoom and pan, PyTorch scopes that fold and unfold, search by name or
-- type, SVG/PNG export, and a node's details (config, weight statistics and histograms; with an
-- input, its feature maps and the Grad-CAM of the top class there).
--   local h = nv.view.serve{model = nv.models.resnet18(), input = x}   -- http://127.0.0.1:PORT/
--   print(h.url); h:wait()
-- Everything is computed once here (prepare: graph.json and PNG files in a folder); the server
-- thread (nnvis.http, its own Lua state, nnvis.ui.view.server) only serves that folder.
local util = require "nnvis.tensor.util"
local prepare = require "nnvis.ui.view.prepare"
local U = require "nnvis.ui.http_util"

local M = { prepare = prepare.prepare }

-- h:close() also removes the folder serve() made (not one given as dir)
local Handle = U.handle_class("nnvis view")
local function remove_dir(h)
  if h.owned and h.dir then os.execute("rm -rf '" .. h.dir:gsub("'", "'\\''") .. "'") end
  h.dir = nil
end

--- nv.view.serve{model = m, input = x or shape, image = (3,H,W), classes = {names}, title = s,
--- port = 0 (a free one), host = "127.0.0.1", dir = folder} -> a handle h with h.url, h.port,
--- h.dir, h.graph, h:close() and h:wait().  input: a batch (1,C,H,W) (then the page shows
--- each layer's feature maps and Grad-CAM) or a shape (default {1,3,224,224}: the graph only).
--- Without dir the data goes to a temporary folder that close() removes.
function M.serve(opts)
  if type(opts) ~= "table" then util.raise("view.serve: give {model = m, ...}, got " .. type(opts)) end
  opts = util.check_opts("view.serve", opts, { "model", "input", "image", "classes", "title", "port", "host", "dir" })
  if type(opts.model) ~= "table" then util.raise("view.serve: model must be a module, got " .. type(opts.model)) end
  local host, port = U.endpoint("view.serve", opts, 0)
  local dir, graph = prepare.prepare(opts.model, { input = opts.input, image = opts.image, classes = opts.classes,
                                                   title = opts.title, dir = opts.dir })
  local h = setmetatable({ dir = dir, graph = graph, owned = opts.dir == nil, on_close = remove_dir }, Handle)
  local server, err = U.start(host, port, "nnvis.ui.view.server", string.format("{dir = %q}", dir), "this model")
  if not server then
    h:close()
    util.raise("view.serve: " .. err)
  end
  h.server, h.url, h.port = server, server.url, server.port
  return h
end

return M

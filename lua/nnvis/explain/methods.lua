-- nnvis.explain.methods — the registry of explanation methods.  Each method registers itself
-- where it is defined (nnvis.explain.cam) with its name, the name it goes by in its paper, its
-- kind and the options it knows; nv.cam.methods, nv.cam.all_methods, nv.cam.known_options and
-- the titles of the figures (nnvis.explain.cam_figure) are read from here, so a new method is
-- one registration, not an entry in four lists.
--
-- kinds: "layer" (a map from one layer's activations: the CAM family), "combined" (Guided
-- Grad-CAM), "input" (gradients with respect to the input), "perturbation" (occlusion, RISE),
-- "relevance" (LRP).
local M = {}

local list, by_name = {}, {}
local KINDS = { layer = true, combined = true, input = true, perturbation = true, relevance = true }

--- register{name =, title =, kind =, options = {...}}: adds a method (in the order of
--- registration, which is the order of nv.cam.methods and of a comparison's panels)
function M.register(spec)
  if type(spec) ~= "table" or type(spec.name) ~= "string" or not KINDS[spec.kind] or type(spec.options) ~= "table" then
    error("methods.register: expected {name = string, kind = layer|combined|input|perturbation|relevance, " ..
      "options = {...}, title = string}", 2)
  end
  local e = by_name[spec.name]
  if not e then            -- a second registration (the module loaded again) updates the entry
    e = {}
    list[#list + 1] = e
    by_name[spec.name] = e
  end
  e.name, e.title, e.kind, e.options = spec.name, spec.title or spec.name, spec.kind, spec.options
  return e
end

--- the entry of a method ({name, title, kind, options}), or nil
function M.get(name) return by_name[name] end

--- the name a method goes by in its paper ("Grad-CAM++"), or nil
function M.title(name)
  local e = by_name[name]
  return e and e.title
end

--- the methods' names in registration order: of the kinds given (a set), or all
function M.names(kinds)
  local out = {}
  for _, e in ipairs(list) do
    if not kinds or kinds[e.kind] then out[#out + 1] = e.name end
  end
  return out
end

return M

--- nnvis.doc — one documentation source for every public function, C or Lua: the REPL's and
-- the notebook's `?name`, the notebook's inspector and docs/API.md all read it.
--
--   local doc = require "nnvis.app.doc"
--   doc.entry("nv.cam.gradcam")   --> {name =, signature =, text =, where = "lua/nnvis/explain/cam.lua:361"}
--   doc.public()                  --> every public name and its value, sorted by namespace
--
-- A public name is how a person writes it: nv.randn, nv.cam.overlay, Tensor:matmul,
-- Module:parameters, nv.nn.Conv2d.  A Lua function's entry is the `---` comment block above
-- its definition (its first line the signature); a class's is the block above
-- `local X = class("X", ...)`; the C core's functions are described in nnvis.core_docs, in
-- the same form.  spec/docs_spec.lua fails when a public name has no entry.
local I = require "nnvis.app.introspect"

local M = {}

--- namespaces(): the namespaces of nv that are part of the API, as the facade declares them
--- (nv's lazily loaded modules: nn, cam, plot, ...), sorted, in the order docs/API.md lists them
function M.namespaces()
  local out = {}
  for k in pairs(getmetatable(require "nnvis").__namespaces()) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function read_lines(path)
  local f = io.open(path)
  if not f then return nil end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

local file_cache = {}
--- lines_of(path): a source file's lines (cached), or nil when it cannot be read
local function lines_of(path)
  local l = file_cache[path]
  if l == nil then l = read_lines(path) or false; file_cache[path] = l end
  return l or nil
end
M.lines_of = lines_of

-- the `---` block ending right above line n, as lines without the dashes; any_comment: `--`
-- lines too (the user's own functions, outside the registry's convention)
local function block_above(lines, n, any_comment)
  local doc = {}
  local i = n - 1
  local pat = any_comment and "^%s*%-%-" or "^%s*%-%-%-"
  while i >= 1 and lines[i]:match(pat) do
    -- a rule of dashes around a section's title is not documentation
    if not lines[i]:match("^%s*%-+%s*$") then table.insert(doc, 1, (lines[i]:gsub("^%s*%-%-+%s?", ""))) end
    i = i - 1
  end
  return doc
end

local function strip(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- the last segment of a public name: nv.cam.gradcam -> gradcam, Tensor:sort -> sort
local function short(name) return name:match("([%w_]+)$") or name end

-- the line of the definition of a Lua function f known as `name`: where it was defined, or
-- (a function made by a wrapper, as nv.cam's methods are) the line that names it
local function definition(f, name)
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then return nil end
  local path = info.source:sub(2)
  local lines = lines_of(path)
  if not lines then return nil end
  local n = info.linedefined
  local last = short(name)
  local at = lines[n] or ""
  if not at:find(last, 1, true) and #block_above(lines, n) == 0 then
    for i, l in ipairs(lines) do
      if l:match("^%s*function%s+[%w_.:]*[.:]" .. last .. "%s*%(") or l:match("^%s*function%s+" .. last .. "%s*%(")
        or l:match("[.%s]" .. last .. "%s*=%s*function") then n = i; break end
    end
  end
  return path, lines, n
end

local function relative(path)
  return (path:gsub("^.*/(lua/nnvis/)", "%1"):gsub("^.*/(bin/)", "%1"))
end

-- an entry from a doc block: the first line is the signature when it looks like a call
local function from_block(name, block, where, fallback_sig)
  if #block == 0 then return nil end
  local text = table.concat(block, "\n")
  local sig = fallback_sig
  local first = strip(block[1])
  local call = first:match("^([%w_.:]+%b())")
  if call then sig = call end
  return { name = name, signature = sig or name, text = text, where = where }
end

local core_docs
local function core_entry(name)
  core_docs = core_docs or require "nnvis.app.core_docs"
  local e = core_docs[name]
  if not e then return nil end
  return { name = name, signature = e.signature or name, text = e.text, example = e.example,
           where = "nnvis.core (csrc/), described in lua/nnvis/app/core_docs.lua" }
end

-- a class's entry: the block above its definition (`local X = class("X", ...)`, or a
-- helper's `simple("X", ...)`), else above `function X:init(`; its signature the constructor's
local function class_entry(name, cls)
  local cname = rawget(cls, "__name") or short(name)
  local ns = name:match("^nv%.([%w_]+)%.")
  local init = cls.init
  -- the namespace's file, or (a class defined elsewhere, nn3d's layers) its init's own file
  local path = ns and package.searchpath("nnvis." .. ns, package.path)
  for _, key in ipairs { "init", "forward" } do
    local fn = rawget(cls, key)
    if type(fn) == "function" then
      local info = debug.getinfo(fn, "S")
      if info.source:sub(1, 1) == "@" and info.source:sub(2) ~= path then
        local own = lines_of(info.source:sub(2))
        local q = '"' .. cname .. '"'
        for _, l in ipairs(own or {}) do
          if l:find("(" .. q, 1, true) then path = info.source:sub(2); break end
        end
      end
    end
  end
  local lines = path and lines_of(path)
  if not lines then return nil end
  local sig = name
  if type(init) == "function" and debug.getinfo(init, "S").what == "Lua" then
    local ps = {}
    local info = debug.getinfo(init, "u")
    for k = 2, info.nparams do ps[#ps + 1] = debug.getlocal(init, k) end
    if info.isvararg then ps[#ps + 1] = "..." end
    sig = name .. "(" .. table.concat(ps, ", ") .. ")"
  else
    sig = name .. "()"
  end
  local q = '"' .. cname .. '"'
  for _, pat in ipairs { "class%(%s*" .. q:gsub("%p", "%%%0"), "simple%(%s*" .. q:gsub("%p", "%%%0"),
                         "^function%s+" .. cname .. ":init%(", "[%w_]%(%s*" .. q:gsub("%p", "%%%0") } do
    for i, l in ipairs(lines) do
      if l:match(pat) then
        local block = block_above(lines, i, true)
        if #block > 0 then
          local e = from_block(name, block, relative(path) .. ":" .. i, sig)
          e.signature, e.class = sig, true
          return e
        end
      end
    end
  end
end

local entry
--- The entry of a public name (and its value, when known): {name, signature, text, where
--- [, example]}, or nil when it has none.  C functions are looked up in nnvis.core_docs.
--- A method's signature is written Tensor:sort(...), Module:get(...), as its public name.
--- any_comment: `--` comment blocks count too (for functions outside nnvis).
function M.entry(name, v, any_comment)
  local e = entry(name, v, any_comment)
  if e then
    local head = name:match("^(%a+):")
    if head then e.signature = e.signature:gsub("^[%a_]+:", head .. ":") end
  end
  return e
end

entry = function(name, v, any_comment)
  if v == nil then v = M.resolve(name) end
  local e = core_entry(name)
  if e then return e end
  if type(v) == "function" then
    local info = debug.getinfo(v, "S")
    if info.what == "C" then return nil end
    local path, lines, n = definition(v, name)
    if not lines then return nil end
    local block = block_above(lines, n, any_comment)
    if #block == 0 and (lines[n] or ""):match("^%s*%-%-%-") then block = { (lines[n]:gsub("^%s*%-%-%-%s?", "")) } end
    -- a function a wrapper made for many (nv.cam's methods): the method's own block (its
    -- formula) first, then the wrapper's (options and returns)
    local last = short(name)
    if not (lines[n] or ""):find(last, 1, true) then
      for i, l in ipairs(lines) do
        if i ~= n and l:match("^%s*function%s+[%w_.:]*[.:]" .. last .. "%s*%(") then
          local own = block_above(lines, i)
          if #own > 0 then
            for k, b in ipairs(block) do own[#own + 1] = k == 1 and ("" .. b) or b end
            block = own
          end
          break
        end
      end
    end
    -- the signature under the public name, with the definition's parameters
    local args = (lines[n] or ""):match("function%s*[%w_.:]*%s*(%b())")
    return from_block(name, block, relative(path) .. ":" .. n, name .. (args or "(...)"))
  end
  if type(v) == "table" and rawget(v, "__name") and rawget(v, "__index") == v then return class_entry(name, v) end
  return nil
end

--- The value a public name names (nv.cam.gradcam, Tensor:sort, Module:get), or nil.
function M.resolve(name)
  local nv = require "nnvis"
  local head, method = name:match("^(%a+):([%w_]+)$")
  if head == "Tensor" then return nv.Tensor[method] end
  if head == "Module" then return nv.nn.Module[method] end
  local rest = name:match("^nv%.(.+)$")
  if not rest then return nil end
  return I.resolve(rest, nv)
end

local function is_class(v) return type(v) == "table" and rawget(v, "__name") ~= nil and rawget(v, "__index") == v end

--- Every public name, sorted within its namespace: {name, value, namespace}.  nv's functions,
--- each namespace's functions and classes, Tensor's and Module's methods.
function M.public()
  local nv = require "nnvis"
  local out = {}
  local function add(ns, name, v) out[#out + 1] = { name, v, ns } end
  local function visible(k) return type(k) == "string" and k:sub(1, 1) ~= "_" end
  local own = {}
  for k, v in pairs(nv) do
    if visible(k) and type(v) == "function" then own[#own + 1] = k end
  end
  table.sort(own)
  for _, k in ipairs(own) do add("nv", "nv." .. k, nv[k]) end
  for _, ns in ipairs(M.namespaces()) do
    local t = nv[ns]
    if type(t) == "table" then
      local keys = {}
      for k, v in pairs(t) do
        if visible(k) and (type(v) == "function" or is_class(v)) and k ~= "init" then keys[#keys + 1] = k end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do add("nv." .. ns, "nv." .. ns .. "." .. k, t[k]) end
    end
  end
  local methods = {}
  for k, v in pairs(nv.Tensor) do if visible(k) and type(v) == "function" then methods[#methods + 1] = k end end
  table.sort(methods)
  for _, k in ipairs(methods) do add("Tensor", "Tensor:" .. k, nv.Tensor[k]) end
  local mm = {}
  for k, v in pairs(nv.nn.Module) do
    if visible(k) and type(v) == "function" and k ~= "init" then mm[#mm + 1] = k end
  end
  table.sort(mm)
  for _, k in ipairs(mm) do add("Module", "Module:" .. k, nv.nn.Module[k]) end
  return out
end

--- The public name of a value (a function or a class), for `?` on any expression: the first
--- public name that reaches it, or nil.
function M.name_of(v)
  if v == nil then return nil end
  M._index = M._index or {}
  if next(M._index) == nil then
    for _, e in ipairs(M.public()) do
      if M._index[e[2]] == nil then M._index[e[2]] = e[1] end
    end
  end
  return M._index[v]
end

--- The help text of an entry: signature, text, example and where it is defined.
function M.text(e)
  local out = { e.signature }
  if e.text and e.text ~= "" then
    local body = e.text
    if strip((body:match("^[^\n]*"))) == strip(e.signature) then body = body:gsub("^[^\n]*\n?", "") end
    if body ~= "" then out[#out + 1] = "  " .. body:gsub("\n", "\n  ") end
  end
  if e.example then out[#out + 1] = "  example:\n    " .. e.example:gsub("\n", "\n    ") end
  out[#out + 1] = "  (" .. e.where .. ")"
  return table.concat(out, "\n")
end

--- the source text of a Lua function (??f), with its file and line; nil for a C function
function M.source(v)
  if type(v) ~= "function" then return nil end
  local info = debug.getinfo(v, "S")
  if info.what == "C" or info.source:sub(1, 1) ~= "@" then return nil end
  local lines = lines_of(info.source:sub(2))
  if not lines then return nil end
  local out = { string.format("-- %s:%d", info.short_src, info.linedefined) }
  for i = info.linedefined, math.min(info.lastlinedefined, #lines) do out[#out + 1] = lines[i] end
  return table.concat(out, "\n")
end

--- help for a dotted name (nv.cam.gradcam): a function's signature and its doc comment (the
--- `---` lines docs/API.md is made of), a table's fields, a value's type; nil when it is nil
function M.help(name, root)
  local v = I.resolve(name, root)
  if v == nil then return nil end
  -- the documentation registry first: C or Lua, under its public name (x:matmul -> Tensor:matmul)
  local doc = M
  local public
  local method = name:match(":([%w_]+)$")
  local obj = method and I.resolve(name:match("^(.*):[%w_]+$"), root)
  if obj ~= nil and getmetatable(obj) == require("nnvis.core").tensor_mt then public = "Tensor:" .. method
  elseif obj ~= nil and require("nnvis.tensor.class").isinstance(obj, require("nnvis.nn").Module)
    and require("nnvis.nn").Module[method] == v then public = "Module:" .. method end
  public = public or doc.name_of(v)
  local e = public and doc.entry(public, v)
  if e then return doc.text(e) end
  if type(v) == "function" then
    -- a function outside the registry (the user's own): its comment block, found the same way
    local info = debug.getinfo(v, "S")
    if info.what == "C" then return name .. ": a built-in function (C)" end
    e = doc.entry(name, v, true)
    if e then return doc.text(e) end
    return name .. ": a function defined in " .. info.short_src .. ":" .. info.linedefined
  end
  if type(v) == "table" then
    local keys = {}
    for k in pairs(I.names_of(v)) do if k:sub(1, 2) ~= "__" then keys[#keys + 1] = k end end
    table.sort(keys)
    local mt = getmetatable(v)
    local first = (mt and mt.__tostring) and ((tostring(v):match("^[^\n]*")) .. "\n") or ""
    return first .. name .. ": a table with " .. table.concat(keys, ", ")
  end
  return name .. ": " .. type(v) .. " " .. tostring(v)
end

return M

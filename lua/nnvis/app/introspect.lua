-- nnvis.app.introspect — what the REPL (bin/nnvis) and the Jupyter kernel (nnvis.kernel) share
-- about values and names: a readable text of a value (abbreviated long text, plain tables as
-- Lua source), the value a dotted name reaches, completion of names, and help built from the
-- doc comments above a definition.  `root` is the table names are looked up in (the REPL's
-- environment, or _G).
local M = {}

--- true for a string that is a Lua identifier
function M.is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end
local is_ident = M.is_ident

--- s cut to its first `head` and last 5 lines when it has more than max_lines (60)
function M.abbreviate(s, max_lines, head)
  max_lines, head = max_lines or 60, head or 45
  local lines = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  if #lines <= max_lines then return s end
  local out = {}
  for i = 1, head do out[#out + 1] = lines[i] end
  out[#out + 1] = string.format("  ... (%d more lines; print(x) shows all)", #lines - head - 5)
  for i = #lines - 4, #lines do out[#out + 1] = lines[i] end
  return table.concat(out, "\n")
end

local MAX_ITEMS, MAX_DEPTH = 20, 2
--- a plain table as Lua source, at most 2 levels deep and 20 entries per level (depth 1 and
--- seen {} to start); values with __tostring as they print
function M.pretty(v, depth, seen)
  seen = seen or {}
  depth = depth or 1
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if (mt and mt.__tostring) or seen[v] then return tostring(v) end
  if depth > MAX_DEPTH then return "{...}" end
  seen[v] = true
  local items, n = {}, #v
  for i = 1, math.min(n, MAX_ITEMS) do items[#items + 1] = M.pretty(v[i], depth + 1, seen) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i = 1, math.min(#keys, math.max(MAX_ITEMS - #items, 0)) do
    local k = keys[i]
    local ks = is_ident(k) and k or ("[" .. M.pretty(k, depth + 1, seen) .. "]")
    local val = M.pretty(v[k], depth + 1, seen)
    -- a value of several lines (a tensor) starts on the line after its key, indented under it
    if val:find("\n", 1, true) then items[#items + 1] = ks .. " =\n  " .. val:gsub("\n", "\n  ")
    else items[#items + 1] = ks .. " = " .. val end
  end
  local more = n + #keys - #items
  if more > 0 then items[#items + 1] = string.format("... (%d more)", more) end
  seen[v] = nil
  -- an item of several lines (a tensor's values) puts every item on its own line, indented
  local multi = false
  for _, it in ipairs(items) do if it:find("\n", 1, true) then multi = true end end
  local one = "{ " .. table.concat(items, ", ") .. " }"
  if not multi and (#one <= 100 or depth > 1) then return #items == 0 and "{}" or one end
  for i, it in ipairs(items) do items[i] = it:gsub("\n", "\n  ") end
  return "{\n  " .. table.concat(items, ",\n  ") .. "\n}"
end

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
                   "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

--- the value a dotted path names in root (nv.cam.gradcam, m:forward), or nil
function M.resolve(path, root)
  local v = root or _G
  for part in path:gmatch("[^.:]+") do
    if type(v) ~= "table" and type(v) ~= "userdata" then return nil end
    local ok, r = pcall(function() return v[part] end)
    if not ok then return nil end
    v = r
  end
  return v
end

local Packed = {}
-- the names reachable from v: its own keys, its metatables' __index tables, and the names a
-- metatable lists in __complete (modules nnvis loads on first use)
local function names_of(v, out, seen)
  out, seen = out or {}, seen or {}
  if seen[v] then return out end
  seen[v] = true
  if type(v) == "table" then for k in next, v do if is_ident(k) then out[k] = true end end end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    if type(mt.__complete) == "function" then for _, k in ipairs(mt.__complete(v)) do out[k] = true end end
    if type(mt.__index) == "table" then names_of(mt.__index, out, seen) end
  end
  return out
end

M.names_of = names_of

--- the completions of a word (`nv.ca` -> `nv.cam`, `m:pa` -> `m:parameters`): globals and
--- keywords, or the fields and methods of what the word before the last . or : names
function M.complete(word, root)
  local head, sep, part = word:match("^(.-)([.:])([%w_]*)$")
  local pool
  if head and head ~= "" then
    local v = M.resolve(head, root)
    if v == nil then return {} end
    pool = names_of(v)
  else
    head, sep, part = "", "", word
    pool = names_of(root or _G)
    for k in pairs(_G) do if is_ident(k) then pool[k] = true end end
    for _, k in ipairs(KEYWORDS) do pool[k] = true end
  end
  local out = {}
  -- names starting with "_" are private (a module's _hooks, _order) unless asked for
  local private = part:sub(1, 1) == "_"
  for k in pairs(pool) do
    if k:sub(1, #part) == part and k:sub(1, 2) ~= "__" and (private or k:sub(1, 1) ~= "_" or head == "") then
      out[#out + 1] = head .. sep .. k
    end
  end
  table.sort(out)
  return out
end

--- unlocal(code): a chunk typed at the REPL or in a notebook cell with its top-level `local x =
--- ...` and `local function f` made global (`local x` alone becomes `x = nil`), so the names
--- persist to the next line or cell as one expects; lines inside blocks (indented) and the
--- to-be-closed `local x <close>` keep their `local`.  The first line may be indented.
function M.unlocal(code)
  local out, first = {}, true
  for line in (code .. "\n"):gmatch("(.-)\n") do
    local indent, body = "", line
    if first then indent, body = line:match("^(%s*)(.*)$") end
    first = false
    local l = body:gsub("^local%s+function%s", "function ", 1)
    if l == body then
      local names, rest = body:match("^local%s+([%a_][%w_]*%s*[,%w_%s]*)=(.*)$")
      if names and not names:find("<", 1, true) then l = names .. "=" .. rest
      else
        names = body:match("^local%s+([%a_][%w_]*[%s,%w_]*)%s*$")
        if names then l = names .. " = nil" end
      end
    end
    out[#out + 1] = indent .. l
  end
  return table.concat(out, "\n")
end

return M

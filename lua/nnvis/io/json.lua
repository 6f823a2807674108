-- nnvis.io.json — Lua values as JSON text, for the Jupyter kernel's messages, interactive
-- figures' data and the board's API.  Pure Lua (it does not load nnvis.core), so the board's
-- server thread, which has a Lua state of its own, uses it too.  Reading JSON is the core's
-- (nnvis.core.json_decode, used by the safetensors and ONNX readers).
local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

--- string(s [, html]): s as a JSON string; html = true also escapes <, > and & (as \u003c ...),
--- so the text can sit inside a <script> element of a page
function M.string(s, html)
  local pat = html and '[%c"\\<>&]' or '[%c"\\]'
  return '"' .. s:gsub(pat, function(c)
    return (not html and escapes[c]) or string.format("\\u%04x", c:byte())
  end) .. '"'
end
local json_string = M.string

--- array_mt: the metatable that marks an empty table to encode as [] rather than {}
M.array_mt = {}
--- null: a value that encodes as null where a key must be present (a nil would drop it)
M.null = setmetatable({}, { __name = "json null" })

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil and getmetatable(t) == M.array_mt end
  for k in pairs(t) do if math.type(k) ~= "integer" or k < 1 or k > n then return false end end
  return true
end

--- encode(v [, html]): v as JSON text: tables with keys 1..n as arrays (an empty one only
--- when its metatable is json.array_mt), other tables as objects with their keys sorted, nil,
--- NaN and infinities as null, integers as integers; html as for json.string
function M.encode(v, html)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  end
  if t == "string" then return json_string(v, html) end
  if v == M.null then return "null" end
  if t == "table" then
    local out = {}
    if is_array(v) then
      for i = 1, #v do out[i] = M.encode(v[i], html) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      out[#out + 1] = json_string(k, html) .. ":" .. M.encode(val, html)
    end
    return "{" .. table.concat(out, ",") .. "}"
  end
  return json_string(tostring(v), html)
end

return M

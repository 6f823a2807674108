-- nnvis.tensor.class — the one small class helper used by every Lua module of nnvis (STYLE rule 9).
--
--   local class = require "nnvis.tensor.class"
--   local Animal = class("Animal")
--   function Animal:init(name) self.name = name end
--   function Animal:speak() return self.name .. " makes a sound" end
--   local Dog = class("Dog", Animal)
--   function Dog:init(name) Dog.super.init(self, name); self.tricks = {} end
--   function Dog:speak() return Dog.super.speak(self) .. ": woof" end
--   local d = Dog("Rex")                 -- calling the class makes an instance and runs init
--   class.isinstance(d, Animal)          --> true
--
-- A class is the metatable of its instances: methods are looked up in the class, then in its
-- parents.  Metamethods (__tostring, __call, __close, __index, __newindex, ...) are inherited
-- too: Lua reads them with rawget, so a subclass gets a copy of its parent's at creation and
-- later definitions on a parent are passed down to the subclasses that have not overridden them.
-- Use `Cls.super.method(self, ...)` (not `self.super`, which would name the instance's own
-- class's parent) to call the parent's version.
-- A class may define `__alloc(cls)` returning the bare instance (default `setmetatable({}, cls)`):
-- nnvis.nn uses it so that a module written with only `init` and `forward` is fully set up.
local class = {}

-- metamethods Lua reads with rawget from the metatable, hence copied down the hierarchy
local function is_metamethod(k)
  return type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" and k ~= "__name"
end

local classes = setmetatable({}, { __mode = "k" })   -- class -> true, to recognise classes

local function new(cls, ...)
  local obj = cls.__alloc and cls.__alloc(cls) or setmetatable({}, cls)
  if cls.init then obj:init(...) end
  return obj
end

local function define(cls, k, v)
  rawset(cls, k, v)
  if is_metamethod(k) then
    for sub in pairs(rawget(cls, "__subclasses")) do
      if rawget(sub, "__own")[k] == nil then define(sub, k, v) end
    end
  end
end

--- class(name [, parent]) -> a new class; call it to make instances.
function class.new(name, parent)
  if type(name) ~= "string" then error("class: name must be a string, got " .. type(name), 2) end
  if parent ~= nil and not classes[parent] then
    error("class: parent of " .. name .. " must be a class made by nnvis.class", 2)
  end
  local cls = { __name = name, super = parent, __subclasses = setmetatable({}, { __mode = "k" }), __own = {} }
  cls.__index = cls
  if parent then
    for k, v in pairs(parent) do
      if is_metamethod(k) and k ~= "__subclasses" and k ~= "__own" then rawset(cls, k, v) end
    end
    rawget(parent, "__subclasses")[cls] = true
  end
  classes[cls] = true
  return setmetatable(cls, {
    __index = parent,
    __call = new,
    __newindex = function(c, k, v)
      if is_metamethod(k) then rawget(c, "__own")[k] = true end
      define(c, k, v)
    end,
    __tostring = function(c) return "class " .. rawget(c, "__name") end,
  })
end

--- true when obj is an instance of cls or of one of its subclasses
function class.isinstance(obj, cls)
  if type(obj) ~= "table" then return false end
  local c = getmetatable(obj)
  while c ~= nil do
    if c == cls then return true end
    if not classes[c] then return false end
    c = rawget(c, "super")
  end
  return false
end

--- true when c is a class made by this helper
function class.isclass(c) return classes[c] == true end

--- the class name of an instance (or of a class)
function class.name(obj)
  if classes[obj] then return rawget(obj, "__name") end
  local c = type(obj) == "table" and getmetatable(obj)
  return c and classes[c] and rawget(c, "__name") or nil
end

return setmetatable(class, { __call = function(_, name, parent) return class.new(name, parent) end })

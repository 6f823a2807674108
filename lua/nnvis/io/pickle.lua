--- nnvis.pickle — a restricted unpickler: reads Python pickles (protocols 2 to 5, the opcodes
-- that torch.save and plain containers use) without executing anything.
--
-- A pickle is a program for a stack machine; the dangerous instructions are GLOBAL and
-- STACK_GLOBAL (they name any Python callable) followed by REDUCE (they call it).  Here a
-- global is only ever looked up in the caller's whitelist `opts.globals` ("module.name" ->
-- entry); any other name stops the load.  Every read is checked against the end of the data
-- and every stack and memo access against what is there, so hostile bytes give an error.
--
-- Python values become Lua values: dict -> table, list and tuple -> array (1-based), str and
-- bytes -> string, int -> integer (a wider one -> pickle.BigInt holding its bytes), float ->
-- number, bool -> boolean, None -> nil (a None entry is absent from its table).
--
--     local v, pos = pickle.load(bytes, 1, {globals = {["collections.OrderedDict"] =
--       {call = function() return {} end}}})
local M = {}

-- A Python int wider than 64 bits: `bytes` is its little-endian two's complement.
M.BigInt = {}
M.BigInt.__index = M.BigInt
M.BigInt.__tostring = function(b) return "BigInt(0x" .. b.bytes:reverse():gsub(".", function(c)
  return ("%02x"):format(c:byte()) end) .. ")" end

-- what a hostile pickle may make the reader hold: real checkpoints stay far below both
local MAX_STACK, MAX_MEMO = 1 << 20, 1 << 22

local MARK, NONE = setmetatable({}, { __name = "MARK" }), setmetatable({}, { __name = "None" })
M.NONE = NONE

-- errors about the data are tables, so that a bug in this file still surfaces as a bug
local function fail(fmt, ...) error({ msg = fmt:format(...) }, 0) end

--- Unpickles one object from data starting at byte pos (default 1).  opts.globals maps
--- "module.name" to an entry {call = function(args, n) -> value} (REDUCE and NEWOBJ; args is
--- an array of n values, nil for None) or {value = v} (a marker passed as an argument);
--- opts.persistent_load(pid) resolves BINPERSID.  Returns value, position after STOP; or
--- nil, message.
function M.load(data, pos, opts)
  opts = opts or {}
  local globals = opts.globals or {}
  pos = pos or 1
  local len = #data
  local stack, sp = {}, 0
  local marks, nmarks = {}, 0
  local memo = {}
  local lens = setmetatable({}, { __mode = "k" })   -- array -> count (holes are None)

  local function need(n)
    -- a negative length (a signed field, or an unsigned 8-byte one past 2^63) would move the
    -- reader back onto the same opcode forever
    if n < 0 then fail("negative length %d at byte %d", n, pos - 1) end
    if n > len - pos + 1 then
      fail("truncated pickle: %d bytes needed at byte %d, %d left", n, pos - 1, len - pos + 1)
    end
  end
  local function bytes(n)
    need(n)
    local s = data:sub(pos, pos + n - 1)
    pos = pos + n
    return s
  end
  local function u(fmt, n)
    need(n)
    local v = string.unpack(fmt, data, pos)
    pos = pos + n
    return v
  end
  local function push(v)
    if sp >= MAX_STACK then fail("pickle stack deeper than %d values at byte %d", MAX_STACK, pos - 2) end
    sp = sp + 1
    stack[sp] = v
  end
  local function pop()
    if sp <= (nmarks > 0 and marks[nmarks] or 0) then fail("stack underflow at byte %d", pos - 2) end
    local v = stack[sp]
    stack[sp] = nil
    sp = sp - 1
    return v
  end
  local function top()
    if sp <= (nmarks > 0 and marks[nmarks] or 0) then fail("empty stack at byte %d", pos - 2) end
    return stack[sp]
  end
  -- the items above the last MARK, removed (with the mark) from the stack
  local function pop_mark()
    if nmarks == 0 then fail("no MARK on the stack at byte %d", pos - 2) end
    local m = marks[nmarks]
    marks[nmarks] = nil
    nmarks = nmarks - 1
    local items, n = {}, sp - m
    for i = 1, n do items[i] = stack[m + i]; stack[m + i] = nil end
    sp = m
    return items, n
  end
  local function array(items, n)
    local t = {}
    for i = 1, n do if items[i] ~= NONE then t[i] = items[i] end end
    lens[t] = n
    return t
  end
  local function is_container(t) return type(t) == "table" and getmetatable(t) == nil end
  local function setitem(d, k, v)
    if not is_container(d) then fail("SETITEM on a %s at byte %d", type(d), pos - 2) end
    if k == NONE or k ~= k then fail("dict key None or NaN at byte %d", pos - 2) end
    if v ~= NONE then d[k] = v end
  end
  local function append(l, v)
    if not is_container(l) then fail("APPEND on a %s at byte %d", type(l), pos - 2) end
    local n = (lens[l] or #l) + 1
    if v ~= NONE then l[n] = v end
    lens[l] = n
  end
  local function global(mod, name)
    local full = mod .. "." .. name
    local g = globals[full]
    if not g then fail("refuses global %s", full) end
    return { global = full, entry = g }
  end
  local function call(f, args, what)
    if type(f) ~= "table" or not f.entry then fail("%s of a %s at byte %d", what, type(f), pos - 2) end
    if not f.entry.call then fail("%s of %s, which is not callable here", what, f.global) end
    if not is_container(args) then fail("%s of %s with arguments that are not a tuple", what, f.global) end
    local n = lens[args] or #args
    local v = f.entry.call(args, n)
    if v == nil then return NONE end
    return v
  end
  local function line()
    local e = data:find("\n", pos, true)
    if not e or e - pos > 512 then fail("GLOBAL without a name line at byte %d", pos - 1) end
    local s = data:sub(pos, e - 1)
    pos = e + 1
    return s
  end
  local function memo_get(i)
    local v = memo[i]
    if v == nil then fail("memo entry %d is not set (byte %d)", i, pos - 2) end
    return v
  end

  local ops = {}
  ops[0x80] = function() local p = u("B", 1); if p > 5 then fail("pickle protocol %d is unknown", p) end end
  ops[0x95] = function() u("<I8", 8) end                                   -- FRAME: length hint
  ops[0x28] = function()                                                   -- MARK
    if nmarks >= MAX_STACK then fail("more than %d MARKs at byte %d", MAX_STACK, pos - 2) end
    nmarks = nmarks + 1
    marks[nmarks] = sp
  end
  ops[0x7d] = function() push({}) end                                      -- EMPTY_DICT
  ops[0x5d] = function() push(array({}, 0)) end                            -- EMPTY_LIST
  ops[0x29] = function() push(array({}, 0)) end                            -- EMPTY_TUPLE
  ops[0x64] = function()                                                   -- DICT
    local items, n = pop_mark()
    if n % 2 == 1 then fail("DICT with an odd number of items") end
    local d = {}
    for i = 1, n, 2 do setitem(d, items[i], items[i + 1]) end
    push(d)
  end
  ops[0x6c] = function() push(array(pop_mark())) end                       -- LIST
  ops[0x74] = ops[0x6c]                                                    -- TUPLE
  ops[0x85] = function() local a = pop(); push(array({ a }, 1)) end        -- TUPLE1
  ops[0x86] = function() local b, a = pop(), pop(); push(array({ a, b }, 2)) end
  ops[0x87] = function() local c, b, a = pop(), pop(), pop(); push(array({ a, b, c }, 3)) end
  ops[0x4a] = function() push(u("<i4", 4)) end                             -- BININT
  ops[0x4b] = function() push(u("B", 1)) end                               -- BININT1
  ops[0x4d] = function() push(u("<I2", 2)) end                             -- BININT2
  local function long(n)
    if n < 0 then fail("negative LONG length") end
    if n == 0 then return 0 end
    if n <= 8 then return u("<i" .. n, n) end
    return setmetatable({ bytes = bytes(n) }, M.BigInt)
  end
  ops[0x8a] = function() push(long(u("B", 1))) end                         -- LONG1
  ops[0x8b] = function() push(long(u("<i4", 4))) end                       -- LONG4
  ops[0x47] = function() push(u(">d", 8)) end                              -- BINFLOAT
  ops[0x88] = function() push(true) end                                    -- NEWTRUE
  ops[0x89] = function() push(false) end                                   -- NEWFALSE
  ops[0x4e] = function() push(NONE) end                                    -- NONE
  ops[0x58] = function() push(bytes(u("<I4", 4))) end                      -- BINUNICODE
  ops[0x8c] = function() push(bytes(u("B", 1))) end                        -- SHORT_BINUNICODE
  ops[0x8d] = function() push(bytes(u("<I8", 8))) end                      -- BINUNICODE8
  ops[0x54] = function() push(bytes(u("<i4", 4))) end                      -- BINSTRING
  ops[0x55] = function() push(bytes(u("B", 1))) end                        -- SHORT_BINSTRING
  ops[0x42] = function() push(bytes(u("<I4", 4))) end                      -- BINBYTES
  ops[0x43] = function() push(bytes(u("B", 1))) end                        -- SHORT_BINBYTES
  ops[0x73] = function() local v, k = pop(), pop(); setitem(top(), k, v) end   -- SETITEM
  ops[0x75] = function()                                                   -- SETITEMS
    local items, n = pop_mark()
    if n % 2 == 1 then fail("SETITEMS with an odd number of items") end
    local d = top()
    for i = 1, n, 2 do setitem(d, items[i], items[i + 1]) end
  end
  ops[0x61] = function() local v = pop(); append(top(), v) end             -- APPEND
  ops[0x65] = function()                                                   -- APPENDS
    local items, n = pop_mark()
    local l = top()
    for i = 1, n do append(l, items[i]) end
  end
  ops[0x63] = function() local mod = line(); push(global(mod, line())) end -- GLOBAL
  ops[0x93] = function()                                                   -- STACK_GLOBAL
    local name, mod = pop(), pop()
    if type(mod) ~= "string" or type(name) ~= "string" then fail("STACK_GLOBAL of non-strings") end
    push(global(mod, name))
  end
  ops[0x52] = function() local args = pop(); push(call(pop(), args, "REDUCE")) end
  ops[0x81] = function() local args = pop(); push(call(pop(), args, "NEWOBJ")) end
  ops[0x62] = function()                                                   -- BUILD
    -- the state of a whitelisted object (an OrderedDict's _metadata) is not needed
    pop()
    top()
  end
  ops[0x51] = function()                                                   -- BINPERSID
    local pid = pop()
    if not opts.persistent_load then fail("persistent id without a loader") end
    local v = opts.persistent_load(pid)
    push(v == nil and NONE or v)
  end
  local memo_count = 0
  local function put(i, v)
    if memo[i] == nil then
      memo_count = memo_count + 1
      if memo_count > MAX_MEMO then fail("more than %d memo entries at byte %d", MAX_MEMO, pos - 2) end
    end
    memo[i] = v
  end
  ops[0x71] = function() put(u("B", 1), top()) end                         -- BINPUT
  ops[0x72] = function() put(u("<I4", 4), top()) end                       -- LONG_BINPUT
  ops[0x68] = function() push(memo_get(u("B", 1))) end                     -- BINGET
  ops[0x6a] = function() push(memo_get(u("<I4", 4))) end                   -- LONG_BINGET
  ops[0x30] = function() pop() end                                         -- POP
  ops[0x31] = function() pop_mark() end                                    -- POP_MARK
  ops[0x32] = function() push(top()) end                                   -- DUP

  ops[0x94] = function() put(memo_count, top()) end                         -- MEMOIZE

  local ok, res = pcall(function()
    while true do
      need(1)
      local op = data:byte(pos)
      pos = pos + 1
      if op == 0x2e then                                                   -- STOP
        if nmarks > 0 or sp ~= 1 then fail("STOP with %d values on the stack", sp) end
        return stack[1]
      end
      local f = ops[op]
      if not f then fail("unsupported pickle opcode 0x%02x at byte %d", op, pos - 2) end
      f()
    end
  end)
  if not ok then
    if type(res) == "table" and res.msg then return nil, res.msg end
    error(res, 0)
  end
  if res == NONE then res = nil end
  return res, pos
end

return M

"""fuzz/structured/mutate_pickle.py — pickles as opcode lists, and their mutators (the .pth
formats' data.pkl and the legacy format's five pickles).  A pickle is parsed with
pickletools.genops; each opcode keeps its raw bytes, so a mutated list is re-emitted by
joining them, with new opcodes encoded here (enc_int, enc_str, ...).

PICKLE_MUTATORS: ints at the edges, string lengths that lie (negative, huge, past the end),
opcodes deleted, duplicated or swapped, junk opcodes, deep nesting (200,000 levels), lists and
dicts that contain themselves, _rebuild_from_type_v2 called with its own arguments, storages of
the wrong type, key or element count, offsets near INT64_MAX, size and stride tuples of 9+ or
negative or huge entries, memo indices out of range, globals renamed.  Each mutator is
(rng, ops, ctx) -> description, or None when it does not apply.
"""
import io
import pickle
import pickletools
import struct

# ---------------------------------------------------------------------------------------------
# values at the edges
# ---------------------------------------------------------------------------------------------
I64_MAX, I64_MIN = 2 ** 63 - 1, -2 ** 63
EDGE_INTS = [0, -1, 1, 2, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -2 ** 31, 2 ** 32 - 1, 2 ** 32,
             2 ** 40, 2 ** 53 + 1, 2 ** 62, I64_MAX, I64_MAX - 7, I64_MIN, 2 ** 63, 2 ** 64, 2 ** 100,
             -2 ** 100, 10 ** 40]
SHAPE_INTS = [0, -1, -2, 1, 2 ** 20, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 62, I64_MAX, I64_MIN]


def num(v):
    """v for a description: Python refuses to print ints of over 4300 digits."""
    if isinstance(v, int) and v.bit_length() > 128:
        return "<a %d-bit int>" % v.bit_length()
    return repr(v)


def edge_int(rng):
    v = rng.choice(EDGE_INTS)
    return v + rng.choice([0, 0, 0, 1, -1]) if abs(v) > 2 else v


# ---------------------------------------------------------------------------------------------
# pickles as opcode lists
# ---------------------------------------------------------------------------------------------
class Op:
    __slots__ = ("name", "arg", "raw")

    def __init__(self, name, arg, raw):
        self.name, self.arg, self.raw = name, arg, raw

    def __repr__(self):
        return "Op(%s, %r)" % (self.name, self.arg)


def parse_pickle(data, start=0):
    """-> (ops, end): the opcodes of the pickle at data[start:], up to and with STOP."""
    f = io.BytesIO(data)
    f.seek(start)
    items = list(pickletools.genops(f))
    end = f.tell()
    ops = []
    for k, (opcode, arg, pos) in enumerate(items):
        nxt = items[k + 1][2] if k + 1 < len(items) else end
        ops.append(Op(opcode.name, arg, data[pos:nxt]))
    return ops, end


def emit(ops):
    return b"".join(op.raw for op in ops)


def op(name, raw):
    return Op(name, None, raw)


def enc_int(v):
    if 0 <= v < 256:
        return Op("BININT1", v, b"K" + bytes([v]))
    if 0 <= v < 65536:
        return Op("BININT2", v, b"M" + struct.pack("<H", v))
    if -2 ** 31 <= v < 2 ** 31:
        return Op("BININT", v, b"J" + struct.pack("<i", v))
    b = pickle.encode_long(v)
    if len(b) < 256:
        return Op("LONG1", v, b"\x8a" + bytes([len(b)]) + b)
    return Op("LONG4", v, b"\x8b" + struct.pack("<i", len(b)) + b)


def enc_str(s):
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return Op("BINUNICODE", s, b"X" + struct.pack("<I", len(b)) + b)


def enc_global(module, name):
    return op("GLOBAL", b"c" + module.encode() + b"\n" + name.encode() + b"\n")


MARK, TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_TUPLE = (op("MARK", b"("), op("TUPLE", b"t"), op("EMPTY_LIST", b"]"),
                                                     op("EMPTY_DICT", b"}"), op("EMPTY_TUPLE", b")"))
APPEND, APPENDS, SETITEM, REDUCE, NONE = (op("APPEND", b"a"), op("APPENDS", b"e"), op("SETITEM", b"s"),
                                          op("REDUCE", b"R"), op("NONE", b"N"))
BINPERSID, NEWFALSE = op("BINPERSID", b"Q"), op("NEWFALSE", b"\x89")


def binput(i):
    return op("LONG_BINPUT", b"r" + struct.pack("<I", i & 0xFFFFFFFF))


def binget(i):
    return op("LONG_BINGET", b"j" + struct.pack("<I", i & 0xFFFFFFFF))


def tuple_of(items):
    return [MARK] + items + [TUPLE]


INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
STR_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING",
           "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE", "STRING"}
# opcodes that push exactly one value and take nothing from the stack
VALUE_OPS = INT_OPS | STR_OPS | {"NONE", "NEWTRUE", "NEWFALSE", "BINFLOAT", "EMPTY_LIST", "EMPTY_DICT",
                                 "EMPTY_TUPLE", "BINGET", "LONG_BINGET", "GLOBAL"}
# a string opcode: (code, length format, payload is text)
STR_FORMS = {"BINUNICODE": (b"X", "<I"), "SHORT_BINUNICODE": (b"\x8c", "<B"), "BINUNICODE8": (b"\x8d", "<Q"),
             "BINSTRING": (b"T", "<i"), "SHORT_BINSTRING": (b"U", "<B"), "BINBYTES": (b"B", "<I"),
             "SHORT_BINBYTES": (b"C", "<B"), "BINBYTES8": (b"\x8e", "<Q"), "BYTEARRAY8": (b"\x96", "<Q")}


def payload_of(o):
    a = o.arg
    if isinstance(a, str):   # pickletools decodes with surrogatepass: lone surrogates come back
        return a.encode("utf-8", "surrogatepass")
    if isinstance(a, (bytes, bytearray)):
        return bytes(a)
    return b"x"


def pack_len(fmt, n):
    """n in the width of fmt, wrapped as two's complement (a negative length in an unsigned field)."""
    size = struct.calcsize(fmt)
    return (n & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


class Ctx:
    """What a pickle mutator knows of the file: its storages, whether it is a legacy object pickle."""

    def __init__(self, legacy=False, storages=None):
        self.legacy = legacy
        self.storages = storages or []   # (storage type name, key, numel)
        self.memo = 100000


def value_positions(ops):
    return [k for k, o in enumerate(ops) if o.name in VALUE_OPS]


def persid_positions(ops):
    return [k for k, o in enumerate(ops) if o.name == "BINPERSID"]


def skip_memo(ops, k):
    while k < len(ops) and ops[k].name in ("BINPUT", "LONG_BINPUT", "MEMOIZE"):
        k += 1
    return k


def int_tuple_span(ops, k):
    """(start, end) of the tuple of ints that starts at ops[k] (size and stride after an offset)."""
    if k >= len(ops):
        return None
    if ops[k].name == "EMPTY_TUPLE":
        return k, k + 1
    if ops[k].name == "MARK":
        j = k + 1
        while j < len(ops) and ops[j].name in INT_OPS:
            j += 1
        if j < len(ops) and ops[j].name == "TUPLE":
            return k, j + 1
        return None
    j = k
    while j < len(ops) and ops[j].name in INT_OPS:
        j += 1
    n = j - k
    if 1 <= n <= 3 and j < len(ops) and ops[j].name == "TUPLE%d" % n:
        return k, j + 1
    return None


def pid_elements(ops, q):
    """Indices of the elements of the persistent id tuple that BINPERSID at q takes."""
    j = q - 1
    while j >= 0 and ops[j].name in ("BINPUT", "LONG_BINPUT", "MEMOIZE"):
        j -= 1
    if j < 0 or ops[j].name != "TUPLE":
        return None
    end = j
    depth, i = 0, j - 1
    while i >= 0:
        if ops[i].name == "MARK":
            if depth == 0:
                break
            depth -= 1
        elif ops[i].name in ("TUPLE", "LIST", "DICT", "APPENDS", "SETITEMS"):
            depth += 1
        i -= 1
    if i < 0:
        return None
    return [k for k in range(i + 1, end) if ops[k].name not in ("BINPUT", "LONG_BINPUT", "MEMOIZE")]


# ---- value programs: op lists that push exactly one value -----------------------------------
def prog_nested_lists(rng, ctx):
    n = rng.choice([1000, 1000, 50000, 200000])
    return [EMPTY_LIST] * n + [APPEND] * (n - 1), "%d nested lists" % n


def prog_nested_tuples(rng, ctx):
    n = rng.choice([1000, 1000, 50000, 200000])
    return [MARK] * n + [TUPLE] * n, "%d nested tuples" % n


def prog_nested_dicts(rng, ctx):
    n = rng.choice([1000, 1000, 50000, 200000])
    k = op("SHORT_BINUNICODE", b"\x8c\x01a")
    return [EMPTY_DICT] + [k, EMPTY_DICT] * n + [SETITEM] * n, "%d nested dicts" % n


def prog_self_list(rng, ctx):
    ctx.memo += 1
    m = ctx.memo
    return [EMPTY_LIST, binput(m), binget(m), APPEND], "a list that contains itself"


def prog_self_dict(rng, ctx):
    ctx.memo += 1
    m = ctx.memo
    return [EMPTY_DICT, binput(m), enc_str("self"), binget(m), SETITEM], "a dict that contains itself"


def prog_self_rebuild(rng, ctx):
    """_rebuild_from_type_v2(f, Tensor, L, {}) where L = [f, Tensor, L, {}]: each call calls itself."""
    ctx.memo += 2
    g, m = ctx.memo - 1, ctx.memo
    rft = enc_global("torch._tensor", "_rebuild_from_type_v2")
    tensor = enc_global("torch", "Tensor")
    lst = [EMPTY_LIST, binput(m), MARK, binget(g), tensor, binget(m), EMPTY_DICT, APPENDS]
    return ([rft, binput(g)] + [MARK, binget(g), tensor] + lst + [EMPTY_DICT, TUPLE, REDUCE],
            "_rebuild_from_type_v2 called with its own args")


def prog_huge_long(rng, ctx):
    n = rng.choice([300, 70000, 1 << 20])
    b = bytes([rng.randrange(256) for _ in range(64)]) * (n // 64)
    return [op("LONG4", b"\x8b" + struct.pack("<i", len(b)) + b)], "a %d-byte LONG4" % len(b)


def prog_big_string(rng, ctx):
    n = rng.choice([1 << 16, 1 << 22])
    return [op("BINUNICODE", b"X" + struct.pack("<I", n) + b"a" * n)], "a %d-byte string" % n


def prog_evil_global(rng, ctx):
    mod, name = rng.choice([("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                            ("torch._utils", "_rebuild_tensor_v2"), ("torch", "FloatStorage"),
                            ("collections", "OrderedDict"), ("torch._utils", "_rebuild_parameter"),
                            ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
                            ("", ""), ("a" * 5000, "b"), ("torch", "Tensor")])
    args = rng.choice([[], [enc_str("touch /tmp/pwned")], [EMPTY_LIST], [NONE, NONE, NONE, NONE],
                       [enc_int(edge_int(rng))] * 6])
    return [enc_global(mod, name)] + tuple_of(args) + [REDUCE], "%s.%s called" % (mod[:20], name)


STORAGE_TYPES = ["FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
                 "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage",
                 "QInt8Storage", "UntypedStorage", "Storage", "Tensor"]
ELEM_SIZE = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "LongStorage": 8,
             "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1}


def hostile_tuple(rng, real=None):
    k = rng.choice([0, 1, 2, 4, 8, 9, 12, 33, 64, 1000])
    if real and rng.random() < 0.5:
        vals = list(real)
        vals[rng.randrange(len(vals))] = rng.choice(SHAPE_INTS + EDGE_INTS)
    else:
        vals = [rng.choice(SHAPE_INTS + [1, 2, 3, 1, 1]) for _ in range(k)]
    return vals


def prog_rebuild_tensor(rng, ctx):
    """_rebuild_tensor_v2 of a real storage (or a hostile one) with hostile offset, size, stride."""
    if ctx.storages and rng.random() < 0.8:
        ty, key, numel = rng.choice(ctx.storages)
    else:
        ty, key, numel = "FloatStorage", "0", 12
    what = []
    if rng.random() < 0.3:
        ty = rng.choice(STORAGE_TYPES)
        what.append("type " + ty)
    if rng.random() < 0.2:
        key = rng.choice(["../data.pkl", "", "0/../../x", "k" * 300, "\xff\xfe", "data.pkl", "%s%n", "0 ", "99"])
        what.append("key %r" % key[:20])
    if rng.random() < 0.3:
        numel = rng.choice(SHAPE_INTS + [numel + 1, numel - 1, numel * 2])
        what.append("numel %d" % numel)
    off = rng.choice([0, 0, 1, numel - 1, numel, numel + 1, I64_MAX, I64_MAX - 3, 2 ** 62, -1, I64_MIN, 2 ** 61 + 1])
    nd = rng.choice([0, 1, 2, 3, 4, 9, 12])
    size = [rng.choice([0, 1, 2, 3, numel, 2 ** 31, 2 ** 40, -1, I64_MAX]) for _ in range(nd)]
    stride = [rng.choice([0, 1, 1, 2, -1, 2 ** 32, 2 ** 62, I64_MAX, I64_MIN]) for _ in range(nd)]
    if rng.random() < 0.2:
        stride = stride[:max(0, nd - 1)]
    pid = [enc_str("storage"), enc_global("torch", ty), enc_str(key), enc_str("cpu"), enc_int(numel)]
    if ctx.legacy:
        pid.append(NONE)
    prog = ([enc_global("torch._utils", "_rebuild_tensor_v2"), MARK] + tuple_of(pid) + [BINPERSID, enc_int(off)]
            + tuple_of([enc_int(v) for v in size]) + tuple_of([enc_int(v) for v in stride])
            + [NEWFALSE, enc_global("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, TUPLE, REDUCE])
    return prog, "_rebuild_tensor_v2(offset %d, size %s, stride %s%s)" % (
        off, size[:4], stride[:4], ", " + ", ".join(what) if what else "")


VALUE_PROGRAMS = [prog_nested_lists, prog_nested_tuples, prog_nested_dicts, prog_self_list, prog_self_dict,
                  prog_self_rebuild, prog_huge_long, prog_big_string, prog_evil_global, prog_rebuild_tensor,
                  prog_rebuild_tensor, prog_rebuild_tensor]


# ---- pickle mutators: (rng, ops, ctx) -> description, or None when they do not apply ----------
def pm_int_edge(rng, ops, ctx):
    ks = [k for k, o in enumerate(ops) if o.name in INT_OPS]
    if not ks:
        return None
    k = rng.choice(ks)
    v = edge_int(rng)
    old = ops[k].arg
    ops[k] = enc_int(v)
    return "int %s -> %d" % (num(old), v)


def pm_length_lie(rng, ops, ctx):
    ks = [k for k, o in enumerate(ops) if o.name in STR_OPS]
    if not ks:
        return None
    k = rng.choice(ks)
    p = payload_of(ops[k])
    form = rng.choice(list(STR_FORMS)) if rng.random() < 0.5 else ops[k].name
    if form not in STR_FORMS:
        form = "BINUNICODE"
    code, fmt = STR_FORMS[form]
    rest = sum(len(o.raw) for o in ops[k + 1:])
    n = rng.choice([-1, -2, -len(p) - 10, -2 ** 31, 2 ** 31 - 1, 2 ** 32 - 1, len(p) + 1, len(p) + rest,
                    len(p) + rest + 1, 2 ** 63 - 1, 2 ** 64 - 1, 2 ** 62, 0])
    ops[k] = op(form, code + pack_len(fmt, n) + p)
    return "%s of %d bytes says %d" % (form, len(p), n)


def pm_string_form(rng, ops, ctx):
    """A string in another (valid) string opcode, or with bytes that are not UTF-8."""
    ks = [k for k, o in enumerate(ops) if o.name in STR_OPS]
    if not ks:
        return None
    k = rng.choice(ks)
    p = payload_of(ops[k])
    if rng.random() < 0.5:
        p = rng.choice([b"\xff\xfe", b"\xc3", p + b"\x00tail", b"", b"\xed\xa0\x80", p * 100])
    form = rng.choice(list(STR_FORMS))
    code, fmt = STR_FORMS[form]
    if fmt == "<B" and len(p) > 255:
        p = p[:255]
    ops[k] = op(form, code + pack_len(fmt, len(p)) + p)
    return "string as %s %r" % (form, p[:16])


def pm_delete(rng, ops, ctx):
    if len(ops) < 3:
        return None
    k = rng.randrange(1, len(ops))
    n = rng.choice([1, 1, 1, 2, 5])
    name = ops[k].name
    del ops[k:k + n]
    return "deleted %d opcodes from %s" % (n, name)


def pm_duplicate(rng, ops, ctx):
    if len(ops) < 2:
        return None
    k = rng.randrange(1, len(ops))
    n = rng.choice([1, 1, 2, 4])
    times = rng.choice([1, 1, 2, 100])
    if sum(len(o.raw) for o in ops[k:k + n]) > 4096:
        times = 1
    ops[k:k] = ops[k:k + n] * times
    return "duplicated %d opcodes at %s x%d" % (n, ops[k].name, times)


def pm_swap(rng, ops, ctx):
    if len(ops) < 3:
        return None
    i = rng.randrange(1, len(ops) - 1)
    j = i + 1 if rng.random() < 0.6 else rng.randrange(1, len(ops))
    ops[i], ops[j] = ops[j], ops[i]
    return "swapped %s and %s" % (ops[i].name, ops[j].name)


def pm_replace_value(rng, ops, ctx, programs=None):
    ks = value_positions(ops)
    if not ks:
        return None
    k = rng.choice(ks)
    prog, what = rng.choice(programs or VALUE_PROGRAMS)(rng, ctx)
    ops[k:k + 1] = prog
    return "value at opcode %d -> %s" % (k, what)


def pm_deep(rng, ops, ctx):
    return pm_replace_value(rng, ops, ctx, [prog_nested_lists, prog_nested_tuples, prog_nested_dicts])


def pm_cycle(rng, ops, ctx):
    return pm_replace_value(rng, ops, ctx, [prog_self_list, prog_self_dict, prog_self_rebuild])


def pm_add_entry(rng, ops, ctx):
    """The object wrapped in a dict with a second entry (any value is welcome there, so it reaches
    the code that walks the loaded object): a deep nest, a cycle, a hostile tensor..."""
    if len(ops) < 2 or ops[-1].name != "STOP":
        return None
    prog, what = rng.choice([prog_nested_lists, prog_nested_tuples, prog_nested_dicts, prog_self_list,
                             prog_self_dict, prog_self_rebuild, prog_rebuild_tensor, prog_rebuild_tensor,
                             prog_huge_long, prog_big_string])(rng, ctx)
    k = 1 if ops[0].name == "PROTO" else 0
    entries = [enc_str("object")] + ops[k:-1] + [SETITEM, enc_str("fuzz")] + prog + [SETITEM]
    if rng.random() < 0.5:
        entries = [enc_str("fuzz")] + prog + [SETITEM, enc_str("object")] + ops[k:-1] + [SETITEM]
    ops[k:-1] = [EMPTY_DICT] + entries
    return "{object, fuzz = %s}" % what


def pm_tensor(rng, ops, ctx):
    """A tensor of the object -> a rebuilt tensor with hostile storage, offset, size or stride."""
    return pm_replace_value(rng, ops, ctx, [prog_rebuild_tensor])


def pm_storage(rng, ops, ctx):
    qs = persid_positions(ops)
    if not qs:
        return None
    q = rng.choice(qs)
    el = pid_elements(ops, q)
    if not el or len(el) < 5:
        return None
    which = rng.choice(["kind", "type", "type", "key", "key", "numel", "numel", "location", "fields"])
    if which == "kind":
        ops[el[0]] = enc_str(rng.choice(["module", "", "storagex", "STORAGE"]))
    elif which == "type":
        ops[el[1]] = rng.choice([enc_global("torch", rng.choice(STORAGE_TYPES)), enc_str("FloatStorage"), NONE,
                                 enc_int(4)])
    elif which == "key":
        ops[el[2]] = rng.choice([enc_str(s) for s in ["../data.pkl", "", "0/../../x", "k" * 300, "data.pkl",
                                                      "%s%n", "1", "0\x00", "/etc/passwd"]] + [enc_int(0), NONE])
    elif which == "numel":
        ops[el[4]] = enc_int(rng.choice(SHAPE_INTS + EDGE_INTS))
    elif which == "location":
        ops[el[3]] = enc_str(rng.choice(["cuda:0", "", "meta", "x" * 1000]))
    else:
        k = rng.choice(el)
        ops[k:k + 1] = rng.choice([[], [ops[k], ops[k]], [ops[k], NONE]])
    return "storage %s of a persistent id" % which


def pm_offset(rng, ops, ctx):
    qs = persid_positions(ops)
    if not qs:
        return None
    q = rng.choice(qs)
    k = skip_memo(ops, q + 1)
    if k >= len(ops) or ops[k].name not in INT_OPS:
        return None
    v = rng.choice([I64_MAX, I64_MAX - 1, I64_MAX - 15, 2 ** 62, 2 ** 61, 2 ** 32, -1, I64_MIN, 2 ** 31])
    ops[k] = enc_int(v)
    return "storage offset -> %d" % v


def pm_size_stride(rng, ops, ctx):
    qs = persid_positions(ops)
    if not qs:
        return None
    q = rng.choice(qs)
    k = skip_memo(ops, skip_memo(ops, q + 1) + 1)
    span = int_tuple_span(ops, k)
    if not span:
        return None
    if rng.random() < 0.5:   # the stride tuple instead
        span2 = int_tuple_span(ops, skip_memo(ops, span[1]))
        if span2:
            span, which = span2, "stride"
        else:
            which = "size"
    else:
        which = "size"
    real = [o.arg for o in ops[span[0]:span[1]] if o.name in INT_OPS and isinstance(o.arg, int)]
    vals = hostile_tuple(rng, real)
    ops[span[0]:span[1]] = tuple_of([enc_int(v) for v in vals])
    return "%s %s -> %s" % (which, [num(v) for v in real], vals[:12])


def pm_memo(rng, ops, ctx):
    ks = [k for k, o in enumerate(ops) if o.name in ("BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT")]
    if not ks:
        return None
    k = rng.choice(ks)
    i = rng.choice([0, 1, 255, 99999, 2 ** 31 - 1, 2 ** 32 - 1])
    get = "GET" in ops[k].name
    ops[k] = binget(i) if get else binput(i)
    return "memo %s index -> %d" % ("get" if get else "put", i)


JUNK_OPS = [b"0", b"1", b"2", b"P1\n", b"p1\n", b"g9\n", b"I5\n", b"L5L\n", b"F1.5\n", b"\x82\x01", b"\x83\x01\x00",
            b"\x84\x01\x00\x00\x00", b"\x93", b"\x94", b"\x95" + struct.pack("<Q", 2 ** 63 - 1), b"b", b"o", b"i\n\n",
            b"\x81", b"\x92", b"\x85", b"\x86", b"\x87", b"d", b"l", b"(", b".", b"\x00", b"\xff", b"\x80\x05",
            b"\x80\x99", b"G" + struct.pack(">d", float("nan")), b"\x88", b"\x97", b"\x98", b"S'x'\n", b"V\\u12\n"]


def pm_junk(rng, ops, ctx):
    k = rng.randrange(1, max(2, len(ops)))
    j = rng.choice(JUNK_OPS)
    ops.insert(k, op("JUNK", j))
    return "inserted opcode %r" % j


def pm_truncate(rng, ops, ctx):
    if len(ops) < 2:
        return None
    k = rng.randrange(1, len(ops))
    del ops[k:]
    return "pickle cut after %d opcodes" % k


def pm_global(rng, ops, ctx):
    ks = [k for k, o in enumerate(ops) if o.name in ("GLOBAL", "STACK_GLOBAL")]
    if not ks:
        return None
    k = rng.choice(ks)
    new = rng.choice([("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_parameter_with_state"),
                      ("torch._tensor", "_rebuild_from_type_v2"), ("builtins", "dict"), ("os", "system"),
                      ("collections", "OrderedDict"), ("torch", "FloatStorage"), ("torch", "Tensor"),
                      ("torch._utils", "_rebuild_parameter"), ("torch.nn.parameter", "Parameter")])
    if rng.random() < 0.15:
        ops[k] = op("GLOBAL", rng.choice([b"ctorch\n", b"c\n\n", b"cos system\n", b"c" + b"a" * 70000 + b"\nb\n"]))
        return "malformed GLOBAL"
    ops[k] = enc_global(*new)
    return "global -> %s.%s" % new


PICKLE_MUTATORS = [pm_add_entry, pm_add_entry, pm_add_entry, pm_int_edge, pm_int_edge, pm_length_lie,
                   pm_length_lie, pm_string_form, pm_delete,
                   pm_duplicate, pm_swap, pm_replace_value, pm_deep, pm_cycle, pm_tensor, pm_tensor, pm_storage,
                   pm_storage, pm_offset, pm_offset, pm_size_stride, pm_size_stride, pm_memo, pm_junk,
                   pm_truncate, pm_global]


def mutate_pickle(rng, data, ctx, n=None, start=0):
    """-> (new pickle bytes, end of the old one, descriptions); data[start:] holds the pickle.
    A pickle an earlier mutation broke beyond parsing is returned as it is."""
    try:
        ops, end = parse_pickle(data, start)
    except Exception:   # pickletools' own errors, and UnicodeDecodeError of a mutated string
        return data[start:], len(data), []
    done = []
    for _ in range(n or rng.choice([1, 1, 1, 2, 3])):
        for _ in range(10):
            f = rng.choice(PICKLE_MUTATORS)
            d = f(rng, ops, ctx)
            if d:
                done.append("%s: %s" % (f.__name__, d))
                break
    return emit(ops), end, done


class _Probe(pickle.Unpickler):
    """Reads a seed's pickle for its storages, without importing torch or calling anything."""

    def __init__(self, f):
        super().__init__(f)
        self.storages = []

    def find_class(self, module, name):
        return _Named(module + "." + name)

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            self.storages.append((getattr(pid[1], "name", "torch.FloatStorage").split(".")[-1], pid[2], pid[4]))
        return None


class _Any(dict):
    """What any call in a probed pickle returns: takes items (OrderedDict) and state (BUILD)."""


class _Named:
    def __init__(self, name):
        self.name = name

    def __call__(self, *a, **k):
        return _Any()


def probe_storages(data, start=0):
    f = io.BytesIO(data)
    f.seek(start)
    p = _Probe(f)
    obj = p.load()
    return obj, p.storages, f.tell()

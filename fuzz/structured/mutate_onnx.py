"""fuzz/structured/mutate_onnx.py — ONNX models changed as graphs with python3-onnx.

ONNX_MUTATORS: node inputs and outputs dropped, added, duplicated or renamed to undefined
values; op types changed to other supported ops (and unsupported ones); attributes deleted or
of the wrong type (INT where INTS, STRING where FLOAT), negative, zero, huge, empty; hostile
names (1,000 '/'-separated segments, only dots or slashes, empty, 100,000 characters, format
directives); 20,000 nodes with one name; initializers with wrong dtypes, dims, byte counts;
int64 shape inputs of ConstantOfShape/Expand/Range/Resize/Tile/Reshape/... at 2^40 and such, and
new nodes of those ops with hostile sizes; external data ('..', absolute paths, a symlink in the
case folder to a file or folder outside, a FIFO, a folder, offsets near INT64_MAX, huge lengths,
numbers that are not numbers); opset versions 1 to 25, IR versions; graph inputs and outputs.
Each mutator is (state) -> description, or None when it does not apply; byte_mutate changes the
serialized protobuf now and then.
"""
import os
import struct

import onnx
from onnx import TensorProto, helper

from mutate_pickle import I64_MAX, I64_MIN, SHAPE_INTS

# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------
SUPPORTED_OPS = ("Abs Add AveragePool BatchNormalization Cast Ceil Clip Concat Constant ConstantOfShape Conv "
                 "ConvTranspose Cos Div Dropout Elu Equal Erf Exp Expand Flatten Floor Gather Gelu Gemm "
                 "GlobalAveragePool GlobalMaxPool HardSigmoid HardSwish Identity InstanceNormalization LRN "
                 "LayerNormalization LeakyRelu Log LogSoftmax MatMul Max MaxPool Mean Min Mul Neg PRelu Pad Pow Range "
                 "Reciprocal ReduceL2 ReduceMax ReduceMean ReduceMin ReduceSum ReduceSumSquare Relu Reshape Resize "
                 "Selu Shape Sigmoid Sin Size Slice Softmax Softplus Split Sqrt Squeeze Sub Sum Tanh Transpose "
                 "Unsqueeze Upsample Where").split()
OTHER_OPS = ["Tile", "Loop", "If", "Scan", "", "conv", "relu", "Einsum", "NonZero", "TopK", "__index", "ops", "fail",
             "ints", "Conv ", "static_inputs", "Node"]
ATTR_NAMES = ["axis", "axes", "perm", "pads", "strides", "kernel_shape", "dilations", "group", "mode", "keepdims",
              "split", "to", "epsilon", "alpha", "beta", "transA", "transB", "value", "auto_pad", "ceil_mode",
              "count_include_pad", "coordinate_transformation_mode", "nearest_mode", "scales", "output_padding",
              "output_shape", "momentum", "min", "max", "starts", "ends", "num_outputs", "allowzero", "size", "bias",
              "approximate", "cubic_coeff_a", "exclude_outside", "gamma", "lambd", "noop_with_empty_axes",
              "storage_order", "value_float", "value_ints", "value_int", "value_floats", "stash_type", "extrapolation_value"]


def hostile_attr(rng, name):
    kind = rng.choice(["int", "ints", "float", "floats", "string", "strings", "tensor", "empty_ints",
                       "empty_floats", "graph"])
    if kind == "int":
        return helper.make_attribute(name, rng.choice(SHAPE_INTS + [0, 1, -1, 3]))
    if kind == "ints":
        n = rng.choice([1, 2, 3, 4, 8, 9, 100, 10000])
        return helper.make_attribute(name, [rng.choice(SHAPE_INTS + [0, 1, 2, -1]) for _ in range(n)])
    if kind == "float":
        return helper.make_attribute(name, rng.choice([0.0, -1.0, 1e30, float("nan"), float("inf"), -float("inf"),
                                                       1e-30, 2.0 ** 40]))
    if kind == "floats":
        return helper.make_attribute(name, [rng.choice([0.0, float("nan"), 1e30, -1.0, 2.0])
                                            for _ in range(rng.choice([1, 2, 4, 9]))])
    if kind == "string":
        return helper.make_attribute(name, rng.choice([b"", b"nearest", b"linear", b"cubic", b"SAME_UPPER", b"VALID",
                                                       b"%s%n", b"\xff\xfe", b"x" * 10000, b"align_corners",
                                                       b"tf_crop_and_resize", b"reflect", b"edge", b"wrap"]))
    if kind == "strings":
        return helper.make_attribute(name, [b"a", b"", b"\xff"])
    if kind == "tensor":
        return helper.make_attribute(name, hostile_tensor(rng, "t"))
    if kind == "empty_ints":
        a = helper.make_attribute(name, [1])
        del a.ints[:]
        return a
    if kind == "empty_floats":
        a = helper.make_attribute(name, [1.0])
        del a.floats[:]
        return a
    g = helper.make_graph([], "sub", [], [])
    return helper.make_attribute(name, g)


def hostile_tensor(rng, name):
    dt = rng.choice([TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.FLOAT16,
                     TensorProto.BFLOAT16, TensorProto.DOUBLE, TensorProto.BOOL, TensorProto.STRING,
                     TensorProto.UINT8, TensorProto.COMPLEX64, 0, 99])
    nd = rng.choice([0, 1, 1, 2, 4, 9])
    dims = [rng.choice([0, 1, 2, 3, 2 ** 20, 2 ** 32, 2 ** 40, -1, I64_MAX]) for _ in range(nd)]
    t = TensorProto(name=name, data_type=dt, dims=dims)
    k = rng.random()
    if k < 0.4:
        t.raw_data = bytes(rng.choice([0, 1, 4, 8, 16, 24, 1000]))
    elif k < 0.6:
        t.int64_data.extend([rng.choice(SHAPE_INTS) for _ in range(rng.choice([0, 1, 2, 4]))])
    elif k < 0.8:
        t.float_data.extend([1.0] * rng.choice([0, 1, 3]))
    return t


class OnnxState:
    def __init__(self, rng, model, case_dir):
        self.rng, self.model, self.dir = rng, model, case_dir
        self.fresh = 0

    def new_name(self, base="fz"):
        self.fresh += 1
        return "%s_%d" % (base, self.fresh)

    def values(self):
        g = self.model.graph
        names = [i.name for i in g.input] + [i.name for i in g.initializer]
        for n in g.node:
            names.extend(o for o in n.output if o)
        return names or ["x"]

    def float_values(self):
        g = self.model.graph
        inits = {i.name for i in g.initializer}
        names = [i.name for i in g.input if i.name not in inits]
        shapeish = {"Shape", "Constant", "Cast", "Gather", "Unsqueeze", "Concat", "Size", "Range", "Equal", "Where",
                    "ConstantOfShape"}
        for n in g.node:
            if n.op_type not in shapeish:
                names.extend(o for o in n.output if o)
        return names or self.values()


def om_node_io(s):
    g, rng = s.model.graph, s.rng
    if not g.node:
        return None
    n = rng.choice(g.node)
    what = rng.choice(["drop_in", "add_in", "dup_in", "undef_in", "empty_in", "drop_out", "add_out", "dup_out",
                       "out_clash", "many_in"])
    if what == "drop_in" and n.input:
        del n.input[rng.randrange(len(n.input))]
    elif what == "add_in":
        n.input.append(rng.choice(s.values()))
    elif what == "dup_in" and n.input:
        n.input.append(rng.choice(n.input))
    elif what == "undef_in" and n.input:
        n.input[rng.randrange(len(n.input))] = rng.choice(["undefined", "", " ", "x" * 1000, "%s%n"])
    elif what == "empty_in":
        n.input[:] = [""] * rng.choice([0, 1, 5])
    elif what == "drop_out" and n.output:
        del n.output[rng.randrange(len(n.output))]
    elif what == "add_out":
        n.output.append(s.new_name())
    elif what == "dup_out" and n.output:
        n.output.append(n.output[0])
    elif what == "out_clash" and n.output:
        n.output[0] = rng.choice(s.values())
    elif what == "many_in":
        n.input.extend([rng.choice(s.values())] * rng.choice([10, 1000]))
    else:
        return None
    return "node %s (%s): %s" % (n.name[:40], n.op_type, what)


def om_op_type(s):
    g, rng = s.model.graph, s.rng
    if not g.node:
        return None
    n = rng.choice(g.node)
    old = n.op_type
    n.op_type = rng.choice(SUPPORTED_OPS * 3 + OTHER_OPS)
    if rng.random() < 0.1:
        n.domain = rng.choice(["com.microsoft", "ai.onnx", "ai.onnx.ml", "x"])
    return "node %s: op %s -> %s" % (n.name[:40], old, n.op_type)


def om_attr(s):
    g, rng = s.model.graph, s.rng
    if not g.node:
        return None
    n = rng.choice(g.node)
    r = rng.random()
    if r < 0.3 and n.attribute:
        a = n.attribute[rng.randrange(len(n.attribute))]
        name = a.name
        n.attribute.remove(a)
        return "node %s (%s): attribute %s deleted" % (n.name[:40], n.op_type, name)
    if r < 0.7 and n.attribute:
        k = rng.randrange(len(n.attribute))
        name = n.attribute[k].name
    else:
        k, name = None, rng.choice(ATTR_NAMES)
    a = hostile_attr(rng, name)
    if rng.random() < 0.1:
        a.type = rng.choice([0, 1, 2, 3, 5, 7])   # a type that lies about the field that is set
    if k is None:
        n.attribute.append(a)
    else:
        n.attribute[k].CopyFrom(a)
    return "node %s (%s): attribute %s -> %s" % (n.name[:40], n.op_type, name, str(a).replace("\n", " ")[:80])


def hostile_name(rng):
    return rng.choice(["/".join("s%d" % k for k in range(1000)), "." * rng.choice([1, 2, 100]),
                       "/" * rng.choice([1, 2, 100]), "", "./.", "/./", "a..b", "..", "%s%s%n%d", "\xff",
                       "x" * 100000, "/a//b///c/", ".".join("m%d" % k for k in range(1000)),
                       "/layer/Conv", "Conv_0", "_2", "a/b.c/d"])


def om_names(s):
    g, rng = s.model.graph, s.rng
    if not g.node:
        return None
    what = rng.choice(["one", "all_same", "all_hostile"])
    name = hostile_name(rng)
    if what == "one":
        rng.choice(g.node).name = name
    else:   # all of them, or 500 after om_many_nodes (20,000 names of 5,000 bytes: a 100 MB file)
        nodes = list(g.node) if len(g.node) <= 2000 else rng.sample(list(g.node), 500)
        for n in nodes:
            n.name = name if what == "all_same" else hostile_name(rng)
    return "node names (%s) -> %r" % (what, name[:40])


def om_many_nodes(s):
    """20,000 nodes with one name (or a deep path) hanging off an existing value."""
    g, rng = s.model.graph, s.rng
    src = rng.choice(s.float_values())
    n = rng.choice([5000, 20000])
    name = rng.choice(["same", "/a/b/same", "x." * 50 + "y", ""])
    chain = rng.random() < 0.5
    prev = src
    for k in range(n):
        out = s.new_name("many")
        g.node.append(helper.make_node("Identity", [prev if chain else src], [out], name=name))
        if chain:
            prev = out
    if chain:
        g.output.append(helper.make_tensor_value_info(prev, TensorProto.FLOAT, None))
    return "%d Identity nodes named %r (%s)" % (n, name[:20], "chained" if chain else "fanned out")


def om_initializer(s):
    g, rng = s.model.graph, s.rng
    if not g.initializer:
        return None
    t = rng.choice(g.initializer)
    what = rng.choice(["dtype", "dims", "dims", "raw", "raw", "fields", "name", "replace"])
    if what == "dtype":
        t.data_type = rng.choice([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 99, -1])
    elif what == "dims":
        d = list(t.dims)
        r = rng.random()
        if r < 0.3 or not d:
            d.append(rng.choice([0, 1, 2, 2 ** 40, -1]))
        elif r < 0.6:
            d[rng.randrange(len(d))] = rng.choice(SHAPE_INTS)
        elif r < 0.8:
            d = [2 ** 32, 2 ** 32] + d
        else:
            d = d[:-1]
        del t.dims[:]
        t.dims.extend(d)
    elif what == "raw":
        raw = t.raw_data
        t.raw_data = rng.choice([b"", raw[:len(raw) // 2], raw[:-1], raw + b"\0", raw * 3, b"\0" * 3])
    elif what == "fields":
        t.float_data.extend([1.0, 2.0])
        t.int64_data.extend([2 ** 40])
    elif what == "name":
        t.name = rng.choice(["", rng.choice(s.values()), "undefined"])
    else:
        t.CopyFrom(hostile_tensor(rng, t.name))
    return "initializer %s: %s" % (t.name[:40], what)


SHAPE_CONSUMERS = {"ConstantOfShape": [0], "Expand": [1], "Range": [0, 1, 2], "Resize": [1, 2, 3], "Tile": [1],
                   "Reshape": [1], "Pad": [1], "Slice": [1, 2, 3, 4], "Split": [1], "Unsqueeze": [1],
                   "Squeeze": [1], "Upsample": [1], "ReduceSum": [1], "Gather": [1]}


def int64_sources(g):
    """name -> the TensorProto holding that int64 (or float) constant: initializers and Constant nodes."""
    src = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.t is not None and n.output:
                    src[n.output[0]] = a.t
    return src


def set_values(t, vals):
    """Rewrites t (any of its encodings) to hold vals, keeping its type."""
    if t.data_type == TensorProto.INT64:
        t.raw_data = struct.pack("<%dq" % len(vals), *[max(I64_MIN, min(I64_MAX, v)) for v in vals])
    elif t.data_type == TensorProto.INT32:
        t.raw_data = struct.pack("<%di" % len(vals), *[max(-2 ** 31, min(2 ** 31 - 1, v)) for v in vals])
    else:
        t.data_type = TensorProto.FLOAT
        t.raw_data = struct.pack("<%df" % len(vals), *[float(v) for v in vals])
    del t.int64_data[:], t.int32_data[:], t.float_data[:]
    if len(t.dims) > 1 or (len(t.dims) == 1 and t.dims[0] != len(vals)):
        del t.dims[:]
        t.dims.append(len(vals))


def tensor_len(t):
    n = 1
    for d in t.dims:
        n *= d
    return max(0, min(n, 64))


def om_shape_const(s):
    """An int64 shape input of ConstantOfShape/Expand/Range/Resize/Tile/Reshape... set to 2^40 and such."""
    g, rng = s.model.graph, s.rng
    src = int64_sources(g)
    targets = []
    for n in g.node:
        for k in SHAPE_CONSUMERS.get(n.op_type, []):
            if k < len(n.input) and n.input[k] in src:
                targets.append((n, k, src[n.input[k]]))
    if not targets:
        return None
    n, k, t = rng.choice(targets)
    m = tensor_len(t) or 1
    vals = [rng.choice([2 ** 40, 2 ** 40, 2 ** 31, 2 ** 62, -2 ** 40, 0, -1, 1, I64_MAX, I64_MIN, 2 ** 20])
            for _ in range(m)]
    if rng.random() < 0.2:
        vals = vals + [2 ** 40] * rng.choice([1, 8])
    set_values(t, vals)
    return "%s (%s) input %d -> %s" % (n.name[:40], n.op_type, k, vals[:6])


def const_node(s, vals, dtype=TensorProto.INT64):
    out = s.new_name("c")
    t = TensorProto(name=out, data_type=dtype, dims=[len(vals)] if not isinstance(vals, int) else [])
    vs = [vals] if isinstance(vals, int) else vals
    if dtype == TensorProto.INT64:
        t.raw_data = struct.pack("<%dq" % len(vs), *vs)
    else:
        t.raw_data = struct.pack("<%df" % len(vs), *[float(v) for v in vs])
    return helper.make_node("Constant", [], [out], name=s.new_name("Constant"), value=t), out


def om_inject(s):
    """A new node with hostile sizes reading an existing value, its output a new graph output."""
    g, rng = s.model.graph, s.rng
    x = rng.choice(s.float_values())
    big = rng.choice([2 ** 40, 2 ** 31, 2 ** 20, 2 ** 62, I64_MAX, -2 ** 40, -1, 0])
    kind = rng.choice(["ConstantOfShape", "Expand", "Range", "Resize", "Tile", "Reshape", "Pad", "Conv", "MaxPool",
                       "Slice", "Gather", "Split", "Transpose", "Softmax", "Concat", "Flatten", "Unsqueeze",
                       "Upsample", "Cast", "AveragePool", "ConvTranspose", "Gemm", "ReduceSum", "Squeeze"])
    nodes, out = [], s.new_name(kind)
    outs = [out]
    if kind == "ConstantOfShape":
        c, cn = const_node(s, [big, rng.choice([1, big])])
        nodes = [c, helper.make_node(kind, [cn], [out])]
    elif kind == "Expand":
        c, cn = const_node(s, [big, 1, 1, 1][:rng.choice([1, 2, 4])])
        nodes = [c, helper.make_node(kind, [x, cn], [out])]
    elif kind == "Range":
        dt = rng.choice([TensorProto.INT64, TensorProto.FLOAT])
        a, an = const_node(s, 0, dt)
        b, bn = const_node(s, big, dt)
        d, dn = const_node(s, rng.choice([1, 0, -1]), dt)
        nodes = [a, b, d, helper.make_node(kind, [an, bn, dn], [out])]
    elif kind in ("Resize", "Upsample"):
        if rng.random() < 0.5:
            c, cn = const_node(s, [1, 1, big, big])
            ins = [x, "", "", cn] if kind == "Resize" else [x, cn]
        else:
            c, cn = const_node(s, [1.0, 1.0, rng.choice([1e30, 2.0 ** 40, float("nan"), -1.0, 0.0]), 2.0],
                               TensorProto.FLOAT)
            ins = [x, "", cn] if kind == "Resize" else [x, cn]
        nodes = [c, helper.make_node(kind, ins, [out], mode=rng.choice(["nearest", "linear", "cubic"]))]
    elif kind in ("Tile", "Reshape"):
        c, cn = const_node(s, [big, -1] if kind == "Reshape" else [big, big, 1, 1])
        nodes = [c, helper.make_node(kind, [x, cn], [out])]
    elif kind == "Pad":
        c, cn = const_node(s, [0, 0, big, big, 0, 0, big, big])
        nodes = [c, helper.make_node(kind, [x, cn], [out], mode=rng.choice(["constant", "reflect", "edge"]))]
    elif kind in ("Conv", "ConvTranspose"):
        w, wn = const_node(s, [0.5] * 8, TensorProto.FLOAT)
        r, rn = const_node(s, [2, 1, 2, 2])
        attrs = {rng.choice(["dilations", "strides", "pads", "kernel_shape", "group", "output_padding"]):
                 big if rng.random() < 0.2 else [big] * rng.choice([1, 2, 4])}
        nodes = [w, r, helper.make_node("Reshape", [wn, rn], [wn + "r"]),
                 helper.make_node(kind, [x, wn + "r"], [out], **attrs)]
    elif kind in ("MaxPool", "AveragePool"):
        nodes = [helper.make_node(kind, [x], [out], kernel_shape=[big, 1], strides=[rng.choice([1, 0, -1, big])] * 2,
                                  pads=[rng.choice([0, big, -1])] * 4)]
    elif kind == "Slice":
        st, sn = const_node(s, [rng.choice([I64_MIN, I64_MAX, -big, big])])
        en, enn = const_node(s, [rng.choice([I64_MIN, I64_MAX, big])])
        ax, axn = const_node(s, [rng.choice([0, 1, -1, big])])
        sp, spn = const_node(s, [rng.choice([1, 0, -1, I64_MIN, big])])
        nodes = [st, en, ax, sp, helper.make_node(kind, [x, sn, enn, axn, spn], [out])]
    elif kind == "Gather":
        c, cn = const_node(s, [big, -big, 0])
        nodes = [c, helper.make_node(kind, [x, cn], [out], axis=rng.choice([0, 1, -1, big]))]
    elif kind == "Split":
        c, cn = const_node(s, [big, -big])
        outs = [out, s.new_name("split")]
        nodes = [c, helper.make_node(kind, [x, cn], outs, axis=rng.choice([0, 1, big]))]
    elif kind == "Transpose":
        nodes = [helper.make_node(kind, [x], [out], perm=rng.choice([[0, 0, 1, 1], [big, 0], [], [3, 2, 1, 0, 4]]))]
    elif kind in ("Softmax", "Flatten"):
        nodes = [helper.make_node(kind, [x], [out], axis=big)]
    elif kind == "Concat":
        nodes = [helper.make_node(kind, [x] * rng.choice([1, 2, 1000]), [out], axis=rng.choice([big, 0, 1]))]
    elif kind in ("Unsqueeze", "Squeeze", "ReduceSum"):
        c, cn = const_node(s, [big, big, 0][:rng.choice([1, 2, 3])])
        nodes = [c, helper.make_node(kind, [x, cn], [out])]
    elif kind == "Cast":
        nodes = [helper.make_node(kind, [x], [out], to=rng.choice([0, 7, 8, 99, -1, big]))]
    elif kind == "Gemm":
        nodes = [helper.make_node(kind, [x, x], [out], transA=rng.choice([0, 1, big]), transB=rng.choice([0, 1, -1]))]
    for nd in nodes:
        if not nd.name:
            nd.name = s.new_name("/fuzz/" + nd.op_type)
    g.node.extend(nodes)
    for o in outs:
        g.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
    return "injected %s reading %s with %d" % (kind, x[:40], big)


def om_external(s):
    """An initializer's bytes moved to external data: in the folder, or somewhere it must not be read."""
    g, rng = s.model.graph, s.rng
    inits = [t for t in g.initializer if t.raw_data] or list(g.initializer)
    consts = [a.t for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    pool = inits + consts if rng.random() < 0.8 else consts + inits
    if not pool:
        return None
    t = rng.choice(pool)
    raw = t.raw_data
    for name in ("link", "up", "fifo"):   # from an earlier om_external on this case
        p = os.path.join(s.dir, name)
        if os.path.lexists(p) and not os.path.isdir(p) or os.path.islink(p):
            os.remove(p)
    fname = rng.choice(["weights.bin", "w.data", "sub/w.bin"])
    os.makedirs(os.path.dirname(os.path.join(s.dir, fname)), exist_ok=True)
    off = rng.choice([0, 0, 16, 4096])
    with open(os.path.join(s.dir, fname), "wb") as f:
        f.write(b"\0" * off + raw)
    kind = rng.choice(["valid", "dotdot", "absolute", "symlink", "symlink_dir", "fifo", "dir", "offset", "length",
                       "numbers", "missing", "long", "devices", "dup_keys"])
    entries = {"location": fname, "offset": str(off), "length": str(len(raw))}
    if kind == "dotdot":
        entries["location"] = rng.choice(["../weights.bin", "../../seeds/onnx/cnn_op11.onnx", "sub/../../x",
                                          "./../" + os.path.basename(s.dir) + "/weights.bin", "..", "a/../../..//etc/passwd"])
    elif kind == "absolute":
        entries["location"] = rng.choice(["/etc/passwd", "/proc/self/mem", "/proc/self/environ", "//etc/hostname",
                                          os.path.abspath(os.path.join(s.dir, fname))])
    elif kind == "symlink":
        target = rng.choice(["/etc/passwd", "/etc/hostname", "../..", "../../seeds/onnx/cnn_op11.onnx",
                             "/proc/self/environ", "/dev/zero", "nonexistent", "link"])
        os.symlink(target, os.path.join(s.dir, "link"))
        entries["location"] = "link"
    elif kind == "symlink_dir":
        os.symlink(rng.choice(["/etc", "..", "/"]), os.path.join(s.dir, "up"))
        entries["location"] = rng.choice(["up/passwd", "up/hostname", "up/etc/passwd", "up/seeds/onnx/cnn_op11.onnx"])
    elif kind == "fifo":
        os.mkfifo(os.path.join(s.dir, "fifo"))
        entries["location"] = "fifo"
    elif kind == "dir":
        entries["location"] = rng.choice([".", "sub", "./"])
        os.makedirs(os.path.join(s.dir, "sub"), exist_ok=True)
    elif kind == "offset":
        entries["offset"] = str(rng.choice([I64_MAX, I64_MAX - 3, 2 ** 62, 2 ** 63, 2 ** 64 - 1, 2 ** 32]))
    elif kind == "length":
        entries["length"] = str(rng.choice([I64_MAX, 2 ** 64 - 1, 2 ** 40, 0, len(raw) + 1]))
    elif kind == "numbers":
        entries[rng.choice(["offset", "length"])] = rng.choice(["-1", "0x10", "1e3", "", " 5", "5 ", "+5",
                                                                "99999999999999999999999", "nan"])
    elif kind == "missing":
        del entries[rng.choice(["location", "offset", "length"])]
    elif kind == "long":
        entries["location"] = rng.choice(["a/" * 3000 + "w", "x" * 5000, "%s%n%s", "w\nx"])
    elif kind == "devices":
        entries["location"] = rng.choice(["/dev/zero", "/dev/urandom", "/dev/stdin", "/dev/tty", "/dev/full"])
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    del t.external_data[:]
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    if kind == "dup_keys":
        for k in ("location", "offset", "length", "checksum", "unknown"):
            e = t.external_data.add()
            e.key, e.value = k, rng.choice(["1", "weights.bin", "-1", ""])
    return "initializer %s as external data (%s): %s" % (t.name[:40], kind, {k: v[:40] for k, v in entries.items()})


def om_opset(s):
    m, rng = s.model, s.rng
    r = rng.random()
    if r < 0.6:
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = rng.randint(1, 25)
                return "opset -> %d" % o.version
    if r < 0.75:
        del m.opset_import[:]
        return "no opset imports"
    if r < 0.9:
        o = m.opset_import.add()
        o.domain, o.version = rng.choice([("", 7), ("ai.onnx", 99), ("com.microsoft", 1), ("", -1)])
        return "extra opset import %r %d" % (o.domain, o.version)
    m.ir_version = rng.choice([0, 1, 2, 3, 99, -1])
    return "ir_version -> %d" % m.ir_version


def om_graph_io(s):
    g, rng = s.model.graph, s.rng
    what = rng.choice(["drop_input", "dup_input", "dims", "dims", "elem", "drop_outputs", "undef_output",
                       "many_outputs"])
    if what == "drop_input" and g.input:
        del g.input[rng.randrange(len(g.input))]
    elif what == "dup_input" and g.input:
        g.input.append(g.input[rng.randrange(len(g.input))])
    elif what == "dims" and g.input:
        i = rng.choice(g.input)
        dims = i.type.tensor_type.shape.dim
        if dims and rng.random() < 0.7:
            d = dims[rng.randrange(len(dims))]
            if rng.random() < 0.5:
                d.dim_value = rng.choice([0, -1, 2 ** 40, 2 ** 31, 5, 1])
            else:
                d.dim_param = rng.choice(["", "?", "%s", "n" * 1000])
        else:
            for _ in range(rng.choice([1, 8])):
                dims.add().dim_value = rng.choice([1, 2, 0])
    elif what == "elem" and g.input:
        rng.choice(g.input).type.tensor_type.elem_type = rng.choice([0, 7, 8, 9, 10, 16, 99])
    elif what == "drop_outputs":
        del g.output[:]
    elif what == "undef_output":
        g.output.append(helper.make_tensor_value_info(rng.choice(["nope", "", "x"]), TensorProto.FLOAT, None))
    elif what == "many_outputs":
        v = rng.choice(s.values())
        for _ in range(rng.choice([2, 1000])):
            g.output.append(helper.make_tensor_value_info(v, TensorProto.FLOAT, None))
    else:
        return None
    return "graph io: " + what


ONNX_MUTATORS = [om_node_io] * 4 + [om_op_type] * 3 + [om_attr] * 5 + [om_names] * 2 + [om_many_nodes] + \
                [om_initializer] * 3 + [om_shape_const] * 3 + [om_inject] * 5 + [om_external] * 4 + [om_opset] * 2 + \
                [om_graph_io] * 2


def byte_mutate(rng, data):
    """A few raw byte mutations of a serialized protobuf."""
    b = bytearray(data)
    done = []
    for _ in range(rng.choice([1, 2, 4])):
        if not b:
            break
        k = rng.randrange(len(b))
        r = rng.random()
        if r < 0.4:
            b[k] = rng.randrange(256)
            done.append("byte %d" % k)
        elif r < 0.6:
            b[k:k] = rng.choice([b"\xff" * 9 + b"\x01", b"\x80" * 10, b"\x0a\xff\xff\xff\xff\x0f", b"\x00"])
            done.append("varint at %d" % k)
        elif r < 0.75:
            del b[k:k + rng.choice([1, 4, 64])]
            done.append("deleted at %d" % k)
        elif r < 0.9:
            n = rng.choice([8, 64, 512])
            b[k:k] = b[k:k + n]
            done.append("repeated %d at %d" % (n, k))
        else:
            del b[k:]
            done.append("cut at %d" % k)
    return bytes(b), done


def mutate_onnx(rng, seed, out, case_dir):
    m = onnx.ModelProto()
    with open(seed, "rb") as f:
        m.ParseFromString(f.read())
    s = OnnxState(rng, m, case_dir)
    done = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        for _ in range(10):
            f = rng.choice(ONNX_MUTATORS)
            d = f(s)
            if d:
                done.append("%s: %s" % (f.__name__, d))
                break
    data = m.SerializeToString()
    if rng.random() < 0.1:
        data, d = byte_mutate(rng, data)
        done.append("om_bytes: " + ", ".join(d))
    with open(out, "wb") as f:
        f.write(data)
    return done

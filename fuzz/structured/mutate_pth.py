"""fuzz/structured/mutate_pth.py — torch.save files: the zip layout (rewritten by the zip writer
here, so any field can lie) and the legacy layout (five pickles, then per storage an 8-byte
element count and its bytes).

ZIP_MUTATORS: data.pkl through mutate_pickle; entries removed, duplicated, renamed (to names
that are not UTF-8 too), storages truncated or extended, entries compressed with deflate,
bzip2 or lzma, decompression bombs (a storage or data.pkl of gigabytes of zeros in a few KB,
with the pickle asking for all of it or not), local and central headers that lie (sizes, CRC,
method, flags, extra fields, offsets), the end of central directory lying (counts, offset,
comment), a byteorder entry, 20,000 entries.  The legacy mutators: the pickles through
mutate_pickle (mostly the object's), the element counts, the storage bytes cut or extended.
"""
import bz2
import io
import os
import pickle
import struct
import zipfile
import zlib

from mutate_pickle import (ELEM_SIZE, Ctx, emit, enc_int, mutate_pickle, pack_len, parse_pickle,
                           persid_positions, pid_elements, probe_storages)

# ---------------------------------------------------------------------------------------------
# zip archives
# ---------------------------------------------------------------------------------------------
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14


def compress(method, data):
    if method == DEFLATED:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if method == BZIP2:
        return bz2.compress(data)
    if method == LZMA:
        c = zipfile.LZMACompressor()
        return c.compress(data) + c.flush()
    return data


class Entry:
    def __init__(self, name, data, method=STORED):
        self.name = name if isinstance(name, bytes) else name.encode()
        self.method = method
        self.set_data(data)
        self.flags = 0x800 if any(b >= 0x80 for b in self.name) else 0
        self.extra = b""
        self.local = {}     # fields of the local header that lie (differ from the central one)
        self.central = {}   # fields of the central directory entry that lie

    def set_data(self, data):
        self.data = data   # the uncompressed bytes; None once set_comp put in something else
        self.usize = len(data)
        self.crc = zlib.crc32(data)
        self.comp = compress(self.method, data)

    def set_comp(self, method, comp, usize, crc, data=None):
        self.method, self.comp, self.usize, self.crc, self.data = method, comp, usize, crc, data


def write_zip(entries, eocd=None, tail=b""):
    """A zip archive of entries (already compressed); eocd overrides end-of-central-directory fields."""
    out = io.BytesIO()
    offsets = []
    for e in entries:
        offsets.append(out.tell())
        f = dict(version=20 if e.method in (STORED, DEFLATED) else 63, flags=e.flags | (2 if e.method == LZMA else 0),
                 method=e.method, crc=e.crc, csize=len(e.comp), usize=e.usize, name=e.name, extra=e.extra)
        f.update(e.local)
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\3\4", f["version"], f["flags"], f["method"], 0, 0x21,
                              f["crc"] & 0xFFFFFFFF, f["csize"] & 0xFFFFFFFF, f["usize"] & 0xFFFFFFFF,
                              len(f["name"]) & 0xFFFF, len(f["extra"]) & 0xFFFF))
        out.write(f["name"] + f["extra"])
        out.write(e.comp)
    cd_start = out.tell()
    for e, off in zip(entries, offsets):
        f = dict(version=20 if e.method in (STORED, DEFLATED) else 63, flags=e.flags | (2 if e.method == LZMA else 0),
                 method=e.method, crc=e.crc, csize=len(e.comp), usize=e.usize, name=e.name, extra=e.extra,
                 offset=off, comment=b"")
        f.update(e.central)
        out.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\1\2", 0x31e, f["version"], f["flags"], f["method"], 0, 0x21,
                              f["crc"] & 0xFFFFFFFF, f["csize"] & 0xFFFFFFFF, f["usize"] & 0xFFFFFFFF,
                              len(f["name"]) & 0xFFFF, len(f["extra"]) & 0xFFFF, len(f["comment"]) & 0xFFFF, 0, 0,
                              0o100644 << 16, f["offset"] & 0xFFFFFFFF))
        out.write(f["name"] + f["extra"] + f["comment"])
    cd_end = out.tell()
    f = dict(count=len(entries), total=len(entries), size=cd_end - cd_start, offset=cd_start, comment=b"",
             comment_len=None)
    f.update(eocd or {})
    clen = len(f["comment"]) if f["comment_len"] is None else f["comment_len"]
    out.write(struct.pack("<4sHHHHIIH", b"PK\5\6", 0, 0, f["count"] & 0xFFFF, f["total"] & 0xFFFF,
                          f["size"] & 0xFFFFFFFF, f["offset"] & 0xFFFFFFFF, clen & 0xFFFF))
    out.write(f["comment"])
    out.write(tail)
    return out.getvalue()


# ---- decompression bombs: streams of zeros that inflate to gigabytes --------------------------
BOMB_SIZE = 3 << 30   # deflate: built from one repeated block, so any size is cheap
_bomb_cache = {}


def deflate_bomb(size=BOMB_SIZE):
    """A raw deflate stream of `size` zero bytes (size a multiple of 1 MiB), about size/1000 bytes."""
    if size in _bomb_cache:
        return _bomb_cache[size]
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    mid = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    n = size >> 20
    s = first + mid * (n - 1) + c.flush()
    _bomb_cache[size] = s
    return s


def stored_bomb_files(bomb_dir):
    """The bzip2 and lzma bombs seeds.py made (slow to make, so made once): [(method, bytes, size)]."""
    got = []
    for name, method in (("zeros.bz2", BZIP2), ("zeros.zip-lzma", LZMA)):
        p = os.path.join(bomb_dir, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                data = f.read()
            size = int(open(p + ".size").read())
            got.append((method, data, size))
    return got


def zip_entries(path):
    z = zipfile.ZipFile(path)
    return [Entry(i.filename, z.read(i)) for i in z.infolist()]


def find_entry(entries, suffix):
    for e in entries:
        if e.name.endswith(suffix):
            return e
    return None


def storage_entries(entries):
    return [e for e in entries if b"/data/" in e.name]


# ---- zip mutators: (rng, entries, state) -> description --------------------------------------
def zm_pickle(rng, entries, st):
    e = find_entry(entries, b"/data.pkl")
    if not e or not st.get("pkl"):
        return None
    new, _, done = mutate_pickle(rng, st["pkl"], Ctx(False, st["storages"]))
    if not done:
        return None
    st["pkl"] = new
    e.set_data(new)
    return "data.pkl: " + "; ".join(done)


def zm_remove(rng, entries, st):
    if not entries:
        return None
    e = entries.pop(rng.randrange(len(entries)))
    return "removed entry %r" % e.name


def zm_duplicate(rng, entries, st):
    if not entries:
        return None
    e = rng.choice(entries)
    d = Entry(e.name, b"\x00" * rng.choice([0, 4, 100]) if rng.random() < 0.5 else b"")
    if rng.random() < 0.5:
        d.set_comp(e.method, e.comp, e.usize, e.crc, e.data)
    entries.insert(rng.randrange(len(entries) + 1), d)
    return "duplicated entry %r" % e.name


def zm_rename(rng, entries, st):
    if not entries:
        return None
    e = rng.choice(entries)
    old = e.name
    prefix = old.split(b"/")[0]
    e.name = rng.choice([b"other/" + old.split(b"/", 1)[-1], prefix + b"/data/\xff\xfe", b"\xff/data.pkl",
                         prefix + b"/../data.pkl", b"/" + old, b"", prefix + b"/data/" + b"9" * 300,
                         prefix + b"/data/0/../1", old + b"\x00", old.upper(), b"a/b/" + old, prefix + b"\\data.pkl",
                         prefix + b"/data/%s%n"])
    e.flags = 0x800 if rng.random() < 0.5 else 0
    return "renamed %r -> %r" % (old, e.name[:40])


def zm_resize_storage(rng, entries, st):
    es = storage_entries(entries)
    if not es:
        return None
    e = rng.choice(es)
    data = e.data
    if data is None:   # a bomb
        return None
    n = rng.choice([0, 1, len(data) // 2, len(data) - 1, len(data) + 1, len(data) * 3, len(data) + 4096])
    data = (data * (n // max(1, len(data)) + 1))[:n] if n > len(data) else data[:n]
    e.set_data(data)
    return "storage %r now %d bytes" % (e.name, n)


def zm_compress(rng, entries, st):
    es = [e for e in entries if e.method == STORED]
    if not es:
        return None
    e = rng.choice(es)
    m = rng.choice([DEFLATED, BZIP2, LZMA])
    e.set_comp(m, compress(m, e.comp), e.usize, e.crc, e.data)
    return "entry %r compressed with method %d" % (e.name, m)


def zm_bomb(rng, entries, st):
    """A storage (or data.pkl) replaced by zeros that inflate to gigabytes."""
    es = storage_entries(entries) if rng.random() < 0.8 else [find_entry(entries, b"/data.pkl")]
    es = [e for e in es if e]
    if not es:
        return None
    e = rng.choice(es)
    bombs = [(DEFLATED, deflate_bomb(), BOMB_SIZE)] + stored_bomb_files(st["bomb_dir"])
    method, comp, size = rng.choice(bombs)
    declared = rng.choice([size, size, e.usize, e.usize + 1, 0, 2 ** 32 - 1])
    e.set_comp(method, comp, declared, zlib.crc32(b"") if declared == 0 else rng.randrange(2 ** 32))
    what = "entry %r: a %d-byte bomb (method %d) of %d bytes, declared %d" % (e.name, len(comp), method, size, declared)
    # and make the pickle ask for all of it now and then
    if b"/data/" in e.name and st.get("pkl") and rng.random() < 0.5:
        key = e.name.rsplit(b"/", 1)[-1].decode("utf-8", "replace")
        try:
            ops, _ = parse_pickle(st["pkl"])
        except Exception:
            return what
        for q in persid_positions(ops):
            el = pid_elements(ops, q)
            if el and len(el) >= 5 and ops[el[2]].arg == key:
                ops[el[4]] = enc_int(size // 4)
        st["pkl"] = emit(ops)
        pe = find_entry(entries, b"/data.pkl")
        if pe:
            pe.set_data(st["pkl"])
        what += ", numel %d in data.pkl" % (size // 4)
    return what


def zm_header_lie(rng, entries, st):
    if not entries:
        return None
    e = rng.choice(entries)
    where = rng.choice(["local", "central"])
    field = rng.choice(["crc", "csize", "usize", "method", "flags", "name", "extra", "offset", "version"])
    if where == "local" and field == "offset":
        field = "csize"
    val = {"crc": rng.randrange(2 ** 32), "csize": rng.choice([0, 1, len(e.comp) + 1, 2 ** 32 - 1, len(e.comp) // 2]),
           "usize": rng.choice([0, 1, e.usize + 1, 2 ** 32 - 1, e.usize // 2, 2 ** 31]),
           "method": rng.choice([1, 6, 9, 12, 14, 93, 95, 98, 99, 0xFFFF]),
           "flags": rng.choice([1, 8, 0x40, 0x2000, 0xFFFF]),
           "name": rng.choice([b"", b"x", e.name + b"x", b"\xff" * 300]),
           "extra": rng.choice([b"\x01\x00\x1c\x00" + b"\xff" * 28, b"\x01\x00\x08\x00" + struct.pack("<Q", 2 ** 63),
                                b"\x55\x54\xff\xff", b"\x00" * 3, b"\x99\x99\x04\x00abcd"]),
           "offset": rng.choice([0, 1, 2 ** 32 - 1, 2 ** 31, 100000]),
           "version": rng.choice([0, 45, 63, 0xFFFF])}[field]
    getattr(e, where)[field] = val
    return "%s header of %r: %s = %r" % (where, e.name, field, val if not isinstance(val, bytes) else val[:12])


def zm_eocd(rng, entries, st):
    field = rng.choice(["count", "total", "size", "offset", "comment_len", "comment"])
    val = {"count": rng.choice([0, 1, 65535, len(entries) + 1]), "total": rng.choice([0, 65535, len(entries) + 1]),
           "size": rng.choice([0, 1, 2 ** 32 - 1, 46]), "offset": rng.choice([0, 1, 2 ** 32 - 1, 2 ** 31]),
           "comment_len": rng.choice([1, 100, 65535]), "comment": rng.choice([b"PK\5\6" + b"\0" * 18, b"x" * 1000])}[field]
    st.setdefault("eocd", {})[field] = val
    return "end of central directory: %s = %r" % (field, val if not isinstance(val, bytes) else val[:8])


def zm_byteorder(rng, entries, st):
    pe = find_entry(entries, b"/data.pkl")
    if not pe:
        return None
    prefix = pe.name[:-len(b"/data.pkl")]
    val = rng.choice([b"little", b"big", b"", b"x" * 100000, b"little\x00"])
    entries.append(Entry(prefix + b"/byteorder", val, rng.choice([STORED, DEFLATED])))
    return "byteorder entry %r" % val[:12]


def zm_many(rng, entries, st):
    pe = find_entry(entries, b"/data.pkl")
    prefix = pe.name[:-len(b"/data.pkl")] if pe else b"x"
    n = rng.choice([1000, 1000, 20000])
    empty = Entry(prefix + b"/data/extra", b"")
    for k in range(n):
        e = Entry.__new__(Entry)
        e.__dict__.update(empty.__dict__)
        e.name = prefix + b"/data/extra%d" % k
        entries.append(e)
    return "%d extra entries" % n


ZIP_MUTATORS = [zm_pickle] * 8 + [zm_remove, zm_duplicate, zm_rename, zm_resize_storage, zm_resize_storage,
                                  zm_compress, zm_compress, zm_bomb, zm_bomb, zm_header_lie, zm_header_lie, zm_eocd,
                                  zm_byteorder, zm_many]


def mutate_zip_pth(rng, seed, out, bomb_dir):
    entries = zip_entries(seed)
    st = {"bomb_dir": bomb_dir}
    pe = find_entry(entries, b"/data.pkl")
    if pe:
        pkl = zipfile.ZipFile(seed).read(pe.name.decode())
        _, storages, _ = probe_storages(pkl)
        st.update(pkl=pkl, storages=storages)
    done = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        for _ in range(10):
            f = rng.choice(ZIP_MUTATORS)
            d = f(rng, entries, st)
            if d:
                done.append("%s: %s" % (f.__name__, d))
                break
    data = write_zip(entries, st.get("eocd"), tail=b"" if rng.random() < 0.95 else b"\0" * 10)
    if rng.random() < 0.05:
        k = rng.randrange(len(data))
        data = data[:k]
        done.append("zm_cut: archive cut at %d bytes" % k)
    with open(out, "wb") as f:
        f.write(data)
    return done


# ---------------------------------------------------------------------------------------------
# legacy torch.save files: five pickles, then per storage an 8-byte count and the bytes
# ---------------------------------------------------------------------------------------------
def split_legacy(data):
    pickles, pos = [], 0
    storages = []
    for k in range(5):
        start = pos
        if k == 3:
            _, storages, _ = probe_storages(data, start)
        _, pos = parse_pickle(data, start)
        pickles.append(data[start:pos])
    keys = pickle.loads(pickles[4])
    return pickles, storages, keys, data[pos:]


def mutate_legacy_pth(rng, seed, out):
    with open(seed, "rb") as f:
        data = f.read()
    pickles, storages, keys, rest = split_legacy(data)
    done = []
    for _ in range(rng.choice([1, 1, 2])):
        r = rng.random()
        if r < 0.6:
            k = rng.choice([3, 3, 3, 3, 3, 3, 0, 1, 2, 4])
            new, _, d = mutate_pickle(rng, pickles[k], Ctx(True, storages))
            if not d:
                continue
            pickles[k] = new
            done.append("lm_pickle %d: %s" % (k, "; ".join(d)))
        elif r < 0.85 and keys:
            # the 8-byte counts: walk the storages in key order
            sizes = {key: ELEM_SIZE.get(ty, 4) for ty, key, _ in storages}
            pos, spans = 0, []
            for key in keys:
                if pos + 8 > len(rest):
                    break
                n = struct.unpack_from("<q", rest, pos)[0]
                spans.append((pos, n))
                pos += 8 + max(0, n) * sizes.get(key, 4)
            if not spans:
                continue
            at, n = rng.choice(spans)
            v = rng.choice([-1, -2 ** 63, 2 ** 63 - 1, n + 1, n - 1, 0, 2 ** 62, 2 ** 31, 2 ** 61 + 1, n * 2 + 1])
            rest = rest[:at] + pack_len("<q", v) + rest[at + 8:]
            done.append("lm_count: storage count %d -> %d" % (n, v))
        else:
            k = rng.choice([0, 1, len(rest) // 2, max(0, len(rest) - 1), len(rest) + 1])
            rest = rest[:k] if k <= len(rest) else rest + b"\x7f" * rng.choice([1, 8, 4096])
            done.append("lm_bytes: storage bytes cut or extended to %d" % len(rest))
    with open(out, "wb") as f:
        f.write(b"".join(pickles) + rest)
    return done

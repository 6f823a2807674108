"""fuzz/structured/mutate.py — the structured fuzzer's mutators (Python 3 standard library and
python3-onnx; no torch), in mutate_pickle.py, mutate_pth.py and mutate_onnx.py.  fuzz/structured/drive.py calls make_case(); each mutator knows the
format it mutates, so the cases get past the first checks and into the code behind them:

  .pth, zip layout   data.pkl is parsed with pickletools.genops into its opcodes and re-emitted
      mutated (see PICKLE_MUTATORS: ints at the edges, lying string lengths, opcodes deleted,
      duplicated or swapped, deep nesting, self-containing lists and dicts,
      _rebuild_from_type_v2 called with its own arguments, hostile storage types, keys, element
      counts, offsets, sizes and strides); the archive is rewritten by our own zip writer, so
      entries can be removed, duplicated, renamed (to names that are not UTF-8, too), stored
      with bzip2, lzma or deflate (decompression bombs of gigabytes among them), truncated or
      extended, and the central directory can lie (ZIP_MUTATORS).
  .pth, legacy       the same pickle mutations on each of its five pickles, and lies in the
      8-byte element counts before each storage.
  .onnx              the model is loaded with onnx and changed as a graph (ONNX_MUTATORS: node
      inputs and outputs, op types, attributes of the wrong type or size, hostile names,
      initializers with wrong dtypes or dims, int64 shape constants at 2^40 feeding
      ConstantOfShape/Expand/Range/Resize/Tile/Reshape, external data outside the folder, through
      a symlink, from a FIFO, at offsets near INT64_MAX, opsets 1 to 25), now and then followed
      by raw byte mutations of the serialized protobuf.

make_case(rng, seed_path, case_dir) writes the case (its main file and whatever it needs
beside it: external data, symlinks, FIFOs) into case_dir and returns (kind, main file,
list of what was done).  Everything it writes stays inside case_dir.
"""
import os

from mutate_onnx import mutate_onnx
from mutate_pth import mutate_legacy_pth, mutate_zip_pth


def seed_kind(path):
    if path.endswith(".onnx"):
        return "onnx"
    with open(path, "rb") as f:
        head = f.read(4)
    return "pth zip" if head == b"PK\3\4" else "pth legacy"


def make_case(rng, seed, case_dir, bomb_dir):
    """Writes a mutated copy of seed into case_dir -> (kind, main file path, descriptions)."""
    os.makedirs(case_dir, exist_ok=True)
    kind = seed_kind(seed)
    if kind == "onnx":
        out = os.path.join(case_dir, "model.onnx")
        done = mutate_onnx(rng, seed, out, case_dir)
    elif kind == "pth zip":
        out = os.path.join(case_dir, os.path.basename(seed))   # the archive's folder is the seed's name
        done = mutate_zip_pth(rng, seed, out, bomb_dir)
    else:
        out = os.path.join(case_dir, "x.pth")
        done = mutate_legacy_pth(rng, seed, out)
    return kind, out, done

// bench/lib/ort_forward.js — ONNX Runtime's CPU forward time of an ONNX model, for the ratios of
// bench/forward_bench.lua measured in the same run:
//     node bench/lib/ort_forward.js MODEL.onnx BATCH SIZE THREADS REPEATS
// Prints "seconds" (the best of REPEATS runs after one warm-up).  onnxruntime-node comes from the
// npm registry (bench/forward_bench.lua installs it under build/ort); its CPU library is in the
// package itself, so its install script (which fetches GPU parts) is not run.
const ort = require("onnxruntime-node");

async function main() {
  const [path, batch, size, threads, repeats] = process.argv.slice(2);
  const n = +batch, s = +size;
  const sess = await ort.InferenceSession.create(path, {
    intraOpNumThreads: +threads, interOpNumThreads: 1, executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  const data = new Float32Array(n * 3 * s * s);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.001);
  const feeds = { [sess.inputNames[0]]: new ort.Tensor("float32", data, [n, 3, s, s]) };
  await sess.run(feeds);
  let best = Infinity;
  for (let r = 0; r < +repeats; r++) {
    const t = process.hrtime.bigint();
    await sess.run(feeds);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  console.log(best.toFixed(6));
}
main().catch((e) => { console.error(String(e)); process.exit(1); });

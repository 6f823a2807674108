// nnvis board — t-SNE in a Web Worker (van der Maaten & Hinton 2008).  Input affinities P over
// each point's 3*perplexity nearest neighbours (sigma found by bisection so that the row's
// entropy is log(perplexity), eq. 1 and the perplexity definition of section 2); the gradient's
// repulsion is exact over all pairs (eq. 5, O(n^2) per iteration: fine up to 5,000 points).
// Posts the 2-D layout every few iterations so the page redraws as it goes.
//   in:  {X: Float64Array(n*d), n, d, perplexity, iterations}
//   out: {Y: Float64Array(2n), iter, done}
'use strict';

self.onmessage = (msg) => {
  const { X, n, d, perplexity = 30, iterations = 1000 } = msg.data;
  const k = Math.min(n - 1, Math.max(3, Math.floor(3 * perplexity)));
  // ---- neighbours and conditional affinities p_j|i --------------------------------------------
  const nbr = new Int32Array(n * k), pv = new Float64Array(n * k), dist = new Float64Array(n);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) { const u = X[i * d + t] - X[j * d + t]; s += u * u; }
      dist[j] = j === i ? Infinity : s;
      idx[j] = j;
    }
    const order = Array.from(idx).sort((a, b) => dist[a] - dist[b]).slice(0, k);
    const dk = order.map((j) => dist[j]);
    // bisection on beta = 1/(2 sigma^2) for the row's entropy H = log(perplexity)
    let beta = 1, lo = 0, hi = Infinity;
    const target = Math.log(perplexity);
    let p = new Float64Array(k);
    for (let it = 0; it < 60; it++) {
      let sum = 0;
      for (let t = 0; t < k; t++) { p[t] = Math.exp(-(dk[t] - dk[0]) * beta); sum += p[t]; }
      let H = 0;
      for (let t = 0; t < k; t++) { p[t] /= sum; if (p[t] > 1e-12) H -= p[t] * Math.log(p[t]); }
      if (Math.abs(H - target) < 1e-5) break;
      if (H > target) { lo = beta; beta = hi === Infinity ? beta * 2 : (beta + hi) / 2; }
      else { hi = beta; beta = (beta + lo) / 2; }
    }
    for (let t = 0; t < k; t++) { nbr[i * k + t] = order[t]; pv[i * k + t] = p[t]; }
  }
  // symmetrise: p_ij = (p_j|i + p_i|j) / 2n, as a list of edges
  const P = new Map();
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const j = nbr[i * k + t], a = Math.min(i, j), b = Math.max(i, j), key = a * n + b;
      P.set(key, (P.get(key) || 0) + pv[i * k + t] / (2 * n));
    }
  }
  const E = P.size, ei = new Int32Array(E), ej = new Int32Array(E), ep = new Float64Array(E);
  let e = 0;
  for (const [key, v] of P) { ei[e] = Math.floor(key / n); ej[e] = key % n; ep[e] = v; e++; }

  // ---- gradient descent with momentum and gains ------------------------------------------------
  const Y = new Float64Array(2 * n), dY = new Float64Array(2 * n), vel = new Float64Array(2 * n), gains = new Float64Array(2 * n).fill(1);
  let seed = 42;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 - 0.5; };
  for (let i = 0; i < 2 * n; i++) Y[i] = rnd() * 1e-2;
  const lr = Math.max(50, n / 12);
  for (let iter = 1; iter <= iterations; iter++) {
    const exag = iter < 250 ? 12 : 1, mom = iter < 250 ? 0.5 : 0.8;
    dY.fill(0);
    // repulsion: sum_j q_ij^2 Z (y_i - y_j), with q_ij Z = 1/(1+|y_i-y_j|^2) (eq. 5)
    let Z = 0;
    for (let i = 0; i < n; i++) {
      const xi = Y[2 * i], yi = Y[2 * i + 1];
      for (let j = i + 1; j < n; j++) {
        const dx = xi - Y[2 * j], dy = yi - Y[2 * j + 1], q = 1 / (1 + dx * dx + dy * dy);
        Z += 2 * q;
        const q2 = q * q;
        dY[2 * i] -= q2 * dx; dY[2 * i + 1] -= q2 * dy; dY[2 * j] += q2 * dx; dY[2 * j + 1] += q2 * dy;
      }
    }
    for (let i = 0; i < 2 * n; i++) dY[i] /= Z;
    // attraction: sum_j p_ij q_ij Z (y_i - y_j)
    for (let t = 0; t < E; t++) {
      const i = ei[t], j = ej[t], dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
      const f = exag * ep[t] / (1 + dx * dx + dy * dy);
      dY[2 * i] += f * dx; dY[2 * i + 1] += f * dy; dY[2 * j] -= f * dx; dY[2 * j + 1] -= f * dy;
    }
    for (let i = 0; i < 2 * n; i++) {
      const g = 4 * dY[i];
      gains[i] = Math.sign(g) === Math.sign(vel[i]) ? gains[i] * 0.8 : gains[i] + 0.2;
      if (gains[i] < 0.01) gains[i] = 0.01;
      vel[i] = mom * vel[i] - lr * gains[i] * g;
      Y[i] += vel[i];
    }
    if (iter % 10 === 0 || iter === iterations) {
      // centre, and send a copy
      let mx = 0, my = 0;
      for (let i = 0; i < n; i++) { mx += Y[2 * i] / n; my += Y[2 * i + 1] / n; }
      for (let i = 0; i < n; i++) { Y[2 * i] -= mx; Y[2 * i + 1] -= my; }
      self.postMessage({ Y: Y.slice(), iter, done: iter === iterations });
    }
  }
};

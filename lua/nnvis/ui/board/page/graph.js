// nnvis graph drawing — shared by the board's graph tab and the model viewer (nnvis view): a
// layered layout of a directed graph (Sugiyama's way: longest-path layers, long edges broken into
// virtual nodes, barycentre ordering sweeps, x by isotonic regression so chains run straight),
// edge paths, wheel zoom / drag pan on an SVG's viewBox, and the two element makers (el, sv).  Plain ES2020, no build step;
// it defines window.nnvisGraph and nothing else.
'use strict';

(() => {
  const SVGNS = 'http://www.w3.org/2000/svg';
  // an HTML element: attributes (class, text, on<event> listeners, others as attributes) and children
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  // weighted isotonic regression (pool adjacent violators): the non-decreasing y nearest to d,
  // in least squares weighted by w
  function isotonic(d, w) {
    const val = [], wt = [], cnt = [];
    d.forEach((v, i) => {
      val.push(v); wt.push(w[i]); cnt.push(1);
      while (val.length > 1 && val[val.length - 2] > val[val.length - 1]) {
        const c = cnt.pop(), v2 = val.pop(), w2 = wt.pop(), k = val.length - 1;
        val[k] = (val[k] * wt[k] + v2 * w2) / (wt[k] + w2); wt[k] += w2; cnt[k] += c;
      }
    });
    const out = [];
    val.forEach((v, i) => { for (let k = 0; k < cnt[i]; k++) out.push(v); });
    return out;
  }

  // layout(nodes, opts): nodes [{id, preds: [ids], w, h}] -> {pos: Map id -> {x (centre), y (top),
  // w, h, layer}, edges: [{from, to, points: [[x, y], ...]}], width, height, layerOf}.
  // opts: gapX, gapY, margin; extraSep(idA, idB) -> more room between two neighbours of a layer;
  // spaceAbove(layer, layerOf) -> more room above a layer.  Cycles are cut where first met.
  function layout(nodes, opts = {}) {
    const gapX = opts.gapX ?? 26, gapY = opts.gapY ?? 40, margin = opts.margin ?? 12;
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const preds = new Map(nodes.map((n) => [n.id, [...new Set((n.preds || []).filter((p) => byId.has(p) && p !== n.id))]]));
    const succs = new Map(nodes.map((n) => [n.id, []]));
    // layers: the longest path from a source; a cycle is cut at the edge that closes it
    const layerOf = new Map(), visiting = new Set();
    const depth = (id) => {
      if (layerOf.has(id)) return layerOf.get(id);
      visiting.add(id);
      let l = 0;
      const kept = [];
      for (const p of preds.get(id)) {
        if (visiting.has(p)) continue;
        kept.push(p); l = Math.max(l, depth(p) + 1);
      }
      preds.set(id, kept);
      visiting.delete(id); layerOf.set(id, l);
      return l;
    };
    for (const n of nodes) depth(n.id);
    for (const [id, ps] of preds) for (const p of ps) succs.get(p).push(id);
    // a source (a constant, a weight) sits just above its first consumer, not at the top
    for (const n of nodes) {
      const ss = succs.get(n.id);
      if (!preds.get(n.id).length && ss.length) layerOf.set(n.id, Math.max(0, Math.min(...ss.map((s) => layerOf.get(s))) - 1));
    }
    // virtual nodes along every edge longer than one layer
    const V = new Map();       // id -> {id, w, h, virtual, up: [ids], down: [ids]}
    for (const n of nodes) V.set(n.id, { id: n.id, w: n.w, h: n.h, up: [], down: [], layer: layerOf.get(n.id) });
    const chains = [];
    let vk = 0;
    for (const n of nodes) {
      for (const p of preds.get(n.id)) {
        let prev = p;
        const via = [];
        for (let l = layerOf.get(p) + 1; l < layerOf.get(n.id); l++) {
          const id = `\u0000v${vk++}`;
          V.set(id, { id, w: 0, h: 0, virtual: true, up: [prev], down: [], layer: l });
          V.get(prev).down.push(id);
          via.push(id); prev = id;
        }
        V.get(prev).down.push(n.id); V.get(n.id).up.push(prev);
        chains.push({ from: p, to: n.id, via });
      }
    }
    const nl = Math.max(0, ...[...V.values()].map((v) => v.layer)) + 1;
    const layers = Array.from({ length: nl }, () => []);
    for (const v of V.values()) layers[v.layer].push(v);        // real nodes first, in the given order
    const order = new Map();
    const number = () => layers.forEach((L) => L.forEach((v, i) => order.set(v.id, i)));
    number();
    // barycentre sweeps, down then up; ties keep the current order (stable sort)
    for (let it = 0; it < 4; it++) {
      for (const [dir, range] of [['up', [...Array(nl).keys()].slice(1)], ['down', [...Array(nl).keys()].reverse().slice(1)]]) {
        for (const l of range) {
          const key = new Map(layers[l].map((v) => {
            const ns = v[dir];
            return [v.id, ns.length ? ns.reduce((a, u) => a + order.get(u), 0) / ns.length : order.get(v.id)];
          }));
          layers[l].sort((a, b) => key.get(a.id) - key.get(b.id));
          layers[l].forEach((v, i) => order.set(v.id, i));
        }
      }
    }
    // x: each layer placed nearest its neighbours' mean under the order and minimum separations
    const sep = (a, b) => (a.w + b.w) / 2 + (a.virtual && b.virtual ? 10 : a.virtual || b.virtual ? gapX / 2 + 4 : gapX) +
      (!a.virtual && !b.virtual && opts.extraSep ? opts.extraSep(a.id, b.id) : 0);
    const X = new Map();
    for (const L of layers) {
      let x = 0;
      L.forEach((v, i) => { if (i) x += sep(L[i - 1], v); X.set(v.id, x); });
      const mid = x / 2;
      for (const v of L) X.set(v.id, X.get(v.id) - mid);
    }
    const place = (L, dir) => {
      if (!L.length) return;
      // virtual nodes pull and weigh little: chains of real boxes run straight, long edges bend
      const wOf = (id) => (V.get(id).virtual ? 0.05 : 1);
      const want = L.map((v) => {
        const ns = v[dir];
        if (!ns.length) return X.get(v.id);
        let sw = 0, sx = 0;
        for (const u of ns) { sw += wOf(u); sx += wOf(u) * X.get(u); }
        return sx / sw;
      });
      const off = [0];
      for (let i = 1; i < L.length; i++) off.push(off[i - 1] + sep(L[i - 1], L[i]));
      const y = isotonic(want.map((w, i) => w - off[i]), L.map((v) => wOf(v.id)));
      L.forEach((v, i) => X.set(v.id, y[i] + off[i]));
    };
    for (let it = 0; it < 8; it++) {
      for (let l = 1; l < nl; l++) place(layers[l], 'up');
      for (let l = nl - 2; l >= 0; l--) place(layers[l], 'down');
    }
    for (let l = 1; l < nl; l++) place(layers[l], 'up');
    // y: each layer as tall as its tallest box
    let minX = Infinity, maxX = -Infinity;
    for (const v of V.values()) { minX = Math.min(minX, X.get(v.id) - v.w / 2); maxX = Math.max(maxX, X.get(v.id) + v.w / 2); }
    const shift = margin - minX, top = [], lh = [];
    let y = margin;
    for (let l = 0; l < nl; l++) {
      if (l) y += gapY;
      y += opts.spaceAbove ? opts.spaceAbove(l, layerOf) : 0;
      top[l] = y; lh[l] = Math.max(0, ...layers[l].map((v) => v.h));
      y += lh[l];
    }
    const pos = new Map();
    for (const n of nodes) {
      const v = V.get(n.id);
      pos.set(n.id, { x: X.get(n.id) + shift, y: top[v.layer], w: n.w, h: n.h, layer: v.layer });
    }
    const edges = chains.map(({ from, to, via }) => {
      const a = pos.get(from), b = pos.get(to), pts = [[a.x, a.y + a.h]];
      for (const id of via) { const v = V.get(id), x = X.get(id) + shift; pts.push([x, top[v.layer]], [x, top[v.layer] + lh[v.layer]]); }
      pts.push([b.x, b.y]);
      return { from, to, points: pts };
    });
    return { pos, edges, layerOf, width: maxX - minX + 2 * margin, height: y + margin };
  }

  // an SVG path through points: straight where x stays, an S-curve with vertical ends where it moves
  function edgePath(pts) {
    let d = `M${pts[0][0].toFixed(1)},${pts[0][1].toFixed(1)}`;
    for (let i = 1; i < pts.length; i++) {
      const [x1, y1] = pts[i - 1], [x2, y2] = pts[i];
      if (Math.abs(x1 - x2) < 0.5) d += `L${x2.toFixed(1)},${y2.toFixed(1)}`;
      else { const my = (y1 + y2) / 2; d += `C${x1.toFixed(1)},${my.toFixed(1)} ${x2.toFixed(1)},${my.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`; }
    }
    return d;
  }

  // wheel zoom around the pointer, drag pan, double-click reset, on an SVG's viewBox (drawn with
  // preserveAspectRatio xMidYMid meet).  box: the view at start and after reset.  Returns
  // {reset(box?), centre(x, y, unitsPerPixel?), view()}.  A drag that moved sets svg.dataset.dragged.
  function zoomPan(svg, box, opts = {}) {
    let home = { ...box }, vb = { ...box }, drag = null;
    const set = () => { svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`); if (opts.onChange) opts.onChange(vb); };
    const scale = () => { const r = svg.getBoundingClientRect(); return Math.max(vb.w / (r.width || 1), vb.h / (r.height || 1)); };
    const at = (e) => {
      const r = svg.getBoundingClientRect(), s = scale();
      return { x: vb.x + (e.clientX - r.left - (r.width - vb.w / s) / 2) * s, y: vb.y + (e.clientY - r.top - (r.height - vb.h / s) / 2) * s, s };
    };
    svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      const p = at(e);
      const f = e.deltaY < 0 ? 0.85 : 1 / 0.85, r = svg.getBoundingClientRect();
      // no closer than 8 screen pixels a unit, no farther than 4 times the whole drawing
      if (f < 1 && p.s * f < 1 / 8) return;
      if (f > 1 && p.s * f > 4 * Math.max(home.w / (r.width || 1), home.h / (r.height || 1))) return;
      vb = { x: p.x - (p.x - vb.x) * f, y: p.y - (p.y - vb.y) * f, w: vb.w * f, h: vb.h * f }; set();
    }, { passive: false });
    svg.addEventListener('mousedown', (e) => { if (e.button === 0) drag = { cx: e.clientX, cy: e.clientY, x: vb.x, y: vb.y, s: at(e).s, moved: false }; });
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.cx, dy = e.clientY - drag.cy;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) { vb.x = drag.x - dx * drag.s; vb.y = drag.y - dy * drag.s; set(); }
    });
    window.addEventListener('mouseup', () => { if (drag && drag.moved) svg.dataset.dragged = '1'; drag = null; });
    svg.addEventListener('dblclick', (e) => { if (!opts.noDblReset) { e.preventDefault(); vb = { ...home }; set(); } });
    set();
    return {
      reset(b) { if (b) home = { ...b }; vb = { ...home }; set(); },
      setHome(b) { home = { ...b }; },
      centre(x, y, s) {
        const r = svg.getBoundingClientRect();
        s = s || scale();
        vb = { x: x - (r.width * s) / 2, y: y - (r.height * s) / 2, w: r.width * s, h: r.height * s }; set();
      },
      view() { return { ...vb, scale: scale() }; },
    };
  }

  // a box that shows a w x h drawing whole in an element of the given size (a small one at its own size)
  function fitBox(w, h, elW, elH, maxZoom = 1) {
    const s = Math.max(w / (elW || w), h / (elH || h), 1 / maxZoom);
    const W = (elW || w) * s, H = (elH || h) * s;
    return { x: (w - W) / 2, y: (h - H) / 2, w: W, h: H };
  }

  window.nnvisGraph = { el, sv, layout, edgePath, zoomPan, fitBox, SVGNS };
})();

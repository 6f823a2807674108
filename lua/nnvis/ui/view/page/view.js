// nnvis view — the page: a model's graph (graph.json, written by nnvis.ui.view.prepare) drawn as
// nnvis's diagram draws it, with zoom and pan, PyTorch scopes that fold into one box and unfold,
// search, SVG/PNG export, and a node's details in a side panel (config, weight statistics and
// histograms; with an input image, its feature maps and Grad-CAM).  Plain ES2020, no build step,
// nothing from other hosts (the server's Content-Security-Policy says so); the layout and the
// zoom are the board's (graph.js, window.nnvisGraph).
'use strict';

(() => {
  const G = window.nnvisGraph, { el, sv } = G;
  const $ = (sel) => document.querySelector(sel);
  const thousands = (n) => Math.round(n).toLocaleString('en-US');
  const shapeText = (s) => (s ? `[${s.join(',')}]` : '');
  function fmt(v) {
    if (v == null || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(+v.toPrecision(4));
  }

  // nnvis.draw.diagram's colours by kind, and a few families for kinds it has no entry for
  const COLORS = { Dropout: '#ededed', Flatten: '#f2e6cc', fn: '#fff7d9', input: '#d9ebff', Conv2d: '#cce6cc',
    Linear: '#f2d9bf', BatchNorm2d: '#ededcc', BatchNorm1d: '#ededcc', ReLU: '#ebd9eb', MaxPool2d: '#ccdeed',
    AvgPool2d: '#ccdeed', AdaptiveAvgPool2d: '#ccdeed', op: '#fff2bf', default: '#e6e6e6', scope: '#dde5ef' };
  function colour(kind) {
    if (COLORS[kind]) return COLORS[kind];
    if (/Conv/.test(kind)) return COLORS.Conv2d;
    if (/Norm/.test(kind)) return COLORS.BatchNorm2d;
    if (/Pool/.test(kind)) return COLORS.MaxPool2d;
    if (/ReLU|GELU|SiLU|Sigmoid|Tanh|Softmax|Hardswish|Mish|ELU/.test(kind)) return COLORS.ReLU;
    if (/Linear|Embedding|Attention/.test(kind)) return COLORS.Linear;
    return COLORS.default;
  }
  // a node's title line as the diagram writes it
  const titleOf = (n) => (n.kind === 'input' || n.kind === 'op' ? n.name : n.kind === 'fn' ? `${n.name} (functional)` : `${n.name} (${n.kind})`);

  const FONT = '"DejaVu Sans", Verdana, sans-serif', TITLE_PX = 12, LINE_PX = 10.5;
  const measure = (() => {
    const ctx = document.createElement('canvas').getContext('2d');
    return (text, bold, px) => { ctx.font = `${bold ? 'bold ' : ''}${px}px ${FONT}`; return ctx.measureText(text).width; };
  })();
  function clip(text, bold, px, width) {
    if (measure(text, bold, px) <= width) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (measure(`…${text.slice(text.length - m)}`, bold, px) <= width) lo = m; else hi = m - 1; }
    return `…${text.slice(text.length - lo)}`;
  }

  // ---- the model: nodes, scopes ---------------------------------------------------------------------
  const state = { graph: null, nodes: [], byId: new Map(), scopes: new Map(), expanded: new Set(), boxW: 150,
    matches: [], current: -1, selected: null, laid: null };

  // a scope's chain: "layer2.0.downsample" -> ["layer2", "layer2.0", "layer2.0.downsample"]
  function chainOf(scope) {
    if (!scope) return [];
    const parts = scope.split('.'), out = [];
    for (let i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join('.'));
    return out;
  }
  function commonScope(list) {
    if (!list.length) return '';
    let c = chainOf(list[0]);
    for (const s of list.slice(1)) { const d = chainOf(s); let i = 0; while (i < c.length && c[i] === d[i]) i++; c = c.slice(0, i); }
    return c.length ? c[c.length - 1] : '';
  }

  function load(g) {
    state.graph = g;
    state.nodes = g.nodes;
    for (const n of g.nodes) { state.byId.set(n.id, n); n.succs = []; }
    for (const n of g.nodes) for (const p of n.preds) if (state.byId.has(p)) state.byId.get(p).succs.push(n.id);
    // an op outside any module (a residual add, a flatten) belongs where its output goes: the
    // add of layer1.0 feeds layer1.0's relu, so it folds with layer1.0
    for (const n of [...g.nodes].reverse()) {
      if (n.scope || n.kind === 'input' || (n.weights && n.weights.length) || n.config) continue;
      const around = n.succs.length ? n.succs : n.preds;
      n.scope = commonScope(around.map((i) => state.byId.get(i)).filter(Boolean).map((m) => m.scope));
    }
    for (const n of g.nodes) {
      for (const s of chainOf(n.scope)) {
        if (!state.scopes.has(s)) state.scopes.set(s, { name: s, depth: chainOf(s).length, nodes: [], params: 0 });
        const sc = state.scopes.get(s);
        sc.nodes.push(n.id); sc.params += n.params || 0;
      }
    }
    // graphs over ~300 nodes open folded to their top-level scopes
    if (g.nodes.length <= 300) for (const s of state.scopes.keys()) state.expanded.add(s);
    // one box width for all (as the diagram), from the widest text of any node or scope box
    let w = 130;
    for (const n of g.nodes) {
      w = Math.max(w, measure(titleOf(n), true, TITLE_PX) + 14);
      for (const l of n.details) w = Math.max(w, measure(l, false, LINE_PX) + 14);
    }
    for (const s of state.scopes.keys()) w = Math.max(w, measure(s, true, TITLE_PX) + 30);
    state.boxW = Math.min(Math.ceil(w), 300);
  }

  // the box a node shows as: itself, or its outermost folded scope
  function repOf(n) {
    for (const s of chainOf(n.scope)) if (!state.expanded.has(s)) return `scope:${s}`;
    return n.id;
  }
  function boxContent(id) {
    if (typeof id === 'number') {
      const n = state.byId.get(id);
      return { title: titleOf(n), lines: n.details, fill: colour(n.kind), kind: n.kind, name: n.name, shape: n.shape };
    }
    const s = state.scopes.get(id.slice(6));
    const last = state.byId.get(s.nodes[s.nodes.length - 1]);
    return { title: s.name, lines: [`${s.nodes.length} nodes (folded)`, `${thousands(s.params)} params`], fill: COLORS.scope,
      kind: 'scope', name: s.name, scope: true, shape: last && last.shape };
  }
  // what is drawn: the boxes, and the edges between them (deduplicated, no loops)
  function visible() {
    const boxes = new Map(), edges = new Map();
    for (const n of state.nodes) {
      const r = repOf(n);
      if (!boxes.has(r)) boxes.set(r, { id: r, preds: [], members: [] });
      boxes.get(r).members.push(n.id);
    }
    for (const n of state.nodes) {
      const b = repOf(n);
      for (const p of n.preds) {
        const pn = state.byId.get(p);
        if (!pn) continue;
        const a = repOf(pn);
        if (a === b || edges.has(`${a}\u0000${b}`)) continue;
        edges.set(`${a}\u0000${b}`, { from: a, to: b, shape: pn.shape });
        boxes.get(b).preds.push(a);
      }
    }
    return { boxes, edges };
  }
  // the expanded scopes a box sits in
  const boxChain = (id) => (typeof id === 'number' ? chainOf(state.byId.get(id).scope) : chainOf(id.slice(6)).slice(0, -1));

  // ---- drawing ---------------------------------------------------------------------------------------
  const LABEL = 18, PADB = 8, LINE_H = 13;
  const stage = $('#stage');
  const svg = sv('svg', { xmlns: G.SVGNS, preserveAspectRatio: 'xMidYMid meet', 'font-family': FONT });
  let zp = null;

  function render(opts = {}) {
    const { boxes, edges } = visible();
    const W = state.boxW;
    const content = new Map();
    const list = [...boxes.values()].map((b) => {
      const c = boxContent(b.id);
      content.set(b.id, c);
      return { id: b.id, preds: b.preds, w: W, h: 8 + 14 + c.lines.length * LINE_H + 5 };
    });
    // clusters: the unfolded scopes holding at least one box
    const clusters = new Map();
    for (const b of boxes.values()) for (const s of boxChain(b.id)) {
      if (!clusters.has(s)) clusters.set(s, { name: s, boxes: [] });
      clusters.get(s).boxes.push(b.id);
    }
    let span = null;         // per cluster: top and bottom layer, label stack, height in the cluster tree
    const spans = (layerOf) => {
      if (span) return span;
      span = new Map();
      for (const c of clusters.values()) {
        const ls = c.boxes.map((id) => layerOf.get(id));
        span.set(c.name, { top: Math.min(...ls), bottom: Math.max(...ls), up: 1, down: 1, height: 0 });
      }
      for (const c of clusters.values()) {
        const s = span.get(c.name), ch = chainOf(c.name);
        for (const a of ch.slice(0, -1)) {
          const t = span.get(a);
          if (!t) continue;
          if (t.top === s.top) t.up++;
          if (t.bottom === s.bottom) t.down++;
          t.height = Math.max(t.height, ch.length - chainOf(a).length);
        }
      }
      return span;
    };
    const L = G.layout(list, {
      gapX: 26, gapY: 34, margin: 24,
      extraSep(a, b) {
        const ca = boxChain(a), cb = boxChain(b);
        let i = 0;
        while (i < ca.length && ca[i] === cb[i]) i++;
        return 12 * (ca.length - i + cb.length - i);
      },
      spaceAbove(l, layerOf) {
        let up = 0, down = 0;
        for (const s of spans(layerOf).values()) {
          if (s.top === l) up = Math.max(up, s.up);
          if (s.bottom === l - 1) down = Math.max(down, s.down);
        }
        return up * LABEL + down * PADB;
      },
    });
    state.laid = L;
    svg.replaceChildren();
    const defs = sv('defs'), marker = sv('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' });
    marker.append(sv('path', { d: 'M0,0.6L8,4L0,7.4z', fill: '#4d4d4d' }));
    defs.append(marker);
    const gc = sv('g', { class: 'clusters' }), ge = sv('g', { class: 'edges' }), gl = sv('g', { class: 'shapes' }), gn = sv('g', { class: 'nodes' });
    svg.append(defs, gc, ge, gl, gn);
    // clusters, outermost first (drawn below the ones they hold)
    const sp = span || spans(L.layerOf);
    for (const c of [...clusters.values()].sort((a, b) => chainOf(a.name).length - chainOf(b.name).length)) {
      const s = sp.get(c.name), depth = chainOf(c.name).length, pad = 7 + 9 * s.height;
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (const id of c.boxes) {
        const p = L.pos.get(id);
        x0 = Math.min(x0, p.x - p.w / 2); x1 = Math.max(x1, p.x + p.w / 2); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y + p.h);
      }
      const top = y0 - s.up * LABEL + 1, bottom = y1 + s.down * PADB - 2;
      const sc = state.scopes.get(c.name);
      const g = sv('g', { class: 'cluster', 'data-scope': c.name });
      g.append(sv('rect', { x: x0 - pad, y: top, width: x1 - x0 + 2 * pad, height: bottom - top, rx: 7,
        fill: ['#f4f7fb', '#eaf0f7', '#e1e9f3', '#d8e2ee'][Math.min(depth - 1, 3)], stroke: '#c5d3e2', 'stroke-width': 1 }));
      const label = sv('g', { class: 'cluster-label', 'data-scope': c.name });
      label.append(sv('rect', { x: x0 - pad, y: top, width: Math.min(x1 - x0 + 2 * pad, measure(c.name, true, 11) + 120), height: LABEL - 2, fill: 'transparent' }),
        sv('text', { x: x0 - pad + 7, y: top + 12, 'font-size': 11, 'font-weight': 'bold', fill: '#46627f' }, `▾ ${c.name}`),
        sv('text', { x: x0 - pad + 14 + measure(`▾ ${c.name}`, true, 11), y: top + 12, 'font-size': 10, fill: '#7b8fa3' }, `${thousands(sc.params)} params`),
        sv('title', null, `${c.name}: click to fold`));
      label.addEventListener('click', (e) => { if (!dragged()) { e.stopPropagation(); toggle(c.name, false); } });
      g.append(label);
      gc.append(g);
    }
    // edges with arrowheads, and the output shape under each box that has an edge out
    const shapeDone = new Set();
    for (const e of L.edges) {
      ge.append(sv('path', { d: G.edgePath(e.points), fill: 'none', stroke: '#5c5c5c', 'stroke-width': 1, 'marker-end': 'url(#arrow)' }));
      const info = edges.get(`${e.from}\u0000${e.to}`);
      if (!shapeDone.has(e.from) && info && info.shape) {
        shapeDone.add(e.from);
        const [x, y] = e.points[0];
        gl.append(sv('text', { x: x + 5, y: y + 11, 'font-size': 9.5, fill: '#6a737d' }, shapeText(info.shape)));
      }
    }
    for (const [id, p] of L.pos) {
      const c = content.get(id), x = p.x - p.w / 2;
      const g = sv('g', { class: c.scope ? 'node scope' : 'node', transform: `translate(${x.toFixed(1)},${p.y.toFixed(1)})`,
        'data-id': String(id), 'data-name': c.name, 'data-kind': c.kind });
      if (c.scope) g.append(sv('rect', { x: 3, y: 3, width: p.w, height: p.h, rx: 4, fill: '#c9d4e2', stroke: '#7d8fa5', 'stroke-width': 0.8 }));
      g.append(sv('rect', { class: 'box', width: p.w, height: p.h, rx: 4, fill: c.fill, stroke: '#4d4d4d', 'stroke-width': 0.8 }));
      g.append(sv('text', { x: 7, y: 17, 'font-size': TITLE_PX, 'font-weight': 'bold', fill: '#1f2328' }, clip(c.scope ? `⊞ ${c.title}` : c.title, true, TITLE_PX, p.w - 12)));
      c.lines.forEach((l, i) => g.append(sv('text', { x: 7, y: 31 + i * LINE_H, 'font-size': LINE_PX, fill: '#404040' }, clip(l, false, LINE_PX, p.w - 12))));
      g.append(sv('title', null, c.scope ? `${c.title}: click to unfold` : `${c.title}\n${shapeText(c.shape)}`));
      g.addEventListener('click', () => {
        if (dragged()) return;
        if (c.scope) toggle(c.name, true); else select(id);
      });
      gn.append(g);
    }
    const fit = G.fitBox(L.width, L.height, stage.clientWidth, stage.clientHeight, 1.5);
    if (!zp) zp = G.zoomPan(svg, fit);
    else if (opts.fit) zp.reset(fit);
    else zp.setHome(fit);
    if (opts.centre != null) centreOn(opts.centre);
    paintHits();
    if (state.selected != null) markSelected();
    svg.dataset.boxes = String(L.pos.size);
  }
  const dragged = () => { const d = svg.dataset.dragged; delete svg.dataset.dragged; return !!d; };
  svg.addEventListener('mousedown', () => { delete svg.dataset.dragged; }, true);

  function centreOn(id) {
    const p = state.laid.pos.get(id);
    if (!p) return;
    const s = Math.min(zp.view().scale, 1);       // at least the drawing's own size
    zp.centre(p.x, p.y + p.h / 2, s);
  }
  // fold (unfold = false) or unfold a scope, keeping its first box where it was on the screen
  function toggle(scope, unfold) {
    const sc = state.scopes.get(scope);
    if (!sc) return;
    const firstBox = () => repOf(state.byId.get(sc.nodes[0]));
    const before = state.laid && state.laid.pos.get(firstBox());
    if (unfold) state.expanded.add(scope); else state.expanded.delete(scope);
    render();
    const after = state.laid.pos.get(firstBox());
    if (before && after) {
      const v = zp.view();
      zp.centre(v.x + v.w / 2 + after.x - before.x, v.y + v.h / 2 + after.y - before.y, v.scale);
    }
  }

  // ---- search ------------------------------------------------------------------------------------------
  const search = $('#search'), count = $('#search-count');
  function paintHits() {
    const hit = new Set(state.matches.map((id) => String(repOf(state.byId.get(id)))));
    const cur = state.current >= 0 ? String(repOf(state.byId.get(state.matches[state.current]))) : null;
    for (const g of svg.querySelectorAll('.node')) {
      g.classList.toggle('hit', hit.has(g.dataset.id));
      g.classList.toggle('current', g.dataset.id === cur);
    }
  }
  function runSearch() {
    const q = search.value.trim().toLowerCase();
    state.matches = q ? state.nodes.filter((n) => n.name.toLowerCase().includes(q) || n.kind.toLowerCase().includes(q)).map((n) => n.id) : [];
    state.current = -1;
    count.textContent = q ? `${state.matches.length} found` : '';
    paintHits();
  }
  function nextHit(step) {
    if (!state.matches.length) return;
    state.current = (state.current + step + state.matches.length) % state.matches.length;
    const n = state.byId.get(state.matches[state.current]);
    for (const s of chainOf(n.scope)) state.expanded.add(s);
    render({ centre: n.id });
    count.textContent = `${state.current + 1} / ${state.matches.length}`;
    select(n.id, true);
  }
  search.addEventListener('input', runSearch);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); nextHit(e.shiftKey ? -1 : 1); }
    if (e.key === 'Escape') { search.value = ''; runSearch(); }
  });

  // ---- the side panel ------------------------------------------------------------------------------------
  const panel = $('#panel'), body = $('#panel-body');
  $('#panel-close').addEventListener('click', () => { panel.hidden = true; state.selected = null; markSelected(); });
  function markSelected() {
    for (const g of svg.querySelectorAll('.node')) g.classList.toggle('sel', g.dataset.id === String(state.selected));
  }
  const row = (k, v, num) => el('tr', null, el('td', { text: k }), el('td', { class: num ? 'num' : null, text: v }));
  function histogram(w) {
    const counts = w.hist.counts, n = counts.length, max = Math.max(1, ...counts);
    const Wd = 340, H = 74, top = 12, bottom = 14, bw = Wd / n;
    const s = sv('svg', { class: 'hist', viewBox: `0 0 ${Wd} ${H}`, preserveAspectRatio: 'none' });
    counts.forEach((c, i) => {
      const h = (c / max) * (H - top - bottom), lo = w.hist.lo + (i / n) * (w.hist.hi - w.hist.lo), hi = w.hist.lo + ((i + 1) / n) * (w.hist.hi - w.hist.lo);
      const r = sv('rect', { x: (i * bw + 0.5).toFixed(2), y: (H - bottom - h).toFixed(2), width: (bw - 1).toFixed(2), height: Math.max(h, c ? 0.8 : 0).toFixed(2) });
      r.append(sv('title', null, `${fmt(lo)} … ${fmt(hi)}: ${thousands(c)}`));
      s.append(r);
    });
    s.append(sv('line', { x1: 0, x2: Wd, y1: H - bottom + 0.5, y2: H - bottom + 0.5, stroke: '#c8ccd1' }),
      sv('text', { x: 1, y: H - 3 }, fmt(w.hist.lo)), sv('text', { x: Wd - 1, y: H - 3, 'text-anchor': 'end' }, fmt(w.hist.hi)),
      sv('text', { x: 1, y: 9 }, `max bin ${thousands(max)}`));
    return s;
  }
  function select(id, keepView) {
    const n = state.byId.get(id);
    if (!n) return;
    state.selected = id;
    markSelected();
    const g = state.graph, kids = [];
    kids.push(el('h2', { text: n.name }), el('span', { class: 'chip', style: `background:${colour(n.kind)}`, text: n.kind }));
    const ins = n.preds.map((p) => state.byId.get(p)).filter(Boolean);
    kids.push(el('h3', { text: 'Node' }), el('table', null,
      row('kind', n.kind), row('output shape', shapeText(n.shape), true),
      row('input shapes', ins.map((p) => `${shapeText(p.shape)} ← ${p.name}`).join('\n') || '–', true),
      row('scope', n.scope || '(top level)'), row('parameters', thousands(n.params || 0), true)));
    if (n.weights.length) {
      kids.push(el('h3', { text: 'Weights' }));
      for (const w of n.weights) {
        const stat = (k, v) => el('span', null, el('i', { text: k }), el('b', { text: v }));
        kids.push(el('div', { class: 'weight', 'data-weight': w.name },
          el('div', { class: 'head' }, el('b', { text: w.name }), el('span', { class: 'muted', text: `${shapeText(w.shape)} · ${thousands(w.numel)}` })),
          el('div', { class: 'stats' }, stat('mean', fmt(w.mean)), stat('std', fmt(w.std)), stat('min', fmt(w.min)), stat('max', fmt(w.max)),
            stat('zeros', `${+(w.zeros * 100).toFixed(1)}%`)),
          histogram(w)));
      }
    }
    if (g.image && (n.maps || n.cam)) {
      const p = g.prediction || {}, cls = p.name ? `“${p.name}”` : `class ${p.class}`, C = n.shape && n.shape[1];
      const figs = el('div', { class: 'figs' });
      if (n.maps) {
        figs.append(el('figure', { class: 'maps' }, el('img', { src: `/data/${n.maps}`, alt: `feature maps of ${n.name}` }),
          el('figcaption', { text: `feature maps: the first ${Math.min(32, C || 32)} of ${C} channels, each scaled to its own range` })));
      }
      const fig = el('figure', { class: 'cam', hidden: true });
      figs.append(fig);
      kids.push(el('h3', { text: 'For the input image' }));
      if (n.cam) {
        const btn = el('button', { type: 'button', class: 'primary', id: 'cam-button', text: 'Grad-CAM',
          onclick: () => {
            if (!fig.firstChild) fig.append(el('img', { src: `/data/${n.cam}`, alt: `Grad-CAM at ${n.name}` }),
              el('figcaption', { text: `where ${n.name} sees ${cls} (Grad-CAM, Selvaraju et al. 2017)` }));
            fig.hidden = !fig.hidden;
            btn.textContent = fig.hidden ? 'Grad-CAM' : 'Hide Grad-CAM';
          } });
        kids.push(el('div', { class: 'cam-row' }, btn,
          el('span', { class: 'muted', text: `of the top class, ${cls}${p.probability != null ? ` (p = ${p.probability.toFixed(3)})` : ''}, at this layer` })));
      }
      kids.push(figs);
    }
    if (n.details.length) kids.push(el('h3', { text: 'As drawn' }), el('ul', { class: 'details' }, ...n.details.map((d) => el('li', { text: d }))));
    const cfg = Object.entries(n.config || {}).sort(([a], [b]) => a.localeCompare(b));
    if (cfg.length) kids.push(el('h3', { text: 'Config' }), el('table', { class: 'config' }, ...cfg.map(([k, v]) => row(k, String(v), typeof v === 'number'))));
    body.replaceChildren(...kids);
    panel.hidden = false;
    body.parentElement.scrollTop = 0;
    if (!keepView && !state.laid.pos.has(id)) render({ centre: id });
  }

  // ---- export: the whole graph as drawn, made in the page -------------------------------------------------
  function svgText() {
    const L = state.laid, c = svg.cloneNode(true);
    c.setAttribute('viewBox', `0 0 ${L.width.toFixed(0)} ${L.height.toFixed(0)}`);
    c.setAttribute('width', L.width.toFixed(0)); c.setAttribute('height', L.height.toFixed(0));
    c.removeAttribute('data-boxes'); c.removeAttribute('data-dragged');
    c.insertBefore(sv('rect', { width: '100%', height: '100%', fill: '#ffffff' }), c.firstChild);
    return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(c)}\n`;
  }
  const baseName = () => (state.graph.title || 'model').replace(/[^\w.-]+/g, '_');
  function download(blob, name) {
    const a = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  function exportSVG() { download(new Blob([svgText()], { type: 'image/svg+xml' }), `${baseName()}.svg`); }
  function exportPNG() {
    const L = state.laid, url = URL.createObjectURL(new Blob([svgText()], { type: 'image/svg+xml' }));
    const s = Math.min(2, 16000 / L.width, 16000 / L.height, Math.sqrt(120e6 / (L.width * L.height)));
    const img = new Image();
    img.onload = () => {
      const cv = el('canvas', { width: Math.ceil(L.width * s), height: Math.ceil(L.height * s) });
      const ctx = cv.getContext('2d');
      ctx.scale(s, s); ctx.drawImage(img, 0, 0, L.width, L.height);
      URL.revokeObjectURL(url);
      cv.toBlob((b) => download(b, `${baseName()}.png`), 'image/png');
    };
    img.src = url;
  }

  // ---- start -------------------------------------------------------------------------------------------------
  function header(g) {
    document.title = `${g.title} · nnvis view`;
    $('#title').textContent = g.title;
    const fact = (k, v) => el('span', null, `${k} `, el('b', { text: v }));
    const facts = [fact('parameters', thousands(g.params)), fact('input', shapeText(g.input_shape)), fact('nodes', thousands(g.nodes.length))];
    if (g.prediction) {
      const p = g.prediction;
      facts.push(fact('prediction', `${p.name ? p.name : `class ${p.class}`} (${(p.probability * 100).toFixed(1)}%)`));
    }
    $('#facts').replaceChildren(...facts);
  }
  $('#fit').addEventListener('click', () => zp && zp.reset());
  $('#expand-all').addEventListener('click', () => { for (const s of state.scopes.keys()) state.expanded.add(s); render({ fit: true }); });
  $('#collapse-all').addEventListener('click', () => { state.expanded.clear(); render({ fit: true }); });
  $('#export-svg').addEventListener('click', exportSVG);
  $('#export-png').addEventListener('click', exportPNG);
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => state.laid && zp.setHome(G.fitBox(state.laid.width, state.laid.height, stage.clientWidth, stage.clientHeight, 1.5)), 100); });

  fetch('/data/graph.json', { cache: 'no-store' }).then((r) => {
    if (!r.ok) throw new Error(`graph.json: HTTP ${r.status}`);
    return r.json();
  }).then((g) => {
    load(g);
    header(g);
    $('#loading').remove();
    stage.append(svg);
    render({ fit: true });
    document.body.dataset.ready = '1';
  }).catch((e) => { $('#loading').textContent = String(e); });

  window.nnvisView = { state, render, select, toggle, svgText, chainOf, boxes: () => svg.querySelectorAll('.node').length };
})();

// nnvis board — the page: TensorBoard event files shown through the board server's JSON API
// (docs/board.md).  Plain ES2020, no build step, nothing fetched from other hosts (the server's
// Content-Security-Policy says so).  Vendor scripts: Debian's dygraphs (scalars) and markdown-it
// (text, HTML disabled so log content never runs script).
//
// Structure: one `state` (runs, their colours, what is hidden, the scalar options); one object per
// tab with `sync()` (build or extend its cards from the run list) and cards that load their data
// lazily when scrolled into view and again when the server's `version` grows (live).
'use strict';

(() => {
  // ---- small helpers -------------------------------------------------------------------------
  const $ = (sel, root = document) => root.querySelector(sel);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const { el, sv } = window.nnvisGraph;     // graph.js, shared with nnvis view
  function qs(params) { return new URLSearchParams(params).toString(); }
  async function api(path, params) {
    const r = await fetch(params ? `${path}?${qs(params)}` : path, { cache: 'no-store' });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }
  // a number as a person reads it: 5 significant digits, exponent when very large or small
  function fmt(v) {
    if (v == null || Number.isNaN(v)) return '–';
    if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(+v.toPrecision(5));
  }
  function fmtWall(sec) {
    const d = new Date(sec * 1000), p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function fmtRel(sec) {
    const s = Math.abs(sec), sign = sec < 0 ? '−' : '';
    if (s < 60) return sign + `${+s.toFixed(s < 10 ? 1 : 0)}s`;
    if (s < 3600) return sign + `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
    return sign + `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  }
  // "nice" ticks (1, 2, 5 x 10^k) covering [lo, hi]
  function ticks(lo, hi, n = 5) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => (hi - lo) / s <= n + 1);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }
  const tip = $('#tip');
  function showTip(e, text) {
    tip.textContent = text; tip.hidden = false;
    const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    tip.style.left = `${x}px`; tip.style.top = `${e.clientY + 14}px`;
  }
  function hideTip() { tip.hidden = true; }

  // Tableau 10, the palette nnvis's own figures use (nnvis.draw.style)
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  function rgba(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
  }
  // a colour mixed toward white by t in [0, 1]
  function tint(hex, t) {
    const n = parseInt(hex.slice(1), 16), m = (c) => Math.round(c + (255 - c) * t);
    return `rgb(${m(n >> 16)},${m((n >> 8) & 255)},${m(n & 255)})`;
  }

  // ---- state ------------------------------------------------------------------------------------
  const state = {
    version: null, runs: [], byName: new Map(), colors: new Map(), hidden: new Set(),
    filter: null, smoothing: 0.6, logY: false, xMode: 'step', warningsSeen: new Set(),
  };
  // a run keeps its colour: the palette in the order runs were first seen
  function colorOf(run) {
    if (!state.colors.has(run)) state.colors.set(run, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(run);
  }
  // a card's title: the tag, then the run with its colour
  function cardHead(tag, run) {
    return el('h4', { title: `${tag} · ${run}` }, tag, el('span', { class: 'muted' }, el('i', { class: 'swatch', style: `background:${colorOf(run)}` }), ` ${run}`));
  }
  const visible = (run) => !state.hidden.has(run);
  const tagOk = (tag) => !state.filter || state.filter.test(tag);

  // ---- lazy cards: a card loads when it scrolls into view, and again after `version` grows -------
  const observer = new IntersectionObserver((entries) => {
    for (const en of entries) {
      const card = en.target.nnvisCard;
      if (!card) continue;
      card.inView = en.isIntersecting;
      if (card.inView && card.stale) card.refresh();
    }
  }, { rootMargin: '300px' });
  class Card {
    constructor(node, load) {
      this.node = node; this.load = load; this.stale = true; this.inView = false; this.busy = null;
      node.nnvisCard = this; observer.observe(node);
    }
    refresh() {
      if (this.busy) { this.again = true; return this.busy; }
      this.stale = false;
      this.busy = Promise.resolve().then(() => this.load()).catch((err) => {
        console.error(err);
        this.node.dataset.error = String(err.message || err);
      }).finally(() => {
        this.busy = null; this.node.dataset.loaded = '1';
        if (this.again) { this.again = false; this.refresh(); }
      });
      return this.busy;
    }
    invalidate() { this.stale = true; if (this.inView) this.refresh(); }
  }

  // groups of cards by the tag's first path component (TensorBoard's sections), in a tab's pane
  function groupFor(pane, tag, grid = 'grid') {
    // tags without a '/' share one untitled section at the top
    const name = tag.includes('/') ? tag.slice(0, tag.indexOf('/')) : '';
    pane.groups = pane.groups || new Map();
    let g = pane.groups.get(name);
    if (!g) {
      const box = el('div', { class: grid });
      const count = el('span', { class: 'muted' });
      const d = el('details', { class: 'group', open: true }, el('summary', { hidden: !name }, name, count), box);
      g = { details: d, box, count, name };
      pane.groups.set(name, g);
      // sections in name order
      const after = [...pane.groups.values()].filter((o) => o !== g && o.name > name).sort((a, b) => a.name.localeCompare(b.name))[0];
      pane.body.insertBefore(d, after ? after.details : null);
    }
    return g;
  }
  function applyFilter(pane) {
    if (!pane.groups) return;
    let shown = 0;
    for (const g of pane.groups.values()) {
      let n = 0;
      for (const c of g.box.children) {
        const ok = tagOk(c.dataset.tag) && (!c.dataset.run || visible(c.dataset.run));
        c.hidden = !ok; if (ok) n++;
      }
      g.details.hidden = n === 0; g.count.textContent = n; shown += n;
      // sections share rows in proportion to their cards (a one-chart section does not take a row)
      g.details.style.flex = `${n} 1 ${n * (g.box.classList.contains('small') ? 240 : 370)}px`;
    }
    pane.empty.hidden = shown > 0;
  }
  function makePane(tab, emptyText, sections = true) {
    const node = el('section', { class: 'tab', id: `tab-${tab}` });
    const empty = el('div', { class: 'empty', text: emptyText, hidden: true });
    const body = el('div', { class: sections ? 'sections' : null });
    node.append(empty, body);
    $('#main').append(node);
    return { node, empty, body, cards: new Map() };
  }

  // a card per (run, tag) of a kind: new ones made by make(run, tag), all reloaded when in view
  function syncCards(pane, tagsOf, make) {
    for (const r of state.runs) {
      for (const tag of tagsOf(r) || []) {
        const key = `${r.name}\0${tag}`;
        if (!pane.cards.has(key)) pane.cards.set(key, make(r, tag));
      }
    }
    for (const c of pane.cards.values()) c.invalidate();
    applyFilter(pane);
  }

  // ---- Scalars -----------------------------------------------------------------------------------
  // TensorBoard's debiased EMA: last = last*w + (1-w)*v, smoothed_t = last / (1 - w^t)
  function smooth(values, w) {
    const out = new Array(values.length);
    let last = 0, n = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) { out[i] = v; continue; }
      last = last * w + (1 - w) * v; n++;
      out[i] = w === 0 ? v : last / (1 - w ** n);
    }
    return out;
  }
  function xOf(d, i) {
    if (state.xMode === 'step') return d.step[i];
    if (state.xMode === 'relative') return d.wall[i] - d.wall[0];
    return d.wall[i] * 1000;
  }
  // nearest index of x in a run's sorted x column
  function nearest(xs, x) {
    let lo = 0, hi = xs.length - 1;
    if (hi < 0) return -1;
    while (hi - lo > 1) { const m = (lo + hi) >> 1; if (xs[m] <= x) lo = m; else hi = m; }
    return Math.abs(xs[hi] - x) < Math.abs(xs[lo] - x) ? hi : lo;
  }

  const scalars = {
    pane: null, charts: new Map(),
    init() { this.pane = makePane('scalars', 'No scalars yet (or none match the filter).'); },
    sync() {
      const tags = new Map();
      for (const r of state.runs) for (const t of r.scalars || []) { if (!tags.has(t)) tags.set(t, []); tags.get(t).push(r.name); }
      for (const [tag, runs] of tags) {
        let c = this.charts.get(tag);
        if (!c) c = this.create(tag);
        c.runs = runs;
      }
      for (const c of this.charts.values()) c.card.invalidate();
      applyFilter(this.pane);
    },
    create(tag) {
      const chart = el('div', { class: 'chart' }), legend = el('div', { class: 'legend' });
      const node = el('div', { class: 'card scalar', 'data-tag': tag }, el('h4', { title: tag, text: tag }), chart, legend,
        el('div', { class: 'note' }));
      groupFor(this.pane, tag).box.append(node);
      const c = { tag, node, chart, legend, runs: [], data: new Map(), g: null, xs: new Map() };
      c.card = new Card(node, () => this.load(c));
      this.charts.set(tag, c);
      return c;
    },
    async load(c) {
      const got = await Promise.all(c.runs.map((run) => api('/api/scalars', { run, tag: c.tag, points: 1500 })));
      got.forEach((d, i) => c.data.set(c.runs[i], d));
      this.draw(c);
    },
    // the chart's columns: x, then per run its raw series (faint, with its min-max band) and its
    // smoothed series; rows are the union of the runs' x values (nulls elsewhere)
    build(c) {
      const runs = c.runs.filter((r) => c.data.has(r) && c.data.get(r).step.length);
      const w = state.smoothing, k = runs.length, rows = new Map();
      c.xs = new Map(); c.smoothed = new Map();
      runs.forEach((run, j) => {
        const d = c.data.get(run), sm = smooth(d.value, w), xs = d.step.map((_, i) => xOf(d, i));
        c.xs.set(run, xs); c.smoothed.set(run, sm);
        for (let i = 0; i < xs.length; i++) {
          let row = rows.get(xs[i]);
          if (!row) { row = new Array(1 + 2 * k).fill(null); row[0] = xs[i]; rows.set(xs[i], row); }
          const v = d.value[i], lo = d.min ? d.min[i] : v, hi = d.max ? d.max[i] : v;
          row[1 + 2 * j] = [lo, v, hi];
          row[2 + 2 * j] = [sm[i], sm[i], sm[i]];
        }
      });
      const file = [...rows.values()].sort((a, b) => a[0] - b[0]);
      const labels = ['x'], colors = [], series = {};
      for (const run of runs) {
        const col = colorOf(run);
        labels.push(`${run} (raw)`, run); colors.push(rgba(col, 0.28), col);
        series[`${run} (raw)`] = { strokeWidth: 1, highlightCircleSize: 0 };
        series[run] = { strokeWidth: 1.6 };
      }
      const down = runs.filter((r) => c.data.get(r).downsampled);
      c.node.querySelector('.note').textContent = down.length ? `downsampled (band: each bucket's min–max): ${down.join(', ')}` : '';
      return { runs, file, labels, colors, series };
    },
    options(c, b) {
      const mode = state.xMode;
      const xfmt = mode === 'step' ? (x) => String(Math.round(x)) : mode === 'relative' ? fmtRel : (x) => fmtWall(x / 1000);
      const x = { valueFormatter: xfmt, pixelsPerLabel: mode === 'wall' ? 90 : 60 };
      if (mode === 'wall') { x.ticker = Dygraph.dateTicker; x.axisLabelFormatter = Dygraph.dateAxisLabelFormatter; }
      else x.axisLabelFormatter = mode === 'step' ? (v) => fmt(v) : fmtRel;
      return {
        labels: b.labels, colors: b.colors, series: b.series, customBars: true, connectSeparatedPoints: true,
        logscale: state.logY, fillAlpha: 0.18, strokeWidth: 1.6, highlightCircleSize: 3, drawPoints: false,
        gridLineColor: '#eceef1', axisLineColor: '#c9cdd2', axisLabelFontSize: 11, xRangePad: 4, yRangePad: 6,
        labelsDiv: c.legend, legend: 'always', legendFormatter: (data) => this.legendHTML(c, data),
        axes: { x, y: { valueFormatter: fmt, axisLabelFormatter: (v) => fmt(v), axisLabelWidth: 52 } },
        visibility: b.labels.slice(1).map((l) => visible(l.replace(/ \(raw\)$/, ''))),
        animatedZooms: false, rightGap: 10,
      };
    },
    draw(c, reset) {
      const b = this.build(c);
      c.built = b;
      if (!b.file.length) return;
      const opts = this.options(c, b);
      if (!c.g || reset) {
        if (c.g) c.g.destroy();
        c.g = new Dygraph(c.chart, b.file, opts);
        c.g.nnvis = c;
      } else {
        // keep the user's zoom across live updates and option changes
        if (c.g.isZoomed('x')) opts.dateWindow = c.g.xAxisRange();
        if (c.g.isZoomed('y')) opts.valueRange = c.g.yAxisRange();
        c.g.updateOptions({ file: b.file, ...opts });
      }
    },
    // hover: per run the point nearest the pointer's x — step, value (smoothed and raw), wall time
    legendHTML(c, data) {
      const b = c.built;
      if (!b) return '';
      const runs = b.runs.filter(visible);
      if (data.x == null) {
        return `<div class="names">${runs.map((r) => `<span><i class="swatch" style="background:${colorOf(r)}"></i> ${esc(r)}</span>`).join('')}</div>`;
      }
      const rows = runs.map((run) => {
        const d = c.data.get(run), i = nearest(c.xs.get(run), data.x);
        if (i < 0) return '';
        const sm = c.smoothed.get(run)[i];
        return `<tr class="point" data-run="${esc(run)}" data-step="${d.step[i]}" data-value="${d.value[i]}" data-smoothed="${sm}">` +
          `<td class="run"><i class="swatch" style="background:${colorOf(run)}"></i> ${esc(run)}</td>` +
          `<td>${fmt(sm)}</td><td>${fmt(d.value[i])}</td><td>${d.step[i]}</td><td>${fmtWall(d.wall[i])}</td><td>${fmtRel(d.wall[i] - d.wall[0])}</td></tr>`;
      });
      return `<table><tr class="head"><td>run</td><td>smoothed</td><td>value</td><td>step</td><td>time</td><td>relative</td></tr>${rows.join('')}</table>`;
    },
    redrawAll(reset) { for (const c of this.charts.values()) if (c.g || c.data.size) this.draw(c, reset); },
    visibility() {
      for (const c of this.charts.values()) {
        if (!c.g || !c.built) continue;
        c.built.labels.slice(1).forEach((l, i) => c.g.setVisibility(i, visible(l.replace(/ \(raw\)$/, ''))));
      }
    },
  };
  function esc(s) { return String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`); }

  // ---- Histograms (offset ridgelines) and Distributions (percentile bands) ------------------------
  const histCache = new Map();   // run \0 tag -> {version, items}
  async function histItems(run, tag) {
    const key = `${run}\0${tag}`, hit = histCache.get(key);
    if (hit && hit.version === state.version) return hit.items;
    const { items } = await api('/api/histograms', { run, tag });
    items.sort((a, b) => a.step - b.step);
    histCache.set(key, { version: state.version, items });
    return items;
  }
  // a histogram's buckets as [lo, hi, count] with the infinite edges clamped to min/max
  function buckets(h) {
    const out = [];
    for (let i = 0; i < h.counts.length; i++) {
      let lo = i === 0 ? h.min : h.limits[i - 1], hi = h.limits[i];
      lo = Math.max(lo, h.min); hi = Math.min(hi, h.max);
      if (!(hi >= lo)) hi = lo;
      out.push([lo, hi, h.counts[i]]);
    }
    return out;
  }
  // buckets re-binned onto n equal bins over [lo, hi] (counts split by overlap, as TensorBoard does)
  function rebin(h, lo, hi, n) {
    const out = new Float64Array(n), w = (hi - lo) / n || 1;
    for (const [a, b, c] of buckets(h)) {
      if (!c) continue;
      if (b - a <= 0) { out[Math.min(n - 1, Math.max(0, Math.floor((a - lo) / w)))] += c; continue; }
      const i0 = Math.max(0, Math.floor((a - lo) / w)), i1 = Math.min(n - 1, Math.floor((b - lo) / w));
      for (let i = i0; i <= i1; i++) {
        const s = Math.max(a, lo + i * w), e = Math.min(b, lo + (i + 1) * w);
        if (e > s) out[i] += c * (e - s) / (b - a);
      }
    }
    return out;
  }
  // the value below which a fraction p of the counts lie (linear inside a bucket)
  function percentile(h, p) {
    const bs = buckets(h), total = bs.reduce((s, b) => s + b[2], 0), target = p * total;
    let acc = 0;
    for (const [a, b, c] of bs) {
      if (c > 0 && acc + c >= target) return a + (b - a) * Math.max(0, target - acc) / c;
      acc += c;
    }
    return h.max;
  }
  function sample(items, n) {
    if (items.length <= n) return items;
    const out = [];
    for (let i = 0; i < n; i++) out.push(items[Math.round(i * (items.length - 1) / (n - 1))]);
    return out;
  }
  function axisX(svg, x0, x1, lo, hi, y, fmtf = fmt) {
    const g = sv('g', { class: 'axis' }), sx = (v) => x0 + (v - lo) / (hi - lo || 1) * (x1 - x0);
    g.append(sv('line', { x1: x0, x2: x1, y1: y, y2: y }));
    for (const t of ticks(lo, hi, 5)) {
      g.append(sv('line', { x1: sx(t), x2: sx(t), y1: y, y2: y + 3 }));
      const tx = sv('text', { x: sx(t), y: y + 13, 'text-anchor': 'middle' }); tx.textContent = fmtf(t); g.append(tx);
    }
    svg.append(g);
  }

  function histCardPane(tab, kind) {
    return {
      pane: null, kind,
      init() { this.pane = makePane(tab, `No histograms yet (or none match the filter).`); },
      sync() {
        syncCards(this.pane, (r) => r.histograms, (r, tag) => {
          const readout = el('div', { class: 'readout' }), box = el('div');
          const node = el('div', { class: `card ${kind}`, 'data-tag': tag, 'data-run': r.name },
            cardHead(tag, r.name),
            box, readout);
          groupFor(this.pane, tag).box.append(node);
          const card = new Card(node, async () => {
            const items = await histItems(r.name, tag);
            box.replaceChildren(kind === 'ridge' ? ridgelines(items, colorOf(r.name), readout) : distribution(items, colorOf(r.name), readout));
          });
          return card;
        });
      },
    };
  }

  // TensorBoard's offset view: one ridge per step, oldest at the back (top, pale), newest in front
  function ridgelines(all, color, readout) {
    const W = 440, H = 250, L = 8, R = 44, T = 8, B = 22, BINS = 48;
    const svg = sv('svg', { class: 'plot', viewBox: `0 0 ${W} ${H}` });
    const items = sample(all, 40);
    if (!items.length) return svg;
    let lo = Math.min(...items.map((h) => h.min)), hi = Math.max(...items.map((h) => h.max));
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    const bins = items.map((h) => rebin(h, lo, hi, BINS));
    const peak = Math.max(1e-12, ...bins.map((b) => Math.max(...b)));
    const n = items.length, ridgeH = (H - T - B) * 0.45, gap = n > 1 ? (H - T - B - ridgeH) / (n - 1) : 0;
    const sx = (v) => L + (v - lo) / (hi - lo) * (W - L - R), bw = (hi - lo) / BINS;
    const base = (k) => T + ridgeH + k * gap;
    const paths = [];
    items.forEach((h, k) => {
      const b = bins[k], y0 = base(k);
      let d = `M${sx(lo).toFixed(1)},${y0.toFixed(1)}`;
      for (let i = 0; i < BINS; i++) d += `L${sx(lo + (i + 0.5) * bw).toFixed(1)},${(y0 - b[i] / peak * ridgeH).toFixed(1)}`;
      d += `L${sx(hi).toFixed(1)},${y0.toFixed(1)}`;
      const t = n > 1 ? 1 - k / (n - 1) : 0;
      const p = sv('path', { d, class: 'ridge', fill: tint(color, 0.55 + 0.35 * t), stroke: tint(color, 0.6 * t), 'fill-opacity': 0.9 });
      paths.push(p); svg.append(p);
    });
    // step labels on the right: first, middle, last
    const g = sv('g', { class: 'axis' });
    for (const k of [...new Set([0, n >> 1, n - 1])]) {
      const tx = sv('text', { x: W - R + 4, y: base(k) + 3 }); tx.textContent = items[k].step; g.append(tx);
    }
    svg.append(g);
    axisX(svg, L, W - R, lo, hi, H - B + 2);
    svg.addEventListener('mousemove', (e) => {
      const r = svg.getBoundingClientRect(), px = (e.clientX - r.left) / r.width * W, py = (e.clientY - r.top) / r.height * H;
      // the ridge whose baseline is nearest below the pointer
      let k = n > 1 ? Math.ceil((py - T - ridgeH) / gap) : 0;
      k = Math.max(0, Math.min(n - 1, k));
      const i = Math.max(0, Math.min(BINS - 1, Math.floor((px - L) / (W - L - R) * BINS)));
      paths.forEach((p, j) => p.classList.toggle('hot', j === k));
      const a = lo + i * bw, text = `step ${items[k].step}   [${fmt(a)}, ${fmt(a + bw)})   count ${fmt(bins[k][i])}`;
      readout.textContent = text; svg.dataset.hover = text;
    });
    svg.addEventListener('mouseleave', () => { paths.forEach((p) => p.classList.remove('hot')); readout.textContent = ''; });
    readout.textContent = `${all.length} steps${all.length > n ? ` (${n} drawn)` : ''}`;
    return svg;
  }

  // percentile bands over steps: 0-100, 7-93, 16-84, 31-69 % and the median
  const PCTS = [0, 7, 16, 31, 50, 69, 84, 93, 100];
  function distribution(items, color, readout) {
    const W = 440, H = 230, L = 46, R = 10, T = 8, B = 22;
    const svg = sv('svg', { class: 'plot', viewBox: `0 0 ${W} ${H}` });
    if (!items.length) return svg;
    const q = items.map((h) => PCTS.map((p) => percentile(h, p / 100)));
    const s0 = items[0].step, s1 = items[items.length - 1].step;
    let lo = Math.min(...q.map((r) => r[0])), hi = Math.max(...q.map((r) => r[8]));
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    const sx = (s) => L + (s1 > s0 ? (s - s0) / (s1 - s0) : 0.5) * (W - L - R), sy = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
    const g = sv('g', { class: 'axis' });
    for (const t of ticks(lo, hi, 4)) {
      g.append(sv('line', { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: '#f0f1f3' }));
      const tx = sv('text', { x: L - 4, y: sy(t) + 3, 'text-anchor': 'end' }); tx.textContent = fmt(t); g.append(tx);
    }
    svg.append(g);
    [[0, 8, 0.16], [1, 7, 0.22], [2, 6, 0.3], [3, 5, 0.42]].forEach(([a, b, op]) => {
      let d = '';
      items.forEach((h, k) => { d += `${k ? 'L' : 'M'}${sx(h.step).toFixed(1)},${sy(q[k][b]).toFixed(1)}`; });
      for (let k = items.length - 1; k >= 0; k--) d += `L${sx(items[k].step).toFixed(1)},${sy(q[k][a]).toFixed(1)}`;
      svg.append(sv('path', { d: `${d}Z`, fill: color, 'fill-opacity': op, stroke: 'none' }));
    });
    let m = '';
    items.forEach((h, k) => { m += `${k ? 'L' : 'M'}${sx(h.step).toFixed(1)},${sy(q[k][4]).toFixed(1)}`; });
    svg.append(sv('path', { d: m, fill: 'none', stroke: color, 'stroke-width': 1.4 }));
    axisX(svg, L, W - R, s0, s1 > s0 ? s1 : s0 + 1, H - B + 2, (v) => String(v));
    const cursor = sv('line', { y1: T, y2: H - B, stroke: '#888', 'stroke-dasharray': '2,2', visibility: 'hidden' });
    svg.append(cursor);
    svg.addEventListener('mousemove', (e) => {
      const r = svg.getBoundingClientRect(), px = (e.clientX - r.left) / r.width * W;
      let k = 0;
      items.forEach((h, j) => { if (Math.abs(sx(h.step) - px) < Math.abs(sx(items[k].step) - px)) k = j; });
      cursor.setAttribute('x1', sx(items[k].step)); cursor.setAttribute('x2', sx(items[k].step)); cursor.setAttribute('visibility', 'visible');
      readout.textContent = `step ${items[k].step}   ` + PCTS.map((p, i) => `${p}%: ${fmt(q[k][i])}`).join('  ');
    });
    svg.addEventListener('mouseleave', () => { cursor.setAttribute('visibility', 'hidden'); readout.textContent = ''; });
    return svg;
  }

  // ---- Images -------------------------------------------------------------------------------------
  const overlay = $('#overlay');
  overlay.addEventListener('click', () => { overlay.hidden = true; });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') overlay.hidden = true; });
  const images = {
    pane: null,
    init() { this.pane = makePane('images', 'No images yet (or none match the filter).'); },
    sync() {
      syncCards(this.pane, (r) => r.images, (r, tag) => {
        const img = el('img', { alt: `${tag} (${r.name})` });
        const range = el('input', { type: 'range', min: 0, max: 0, value: 0, step: 1 });
        const label = el('span');
        const node = el('div', { class: 'card image', 'data-tag': tag, 'data-run': r.name },
          cardHead(tag, r.name),
          el('div', { class: 'imgbox' }, img), el('div', { class: 'slider' }, range, label));
        groupFor(this.pane, tag, 'grid small').box.append(node);
        let items = [];
        const show = () => {
          const it = items[+range.value];
          if (!it) return;
          const src = `/api/image?${qs({ run: r.name, tag, index: it.index })}`;
          if (img.getAttribute('src') !== src) img.src = src;
          label.textContent = `step ${it.step}  ${+range.value + 1}/${items.length}`;
          img.title = `step ${it.step} · ${it.width}×${it.height} · ${fmtWall(it.wall)}`;
        };
        range.addEventListener('input', show);
        img.addEventListener('click', () => {
          const it = items[+range.value];
          const big = $('img', overlay);
          big.src = img.src;
          // small images are enlarged by a whole factor (pixels stay square), large ones fit the window
          const k = it ? Math.max(1, Math.floor(Math.min(512 / it.width, 512 / it.height))) : 1;
          big.style.width = it ? `${it.width * k}px` : '';
          $('figcaption', overlay).textContent = `${tag} · ${r.name} · step ${it ? it.step : ''}${it ? ` · ${it.width}×${it.height}` : ''}`;
          overlay.hidden = false;
        });
        const card = new Card(node, async () => {
          const atEnd = !items.length || +range.value === items.length - 1;
          items = (await api('/api/images', { run: r.name, tag })).items.sort((a, b) => a.step - b.step || a.index - b.index);
          range.max = Math.max(0, items.length - 1);
          // the slider follows new steps only when it was at the newest
          if (atEnd) range.value = range.max;
          show();
        });
        return card;
      });
    },
  };

  // ---- Text (Markdown, HTML disabled: escaped) -----------------------------------------------------
  const md = window.markdownit({ html: false, linkify: false, typographer: false });
  // images in log text would be fetched from wherever they point: show their alt text instead
  md.renderer.rules.image = (tokens, i) => `<span class="muted">[image: ${md.utils.escapeHtml(tokens[i].content)}]</span>`;
  const linkOpen = md.renderer.rules.link_open || ((t, i, o, env, self) => self.renderToken(t, i, o));
  md.renderer.rules.link_open = (tokens, i, o, env, self) => {
    tokens[i].attrSet('rel', 'noopener noreferrer'); tokens[i].attrSet('target', '_blank');
    return linkOpen(tokens, i, o, env, self);
  };
  const text = {
    pane: null,
    init() { this.pane = makePane('text', 'No text yet (or none matches the filter).'); },
    sync() {
      syncCards(this.pane, (r) => (r.text || []).filter((t) => t !== 'nnvis/graph_svg'), (r, tag) => {
        const list = el('div');
        const node = el('div', { class: 'card text', 'data-tag': tag, 'data-run': r.name },
          cardHead(tag, r.name),
          list);
        groupFor(this.pane, tag).box.append(node);
        const card = new Card(node, async () => {
          const { items } = await api('/api/text', { run: r.name, tag });
          items.sort((a, b) => b.step - a.step);
          const shown = items.slice(0, 50);
          list.replaceChildren(...shown.map((it) => {
            const body = el('div', { class: 'md' });
            body.innerHTML = md.render(String(it.text));   // markdown-it escapes all HTML (html: false)
            return el('div', { class: 'step-entry', 'data-step': it.step }, el('div', { class: 'step-label', text: `step ${it.step} · ${fmtWall(it.wall)}` }), body);
          }));
          if (items.length > shown.length) list.append(el('div', { class: 'note', text: `${items.length - shown.length} older steps not shown` }));
        });
        return card;
      });
    },
  };

  // ---- HParams ------------------------------------------------------------------------------------
  const hparams = {
    pane: null, sort: { col: 'run', dir: 1 }, data: null,
    init() { this.pane = makePane('hparams', 'No hyperparameters were logged (the hparams plugin).', false); },
    async sync() {
      if (!state.runs.some((r) => r.hparams)) { this.pane.empty.hidden = false; this.pane.body.replaceChildren(); return; }
      this.data = await api('/api/hparams');
      this.render();
    },
    render() {
      const d = this.data;
      if (!d) return;
      const cols = [{ key: 'run', label: 'Run', get: (r) => r.run }]
        .concat(d.hparams.map((h) => ({ key: `h:${h}`, label: h, get: (r) => r.hparams[h] })))
        .concat(d.metrics.map((m) => ({ key: `m:${m}`, label: m, metric: true, get: (r) => r.metrics[m] })));
      const col = cols.find((c) => c.key === this.sort.col) || cols[0], dir = this.sort.dir;
      const rows = d.runs.filter((r) => visible(r.run)).sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        if (x == null && y == null) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true })) * dir;
      });
      const head = el('tr', null, ...cols.map((c) => el('th', {
        class: c.metric ? 'metric' : null, 'data-col': c.key, title: c.metric ? 'metric: its last value' : 'hyperparameter',
        'aria-sort': c.key === col.key ? (dir > 0 ? 'ascending' : 'descending') : null,
        onclick: () => { this.sort = { col: c.key, dir: c.key === col.key ? -dir : 1 }; this.render(); },
      }, c.label)));
      const body = rows.map((r) => el('tr', { 'data-run': r.run }, ...cols.map((c, i) => {
        const v = c.get(r);
        if (i === 0) return el('td', null, el('i', { class: 'swatch', style: `background:${colorOf(r.run)}` }), ` ${r.run}`);
        return el('td', { class: `${typeof v === 'number' ? 'num' : ''} ${c.metric ? 'metric' : ''}`, text: typeof v === 'number' ? fmt(v) : v == null ? '' : String(v) });
      })));
      this.pane.body.replaceChildren(el('table', { class: 'hp' }, el('thead', null, head), el('tbody', null, ...body)));
      this.pane.empty.hidden = true;
    },
  };

  // ---- Projector: PCA here, t-SNE in a worker ---------------------------------------------------------
  // PCA by power iteration on the centred data (v <- Xt X v, orthogonalised against the previous
  // components), without forming the covariance
  function pca(X, n, d, k = 3) {
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += X[i * d + j] / n;
    const C = new Float64Array(n * d);
    let total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) { const v = X[i * d + j] - mean[j]; C[i * d + j] = v; total += v * v; }
    const comps = [], vars = [], Xv = new Float64Array(n);
    for (let c = 0; c < Math.min(k, d); c++) {
      let v = new Float64Array(d).map((_, j) => Math.sin(j * 12.9898 + c * 78.233) + 0.1);
      for (let it = 0; it < 200; it++) {
        for (const u of comps) { let dot = 0; for (let j = 0; j < d; j++) dot += v[j] * u[j]; for (let j = 0; j < d; j++) v[j] -= dot * u[j]; }
        let norm = 0; for (let j = 0; j < d; j++) norm += v[j] * v[j];
        norm = Math.sqrt(norm) || 1; for (let j = 0; j < d; j++) v[j] /= norm;
        for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < d; j++) s += C[i * d + j] * v[j]; Xv[i] = s; }
        const w = new Float64Array(d);
        for (let i = 0; i < n; i++) { const s = Xv[i]; if (s) for (let j = 0; j < d; j++) w[j] += C[i * d + j] * s; }
        let diff = 0, wn = 0; for (let j = 0; j < d; j++) wn += w[j] * w[j];
        wn = Math.sqrt(wn) || 1; for (let j = 0; j < d; j++) { diff += Math.abs(w[j] / wn - v[j]); }
        v = w.map((x) => x / wn);
        if (diff < 1e-9) break;
      }
      let lam = 0;
      for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < d; j++) s += C[i * d + j] * v[j]; Xv[i] = s; lam += s * s; }
      comps.push(v); vars.push(total ? lam / total : 0);
    }
    const proj = comps.map((v) => { const p = new Float64Array(n); for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < d; j++) s += C[i * d + j] * v[j]; p[i] = s; } return p; });
    return { proj, vars };
  }
  function parseTSV(txt) { return txt.replace(/\r/g, '').split('\n').filter((l) => l.length).map((l) => l.split('\t')); }

  const projector = {
    pane: null, emb: null, points: null, worker: null, meta: null,
    init() {
      this.pane = makePane('projector', 'No projector embeddings (a run folder with projector_config.pbtxt).', false);
      const sel = (label, cls) => { const s = el('select', { class: cls }); return [el('label', null, label, s), s]; };
      const [lRun, run] = sel('Run'), [lEmb, emb] = sel('Embedding'), [lX, cx] = sel('X'), [lY, cy] = sel('Y');
      const [lMethod, method] = sel('Method'), [lColor, color] = sel('Colour by'), [lLabel, label] = sel('Label');
      method.append(el('option', { value: 'pca', text: 'PCA' }), el('option', { value: 'tsne', text: 't-SNE' }));
      for (let i = 0; i < 3; i++) { cx.append(el('option', { value: i, text: `PC${i + 1}` })); cy.append(el('option', { value: i, text: `PC${i + 1}` })); }
      cy.value = 1;
      const perp = el('input', { type: 'number', min: 2, max: 100, value: 30, step: 1, title: 'perplexity' });
      const go = el('button', { type: 'button', class: 'primary', text: 'Run t-SNE' }), stop = el('button', { type: 'button', text: 'Stop', disabled: true });
      const info = el('span', { class: 'muted' });
      const canvas = el('canvas', { width: 900, height: 560 });
      const legend = el('div', { class: 'proj-legend' });
      this.ui = { run, emb, cx, cy, method, color, label, perp, go, stop, info, canvas, legend, lX, lY, tsneBox: el('span', { class: 'toolbar' }, el('label', null, 'Perplexity', perp), go, stop) };
      this.pane.body.append(el('div', { class: 'toolbar' }, lRun, lEmb, lMethod, lX, lY, this.ui.tsneBox, lColor, lLabel, info),
        el('div', { class: 'stage' }, canvas), legend);
      run.addEventListener('change', () => this.loadRun());
      emb.addEventListener('change', () => this.loadEmbedding());
      method.addEventListener('change', () => this.layout());
      for (const s of [cx, cy]) s.addEventListener('change', () => this.layout());
      for (const s of [color, label]) s.addEventListener('change', () => this.draw());
      go.addEventListener('click', () => this.tsne());
      stop.addEventListener('click', () => this.stopTsne());
      canvas.addEventListener('mousemove', (e) => this.hover(e));
      canvas.addEventListener('mouseleave', hideTip);
    },
    sync() {
      const runs = state.runs.filter((r) => r.projector).map((r) => r.name), s = this.ui.run;
      this.pane.empty.hidden = runs.length > 0;
      this.pane.body.hidden = !runs.length;
      const have = [...s.options].map((o) => o.value);
      for (const r of runs) if (!have.includes(r)) s.append(el('option', { value: r, text: r }));
      if (runs.length && !this.emb && !this.loading) this.loadRun();
    },
    async loadRun() {
      this.loading = true;
      const { embeddings } = await api('/api/projector', { run: this.ui.run.value });
      this.embeddings = embeddings;
      this.ui.emb.replaceChildren(...embeddings.map((e, i) => el('option', { value: i, text: `${e.name} (${e.shape.join('×')})` })));
      await this.loadEmbedding();
      this.loading = false;
    },
    async loadEmbedding() {
      this.stopTsne();
      const e = this.embeddings[+this.ui.emb.value || 0];
      if (!e) return;
      this.ui.info.textContent = 'loading…';
      const rows = parseTSV(await (await fetch(e.tensor)).text());
      const n = rows.length, d = rows[0] ? rows[0].length : 0, X = new Float64Array(n * d);
      rows.forEach((r, i) => r.forEach((v, j) => { X[i * d + j] = +v; }));
      let meta = null;
      if (e.metadata) {
        const m = parseTSV(await (await fetch(e.metadata)).text());
        // one column: no header row (TensorBoard's rule); several: the first row names them
        meta = m.length && m[0].length > 1 ? { cols: m[0], rows: m.slice(1) } : { cols: ['label'], rows: m };
      }
      this.emb = { e, X, n, d }; this.meta = meta;
      const cols = meta ? meta.cols : [];
      this.ui.color.replaceChildren(el('option', { value: '', text: '(none)' }), ...cols.map((c, i) => el('option', { value: i, text: c })));
      this.ui.label.replaceChildren(el('option', { value: '', text: '(index)' }), ...cols.map((c, i) => el('option', { value: i, text: c })));
      if (cols.length) { this.ui.label.value = 0; this.ui.color.value = cols.length > 1 ? 1 : 0; }
      this.pcaResult = pca(X, n, d, 3);
      this.layout();
    },
    layout() {
      const tsne = this.ui.method.value === 'tsne';
      this.ui.lX.hidden = this.ui.lY.hidden = tsne; this.ui.tsneBox.hidden = !tsne;
      if (!this.emb) return;
      const { n, d } = this.emb;
      if (!tsne) {
        this.stopTsne();
        const { proj, vars } = this.pcaResult, a = +this.ui.cx.value, b = +this.ui.cy.value;
        this.points = { x: proj[Math.min(a, proj.length - 1)], y: proj[Math.min(b, proj.length - 1)] };
        this.ui.info.textContent = `${n} points × ${d} dims · variance explained: ${vars.map((v, i) => `PC${i + 1} ${(v * 100).toFixed(1)}%`).join(', ')}`;
      } else if (!this.tsneY) {
        this.points = null;
        this.ui.info.textContent = n > 5000 ? `${n} points: t-SNE here takes up to 5,000` : 'press “Run t-SNE”';
      }
      this.draw();
    },
    tsne() {
      const { X, n, d } = this.emb;
      if (n > 5000) return;
      this.stopTsne();
      this.worker = new Worker('/static/tsne.js');
      this.ui.go.disabled = true; this.ui.stop.disabled = false;
      this.worker.onmessage = (m) => {
        const { Y, iter, done } = m.data;
        if (Y) {
          const x = new Float64Array(n), y = new Float64Array(n);
          for (let i = 0; i < n; i++) { x[i] = Y[2 * i]; y[i] = Y[2 * i + 1]; }
          this.tsneY = true; this.points = { x, y }; this.draw();
        }
        this.ui.info.textContent = `t-SNE: iteration ${iter}${done ? ' (done)' : '…'}`;
        if (done) this.stopTsne(true);
      };
      this.worker.postMessage({ X, n, d, perplexity: +this.ui.perp.value || 30, iterations: 1000 });
    },
    stopTsne(keep) {
      if (this.worker) { this.worker.terminate(); this.worker = null; }
      this.ui.go.disabled = false; this.ui.stop.disabled = true;
      if (!keep) this.tsneY = this.tsneY && this.ui.method.value === 'tsne';
    },
    colorFn() {
      const ci = this.ui.color.value;
      if (ci === '' || !this.meta) return { fn: () => '#1f77b4', legend: [] };
      const vals = this.meta.rows.map((r) => r[+ci]);
      const uniq = [...new Set(vals)];
      if (uniq.length <= 20) {
        const map = new Map(uniq.map((u, i) => [u, PALETTE[i % PALETTE.length]]));
        return { fn: (i) => map.get(vals[i]) || '#999', legend: uniq.map((u) => [u, map.get(u)]) };
      }
      const nums = vals.map(Number);
      if (nums.every(Number.isFinite)) {
        const lo = Math.min(...nums), hi = Math.max(...nums);
        return { fn: (i) => `hsl(${240 - 240 * (nums[i] - lo) / (hi - lo || 1)},70%,45%)`, legend: [[`${fmt(lo)}`, 'hsl(240,70%,45%)'], [`${fmt(hi)}`, 'hsl(0,70%,45%)']] };
      }
      return { fn: () => '#1f77b4', legend: [] };
    },
    draw() {
      const cv = this.ui.canvas, ctx = cv.getContext('2d');
      const W = cv.clientWidth || 900, H = Math.round(W * 0.6), dpr = window.devicePixelRatio || 1;
      cv.width = W * dpr; cv.height = H * dpr; cv.style.height = `${H}px`;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, H);
      const p = this.points;
      this.screen = null;
      if (!p) return;
      const n = p.x.length, pad = 20;
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (let i = 0; i < n; i++) { x0 = Math.min(x0, p.x[i]); x1 = Math.max(x1, p.x[i]); y0 = Math.min(y0, p.y[i]); y1 = Math.max(y1, p.y[i]); }
      const s = Math.min((W - 2 * pad) / (x1 - x0 || 1), (H - 2 * pad) / (y1 - y0 || 1));
      const ox = (W - (x1 - x0) * s) / 2, oy = (H - (y1 - y0) * s) / 2;
      const sx = new Float32Array(n), sy = new Float32Array(n), { fn, legend } = this.colorFn();
      const r = n > 2000 ? 2 : 3.2;
      for (let i = 0; i < n; i++) {
        sx[i] = ox + (p.x[i] - x0) * s; sy[i] = H - (oy + (p.y[i] - y0) * s);
        ctx.fillStyle = fn(i); ctx.globalAlpha = 0.8;
        ctx.beginPath(); ctx.arc(sx[i], sy[i], r, 0, 2 * Math.PI); ctx.fill();
      }
      ctx.globalAlpha = 1;
      this.screen = { sx, sy };
      this.ui.legend.replaceChildren(...legend.map(([t, c]) => el('span', null, el('i', { class: 'swatch', style: `background:${c}` }), t)));
    },
    hover(e) {
      if (!this.screen) return;
      const r = this.ui.canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
      const { sx, sy } = this.screen;
      let best = -1, bd = 64;
      for (let i = 0; i < sx.length; i++) { const d = (sx[i] - x) ** 2 + (sy[i] - y) ** 2; if (d < bd) { bd = d; best = i; } }
      if (best < 0) { hideTip(); return; }
      let t = `#${best}`;
      if (this.meta && this.meta.rows[best]) {
        const li = this.ui.label.value, row = this.meta.rows[best];
        t = li === '' ? t : row[+li];
        if (this.meta.cols.length > 1) t += `\n${this.meta.cols.map((c, i) => `${c}: ${row[i]}`).join('\n')}`;
      }
      showTip(e, t);
    },
  };

  // ---- Graph ------------------------------------------------------------------------------------------
  // the layered layout, edge paths and wheel zoom / drag pan are graph.js's, shared with nnvis view
  const { zoomPan, layout: layoutNodes, edgePath } = window.nnvisGraph;
  // an SVG from a log file made inert: no scripts, no event attributes, no links out
  function inertSVG(text) {
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = doc.documentElement;
    if (!svg || svg.nodeName !== 'svg') return null;
    for (const n of svg.querySelectorAll('script, foreignObject, iframe, object, embed')) n.remove();
    for (const n of [svg, ...svg.querySelectorAll('*')]) {
      for (const a of [...n.attributes]) {
        const v = a.value.trim().toLowerCase();
        if (a.name.startsWith('on') || ((a.localName === 'href') && !v.startsWith('#') && !v.startsWith('data:'))) n.removeAttribute(a.name);
      }
    }
    return document.importNode(svg, true);
  }
  // a GraphDef's nodes in layers (graph.js): inputs named without ^control and :output marks
  const NW = 150, NH = 36;
  function layoutGraph(nodes) {
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const clean = (s) => s.replace(/^\^/, '').replace(/:\d+$/, '');
    const ins = new Map(nodes.map((n) => [n.name, (n.inputs || []).map(clean).filter((s) => byName.has(s))]));
    return layoutNodes(nodes.map((n) => ({ id: n.name, preds: ins.get(n.name), w: NW, h: NH })), { gapX: 26, gapY: 54, margin: 10 });
  }
  const graph = {
    pane: null,
    init() {
      this.pane = makePane('graph', 'No graphs (nnvis writes one with fit{tensorboard = ...}; TensorFlow and tensorboardX write GraphDefs).', false);
      const run = el('select');
      this.ui = { run, view: el('div', { class: 'stage graph-view' }), info: el('div', { class: 'graph-info card' }, el('div', { class: 'muted', text: 'Click a node to see its attributes. Wheel to zoom, drag to pan, double-click to reset.' })) };
      this.pane.body.append(el('div', { class: 'toolbar' }, el('label', null, 'Run', run)), el('div', { class: 'graph-wrap' }, this.ui.view, this.ui.info));
      run.addEventListener('change', () => this.load());
    },
    sync() {
      const runs = state.runs.filter((r) => r.graph).map((r) => r.name), s = this.ui.run;
      this.pane.empty.hidden = runs.length > 0; this.pane.body.hidden = !runs.length;
      const have = [...s.options].map((o) => o.value);
      for (const r of runs) if (!have.includes(r)) s.append(el('option', { value: r, text: r }));
      if (runs.length && s.value !== this.shown) this.load();
    },
    async load() {
      const run = this.ui.run.value;
      this.shown = run;
      const g = await api('/api/graph', { run });
      const view = this.ui.view;
      view.replaceChildren();
      if (g.kind === 'nnvis') {
        const svg = inertSVG(g.svg);
        if (!svg) { view.textContent = 'the graph could not be read'; return; }
        const w = parseFloat(svg.getAttribute('width')) || 400, h = parseFloat(svg.getAttribute('height')) || 300;
        const vb = (svg.getAttribute('viewBox') || `0 0 ${w} ${h}`).split(/[\s,]+/).map(Number);
        svg.removeAttribute('width'); svg.removeAttribute('height');
        view.append(svg);
        zoomPan(svg, { x: vb[0], y: vb[1], w: vb[2], h: vb[3] });
        this.ui.info.replaceChildren(el('div', { class: 'muted', text: 'nnvis diagram. Wheel to zoom, drag to pan, double-click to reset.' }));
        view.dataset.run = run;
        return;
      }
      const nodes = g.nodes || [], L = layoutGraph(nodes), byName = new Map(nodes.map((n) => [n.name, n]));
      const svg = sv('svg', { preserveAspectRatio: 'xMidYMid meet' });
      const defs = sv('defs'), marker = sv('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' });
      marker.append(sv('path', { d: 'M0,0L8,4L0,8z', fill: '#9aa4ae' }));
      defs.append(marker); svg.append(defs);
      const edges = sv('g'), layer = sv('g');
      svg.append(edges, layer);
      for (const e of L.edges) edges.append(sv('path', { class: 'edge', d: edgePath(e.points), 'marker-end': 'url(#arrow)' }));
      for (const n of nodes) {
        const p = L.pos.get(n.name), b = { x: p.x - NW / 2, y: p.y };
        const short = n.name.length > 22 ? `…${n.name.slice(-21)}` : n.name, op = n.op || '';
        const gnode = sv('g', { class: 'node', transform: `translate(${b.x},${b.y})`, 'data-name': n.name });
        const t1 = sv('text', { x: 8, y: 15 }), t2 = sv('text', { x: 8, y: 29, class: 'op' });
        t1.textContent = short; t2.textContent = op.length > 24 ? `${op.slice(0, 23)}…` : op;
        const title = sv('title'); title.textContent = n.name;
        gnode.append(sv('rect', { width: NW, height: NH, rx: 4 }), t1, t2, title);
        gnode.addEventListener('click', () => {
          for (const o of layer.querySelectorAll('.sel')) o.classList.remove('sel');
          gnode.classList.add('sel');
          this.details(byName.get(n.name));
        });
        layer.append(gnode);
      }
      view.append(svg);
      // a small graph is drawn at its own size (not blown up to the view), centred
      const w = Math.max(L.width, view.clientWidth || 300), h = Math.max(L.height, view.clientHeight || 200);
      zoomPan(svg, { x: (L.width - w) / 2, y: Math.min(0, (L.height - h) / 2), w, h });
      this.ui.info.replaceChildren(el('div', { class: 'muted', text: `${nodes.length} nodes. Click a node to see its attributes.` }));
      view.dataset.run = run;
    },
    details(n) {
      const attrs = Object.entries(n.attrs || {});
      const row = (k, v) => el('tr', null, el('td', { text: k }), el('td', { text: v }));
      this.ui.info.replaceChildren(el('h4', { text: n.name }), el('table', null,
        row('op', n.op || ''), row('inputs', (n.inputs || []).join('\n') || '(none)'),
        ...attrs.map(([k, v]) => row(k, typeof v === 'string' ? v : JSON.stringify(v)))));
    },
  };

  // ---- tabs, runs, options, live polling -----------------------------------------------------------
  const TABS = {
    scalars: { title: 'Scalars', obj: scalars, has: (r) => (r.scalars || []).length },
    histograms: { title: 'Histograms', obj: histCardPane('histograms', 'ridge'), has: (r) => (r.histograms || []).length },
    distributions: { title: 'Distributions', obj: histCardPane('distributions', 'dist'), has: (r) => (r.histograms || []).length },
    images: { title: 'Images', obj: images, has: (r) => (r.images || []).length },
    text: { title: 'Text', obj: text, has: (r) => (r.text || []).filter((t) => t !== 'nnvis/graph_svg').length },
    hparams: { title: 'HParams', obj: hparams, has: (r) => r.hparams },
    projector: { title: 'Projector', obj: projector, has: (r) => r.projector },
    graph: { title: 'Graph', obj: graph, has: (r) => r.graph },
  };
  const TAGGED = new Set(['scalars', 'histograms', 'distributions', 'images', 'text']);
  let current = null;
  const synced = new Map();   // tab -> the version it last synced at
  function selectTab(name) {
    if (!TABS[name]) name = 'scalars';
    current = name;
    for (const [k, t] of Object.entries(TABS)) {
      t.obj.pane.node.classList.toggle('active', k === name);
      t.button.classList.toggle('active', k === name);
    }
    document.body.classList.toggle('not-tags', !TAGGED.has(name));
    document.body.classList.toggle('not-scalars', name !== 'scalars');
    if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
    syncTab(name);
    if (name === 'projector' && projector.points) projector.draw();
  }
  function syncTab(name) {
    if (synced.get(name) === state.version) return;
    synced.set(name, state.version);
    Promise.resolve(TABS[name].obj.sync()).catch((e) => console.error(e));
  }
  for (const [k, t] of Object.entries(TABS)) {
    t.obj.init();
    t.button = el('button', { type: 'button', 'data-tab': k, text: t.title, onclick: () => selectTab(k) });
    $('#tabs').append(t.button);
  }

  function renderRuns() {
    const ul = $('#runs');
    const have = new Map([...ul.children].map((li) => [li.dataset.run, li]));
    for (const r of state.runs) {
      if (have.has(r.name)) continue;
      const cb = el('input', { type: 'checkbox', checked: visible(r.name) });
      cb.addEventListener('change', () => { if (cb.checked) state.hidden.delete(r.name); else state.hidden.add(r.name); visibilityChanged(); });
      ul.append(el('li', { 'data-run': r.name }, el('label', { title: r.name }, cb, el('i', { class: 'swatch', style: `background:${colorOf(r.name)}` }), r.name)));
    }
    $('#run-count').textContent = `(${state.runs.length})`;
  }
  function visibilityChanged() {
    for (const li of $('#runs').children) $('input', li).checked = visible(li.dataset.run);
    scalars.visibility();
    for (const k of TAGGED) applyFilter(TABS[k].obj.pane);
    hparams.render();
  }
  $('#runs-all').addEventListener('click', () => { state.hidden.clear(); visibilityChanged(); });
  $('#runs-none').addEventListener('click', () => { for (const r of state.runs) state.hidden.add(r.name); visibilityChanged(); });

  const filter = $('#filter');
  filter.addEventListener('input', () => {
    const err = $('#filter-error');
    try {
      state.filter = filter.value ? new RegExp(filter.value, 'i') : null;
      err.hidden = true; filter.classList.remove('bad');
    } catch (e) {
      // an invalid regex is shown, and the last good filter stays
      err.textContent = `invalid regex: ${e.message.replace(/^Invalid regular expression: /, '')}`;
      err.hidden = false; filter.classList.add('bad');
      return;
    }
    for (const k of TAGGED) applyFilter(TABS[k].obj.pane);
  });
  const slider = $('#smoothing'), sout = $('#smoothing-out');
  slider.addEventListener('input', () => {
    state.smoothing = +slider.value; sout.textContent = state.smoothing.toFixed(2);
    scalars.redrawAll(false);
  });
  $('#logy').addEventListener('change', (e) => { state.logY = e.target.checked; scalars.redrawAll(false); });
  for (const r of document.querySelectorAll('input[name=xmode]')) {
    r.addEventListener('change', () => { state.xMode = r.value; scalars.redrawAll(true); });
  }

  // warnings from the server, in a bar the user can dismiss (it comes back for new ones only)
  const bar = $('#warnings');
  $('.dismiss', bar).addEventListener('click', () => { for (const li of $('ul', bar).children) state.warningsSeen.add(li.textContent); bar.hidden = true; });
  function showWarnings(list) {
    const fresh = (list || []).filter((w) => !state.warningsSeen.has(w));
    $('ul', bar).replaceChildren(...fresh.map((w) => el('li', { text: w })));
    bar.hidden = fresh.length === 0;
  }

  const status = $('#status');
  async function poll() {
    let d;
    try { d = await api('/api/runs'); } catch (e) {
      status.textContent = 'server unreachable'; status.classList.add('down');
      return;
    }
    status.classList.remove('down');
    status.textContent = `live · ${d.runs.length} run${d.runs.length === 1 ? '' : 's'} · ${new Date().toLocaleTimeString()}`;
    if (d.version === state.version) return;
    state.version = d.version;
    state.runs = d.runs;
    state.byName = new Map(d.runs.map((r) => [r.name, r]));
    for (const r of d.runs) colorOf(r.name);
    renderRuns();
    showWarnings(d.warnings);
    for (const t of Object.values(TABS)) t.button.disabled = !d.runs.some(t.has);
    syncTab(current);
    board.version = d.version;
  }
  async function loop() {
    await poll();
    setTimeout(loop, 1000);
  }

  // what the browser specs look at (spec/board_browser.js)
  const board = window.nnvisBoard = { state, scalars, images, hparams, projector, graph, smooth, version: null, selectTab };
  window.addEventListener('hashchange', () => { if (location.hash.slice(1) !== current) selectTab(location.hash.slice(1)); });
  selectTab(location.hash.slice(1) || 'scalars');
  loop();
})();

// Drives the board's page in headless Debian Chromium (playwright-core from build/node) and prints
// what it saw as one JSON object; spec/board_page_spec.lua asserts on it.
//   node spec/board_browser.js URL CTL_DIR SCREENSHOT.png
// Halfway, it writes CTL_DIR/ready and waits for a new tag and a new run to appear on the page (the
// spec writes them when it sees that file).  Nothing here decides pass or fail.
'use strict';
const fs = require('fs');
const path = require('path');
const common = require('./browser_common.js');
const { chromium, sleep } = common;

const [url, ctl, shot] = process.argv.slice(2);
const out = { steps: [], errors: [], requests: [] };
const waitFor = (page, fn, arg, timeout = 8000) => common.waitFor(page, fn, arg, timeout, 100);

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.setDefaultTimeout(8000);
    page.on('request', (r) => out.requests.push(r.url()));
    page.on('pageerror', (e) => out.errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
    await page.goto(url);
    await waitFor(page, () => document.querySelectorAll('#runs li').length >= 2 &&
      [...document.querySelectorAll('.card.scalar')].some((c) => c.nnvisCard && c.nnvisCard.inView && c.dataset.loaded));
    out.runs = await page.$$eval('#runs li', (lis) => lis.map((li) => li.dataset.run));
    out.scalar_tags = await page.$$eval('.card.scalar', (cs) => cs.map((c) => c.dataset.tag));
    out.tabs_enabled = await page.$$eval('#tabs button', (bs) => bs.filter((b) => !b.disabled).map((b) => b.dataset.tab));

    // ---- hover: the legend shows the run's point at the pointer's step --------------------------------
    const target = await page.evaluate(() => {
      const c = [...window.nnvisBoard.scalars.charts.values()].find((c) => c.g && c.built.runs.length);
      const run = c.built.runs[0], d = c.data.get(run), i = Math.floor(d.step.length * 0.4);
      const [cx, cy] = c.g.toDomCoords(d.step[i], c.smoothed.get(run)[i]);
      const r = c.chart.getBoundingClientRect();
      c.chart.scrollIntoView({ block: 'center' });
      const r2 = c.chart.getBoundingClientRect();
      return { tag: c.tag, run, step: d.step[i], value: d.value[i], x: r2.left + cx, y: r2.top + cy, before: c.g.xAxisRange(), moved: r.top !== r2.top };
    });
    await page.mouse.move(target.x, target.y, { steps: 4 });
    await sleep(100);
    out.hover = await page.evaluate(({ tag, run }) => {
      const c = window.nnvisBoard.scalars.charts.get(tag);
      const tr = [...c.legend.querySelectorAll('tr.point')].find((t) => t.dataset.run === run);
      return tr ? { step: +tr.dataset.step, value: +tr.dataset.value, text: tr.textContent } : null;
    }, target);
    out.hover_expected = { step: target.step, value: target.value, run: target.run, tag: target.tag };
    out.steps.push('hover');

    // ---- smoothing changes the drawn line, not the data ---------------------------------------------
    const snap = () => page.evaluate(({ tag, run }) => {
      const c = window.nnvisBoard.scalars.charts.get(tag), j = c.built.runs.indexOf(run);
      const drawn = [], raw = [];
      for (let r = 0; r < c.g.numRows(); r++) {
        const s = c.g.getValue(r, 2 + 2 * j), v = c.g.getValue(r, 1 + 2 * j);
        if (s != null) drawn.push(Array.isArray(s) ? s[1] : s);
        if (v != null) raw.push(Array.isArray(v) ? v[1] : v);
      }
      return { data: JSON.stringify(c.data.get(run).value), drawn, raw, values: c.data.get(run).value };
    }, target);
    const setSmoothing = (w) => page.evaluate((w) => {
      const s = document.getElementById('smoothing'); s.value = w; s.dispatchEvent(new Event('input'));
    }, w);
    await setSmoothing(0);
    const s0 = await snap();
    await setSmoothing(0.9);
    const s9 = await snap();
    // TensorBoard's debiased EMA, computed here from the fetched data
    let last = 0, n = 0;
    const ema = s9.values.map((v) => { last = last * 0.9 + 0.1 * v; n++; return last / (1 - 0.9 ** n); });
    out.smoothing = {
      data_unchanged: s0.data === s9.data,
      raw_unchanged: JSON.stringify(s0.raw) === JSON.stringify(s9.raw),
      raw_is_data: JSON.stringify(s0.raw) === JSON.stringify(s0.values),
      unsmoothed_is_data: s0.drawn.every((v, i) => Math.abs(v - s0.values[i]) <= 1e-9 * (1 + Math.abs(v))),
      drawn_changed: s0.drawn.some((v, i) => Math.abs(v - s9.drawn[i]) > 1e-9),
      drawn_is_ema: s9.drawn.length === ema.length && s9.drawn.every((v, i) => Math.abs(v - ema[i]) <= 1e-6 * (1 + Math.abs(v))),
    };
    await setSmoothing(0.6);
    out.steps.push('smoothing');

    // ---- drag to zoom changes the x range -----------------------------------------------------------
    const area = await page.evaluate(({ tag }) => {
      const c = window.nnvisBoard.scalars.charts.get(tag), a = c.g.getArea(), r = c.chart.getBoundingClientRect();
      return { x0: r.left + a.x + a.w * 0.3, x1: r.left + a.x + a.w * 0.6, y: r.top + a.y + a.h * 0.5 };
    }, target);
    await page.mouse.move(area.x0, area.y);
    await page.mouse.down();
    await page.mouse.move(area.x1, area.y, { steps: 8 });
    await page.mouse.up();
    await sleep(100);
    const zoomed = await page.evaluate(({ tag }) => window.nnvisBoard.scalars.charts.get(tag).g.xAxisRange(), target);
    out.zoom = { before: target.before, after: zoomed };
    await page.screenshot({ path: shot.replace(/\.png$/, '-zoom.png') });
    await page.mouse.move(5, 5);
    // the README's screenshot: the scalars tab unzoomed, hovering the first chart
    await page.evaluate(() => window.scrollTo(0, 0));

    // ---- images: the slider changes the image; a click shows it full size ---------------------------
    await page.click('#tabs button[data-tab=images]');
    await waitFor(page, () => [...document.querySelectorAll('.card.image')].some((c) => c.dataset.loaded && c.querySelector('img').complete && c.querySelector('img').naturalWidth));
    const card = await page.$('.card.image');
    const src0 = await card.$eval('img', (i) => i.src);
    const count = await card.$eval('input[type=range]', (r) => +r.max + 1);
    await card.$eval('input[type=range]', (r) => { r.value = 0; r.dispatchEvent(new Event('input')); });
    await waitFor(page, (c) => c.querySelector('img').complete && c.querySelector('img').naturalWidth > 0, card);
    const src1 = await card.$eval('img', (i) => i.src);
    const label = await card.$eval('.slider span', (s) => s.textContent);
    await card.$eval('img', (i) => i.click());
    const overlay = await page.$eval('#overlay', (o) => !o.hidden && o.querySelector('img').src);
    await page.click('#overlay');
    out.images = { count, src_last: src0, src_first: src1, label, overlay };
    out.steps.push('images');

    // ---- text: markdown rendered, <script> inert ------------------------------------------------------
    await page.click('#tabs button[data-tab=text]');
    await waitFor(page, () => document.querySelector('.card.text .md'));
    out.text = await page.evaluate(() => {
      const md = document.querySelector('.card.text .md');
      return { script_ran: window.textScriptRan === 1, scripts_in_md: document.querySelectorAll('.md script').length,
        strong: md.querySelectorAll('strong, em, h1, h2, li, code').length, text: md.textContent, html: md.innerHTML };
    });
    out.steps.push('text');

    // ---- hparams: the table sorts by a column, both ways ---------------------------------------------
    await page.click('#tabs button[data-tab=hparams]');
    await page.waitForSelector('table.hp');
    // the "layers" hyperparameter when there is one (the spec's log dir has it), else the first
    const col = await page.$$eval('table.hp th[data-col^="h:"]', (ths) => (ths.find((t) => t.dataset.col === 'h:layers') || ths[0]).dataset.col);
    const colIndex = await page.$$eval('table.hp th', (ths, col) => ths.findIndex((t) => t.dataset.col === col), col);
    const cells = () => page.$$eval('table.hp tbody tr', (trs, i) => trs.map((tr) => tr.children[i].textContent), colIndex);
    await page.click(`table.hp th[data-col="${col}"]`);
    const asc = await cells();
    await page.click(`table.hp th[data-col="${col}"]`);
    const desc = await cells();
    out.hparams = { col, asc, desc, runs: await page.$$eval('table.hp tbody tr', (trs) => trs.map((t) => t.dataset.run)),
      headers: await page.$$eval('table.hp th', (ths) => ths.map((t) => t.textContent)) };
    out.steps.push('hparams');

    // ---- projector: PCA scatter, hover label --------------------------------------------------------
    if (out.tabs_enabled.includes('projector')) {
      await page.click('#tabs button[data-tab=projector]');
      await waitFor(page, () => window.nnvisBoard.projector.screen);
      out.projector = await page.evaluate(() => {
        const p = window.nnvisBoard.projector, r = p.ui.canvas.getBoundingClientRect();
        return { n: p.points.x.length, info: p.ui.info.textContent, x: r.left + p.screen.sx[0], y: r.top + p.screen.sy[0] };
      });
      await page.mouse.move(out.projector.x, out.projector.y);
      out.projector.tip = await page.$eval('#tip', (t) => !t.hidden && t.textContent);
      await page.screenshot({ path: shot.replace(/\.png$/, '-projector.png') });
      out.steps.push('projector');
    }

    // ---- graph: laid out, a click on a node shows its op ---------------------------------------------
    if (out.tabs_enabled.includes('graph')) {
      await page.click('#tabs button[data-tab=graph]');
      const opts = await page.$$eval('#tab-graph select option', (os) => os.map((o) => o.value));
      out.graph = { runs: opts, kinds: {} };
      for (const run of opts) {
        await page.selectOption('#tab-graph select', run);
        await waitFor(page, (run) => document.querySelector('.graph-view').dataset.run === run && document.querySelector('.graph-view svg'), run);
        const node = await page.$('.graph-view .node');
        if (node) {
          await node.click();
          out.graph.kinds[run] = { kind: 'graphdef', nodes: await page.$$eval('.graph-view .node', (n) => n.length), info: await page.$eval('.graph-info', (i) => i.textContent) };
          await page.screenshot({ path: shot.replace(/\.png$/, '-graph.png') });
        } else {
          out.graph.kinds[run] = { kind: 'nnvis', elements: await page.$$eval('.graph-view svg *', (n) => n.length), script_ran: await page.evaluate(() => window.svgScriptRan === 1) };
        }
      }
      out.steps.push('graph');
    }

    // ---- live: a tag written and a run added while the page is open appear; the zoom stays -------------
    await page.click('#tabs button[data-tab=scalars]');
    await page.evaluate(() => window.scrollTo(0, 0));
    const v0 = await page.evaluate(() => window.nnvisBoard.version);
    fs.writeFileSync(path.join(ctl, 'ready'), 'ready\n');
    const t0 = Date.now();
    const seen = await waitFor(page, ({ tags, runs }) => {
      const t = [...document.querySelectorAll('.card.scalar')].map((c) => c.dataset.tag).filter((x) => !tags.includes(x));
      const r = [...document.querySelectorAll('#runs li')].map((li) => li.dataset.run).filter((x) => !runs.includes(x));
      return t.length && r.length && { tags: t, runs: r };
    }, { tags: out.scalar_tags, runs: out.runs }, 10000).catch(() => null);
    out.live = { seconds: (Date.now() - t0) / 1000, new_tags: seen && seen.tags, new_runs: seen && seen.runs, version_before: v0 };
    // the new run's data reaches the charts it is in, and the user's zoom is kept through the update
    await sleep(1500);
    out.live.zoom_after = await page.evaluate(({ tag }) => window.nnvisBoard.scalars.charts.get(tag).g.xAxisRange(), target);
    out.live.version_after = await page.evaluate(() => window.nnvisBoard.version);
    out.steps.push('live');

    // the screenshot of the scalars tab (the README's): zoom reset, pointer on the first chart
    await page.evaluate(() => { for (const c of window.nnvisBoard.scalars.charts.values()) if (c.g) c.g.resetZoom(); });
    const first = await page.evaluate(() => {
      const c = [...window.nnvisBoard.scalars.charts.values()].find((c) => c.g);
      const a = c.g.getArea(), r = c.chart.getBoundingClientRect();
      return { x: r.left + a.x + a.w * 0.55, y: r.top + a.y + a.h * 0.5 };
    });
    await page.mouse.move(first.x - 40, first.y);
    await page.mouse.move(first.x, first.y, { steps: 4 });
    await sleep(150);
    await page.screenshot({ path: shot });
    await page.close();
  } finally {
    await browser.close();
  }
  const origin = new URL(url).origin;
  out.foreign = out.requests.filter((r) => !r.startsWith(origin + '/') && !r.startsWith('data:') && !r.startsWith('blob:'));
}

main().catch((e) => { out.fatal = String(e && e.stack || e); }).finally(() => {
  process.stdout.write(JSON.stringify(out) + '\n');
});

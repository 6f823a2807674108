// Drives the model viewer's page (nnvis view) in headless Debian Chromium (playwright-core from
// build/node) and prints what it saw as one Lua table constructor (`return {...}`, so the spec
// reads it with load() and needs no JSON reader); spec/view_page_spec.lua asserts on it.
//   node spec/view_browser.js URL SCREENSHOT.png DOWNLOAD_DIR
// Nothing here decides pass or fail.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const common = require('./browser_common.js');
const { chromium, sleep } = common;

const [url, shot, downloads] = process.argv.slice(2);
const out = { steps: [], errors: [], requests: [] };
const waitFor = (page, fn, arg, timeout = 8000) => common.waitFor(page, fn, arg, timeout, 80);
// a raw GET with the path exactly as given (no normalisation of .. by a browser)
function rawGet(p) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: p, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, csp: res.headers['content-security-policy'] || null, nosniff: res.headers['x-content-type-options'] || null }));
    });
    req.on('error', (e) => resolve({ status: 0, error: String(e) }));
    req.end();
  });
}
const boxes = (page) => page.$$eval('#stage svg .node', (n) => n.length);
async function saveDownload(page, button) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const file = path.join(downloads, dl.suggestedFilename());
  await dl.saveAs(file);
  return { name: dl.suggestedFilename(), bytes: fs.readFileSync(file) };
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 880 }, acceptDownloads: true });
    page.setDefaultTimeout(8000);
    page.on('request', (r) => out.requests.push(r.url()));
    page.on('pageerror', (e) => out.errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
    await page.goto(url);
    await waitFor(page, () => document.body.dataset.ready === '1');
    out.header = await page.$eval('#top', (h) => ({ title: h.querySelector('#title').textContent, facts: h.querySelector('#facts').textContent }));
    out.boxes = await boxes(page);
    out.clusters = await page.$$eval('#stage svg .cluster', (cs) => cs.map((c) => c.dataset.scope));
    await page.screenshot({ path: shot.replace(/\.png$/, '-fit.png') });
    out.steps.push('loaded');

    // ---- wheel zoom and drag pan move the viewBox -----------------------------------------------
    const vb = () => page.$eval('#stage svg', (s) => s.getAttribute('viewBox').split(' ').map(Number));
    const r = await page.$eval('#stage', (s) => { const b = s.getBoundingClientRect(); return { x: b.left + b.width / 2, y: b.top + b.height / 2 }; });
    const v0 = await vb();
    await page.mouse.move(r.x, r.y);
    await page.mouse.wheel(0, -300);
    await sleep(100);
    const v1 = await vb();
    await page.mouse.down(); await page.mouse.move(r.x + 80, r.y + 40, { steps: 5 }); await page.mouse.up();
    const v2 = await vb();
    out.zoom = { before: v0, wheel: v1, drag: v2 };
    await page.click('#fit');
    out.steps.push('zoom');

    // ---- fold and unfold layer1 -----------------------------------------------------------------
    await page.click('#stage svg .cluster-label[data-scope="layer1"]');
    out.folded = { boxes: await boxes(page), scope_box: await page.$$eval('#stage svg .node[data-id="scope:layer1"]', (n) => n.length),
      text: await page.$eval('#stage svg .node[data-id="scope:layer1"]', (n) => n.textContent).catch(() => null) };
    await page.click('#stage svg .node[data-id="scope:layer1"]');
    out.unfolded = { boxes: await boxes(page) };
    out.steps.push('fold');

    // ---- search: Enter centres the match --------------------------------------------------------
    await page.fill('#search', 'layer4.1.conv2');
    await page.press('#search', 'Enter');
    await sleep(100);
    out.search = await page.evaluate(() => {
      const n = document.querySelector('#stage svg .node[data-name="layer4.1.conv2"]');
      const st = document.querySelector('#stage').getBoundingClientRect();
      if (!n) return null;
      const b = n.querySelector('rect.box').getBoundingClientRect();
      return { hit: n.classList.contains('hit'), current: n.classList.contains('current'), count: document.querySelector('#search-count').textContent,
        dx: b.left + b.width / 2 - (st.left + st.width / 2), dy: b.top + b.height / 2 - (st.top + st.height / 2), width: b.width };
    });
    // a search by kind finds every box of that kind
    await page.fill('#search', 'BatchNorm2d');
    out.search_kind = { count: await page.$eval('#search-count', (c) => c.textContent), hits: await page.$$eval('#stage svg .node.hit', (n) => n.length) };
    await page.fill('#search', '');
    out.steps.push('search');

    // ---- a node's click: the panel ----------------------------------------------------------------
    await page.click('#stage svg .node[data-name="layer4.1.conv2"]');
    await waitFor(page, () => !document.querySelector('#panel').hidden);
    out.panel = await page.evaluate(() => {
      const p = document.querySelector('#panel');
      const cells = Object.fromEntries([...p.querySelectorAll('table:first-of-type tr')].map((tr) => [tr.children[0].textContent, tr.children[1].textContent]));
      return { title: p.querySelector('h2').textContent, kind: p.querySelector('.chip').textContent, cells,
        config: p.querySelectorAll('table.config tr').length, weights: [...p.querySelectorAll('.weight')].map((w) => w.dataset.weight),
        bars: p.querySelectorAll('.weight svg.hist rect').length, stats: p.querySelector('.weight .stats') && p.querySelector('.weight .stats').textContent };
    });
    await waitFor(page, () => { const i = document.querySelector('#panel figure.maps img'); return i && i.complete && i.naturalWidth > 0; });
    out.maps = await page.$eval('#panel figure.maps img', (i) => ({ src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight }));
    out.cam_before = await page.$$eval('#panel figure.cam img', (i) => i.length);
    await page.click('#cam-button');
    await waitFor(page, () => { const i = document.querySelector('#panel figure.cam img'); return i && i.complete && i.naturalWidth > 0; });
    out.cam = await page.$eval('#panel figure.cam', (f) => ({ src: f.querySelector('img').getAttribute('src'), w: f.querySelector('img').naturalWidth,
      shown: !f.hidden, caption: f.querySelector('figcaption').textContent }));
    await page.mouse.move(5, 300);
    await page.$eval('#panel', (p) => { p.scrollTop = 0; });
    await page.screenshot({ path: shot });
    out.steps.push('panel');

    // ---- export: SVG and PNG made in the page -----------------------------------------------------
    const s = await saveDownload(page, '#export-svg');
    const text = s.bytes.toString('utf8');
    out.svg = { name: s.name, bytes: s.bytes.length, head: text.slice(0, 60), nodes: (text.match(/<g class="node[ "]/g) || []).length,
      has_name: text.includes('layer4.1.conv2'), script: /<script/i.test(text) };
    const p = await saveDownload(page, '#export-png');
    out.png = { name: p.name, bytes: p.bytes.length, magic: p.bytes.slice(0, 4).toString('latin1') === '\x89PNG',
      width: p.bytes.readUInt32BE(16), height: p.bytes.readUInt32BE(20) };
    out.steps.push('export');

    // ---- everything folded to the top-level scopes ------------------------------------------------
    await page.click('#panel-close');
    await page.click('#collapse-all');
    out.collapsed = { boxes: await boxes(page), scopes: await page.$$eval('#stage svg .node.scope', (n) => n.map((g) => g.dataset.id)) };
    await page.screenshot({ path: shot.replace(/\.png$/, '-folded.png') });
    out.steps.push('collapse');
    await page.close();
  } finally {
    await browser.close();
  }
  // ---- traversal and unknown paths, sent as written ----------------------------------------------
  out.raw = {};
  for (const p of ['/', '/static/view.js', '/static/graph.js', '/data/graph.json', '/data/input.png', '/static/../init.lua', '/static/%2e%2e/init.lua',
    '/static/%2E%2E%2Fserver.lua', '/data/../graph.json', '/data/maps/..%2f..%2fgraph.json', '/data/%2e%2e/%2e%2e/etc/passwd',
    '/static/..%5cserver.lua', '/data/maps/1.png%00', '/data/maps/x.png', '/api/runs', '/static/']) out.raw[p] = await rawGet(p);
  const origin = new URL(url).origin;
  out.foreign = out.requests.filter((r) => !r.startsWith(origin + '/') && !r.startsWith('data:') && !r.startsWith('blob:'));
}

// a value as Lua source: arrays as sequences, objects as tables with ["key"] fields, null as nil
function lua(v) {
  if (v == null) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v).replace(/\\u([0-9a-fA-F]{4})/g, '\\u{$1}');
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '(0/0)';
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `{${v.map(lua).join(', ')}}`;
  return `{${Object.entries(v).map(([k, x]) => `[${lua(k)}] = ${lua(x)}`).join(', ')}}`;
}

main().catch((e) => { out.fatal = String(e && e.stack || e); }).finally(() => {
  process.stdout.write(`return ${lua(out)}\n`);
});

// What the browser specs' drivers share (spec/board_browser.js, spec/view_browser.js):
// playwright-core from build/node (it drives Debian's chromium; no browser is downloaded), a
// sleep, and waitFor, which polls a predicate in the page: page.waitForFunction evaluates
// strings, which the pages' CSP (no 'unsafe-eval') refuses.
'use strict';
const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'build', 'node', 'node_modules', 'playwright-core'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, fn, arg, timeout = 8000, every = 100) {
  const t0 = Date.now();
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out waiting for ${String(fn).slice(0, 120)}`);
    await sleep(every);
  }
}

module.exports = { chromium, sleep, waitFor };

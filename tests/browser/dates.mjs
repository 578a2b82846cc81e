// Drives the viewer's date controls in headless Chromium. It moves the date slider of a dated
// layer to its first date and opens a swipe comparison with its last date. It then checks that
// the map requested tiles of both dates and drew them without errors.
//
// Usage: node tests/browser/dates.mjs URL OUT.png
//
// URL is the viewer over a dated layer, for example http://127.0.0.1:PORT/?style=#13/47.02/-99.16.
// Prints a one-line JSON summary and exits 1 when a check fails, 2 on wrong usage. Chromium
// comes from the system (CHROMIUM_PATH, default /usr/bin/chromium). Requests to other hosts
// are aborted and counted as failures.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT_MS = 60_000;
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Resolves with the first response of the page whose URL has `date=DATE`, with its status.
function dateResponse(page, date) {
  return page
    .waitForResponse((response) => response.url().includes(`date=${date}`), {
      timeout: TIMEOUT_MS,
    })
    .then((response) => ({ date, status: response.status(), url: response.url() }));
}

async function check(url, output, userDataDir) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
  const problems = [];
  const summary = { url: url.href, screenshot: output };
  try {
    await context.route(
      (requested) => requested.origin !== url.origin,
      (route) => {
        problems.push(`request to another host: ${route.request().url()}`);
        return route.abort('blockedbyclient');
      },
    );
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400) {
        problems.push(`HTTP ${response.status()}: ${response.url()}`);
      }
    });
    await page.goto(url.href, { waitUntil: 'load' });
    await page.waitForFunction(() => window.tesseraDates?.layers().length > 0, null, {
      timeout: TIMEOUT_MS,
    });
    const layer = await page.evaluate(() => {
      const id = document.getElementById('dated-layer').value;
      return window.tesseraDates.layers().find((candidate) => candidate.id === id);
    });
    summary.layer = layer;
    const [first, last] = [layer.dates[0], layer.dates.at(-1)];

    // The slider at its first stop requests the first date's tiles.
    const firstTiles = dateResponse(page, first);
    await page.evaluate(() => {
      const slider = document.getElementById('date-slider');
      slider.value = slider.min;
      slider.dispatchEvent(new Event('input'));
    });
    summary.slider = await firstTiles;
    summary.label = await page.textContent('#date-value');

    // A comparison with the last date opens a second map right of the swipe line.
    const lastTiles = dateResponse(page, last);
    await page.selectOption('#compare-select', last);
    summary.comparison = await lastTiles;
    summary.note = await page.textContent('#compare-note');
    summary.swipe = await page.evaluate(() => document.getElementById('swipe-slider') !== null);
    await page.waitForFunction(
      () => window.tesseraMap.loaded() && window.tesseraDates.comparisonLoaded(),
      null,
      { timeout: TIMEOUT_MS },
    );
    await page.screenshot({ path: output });
    const viewerErrors = await page.evaluate(() => window.tesseraErrors ?? []);
    problems.push(...viewerErrors.map((message) => `viewer error: ${message}`));
  } catch (error) {
    problems.push(`check failed: ${error.message}`);
  } finally {
    await context.close();
  }
  summary.errors = problems;
  return summary;
}

async function main() {
  const [url, output] = process.argv.slice(2);
  if (process.argv.length !== 4 || !URL.canParse(url)) {
    process.stderr.write('usage: node tests/browser/dates.mjs URL OUT.png\n');
    process.exit(2);
  }
  const userDataDir = await mkdtemp(join(tmpdir(), 'tessera-chromium-'));
  let summary;
  try {
    summary = await check(new URL(url), output, userDataDir);
  } finally {
    await rm(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  for (const problem of summary.errors) {
    process.stderr.write(`${problem}\n`);
  }
  process.exitCode = summary.errors.length > 0 ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`dates.mjs failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});

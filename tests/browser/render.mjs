// Renders Tessera's web viewer in headless Chromium and checks that the map draws.
//
// Usage: node tests/browser/render.mjs URL OUT.png
//
// Opens URL (the viewer, for example http://127.0.0.1:PORT/?style=tessera), waits until the
// viewer sets window.tesseraReady, and saves a screenshot to OUT.png. Prints a one-line JSON
// summary. Exits 1 and prints each problem when the viewer reports errors in
// window.tesseraErrors, the page throws, logs a console error, a request fails or goes to
// another host, or the map canvas is blank. Exits 2 on wrong usage.
//
// Chromium comes from the system (CHROMIUM_PATH, default /usr/bin/chromium): playwright-core
// downloads no browser.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const READY_TIMEOUT_MS = 60_000;
const VIEWPORT = { width: 1280, height: 800 };

// A map counts as blank when fewer canvas pixels than this differ from its most common colour,
// for example when only the background was drawn. One point that the viewer draws (a circle of
// radius 5 with a 1.5-pixel stroke) covers about 130 pixels.
const MIN_DRAWN_PIXELS = 100;

// Headless WebGL through SwiftShader, as root, with no network beyond the page's own server.
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

function parseArguments(argv) {
  const [url, output] = argv;
  if (argv.length !== 2 || !URL.canParse(url)) {
    process.stderr.write('usage: node tests/browser/render.mjs URL OUT.png\n');
    process.exit(2);
  }
  return { url: new URL(url), output };
}

// Collects page errors, console errors, failed requests and requests to other hosts. Requests
// to other hosts are aborted, so the check never reaches beyond the viewer's own server.
async function watchPage(context, page, origin) {
  const problems = [];
  await context.route(
    (url) => url.origin !== origin,
    (route) => {
      problems.push(`request to another host: ${route.request().url()}`);
      return route.abort('blockedbyclient');
    },
    { noWaitForFinish: true },
  );
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText ?? 'unknown reason';
    // MapLibre cancels requests for tiles that left the view, and Chromium reports those as
    // net::ERR_ABORTED.
    if (reason !== 'net::ERR_ABORTED') {
      problems.push(`request failed: ${request.url()} (${reason})`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`HTTP ${response.status()}: ${response.url()}`);
    }
  });
  return problems;
}

// Counts, in the page, the pixels of the map's WebGL canvas that differ from its most common
// colour. The canvas is read in the map's `render` event, before the browser clears the
// drawing buffer, so the map needs no `preserveDrawingBuffer`.
function measureCanvas() {
  return new Promise((resolve) => {
    const map = window.tesseraMap;
    map.once('render', () => {
      const source = map.getCanvas();
      const copy = document.createElement('canvas');
      copy.width = source.width;
      copy.height = source.height;
      const context = copy.getContext('2d', { willReadFrequently: true });
      context.drawImage(source, 0, 0);
      const { data } = context.getImageData(0, 0, copy.width, copy.height);

      const counts = new Map();
      for (let i = 0; i < data.length; i += 4) {
        const rgba =
          ((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0;
        counts.set(rgba, (counts.get(rgba) ?? 0) + 1);
      }
      // A loop, because V8 overflows its stack when Math.max gets 200,000 spread arguments.
      let dominant = 0;
      for (const count of counts.values()) {
        dominant = Math.max(dominant, count);
      }
      const pixels = copy.width * copy.height;
      resolve({
        width: copy.width,
        height: copy.height,
        colors: counts.size,
        drawnPixels: pixels - dominant,
      });
    });
    map.triggerRepaint();
  });
}

function describeMap() {
  const map = window.tesseraMap;
  const sourceIds = Object.keys(map.getStyle().sources);
  return {
    sources: sourceIds.length,
    sourcesLoaded: sourceIds.filter((id) => map.isSourceLoaded(id)).length,
    renderedFeatures: map.queryRenderedFeatures().length,
  };
}

async function render(url, output, userDataDir) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: VIEWPORT,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = await watchPage(context, page, url.origin);
    await page.goto(url.href, { waitUntil: 'load' });

    // Stop waiting at the first error the viewer reports, because any error fails the check.
    try {
      const readyOrFailed = () => window.tesseraReady === true || window.tesseraErrors?.length > 0;
      await page.waitForFunction(readyOrFailed, null, { timeout: READY_TIMEOUT_MS });
    } catch (error) {
      const seconds = READY_TIMEOUT_MS / 1000;
      problems.push(
        `the viewer did not set window.tesseraReady within ${seconds} s: ${error.message}`,
      );
    }
    const viewerErrors = await page.evaluate(() => window.tesseraErrors ?? []);
    problems.push(...viewerErrors.map((message) => `viewer error: ${message}`));

    const summary = { url: url.href, screenshot: output };
    const hasMap = await page.evaluate(() => window.tesseraMap !== undefined);
    if (hasMap) {
      Object.assign(summary, await page.evaluate(describeMap));
      summary.canvas = await page.evaluate(measureCanvas);
      const { drawnPixels } = summary.canvas;
      if (drawnPixels < MIN_DRAWN_PIXELS) {
        problems.push(
          `the map canvas is blank: only ${drawnPixels} pixels differ from its most common colour`,
        );
      }
    } else {
      problems.push('the viewer created no map (window.tesseraMap is not set)');
    }
    await page.screenshot({ path: output });
    summary.errors = problems;
    return summary;
  } finally {
    await context.close();
  }
}

async function main() {
  const { url, output } = parseArguments(process.argv.slice(2));
  const userDataDir = await mkdtemp(join(tmpdir(), 'tessera-chromium-'));
  let summary;
  try {
    summary = await render(url, output, userDataDir);
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
  process.stderr.write(`render.mjs failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});

// Records every request that Tessera's web viewer makes in headless Chromium.
//
// Usage: node tests/browser/requests.mjs URL
//
// Opens URL (the viewer), waits until the viewer sets window.tesseraReady and the map is idle,
// and prints one line of JSON: { origin, requests: [URL, …], problems: [text, …] }. Requests to
// another origin are recorded and aborted, so nothing reaches beyond the viewer's own server.
// Console errors (a Content-Security-Policy violation is one) and page errors are problems.
// Exits 1 when any request left the origin or any problem was seen, 2 on wrong usage.
//
// Chromium comes from the system (CHROMIUM_PATH, default /usr/bin/chromium), launched with
// the flags of render.mjs.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const READY_TIMEOUT_MS = 60_000;
const IDLE_TIMEOUT_MS = 20_000;

// The launch flags of render.mjs: headless WebGL through SwiftShader, as root, and no
// background traffic of Chromium's own.
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

async function record(url, userDataDir) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1024, height: 768 },
  });
  const requests = [];
  const problems = [];
  try {
    await context.route(
      (target) => target.origin !== url.origin,
      (route) => route.abort('blockedbyclient'),
      { noWaitForFinish: true },
    );
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') {
        problems.push(`console error: ${message.text()}`);
      }
    });
    await page.goto(url.href, { waitUntil: 'load' });
    try {
      await page.waitForFunction(() => window.tesseraReady === true, null, {
        timeout: READY_TIMEOUT_MS,
      });
      // Tiles load after the style: wait until the map has drawn what is in view.
      await page.evaluate(
        (timeout) =>
          new Promise((resolve) => {
            const map = window.tesseraMap;
            if (!map || map.loaded()) {
              resolve();
              return;
            }
            map.once('idle', resolve);
            setTimeout(resolve, timeout);
          }),
        IDLE_TIMEOUT_MS,
      );
    } catch (error) {
      problems.push(`the viewer did not become ready: ${error.message}`);
    }
  } finally {
    await context.close();
  }
  return { origin: url.origin, requests, problems };
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length !== 1 || !URL.canParse(argv[0])) {
    process.stderr.write('usage: node tests/browser/requests.mjs URL\n');
    process.exit(2);
  }
  const url = new URL(argv[0]);
  const userDataDir = await mkdtemp(join(tmpdir(), 'tessera-chromium-'));
  let summary;
  try {
    summary = await record(url, userDataDir);
  } finally {
    await rm(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  const foreign = summary.requests.filter((request) => new URL(request).origin !== url.origin);
  const failed = foreign.length > 0 || summary.problems.length > 0;
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`requests.mjs failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});

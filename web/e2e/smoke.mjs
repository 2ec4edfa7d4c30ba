#!/usr/bin/env node
// Browser smoke test of the Lunora UI against a running server, checking what a user would see.
//
//   LUNORA_URL=http://127.0.0.1:8080 node web/e2e/smoke.mjs
//
// Env: LUNORA_URL (required), LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default
// /usr/bin/chromium). Uses playwright-core with the system Chromium; it never downloads a browser.
// Prints "ok - <check>" per check and a final "N passed, M failed"; stops at the first failure
// with exit code 1 (2 when it cannot start).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 15_000;

const base = (process.env.LUNORA_URL ?? '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('smoke: set LUNORA_URL to the server, e.g. LUNORA_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const shotDir = process.env.LUNORA_SCREENSHOT_DIR || '/tmp';
const executablePath = process.env.LUNORA_CHROMIUM || '/usr/bin/chromium';

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

/** Open `path` and require a successful HTML answer (200 for SPA deep links too). */
async function open(page, urlPath) {
  const res = await page.goto(base + urlPath, { waitUntil: 'domcontentloaded' });
  if (!res) fail(`GET ${urlPath}: no response`);
  if (res.status() !== 200) fail(`GET ${urlPath}: HTTP ${res.status()}, expected 200`);
  return res;
}

async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: TIMEOUT_MS });
  } catch {
    fail(`${what} did not appear within ${TIMEOUT_MS / 1000}s`);
  }
}

async function screenshot(page, name) {
  const file = path.join(shotDir, `lunora-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const checks = [
  {
    name: 'home shows health',
    async run(page) {
      await open(page, '/');
      await visible(page.getByRole('heading', { level: 1, name: 'Lunora' }), 'heading "Lunora" on /');
      const title = await page.title();
      if (!title.includes('Lunora')) fail(`document title is "${title}", expected it to contain "Lunora"`);
      const database = page.locator('[data-component="database"]');
      try {
        await visible(database, 'database row in "Server health"');
      } catch (err) {
        const panel = page.getByRole('region', { name: 'Server health' });
        const says = (await panel.innerText({ timeout: 1000 }).catch(() => '')).replace(/\s+/g, ' ').trim();
        throw says ? new CheckFailed(`${err.message}; the panel reads "${says}"`) : err;
      }
      const text = (await database.innerText()).replace(/\s+/g, ' ').trim();
      if (!/\bDatabase\b/.test(text) || !/\bHealthy\b/.test(text)) {
        fail(`database row reads "${text}", expected "Database … Healthy"`);
      }
      await screenshot(page, 'home');
    },
  },
  {
    name: 'login deep link shows the form',
    async run(page) {
      await open(page, '/login');
      await visible(page.getByRole('heading', { name: 'Sign in' }), 'heading "Sign in" on /login');
      await visible(page.getByLabel('Email'), 'Email field');
      await visible(page.getByLabel('Password', { exact: true }), 'Password field');
      await visible(page.getByRole('button', { name: 'Sign in' }), '"Sign in" button');
      await screenshot(page, 'login');
    },
  },
  {
    name: 'wrong password shows an error',
    async run(page) {
      await open(page, '/login');
      await page.getByLabel('Email').fill(process.env.LUNORA_SMOKE_EMAIL || 'smoke-test@example.com');
      await page.getByLabel('Password', { exact: true }).fill(`wrong-${Date.now()}`);
      const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/login'), { timeout: TIMEOUT_MS });
      await page.getByRole('button', { name: 'Sign in' }).click();
      const res = await answer.catch(() => fail('no answer from POST /api/v1/auth/login'));
      if (res.ok()) fail(`POST /api/v1/auth/login accepted a wrong password (HTTP ${res.status()})`);
      const alert = page.getByRole('alert');
      await visible(alert, 'error message after a wrong password');
      const text = (await alert.first().innerText()).trim();
      if (!text) fail('the error message is empty');
      await visible(page.getByRole('button', { name: 'Sign in' }), 'form still usable after the error');
      await screenshot(page, 'login-error');
      return `HTTP ${res.status()}: "${text}"`;
    },
  },
  {
    name: 'api docs render',
    async run(page) {
      await open(page, '/api/v1/docs');
      await visible(page.locator('.swagger-ui .info .title'), 'Swagger UI title (.swagger-ui .info .title)');
      await screenshot(page, 'api-docs');
    },
  },
  {
    name: 'unknown route shows 404 page',
    async run(page) {
      await open(page, '/no/such/page');
      await visible(page.getByRole('heading', { name: 'Page not found' }), 'heading "Page not found"');
      await screenshot(page, 'not-found');
    },
  },
];

async function main() {
  mkdirSync(shotDir, { recursive: true });
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (err) {
    console.error(`smoke: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }

  let passed = 0;
  let failed = 0;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    for (const check of checks) {
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      const crashes = [];
      page.on('pageerror', (err) => crashes.push(err.message));
      try {
        const note = await check.run(page);
        if (crashes.length) fail(`uncaught error in the page: ${crashes[0]}`);
        passed += 1;
        console.log(`ok - ${check.name}${note ? ` (${note})` : ''}`);
      } catch (err) {
        failed += 1;
        const reason = err instanceof CheckFailed ? err.message : err.stack || String(err);
        console.log(`not ok - ${check.name}: ${reason}`);
        try {
          console.log(`# screenshot of the failure: ${await screenshot(page, `FAILED-${check.name.replace(/\W+/g, '-')}`)}`);
        } catch {
          // the page may be gone; the message above is what matters
        }
        break;
      } finally {
        await page.close().catch(() => {});
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === checks.length ? 0 : 1;
}

process.exitCode = await main();

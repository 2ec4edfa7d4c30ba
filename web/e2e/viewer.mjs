#!/usr/bin/env node
// The viewer portal in Chromium against a running Lunora with live streams:
//  1. an anonymous viewer opens /watch/{public id} and the player (hls.js) plays: currentTime
//     advances, the quality menu lists the master playlist's levels;
//  2. a free account signs in and opens /watch/{premium id}: the server refuses the playback
//     token, the page shows the upgrade prompt and no video; the viewer upgrades with the test
//     payment provider's card and is sent back to the player, which now plays.
//
//   LUNORA_URL=http://127.0.0.1:8080 LUNORA_PUBLIC_ID=… LUNORA_PREMIUM_ID=… \
//   LUNORA_VIEWER_EMAIL=… LUNORA_VIEWER_PASSWORD=… node web/e2e/viewer.mjs
//
// Env: LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium).
// Prints "ok - <check>" per check and a final "N passed, M failed"; exit 1 on failure, 2 when
// it cannot start.

import path from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.LUNORA_URL ?? '').replace(/\/$/, '');
const publicId = process.env.LUNORA_PUBLIC_ID ?? '';
const premiumId = process.env.LUNORA_PREMIUM_ID ?? '';
const email = process.env.LUNORA_VIEWER_EMAIL ?? '';
const password = process.env.LUNORA_VIEWER_PASSWORD ?? '';
if (!/^https?:\/\//.test(base) || !publicId || !premiumId || !email || !password) {
  console.error('viewer: set LUNORA_URL, LUNORA_PUBLIC_ID, LUNORA_PREMIUM_ID, LUNORA_VIEWER_EMAIL, LUNORA_VIEWER_PASSWORD');
  process.exit(2);
}
const shotDir = process.env.LUNORA_SCREENSHOT_DIR || '/tmp';
const executablePath = process.env.LUNORA_CHROMIUM || '/usr/bin/chromium';

let passed = 0;
let failed = 0;
class Failed extends Error {}
const ok = (name, note) => {
  passed += 1;
  console.log(`ok - ${name}${note ? ` (${note})` : ''}`);
};
const fail = (name, reason) => {
  failed += 1;
  console.log(`not ok - ${name}: ${reason}`);
  throw new Failed(name);
};

/** Waits until the player's video has played `seconds` of media after it started. */
async function plays(page, what, seconds = 3) {
  const video = page.getByTestId('watch-video');
  try {
    await video.waitFor({ state: 'attached', timeout: 20_000 });
  } catch {
    fail(what, `no video element: ${(await page.locator('main').innerText()).slice(0, 400)}`);
  }
  const read = () =>
    page.evaluate(() => {
      const v = document.querySelector('[data-testid="watch-video"]');
      return { t: v ? v.currentTime : 0, w: v ? v.videoWidth : 0, err: document.querySelector('.player-error')?.textContent ?? null };
    });
  let deadline = Date.now() + 25_000;
  let s = await read();
  while (!(s.t > 0.5) && Date.now() < deadline && !s.err) {
    await page.waitForTimeout(250);
    s = await read();
  }
  if (!(s.t > 0.5)) fail(what, `playback did not start: ${JSON.stringify(s)}`);
  const t0 = s.t;
  deadline = Date.now() + 25_000;
  while (s.t - t0 < seconds && Date.now() < deadline) {
    await page.waitForTimeout(500);
    s = await read();
  }
  if (s.t - t0 < seconds) fail(what, `currentTime advanced only ${(s.t - t0).toFixed(2)} s`);
  ok(what, `currentTime ${t0.toFixed(2)} → ${s.t.toFixed(2)} s, ${s.w} px wide`);
}

async function main() {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
    });
  } catch (err) {
    console.error(`viewer: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }
  const errors = [];
  let page;
  try {
    // 1. Anonymous viewer, public live stream.
    const anon = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await anon.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/watch`);
    await page.locator(`[data-stream-id="${publicId}"]`).first().waitFor({ timeout: 20_000 });
    ok('the portal lists the live stream');
    await page.locator(`[data-stream-id="${publicId}"] a`).first().click();
    await page.waitForURL(`**/watch/${publicId}`);
    await plays(page, 'an anonymous viewer plays the public live stream');
    const options = await page.getByTestId('quality').locator('option').allTextContents();
    if (options.length < 2 || options[0] !== 'Auto') fail('quality menu', JSON.stringify(options));
    ok('quality menu from the master playlist', options.join(', '));
    await page.screenshot({ path: path.join(shotDir, 'viewer-anonymous.png') });
    await anon.close();

    // 2. Free account: refused by the server, upgrades, plays.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/login?next=${encodeURIComponent(`/watch/${premiumId}`)}`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    const refused = page.waitForResponse((r) => r.url().endsWith(`/api/v1/streams/${premiumId}/playback`));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`**/watch/${premiumId}`);
    const res = await refused;
    const problem = await res.json().catch(() => ({}));
    if (res.status() !== 403 || problem.code !== 'upgrade_required') {
      fail('the server refuses the premium token', `${res.status()} ${JSON.stringify(problem)}`);
    }
    ok('the server refuses the premium token to a free account', `${res.status()} ${problem.code}`);
    const prompt = page.getByTestId('upgrade-prompt');
    await prompt.waitFor({ timeout: 10_000 });
    if ((await page.getByTestId('watch-video').count()) !== 0) fail('no player without a token', 'a video element is shown');
    ok('the page shows the upgrade prompt', (await prompt.innerText()).split('\n')[0]);
    await page.screenshot({ path: path.join(shotDir, 'viewer-refused.png') });

    await prompt.getByRole('link', { name: 'Upgrade to watch' }).click();
    await page.waitForURL('**/watch/upgrade**');
    await page.getByLabel('Card number').fill('4000 0000 0000 0002');
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.getByRole('alert').filter({ hasText: 'declined' }).waitFor({ timeout: 10_000 });
    ok('a declined test card shows the decline');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    const granted = page.waitForResponse((r) => r.url().endsWith(`/api/v1/streams/${premiumId}/playback`));
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.waitForURL(`**/watch/${premiumId}`);
    const g = await granted;
    if (g.status() !== 200) fail('token after the upgrade', `${g.status()}`);
    ok('after the upgrade the server issues the token');
    await plays(page, 'the upgraded viewer plays the premium stream');
    await page.screenshot({ path: path.join(shotDir, 'viewer-premium.png') });
    if (errors.length) fail('no page errors', errors[0]);
    ok('no page errors');
    await ctx.close();
    return 0;
  } catch (err) {
    if (!(err instanceof Failed)) {
      failed += 1;
      console.log(`not ok - run: ${err.stack || err}`);
    }
    await page?.screenshot({ path: path.join(shotDir, 'viewer-FAILED.png') }).catch(() => {});
    return 1;
  } finally {
    console.log(`${passed} passed, ${failed} failed`);
    await browser.close().catch(() => {});
  }
}

process.exitCode = await main();

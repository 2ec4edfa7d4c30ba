#!/usr/bin/env node
// hls.js in Chromium plays a live Lunora HLS stream: the video element's currentTime advances.
//
//   LUNORA_HLS_URL=http://127.0.0.1:8080/hls/{channel}/index.m3u8 node web/e2e/hls.mjs
//
// Env: LUNORA_HLS_URL (required: a master or media playlist), LUNORA_SCREENSHOT_DIR (default
// /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium), LUNORA_HLS_LOW_LATENCY (default 1).
// The page is a blank document on another origin than the stream, so the server's CORS
// headers are exercised too. Uses playwright-core with the system Chromium and hls.js from
// node_modules; it never downloads anything. Prints "ok - <check>" per check and a final
// "N passed, M failed"; exit code 1 on failure, 2 when it cannot start.

import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const url = process.env.LUNORA_HLS_URL ?? '';
if (!/^https?:\/\//.test(url)) {
  console.error('hls: set LUNORA_HLS_URL to a playlist, e.g. http://127.0.0.1:8080/hls/ID/index.m3u8');
  process.exit(2);
}
const shotDir = process.env.LUNORA_SCREENSHOT_DIR || '/tmp';
const executablePath = process.env.LUNORA_CHROMIUM || '/usr/bin/chromium';
const lowLatency = (process.env.LUNORA_HLS_LOW_LATENCY ?? '1') !== '0';

const PAGE = `<!doctype html><html><head><title>hls</title></head>
<body style="margin:0;background:#000"><video id="v" muted playsinline autoplay width="640" height="360"></video></body></html>`;

async function main() {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
    });
  } catch (err) {
    console.error(`hls: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const ok = (name, note) => {
    passed += 1;
    console.log(`ok - ${name}${note ? ` (${note})` : ''}`);
  };
  const notOk = (name, reason) => {
    failed += 1;
    console.log(`not ok - ${name}: ${reason}`);
  };
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setContent(PAGE);
    await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });

    const support = await page.evaluate(() => ({
      hls: window.Hls && window.Hls.isSupported(),
      h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
    }));
    if (!support.hls || !support.h264) {
      notOk('MSE with H.264/AAC', JSON.stringify(support));
      return 1;
    }
    ok('MSE with H.264/AAC');

    const started = Date.now();
    await page.evaluate(
      ({ src, lowLatency }) => {
        window.__hls = { errors: [], fatal: null, firstFrameMs: null };
        const video = document.getElementById('v');
        const t0 = performance.now();
        video.addEventListener('playing', () => {
          if (window.__hls.firstFrameMs === null) window.__hls.firstFrameMs = performance.now() - t0;
        });
        const hls = new window.Hls({ lowLatencyMode: lowLatency, liveSyncDurationCount: 2 });
        hls.on(window.Hls.Events.ERROR, (_e, data) => {
          window.__hls.errors.push(`${data.type}/${data.details}`);
          if (data.fatal) window.__hls.fatal = `${data.type}/${data.details}`;
        });
        hls.on(window.Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
        hls.loadSource(src);
        hls.attachMedia(video);
        window.__player = hls;
      },
      { src: url, lowLatency },
    );

    // Playback starts…
    const deadline = Date.now() + 20_000;
    let state;
    for (;;) {
      state = await page.evaluate(() => {
        const v = document.getElementById('v');
        return {
          t: v.currentTime,
          w: v.videoWidth,
          h: v.videoHeight,
          fatal: window.__hls.fatal,
          errors: window.__hls.errors.slice(-5),
          firstFrameMs: window.__hls.firstFrameMs,
          latency: window.__player.latency,
        };
      });
      if (state.fatal || state.t > 0.5 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (state.fatal || !(state.t > 0.5)) {
      notOk('playback starts', `after ${(Date.now() - started) / 1000}s: ${JSON.stringify(state)}`);
      await page.screenshot({ path: path.join(shotDir, 'lunora-hls-FAILED.png') }).catch(() => {});
      return 1;
    }
    ok('playback starts', `first frame after ${Math.round(state.firstFrameMs ?? -1)} ms, ${state.w}x${state.h}`);

    // …and keeps going: 4 s of media play without a fatal error. On a loaded 2-core machine
    // (the whole suite runs at once) the decoder may stall for a moment, so the window for
    // those 4 s is generous: the check is that playback continues, not how fast the machine is.
    const t1 = state.t;
    const playStart = Date.now();
    let later;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      later = await page.evaluate(() => ({
        t: document.getElementById('v').currentTime,
        fatal: window.__hls.fatal,
        latency: window.__player.latency,
      }));
      if (later.fatal || later.t - t1 >= 4 || Date.now() - playStart > 20000) break;
    }
    const advanced = later.t - t1;
    const wall = (Date.now() - playStart) / 1000;
    if (later.fatal || advanced < 4) {
      notOk('currentTime advances', `advanced ${advanced.toFixed(2)} s in ${wall.toFixed(1)} s: ${JSON.stringify(later)}`);
      return 1;
    }
    ok('currentTime advances', `${advanced.toFixed(2)} s in ${wall.toFixed(1)} s, latency ${Number(later.latency).toFixed(2)} s`);
    if (state.w !== 1280 || state.h !== 720) {
      notOk('picture size', `${state.w}x${state.h}, expected 1280x720`);
      return 1;
    }
    ok('picture size', `${state.w}x${state.h}`);
    if (errors.length) {
      notOk('no page errors', errors[0]);
      return 1;
    }
    await page.screenshot({ path: path.join(shotDir, 'lunora-hls.png') });
    ok('no page errors');
    return 0;
  } catch (err) {
    notOk('run', err.stack || String(err));
    return 1;
  } finally {
    console.log(`${passed} passed, ${failed} failed`);
    await browser.close().catch(() => {});
  }
}

process.exitCode = await main();

#!/usr/bin/env node
// Browser test of the admin console's media screens against a running server, with real media.
//
// Driven by crates/lunora/tests/admin_console.rs, which starts the binary, nginx-rtmp and FFmpeg
// and prepares a channel "Redundant" with a primary and a backup input, both publishing, streaming
// to nginx-rtmp:
//
//   LUNORA_URL=http://127.0.0.1:8080 LUNORA_ADMIN_EMAIL=… LUNORA_ADMIN_PASSWORD=… node web/e2e/admin.mjs
//
// The script asks the driver for media with lines on stdout:
//   `@@publish <publish url>`  publish an FFmpeg test stream with that URL's key (a camera)
//   `@@stop <publish url>`     stop that publisher
//   `@@kill-primary`           kill the Redundant channel's primary encoder (a real failover)
//
// Other env: LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium).
// Prints "ok - <check>" per check and "N passed, M failed"; stops at the first failure.

import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;
const LIVE_TIMEOUT_MS = 45_000;

const env = (k, fallback) => {
  const v = process.env[k] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`admin: set ${k}`);
    process.exit(2);
  }
  return v;
};

const base = env('LUNORA_URL').replace(/\/+$/, '');
const admin = { email: env('LUNORA_ADMIN_EMAIL'), password: env('LUNORA_ADMIN_PASSWORD') };
const shotDir = process.env.LUNORA_SCREENSHOT_DIR || '/tmp';
const executablePath = process.env.LUNORA_CHROMIUM || '/usr/bin/chromium';

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

async function visible(locator, what, timeout = TIMEOUT_MS) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    fail(`${what} did not appear within ${timeout / 1000}s`);
  }
}

async function text(locator) {
  return (await locator.first().innerText()).replace(/\s+/g, ' ').trim();
}

/** Polls `fn` until it answers truthy; fails with `what` and the last answer. */
async function until(what, fn, timeout = TIMEOUT_MS, every = 250) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) fail(`${what} (waited ${timeout / 1000}s; last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

let shotN = 0;
async function screenshot(page, name) {
  shotN += 1;
  const file = path.join(shotDir, `${String(shotN).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Marks the document; `sameDocument` answers false after any reload or full navigation. */
const markDocument = (page) => page.evaluate(() => (window.__lunoraMark = 'kept'));
const sameDocument = (page) => page.evaluate(() => window.__lunoraMark === 'kept');

/** Seconds of video played by the <video> with this test id. */
const playedSeconds = (page, testId) =>
  page.evaluate((id) => {
    const v = document.querySelector(`video[data-testid="${id}"]`);
    return v ? v.currentTime : -1;
  }, testId);

/** How many pixels the page is wider than the screen, and the outermost elements that stick out. */
const overflow = (page) =>
  page.evaluate(() => {
    const over = document.documentElement.scrollWidth - window.innerWidth;
    const culprits = [];
    if (over > 0) {
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right <= window.innerWidth + 1) continue;
        let clipped = false;
        for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
          if (getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= window.innerWidth + 1) clipped = true;
        }
        if (!clipped) {
          culprits.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} (${Math.round(r.right)}px)`);
        }
      }
    }
    return { over, culprits: culprits.slice(0, 5) };
  });

const state = { cameraUrls: {}, exported: null };

const sources = (page) => page.locator('section.source-card[data-channel="Redundant"]');
const onAir = (page) => sources(page).getByTestId('on-air-source');
const tile = (page, name) => page.locator(`li.camera-tile[data-camera="${name}"]`);

const checks = [
  {
    name: 'the admin signs in and the media sections are in the navigation',
    async run(page) {
      await page.goto(`${base}/login?next=/admin`);
      await page.getByLabel('Email').fill(admin.email);
      await page.getByLabel('Password', { exact: true }).fill(admin.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page.getByRole('heading', { name: 'System overview' }), 'the admin overview');
      const nav = page.getByRole('navigation', { name: 'Admin sections' });
      for (const name of ['Sources', 'Presets', 'Cameras', 'Recordings', 'Analytics', 'Alerts']) {
        await visible(nav.getByRole('link', { name, exact: true }), `the ${name} link`);
      }
    },
  },
  {
    name: 'presets: a bad bitrate is refused inline with the server’s words, then the preset is created',
    async run(page) {
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Presets' }).click();
      await visible(page.getByRole('heading', { name: 'Encoding presets' }), 'the presets page');
      const builtins = page.locator('section[aria-labelledby="builtin-presets"] tbody tr');
      await visible(builtins, 'the built-in presets');
      const nBuiltin = await builtins.count();
      if (nBuiltin < 3) fail(`only ${nBuiltin} built-in presets listed`);
      if (await page.locator('section[aria-labelledby="builtin-presets"]').getByRole('button', { name: /^Edit / }).count()) {
        fail('built-in presets offer an Edit button');
      }
      await page.getByRole('button', { name: 'New preset' }).click();
      const form = page.getByRole('form', { name: 'New preset' });
      await visible(form, 'the preset form');
      await form.getByLabel('Name').fill('Church 720p');
      await form.getByLabel('Resolution').selectOption('720');
      const bitrate = form.getByLabel('Video bitrate (kb/s)');
      await bitrate.fill('50');
      await form.getByRole('button', { name: 'Create preset' }).click();
      await until('the bitrate field to be marked invalid', async () => (await bitrate.getAttribute('aria-invalid')) === 'true');
      const err = await text(form.locator('.field-error'));
      if (!/bitrate/i.test(err)) fail(`the inline error reads "${err}"`);
      await screenshot(page, 'preset-invalid-bitrate');
      await bitrate.fill('3000');
      await form.getByRole('button', { name: 'Create preset' }).click();
      const row = page.locator('tr[data-preset="Church 720p"]');
      await visible(row, 'the new preset in the list');
      const summary = await text(row.getByTestId('preset-summary'));
      if (!/720p/.test(summary) || !/3(\.0)? Mbps/.test(summary)) fail(`summary reads "${summary}"`);
      await screenshot(page, 'preset-created');
      return `${nBuiltin} built-ins; error: ${err}; summary: ${summary}`;
    },
  },
  {
    name: 'presets: clone a built-in, export as JSON and import it back',
    async run(page) {
      const first = page.locator('section[aria-labelledby="builtin-presets"] tbody tr').first();
      const name = await first.getAttribute('data-preset');
      await first.getByRole('button', { name: `Clone ${name}` }).click();
      const dialog = page.getByRole('dialog', { name: /^Edit “.*\(copy\)”$/ });
      await visible(dialog, 'the copy opened for editing');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await visible(page.locator(`tr[data-preset="${name} (copy)"]`), 'the copy in the custom list');

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export as JSON' }).click()]);
      const file = await download.path();
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      if (doc.format !== 'lunora-presets') fail(`export format is ${doc.format}`);
      const names = doc.presets.map((p) => p.name);
      if (!names.includes('Church 720p')) fail(`the export holds ${names.join(', ')}`);

      await page.getByTestId('preset-import-file').setInputFiles({
        name: 'presets.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(doc)),
      });
      const report = page.getByTestId('preset-import-report');
      await visible(report, 'the import report');
      const r = await text(report);
      if (!new RegExp(`${names.length} created`).test(r)) fail(`import report reads "${r}"`);
      await visible(page.locator('tr[data-preset^="Church 720p ("]'), 'the imported copy (renamed)');
      await screenshot(page, 'presets-imported');
      return `exported ${names.length}; ${r.split('.')[0]}`;
    },
  },
  {
    name: 'sources: both inputs with live figures, the primary on air',
    async run(page) {
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Sources' }).click();
      await visible(page.getByRole('heading', { name: 'Source redundancy' }), 'the sources page');
      await visible(sources(page), 'the Redundant channel');
      await until('the primary on air', async () => (await onAir(page).getAttribute('data-active')) === 'primary', LIVE_TIMEOUT_MS);
      await until('the backup on standby', async () => (await sources(page).getByTestId('input-secondary').getAttribute('data-state')) === 'standby');
      const primary = sources(page).getByTestId('input-primary');
      await until('figures for the primary', async () => /[kM]b\/s/.test(await text(primary)) && /\d+(\.\d)? fps/.test(await text(primary)));
      const p = await text(primary);
      if (!/1280×720/.test(p)) fail(`the on-air input shows no resolution: "${p}"`);
      if (!/Yes, since/.test(await text(sources(page).getByTestId('connected-secondary')))) fail('the backup is not shown connected');
      await until('the events socket', async () => (await page.getByTestId('events-state').getAttribute('data-connected')) === 'true');
      await screenshot(page, 'sources-primary-on-air');
      return p;
    },
  },
  {
    name: 'sources: a threshold out of range is refused inline, a good one is saved',
    async run(page) {
      await sources(page).getByRole('button', { name: 'Failover settings of Redundant' }).click();
      const form = page.getByRole('form', { name: 'Failover settings' });
      await visible(form, 'the settings form');
      const threshold = form.getByLabel('Failover threshold (seconds)');
      await threshold.fill('100');
      await form.getByRole('button', { name: 'Save settings' }).click();
      await until('the threshold to be marked invalid', async () => (await threshold.getAttribute('aria-invalid')) === 'true');
      const err = await text(form.locator('.field-error'));
      if (!/0\.2.*60/.test(err)) fail(`inline error reads "${err}"`);
      await screenshot(page, 'sources-threshold-invalid');
      await threshold.fill('1');
      await form.getByRole('button', { name: 'Save settings' }).click();
      await until('the dialog to close', async () => !(await form.isVisible()));
      return err;
    },
  },
  {
    name: 'sources: force a failover to the backup and back; the on-air indicator follows',
    async run(page) {
      await sources(page).getByRole('button', { name: 'Switch Redundant to backup' }).click();
      await until('the backup on air', async () => (await onAir(page).getAttribute('data-active')) === 'secondary');
      const shown = await text(onAir(page));
      if (!/Backup/.test(shown)) fail(`the indicator reads "${shown}"`);
      await until('the backup input marked on air', async () => (await text(sources(page).getByTestId('input-secondary'))).includes('On air'));
      await screenshot(page, 'sources-forced-to-backup');
      await sources(page).getByRole('button', { name: 'Switch Redundant to primary' }).click();
      await until('the primary on air again', async () => (await onAir(page).getAttribute('data-active')) === 'primary');
      return shown;
    },
  },
  {
    name: 'sources: the primary encoder dies; the page shows the automatic failover without reload',
    async run(page) {
      await markDocument(page);
      console.log('@@kill-primary');
      await until('the backup on air after the primary died', async () => (await onAir(page).getAttribute('data-active')) === 'secondary', LIVE_TIMEOUT_MS);
      const note = await until('the failover notice', async () => {
        const t = await text(sources(page).getByTestId('last-failover'));
        return /primary input was lost/.test(t) && t;
      });
      await until('the primary marked lost', async () => (await sources(page).getByTestId('input-primary').getAttribute('data-state')) === 'lost');
      if (!(await sameDocument(page))) fail('the page was reloaded');
      await screenshot(page, 'sources-automatic-failover');
      return note;
    },
  },
  {
    name: 'cameras: import from CSV, with the per-row report',
    async run(page) {
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Cameras' }).click();
      await visible(page.getByRole('heading', { name: 'No cameras yet' }), 'the empty camera page');
      await page.getByRole('button', { name: 'Import from CSV' }).first().click();
      const dialog = page.getByRole('dialog', { name: 'Import cameras from CSV' });
      await visible(dialog, 'the import dialog');
      const csv =
        'name,brand,model,serial_number,location,tags,recording_policy\n' +
        'Lobby,Axis,P1375,SN-1,HQ,entrance;indoor,off\n' +
        'Dock,Hikvision,DS-2CD,SN-2,Warehouse,outdoor,off\n' +
        ',Axis,P1375,SN-3,HQ,,off\n';
      await dialog.getByLabel('CSV file').setInputFiles({ name: 'cameras.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
      await until('the file read into the form', async () => (await dialog.getByLabel('…or paste the CSV').inputValue()).includes('Lobby'));
      await dialog.getByRole('button', { name: 'Import cameras' }).click();
      const report = dialog.getByTestId('camera-import-report');
      await visible(report, 'the import report');
      const head = await text(report.locator('h3'));
      if (head !== '2 created, 1 failed') fail(`report heading reads "${head}"`);
      const bad = await text(report.locator('tr[data-row="3"]'));
      if (!/name/.test(bad)) fail(`row 3 reads "${bad}"`);
      for (const name of ['Lobby', 'Dock']) {
        const url = await report.locator(`tr[data-name="${name}"]`).getByTestId('import-publish-url').inputValue();
        if (!/^rtmp:\/\/.+\/live\/[^*]{16,}$/.test(url)) fail(`publish URL of ${name} looks wrong: ${url}`);
        state.cameraUrls[name] = url;
      }
      await screenshot(page, 'cameras-import-report');
      await dialog.getByRole('button', { name: 'Close' }).click();
      return `${head}; row 3: ${bad}`;
    },
  },
  {
    name: 'cameras: they come online in the grid without reload, with live thumbnails',
    async run(page) {
      await visible(tile(page, 'Lobby'), 'the Lobby tile');
      await visible(tile(page, 'Dock'), 'the Dock tile');
      if ((await tile(page, 'Lobby').getAttribute('data-online')) !== 'false') fail('Lobby is online before it publishes');
      await screenshot(page, 'cameras-offline');
      await markDocument(page);
      for (const url of Object.values(state.cameraUrls)) console.log(`@@publish ${url}`);
      for (const name of ['Lobby', 'Dock']) {
        await until(`${name} online`, async () => (await tile(page, name).getAttribute('data-online')) === 'true', LIVE_TIMEOUT_MS);
        const badge = await text(tile(page, name).getByTestId('camera-badge'));
        if (badge !== 'Online') fail(`${name}'s badge reads "${badge}"`);
      }
      await until('a thumbnail picture in the Lobby tile', async () => (await tile(page, 'Lobby').getByTestId('camera-thumb').getAttribute('data-loaded')) === 'true', LIVE_TIMEOUT_MS);
      const width = await tile(page, 'Lobby').getByTestId('camera-thumb').evaluate((img) => img.naturalWidth);
      if (!(width > 0)) fail('the thumbnail has no picture');
      await until('figures in the Lobby tile', async () => /fps/.test(await text(tile(page, 'Lobby').getByTestId('camera-figures'))));
      if (!(await sameDocument(page))) fail('the page was reloaded');
      const lead = await text(page.locator('.page-lead'));
      if (lead !== '2 of 2 online') fail(`lead reads "${lead}"`);
      await screenshot(page, 'cameras-online');
      return `thumbnail ${width}px wide`;
    },
  },
  {
    name: 'camera page: the live player plays; recording turned on',
    async run(page) {
      await tile(page, 'Lobby').getByRole('link', { name: 'Lobby' }).last().click();
      await visible(page.getByRole('heading', { name: 'Lobby', exact: true }), 'the camera page');
      await until('the live player to play', async () => (await playedSeconds(page, 'live-player')) > 1, LIVE_TIMEOUT_MS);
      await page.getByLabel(/Record continuously/).check();
      await visible(page.locator('tr[data-status="recording"]'), 'a recording in progress', LIVE_TIMEOUT_MS);
      await screenshot(page, 'camera-live-recording');
    },
  },
  {
    name: 'camera page: the camera stops; the badge goes offline and the recording completes',
    async run(page) {
      await markDocument(page);
      console.log(`@@stop ${state.cameraUrls.Lobby}`);
      await until('the badge to read Offline', async () => (await text(page.getByTestId('camera-badge'))) === 'Offline', LIVE_TIMEOUT_MS);
      await until('the recording to complete', async () => (await page.locator('tr[data-status="complete"]').count()) === 1, 60_000);
      await until('the recording on the 24-hour timeline', async () => (await page.getByTestId('recording-timeline').locator('.timeline-seg.status-complete').count()) === 1, 20_000);
      if (!(await sameDocument(page))) fail('the page was reloaded');
      await screenshot(page, 'camera-offline-recording-complete');
    },
  },
  {
    name: 'recordings browser: filter by camera, play the recording, download it',
    async run(page) {
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Recordings' }).click();
      await visible(page.getByRole('heading', { name: 'Recordings' }), 'the recordings page');
      const filters = page.getByRole('form', { name: 'Filter recordings' });
      await until('Lobby in the channel filter', async () => (await filters.getByLabel('Channel or camera').locator('option', { hasText: 'Lobby' }).count()) === 1);
      await filters.getByLabel('Channel or camera').selectOption({ label: 'Lobby' });
      await filters.getByLabel('Status').selectOption('complete');
      await filters.getByRole('button', { name: 'Apply filters' }).click();
      await until('exactly one Lobby recording', async () => (await page.locator('tbody tr[data-recording]').count()) === 1);
      const row = page.locator('tbody tr[data-recording]').first();
      const cells = await text(row);
      if (!/Lobby/.test(cells) || !/Complete/.test(cells)) fail(`row reads "${cells}"`);
      await row.getByRole('button', { name: /^Play recording/ }).click();
      await visible(page.getByRole('dialog', { name: /^Recording of / }), 'the player dialog');
      await until('the recording to play', async () => (await playedSeconds(page, 'recording-player')) > 1, LIVE_TIMEOUT_MS);
      await screenshot(page, 'recording-playing');
      await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
      const href = await row.getByRole('link', { name: /^Download recording/ }).getAttribute('href');
      const res = await page.request.get(new URL(href, base).toString());
      const type = res.headers()['content-type'];
      const size = (await res.body()).length;
      if (res.status() !== 200 || type !== 'video/mp4' || size < 100_000) fail(`download: ${res.status()} ${type} ${size} bytes`);
      return `${cells}; download ${size} bytes`;
    },
  },
  {
    name: 'the session is stopped from the live control screen, then analytics shows totals, charts and platforms',
    async run(page) {
      // Per-destination figures are stored when a session ends: stop it the way an operator does.
      await page.goto(`${base}/stream`);
      await page.getByRole('link', { name: 'Redundant', exact: true }).first().click();
      await visible(page.getByTestId('on-air'), 'the LIVE pill on the control screen');
      // The operator sees which input is on air (the backup, since the primary died) and a preview.
      await until('the source panel to show the backup on air', async () => /Backup on air/.test(await text(page.getByTestId('live-source'))));
      await page.getByRole('button', { name: 'Show', exact: true }).click();
      await until('the live preview to play', async () => (await playedSeconds(page, 'live-preview')) > 1, LIVE_TIMEOUT_MS);
      await screenshot(page, 'live-control-source-and-preview');
      // Close the player again: decoding video costs the (shared, busy) CPU the rest of the test.
      await page.getByRole('button', { name: 'Hide', exact: true }).click();
      await page.getByRole('button', { name: 'Stop all' }).click();
      await page.getByRole('dialog', { name: 'Stop streaming?' }).getByRole('button', { name: 'Stop all destinations' }).click();
      await visible(page.getByTestId('off-air'), 'the Off air state');
      await page.getByRole('navigation', { name: 'Apps' }).getByRole('link', { name: 'Admin' }).click();
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Analytics' }).click();
      await visible(page.getByRole('heading', { name: 'Analytics' }), 'the analytics page');
      await page.getByRole('combobox', { name: /^Range/ }).selectOption('24h');
      await visible(page.getByTestId('analytics-totals'), 'the totals');
      const sessions = await text(page.getByTestId('stat-sessions'));
      if (!/Sessions\s*[1-9]/i.test(sessions)) fail(`sessions read "${sessions}"`);
      const failovers = await text(page.getByTestId('stat-failovers'));
      if (!/Failovers\s*[1-9]/i.test(failovers)) fail(`failovers read "${failovers}"`);
      const charts = await page.locator('svg.chart').count();
      if (charts !== 4) fail(`${charts} charts`);
      const bars = await page.locator('[data-chart="failovers"] rect.chart-bar').count();
      if (bars !== 24) fail(`${bars} hourly bars over 24 hours`);
      const platforms = await text(page.getByTestId('platform-distribution'));
      if (!/Custom/.test(platforms)) fail(`platform distribution reads "${platforms}"`);
      await screenshot(page, 'analytics');
      return `${sessions}; ${failovers}`;
    },
  },
  {
    name: 'alerts: the failover raised an alert; acknowledge it',
    async run(page) {
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Alerts' }).click();
      await visible(page.getByRole('heading', { name: 'Alerts' }), 'the alerts page');
      const alert = page.locator('li[data-alert="source_failover"]').first();
      await visible(alert, 'the failover alert');
      await alert.getByRole('button', { name: /^Acknowledge/ }).click();
      await until('the alert acknowledged', async () => (await alert.getAttribute('data-state')) === 'acknowledged');
      const st = await text(alert.getByTestId('alert-state'));
      if (st !== 'Acknowledged') fail(`state reads "${st}"`);
      await screenshot(page, 'alerts-acknowledged');
    },
  },
  {
    name: 'the admin media pages work at 390 px without horizontal overflow',
    async run(page) {
      await page.setViewportSize({ width: 390, height: 844 });
      const widths = [];
      for (const [p, what] of [
        ['/admin/sources', sources(page)],
        ['/admin/cameras', tile(page, 'Dock')],
        ['/admin/presets', page.locator('tr[data-preset="Church 720p"]')],
        ['/admin/recordings', page.locator('tbody tr[data-recording]')],
        ['/admin/analytics', page.getByTestId('analytics-totals')],
        ['/admin/alerts', page.locator('li[data-alert]')],
      ]) {
        await page.goto(`${base}${p}`);
        await visible(what, `the content of ${p} at 390 px`);
        const { over, culprits } = await overflow(page);
        if (over > 0) fail(`${p} is ${over}px wider than the screen: ${culprits.join(', ')}`);
        widths.push(p);
        await screenshot(page, `${p.split('/').pop()}-390px`);
      }
      await page.setViewportSize({ width: 1280, height: 860 });
      return widths.join(', ');
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
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    });
  } catch (err) {
    console.error(`admin: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }

  let passed = 0;
  let failed = 0;
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', acceptDownloads: true });
  const page = await context.newPage();
  const crashes = [];
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (err) => crashes.push(err.message));
  try {
    for (const check of checks) {
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
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === checks.length ? 0 : 1;
}

process.exitCode = await main();

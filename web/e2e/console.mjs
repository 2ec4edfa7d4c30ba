#!/usr/bin/env node
// Browser test of the operator and admin consoles against a running server, with real media.
//
// Driven by crates/lunora/tests/console.rs, which starts the binary, nginx-rtmp and FFmpeg:
//
//   LUNORA_URL=http://127.0.0.1:8080 \
//   LUNORA_ADMIN_EMAIL=… LUNORA_ADMIN_PASSWORD=… \
//   LUNORA_OPERATOR_EMAIL=… LUNORA_VIEWER_EMAIL=… LUNORA_USER_PASSWORD=… \
//   LUNORA_NGINX_URL=rtmp://127.0.0.1:1936/live LUNORA_NGINX_STAT=http://127.0.0.1:8081/stat \
//   node web/e2e/console.mjs
//
// When the wizard shows the new channel's stream key, the script prints `@@publish <key>` on
// stdout; the driver then publishes an FFmpeg test stream to the server's real RTMP port (the
// publish URL on the page carries the configured port, which is 0 in tests).
//
// Other env: LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium).
// Prints "ok - <check>" per check and "N passed, M failed"; stops at the first failure.

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;
const LIVE_TIMEOUT_MS = 45_000;

const env = (k, fallback) => {
  const v = process.env[k] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`console: set ${k}`);
    process.exit(2);
  }
  return v;
};

const base = env('LUNORA_URL').replace(/\/+$/, '');
const admin = { email: env('LUNORA_ADMIN_EMAIL'), password: env('LUNORA_ADMIN_PASSWORD') };
const operator = { email: env('LUNORA_OPERATOR_EMAIL'), password: env('LUNORA_USER_PASSWORD') };
const viewer = { email: env('LUNORA_VIEWER_EMAIL'), password: env('LUNORA_USER_PASSWORD') };
const nginxUrl = env('LUNORA_NGINX_URL');
const nginxStat = env('LUNORA_NGINX_STAT');
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

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret at time step `step`. */
function totp(secretB32, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretB32.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) continue;
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', Buffer.from(bytes)).update(counter).digest();
  const o = h[h.length - 1] & 15;
  const n = ((h[o] & 127) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}
const step = () => Math.floor(Date.now() / 30_000);

async function signIn(page, who, { totpCode } = {}) {
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (totpCode) {
    const field = page.getByLabel('Authentication code');
    await visible(field, 'the authentication code field after the password');
    await field.fill(totpCode());
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
}

async function nginxStreams() {
  const res = await fetch(nginxStat);
  const xml = await res.text();
  return [...xml.matchAll(/<stream>\s*<name>([^<]+)<\/name>/g)].map((m) => m[1]);
}

/** The state attribute of a destination card on the live control screen. */
const card = (page, name) => page.locator(`li.dest-card[data-destination="${name}"]`);
const cardState = async (page, name) => card(page, name).getAttribute('data-state', { timeout: 2000 });

const state = { secret: null, channelUrl: null, key: null };

const checks = [
  {
    name: 'a signed-out visitor is sent to sign in and comes back after',
    async run(page) {
      await page.goto(`${base}/stream/setup`);
      await visible(page.getByRole('heading', { name: 'Sign in' }), 'the sign-in page');
      const url = new URL(page.url());
      if (url.pathname !== '/login' || url.searchParams.get('next') !== '/stream/setup') {
        fail(`expected /login?next=/stream/setup, got ${url.pathname}${url.search}`);
      }
      await screenshot(page, 'sign-in-redirect');
    },
  },
  {
    name: 'the operator enrols an authenticator app (TOTP) from the security page',
    async run(page) {
      await signIn(page, operator);
      await visible(page.getByRole('heading', { name: 'Quick setup' }), 'the wizard after signing in (next=)');
      await page.goto(`${base}/account/security`);
      await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
      await visible(page.getByRole('img', { name: /QR code/ }), 'the QR code');
      state.secret = await page.getByTestId('totp-secret').inputValue();
      if (!/^[A-Z2-7]{16,}=*$/.test(state.secret)) fail(`secret looks wrong: ${state.secret}`);
      await page.getByLabel('Code from the app').fill(totp(state.secret, step()));
      await screenshot(page, 'mfa-enrol');
      await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
      await visible(page.getByTestId('recovery-codes'), 'the recovery codes');
      const codes = await page.getByTestId('recovery-codes').locator('li').count();
      if (codes < 5) fail(`only ${codes} recovery codes shown`);
      if ((await text(page.getByTestId('mfa-state'))) !== 'On') fail('MFA badge does not say On');
      await screenshot(page, 'mfa-recovery-codes');
      return `${codes} recovery codes`;
    },
  },
  {
    name: 'sign out, then sign in with password and TOTP',
    async run(page) {
      await page.getByRole('button', { name: /Operator/ }).first().click();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await visible(page.getByText('You are signed out.'), 'the signed-out notice');
      // A wrong code first: the form says so inline and stays usable.
      await page.getByLabel('Email').fill(operator.email);
      await page.getByLabel('Password', { exact: true }).fill(operator.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const code = page.getByLabel('Authentication code');
      await visible(code, 'the authentication code field');
      await screenshot(page, 'sign-in-totp');
      await code.fill('000000');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page.getByRole('alert').filter({ hasText: /code/i }), 'an error about the wrong code');
      if ((await code.getAttribute('aria-invalid')) !== 'true') fail('the code field is not marked invalid');
      // The step after the one used at enrolment (the server accepts one step either side).
      await code.fill(totp(state.secret, step() + 1));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page.getByRole('heading', { name: 'Channels' }), 'the operator console after TOTP sign-in');
      await visible(page.getByRole('navigation', { name: 'Operator sections' }), 'the operator navigation');
      // An operator has no admin app in the switcher.
      if (await page.getByRole('navigation', { name: 'Apps' }).getByRole('link', { name: 'Admin' }).count()) {
        fail('an operator sees the Admin app');
      }
      await screenshot(page, 'operator-channels-empty');
    },
  },
  {
    name: 'wizard step 1: name the channel, see the publish URL and key once',
    async run(page) {
      await page.getByRole('link', { name: 'Quick setup' }).first().click();
      await visible(page.getByRole('heading', { name: 'Name your channel' }), 'step 1');
      // Bad input: an empty name is refused inline with the server's words.
      await page.getByRole('button', { name: 'Create channel' }).click();
      const name = page.getByLabel('Channel name');
      await until('the empty name to be marked invalid', async () => (await name.getAttribute('aria-invalid')) === 'true');
      await screenshot(page, 'wizard-1-invalid');
      await name.fill('Studio A');
      await page.getByRole('button', { name: 'Create channel' }).click();
      await visible(page.getByRole('heading', { name: /Studio A.*ready for your encoder/ }), 'the publish details');
      const server = await page.getByTestId('publish-server').inputValue();
      const keyInput = page.getByTestId('publish-key');
      if ((await keyInput.getAttribute('type')) !== 'password') fail('the stream key is not masked at first');
      await page.getByRole('button', { name: 'Show Stream key' }).click();
      if ((await keyInput.getAttribute('type')) !== 'text') fail('"Show" does not reveal the key');
      const key = await keyInput.inputValue();
      if (!/^rtmp:\/\/[^/]+:\d+\/live$/.test(server)) fail(`server URL looks wrong: ${server}`);
      if (key.length < 16 || key.includes('*')) fail(`key looks wrong: ${key.slice(0, 4)}…`);
      await page.getByRole('tab', { name: 'FFmpeg' }).click();
      const cmd = await text(page.locator('.code-block'));
      if (!cmd.includes(`${server}/${key}`)) fail('the FFmpeg command does not carry the publish URL');
      await page.getByRole('tab', { name: 'OBS Studio' }).click();
      state.key = key;
      await screenshot(page, 'wizard-1-publish');
      // Hand the key to the driver, which starts FFmpeg on the server's real RTMP port.
      console.log(`@@publish ${key}`);
      return `server ${server}`;
    },
  },
  {
    name: 'wizard step 2: add destinations with platform presets, inline errors and a connection test',
    async run(page) {
      await page.getByRole('button', { name: /Next: destinations/ }).click();
      await visible(page.getByRole('heading', { name: 'Where should it go?' }), 'step 2');
      const form = page.getByRole('form', { name: 'Add destination' });
      // The YouTube preset fills the name and explains where the key is.
      await visible(form.getByText('Where to find the stream key on YouTube Live'), 'the YouTube instructions');
      if ((await form.getByLabel('Name').inputValue()) !== 'YouTube Live') fail('the preset did not name the destination');
      await form.getByText('Custom RTMP', { exact: true }).click();
      await form.getByLabel('Name').fill('Main');
      // Bad URL: the server's answer lands under the URL field.
      await form.getByLabel('Server URL').fill('http://not-rtmp.example');
      await form.getByLabel('Stream key', { exact: true }).fill('main-key');
      if ((await form.getByLabel('Stream key', { exact: true }).getAttribute('type')) !== 'password') fail('the key is not masked');
      await form.getByRole('button', { name: 'Show stream key' }).click();
      if ((await form.getByLabel('Stream key', { exact: true }).getAttribute('type')) !== 'text') fail('"Show" does not reveal the key');
      await form.getByRole('button', { name: 'Add destination' }).click();
      await visible(form.locator('.field-error'), 'the inline URL error');
      const err = await text(form.locator('.field-error'));
      if ((await form.getByLabel('Server URL').getAttribute('aria-invalid')) !== 'true') {
        fail(`the URL field is not marked invalid (error: ${err})`);
      }
      await screenshot(page, 'wizard-2-invalid-url');
      await form.getByLabel('Server URL').fill(nginxUrl);
      await form.getByRole('button', { name: 'Add destination' }).click();
      const main = page.locator('li[data-destination="Main"]');
      await visible(main, 'the new destination in the list');
      if (!(await main.getByRole('checkbox').isChecked())) fail('the new destination is not selected');
      await main.getByRole('button', { name: 'Test connection to Main' }).click();
      await visible(main.getByText(/Accepted/), 'the test result "Accepted"');
      const tested = await text(main.locator('.test-result'));

      await page.getByRole('button', { name: 'Add a destination' }).click();
      const form2 = page.getByRole('form', { name: 'Add destination' });
      await form2.getByText('Custom RTMP', { exact: true }).click();
      await form2.getByLabel('Name').fill('Backup');
      await form2.getByLabel('Server URL').fill(nginxUrl);
      await form2.getByLabel('Stream key', { exact: true }).fill('backup-key');
      await form2.getByRole('button', { name: 'Add destination' }).click();
      await visible(page.locator('li[data-destination="Backup"]'), 'the second destination');
      await screenshot(page, 'wizard-2-destinations');
      return `${err} / test: ${tested}`;
    },
  },
  {
    name: 'wizard step 3: the input goes live, start streaming',
    async run(page) {
      await page.getByRole('button', { name: /Next: go live/ }).click();
      await visible(page.getByRole('heading', { name: 'Ready to go live' }), 'step 3');
      await visible(page.locator('[data-testid="wizard-input"] [data-input-state="live"]'), 'the input going live (FFmpeg)', LIVE_TIMEOUT_MS);
      const input = await text(page.getByTestId('wizard-input'));
      if (!input.includes('1280×720')) fail(`input reads "${input}", expected 1280×720`);
      await screenshot(page, 'wizard-3-ready');
      await page.getByRole('button', { name: 'Start streaming' }).click();
      await visible(page.getByTestId('on-air'), 'the LIVE pill on the control screen');
      state.channelUrl = page.url();
      return input;
    },
  },
  {
    name: 'the live control screen shows both destinations live with figures',
    async run(page) {
      await until('Main to be live', async () => (await cardState(page, 'Main')) === 'live', LIVE_TIMEOUT_MS);
      await until('Backup to be live', async () => (await cardState(page, 'Backup')) === 'live', LIVE_TIMEOUT_MS);
      await until('bitrate on Main', async () => /[kM]b\/s/.test(await text(card(page, 'Main').getByTestId('dest-bitrate'))));
      const clock1 = await text(page.getByTestId('session-clock'));
      await page.waitForTimeout(2200);
      const clock2 = await text(page.getByTestId('session-clock'));
      if (clock1 === clock2) fail(`the session clock does not move (${clock1})`);
      const total = await text(page.getByTestId('total-bandwidth'));
      if (!/[kM]b\/s/.test(total)) fail(`total bandwidth reads "${total}"`);
      const live = await text(page.getByTestId('live-count'));
      if (!live.includes('2 / 2')) fail(`live count reads "${live}"`);
      const input = await text(page.getByTestId('input-panel'));
      // The frame rate is measured on arrival, so a 30 fps input reads 29–31 fps.
      if (!/1280×720/.test(input) || !/\b(29|30|31)(\.\d)? fps/.test(input)) fail(`input panel reads "${input}"`);
      const streams = await until('nginx to receive both streams', async () => {
        const s = await nginxStreams();
        return s.includes('main-key') && s.includes('backup-key') && s;
      });
      await screenshot(page, 'live-control-both-live');
      return `clock ${clock2}, total ${total}, nginx has ${streams.join(', ')}`;
    },
  },
  {
    name: 'stopping one destination changes its state and leaves the other live',
    async run(page) {
      await page.getByRole('button', { name: 'Stop Backup' }).click();
      await until('Backup to show Stopped', async () => (await cardState(page, 'Backup')) === 'stopped');
      const badge = await text(card(page, 'Backup').locator('.badge'));
      if (badge !== 'Stopped') fail(`Backup badge reads "${badge}"`);
      if ((await cardState(page, 'Main')) !== 'live') fail('Main is no longer live');
      await visible(page.getByRole('button', { name: 'Start Backup' }), 'a Start button on the stopped card');
      await until('nginx to lose the backup stream', async () => {
        const s = await nginxStreams();
        return !s.includes('backup-key') && s.includes('main-key');
      });
      await until('live count 1 / 1', async () => (await text(page.getByTestId('live-count'))).includes('1 / 1'));
      await screenshot(page, 'live-control-one-stopped');
    },
  },
  {
    name: 'the live control screen works at 390 px',
    async run(page) {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      await visible(page.getByTestId('on-air'), 'the LIVE pill at 390 px');
      await until('Main live at 390 px', async () => (await cardState(page, 'Main')) === 'live');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) fail(`the page is ${overflow}px wider than the screen`);
      const stop = page.getByRole('button', { name: 'Stop all' });
      const box = await stop.boundingBox();
      if (!box || box.width < 300) fail(`"Stop all" is not a full-width button on a phone (${box?.width}px)`);
      await screenshot(page, 'live-control-390px');
      await page.setViewportSize({ width: 1280, height: 860 });
    },
  },
  {
    name: 'stop all ends the session, history shows it with per-destination figures',
    async run(page) {
      await page.getByRole('button', { name: 'Stop all' }).click();
      const dialog = page.getByRole('dialog', { name: 'Stop streaming?' });
      await visible(dialog, 'the confirmation dialog');
      await screenshot(page, 'stop-all-confirm');
      await dialog.getByRole('button', { name: 'Stop all destinations' }).click();
      await visible(page.getByTestId('off-air'), 'the Off air state');
      await page.getByRole('link', { name: 'History', exact: true }).click();
      await visible(page.getByRole('heading', { name: 'Session history' }), 'the history page');
      const row = page.locator('tbody tr').first();
      await visible(row, 'a session row');
      await row.getByRole('link').click();
      await visible(page.getByRole('heading', { name: 'Studio A' }), 'the session detail');
      const table = await text(page.locator('table').first());
      if (!table.includes('Main') || !table.includes('Backup')) fail(`per-destination table reads "${table}"`);
      if (!/\d(\.\d)? MB/.test(table)) fail(`no megabytes sent in "${table}"`);
      const log = await text(page.locator('.timeline'));
      if (!/Session started/i.test(log)) fail(`event log reads "${log}"`);
      await screenshot(page, 'session-detail');
    },
  },
  {
    name: 'an operator opening /admin sees access denied',
    async run(page) {
      await page.goto(`${base}/admin`);
      await visible(page.getByRole('heading', { name: 'Access denied' }), 'the access-denied page');
      await screenshot(page, 'operator-admin-denied');
    },
  },
  {
    name: 'a viewer is denied the operator and admin consoles',
    fresh: true,
    async run(page) {
      await page.goto(`${base}/login?next=/admin`);
      await signIn(page, viewer);
      await visible(page.getByRole('heading', { name: 'Access denied' }), 'access denied on /admin');
      const lead = await text(page.locator('.placeholder .lead'));
      if (!/Viewer/.test(lead)) fail(`the page does not name the role: "${lead}"`);
      await screenshot(page, 'viewer-admin-denied');
      await page.goto(`${base}/stream`);
      await visible(page.getByRole('heading', { name: 'Access denied' }), 'access denied on /stream');
    },
  },
  {
    name: 'the admin overview shows health, counts and the users page',
    fresh: true,
    async run(page) {
      await page.goto(`${base}/login`);
      await signIn(page, admin);
      await visible(page.getByRole('heading', { name: 'System overview' }), 'the admin overview');
      await visible(page.locator('[data-component="database"] .badge[data-status="healthy"]'), 'a healthy database');
      await until('the channel count', async () => (await text(page.getByTestId("stat-channels"))).match(/Channels\s*1\b/i));
      await screenshot(page, 'admin-overview');
      await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Users' }).click();
      await visible(page.locator(`tr[data-user="${operator.email}"]`), 'the operator in the user list');
      const mfa = await text(page.locator(`tr[data-user="${operator.email}"] td`).nth(3));
      if (mfa !== 'On') fail(`the operator's MFA cell reads "${mfa}", expected "On"`);
      await screenshot(page, 'admin-users');
      await page.getByRole('link', { name: 'Audit log' }).first().click();
      await visible(page.getByRole('heading', { name: 'Audit log' }), 'the audit log');
      await page.getByLabel('Action').fill('streaming.start');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await until('one streaming.start entry', async () => (await page.locator('tbody tr').count()) === 1);
      await screenshot(page, 'admin-audit-filtered');
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
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    console.error(`console: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }

  let passed = 0;
  let failed = 0;
  const newContext = () => browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  let context = await newContext();
  let page = await context.newPage();
  const crashes = [];
  const watch = (p) => {
    p.setDefaultTimeout(TIMEOUT_MS);
    p.on('pageerror', (err) => crashes.push(err.message));
  };
  watch(page);
  try {
    for (const check of checks) {
      if (check.fresh) {
        await context.close();
        context = await newContext();
        page = await context.newPage();
        watch(page);
      }
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

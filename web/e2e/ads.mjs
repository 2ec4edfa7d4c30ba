#!/usr/bin/env node
// Browser test of the advertising workspace (/ads) against a running server: two sellers on the
// same campaign see each other's presence, the second save with a stale version shows the other
// seller's change instead of overwriting it, and a client user sees only its own campaign report.
//
// Driven by crates/lunora/tests/ads_console.rs, which starts the binary and prepares the data:
//
//   LUNORA_URL=… LUNORA_PASSWORD=… LUNORA_SELLER_A=email LUNORA_SELLER_A_ID=id LUNORA_SELLER_B=…
//   LUNORA_SELLER_B_ID=… LUNORA_CLIENT=email LUNORA_CAMPAIGN_ID=… LUNORA_CAMPAIGN_NAME=…
//   LUNORA_OTHER_CAMPAIGN_ID=… LUNORA_OTHER_CAMPAIGN_NAME=… LUNORA_ADMIN_EMAIL=… LUNORA_ADMIN_PASSWORD=…
//   LUNORA_PRODUCER=email LUNORA_TALENT=email
//   node web/e2e/ads.mjs
//
// Other env: LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium).
// Prints "ok - <check>" per check and "N passed, M failed"; stops at the first failure.

import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`ads: set ${k}`);
    process.exit(2);
  }
  return v;
};

const base = env('LUNORA_URL').replace(/\/+$/, '');
const password = env('LUNORA_PASSWORD');
const sellerA = { email: env('LUNORA_SELLER_A'), id: env('LUNORA_SELLER_A_ID') };
const sellerB = { email: env('LUNORA_SELLER_B'), id: env('LUNORA_SELLER_B_ID') };
const clientEmail = env('LUNORA_CLIENT');
const admin = { email: env('LUNORA_ADMIN_EMAIL'), password: env('LUNORA_ADMIN_PASSWORD') };
const producerEmail = env('LUNORA_PRODUCER');
const talentEmail = env('LUNORA_TALENT');
const campaign = { id: env('LUNORA_CAMPAIGN_ID'), name: env('LUNORA_CAMPAIGN_NAME') };
const other = { id: env('LUNORA_OTHER_CAMPAIGN_ID'), name: env('LUNORA_OTHER_CAMPAIGN_NAME') };
const shotDir = process.env.LUNORA_SCREENSHOT_DIR || '/tmp';
const executablePath = process.env.LUNORA_CHROMIUM || '/usr/bin/chromium';

const A_NAME = `${campaign.name} (A's edit)`;
const B_NAME = `${campaign.name} (B's edit)`;

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

async function signIn(page, email, next, secret = password) {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The people the presence bar lists: user id → state. */
const presence = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-testid="presence"] [data-user]')].map((el) => [el.getAttribute('data-user'), el.getAttribute('data-state')]),
    ),
  );

const nameField = (page) => page.getByRole('form', { name: 'Campaign details' }).getByLabel('Name');
const saveButton = (page) => page.getByRole('button', { name: 'Save campaign' });

const pages = {};

const checks = [
  {
    name: 'two sellers open the same campaign and each sees both in presence',
    async run() {
      const campaignPath = `/ads/campaigns/${campaign.id}`;
      await Promise.all([signIn(pages.a, sellerA.email, campaignPath), signIn(pages.b, sellerB.email, campaignPath)]);
      for (const [who, page] of [
        ['A', pages.a],
        ['B', pages.b],
      ]) {
        await visible(page.getByRole('heading', { name: campaign.name, exact: true }), `the campaign page of seller ${who}`);
      }
      for (const [who, page] of [
        ['A', pages.a],
        ['B', pages.b],
      ]) {
        await until(`seller ${who}'s page to list both sellers as present`, async () => {
          const p = await presence(page);
          return p[sellerA.id] && p[sellerB.id] ? p : null;
        });
      }
      await screenshot(pages.a, 'presence-both');
    },
  },
  {
    name: 'B starts editing: A sees B editing',
    async run() {
      await nameField(pages.b).fill(B_NAME);
      await until("A's presence to show B editing", async () => (await presence(pages.a))[sellerB.id] === 'editing');
    },
  },
  {
    name: 'A saves a change; B, still editing, is told someone saved',
    async run() {
      await nameField(pages.a).fill(A_NAME);
      await saveButton(pages.a).click();
      await visible(pages.a.getByRole('heading', { name: A_NAME, exact: true }), "A's saved name in the heading");
      await visible(pages.b.getByTestId('remote-change'), "the notice on B's page that A saved");
      const v = await nameField(pages.b).inputValue();
      if (v !== B_NAME) fail(`B's unsaved edit was replaced: the field reads "${v}"`);
    },
  },
  {
    name: "B saves with the old version: the page shows the conflict with A's value, nothing overwritten",
    async run() {
      await saveButton(pages.b).click();
      const panel = pages.b.getByTestId('conflict');
      await visible(panel, 'the conflict panel');
      const theirs = await text(panel.getByTestId('theirs-name'));
      const mine = await text(panel.getByTestId('mine-name'));
      if (theirs !== A_NAME) fail(`"their value" reads "${theirs}", not A's "${A_NAME}"`);
      if (mine !== B_NAME) fail(`"your value" reads "${mine}", not B's "${B_NAME}"`);
      await screenshot(pages.b, 'conflict-panel');
      // A's page still shows A's value: B's save did not go through.
      const a = await nameField(pages.a).inputValue();
      if (a !== A_NAME) fail(`A's page reads "${a}" after B's refused save`);
    },
  },
  {
    name: 'B keeps theirs: the form shows A’s value and the panel closes',
    async run() {
      await pages.b.getByRole('button', { name: 'Keep theirs' }).click();
      await until("B's name field to read A's value", async () => (await nameField(pages.b).inputValue()) === A_NAME);
      if (await pages.b.getByTestId('conflict').count()) fail('the conflict panel is still open');
      // Presence follows: B is back to viewing.
      await until("A's presence to show B viewing again", async () => (await presence(pages.a))[sellerB.id] === 'viewing');
    },
  },
  {
    name: 'B’s bell holds the “added to the account team” notification; mark all read empties it',
    async run() {
      const page = pages.b;
      await visible(page.getByTestId('bell-count'), 'the unread count on the bell');
      await page.getByTestId('bell').click();
      const panel = page.getByRole('region', { name: 'Notifications' });
      await visible(panel.getByText(/added to the account team/), 'the team notification');
      await panel.getByRole('button', { name: 'Mark all read' }).click();
      await until('the unread count to go', async () => (await page.getByTestId('bell-count').count()) === 0);
      await page.getByTestId('bell').click();
    },
  },
  {
    name: 'the campaign activity timeline lists A’s change',
    async run() {
      const timeline = pages.b.getByRole('list', { name: 'Activity timeline' });
      await visible(timeline.locator('li[data-action="updated"]'), 'an "updated" entry in the timeline');
      const t = await text(timeline.locator('li[data-action="updated"]'));
      if (!/changed name/i.test(t)) fail(`the timeline entry reads "${t}"`);
    },
  },
  {
    name: 'a client user sees its own campaign report and billing, not another advertiser’s',
    async run() {
      const page = pages.c;
      await signIn(page, clientEmail, '/ads');
      await visible(page.getByRole('heading', { name: 'Campaign reports' }), 'the client dashboard');
      const report = page.locator(`article.report[data-campaign="${A_NAME}"]`);
      await visible(report, `the report of "${A_NAME}"`);
      const spend = await text(report.getByTestId('report-spend'));
      if (!/\$120\.00/.test(spend)) fail(`the delivered figure reads "${spend}"`);
      if (await page.locator(`article.report[data-campaign="${other.name}"]`).count()) fail(`the client sees "${other.name}"`);
      await visible(page.getByTestId('billing-total'), 'the billing total');
      const total = await text(page.getByTestId('billing-total'));
      if (total !== '$120.00') fail(`the billing total reads "${total}"`);
      await screenshot(page, 'client-report');
      // Another advertiser's campaign, by its address: not shown.
      await page.goto(`${base}/ads/campaigns/${other.id}`);
      await visible(page.getByRole('heading', { name: 'This campaign is gone or not yours to see' }), 'the not-found message');
      if (await page.getByRole('heading', { name: other.name }).count()) fail('the other campaign is shown');
    },
  },
  {
    name: 'a producer schedules an episode with talent; the talent’s open page lists it live; the calendar shows it',
    async run() {
      const talent = pages.f;
      const producer = pages.e;
      await signIn(talent, talentEmail, '/ads');
      await visible(talent.getByRole('heading', { name: 'Your episodes' }), "the talent's dashboard");
      await visible(talent.getByRole('heading', { name: 'Your availability' }), "the talent's availability editor");
      await signIn(producer, producerEmail, '/ads/shows');
      await visible(producer.getByRole('heading', { name: 'Shows and episodes' }), 'the shows page');
      await producer.getByRole('button', { name: 'New episode' }).click();
      const form = producer.getByRole('form', { name: 'New episode' });
      await visible(form, 'the episode form');
      const today = await producer.evaluate(() => new Date().toISOString().slice(0, 10));
      await form.getByLabel('Title').fill('Live Ep');
      await form.getByLabel('Airs on').fill(today);
      await form.getByRole('checkbox', { name: 'talent' }).check();
      await form.getByRole('button', { name: 'Create episode' }).click();
      await visible(producer.locator('tr[data-episode="Live Ep"]'), 'the new episode in the list');
      await visible(talent.getByRole('cell', { name: 'Live Ep', exact: true }), "the episode on the talent's page without a reload");
      await producer.getByRole('navigation', { name: 'Ads sections' }).getByRole('link', { name: 'Dashboard' }).click();
      const cell = producer.locator(`.calendar-day[data-date="${today}"]`);
      await visible(cell.getByText('Live Ep'), `the episode on ${today} in the schedule calendar`);
      await screenshot(producer, 'producer-calendar');
    },
  },
  {
    name: 'an admin sees every campaign, takes a backup and dry-runs a restore of campaigns on the Backups page',
    async run() {
      const page = pages.d;
      await signIn(page, admin.email, '/ads', admin.password);
      await visible(page.getByRole('heading', { name: 'Pipeline' }), 'the pipeline on the admin dashboard');
      const pipeline = page.getByTestId('pipeline');
      for (const n of [A_NAME, other.name]) await visible(pipeline.getByRole('link', { name: n, exact: true }), `"${n}" in the pipeline`);
      await page.getByRole('navigation', { name: 'Ads sections' }).getByRole('link', { name: 'Backups' }).click();
      await visible(page.getByRole('heading', { name: 'Backups', exact: true }), 'the Backups page');
      const rows = page.getByTestId('backup-row');
      const before = await rows.count();
      await page.getByRole('button', { name: 'Back up now' }).click();
      await until('the new backup in the list', async () => (await rows.count()) === before + 1);
      const row = rows.first();
      await visible(row.getByText('manual'), 'the backup kind');
      await visible(row.getByText(/\d+ campaigns/), 'the campaigns the backup holds');
      await row.getByRole('button', { name: 'Restore…' }).click();
      await page.getByRole('button', { name: 'Show what would change' }).click();
      const report = page.getByTestId('restore-report');
      await visible(report.getByText('Dry run: nothing was changed yet'), 'the dry-run report');
      await visible(report.getByRole('row', { name: /^campaigns 0 0 0 [1-9]\d* 0$/ }), 'campaigns unchanged since the backup');
      await visible(page.getByRole('button', { name: 'Restore these changes' }), 'the second, explicit restore step');
      await screenshot(page, 'backups');
    },
  },
];

async function main() {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    console.error(`ads: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const crashes = [];
  let last = null;
  try {
    // Separate contexts: separate cookie jars, so two sessions like two browsers.
    for (const who of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      page.on('pageerror', (err) => crashes.push(`${who}: ${err.message}`));
      pages[who] = page;
    }
    for (const check of checks) {
      try {
        last = check;
        await check.run();
        if (crashes.length) fail(`uncaught error in the page: ${crashes[0]}`);
        passed += 1;
        console.log(`ok - ${check.name}`);
      } catch (err) {
        failed += 1;
        const reason = err instanceof CheckFailed ? err.message : err.stack || String(err);
        console.log(`not ok - ${check.name}: ${reason}`);
        for (const [who, page] of Object.entries(pages)) {
          try {
            console.log(`# screenshot (${who}): ${await screenshot(page, `FAILED-${who}-${last.name.replace(/\W+/g, '-').slice(0, 40)}`)}`);
          } catch {
            // the page may be gone
          }
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

#!/usr/bin/env node
// Browser test of the live chat and the moderation queue against a running server.
//
// Driven by crates/lunora/tests/chat_browser.rs, which starts the binary, creates the stream and
// signs two audience accounts up:
//
//   LUNORA_URL=http://127.0.0.1:8080 LUNORA_STREAM_ID=… \
//   LUNORA_ADMIN_EMAIL=… LUNORA_ADMIN_PASSWORD=… \
//   LUNORA_ALICE_EMAIL=… LUNORA_BOB_EMAIL=… LUNORA_VIEWER_PASSWORD=… \
//   node web/e2e/chat.mjs
//
// Three browser contexts (three separate sessions): two viewers chat on /watch/{id}/chat, a
// moderator deletes a message (it disappears for both) and times a viewer out (their next post
// shows the timeout); a viewer reports a message and the moderator resolves it in the queue at
// /watch/admin/moderation.
//
// Other env: LUNORA_SCREENSHOT_DIR (default /tmp), LUNORA_CHROMIUM (default /usr/bin/chromium).
// Prints "ok - <check>" per check and "N passed, M failed"; stops at the first failure.

import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;

const env = (k) => {
  const v = process.env[k];
  if (v === undefined || v === '') {
    console.error(`chat: set ${k}`);
    process.exit(2);
  }
  return v;
};

const base = env('LUNORA_URL').replace(/\/+$/, '');
const streamId = env('LUNORA_STREAM_ID');
const moderator = { email: env('LUNORA_ADMIN_EMAIL'), password: env('LUNORA_ADMIN_PASSWORD') };
const alice = { email: env('LUNORA_ALICE_EMAIL'), password: env('LUNORA_VIEWER_PASSWORD') };
const bob = { email: env('LUNORA_BOB_EMAIL'), password: env('LUNORA_VIEWER_PASSWORD') };
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

async function gone(locator, what, timeout = TIMEOUT_MS) {
  try {
    await locator.first().waitFor({ state: 'detached', timeout });
  } catch {
    fail(`${what} was still there after ${timeout / 1000}s`);
  }
}

let shotN = 0;
async function screenshot(page, name) {
  shotN += 1;
  const file = path.join(shotDir, `${String(shotN).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const chatUrl = `${base}/watch/${streamId}/chat`;
const message = (page, text) => page.locator('li[data-testid="chat-message"]', { hasText: text });
const feedback = (page) => page.getByTestId('chat-feedback');

async function signInAndOpenChat(page, who) {
  await page.goto(`${base}/login?next=${encodeURIComponent(`/watch/${streamId}/chat`)}`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === `/watch/${streamId}/chat`, { timeout: TIMEOUT_MS });
  await visible(page.getByLabel('Chat message'), `the chat composer for ${who.email}`);
  await visible(page.locator('[data-testid="chat-panel"][data-connected="true"]'), 'a connected chat');
}

async function post(page, text) {
  await page.getByLabel('Chat message').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

const pages = {};

const checks = [
  {
    name: 'an anonymous visitor reads the chat but is asked to sign in to post',
    run: async () => {
      const p = pages.anon;
      await p.goto(chatUrl);
      await visible(p.locator('[data-testid="chat-panel"][data-connected="true"]'), 'the chat for an anonymous visitor');
      await visible(p.getByRole('link', { name: 'Sign in' }), 'the sign-in link');
      if ((await p.getByLabel('Chat message').count()) !== 0) fail('an anonymous visitor got a composer');
    },
  },
  {
    name: 'two viewers and a moderator open the chat in three sessions',
    run: async () => {
      await signInAndOpenChat(pages.alice, alice);
      await signInAndOpenChat(pages.bob, bob);
      await signInAndOpenChat(pages.mod, moderator);
    },
  },
  {
    name: 'the viewers chat; markup in a message shows as text',
    run: async () => {
      await post(pages.alice, 'Hello from Alice <b>not bold</b>');
      for (const p of [pages.bob, pages.mod, pages.anon]) {
        await visible(message(p, 'Hello from Alice <b>not bold</b>'), 'Alice’s message with its markup as text');
      }
      if ((await message(pages.bob, 'Hello from Alice').locator('b').count()) !== 0) {
        fail('the message was rendered as HTML');
      }
      await post(pages.bob, 'Bob says hi');
      await visible(message(pages.alice, 'Bob says hi'), 'Bob’s message at Alice');
      await post(pages.bob, 'buy cheap followers at spam.example');
      await visible(message(pages.alice, 'buy cheap followers'), 'Bob’s spam at Alice');
      await screenshot(pages.alice, 'two-viewers-chat');
    },
  },
  {
    name: 'a viewer reports a message',
    run: async () => {
      const p = pages.alice;
      const m = message(p, 'buy cheap followers');
      await m.hover();
      await m.getByRole('button', { name: 'Report' }).click();
      const dialog = p.getByRole('dialog');
      await visible(dialog, 'the report dialog');
      await dialog.getByLabel('Reason').selectOption('spam');
      await dialog.getByLabel('Details').fill('selling followers');
      await dialog.getByRole('button', { name: 'Send report' }).click();
      await visible(feedback(p).filter({ hasText: 'moderators will look' }), 'the report confirmation');
    },
  },
  {
    name: 'the moderator deletes a message and it disappears for both viewers',
    run: async () => {
      const m = message(pages.mod, 'Bob says hi');
      await m.hover();
      await m.getByRole('button', { name: 'Delete' }).click();
      for (const p of [pages.alice, pages.bob, pages.mod]) await gone(message(p, 'Bob says hi'), 'the deleted message');
      await screenshot(pages.bob, 'message-deleted');
    },
  },
  {
    name: 'the moderator times a viewer out; their next post shows the timeout',
    run: async () => {
      const m = message(pages.mod, 'buy cheap followers');
      await m.hover();
      await m.getByRole('button', { name: 'Time out 5 min' }).click();
      await visible(feedback(pages.bob).filter({ hasText: 'timed out' }), 'the timeout notice at Bob');
      await post(pages.bob, 'am I muted?');
      await visible(feedback(pages.bob).filter({ hasText: 'you may post again in 5 min' }), 'the refusal with the time left');
      await screenshot(pages.bob, 'timed-out');
      await new Promise((r) => setTimeout(r, 500));
      if ((await message(pages.alice, 'am I muted?').count()) !== 0) fail('a timed-out post reached Alice');
    },
  },
  {
    name: 'the moderator resolves the report in the queue; the action is carried out and recorded',
    run: async () => {
      const p = pages.mod;
      await p.goto(`${base}/watch/admin/moderation`);
      const card = p.locator('li[data-testid="report"]', { hasText: 'buy cheap followers' });
      await visible(card, 'the pending report in the queue');
      await card.getByLabel('Action').selectOption('delete_message');
      await card.getByLabel('Note').fill('spam confirmed');
      await screenshot(p, 'moderation-queue');
      await card.getByRole('button', { name: 'Resolve' }).click();
      await gone(card, 'the resolved report in the pending tab');
      await p.getByRole('tab', { name: 'Resolved' }).click();
      const done = p.locator('li[data-testid="report"][data-status="resolved"]', { hasText: 'buy cheap followers' });
      await visible(done, 'the report under Resolved');
      await visible(done.getByText('delete_message'), 'the action on the resolved report');
      await visible(p.locator('tr[data-action="delete_message"]', { hasText: 'spam confirmed' }), 'the action in the history');
      await gone(message(pages.alice, 'buy cheap followers'), 'the reported message at Alice');
      await screenshot(p, 'report-resolved');
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
    console.error(`chat: cannot start Chromium at ${executablePath}: ${err.message}`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const crashes = [];
  let last = null;
  try {
    for (const who of ['anon', 'alice', 'bob', 'mod']) {
      const context = await browser.newContext({ viewport: { width: 900, height: 760 }, colorScheme: 'light' });
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      page.on('pageerror', (err) => crashes.push(`${who}: ${err.message}`));
      pages[who] = page;
    }
    for (const check of checks) {
      try {
        await check.run();
        if (crashes.length) fail(`uncaught error in a page: ${crashes[0]}`);
        passed += 1;
        console.log(`ok - ${check.name}`);
      } catch (err) {
        failed += 1;
        const reason = err instanceof CheckFailed ? err.message : err.stack || String(err);
        console.log(`not ok - ${check.name}: ${reason}`);
        for (const [who, page] of Object.entries(pages)) {
          try {
            last = await screenshot(page, `FAILED-${who}`);
            console.log(`# screenshot: ${last}`);
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

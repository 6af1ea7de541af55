// Chromium: the demo page, served by demo/serve.py from an allowed origin,
// enrols, connects to the real Python server and sends signed frames that the
// server verifies; the same page from a second, disallowed origin is refused
// at the handshake (HTTP 403, CSWSH); the page's private key is non-extractable.
//
// Needs Debian's chromium (/usr/bin/chromium, or $SIGNEDWS_CHROMIUM), driven by
// playwright-core. tests/test_js_client.py decides whether a missing browser
// skips (locally) or fails (CI=true).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { startServer } from './support/server.js';

const EXECUTABLE = process.env.SIGNEDWS_CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium tries to reach Google's
// services, which a closed network refuses; only loopback traffic is wanted.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  assert.ok(existsSync(EXECUTABLE), `no Chromium at ${EXECUTABLE}`);
  server = await startServer(['--foreign']);
  browser = await chromium.launch({ executablePath: EXECUTABLE, args: ARGS, headless: true });
  console.log(`# browser: Chromium ${browser.version()}; node ${process.version}`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh page (own profile) at `origin`'s demo page, ready. */
async function openDemo(origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${origin}/demo/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10000 }).catch((error) => {
    throw new Error(`demo page not ready: ${errors.join('; ') || error.message}`);
  });
  return { context, page };
}

async function eventsFor(subject) {
  return (await server.events()).filter((e) => e.type === 'message' && e.subject === subject);
}

describe('Chromium', () => {
  test('ed25519 from the allowed origin: the server verifies the page\'s signed frames', async () => {
    const { context, page } = await openDemo(server.http);
    try {
      await page.evaluate(() => window.demo.enrol('ed25519', 'chromium-ed25519'));
      await page.evaluate(() => window.demo.connect());
      await page.evaluate(() => window.demo.send('hello from Chromium'));
      await page.evaluate(() => window.demo.send('second signed frame'));
      const echoes = await page.evaluate(() => window.demo.echoes(2));
      // The echoes are server frames the page verified (Ed25519, server key).
      assert.deepEqual(echoes, [
        'chromium-ed25519 (seq 1) said: hello from Chromium',
        'chromium-ed25519 (seq 2) said: second signed frame',
      ]);
      await page.evaluate(() => window.demo.close());
    } finally {
      await context.close();
    }
    const messages = await eventsFor('chromium-ed25519');
    assert.deepEqual(messages.map((m) => [m.seq, m.payload]), [[1, 'hello from Chromium'], [2, 'second signed frame']]);
    const events = await server.events();
    const handshake = events.find((e) => e.type === 'handshake' && e.connection === messages[0].connection);
    assert.equal(handshake.origin, server.http);
    // Nothing secret in the handshake: no query string, no cookie, no header.
    assert.equal(handshake.path, '/');
    assert.equal(handshake.cookie, false);
    assert.equal(handshake.authorization, false);
  });

  test('a room: two pages hear each other\'s /room lines as verified broadcasts, in order', async () => {
    const one = await openDemo(server.http);
    const two = await openDemo(server.http);
    try {
      await one.page.evaluate(() => window.demo.enrol('ed25519', 'room-ed25519'));
      await two.page.evaluate(() => window.demo.enrol('mac', 'room-mac'));
      for (const { page } of [one, two]) {
        await page.evaluate(() => window.demo.connect());
        await page.evaluate(() => window.demo.send('here'));  // joins the room
        await page.evaluate(() => window.demo.echoes(1));
      }
      await one.page.evaluate(() => window.demo.send('/room hello from one'));
      await one.page.evaluate(() => window.demo.echoes(2));
      await two.page.evaluate(() => window.demo.send('/room hello from two'));
      const expected = ['room-ed25519: hello from one', 'room-mac: hello from two'];
      for (const { page } of [one, two]) {
        const heard = await page.evaluate(() => window.demo.echoes(3));
        assert.deepEqual(heard.slice(1), expected);
      }
      const log = await one.page.locator('#log').innerText();
      assert.match(log, /room-mac: hello from two/);
    } finally {
      await one.context.close();
      await two.context.close();
    }
  });

  test('mac from the allowed origin: token and non-extractable frame key', async () => {
    const { context, page } = await openDemo(server.http);
    try {
      await page.evaluate(() => window.demo.enrol('mac', 'chromium-mac'));
      await page.evaluate(() => window.demo.connect());
      await page.evaluate(() => window.demo.send('a mac frame'));
      assert.deepEqual(await page.evaluate(() => window.demo.echoes(1)), ['chromium-mac (seq 1) said: a mac frame']);
      await page.evaluate(() => window.demo.close());
    } finally {
      await context.close();
    }
    const messages = await eventsFor('chromium-mac');
    assert.deepEqual(messages.map((m) => [m.seq, m.payload]), [[1, 'a mac frame']]);
  });

  test('the private key is non-extractable, and stays so across reloads (IndexedDB)', async () => {
    const { context, page } = await openDemo(server.http);
    try {
      const first = await page.evaluate(() => window.demo.keyInfo());
      assert.equal(first.extractable, false);
      assert.deepEqual(first.usages, ['sign']);
      assert.equal(first.exportError, 'InvalidAccessError');
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      const again = await page.evaluate(() => window.demo.keyInfo());
      assert.equal(again.publicKey, first.publicKey, 'the same key pair, loaded from IndexedDB');
      assert.equal(again.extractable, false);
      assert.equal(again.exportError, 'InvalidAccessError');
    } finally {
      await context.close();
    }
  });

  test('the same page from a disallowed origin is refused at the handshake (403, CSWSH)', async () => {
    const { context, page } = await openDemo(server.foreign);
    try {
      // The foreign page can even get a valid credential: the Origin check is
      // what stops it, before any frame.
      await page.evaluate(() => window.demo.enrol('mac', 'chromium-foreign'));
      const outcome = await page.evaluate(() =>
        window.demo.connect().then(
          () => 'connected',
          (error) => error.name,
        ),
      );
      assert.equal(outcome, 'HandshakeFailed');
    } finally {
      await context.close();
    }
    const refused = (await server.events()).filter((e) => e.type === 'refused' && e.origin === server.foreign);
    assert.equal(refused.length, 1);
    assert.equal(refused[0].status, 403);
    assert.deepEqual(await eventsFor('chromium-foreign'), []);
  });
});

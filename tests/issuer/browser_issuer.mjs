// Headless Chromium on the demo page with the real issuer service: the page
// logs in (it is handed the OpenID Provider's access token), connects with
// connect(url, { issuer, loginToken }), sends signed frames that the Python
// server verifies, and its credential is refreshed through the issuer on the
// same connection; then again with an ed25519 key pair kept, non-extractable,
// in IndexedDB. Run by tests/issuer/test_issuer_browser.py with PAGE and
// LOGIN_TOKEN in the environment; prints one JSON line.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../clients/js/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const { PAGE, LOGIN_TOKEN, CHROMIUM } = process.env;
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
const result = { version: browser.version() };
try {
  for (const scheme of ['mac', 'ed25519']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => process.stderr.write(`console: ${message.text()}\n`));
    await page.goto(PAGE);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10000 });
    await page.evaluate((token) => window.demo.login(token), LOGIN_TOKEN);
    // Connect and send the first message in one step, well before the refresh is
    // due (lifetime - refreshMargin = 5 s), so that a loaded machine cannot let
    // the refresh overtake it.
    const connected = await page.evaluate(async (s) => {
      const info = await window.demo.connectIssuer(s, { lifetime: 16, refreshMargin: 11 });
      await window.demo.send('before refresh');
      return info;
    }, scheme);
    const refreshedCid = await page.evaluate(() => window.demo.refreshed(1));
    await page.evaluate(() => window.demo.send('after refresh'));
    const echoes = await page.evaluate(() => window.demo.echoes(2));
    await page.evaluate(() => window.demo.close());
    result[scheme] = { first: connected.cid, refreshed: refreshedCid, extractable: connected.extractable, echoes, errors };
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);

// The demo page: enrol a credential with the demo issuer (same origin), connect
// to the signedws server, send signed messages, show the verified echoes.
// `window.demo` is what the page's buttons call; the browser test calls it too.
import {
  Ed25519Credential,
  MACCredential,
  connect,
  fromHex,
  loadOrCreateKeyPair,
  toHex,
} from '../src/index.js';

const $ = (id) => document.getElementById(id);
const config = await (await fetch('/config')).json();
$('origin').textContent = location.origin;
$('server').textContent = config.ws_url;

function log(text, kind = '') {
  const line = document.createElement('div');
  line.textContent = text;
  line.className = kind;
  $('log').append(line);
}

const state = { credential: null, client: null, received: [], key: null };

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** Get a credential: a certificate for this browser's key pair, or a token. */
async function enrol(scheme, subject = `browser-${scheme}`) {
  if (scheme === 'ed25519') {
    // Generated once, kept in IndexedDB, non-extractable: usable, never readable.
    state.key = await loadOrCreateKeyPair('demo');
    const issued = await post('/enrol/ed25519', { subject, public_key: toHex(state.key.publicKey().toBytes()) });
    state.credential = new Ed25519Credential(fromHex(issued.certificate), state.key);
    $('key').textContent = `public key ${toHex(state.key.publicKey().toBytes()).slice(0, 16)}…, private key extractable: ${state.key.cryptoKey.extractable}`;
  } else {
    const issued = await post('/enrol/mac', { subject });
    // The frame key is imported non-extractable; the response's copy is dropped.
    state.credential = await MACCredential.fromBytes(fromHex(issued.token), fromHex(issued.frame_key));
    $('key').textContent = `token ${issued.cid}, frame key held as a non-extractable CryptoKey`;
  }
  log(`enrolled (${scheme}) as ${subject}`, 'ok');
  $('connect').disabled = false;
  return { scheme, subject, cid: state.credential.cid };
}

async function open() {
  const serverKeys = Object.fromEntries(Object.entries(config.server_keys).map(([kid, hex]) => [kid, fromHex(hex)]));
  try {
    state.client = await connect(config.ws_url, state.credential, { audience: config.audience, serverKeys });
  } catch (error) {
    log(`connection refused: ${error.message}`, 'bad');
    $('status').textContent = 'refused';
    throw error;
  }
  $('status').textContent = 'connected';
  $('connect').disabled = true;
  $('send').disabled = $('close').disabled = false;
  log(`connected to ${config.ws_url}`, 'ok');
  const client = state.client;
  (async () => {
    try {
      for await (const payload of client) {
        state.received.push(payload);
        log(`verified echo: ${payload}`, 'ok');
      }
      log('connection closed');
    } catch (error) {
      log(`closed: ${error.message}`, 'bad');
    }
    $('status').textContent = 'closed';
    $('connect').disabled = false;
    $('send').disabled = $('close').disabled = true;
  })();
  return { connections: client.connections };
}

async function send(text) {
  await state.client.send(text);
  log(`sent (signed): ${text}`);
}

/** Resolves with the echoes received once there are `count` of them. */
async function echoes(count, timeout = 10000) {
  const start = Date.now();
  while (state.received.length < count) {
    if (Date.now() - start > timeout) throw new Error(`only ${state.received.length} echoes`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return state.received.slice(0, count);
}

/** What script can learn about the private key: not its bytes. */
async function keyInfo() {
  const key = state.key ?? (await loadOrCreateKeyPair('demo'));
  let exportError = null;
  try {
    await crypto.subtle.exportKey('pkcs8', key.cryptoKey);
  } catch (error) {
    exportError = error.name;
  }
  return {
    publicKey: toHex(key.publicKey().toBytes()),
    extractable: key.cryptoKey.extractable,
    usages: key.cryptoKey.usages,
    exportError,
  };
}

async function close() {
  await state.client?.close();
}

/**
 * The application's login: here the page is handed an access token of the
 * OpenID Provider (a real app gets it from its login flow). It never goes to
 * the WebSocket: only to the issuer, in an Authorization header.
 */
function login(accessToken) {
  state.loginToken = accessToken;
  log('logged in (the app\'s own access token)', 'ok');
}

/**
 * Connect through the issuer service (SPEC.md §13): the client gets its
 * credential from the issuer with the login token, and refreshes it there
 * before it expires, on the same connection.
 */
async function connectIssuer(scheme = 'mac', { lifetime, refreshMargin } = {}) {
  if (!config.issuer_url) throw new Error('the demo runs without an issuer (serve.py --oidc-issuer)');
  state.refreshes = 0;
  state.client = await connect(config.ws_url, {
    issuer: config.issuer_url,
    loginToken: async () => state.loginToken,
    scheme,
    keyName: 'demo-issuer',
    ...(lifetime !== undefined ? { lifetime } : {}),
    ...(refreshMargin !== undefined ? { refreshMargin } : {}),
    audience: config.audience,
  });
  state.client.addEventListener('refresh', (event) => {
    state.refreshes += 1;
    log(`credential refreshed through the issuer: ${event.detail.credential.cid}`, 'ok');
  });
  log(`connected through the issuer (${scheme}) as ${state.client.credential.claims.sub}`, 'ok');
  const client = state.client;
  (async () => {
    try {
      for await (const payload of client) {
        state.received.push(payload);
        log(`verified echo: ${payload}`, 'ok');
      }
    } catch (error) {
      log(`closed: ${error.message}`, 'bad');
    }
  })();
  return { cid: client.credential.cid, scheme, extractable: scheme === 'ed25519' ? client.credential.privateKey.cryptoKey.extractable : null };
}

/** Resolves with the credential id once `count` refreshes happened. */
async function refreshed(count = 1, timeout = 10000) {
  const start = Date.now();
  while ((state.refreshes ?? 0) < count) {
    if (Date.now() - start > timeout) throw new Error(`only ${state.refreshes} refreshes`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return state.client.credential.cid;
}

window.demo = { enrol, connect: open, send, echoes, keyInfo, close, config, login, connectIssuer, refreshed };

$('enrol-ed25519').onclick = () => enrol('ed25519').catch((e) => log(e.message, 'bad'));
$('enrol-mac').onclick = () => enrol('mac').catch((e) => log(e.message, 'bad'));
$('connect').onclick = () => open().catch(() => {});
$('close').onclick = () => close();
$('send-form').onsubmit = (event) => {
  event.preventDefault();
  send($('message').value).catch((e) => log(e.message, 'bad'));
};
document.body.dataset.ready = 'true';

// A real OpenID Provider for the issuer tests: oidc-provider on 127.0.0.1.
//
// node op.mjs  ->  prints one JSON line {"issuer": ..., "port": ...} once listening.
//
// Clients (client credentials grant, JWT access tokens via resourceIndicators):
//   "app"  / secret "app-secret": scope "chat:read chat:write admin openid"
// Resource indicators (all but the last give aud "https://api.example"):
//   https://api.example           ES256, 300 s
//   https://api.example/short     ES256, 1 s  (expires during a test)
//   https://api.example/rs256     RS256       (an algorithm outside the issuer's allow-list)
//   https://other.example         ES256, aud "https://other.example" (another audience)
// Test control (loopback only, never in a real provider):
//   POST /_test/rotate: a new ES256 key signs from now on; the old one stays published.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const host = '127.0.0.1';
const port = Number(process.env.OP_PORT || 0);

function ecKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}
function rsaKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

const resources = {
  'https://api.example': { alg: 'ES256', ttl: 300 },
  'https://api.example/short': { alg: 'ES256', ttl: 1 },
  'https://api.example/rs256': { alg: 'RS256', ttl: 300 },
  'https://other.example': { alg: 'ES256', ttl: 300, aud: 'https://other.example' },
};

let generation = 1;
let keys = [ecKey('es-1'), rsaKey('rs-1')];

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'app',
        client_secret: 'app-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'chat:read chat:write admin openid',
      },
    ],
    jwks: { keys },
    scopes: ['openid', 'chat:read', 'chat:write', 'admin'],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://api.example',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          const info = resources[indicator];
          if (!info) throw new Error('unknown resource');
          return {
            scope: 'chat:read chat:write admin',
            audience: info.aud || 'https://api.example',
            accessTokenTTL: info.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: info.alg } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  return provider;
}

let handler = null;
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/_test/rotate') {
    generation += 1;
    // The new key first: oidc-provider signs with the first key of an alg.
    keys = [ecKey(`es-${generation}`), ...keys];
    handler = makeProvider(issuerUrl).callback();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: `es-${generation}` }));
    return;
  }
  handler(req, res);
});

let issuerUrl;
server.listen(port, host, () => {
  const actual = server.address().port;
  issuerUrl = `http://${host}:${actual}`;
  handler = makeProvider(issuerUrl).callback();
  process.stdout.write(`${JSON.stringify({ issuer: issuerUrl, port: actual })}\n`);
});

// Stop with the test run: when stdin closes (the parent died) or on SIGTERM.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

// The JS client against the issuer service, in Node: connect(url, { issuer,
// loginToken }) gets its credential from the issuer, sends signed frames to a
// real signedws server, reads the verified echoes, and refreshes through the
// issuer on the same connection. Run by tests/issuer/test_issuer_js.py, which
// passes the URLs and the provider's token in the environment (never argv).
// Prints one JSON line with what happened.
import { connect } from '../../clients/js/src/index.js';

const { ISSUER_URL, WS_URL, AUDIENCE, LOGIN_TOKEN, SCHEME } = process.env;
let logins = 0;
const client = await connect(WS_URL, {
  issuer: ISSUER_URL,
  loginToken: async () => {
    logins += 1;
    return LOGIN_TOKEN;
  },
  scheme: SCHEME,
  lifetime: 12,
  refreshMargin: 11, // refresh about a second after connecting
  audience: AUDIENCE,
  keepalive: null,
});
let refreshed = 0;
client.addEventListener('refresh', () => {
  refreshed += 1;
});
const cids = [client.credential.cid];
const echoes = [];
await client.send('one');
echoes.push(await client.recv());
for (let i = 0; i < 60 && refreshed === 0; i += 1) {
  await new Promise((resolve) => setTimeout(resolve, 100)); // bounded: ~1 s to the refresh
}
cids.push(client.credential.cid);
await client.send('after refresh');
echoes.push(await client.recv());
const keyExtractable = SCHEME === 'ed25519' ? client.credential.privateKey.cryptoKey.extractable : null;
await client.close();
process.stdout.write(`${JSON.stringify({ echoes, refreshed, logins, cids, keyExtractable })}\n`);

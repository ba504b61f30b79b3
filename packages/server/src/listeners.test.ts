import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp } from './buildApp.js';
import { assertOpsAddressAllowed, type RunningServer, startServer } from './startServer.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner, testArtifactsDir } from './testing/createTestSigner.js';
import { makeClientCertificates } from './testing/makeClientCertificates.js';
import { makeSelfSignedCertificate, opensslAvailable } from './testing/makeSelfSignedCertificate.js';

// Listeners (issue 15 point 13): the API (HTTPS, mutual TLS), the pages (--public-listen) and the
// operations listener (--ops-listen: probes and metrics, plain HTTP) bound at once, each serving only
// its own routes; the API's client CA refuses clients without its certificate in the handshake; the
// API's address allowlist (--allow-from) follows --trust-proxy and cannot be bypassed with
// X-Forwarded-For from an untrusted peer.

interface Answer {
  status: number;
  body: string;
}

function get(url: string, options: https.RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).request(url, { agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end();
  });
}

// one signer for the file (its store is shared by the server started below, as a second replica)
let signer: TestSigner;
before(async () => {
  signer = await createTestSigner();
});
after(async () => {
  await signer.close();
});

if (!opensslAvailable()) {
  it('needs openssl', { skip: 'openssl is not installed here (CI installs it)' }, () => undefined);
} else {
  describe('listeners: API (mutual TLS), pages and operations bound separately', () => {
    let server: RunningServer;
    let serverCa: Buffer;
    let client: { cert: Buffer; key: Buffer };
    let foreign: { cert: Buffer; key: Buffer };

    before(async () => {
      const dir = mkdtempSync(join(testArtifactsDir(), 'mtls-'));
      const tls = makeSelfSignedCertificate(dir, 'server');
      serverCa = readFileSync(tls.cert);
      const ours = makeClientCertificates(dir, 'ours');
      // another CA's client: a self-signed certificate stands for it (one openssl call instead of three)
      const theirs = makeSelfSignedCertificate(dir, 'theirs');
      client = { cert: readFileSync(ours.clientCert), key: readFileSync(ours.clientKey) };
      foreign = { cert: readFileSync(theirs.cert), key: readFileSync(theirs.key) };
      server = await startServer({
        store: signer.location,
        port: 0,
        logger: false,
        passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
        tls: { certFile: tls.cert, keyFile: tls.key, clientCaFile: ours.caCert },
        publicListen: { host: '127.0.0.1', port: 0 },
        opsListen: { host: '127.0.0.1', port: 0 },
        allowFrom: ['127.0.0.1', '::1'],
      });
    });
    after(async () => {
      await server?.close();
    });

    const api = (path: string, identity: { cert: Buffer; key: Buffer } | null = client) =>
      get(`${server.url}${path}`, { ca: serverCa, ...(identity ?? {}), headers: signer.auth() });

    it('the operations listener serves the probes and metrics, plain HTTP, and nothing else', async () => {
      assert.match(String(server.opsUrl), /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await get(`${server.opsUrl}/healthz`)).status, 200);
      const ready = await get(`${server.opsUrl}/readyz`);
      assert.equal(ready.status, 200, ready.body);
      assert.equal(JSON.parse(ready.body).ready, true);
      const metrics = await get(`${server.opsUrl}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /custos_/);
      for (const path of ['/v1/sys/status', '/v1/openapi.json', '/v1/wallets', '/approve/x', '/docs']) {
        const answer = await get(`${server.opsUrl}${path}`);
        assert.equal(answer.status, 404, path);
        assert.equal(JSON.parse(answer.body).error.code, 'not_found', path);
      }
    });

    it('the API listener serves the API and the health probes, no metrics and no pages', async () => {
      assert.equal((await api('/v1/sys/status')).status, 200);
      assert.equal((await api('/healthz')).status, 200);
      assert.equal((await api('/readyz')).status, 200);
      const metrics = await api('/metrics');
      assert.equal(metrics.status, 404);
      assert.equal(JSON.parse(metrics.body).error.code, 'not_found');
      assert.equal((await api('/approve/0000')).status, 404);
    });

    it('the pages listener needs no client certificate and serves no API, probe or metrics', async () => {
      for (const path of ['/v1/sys/status', '/healthz', '/metrics']) {
        const answer = await get(`${server.pagesUrl}${path}`, { ca: serverCa, headers: { host: 'localhost' }, checkServerIdentity: () => undefined });
        assert.equal(answer.status, 404, path);
        assert.match(answer.body, /<html/i, path);
      }
    });

    it('mutual TLS: no certificate, or one from another CA, is refused in the handshake', async () => {
      await assert.rejects(api('/v1/sys/status', null), 'no client certificate');
      await assert.rejects(api('/v1/sys/status', foreign), 'a client certificate of another CA');
      assert.equal((await api('/v1/sys/status')).status, 200, 'the CA’s client');
      // SIGHUP's reload re-reads the CA with the certificate (the same files here: nothing changes)
      server.reloadTls();
      await assert.rejects(api('/v1/sys/status', foreign));
      assert.equal((await api('/v1/sys/status')).status, 200);
    });
  });
}

describe('--allow-from: the API listener answers only listed client addresses', () => {
  it('refuses other addresses 403 forbidden_address, probes included', async () => {
    const app = await buildApp({ kernel: signer.kernel, allowFrom: ['10.0.0.0/8', '192.0.2.7'] });
    try {
      const status = (remoteAddress: string, headers: Record<string, string> = {}) =>
        app.inject({ method: 'GET', url: '/v1/sys/status', remoteAddress, headers: { host: 'localhost', ...headers } });
      assert.equal((await status('10.1.2.3')).statusCode, 200);
      assert.equal((await status('192.0.2.7')).statusCode, 200);
      assert.equal((await status('::ffff:10.9.9.9')).statusCode, 200, 'an IPv4-mapped address as its IPv4 form');
      for (const [address, path] of [
        ['192.0.2.8', '/v1/sys/status'],
        ['127.0.0.1', '/healthz'],
        ['2001:db8::1', '/v1/openapi.json'],
      ] as const) {
        const answer = await app.inject({ method: 'GET', url: path, remoteAddress: address, headers: { host: 'localhost' } });
        assert.equal(answer.statusCode, 403, `${address} ${path}`);
        assert.deepEqual(answer.json().error, {
          code: 'forbidden_address',
          message: "this client's address may not use this listener",
          details: { field: 'address' },
          docs: '/docs/errors#forbidden-address',
        });
      }
      // X-Forwarded-For from a peer that is not a trusted proxy changes nothing
      assert.equal((await status('198.51.100.1', { 'x-forwarded-for': '10.1.2.3' })).statusCode, 403);
    } finally {
      await app.close();
    }
  });

  it('behind a trusted proxy, the forwarded address is the one checked', async () => {
    const app = await buildApp({ kernel: signer.kernel, allowFrom: ['10.0.0.0/8'], trustProxy: ['192.0.2.1'] });
    try {
      const via = (xff: string) =>
        app.inject({ method: 'GET', url: '/v1/sys/status', remoteAddress: '192.0.2.1', headers: { host: 'localhost', 'x-forwarded-for': xff } });
      assert.equal((await via('10.1.2.3')).statusCode, 200);
      assert.equal((await via('198.51.100.1')).statusCode, 403);
      // a client's own forged entry left of the proxy's: the right-most untrusted address is the client
      assert.equal((await via('10.1.2.3, 198.51.100.1')).statusCode, 403);
    } finally {
      await app.close();
    }
  });

  it('the operations listener is plain HTTP on loopback or private addresses only, unless --insecure-http', () => {
    for (const host of ['127.0.0.1', 'localhost', '10.0.0.5', '172.20.1.1', '192.168.1.2', '[fd00::1]', '[::1]']) assertOpsAddressAllowed(host, false);
    for (const host of ['0.0.0.0', '[::]', '203.0.113.5', 'ops.example.com', '[2001:db8::1]'])
      assert.throws(() => assertOpsAddressAllowed(host, false), { code: 'invalid_input' }, host);
    assertOpsAddressAllowed('0.0.0.0', true);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { startServer, type RunningServer } from './startServer.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner, testArtifactsDir } from './testing/createTestSigner.js';
import { makeSelfSignedCertificate, opensslAvailable } from './testing/makeSelfSignedCertificate.js';
import { runCustos } from './testing/runCustos.js';
import { type CreationOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';

// `custos serve --public-listen HOST:PORT` (issue 11, point 4): the kernel's pages on a listener of
// their own that serves nothing else, while the API listener serves no pages; and the passkey
// settings startServer derives from the public URL (decidePasskeys).

const WALLET = 'public-listener@acme.com';
const HASH = `0x${'5a'.repeat(32)}`;
const CSP = /^default-src 'none'; style-src 'nonce-[A-Za-z0-9+/]{22}=='; .*frame-ancestors 'none'/;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP exchange with any Host header (fetch may not set it). */
function request(
  url: string,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A page answer: HTML under the pages' headers (CSP with a nonce, no referrer, no framing). */
function assertPage(answer: Answer, status: number, what: string): void {
  assert.equal(answer.status, status, `${what}: ${answer.body.slice(0, 300)}`);
  assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8', what);
  assert.match(String(answer.headers['content-security-policy']), CSP, what);
  assert.equal(answer.headers['referrer-policy'], 'no-referrer', what);
  assert.equal(answer.headers['x-frame-options'], 'DENY', what);
}

describe('--public-listen: the pages on a listener of their own', () => {
  let signer: TestSigner;
  let server: RunningServer;
  let lines: string[];
  let approveUrl: string;
  let enrollUrl: string;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    const captured = captureLogLines();
    lines = captured.lines;
    server = await startServer({
      store: signer.location,
      port: 0,
      publicListen: { host: '127.0.0.1', port: 0 },
      logger: captured.logger,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
      kernelOptions: { policyDefaults: RAW_HASHES_ALLOWED },
    });
    const api = (path: string, payload: unknown) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { ...signer.auth(), 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const enrolled = await api('/v1/totp/enroll', { walletName: WALLET });
    assert.equal(enrolled.status, 200, await enrolled.text());
    const approval = await api('/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } });
    const approvalBody = (await approval.json()) as { approveUrl: string };
    assert.equal(approval.status, 201, JSON.stringify(approvalBody));
    approveUrl = approvalBody.approveUrl;
    const enrollment = await api('/v1/enrollments', { walletName: 'public-listener-enrol' });
    const enrollmentBody = (await enrollment.json()) as { enrollUrl: string };
    assert.equal(enrollment.status, 201, JSON.stringify(enrollmentBody));
    enrollUrl = enrollmentBody.enrollUrl;
    for (const link of [approveUrl, enrollUrl]) recordTestSecret('page capability', link.slice(link.lastIndexOf('/') + 1));
  });
  after(async () => {
    await server.close();
    await signer.close();
  });

  /** The same path on the public listener. */
  const onPages = (link: string) => `${server.pagesUrl}${new URL(link).pathname}`;
  /** The same path on the API listener. */
  const onApi = (link: string) => `${server.url}${new URL(link).pathname}`;

  it('the two listeners are apart, and without --public-url the links name the public listener’s port', () => {
    assert.ok(server.pagesUrl !== undefined && server.pagesUrl !== server.url, `${server.pagesUrl} vs ${server.url}`);
    const port = new URL(server.pagesUrl).port;
    assert.match(approveUrl, new RegExp(`^http://localhost:${port}/approve/[A-Za-z0-9_-]{43}$`));
    assert.match(enrollUrl, new RegExp(`^http://localhost:${port}/enroll/[A-Za-z0-9_-]{43}$`));
  });

  it('the public listener serves the approval and enrolment pages (GET and their form posts)', async () => {
    const approval = await request(onPages(approveUrl));
    assertPage(approval, 200, 'approval page');
    assert.match(approval.body, /<form/);
    assertPage(await request(onPages(enrollUrl)), 200, 'enrolment page');
    // a post without the form token is refused by the page itself (it reached the page's route)
    const post = await request(onPages(approveUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=reject&csrf=00',
    });
    assertPage(post, 403, 'form post without its token');
    assert.match(post.body, /Form refused/);
  });

  it('the public listener serves nothing else: the API, the operator routes, the compatibility API and the probes are 404 pages', async () => {
    const attempts: Array<{ method: string; path: string; headers?: Record<string, string>; body?: string }> = [
      { method: 'GET', path: '/v1/sys/status' },
      { method: 'POST', path: '/v1/sys/unseal', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ passphrase: 'x' }) },
      { method: 'GET', path: `/v1/keys?walletName=${encodeURIComponent(WALLET)}&keyIndex=0`, headers: signer.auth() },
      {
        method: 'POST',
        path: '/v1/sign/hash',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ walletName: WALLET, keyIndex: 0, hash: HASH }),
      },
      { method: 'POST', path: '/v1/approvals', headers: { ...signer.auth(), 'content-type': 'application/json' }, body: '{}' },
      { method: 'GET', path: '/v1/openapi.json' },
      { method: 'POST', path: '/sys/v1/session/auth', headers: { 'content-type': 'application/json' }, body: '{}' },
      { method: 'GET', path: `/sys/v1/plugins/${signer.signerId}` },
      { method: 'GET', path: '/healthz' },
      { method: 'GET', path: '/readyz' },
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/' },
    ];
    for (const { method, path, headers, body } of attempts) {
      const answer = await request(`${server.pagesUrl}${path}`, {
        method,
        ...(headers === undefined ? {} : { headers }),
        ...(body === undefined ? {} : { body }),
      });
      assertPage(answer, 404, `${method} ${path}`);
      assert.match(answer.body, /Page not found/, `${method} ${path}`);
    }
    // the same API request does work on the API listener (the 404s above are the listener's, not the request's)
    const onApiListener = await request(`${server.url}/v1/keys?walletName=${encodeURIComponent(WALLET)}&keyIndex=0`, { headers: signer.auth() });
    assert.equal(onApiListener.status, 200, onApiListener.body);
    assert.equal((await request(`${server.url}/healthz`)).status, 200);
  });

  it('the API listener serves no pages when they have a listener of their own', async () => {
    for (const link of [approveUrl, enrollUrl]) {
      for (const method of ['GET', 'POST']) {
        const answer = await request(onApi(link), {
          method,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: method === 'POST' ? 'decision=reject' : '',
        });
        assert.equal(answer.status, 404, `${method} ${link}: ${answer.body}`);
        assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'not_found');
      }
    }
    // and the page is still there, undecided, on its own listener
    assert.match((await request(onPages(approveUrl))).body, /<form/);
  });

  it('the public listener answers only a Host of this signer (DNS rebinding gets nothing)', async () => {
    const refused = await request(onPages(approveUrl), { headers: { host: 'evil.example' } });
    assertPage(refused, 403, 'foreign Host');
    assert.doesNotMatch(refused.body, /<form/);
    assertPage(await request(onPages(approveUrl), { headers: { host: `localhost:${new URL(server.pagesUrl ?? '').port}` } }), 200, 'Host localhost');
  });

  it('both listeners log request URLs without their capability', () => {
    const logged = lines.join('');
    for (const link of [approveUrl, enrollUrl]) {
      const capability = link.slice(link.lastIndexOf('/') + 1);
      assert.ok(!logged.includes(capability), 'no capability in the log');
    }
    // each request line as logged, with the listener it came in on (its Host: the listener's address)
    const requests = lines
      .map((line) => (JSON.parse(line) as { req?: { url?: string; host?: string } }).req)
      .filter((req) => req?.url !== undefined)
      .map((req) => `${req?.host} ${req?.url}`);
    const pagesHost = new URL(server.pagesUrl ?? '').host;
    const apiHost = new URL(server.url).host;
    for (const expected of [
      `${pagesHost} /approve/[redacted]`,
      `${pagesHost} /enroll/[redacted]`,
      `${pagesHost} /v1/keys`,
      `${apiHost} /approve/[redacted]`,
      `${apiHost} /v1/approvals`,
      `${apiHost} /v1/keys`,
    ])
      assert.ok(requests.includes(expected), `${expected} in ${JSON.stringify(requests)}`);
    const urls = requests.map((line) => line.slice(line.indexOf(' ') + 1));
    assert.ok(!urls.some((url) => url?.includes('?')), 'no query string');
  });
});

describe('--public-listen with --public-url', () => {
  it('the public URL’s host is accepted on the public listener and the links start with the URL; another Host is not', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    const server = await startServer({
      store: signer.location,
      port: 0,
      publicListen: { host: '127.0.0.1', port: 0 },
      publicUrl: 'https://pages.example.com',
      logger: false,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
    });
    try {
      const enrollment = await fetch(`${server.url}/v1/enrollments`, {
        method: 'POST',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ walletName: 'public-url-enrol' }),
      });
      const { enrollUrl } = (await enrollment.json()) as { enrollUrl: string };
      assert.match(enrollUrl, /^https:\/\/pages\.example\.com\/enroll\/[A-Za-z0-9_-]{43}$/);
      recordTestSecret('enrolment capability', enrollUrl.slice(enrollUrl.lastIndexOf('/') + 1));
      const path = new URL(enrollUrl).pathname;
      assertPage(await request(`${server.pagesUrl}${path}`, { headers: { host: 'pages.example.com' } }), 200, 'Host of the public URL');
      assertPage(await request(`${server.pagesUrl}${path}`, { headers: { host: 'pages.example.com:8443' } }), 403, 'the public host on another port');
      assertPage(await request(`${server.pagesUrl}${path}`, { headers: { host: 'other.example.com' } }), 403, 'another host');
      // passkeys: rpID the public URL's host, origin its origin
      assert.deepEqual(server.passkeys, { rpId: 'pages.example.com', origin: 'https://pages.example.com', rpName: 'Custos' });
      assert.deepEqual(server.kernel.passkeys, server.passkeys);
      assert.deepEqual(server.notices, []);
    } finally {
      await server.close();
      await signer.close();
    }
  });
});

describe('startServer: the passkey settings from the public URL', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
  });
  after(async () => {
    await signer.close();
  });

  async function start(options: { publicUrl?: string; port?: number; pageBrand?: string }): Promise<RunningServer> {
    return startServer({
      store: signer.location,
      port: options.port ?? 0,
      logger: false,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
      ...(options.publicUrl === undefined ? {} : { publicUrl: options.publicUrl }),
      ...(options.pageBrand === undefined ? {} : { pages: { brandName: options.pageBrand } }),
    });
  }

  it('a host name: passkeys on with the brand as rpName; an IP address: off, with the start-up line', async () => {
    const on = await start({ publicUrl: 'http://localhost:8420', pageBrand: 'Acme Wallet' });
    try {
      assert.deepEqual(on.kernel.passkeys, { rpId: 'localhost', origin: 'http://localhost:8420', rpName: 'Acme Wallet' });
      assert.deepEqual(on.notices, []);
    } finally {
      await on.close();
    }
    const off = await start({ publicUrl: 'http://127.0.0.1:8420' });
    try {
      assert.equal(off.kernel.passkeys, undefined);
      assert.equal(off.passkeys, undefined);
      assert.equal(off.notices.length, 1);
      assert.match(off.notices[0] ?? '', /^passkeys are off: the public URL http:\/\/127\.0\.0\.1:8420 is an IP address/);
    } finally {
      await off.close();
    }
    const plain = await start({ publicUrl: 'http://custos.internal:8420' });
    try {
      assert.equal(plain.kernel.passkeys?.rpId, 'custos.internal');
      assert.match(plain.notices[0] ?? '', /^passkeys need https/);
    } finally {
      await plain.close();
    }
  });

  it('port 0 without --public-url: passkeys off (their origin is not known before the port is bound)', async () => {
    const unknown = await start({});
    try {
      assert.equal(unknown.kernel.passkeys, undefined);
      assert.match(unknown.notices[0] ?? '', /^passkeys are off: .*port 0/);
    } finally {
      await unknown.close();
    }
  });
});

describe('startServer and custos serve: a public URL under which the stored passkeys would stop working', () => {
  let signer: TestSigner;
  before(async () => {
    // a passkey registered for real (enrolment page, software authenticator) under http://localhost:8420
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      kernelOptions: { passkeys: { rpId: 'localhost', origin: 'http://localhost:8420', rpName: 'Custos' } },
    });
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const created = await signer.kernel.createEnrollment(app, { walletName: 'passkey-owner', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', created.capability);
    const page = await signer.kernel.openEnrollmentPage(created.capability);
    const { optionsJSON } = page.shown as { optionsJSON: CreationOptionsJSON };
    const completed = await signer.kernel.completeEnrollment(created.capability, { proof: new SoftAuthenticator('http://localhost:8420').create(optionsJSON) });
    assert.equal(completed.state, 'completed');
    assert.deepEqual(await signer.store.listPasskeyRpIds(), ['localhost']);
  });
  after(async () => {
    await signer.close();
  });

  const start = (publicUrl: string | undefined) =>
    startServer({
      store: signer.location,
      port: 0,
      logger: false,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
      ...(publicUrl === undefined ? {} : { publicUrl }),
    });

  it('another host, an IP address, or an origin unknown before binding: the start is refused passkey_rp_id_changed; under the registered host it starts', async () => {
    const refusals: Array<[string | undefined, RegExp]> = [
      [
        'https://new.example.com',
        /^refusing to start: the store holds passkeys registered for localhost, but --public-url https:\/\/new\.example\.com has the host new\.example\.com: those passkeys would stop working/,
      ],
      [
        'http://127.0.0.1:8420',
        /^refusing to start: --public-url http:\/\/127\.0\.0\.1:8420 is an IP address, but the store holds passkeys registered for localhost/,
      ],
      [undefined, /^refusing to start: the pages listen on a port chosen at start \(port 0\).*localhost/],
    ];
    for (const [publicUrl, message] of refusals) {
      await assert.rejects(start(publicUrl), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'passkey_rp_id_changed', `${publicUrl}: ${error.message}`);
        assert.match(error.message, message);
        return true;
      });
    }
    // under the registered host (any port: the rpID has none) it starts, passkeys on
    const server = await start('http://localhost:9999');
    try {
      assert.deepEqual(server.kernel.passkeys, { rpId: 'localhost', origin: 'http://localhost:9999', rpName: 'Custos' });
      assert.deepEqual(server.notices, []);
    } finally {
      await server.close();
    }
  });

  it('custos serve: exit 1, one line naming both hosts', async () => {
    const storeArgs = 'dataDir' in signer.location ? ['--data-dir', signer.location.dataDir] : ['--store', signer.location.url];
    const result = await runCustos(['serve', ...storeArgs, '--port', '0', '--public-url', 'https://new.example.com', '--log-level', 'silent']);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^custos: passkey_rp_id_changed: refusing to start: the store holds passkeys registered for localhost, but --public-url https:\/\/new\.example\.com has the host new\.example\.com: those passkeys would stop working \(browsers bind a passkey to the host it was registered on\)[^\n]*\n$/,
    );
  });
});

describe('--public-listen: TLS, a sealed signer, a port in use', () => {
  const skipTls = !opensslAvailable() && process.env.CI === undefined ? 'openssl is not installed (CI has it)' : false;

  it('with --tls-cert the public listener serves HTTPS with the same certificate, and the default links are https', { skip: skipTls }, async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    const dir = mkdtempSync(join(testArtifactsDir(), 'tls-'));
    const { cert, key, fingerprint } = makeSelfSignedCertificate(dir, 'pages');
    // a port known before the start: the default public URL (and so the passkeys' origin) names it
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const pagesPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const server = await startServer({
      store: signer.location,
      port: 0,
      publicListen: { host: '127.0.0.1', port: pagesPort },
      tls: { certFile: cert, keyFile: key },
      logger: false,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
    });
    try {
      assert.match(server.url, /^https:\/\//);
      assert.equal(server.pagesUrl, `https://127.0.0.1:${pagesPort}`);
      const ca = [readFileSync(cert)];
      const get = (url: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; fingerprint: string; body: string }>((resolve, reject) => {
          const req = https.request(url, { ca, agent: false, headers }, (res) => {
            const peer = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
            let body = '';
            res.setEncoding('utf8').on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint: peer, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const port = new URL(server.pagesUrl ?? '').port;
      // the links name the public listener, over https, when there is no --public-url
      const enrollment = await new Promise<string>((resolve, reject) => {
        const req = https.request(
          `${server.url}/v1/enrollments`,
          { method: 'POST', ca, agent: false, headers: { ...signer.auth(), 'content-type': 'application/json' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ walletName: 'tls-enrol' }));
      });
      const { enrollUrl } = JSON.parse(enrollment) as { enrollUrl: string };
      assert.match(enrollUrl, new RegExp(`^https://localhost:${port}/enroll/[A-Za-z0-9_-]{43}$`), enrollment);
      recordTestSecret('enrolment capability', enrollUrl.slice(enrollUrl.lastIndexOf('/') + 1));
      const page = await get(`${server.pagesUrl}${new URL(enrollUrl).pathname}`);
      assert.equal(page.status, 200, page.body.slice(0, 200));
      assert.equal(page.fingerprint, fingerprint);
      assert.equal((await get(`${server.pagesUrl}/healthz`)).status, 404);
      // the passkeys' origin under the default public URL: https too, the public listener's port
      assert.deepEqual(server.kernel.passkeys, { rpId: 'localhost', origin: `https://localhost:${pagesPort}`, rpName: 'Custos' });
    } finally {
      await server.close();
      await signer.close();
    }
  });

  it('a sealed signer: the pages say so (503 page), the rest is still not found', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    const server = await startServer({ store: signer.location, port: 0, publicListen: { host: '127.0.0.1', port: 0 }, logger: false });
    try {
      assert.equal(server.kernel.sealed, true);
      const page = await request(`${server.pagesUrl}/approve/${'A'.repeat(43)}`);
      assertPage(page, 503, 'a page while sealed');
      assert.match(page.body, /The signer is sealed/);
      assertPage(await request(`${server.pagesUrl}/v1/sys/status`), 404, 'an API route while sealed');
      assert.equal((await request(`${server.url}/v1/sys/status`)).status, 200);
    } finally {
      await server.close();
      await signer.close();
    }
  });

  it('a public listener whose port is taken: the start fails and the API listener is closed again', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const apiProbe = http.createServer();
    await new Promise<void>((resolve) => apiProbe.listen(0, '127.0.0.1', resolve));
    const apiPort = (apiProbe.address() as AddressInfo).port;
    await new Promise((resolve) => apiProbe.close(resolve));
    try {
      await assert.rejects(
        startServer({
          store: signer.location,
          port: apiPort,
          publicListen: { host: '127.0.0.1', port: (taken.address() as AddressInfo).port },
          logger: false,
          passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
        }),
        /EADDRINUSE/,
      );
      // the API port is free again: nothing was left listening
      const again = http.createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(apiPort, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => again.close(resolve));
    } finally {
      taken.close();
      await signer.close();
    }
  });
});

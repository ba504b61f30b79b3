import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CustosError } from '@custos/kernel';
import { parsePublicUrl } from './checkHostAndOrigin.js';
import { createListener, type Listener } from './createListener.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { makeSelfSignedCertificate, opensslAvailable } from './testing/makeSelfSignedCertificate.js';
import { runCustos } from './testing/runCustos.js';
import { sendPartialRequest } from './testing/sendPartialRequest.js';

// The HTTP edge over real sockets on 127.0.0.1: the in-flight guard under aborted requests and
// stalled clients, /readyz's stuck-guard rule, the Host/Origin check of the operator routes, the
// metrics token, HTTPS with a reloadable certificate, and error codes readable in the logs.

const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const HASH = `0x${'34'.repeat(32)}`;

interface Answer {
  status: number;
  body: { error?: { code?: string }; [key: string]: unknown };
}

/** One request on a fresh connection, with any Host and Origin (fetch will not send a forged Host). */
function rawRequest(
  port: number,
  { method = 'GET', path, headers = {}, body }: { method?: string; path: string; headers?: Record<string, string>; body?: unknown },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Answer['body']) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The in-flight gauge of /metrics (present before this fix too, so that the test runs against the old code). */
async function inFlightGauge(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^custos_http_in_flight (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

function portOf(listener: Listener): number {
  return Number(new URL(listener.url).port);
}

describe('HTTP edge: the in-flight guard', () => {
  it(
    '2,000 aborted partial requests (headers + part of a body, then the connection destroyed) leave no slot taken: a sign and an unseal succeed after',
    { timeout: 180_000 },
    async () => {
      // one client sends all of them here: its share is the whole limit (the share is tested below)
      const signer = await createTestSigner({ startMs: T0, maxInFlight: 256, appOptions: { maxInFlightPerClient: 256 } });
      const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
      const port = portOf(listener);
      try {
        signer.kernel.seal();
        const started = Date.now();
        const batch = 100;
        for (let sent = 0; sent < 2_000; sent += batch) {
          // half of them to the unseal route (served sealed), half to signing (refused sealed at once)
          const sockets = await Promise.all(
            Array.from({ length: batch }, (_, i) =>
              sendPartialRequest(port, i % 2 === 0 ? '/v1/sys/unseal' : '/v1/sign/hash', { authorization: `Bearer ${signer.apiKey}` }),
            ),
          );
          // let the server admit the unseal requests (their bodies are awaited) before the clients vanish
          await waitFor(
            () => inFlightGauge(port),
            (n) => n >= Math.min(256, batch / 2),
            5_000,
          );
          for (const socket of sockets) socket.destroy();
        }
        console.log(`# 2,000 aborted partial requests in ${Date.now() - started} ms`);
        const unsealed = await rawRequest(port, { method: 'POST', path: '/v1/sys/unseal', body: { passphrase: TEST_PASSPHRASE } });
        assert.equal(unsealed.status, 200, JSON.stringify(unsealed.body));
        assert.equal(unsealed.body.sealed, false);
        const signed = await rawRequest(port, {
          method: 'POST',
          path: '/v1/sign/hash',
          headers: { authorization: `Bearer ${signer.apiKey}` },
          body: { walletName: 'after-the-flood', keyIndex: 0, hash: HASH },
        });
        assert.equal(signed.status, 200, JSON.stringify(signed.body));
        const ready = await waitFor(
          () => rawRequest(port, { path: '/readyz' }),
          (r) => r.body.inFlight === 0,
          5_000,
        );
        assert.equal(ready.status, 200);
        assert.deepEqual(ready.body, { ready: true, sealed: false, store: 'ok', audit: 'ok', inFlight: 0, maxInFlight: 256, guard: 'ok' });
      } finally {
        await listener.close(1_000);
        await signer.close();
      }
    },
  );

  it(
    'one client holding requests open (bodies trickled) takes only its share of the slots: its extra requests are refused overloaded, another client signs',
    { timeout: 60_000 },
    async () => {
      // 16 slots, a share of 16 / 2 = 8 per client; every real socket here comes from 127.0.0.1
      const signer = await createTestSigner({ startMs: T0, maxInFlight: 16 });
      const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
      const port = portOf(listener);
      const auth = { authorization: `Bearer ${signer.apiKey}` };
      const readyz = () => rawRequest(port, { path: '/readyz' });
      const held: net.Socket[] = [];
      try {
        // the attack: as many partial requests as there are slots, each body trickled and never finished
        const refusals: string[] = [];
        for (let i = 0; i < 16; i += 1) {
          const socket = await sendPartialRequest(port, '/v1/sign/hash', auth);
          let text = '';
          socket.setEncoding('utf8').on('data', (chunk: string) => {
            const before = text;
            text += chunk;
            if (text.includes('}') && !before.includes('}')) refusals.push(text); // a whole (small) answer came
          });
          held.push(socket);
        }
        await waitFor(
          async () => refusals.length,
          (n) => n >= 8,
          10_000,
        );
        assert.equal(refusals.length, 8, 'the requests over the share are answered at once');
        for (const answer of refusals) assert.match(answer, /^HTTP\/1\.1 503 [\s\S]*retry-after: 1\r\n[\s\S]*"code":"overloaded"/i);
        assert.equal((await readyz()).body.inFlight, 8);

        // the same client's next request is refused before anything else
        const extra = await rawRequest(port, { method: 'POST', path: '/v1/sign/hash', headers: auth, body: { walletName: 'extra', keyIndex: 0, hash: HASH } });
        assert.equal(extra.status, 503);
        assert.equal(extra.body.error?.code, 'overloaded');

        // another client (another address) still signs, and so does one in another IPv6 /64
        for (const remoteAddress of ['198.51.100.7', '2001:db8:1:2::1']) {
          const other = await signer.app.inject({
            method: 'POST',
            url: '/v1/sign/hash',
            remoteAddress,
            headers: auth,
            payload: { walletName: 'other-client', keyIndex: 0, hash: HASH },
          });
          assert.equal(other.statusCode, 200, `${remoteAddress}: ${other.body}`);
        }

        // the held connections go away: the count comes back to 0 and the client has its share again
        for (const socket of held.splice(0)) socket.destroy();
        assert.equal((await waitFor(readyz, (r) => r.body.inFlight === 0, 5_000)).body.inFlight, 0);
        const again = await rawRequest(port, { method: 'POST', path: '/v1/sign/hash', headers: auth, body: { walletName: 'again', keyIndex: 0, hash: HASH } });
        assert.equal(again.status, 200, JSON.stringify(again.body));
      } finally {
        for (const socket of held) socket.destroy();
        await listener.close(1_000);
        await signer.close();
      }
    },
  );

  it('a client that stalls mid-headers or mid-body is cut off by the header and request timeouts, and its slot comes back', { timeout: 60_000 }, async () => {
    const signer = await createTestSigner({ startMs: T0 });
    const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0, timeouts: { headersMs: 300, requestMs: 600 } });
    const port = portOf(listener);
    try {
      const closed = (socket: net.Socket) =>
        new Promise<string>((resolve) => {
          let text = '';
          socket.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
          });
          socket.once('close', () => resolve(text));
        });
      // mid-body: the request was admitted (it holds a slot) and never completes
      const body = await sendPartialRequest(port, '/v1/sign/hash', { authorization: `Bearer ${signer.apiKey}` });
      const bodyClosed = closed(body);
      assert.equal(
        (
          await waitFor(
            () => rawRequest(port, { path: '/readyz' }),
            (r) => r.body.inFlight === 1,
            5_000,
          )
        ).body.inFlight,
        1,
      );
      // mid-headers: no blank line ever comes
      const headers = net.connect({ host: '127.0.0.1', port });
      headers.on('error', () => undefined);
      headers.write('GET /v1/sys/status HTTP/1.1\r\nhost: 127.0.0.1\r\n');
      const headersClosed = closed(headers);
      const started = Date.now();
      // Node answers 408 where it still can, then closes; within the timeouts plus its 150 ms check period (margin: 15 s)
      const [bodyAnswer, headersAnswer] = await Promise.race([
        Promise.all([bodyClosed, headersClosed]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a stalled connection was not cut off within 15 s')), 15_000)),
      ]);
      console.log(`# stalled connections cut off after ${Date.now() - started} ms`);
      assert.match(bodyAnswer, /^HTTP\/1\.1 408 /);
      assert.match(headersAnswer, /^HTTP\/1\.1 408 /);
      const ready = await waitFor(
        () => rawRequest(port, { path: '/readyz' }),
        (r) => r.body.inFlight === 0,
        5_000,
      );
      assert.equal(ready.body.inFlight, 0);
    } finally {
      await listener.close(1_000);
      await signer.close();
    }
  });

  it(
    '/readyz stays 200 at the limit while requests complete, and answers 503 only for a guard stuck at its limit for the whole window',
    { timeout: 60_000 },
    async () => {
      const guardClock = { now: T0 };
      const signer = await createTestSigner({
        startMs: T0,
        maxInFlight: 2,
        appOptions: { maxInFlightPerClient: 2, stuckAfterMs: 30_000, now: () => guardClock.now },
      });
      const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
      const port = portOf(listener);
      const readyz = () => rawRequest(port, { path: '/readyz' });
      const auth = { authorization: `Bearer ${signer.apiKey}` };
      const held: net.Socket[] = [];
      const hold = async (expected: number) => {
        held.push(await sendPartialRequest(port, '/v1/sign/hash', auth));
        assert.equal((await waitFor(readyz, (r) => r.body.inFlight === expected, 5_000)).body.inFlight, expected);
      };
      try {
        await hold(1);
        await hold(2);
        // at the limit: a third request is refused, and the probe still says ready
        const refused = await rawRequest(port, {
          method: 'POST',
          path: '/v1/sign/hash',
          headers: auth,
          body: { walletName: 'third', keyIndex: 0, hash: HASH },
        });
        assert.equal(refused.status, 503);
        assert.equal(refused.body.error?.code, 'overloaded');
        guardClock.now += 29_000;
        assert.deepEqual(await readyz(), {
          status: 200,
          body: { ready: true, sealed: false, store: 'ok', audit: 'ok', inFlight: 2, maxInFlight: 2, guard: 'ok' },
        });

        // ordinary load at the limit: one request completes and another takes its slot
        const first = held.shift();
        assert.ok(first !== undefined);
        const answer = new Promise<string>((resolve) => {
          let text = '';
          first.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
            if (text.includes('\r\n\r\n')) resolve(text);
          });
        });
        const rest = `"keyIndex":0,"hash":"${HASH}"}`;
        first.write(rest.padEnd(1000 - '{"walletName":"partial",'.length, ' '));
        assert.match(await answer, /^HTTP\/1\.1 200 /);
        await waitFor(readyz, (r) => r.body.inFlight === 1, 5_000);
        await hold(2);
        guardClock.now += 29_000; // 58 s at the limit, but a request completed 29 s ago
        assert.deepEqual(await readyz(), {
          status: 200,
          body: { ready: true, sealed: false, store: 'ok', audit: 'ok', inFlight: 2, maxInFlight: 2, guard: 'ok' },
        });

        // stuck: 30 s at the limit with nothing completing
        guardClock.now += 1_000;
        assert.deepEqual(await readyz(), {
          status: 503,
          body: { ready: false, sealed: false, store: 'ok', audit: 'ok', inFlight: 2, maxInFlight: 2, guard: 'stuck' },
        });

        // the held connections go away: the slots come back and the probe recovers
        for (const socket of held.splice(0)) socket.destroy();
        const recovered = await waitFor(readyz, (r) => r.body.inFlight === 0, 5_000);
        assert.deepEqual(recovered, { status: 200, body: { ready: true, sealed: false, store: 'ok', audit: 'ok', inFlight: 0, maxInFlight: 2, guard: 'ok' } });
      } finally {
        for (const socket of held) socket.destroy();
        await listener.close(1_000);
        await signer.close();
      }
    },
  );
});

describe('HTTP edge: Host and Origin on the operator routes', () => {
  let signer: TestSigner;
  let listener: Listener;
  let port: number;
  before(async () => {
    signer = await createTestSigner({ startMs: T0 });
    listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
    port = portOf(listener);
  });
  after(async () => {
    await listener.close(1_000);
    await signer.close();
  });

  it('a forged Host (DNS rebinding) is refused forbidden_host on status, unseal and reset; the right passphrase does not unseal through it', async () => {
    signer.kernel.seal();
    try {
      for (const host of [
        `rebind.attacker.example:${port}`,
        'rebind.attacker.example',
        `127.0.0.1:${port + 1}`,
        `127.0.0.2:${port}`,
        '127.0.0.1:',
        'a b',
        'evil.example:99999',
      ]) {
        const status = await rawRequest(port, { path: '/v1/sys/status', headers: { host } });
        assert.equal(status.status, 403, `Host ${JSON.stringify(host)}`);
        assert.equal(status.body.error?.code, 'forbidden_host');
      }
      const host = { host: `rebind.attacker.example:${port}` };
      const unseal = await rawRequest(port, { method: 'POST', path: '/v1/sys/unseal', headers: host, body: { passphrase: TEST_PASSPHRASE } });
      assert.equal(unseal.status, 403);
      assert.equal(unseal.body.error?.code, 'forbidden_host');
      const reset = await rawRequest(port, { method: 'POST', path: '/v1/sys/unseal/reset', headers: host });
      assert.equal(reset.body.error?.code, 'forbidden_host');
      assert.equal(signer.kernel.sealed, true, 'nothing was tried');
      // the probes are not operator routes: a load balancer may send any Host
      assert.equal((await rawRequest(port, { path: '/healthz', headers: host })).status, 200);
      // the listener's own address, and localhost on any port (an SSH tunnel), are accepted
      assert.equal((await rawRequest(port, { path: '/v1/sys/status', headers: { host: `localhost:${port + 7}` } })).status, 200);
      assert.equal((await rawRequest(port, { path: '/v1/sys/status', headers: { host: 'LOCALHOST' } })).status, 200);
      const right = await rawRequest(port, {
        method: 'POST',
        path: '/v1/sys/unseal',
        headers: { host: `127.0.0.1:${port}` },
        body: { passphrase: TEST_PASSPHRASE },
      });
      assert.equal(right.status, 200);
    } finally {
      if (signer.kernel.sealed) await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
  });

  it('a percent-encoded operator path (/v1/%73ys/status, which the router decodes) is checked as the route it reaches', async () => {
    const forged = { host: `rebind.attacker.example:${port}` };
    for (const path of ['/v1/%73ys/status', '/v1/sy%73/status', '/%761/sys/status']) {
      const unsealed = await rawRequest(port, { path, headers: forged });
      assert.equal(unsealed.status, 403, `${path}: ${JSON.stringify(unsealed.body)}`);
      assert.equal(unsealed.body.error?.code, 'forbidden_host');
      const origin = await rawRequest(port, { path, headers: { origin: 'https://evil.example' } });
      assert.equal(origin.body.error?.code, 'forbidden_origin');
    }
    const unseal = await rawRequest(port, { method: 'POST', path: '/v1/%73ys/unseal', headers: forged, body: { passphrase: TEST_PASSPHRASE } });
    assert.equal(unseal.body.error?.code, 'forbidden_host');
    // from a Host of this signer the route still answers
    assert.equal((await rawRequest(port, { path: '/v1/%73ys/status', headers: { host: `127.0.0.1:${port}` } })).status, 200);
    signer.kernel.seal();
    try {
      const sealed = await rawRequest(port, { method: 'POST', path: '/v1/%73ys/unseal', headers: forged, body: { passphrase: TEST_PASSPHRASE } });
      assert.equal(sealed.body.error?.code, 'forbidden_host');
      assert.equal(signer.kernel.sealed, true);
    } finally {
      if (signer.kernel.sealed) await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
  });

  it('a cross-origin Origin is refused forbidden_origin (without --public-url every Origin is)', async () => {
    signer.kernel.seal();
    try {
      for (const origin of ['https://evil.example', `http://127.0.0.1:${port}`, 'null']) {
        const unseal = await rawRequest(port, { method: 'POST', path: '/v1/sys/unseal', headers: { origin }, body: { passphrase: TEST_PASSPHRASE } });
        assert.equal(unseal.status, 403, `Origin ${origin}`);
        assert.equal(unseal.body.error?.code, 'forbidden_origin');
      }
      assert.equal(signer.kernel.sealed, true);
    } finally {
      await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
  });

  it('with a public URL its host and origin are accepted, and any other origin refused', async () => {
    const guarded = await createTestSigner({ startMs: T0, appOptions: { publicUrl: 'https://custos.example.com/' } });
    const own = await createListener(guarded.app, { host: '127.0.0.1', port: 0 });
    const p = portOf(own);
    try {
      const ask = (headers: Record<string, string>) => rawRequest(p, { path: '/v1/sys/status', headers });
      assert.equal((await ask({ host: 'custos.example.com', origin: 'https://custos.example.com' })).status, 200);
      assert.equal((await ask({ host: 'custos.example.com:443' })).status, 200);
      assert.equal((await ask({ host: `127.0.0.1:${p}` })).status, 200);
      assert.equal((await ask({ host: 'custos.example.com:8443' })).body.error?.code, 'forbidden_host');
      assert.equal((await ask({ host: 'other.example.com' })).body.error?.code, 'forbidden_host');
      assert.equal((await ask({ host: 'custos.example.com', origin: 'http://custos.example.com' })).body.error?.code, 'forbidden_origin');
      assert.equal((await ask({ host: 'custos.example.com', origin: 'https://evil.example' })).body.error?.code, 'forbidden_origin');
    } finally {
      await own.close(1_000);
      await guarded.close();
    }
  });

  it('a public URL with a path, a query or another scheme is refused invalid_input naming --public-url', async () => {
    for (const publicUrl of [
      'https://custos.example.com/admin',
      'ftp://custos.example.com',
      'custos.example.com',
      'https://custos.example.com/?a=1',
      'https://u:p@custos.example.com',
    ]) {
      // buildApp (and so startServer) parses it first
      assert.throws(
        () => parsePublicUrl(publicUrl),
        (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'public-url',
        publicUrl,
      );
    }
  });

  it('custos unseal --url http://127.0.0.1:PORT still unseals (Host 127.0.0.1:PORT, no Origin)', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-edge-'));
    signer.kernel.seal();
    try {
      const file = join(dir, 'passphrase');
      writeFileSync(file, TEST_PASSPHRASE, { mode: 0o600 });
      const result = await runCustos(['unseal', '--url', `http://127.0.0.1:${port}`, '--passphrase-file', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'Unsealed\n');
      assert.equal(signer.kernel.sealed, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (signer.kernel.sealed) await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
  });
});

describe('HTTP edge: the metrics token', () => {
  it('with a token, /metrics answers 401 unauthorized without it or with another, and the metrics with it', async () => {
    const token = 'metrics-token-for-the-test-0123456789';
    const signer = await createTestSigner({ startMs: T0, appOptions: { metricsToken: token } });
    try {
      for (const authorization of [undefined, 'Bearer wrong-token', `Bearer ${token}x`, `Basic ${token}`, token]) {
        const res = await signer.app.inject({ url: '/metrics', headers: authorization === undefined ? {} : { authorization } });
        assert.equal(res.statusCode, 401, String(authorization));
        assert.equal(res.json().error.code, 'unauthorized');
      }
      const ok = await signer.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /^custos_sealed 0$/m);
      assert.equal((await signer.app.inject('/healthz')).statusCode, 200, 'the other probes need no token');
    } finally {
      await signer.close();
    }
  });
});

describe('HTTP edge: logs', () => {
  it('error codes stay readable under err.code while second-factor codes are redacted', () => {
    const { logger, lines } = captureLogLines();
    logger.error({ err: new CustosError('code_invalid', 'the second-factor code is wrong') }, 'request failed');
    logger.error({ err: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) }, 'upstream');
    logger.error({ err: Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }) }, 'timeout');
    logger.info({ code: '314159', request: { code: '271828' }, err: { code: '161803' } }, 'codes');
    const out = lines.map((line) => JSON.parse(line) as { err?: { code?: string }; code?: string; request?: { code?: string } });
    assert.equal(out[0]?.err?.code, 'code_invalid');
    assert.equal(out[1]?.err?.code, 'ECONNRESET');
    assert.equal(out[2]?.err?.code, 'ERR_HTTP_REQUEST_TIMEOUT');
    assert.deepEqual([out[3]?.code, out[3]?.request?.code, out[3]?.err?.code], ['[redacted]', '[redacted]', '[redacted]']);
    for (const code of ['314159', '271828', '161803']) assert.ok(!lines.join('').includes(code), 'a one-time code leaked into the log');
  });
});

describe('HTTP edge: HTTPS', () => {
  const skip = !opensslAvailable() && process.env.CI === undefined ? 'openssl is not installed (CI has it)' : false;
  const makeCertificate = makeSelfSignedCertificate;

  /** The certificate a new connection is shown (fingerprint), with the status of GET /healthz. */
  function peerCertificate(port: number, ca: Buffer[]): Promise<{ fingerprint: string; status: number }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/healthz', ca, agent: false }, (res) => {
        const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on('end', () => resolve({ fingerprint, status: res.statusCode ?? 0 }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it(
    'serves HTTPS; after the files are replaced and reloaded a new connection sees the new certificate; a bad pair keeps the old one',
    { skip, timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'custos-tls-'));
      const signer = await createTestSigner({ startMs: T0 });
      let listener: Listener | undefined;
      try {
        const a = makeCertificate(dir, 'first');
        const b = makeCertificate(dir, 'second');
        const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
        copyFileSync(a.cert, live.cert);
        copyFileSync(a.key, live.key);
        listener = await createListener(signer.app, { host: '127.0.0.1', port: 0, tls: { certFile: live.cert, keyFile: live.key } });
        assert.match(listener.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const port = portOf(listener);
        const ca = [a.cert, b.cert].map((f) => readFileSync(f));
        assert.deepEqual(await peerCertificate(port, ca), { fingerprint: a.fingerprint, status: 200 });

        copyFileSync(b.cert, live.cert);
        copyFileSync(b.key, live.key);
        listener.reloadTls();
        assert.deepEqual(await peerCertificate(port, ca), { fingerprint: b.fingerprint, status: 200 });

        // a certificate with another's key: refused, the current pair stays
        copyFileSync(a.cert, live.cert);
        assert.throws(
          () => listener?.reloadTls(),
          (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && !String(error.message).includes('PRIVATE KEY'),
        );
        assert.deepEqual(await peerCertificate(port, ca), { fingerprint: b.fingerprint, status: 200 });
      } finally {
        await listener?.close(1_000);
        await signer.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

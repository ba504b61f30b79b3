import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { createListener } from './createListener.js';
import { EARLY_REFUSAL_MESSAGE } from './earlyRefusal.js';
import { monitorLoopLag } from './loopLag.js';
import { createTestSigner } from './testing/createTestSigner.js';
import { sendPartialRequest } from './testing/sendPartialRequest.js';

// Issue 14, point 5: under overload a write is refused by the listener before Fastify sees it (a
// body serialised once), and the loop-lag monitor tells a backlog from one long turn.

const HASH = `0x${'34'.repeat(32)}`;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error?: { code?: string; message?: string; docs?: string } } & Record<string, unknown>;
}

/** Sends requests one after the other on ONE keep-alive connection and parses each answer (Content-Length framed). */
async function onOneConnection(port: number, requests: Array<{ method: string; path: string; headers?: Record<string, string>; body?: string }>) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffered = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (const w of waiters.splice(0)) w();
  });
  const readAnswer = async (): Promise<RawAnswer> => {
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buffered.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(head[0]?.split(' ')[1]);
        const headers = Object.fromEntries(
          head.slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
        );
        const length = Number(headers['content-length'] ?? 0);
        if (buffered.length >= end + 4 + length) {
          const body = buffered.subarray(end + 4, end + 4 + length).toString('utf8');
          buffered = buffered.subarray(end + 4 + length);
          return { status, headers, body: body === '' ? {} : JSON.parse(body) };
        }
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no whole answer within 10 s')), 10_000);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const answers: RawAnswer[] = [];
  try {
    for (const { method, path, headers = {}, body } of requests) {
      const head = {
        host: `127.0.0.1:${port}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
        ...headers,
      };
      socket.write(
        `${method} ${path} HTTP/1.1\r\n${Object.entries(head)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n${body ?? ''}`,
      );
      answers.push(await readAnswer());
    }
  } finally {
    socket.destroy();
  }
  return answers;
}

describe('refusal on arrival under overload (earlyRefusal.ts)', () => {
  it(
    'at the in-flight limit a write is refused before the router: 503 overloaded, Retry-After, the request id echoed, the connection kept, no 100 Continue; reads too; operator routes, long polls and probes go on to the app',
    { timeout: 60_000 },
    async () => {
      const signer = await createTestSigner({ maxInFlight: 2, appOptions: { maxInFlightPerClient: 2 } });
      const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
      const port = Number(new URL(listener.url).port);
      const auth = signer.auth();
      const held: net.Socket[] = [];
      try {
        // below the limit nothing is refused
        const [before] = await onOneConnection(port, [
          { method: 'POST', path: '/v1/sign/hash', headers: auth, body: JSON.stringify({ walletName: 'early-before', keyIndex: 0, hash: HASH }) },
        ]);
        assert.equal(before?.status, 200, JSON.stringify(before?.body));

        held.push(await sendPartialRequest(port, '/v1/sign/hash', auth), await sendPartialRequest(port, '/v1/sign/hash', auth));
        for (;;) {
          const [ready] = await onOneConnection(port, [{ method: 'GET', path: '/readyz' }]);
          if (ready?.body.inFlight === 2) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }

        const sign = JSON.stringify({ walletName: 'early-refused', keyIndex: 0, hash: HASH });
        const answers = await onOneConnection(port, [
          { method: 'POST', path: '/v1/sign/hash', headers: { ...auth, 'x-request-id': 'load-1' }, body: sign },
          // the same connection again, after a refusal whose body the server dropped unread
          { method: 'POST', path: '/v1/sign/hash', headers: auth, body: sign },
          // a read is refused on arrival too
          { method: 'GET', path: '/v1/wallets/list', headers: auth },
          // not refused on arrival: an operator route, a long poll, a probe — the app's own guards answer them
          { method: 'POST', path: '/v1/sys/seal', headers: auth },
          { method: 'GET', path: `/v1/approvals/${'0'.repeat(32)}?waitSeconds=1`, headers: auth },
          { method: 'GET', path: '/readyz' },
        ]);
        const [first, second, read, operator, longPoll, probe] = answers;
        for (const refused of [first, second, read]) {
          assert.equal(refused?.status, 503);
          assert.equal(refused?.headers['retry-after'], '1');
          assert.match(refused?.headers['content-type'] ?? '', /^application\/json/);
          assert.deepEqual(refused?.body, {
            error: { code: 'overloaded', message: EARLY_REFUSAL_MESSAGE, details: { retryAfterSeconds: 1 }, docs: '/docs/errors#overloaded' },
          });
        }
        assert.equal(first?.headers['x-request-id'], 'load-1', 'the client id is echoed');
        assert.match(second?.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, 'an id is made when none is given');
        // the app's guard refused the seal (its own message: maxInFlight binds operators too), the
        // long poll went to its own pool and was answered (no such approval), the probe was served
        assert.equal(operator?.status, 503);
        assert.equal(operator?.body.error?.code, 'overloaded');
        assert.notEqual(operator?.body.error?.message, EARLY_REFUSAL_MESSAGE);
        assert.equal(signer.kernel.sealed, false, 'the seal was refused, not served');
        assert.notEqual(longPoll?.status, 503, JSON.stringify(longPoll?.body));
        assert.equal(probe?.status, 200);

        // Expect: 100-continue is refused before the client is told to send its body
        const expecting = await new Promise<string>((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port }, () => {
            socket.write(
              `POST /v1/sign/hash HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: ${auth.authorization}\r\ncontent-type: application/json\r\ncontent-length: ${sign.length}\r\nexpect: 100-continue\r\n\r\n`,
            );
          });
          let text = '';
          socket.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
            if (text.includes('}}')) {
              socket.destroy();
              resolve(text);
            }
          });
          socket.once('error', reject);
          setTimeout(() => reject(new Error(`no answer to Expect: 100-continue: ${text}`)), 10_000).unref();
        });
        assert.match(expecting, /^HTTP\/1\.1 503 /, 'the first line is the refusal, no 100 Continue before it');
        assert.ok(!expecting.includes('100 Continue'));
        assert.match(expecting, /"code":"overloaded"/);

        const metrics = signer.app.inject({ method: 'GET', url: '/metrics' });
        const text = (await metrics).body;
        assert.match(text, /^custos_http_requests_total\{route="refused on arrival",method="any",status="503",outcome="overloaded"\} 4$/m);
        assert.match(
          readFileSync(signer.logFile, 'utf8'),
          /"errorCode":"overloaded","refused":1,"inFlight":2,"busy":0,"limit":2,"msg":"requests refused on arrival: overloaded"/,
        );

        // the slots given back, writes are served again
        for (const socket of held.splice(0)) socket.destroy();
        for (let attempt = 0; ; attempt += 1) {
          const [after] = await onOneConnection(port, [
            { method: 'POST', path: '/v1/sign/hash', headers: auth, body: JSON.stringify({ walletName: 'early-after', keyIndex: 0, hash: HASH }) },
          ]);
          if (after?.status === 200) break;
          assert.ok(attempt < 100, `still refused after the slots were given back: ${JSON.stringify(after?.body)}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        for (const socket of held) socket.destroy();
        await listener.close(1_000);
        await signer.close();
      }
    },
  );

  for (const { trustProxy, early } of [
    { trustProxy: [] as string[], early: true },
    { trustProxy: ['10.9.9.9'], early: false },
  ])
    it(
      `under an address allowlist ${early ? 'a named socket address is refused on arrival' : 'behind a trusted proxy nothing is refused on arrival (the app resolves the client first)'}`,
      { timeout: 60_000 },
      async () => {
        const signer = await createTestSigner({ maxInFlight: 1, appOptions: { maxInFlightPerClient: 1, allowFrom: ['127.0.0.1/32'], trustProxy } });
        const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0 });
        const port = Number(new URL(listener.url).port);
        const held = await sendPartialRequest(port, '/v1/sign/hash', signer.auth());
        try {
          for (;;) {
            const [ready] = await onOneConnection(port, [{ method: 'GET', path: '/readyz' }]);
            if (ready?.body.inFlight === 1) break;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          const [refused] = await onOneConnection(port, [
            { method: 'POST', path: '/v1/sign/hash', headers: signer.auth(), body: JSON.stringify({ walletName: 'w', keyIndex: 0, hash: HASH }) },
          ]);
          assert.equal(refused?.status, 503);
          assert.equal(refused?.body.error?.code, 'overloaded');
          assert.equal(refused?.body.error?.message === EARLY_REFUSAL_MESSAGE, early);
        } finally {
          held.destroy();
          await listener.close(1_000);
          await signer.close();
        }
      },
    );
});

describe('loop lag (loopLag.ts)', () => {
  const block = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('one long turn is a burst, not a backlog: the lag stays below it; a loop late at every firing reads late', async () => {
    const lag = monitorLoopLag({ intervalMs: 20, window: 5 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 150)); // five firings on time
      block(300);
      await turn();
      assert.ok(lag.ms < 300, `one 300 ms turn read as a lag of ${lag.ms.toFixed(0)} ms`);
      // a loop busy 60 ms at every turn for 400 ms: each firing comes at least ~40 ms late
      const until = performance.now() + 400;
      while (performance.now() < until) {
        block(60);
        await turn();
      }
      assert.ok(lag.ms >= 30, `a loop late at every firing read as a lag of ${lag.ms.toFixed(0)} ms`);
      // back on time: five firings later the lag is gone
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(lag.ms < 30, `a loop back on time still read as a lag of ${lag.ms.toFixed(0)} ms`);
    } finally {
      lag.stop();
    }
  });
});

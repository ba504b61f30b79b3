import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { lstatSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { initializeSigner, Kernel } from '@custos/kernel';
import { mnemonicToSeedSync } from '@scure/bip39';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { type AdminSocket, listenAdminSocket } from './adminSocket.js';
import { buildApp } from './buildApp.js';
import { type OpenedStore, openStore, type StoreLocation } from './openStore.js';
import { dropTestSchema, freshTestStoreLocation, runSql, TEST_MNEMONIC, TEST_PASSPHRASE } from './testing/createTestSigner.js';

// The unseal back-off is per client: the address (as resolved with --trust-proxy; IPv6 per /64) or
// the admin socket. Each test reproduces the attack on the old, per-process back-off: an attacker
// sending a wrong passphrase as each back-off expires kept every operator at 429.

interface Signer {
  store: OpenedStore;
  kernel: Kernel;
  app: FastifyInstance;
  clock: { now: number };
  socketDir: string;
  close(): Promise<void>;
}

const opened: Signer[] = [];
after(async () => {
  for (const s of opened.splice(0)) await s.close();
});

/** A real sealed passphrase signer on the pass's store, its clock in the test's hands. */
async function newSigner({ trustProxy = [] as string[], maxInFlight = 1024 } = {}): Promise<Signer> {
  const location: StoreLocation = freshTestStoreLocation();
  const store = await openStore(location);
  await initializeSigner({
    store,
    passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
    master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) },
    derivation: 'custos-v1',
    scrypt: { N: 2 ** 10, r: 8, p: 1 },
  });
  const clock = { now: 1_700_000_000_000 };
  const kernel = await Kernel.open({ store, now: () => clock.now });
  const app = await buildApp({ kernel, trustProxy, maxInFlight });
  const socketDir = mkdtempSync(join(tmpdir(), 'custos-admin-'));
  const signer: Signer = {
    store,
    kernel,
    app,
    clock,
    socketDir,
    async close() {
      await app.close();
      kernel.seal();
      await store.close();
      rmSync(socketDir, { recursive: true, force: true });
      if ('url' in location) await dropTestSchema(location.url);
    },
  };
  opened.push(signer);
  return signer;
}

function unseal(signer: Signer, passphrase: string, remoteAddress: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method: 'POST', url: '/v1/sys/unseal', payload: { passphrase }, remoteAddress, headers });
}

function code(res: LightMyRequestResponse): string {
  return res.statusCode === 200 ? 'ok' : (res.json() as { error: { code: string } }).error.code;
}

/** A request over a Unix socket: status and parsed JSON body. */
function overSocket(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const ATTACKER = '203.0.113.9';
const OPERATOR = '192.0.2.1';

describe('per-client unseal back-off', () => {
  test('an attacker failing as each back-off expires never delays an operator at another address', async () => {
    const signer = await newSigner();
    let backOffMs = 1_000;
    for (let round = 0; round < 12; round++) {
      assert.equal(code(await unseal(signer, `wrong ${round}`, ATTACKER)), 'unseal_failed', `round ${round}`);
      // the attacker waits…
      assert.equal(code(await unseal(signer, TEST_PASSPHRASE, ATTACKER)), 'unseal_throttled');
      // …the operator does not: unsealed at once, in every round (the old back-off answered 429)
      assert.equal(code(await unseal(signer, TEST_PASSPHRASE, OPERATOR)), 'ok', `round ${round}`);
      signer.kernel.seal();
      signer.clock.now += backOffMs;
      backOffMs = Math.min(300_000, backOffMs * 2);
    }
    // the attacker's own back-off grew all along: 5 minutes now
    assert.equal(code(await unseal(signer, 'wrong again', ATTACKER)), 'unseal_failed');
    const res = await unseal(signer, 'wrong', ATTACKER);
    assert.equal(res.headers['retry-after'], '300');
    const denied = await runSql(signer.store, "SELECT count(*) AS n FROM audit_log WHERE action = 'sys.unseal' AND decision = 'denied'");
    assert.equal(Number(denied[0]?.n), 13);
  });

  test('IPv6: one /64 is one client; another /64 is not delayed; an IPv4-mapped address is its IPv4 client', async () => {
    const signer = await newSigner();
    assert.equal(code(await unseal(signer, 'wrong', '2001:db8:1:2::1')), 'unseal_failed');
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, '2001:db8:1:2:ffff:ffff:ffff:fffe')), 'unseal_throttled');
    assert.equal(code(await unseal(signer, 'wrong', ATTACKER)), 'unseal_failed');
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, `::ffff:${ATTACKER}`)), 'unseal_throttled');
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, '2001:db8:1:3::1')), 'ok');
  });

  test('without --trust-proxy X-Forwarded-For is ignored: an attacker cannot pick the key its failures are kept under', async () => {
    const signer = await newSigner();
    // the attacker names the operator's address in the header: its failure is its own socket's
    assert.equal(code(await unseal(signer, 'wrong', ATTACKER, { 'x-forwarded-for': OPERATOR })), 'unseal_failed');
    // and a fresh header each time does not give it a fresh back-off
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, ATTACKER, { 'x-forwarded-for': '198.51.100.77' })), 'unseal_throttled');
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, OPERATOR)), 'ok');
  });

  test('with --trust-proxy the address the trusted proxy forwarded is the client; an untrusted socket is still its own', async () => {
    const PROXY = '10.0.0.1';
    const signer = await newSigner({ trustProxy: ['10.0.0.0/24'] });
    assert.equal(code(await unseal(signer, 'wrong', PROXY, { 'x-forwarded-for': ATTACKER })), 'unseal_failed');
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, PROXY, { 'x-forwarded-for': ATTACKER })), 'unseal_throttled');
    // a spoofed left-most entry does not help: the right-most untrusted address is the client
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, PROXY, { 'x-forwarded-for': `${OPERATOR}, ${ATTACKER}` })), 'unseal_throttled');
    // not from a trusted proxy: the header is ignored
    assert.equal(code(await unseal(signer, 'wrong', '198.51.100.5', { 'x-forwarded-for': OPERATOR })), 'unseal_failed');
    // the operator behind the same proxy is not delayed by either
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, PROXY, { 'x-forwarded-for': OPERATOR })), 'ok');
  });

  test('one address cannot queue more than 2 attempts: the rest are refused unheard', async () => {
    const signer = await newSigner();
    const burst = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => unseal(signer, `wrong ${i}`, ATTACKER)));
    const codes = burst.map(code);
    assert.equal(codes.filter((c) => c === 'unseal_failed').length, 1, codes.join());
    assert.equal(codes.filter((c) => c === 'unseal_throttled').length, 5, codes.join());
    assert.equal(code(await unseal(signer, TEST_PASSPHRASE, OPERATOR)), 'ok');
  });
});

describe('admin socket', () => {
  test('created 0600; serves unseal while the network attacker is throttled; seal without a key; removed at close', async () => {
    const signer = await newSigner();
    const path = join(signer.socketDir, 'admin.sock');
    const admin = await listenAdminSocket(signer.app, path);
    try {
      assert.ok(lstatSync(path).isSocket());
      assert.equal(lstatSync(path).mode & 0o777, 0o600);
      // the attacker fails over the network, from the loopback address too
      assert.equal(code(await unseal(signer, 'wrong', '127.0.0.1')), 'unseal_failed');
      assert.equal(code(await unseal(signer, TEST_PASSPHRASE, '127.0.0.1')), 'unseal_throttled');
      // the operator's socket is not delayed
      const unsealed = await overSocket(path, 'POST', '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE });
      assert.equal(unsealed.status, 200, JSON.stringify(unsealed.body));
      assert.equal(unsealed.body.sealed, false);
      // seal: over TCP an API key is needed, over the socket its permissions are the credential
      const tcp = await signer.app.inject({ method: 'POST', url: '/v1/sys/seal' });
      assert.equal(tcp.statusCode, 401);
      assert.equal(code(tcp), 'unauthorized');
      const sealed = await overSocket(path, 'POST', '/v1/sys/seal');
      assert.equal(sealed.status, 200, JSON.stringify(sealed.body));
      assert.equal(sealed.body.sealed, true);
      assert.equal(signer.kernel.sealed, true);
      const [record] = await runSql(signer.store, "SELECT decision, app_id, detail FROM audit_log WHERE action = 'sys.seal'");
      assert.deepEqual({ ...record, detail: JSON.parse(String(record?.detail)) }, { decision: 'allowed', app_id: null, detail: { via: 'admin-socket' } });
      // its own back-off: an operator's typo delays the socket, not the network clients
      assert.equal((await overSocket(path, 'POST', '/v1/sys/unseal', { passphrase: 'typo' })).body.error !== undefined, true);
      assert.equal((await overSocket(path, 'POST', '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).status, 429);
      assert.equal(code(await unseal(signer, TEST_PASSPHRASE, OPERATOR)), 'ok');
    } finally {
      await admin.close();
    }
    assert.equal(existsSync(path), false);
  });

  test('is never refused by an overload guard that network clients filled: the operator unseals while every slot is held', async () => {
    const signer = await newSigner({ maxInFlight: 1 });
    const path = join(signer.socketDir, 'admin.sock');
    const admin = await listenAdminSocket(signer.app, path);
    await signer.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = signer.app.server.address() as AddressInfo;
    // the one slot, held by a client that sent its headers and part of a body
    const holder = connect(port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => holder.once('connect', resolve));
      holder.write(`POST /v1/sys/unseal HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"passphrase":`);
      // wait (status, which changes nothing) until the held request has taken the slot
      const deadline = Date.now() + 30_000;
      let status: LightMyRequestResponse;
      do {
        // a timer turn lets the event loop read the holder's socket (inject alone never yields to I/O)
        await new Promise((resolve) => setTimeout(resolve, 10));
        status = await signer.app.inject({ method: 'GET', url: '/v1/sys/status', remoteAddress: OPERATOR });
      } while (code(status) !== 'overloaded' && Date.now() < deadline);
      assert.equal(code(status), 'overloaded');
      assert.equal(code(await unseal(signer, TEST_PASSPHRASE, OPERATOR)), 'overloaded');
      const unsealed = await overSocket(path, 'POST', '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE });
      assert.equal(unsealed.status, 200, JSON.stringify(unsealed.body));
      assert.equal(signer.kernel.sealed, false);
    } finally {
      holder.destroy();
      await admin.close();
    }
  });

  test('a stale socket file is replaced; a live socket, or a file that is not a socket, is refused and left alone', async () => {
    const signer = await newSigner();
    // stale: a socket file nothing listens on any more
    const stalePath = join(signer.socketDir, 'stale.sock');
    // what a killed server leaves behind: a socket file nothing listens on
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(lstatSync(stalePath).isSocket());
    const admin: AdminSocket = await listenAdminSocket(signer.app, stalePath);
    assert.equal((await overSocket(stalePath, 'GET', '/v1/sys/status')).status, 200);
    // live: a second server on the same path is refused, and the first keeps its socket
    await assert.rejects(listenAdminSocket(signer.app, stalePath), { name: 'CustosError', code: 'invalid_input', details: { field: 'admin-socket' } });
    assert.equal((await overSocket(stalePath, 'GET', '/v1/sys/status')).status, 200);
    await admin.close();
    // not a socket: never removed
    const filePath = join(signer.socketDir, `file-${randomUUID()}`);
    writeFileSync(filePath, 'keep me');
    await assert.rejects(listenAdminSocket(signer.app, filePath), { code: 'invalid_input', details: { field: 'admin-socket' } });
    assert.ok(lstatSync(filePath).isFile());
    // a directory that does not exist
    await assert.rejects(listenAdminSocket(signer.app, join(signer.socketDir, 'missing', 'admin.sock')), { code: 'invalid_input' });
  });
});

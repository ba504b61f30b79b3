import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  createApiKey,
  encodeShareFile,
  initializeSigner,
  Kernel,
  parseShareFile,
  rekeySigner,
  type Scope,
  type ShareFileOut,
  type UnsealerSpec,
} from '@custos/kernel';
import { resealWithUnsignedShares } from '@custos/kernel/testing/unsignedShares';
import { mnemonicToSeedSync } from '@scure/bip39';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { buildApp } from './buildApp.js';
import { createLogger } from './createLogger.js';
import { type OpenedStore, openStore, type StoreLocation } from './openStore.js';
import {
  dropTestSchema,
  freshTestStoreLocation,
  recordTestSecret,
  runSql,
  TEST_MNEMONIC,
  TEST_PASSPHRASE,
  testArtifactsDir,
} from './testing/createTestSigner.js';

const SCRYPT = { N: 2 ** 10, r: 8, p: 1 };
const HASH = `${'5ea1'.repeat(15)}abcd`;

interface Signer {
  location: StoreLocation;
  store: OpenedStore;
  kernel: Kernel;
  app: FastifyInstance;
  signerId: string;
  /** The share files of a Shamir signer (texts), by index − 1. */
  shares: string[];
  adminKey: string;
  signKey: string;
  close(): Promise<void>;
}

const opened: Signer[] = [];
after(async () => {
  for (const s of opened.splice(0)) await s.close();
});

/** A real signer (real store of the pass), sealed, with an admin key and a sign-only key. */
async function newSigner(unsealer: UnsealerSpec, clock?: { now: number }): Promise<Signer> {
  const location = freshTestStoreLocation();
  const store = await openStore(location);
  let shares: string[] = [];
  const { signerId } = await initializeSigner({
    store,
    unsealer,
    master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) },
    derivation: 'custos-v1',
    persistShares: async (files: ShareFileOut[]) => {
      shares = files.map((f) => f.text);
      for (const f of files) recordTestSecret(`share ${f.index}`, (JSON.parse(f.text) as { share: string }).share);
    },
  });
  const key = async (scopes: Scope[]) => {
    const { token } = await createApiKey(store, { name: scopes.join('+'), scopes, tenant: scopes.includes('admin') ? 'system' : 'default' });
    recordTestSecret('apiKey', token);
    return token;
  };
  const adminKey = await key(['admin', 'derive']);
  const signKey = await key(['sign', 'derive']);
  const kernel = await Kernel.open({ store, ...(clock === undefined ? {} : { now: () => clock.now }) });
  const logFile = join(testArtifactsDir(), `unsealers-${process.pid}-${Date.now()}-${randomUUID().slice(0, 8)}.log`);
  const logger = createLogger({ level: 'debug', destination: pino.destination({ dest: logFile, sync: true }) });
  const app = await buildApp({ kernel, logger });
  const signer: Signer = {
    location,
    store,
    kernel,
    app,
    signerId,
    shares,
    adminKey,
    signKey,
    async close() {
      await app.close();
      kernel.seal();
      await store.close();
      if ('url' in location) await dropTestSchema(location.url);
    },
  };
  opened.push(signer);
  return signer;
}

/**
 * Turns a Shamir signer's share set into one made before shares were signed (sealed root without a
 * share key, version-1 share files); signer.shares is replaced by the new files.
 */
async function useUnsignedShareSet(signer: Signer, threshold: number, shares: number): Promise<void> {
  const current = signer.shares.map((text) => parseShareFile(text));
  const files = await resealWithUnsignedShares(signer.store, { type: 'shamir', shares: current }, { threshold, shares });
  signer.shares.splice(0, signer.shares.length, ...files.map((f) => f.text));
  for (const f of files) recordTestSecret(`unsigned share ${f.index}`, (JSON.parse(f.text) as { share: string }).share);
}

/**
 * The attack on unsigned shares: a share file with the set's ids, index and threshold, new random
 * share bytes and a recomputed (valid) checksum. Against a signed set, its signature fails.
 */
function forgeShare(genuine: string): string {
  const parsed = parseShareFile(genuine);
  return encodeShareFile({ ...parsed, share: Uint8Array.from([...randomBytes(32), parsed.index]) });
}

const shamir = (threshold: number, shares: number): UnsealerSpec => ({ type: 'shamir', threshold, shares });
const passphrase = (text = TEST_PASSPHRASE): UnsealerSpec => ({ type: 'passphrase', passphrase: new TextEncoder().encode(text), scrypt: SCRYPT });

function post(signer: Signer, url: string, payload?: unknown, key?: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({
    method: 'POST',
    url,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    ...(key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } }),
  });
}

function assertError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error: { code: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, code, res.body);
  if (field !== undefined) assert.equal(body.error.details.field, field, res.body);
}

async function status(signer: Signer): Promise<Record<string, unknown>> {
  return (await signer.app.inject({ method: 'GET', url: '/v1/sys/status' })).json() as Record<string, unknown>;
}

async function auditActions(signer: Signer): Promise<Array<{ action: string; decision: string; reason: string | null; app_id: string | null }>> {
  return (await runSql(signer.store, 'SELECT action, decision, reason, app_id FROM audit_log ORDER BY seq')) as Array<{
    action: string;
    decision: string;
    reason: string | null;
    app_id: string | null;
  }>;
}

async function address(signer: Signer, key = signer.adminKey): Promise<string> {
  const res = await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=alice&keyIndex=0', headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { address: string }).address;
}

describe('Shamir unseal over the API', () => {
  test('status shows the unsealer; shares one at a time with progress; duplicate, foreign, corrupt and mismatched credentials are refused and keep the progress', async () => {
    const signer = await newSigner(shamir(2, 3));
    assert.equal(signer.shares.length, 3);
    assert.deepEqual((await status(signer)).unsealer, {
      type: 'shamir',
      threshold: 2,
      shares: 3,
      sharesSigned: true,
      progress: { submitted: 0, threshold: 2 },
    });

    const first = await post(signer, '/v1/sys/unseal', { share: signer.shares[0] });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.json().sealed, true);
    assert.deepEqual(first.json().progress, { submitted: 1, threshold: 2 });
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 1, threshold: 2 });

    // the same share again (as text, or as its JSON object)
    assertError(await post(signer, '/v1/sys/unseal', { share: signer.shares[0] }), 409, 'share_duplicate', 'share.index');
    assertError(await post(signer, '/v1/sys/unseal', { share: JSON.parse(signer.shares[0] ?? '') }), 409, 'share_duplicate', 'share.index');
    // a typo: the checksum catches it
    const typo = (signer.shares[1] ?? '').replace(/"share": "(.)/, (_m, c: string) => `"share": "${c === 'A' ? 'B' : 'A'}`);
    assertError(await post(signer, '/v1/sys/unseal', { share: typo }), 400, 'share_invalid', 'share.checksum');
    assertError(await post(signer, '/v1/sys/unseal', { share: (signer.shares[1] ?? '').slice(0, 100) }), 400, 'share_invalid', 'share.file');
    // another signer's share
    const other = await newSigner(shamir(2, 3));
    assertError(await post(signer, '/v1/sys/unseal', { share: other.shares[1] }), 400, 'share_foreign', 'share.signerId');
    // a passphrase to a Shamir signer
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE }), 400, 'unsealer_mismatch');
    // both at once, or neither
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: 'x', share: signer.shares[1] }), 400, 'invalid_input');
    assertError(await post(signer, '/v1/sys/unseal', {}), 400, 'invalid_input', 'passphrase');
    // none of that lost the first share, nor unsealed
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 1, threshold: 2 });
    assertError(
      await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=alice&keyIndex=0', headers: { authorization: `Bearer ${signer.adminKey}` } }),
      503,
      'sealed',
    );

    // reset needs a valid share of the current set (not kept): without one, or with a forged,
    // foreign or malformed one, it is refused and the progress stays
    assertError(await post(signer, '/v1/sys/unseal/reset'), 400, 'invalid_input');
    assertError(await post(signer, '/v1/sys/unseal/reset', {}), 400, 'invalid_input', 'share');
    assertError(await post(signer, '/v1/sys/unseal/reset', { share: forgeShare(signer.shares[1] ?? '') }), 400, 'share_forged', 'share.signature');
    assertError(await post(signer, '/v1/sys/unseal/reset', { share: other.shares[1] }), 400, 'share_foreign', 'share.signerId');
    assertError(await post(signer, '/v1/sys/unseal/reset', { share: typo }), 400, 'share_invalid', 'share.checksum');
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 1, threshold: 2 });
    // reset discards it: 1 share is again not enough
    const reset = await post(signer, '/v1/sys/unseal/reset', { share: signer.shares[1] });
    assert.equal(reset.statusCode, 200, reset.body);
    assert.deepEqual(reset.json(), { discarded: 1 });
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 0, threshold: 2 });
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[2] })).json().sealed, true);

    const done = await post(signer, '/v1/sys/unseal', { share: signer.shares[0] });
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(done.json().sealed, false);
    assert.deepEqual(done.json().unsealer, { type: 'shamir', threshold: 2, shares: 3, sharesSigned: true });
    assert.match(await address(signer), /^0x[0-9a-fA-F]{40}$/);
    assertError(await post(signer, '/v1/sys/unseal', { share: signer.shares[1] }), 409, 'already_unsealed');
    assertError(await post(signer, '/v1/sys/unseal/reset', { share: signer.shares[1] }), 409, 'already_unsealed');
    const unseals = (await auditActions(signer)).filter((r) => r.action.startsWith('sys.unseal'));
    assert.deepEqual(unseals, [
      { action: 'sys.unseal.reset', decision: 'allowed', reason: null, app_id: null },
      { action: 'sys.unseal', decision: 'allowed', reason: null, app_id: null },
    ]);
    const [resetRecord] = (await runSql(signer.store, "SELECT detail FROM audit_log WHERE action = 'sys.unseal.reset'")) as Array<{ detail: string }>;
    assert.deepEqual(JSON.parse(resetRecord?.detail ?? '{}'), { discarded: 1, shareIndex: 2 });
  });

  test('a forged share (valid checksum, right set id, new random bytes) is refused before it takes an index; the genuine shares still unseal', async () => {
    const signer = await newSigner(shamir(3, 5));
    for (const i of [0, 1]) assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[i] })).json().sealed, true);
    // the attack of the previous stop: it would have been the third share, spoiling the combine
    // (unseal_failed, the operators' shares discarded, the back-off started) — now refused alone
    const forged = forgeShare(signer.shares[2] ?? '');
    assert.equal(parseShareFile(forged).shareSetId, parseShareFile(signer.shares[2]).shareSetId, 'the checksum and the set id pass');
    assertError(await post(signer, '/v1/sys/unseal', { share: forged }), 400, 'share_forged', 'share.signature');
    // the same with the index or the threshold of a genuine share edited (checksum recomputed)
    const edit = (text: string, change: Record<string, number>) => encodeShareFile({ ...parseShareFile(text), ...change });
    assertError(await post(signer, '/v1/sys/unseal', { share: edit(signer.shares[2] ?? '', { index: 5 }) }), 400, 'share_forged', 'share.signature');
    assertError(await post(signer, '/v1/sys/unseal', { share: edit(signer.shares[2] ?? '', { threshold: 2 }) }), 400, 'share_forged', 'share.signature');
    // an unsigned (version-1) share for this signed set
    const { signature: _s, ...unsigned } = parseShareFile(forged);
    assertError(await post(signer, '/v1/sys/unseal', { share: encodeShareFile(unsigned) }), 400, 'share_forged', 'share.signature');
    // nothing took an index, nothing was combined, no back-off started
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 2, threshold: 3 });
    assert.deepEqual(
      (await auditActions(signer)).filter((r) => r.action === 'sys.unseal'),
      [],
    );
    const done = await post(signer, '/v1/sys/unseal', { share: signer.shares[4] });
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(done.json().sealed, false);
    assert.deepEqual(
      (await auditActions(signer)).filter((r) => r.action === 'sys.unseal'),
      [{ action: 'sys.unseal', decision: 'allowed', reason: null, app_id: null }],
    );
  });

  test('M − 1 shares never unseal', async () => {
    const signer = await newSigner(shamir(3, 5));
    for (const i of [0, 1]) assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[i] })).json().sealed, true);
    assert.equal((await status(signer)).sealed, true);
    assertError(
      await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=alice&keyIndex=0', headers: { authorization: `Bearer ${signer.adminKey}` } }),
      503,
      'sealed',
    );
  });

  test('a share set made before shares were signed: sharesSigned false, still unseals (a corrupted share fails the combine), reset with one of its shares; rekey issues a signed set', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(shamir(2, 3), clock);
    const signed = [...signer.shares];
    await useUnsignedShareSet(signer, 3, 5);
    const legacy = [...signer.shares];
    assert.equal((JSON.parse(legacy[0] ?? '') as { version: number }).version, 1);
    // (status shows the stored set from the next unseal attempt on, as after any rekey)
    assert.equal((await post(signer, '/v1/sys/unseal', { share: legacy[0] })).json().sealed, true);
    assert.deepEqual((await status(signer)).unsealer, {
      type: 'shamir',
      threshold: 3,
      shares: 5,
      sharesSigned: false,
      progress: { submitted: 1, threshold: 3 },
    });
    // a corrupted share with a recomputed checksum: only the AEAD can tell (the weakness rekey removes)
    assert.equal((await post(signer, '/v1/sys/unseal', { share: legacy[1] })).json().sealed, true);
    const corrupt = parseShareFile(legacy[2]);
    corrupt.share[0] = (corrupt.share[0] as number) ^ 0xff;
    assertError(await post(signer, '/v1/sys/unseal', { share: encodeShareFile(corrupt) }), 401, 'unseal_failed');
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 0, threshold: 3 });
    clock.now += 1_000;
    // reset: a share of the set (checksum, signer, set id) is needed; a signed one of the old set is foreign
    assert.equal((await post(signer, '/v1/sys/unseal', { share: legacy[0] })).json().sealed, true);
    assertError(await post(signer, '/v1/sys/unseal/reset', { share: signed[0] }), 400, 'share_foreign', 'share.shareSetId');
    assert.deepEqual((await post(signer, '/v1/sys/unseal/reset', { share: legacy[4] })).json(), { discarded: 1 });
    for (const i of [4, 3]) assert.equal((await post(signer, '/v1/sys/unseal', { share: legacy[i] })).json().sealed, true);
    const done = await post(signer, '/v1/sys/unseal', { share: legacy[2] });
    assert.equal(done.json().sealed, false, done.body);
    const before = await address(signer);
    // custos rekey (same unsealer) issues a signed set; the old (unsigned) shares stop working
    signer.kernel.seal();
    let next: string[] = [];
    await rekeySigner({
      store: signer.store,
      current: { type: 'shamir', shares: legacy.slice(0, 3).map((text) => parseShareFile(text)) },
      next: shamir(2, 3),
      persistShares: async (files) => {
        next = files.map((f) => f.text);
      },
    });
    assert.equal((JSON.parse(next[0] ?? '') as { version: number }).version, 2);
    assertError(await post(signer, '/v1/sys/unseal', { share: legacy[0] }), 400, 'share_foreign', 'share.shareSetId');
    assert.equal((await post(signer, '/v1/sys/unseal', { share: next[1] })).json().sealed, true);
    assert.deepEqual((await status(signer)).unsealer, {
      type: 'shamir',
      threshold: 2,
      shares: 3,
      sharesSigned: true,
      progress: { submitted: 1, threshold: 2 },
    });
    assert.equal((await post(signer, '/v1/sys/unseal', { share: next[2] })).json().sealed, false);
    assert.equal(await address(signer), before);
  });

  test('the pending shares are bounded by the threshold: each set of M submissions unseals or starts over', async () => {
    const signer = await newSigner(shamir(2, 5));
    const res = await post(signer, '/v1/sys/unseal', { share: signer.shares[4] });
    assert.deepEqual(res.json().progress, { submitted: 1, threshold: 2 });
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[3] })).json().sealed, false);
  });

  test('submitted shares expire after 15 minutes: a stale half-finished unseal is not completed', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(shamir(2, 3), clock);
    assert.deepEqual((await post(signer, '/v1/sys/unseal', { share: signer.shares[0] })).json().progress, { submitted: 1, threshold: 2 });
    clock.now += 15 * 60_000;
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 1, threshold: 2 }, 'kept for 15 minutes');
    clock.now += 1;
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 0, threshold: 2 }, 'gone after');
    const next = await post(signer, '/v1/sys/unseal', { share: signer.shares[1] });
    assert.equal(next.json().sealed, true);
    assert.deepEqual(next.json().progress, { submitted: 1, threshold: 2 });
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[2] })).json().sealed, false);
  });

  test('a passphrase signer shows its unsealer and refuses a share', async () => {
    const signer = await newSigner(passphrase());
    assert.deepEqual((await status(signer)).unsealer, { type: 'passphrase' });
    const other = await newSigner(shamir(2, 2));
    assertError(await post(signer, '/v1/sys/unseal', { share: other.shares[0] }), 400, 'unsealer_mismatch');
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
  });
});

describe('unseal back-off', () => {
  test('a failed unseal makes the next attempt wait (429 unseal_throttled, Retry-After), doubling; parallel attempts do not slip past; a success resets', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(passphrase(), clock);
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: 'wrong 1' }), 401, 'unseal_failed');
    const second = await post(signer, '/v1/sys/unseal', { passphrase: 'wrong 2' });
    assertError(second, 429, 'unseal_throttled');
    assert.equal(second.headers['retry-after'], '1');
    assert.equal(second.json().error.details.retryAfterSeconds, 1);
    // refused unheard: even the right passphrase, and no audit record for the refusals
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE }), 429, 'unseal_throttled');
    clock.now += 999;
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE }), 429, 'unseal_throttled');
    clock.now += 1;
    // the delay doubles with each failure: 2 s after the second
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: 'wrong 3' }), 401, 'unseal_failed');
    const doubled = await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE });
    assertError(doubled, 429, 'unseal_throttled');
    assert.equal(doubled.headers['retry-after'], '2');
    clock.now += 2_000;
    // parallel wrong attempts: only the first is tried, the others wait for its back-off
    const burst = await Promise.all([1, 2, 3, 4].map((i) => post(signer, '/v1/sys/unseal', { passphrase: `burst ${i}` })));
    assert.deepEqual(
      burst.map((r) => r.json().error.code),
      ['unseal_failed', 'unseal_throttled', 'unseal_throttled', 'unseal_throttled'],
    );
    assert.equal(burst[1]?.headers['retry-after'], '4');
    clock.now += 4_000;
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
    assert.deepEqual(
      (await auditActions(signer)).filter((r) => r.action === 'sys.unseal').map((r) => r.reason),
      ['unseal_failed', 'unseal_failed', 'unseal_failed', null],
    );
    // the success reset the count: after a seal, one failure waits 1 s again, not 16
    signer.kernel.seal();
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: 'wrong again' }), 401, 'unseal_failed');
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).headers['retry-after'], '1');
    clock.now += 1_000;
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
  });

  test('the delay caps at 5 minutes', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(passphrase(), clock);
    for (let i = 0; i < 12; i++) {
      assertError(await post(signer, '/v1/sys/unseal', { passphrase: `wrong ${i}` }), 401, 'unseal_failed');
      clock.now += 300_000;
    }
    clock.now -= 300_000;
    const capped = await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE });
    assertError(capped, 429, 'unseal_throttled');
    assert.equal(capped.headers['retry-after'], '300');
  });

  test('Shamir: a failed combine throttles the next share, which is refused without being kept', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(shamir(2, 3), clock);
    // a failed combine needs a share the signatures cannot catch: a set made before shares were signed
    await useUnsignedShareSet(signer, 2, 3);
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[0] })).json().sealed, true);
    const parsed = parseShareFile(signer.shares[1]);
    parsed.share[0] = (parsed.share[0] as number) ^ 0xff;
    assertError(await post(signer, '/v1/sys/unseal', { share: encodeShareFile(parsed) }), 401, 'unseal_failed');
    assertError(await post(signer, '/v1/sys/unseal', { share: signer.shares[2] }), 429, 'unseal_throttled');
    assert.deepEqual(((await status(signer)).unsealer as { progress: unknown }).progress, { submitted: 0, threshold: 2 });
    clock.now += 1_000;
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[2] })).json().sealed, true);
    assert.equal((await post(signer, '/v1/sys/unseal', { share: signer.shares[0] })).json().sealed, false);
  });
});

describe('POST /v1/sys/seal', () => {
  test('needs the admin scope (denial audited); seals, wipes the barrier’s buffers, audits sys.seal; unseal works again', async () => {
    const signer = await newSigner(passphrase());
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
    const before = await address(signer);
    const held = signer.kernel.secretBufferState().installed;
    assert.ok(held !== null && held.buffers >= 3 && held.nonZero === held.buffers, JSON.stringify(held));

    assertError(await post(signer, '/v1/sys/seal', undefined, signer.signKey), 403, 'forbidden_scope');
    assertError(await post(signer, '/v1/sys/seal'), 401, 'unauthorized');
    assert.equal((await status(signer)).sealed, false);

    const sealed = await post(signer, '/v1/sys/seal', undefined, signer.adminKey);
    assert.equal(sealed.statusCode, 200, sealed.body);
    assert.equal(sealed.json().sealed, true);
    assert.deepEqual(signer.kernel.secretBufferState(), { installs: 1, installed: null, lastWiped: { buffers: held.buffers, nonZero: 0 } });
    assertError(
      await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=alice&keyIndex=0', headers: { authorization: `Bearer ${signer.adminKey}` } }),
      503,
      'sealed',
    );
    assertError(await post(signer, '/v1/sys/seal', undefined, signer.adminKey), 503, 'sealed');
    assert.equal((await signer.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);

    const actions = (await auditActions(signer)).filter((r) => r.action.startsWith('sys.'));
    const [adminRow] = await runSql(signer.store, "SELECT id FROM api_keys WHERE name = 'admin+derive'");
    const [signRow] = await runSql(signer.store, "SELECT id FROM api_keys WHERE name = 'sign+derive'");
    assert.deepEqual(actions, [
      // custos init's own record opens the chain (issue 15 point 4)
      { action: 'sys.init', decision: 'allowed', reason: null, app_id: null },
      { action: 'sys.unseal', decision: 'allowed', reason: null, app_id: null },
      { action: 'sys.seal', decision: 'denied', reason: 'forbidden_scope', app_id: signRow?.id },
      { action: 'sys.seal', decision: 'allowed', reason: null, app_id: adminRow?.id },
    ]);
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
    assert.equal(await address(signer), before);
  });

  test('a seal during an unseal under way wins; concurrent unseals install one barrier', async () => {
    const signer = await newSigner(passphrase());
    const pass = () => new TextEncoder().encode(TEST_PASSPHRASE);
    const unsealing = signer.kernel.unseal(pass());
    signer.kernel.seal();
    await assert.rejects(unsealing, { code: 'sealed' });
    assert.equal(signer.kernel.status().sealed, true);
    // the overtaken unseal's barrier was never installed, and was wiped
    const discarded = signer.kernel.secretBufferState();
    assert.equal(discarded.installs, 0);
    assert.equal(discarded.installed, null);
    assert.ok(discarded.lastWiped !== null && discarded.lastWiped.buffers >= 3 && discarded.lastWiped.nonZero === 0, JSON.stringify(discarded));
    const results = await Promise.allSettled([signer.kernel.unseal(pass()), signer.kernel.unseal(pass()), signer.kernel.unseal(pass())]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code)),
      ['ok', 'already_unsealed', 'already_unsealed'],
    );
    assert.equal(signer.kernel.secretBufferState().installs, 1);
    // the log says what happened: the unseal the seal overtook is denied (sealed), never allowed
    assert.deepEqual(
      (await auditActions(signer)).filter((r) => r.action === 'sys.unseal'),
      [
        { action: 'sys.unseal', decision: 'denied', reason: 'sealed', app_id: null },
        { action: 'sys.unseal', decision: 'allowed', reason: null, app_id: null },
      ],
    );
  });

  test('signs in flight during a seal: each answer is a signature with its audit record, or a clean 503 sealed', async () => {
    const signer = await newSigner(passphrase());
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE })).statusCode, 200);
    const total = 300;
    let answered = 0;
    let sealResponse: Promise<LightMyRequestResponse> | undefined;
    const signs = Array.from({ length: total }, (_, i) =>
      post(signer, '/v1/sign/hash', { walletName: `w${i % 7}`, keyIndex: i, hash: HASH }, signer.signKey).then((res) => {
        answered += 1;
        // seal while most signs are still in flight
        if (answered === 20) sealResponse = post(signer, '/v1/sys/seal', undefined, signer.adminKey);
        return res;
      }),
    );
    const answers = await Promise.all(signs);
    assert.ok(sealResponse !== undefined);
    assert.equal((await sealResponse).statusCode, 200);
    const signed = answers.filter((r) => r.statusCode === 200);
    const refused = answers.filter((r) => r.statusCode !== 200);
    for (const r of refused) assertError(r, 503, 'sealed');
    assert.ok(signed.length >= 20, `${signed.length} signed`);
    assert.ok(refused.length >= 1, `${refused.length} refused`);
    // every signature has its allowed audit record (same seq, same opHash), and no allowed record lacks an answer
    const rows = (await runSql(signer.store, "SELECT seq, op_hash FROM audit_log WHERE action = 'sign.hash' AND decision = 'allowed'")) as Array<{
      seq: number | string;
      op_hash: string;
    }>;
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r.op_hash]));
    for (const r of signed) {
      const body = r.json() as { auditSeq: number; opHash: string };
      assert.equal(bySeq.get(body.auditSeq), body.opHash, `audit record ${body.auditSeq}`);
    }
    assert.equal(rows.length, signed.length);
  });
});

describe('rekey (kernel function on the real store)', () => {
  test('passphrase → Shamir → new passphrase: addresses unchanged, old credentials refused after each switch', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(passphrase(), clock);
    await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    const original = await address(signer);
    signer.kernel.seal();

    let files: ShareFileOut[] = [];
    const toShamir = await rekeySigner({
      store: signer.store,
      current: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      next: shamir(2, 3),
      persistShares: async (f) => {
        files = f;
        for (const s of f) recordTestSecret('rekey share', (JSON.parse(s.text) as { share: string }).share);
      },
    });
    assert.deepEqual(toShamir, { signerId: signer.signerId, from: 'passphrase', to: 'shamir' });
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE }), 400, 'unsealer_mismatch');
    assert.equal((await post(signer, '/v1/sys/unseal', { share: files[2]?.text })).json().sealed, true);
    assert.equal((await post(signer, '/v1/sys/unseal', { share: files[0]?.text })).json().sealed, false);
    assert.equal(await address(signer), original);
    signer.kernel.seal();

    const newPassphrase = 'a brand new passphrase (test only)';
    recordTestSecret('new passphrase', newPassphrase);
    await rekeySigner({
      store: signer.store,
      current: { type: 'shamir', shares: [parseShareFile(files[1]?.text), parseShareFile(files[2]?.text)] },
      next: passphrase(newPassphrase),
    });
    assertError(await post(signer, '/v1/sys/unseal', { share: files[0]?.text }), 400, 'unsealer_mismatch');
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: TEST_PASSPHRASE }), 401, 'unseal_failed');
    clock.now += 1_000; // the unseal back-off
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: newPassphrase })).statusCode, 200);
    assert.equal(await address(signer), original);
    signer.kernel.seal();

    // Shamir → Shamir: the old set is foreign afterwards
    let second: ShareFileOut[] = [];
    await rekeySigner({
      store: signer.store,
      current: { type: 'passphrase', passphrase: new TextEncoder().encode(newPassphrase) },
      next: shamir(2, 2),
      persistShares: async (f) => {
        second = f;
      },
    });
    const third = await rekeySigner({
      store: signer.store,
      current: { type: 'shamir', shares: second.map((f) => parseShareFile(f.text)) },
      next: shamir(2, 2),
      persistShares: async (f) => {
        files = f;
      },
    });
    assert.equal(third.to, 'shamir');
    assertError(await post(signer, '/v1/sys/unseal', { share: second[0]?.text }), 400, 'share_foreign', 'share.shareSetId');
    for (const f of files) await post(signer, '/v1/sys/unseal', { share: f.text });
    assert.equal(await address(signer), original);
    const rekeys = (await auditActions(signer)).filter((r) => r.action === 'sys.rekey');
    assert.equal(rekeys.length, 4);
  });

  test('the switch is a compare-and-swap: a stale envelope loses (sealed_root_changed), nothing written', async () => {
    const clock = { now: 1_700_000_000_000 };
    const signer = await newSigner(passphrase(), clock);
    const meta = await signer.store.getMeta();
    assert.ok(meta !== undefined);
    // the store's own method: the wrong expected value changes nothing
    const stale = { ...(meta.sealedRoot as Record<string, unknown>), ciphertext: 'AAAA' };
    assert.equal(await signer.store.transact((tx) => tx.swapSealedRoot(stale, { replaced: true })), false);
    assert.deepEqual((await signer.store.getMeta())?.sealedRoot, meta.sealedRoot);
    // a rekey whose envelope was replaced between its read and its switch: the second switch loses
    let raced = false;
    await assert.rejects(
      rekeySigner({
        store: signer.store,
        current: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
        next: passphrase('next one'),
        onStep: async (step) => {
          if (step !== 'sealed' || raced) return;
          raced = true;
          await rekeySigner({
            store: signer.store,
            current: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
            next: passphrase('the winner'),
          });
        },
      }),
      { code: 'sealed_root_changed' },
    );
    assert.ok(raced);
    assertError(await post(signer, '/v1/sys/unseal', { passphrase: 'next one' }), 401, 'unseal_failed');
    clock.now += 1_000; // the unseal back-off
    assert.equal((await post(signer, '/v1/sys/unseal', { passphrase: 'the winner' })).statusCode, 200);
    assert.equal((await auditActions(signer)).filter((r) => r.action === 'sys.rekey').length, 1);
  });

  test('wrong current credentials change nothing', async () => {
    const signer = await newSigner(passphrase());
    const meta = await signer.store.getMeta();
    await assert.rejects(
      rekeySigner({ store: signer.store, current: { type: 'passphrase', passphrase: new TextEncoder().encode('wrong') }, next: passphrase('x') }),
      { code: 'unseal_failed' },
    );
    assert.deepEqual((await signer.store.getMeta())?.sealedRoot, meta?.sealedRoot);
  });
});

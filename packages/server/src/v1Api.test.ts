import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createApiKey, type HashSignature, KERNEL_VERSION, parseOtpauthUri, revokeApiKey, type Scope } from '@custos/kernel';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { RAW_HASHES_ALLOWED, createTestSigner, TEST_PASSPHRASE, type TestSigner, type TestSignerOptions } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

/** A fixed start in the middle of a 30 s step, so that ±1 step stays well-defined. */
const START_MS = 1_700_000_000_000;
const HASH = `${'c0ffee'.repeat(10)}abcd`;

interface VectorFile<K> {
  vectors: Array<{ walletName: string; keyIndex: K; publicKey: string; address: string }>;
}

function readVectors<T>(file: string): T {
  // dist/v1Api.test.js -> packages/server -> repo root
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../../../test/vectors/${file}`, import.meta.url)), 'utf8')) as T;
}

const signers: TestSigner[] = [];
async function newSigner(options: TestSignerOptions = {}): Promise<TestSigner> {
  const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: START_MS, ...options });
  signers.push(signer);
  return signer;
}
afterEach(async () => {
  for (const signer of signers.splice(0)) await signer.close();
});

function assertError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error: { code: string; message: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, code, res.body);
  assert.equal(typeof body.error.message, 'string');
  if (field !== undefined) assert.equal(body.error.details.field, field, res.body);
}

function keysUrl(walletName: string, keyIndex: number | string): string {
  return `/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`;
}

async function enroll(signer: TestSigner, walletName: string, key?: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(key), payload: { walletName } });
}

async function signHash(signer: TestSigner, body: Record<string, unknown>, key?: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(key), payload: body });
}

/** A 6-digit code that is valid in none of the steps the verifier accepts at `nowMs`. */
function wrongCode(uri: string, nowMs: number): string {
  const valid = new Set([-1, 0, 1].map((offset) => totpFromUri(uri, nowMs, offset)));
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, '0');
    if (!valid.has(candidate)) return candidate;
  }
}

describe('GET /v1/sys/status', () => {
  test('answers without credentials with the seal state and the identity of the signer', async () => {
    const signer = await newSigner();
    const res = await signer.app.inject({ method: 'GET', url: '/v1/sys/status' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), {
      sealed: false,
      signerId: signer.signerId,
      version: KERNEL_VERSION,
      derivation: 'custos-v1',
      unsealer: { type: 'passphrase' },
      auditPublicKey: signer.auditPublicKey,
    });
  });
});

describe('GET /v1/keys', () => {
  test('custos-v1: public key and EIP-55 address equal test/vectors/custos-v1.json', async () => {
    const signer = await newSigner();
    const { vectors } = readVectors<VectorFile<number>>('custos-v1.json');
    assert.ok(vectors.length >= 4);
    for (const v of vectors) {
      const res = await signer.app.inject({ method: 'GET', url: keysUrl(v.walletName, v.keyIndex), headers: signer.auth() });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { walletName: v.walletName, keyIndex: v.keyIndex, publicKey: v.publicKey, address: v.address });
    }
  });

  test('fortanix-v1: public key and address equal the fortanixV1 vectors of secp256k1-ethereum.json', async () => {
    const signer = await newSigner({ derivation: 'fortanix-v1' });
    const { fortanixV1 } = readVectors<{ fortanixV1: VectorFile<string> }>('secp256k1-ethereum.json');
    assert.ok(fortanixV1.vectors.length >= 4);
    for (const v of fortanixV1.vectors) {
      const res = await signer.app.inject({ method: 'GET', url: keysUrl(v.walletName, v.keyIndex), headers: signer.auth() });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as { walletName: string; keyIndex: number; publicKey: string; address: string };
      assert.equal(body.walletName, v.walletName);
      assert.equal(body.keyIndex, Number(v.keyIndex));
      assert.equal(body.publicKey, v.publicKey);
      // the vector file spells addresses in lower case; the API answers EIP-55 checksummed
      assert.equal(body.address.toLowerCase(), v.address);
      assert.notEqual(body.address, body.address.toLowerCase(), 'the address is EIP-55 checksummed');
    }
  });
});

describe('POST /v1/sign/hash for a wallet never enrolled', () => {
  test('signs without a code; the signature verifies, is low-s, recovers the key, and its audit record exists', async () => {
    const signer = await newSigner();
    const walletName = 'alice@acme.com';
    const keys = await signer.app.inject({ method: 'GET', url: keysUrl(walletName, 0), headers: signer.auth() });
    assert.equal(keys.statusCode, 200, keys.body);
    const key = keys.json() as { publicKey: string; address: string };

    const res = await signHash(signer, { walletName, keyIndex: 0, hash: HASH });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as HashSignature;
    assert.equal(body.walletName, walletName);
    assert.equal(body.keyIndex, 0);
    assert.match(body.r, /^[0-9a-f]{64}$/);
    assert.match(body.s, /^[0-9a-f]{64}$/);
    assert.ok(body.recoveryId === 0 || body.recoveryId === 1);

    // the key is the one GET /v1/keys gives (and the published vector)
    assert.equal(body.publicKey, key.publicKey);
    assert.equal(body.address, key.address);
    assert.equal(body.address, '0x4dd2DF1E63fA3D820F061f9B4eF4756466d117a6');

    // ECDSA over the raw hash (no prehash), low-s
    const digest = Buffer.from(HASH, 'hex');
    const compact = Buffer.from(body.r + body.s, 'hex');
    const publicKey = Buffer.from(body.publicKey, 'hex');
    assert.equal(secp256k1.verify(compact, digest, publicKey, { prehash: false, lowS: true, format: 'compact' }), true);
    const otherDigest = Buffer.from(digest);
    otherDigest[0] = (otherDigest[0] ?? 0) ^ 1;
    assert.equal(secp256k1.verify(compact, otherDigest, publicKey, { prehash: false, format: 'compact' }), false, 'verification is not vacuous');
    const n = secp256k1.Point.Fn.ORDER;
    assert.ok(BigInt(`0x${body.s}`) <= n / 2n, 's ≤ n/2');

    // recovery with the returned recoveryId gives the public key back
    const recoverable = Buffer.concat([Buffer.of(body.recoveryId), compact]);
    const recovered = secp256k1.Signature.fromBytes(recoverable, 'recovered').recoverPublicKey(digest).toBytes(true);
    assert.equal(Buffer.from(recovered).toString('hex'), body.publicKey);

    // signature = 0x r ‖ s ‖ v, v = 27 + recoveryId
    assert.equal(body.signature, `0x${body.r}${body.s}${(27 + body.recoveryId).toString(16)}`);
    assert.equal(body.signature.length, 2 + 65 * 2);

    // no audit record, no signature: the record named by auditSeq is this decision
    const [record] = await signer.store.readAudit(body.auditSeq, 1);
    assert.ok(record !== undefined, 'the audit record exists');
    assert.equal(record.seq, body.auditSeq);
    assert.equal(record.action, 'sign.hash');
    assert.equal(record.decision, 'allowed');
    assert.equal(record.reason, null);
    assert.equal(record.walletName, walletName);
    assert.equal(record.opHash, body.opHash);
    assert.match(body.opHash, /^[0-9a-f]{64}$/);
    assert.equal(record.detail.factor, 'none');
  });

  test('the same hash under another key index is another operation (another opHash, another key)', async () => {
    const signer = await newSigner();
    const a = await signHash(signer, { walletName: 'alice@acme.com', keyIndex: 0, hash: HASH });
    const b = await signHash(signer, { walletName: 'alice@acme.com', keyIndex: 1, hash: HASH });
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(b.statusCode, 200, b.body);
    assert.notEqual(a.json().opHash, b.json().opHash);
    assert.equal(b.json().publicKey, '03b7335472ce124b91f02077379b45ae40ac6b5be560645b00ed7eddeac0b8bae8');
    assert.ok(b.json().auditSeq > a.json().auditSeq);
  });
});

describe('POST /v1/totp/enroll', () => {
  test('returns the otpauth URI once, a QR code and the security object; a second enrolment is refused', async () => {
    const signer = await newSigner();
    const walletName = 'carol@acme.com';
    const res = await enroll(signer, walletName);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { walletName: string; otpauthUri: string; qrSvg: string; securityObject: string };
    assert.deepEqual(Object.keys(body).sort(), ['otpauthUri', 'qrSvg', 'securityObject', 'walletName']);
    assert.equal(body.walletName, walletName);
    assert.equal(body.securityObject, `totp/${walletName}`);
    assert.ok(body.qrSvg.startsWith('<svg'), body.qrSvg.slice(0, 40));

    const uri = new URL(body.otpauthUri);
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    const secret = uri.searchParams.get('secret') ?? '';
    assert.match(secret, /^[A-Z2-7]{32}$/, 'unpadded base32 of 20 bytes is 32 characters');
    assert.equal(uri.searchParams.get('issuer'), 'Custos');
    assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
    assert.equal(uri.searchParams.get('digits'), '6');
    assert.equal(uri.searchParams.get('period'), '30');
    assert.equal(decodeURIComponent(uri.pathname), `/Custos:${walletName}`);
    const parsed = parseOtpauthUri(body.otpauthUri);
    assert.equal(parsed.secret.length, 20);
    assert.equal(parsed.accountName, walletName);

    // enrolled once only: the secret is never shown again
    const again = await enroll(signer, walletName);
    assertError(again, 409, 'already_enrolled', 'walletName');
    assert.ok(!again.body.includes(secret));

    // the row holds only an envelope: neither the base32 nor the hex (nor base64) of the secret
    const [row] = await signer.sql('SELECT secret_envelope FROM totp_factors WHERE wallet_name = $1', walletName);
    assert.ok(row !== undefined, 'the factor row exists');
    const envelope = String(row.secret_envelope);
    assert.ok(envelope.length > 0);
    const secretBytes = Buffer.from(parsed.secret);
    for (const encoded of [secret, secretBytes.toString('hex'), secretBytes.toString('base64'), secretBytes.toString('base64url')]) {
      assert.ok(!envelope.toUpperCase().includes(encoded.toUpperCase()), 'the stored envelope does not contain the secret');
    }
    // nor anywhere else in the database file's tables
    const dump = JSON.stringify(await signer.sql('SELECT * FROM totp_factors')) + JSON.stringify(await signer.sql('SELECT * FROM audit_log'));
    assert.ok(!dump.toUpperCase().includes(secret), 'no table holds the base32 secret');
    assert.ok(!dump.includes(secretBytes.toString('hex')), 'no table holds the hex secret');

    // the enrolment is audited
    const audit = await signer.store.readAudit(1, 1000);
    const enrolments = audit.filter((r) => r.action === 'totp.enroll' && r.walletName === walletName);
    assert.deepEqual(
      enrolments.map((r) => [r.decision, r.reason]),
      [
        ['allowed', null],
        ['denied', 'already_enrolled'],
      ],
    );
  });
});

describe('an enrolled wallet', () => {
  test('signs only with the current code; GET /v1/wallets lists the factor', async () => {
    const signer = await newSigner();
    const walletName = 'dave@acme.com';
    const enrolled = await enroll(signer, walletName);
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
    const enrolledAt = signer.clock.now;

    const wallet = await signer.app.inject({ method: 'GET', url: `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, headers: signer.auth() });
    assert.equal(wallet.statusCode, 200, wallet.body);
    assert.deepEqual(wallet.json(), { walletName, factors: ['totp'], createdAt: enrolledAt });

    const withoutCode = await signHash(signer, { walletName, keyIndex: 0, hash: HASH });
    assertError(withoutCode, 403, 'code_required', 'code');

    signer.clock.now += 60_000;
    const code = totpFromUri(uri, signer.clock.now);
    const withCode = await signHash(signer, { walletName, keyIndex: 0, hash: HASH, code });
    assert.equal(withCode.statusCode, 200, withCode.body);
    const signed = withCode.json() as { r: string; s: string; publicKey: string; auditSeq: number };
    assert.equal(
      secp256k1.verify(Buffer.from(signed.r + signed.s, 'hex'), Buffer.from(HASH, 'hex'), Buffer.from(signed.publicKey, 'hex'), {
        prehash: false,
        format: 'compact',
      }),
      true,
    );
    const [record] = await signer.store.readAudit(signed.auditSeq, 1);
    assert.ok(record !== undefined);
    assert.equal(record.decision, 'allowed');
    assert.equal(record.detail.factor, 'totp');
    assert.equal(record.detail.totpStep, Math.floor(signer.clock.now / 30_000));

    // the code is single use
    const replay = await signHash(signer, { walletName, keyIndex: 0, hash: HASH, code });
    assertError(replay, 403, 'code_reused');

    // the denials are audited with their codes
    const audit = await signer.store.readAudit(1, 1000);
    const reasons = audit.filter((r) => r.action === 'sign.hash' && r.walletName === walletName).map((r) => r.reason);
    assert.deepEqual(reasons, ['code_required', null, 'code_reused']);
  });

  test('a wrong code is code_invalid; five of them lock the factor with 429 factor_throttled and Retry-After', async () => {
    const signer = await newSigner();
    const walletName = 'erin@acme.com';
    const uri = ((await enroll(signer, walletName)).json() as { otpauthUri: string }).otpauthUri;
    const bad = wrongCode(uri, signer.clock.now);
    for (let i = 0; i < 5; i++) assertError(await signHash(signer, { walletName, keyIndex: 0, hash: HASH, code: bad }), 403, 'code_invalid');
    const locked = await signHash(signer, { walletName, keyIndex: 0, hash: HASH, code: totpFromUri(uri, signer.clock.now) });
    assertError(locked, 429, 'factor_throttled');
    assert.equal(locked.headers['retry-after'], '30');
    assert.equal((locked.json() as { error: { details: { retryAfterSeconds: number } } }).error.details.retryAfterSeconds, 30);
  });

  test('GET /v1/wallets for a wallet the signer has no record of is 404 wallet_not_found; the first signature creates the record, no factor', async () => {
    const signer = await newSigner();
    const read = (walletName: string) =>
      signer.app.inject({ method: 'GET', url: `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, headers: signer.auth() });
    assertError(await read('nobody@acme.com'), 404, 'wallet_not_found', 'walletName');
    // the first call that names a wallet (here a signature, no factor enrolled) creates its record, owned by the caller's tenant
    assert.equal((await signHash(signer, { walletName: 'frank@acme.com', keyIndex: 0, hash: HASH })).statusCode, 200);
    const frank = await read('frank@acme.com');
    assert.equal(frank.statusCode, 200, frank.body);
    assert.deepEqual(frank.json().factors, []);
    assert.deepEqual(await signer.sql('SELECT tenant FROM wallets WHERE name = $1', 'frank@acme.com'), [{ tenant: 'default' }]);
  });
});

describe('API key scopes and credentials', () => {
  test('a derive-only key may read keys but neither enrol nor sign; each refusal is audited as forbidden_scope', async () => {
    const signer = await newSigner();
    const scopes: Scope[] = ['derive'];
    const { id, token } = await createApiKey(signer.store, { name: 'derive-only', scopes });

    const keys = await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth(token) });
    assert.equal(keys.statusCode, 200, keys.body);

    assertError(await enroll(signer, 'gina@acme.com', token), 403, 'forbidden_scope');
    assertError(await signHash(signer, { walletName: 'gina@acme.com', keyIndex: 0, hash: HASH }, token), 403, 'forbidden_scope');

    // nothing was enrolled
    const wallet = await signer.app.inject({ method: 'GET', url: '/v1/wallets?walletName=gina%40acme.com', headers: signer.auth() });
    assertError(wallet, 404, 'wallet_not_found');

    const denied = (await signer.store.readAudit(1, 1000)).filter((r) => r.appId === id && r.decision === 'denied');
    assert.deepEqual(
      denied.map((r) => [r.action, r.reason, r.walletName]),
      [
        ['totp.enroll', 'forbidden_scope', 'gina@acme.com'],
        ['sign.hash', 'forbidden_scope', 'gina@acme.com'],
      ],
    );
    // refused before the operation is parsed: no opHash, no summary in the record
    const signDenial = denied.find((r) => r.action === 'sign.hash');
    assert.equal(signDenial?.opHash, null);
    assert.deepEqual(signDenial?.detail, { keyIndex: 0 });
  });

  test('a sign-only key may sign but not read wallets or keys', async () => {
    const signer = await newSigner();
    const { token } = await createApiKey(signer.store, { name: 'sign-only', scopes: ['sign'] });
    assert.equal((await signHash(signer, { walletName: 'hank@acme.com', keyIndex: 0, hash: HASH }, token)).statusCode, 200);
    assertError(await signer.app.inject({ method: 'GET', url: keysUrl('hank@acme.com', 0), headers: signer.auth(token) }), 403, 'forbidden_scope');
    assertError(await signer.app.inject({ method: 'GET', url: '/v1/wallets?walletName=hank', headers: signer.auth(token) }), 403, 'forbidden_scope');
  });

  test('a revoked key is 401 unauthorized on every route', async () => {
    const signer = await newSigner();
    const { id, token } = await createApiKey(signer.store, { name: 'to-revoke', scopes: ['register', 'derive', 'sign'] });
    const before = await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth(token) });
    assert.equal(before.statusCode, 200, before.body);

    await revokeApiKey(signer.store, id);
    assertError(await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth(token) }), 401, 'unauthorized');
    assertError(await signer.app.inject({ method: 'GET', url: '/v1/wallets?walletName=x', headers: signer.auth(token) }), 401, 'unauthorized');
    assertError(await enroll(signer, 'ivan@acme.com', token), 401, 'unauthorized');
    assertError(await signHash(signer, { walletName: 'ivan@acme.com', keyIndex: 0, hash: HASH }, token), 401, 'unauthorized');
    assertError(await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${token}` } }), 401, 'unauthorized');
    // the other key still works
    assert.equal((await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() })).statusCode, 200);
  });

  test('a missing or malformed Authorization header is 401 unauthorized', async () => {
    const signer = await newSigner();
    const key = signer.apiKey;
    const lastChar = key.at(-1) === 'A' ? 'B' : 'A';
    const headerSets: Array<Record<string, string>> = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: key },
      { authorization: `Basic ${key}` },
      { authorization: `Token ${key}` },
      { authorization: 'Bearer ck1.0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      { authorization: `Bearer ${key.slice(0, -1)}${lastChar}` },
      { authorization: `Bearer ${key}x` },
      { authorization: 'Bearer not-a-key' },
    ];
    for (const headers of headerSets) {
      const keys = await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers });
      assertError(keys, 401, 'unauthorized');
      const sign = await signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers, payload: { walletName: 'a', keyIndex: 0, hash: HASH } });
      assertError(sign, 401, 'unauthorized');
      assert.ok(!keys.body.includes(key) && !sign.body.includes(key), 'the key is not echoed');
    }
    // the same request with the right header succeeds
    assert.equal((await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() })).statusCode, 200);
  });
});

describe('sealed signer', () => {
  test('answers 503 sealed everywhere but status and unseal; unseal needs the right passphrase', async () => {
    const signer = await newSigner();
    const before = await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() });
    assert.equal(before.statusCode, 200);
    const session = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
    assert.equal(session.statusCode, 200, session.body);
    const accessToken = (session.json() as { access_token: string }).access_token;

    signer.kernel.seal();

    const status = await signer.app.inject({ method: 'GET', url: '/v1/sys/status' });
    assert.equal(status.statusCode, 200);
    assert.deepEqual(status.json(), {
      sealed: true,
      signerId: signer.signerId,
      version: KERNEL_VERSION,
      derivation: 'custos-v1',
      unsealer: { type: 'passphrase' },
      auditPublicKey: null,
    });

    const requests: InjectOptions[] = [
      { method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() },
      { method: 'GET', url: '/v1/wallets?walletName=alice', headers: signer.auth() },
      { method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'alice' } },
      { method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { walletName: 'alice', keyIndex: 0, hash: HASH } },
      { method: 'POST', url: '/v1/sign/hash', payload: 'not json at all' },
      { method: 'GET', url: '/v1/openapi.json' },
      { method: 'GET', url: '/v1/no-such-route' },
      { method: 'DELETE', url: '/v1/keys' },
      { method: 'GET', url: '/' },
      { method: 'GET', url: '/v1/sys/status/' },
      { method: 'PUT', url: '/v1/sys/unseal', payload: { passphrase: TEST_PASSPHRASE } },
      { method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } },
      {
        method: 'POST',
        url: `/sys/v1/plugins/${signer.signerId}`,
        headers: { authorization: `Bearer ${accessToken}` },
        payload: { operation: 'getPubKey', walletName: 'alice', keyIndex: '0' },
      },
    ];
    for (const request of requests) {
      const res = await signer.app.inject(request);
      assertError(res, 503, 'sealed');
      assert.ok(!res.body.includes('publicKey') && !res.body.includes('xpub'));
    }

    const wrong = await signer.app.inject({ method: 'POST', url: '/v1/sys/unseal', payload: { passphrase: `${TEST_PASSPHRASE}!` } });
    assertError(wrong, 401, 'unseal_failed');
    assert.equal((await signer.app.inject({ method: 'GET', url: '/v1/sys/status' })).json().sealed, true);
    assertError(await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() }), 503, 'sealed');

    signer.clock.now += 1_000; // a failed unseal makes the next one wait 1 s (docs/errors.md#unseal-throttled)

    const right = await signer.app.inject({ method: 'POST', url: '/v1/sys/unseal', payload: { passphrase: TEST_PASSPHRASE } });
    assert.equal(right.statusCode, 200, right.body);
    assert.deepEqual(right.json(), {
      sealed: false,
      signerId: signer.signerId,
      version: KERNEL_VERSION,
      derivation: 'custos-v1',
      unsealer: { type: 'passphrase' },
      auditPublicKey: signer.auditPublicKey,
    });

    const after = await signer.app.inject({ method: 'GET', url: keysUrl('alice@acme.com', 0), headers: signer.auth() });
    assert.equal(after.statusCode, 200, after.body);
    assert.deepEqual(after.json(), before.json());
    assert.equal((await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' })).statusCode, 200);
    assertError(await signer.app.inject({ method: 'GET', url: '/v1/no-such-route' }), 404, 'not_found');

    const twice = await signer.app.inject({ method: 'POST', url: '/v1/sys/unseal', payload: { passphrase: TEST_PASSPHRASE } });
    assertError(twice, 409, 'already_unsealed');
  });
});

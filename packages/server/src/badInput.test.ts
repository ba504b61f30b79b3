import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ErrorCode } from '@custos/kernel';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { assertWellFormed } from './testing/assertWellFormed.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

/**
 * Bad input is a 4xx with a stable code and the field named, never a 5xx: a table of known bad
 * requests per route, then a fuzz of arbitrary bodies, query strings and headers on every route.
 */

const START_MS = 1_700_000_000_000;
const HASH = 'ab'.repeat(32);
const BODY_LIMIT = 64 * 1024;

interface Case {
  name: string;
  request: InjectOptions;
  status: number;
  code: ErrorCode;
  field?: string;
}

let signer: TestSigner;
let sealedSigner: TestSigner;
let accessToken: string;
let compatUrl: string;
/** A wallet with a TOTP factor, for the code checks of the compatibility API. */
const ENROLLED = 'enrolled@acme.com';
let enrolledUri: string;
/** The code the user's app shows now for ENROLLED (the fuzz sends it sometimes). */
function currentCode(): string {
  return totpFromUri(enrolledUri, signer.clock.now);
}

before(async () => {
  signer = await createTestSigner({ startMs: START_MS });
  sealedSigner = await createTestSigner({ startMs: START_MS });
  sealedSigner.kernel.seal();
  const session = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
  assert.equal(session.statusCode, 200, session.body);
  accessToken = (session.json() as { access_token: string }).access_token;
  compatUrl = `/sys/v1/plugins/${signer.signerId}`;
  const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: ENROLLED } });
  assert.equal(enrolled.statusCode, 200, enrolled.body);
  enrolledUri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
});

after(async () => {
  await signer.close();
  await sealedSigner.close();
});

function assertCase(res: LightMyRequestResponse, expected: Pick<Case, 'status' | 'code' | 'field'>, label: string): void {
  assert.equal(res.statusCode, expected.status, `${label}: ${res.body}`);
  const body = res.json() as { error: { code: string; message: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, expected.code, `${label}: ${res.body}`);
  assert.equal(typeof body.error.message, 'string');
  if (expected.field !== undefined) assert.equal(body.error.details.field, expected.field, `${label}: ${res.body}`);
}

async function runCases(target: TestSigner, cases: Case[]): Promise<void> {
  assert.ok(cases.length > 0);
  for (const c of cases) assertCase(await target.app.inject(c.request), c, c.name);
}

// ── request builders ────────────────────────────────────────────────────────────────────────

const json = { 'content-type': 'application/json' };

/** A POST of raw text with the given content type (JSON by default) and the test key. */
function rawPost(url: string, payload: string | undefined, headers: Record<string, string> = {}): InjectOptions {
  const withBody = payload === undefined ? {} : { payload };
  return { method: 'POST', url, headers: { ...json, ...signer.auth(), ...headers }, ...withBody };
}

function jsonPost(url: string, body: unknown): InjectOptions {
  return rawPost(url, JSON.stringify(body));
}

function get(url: string): InjectOptions {
  return { method: 'GET', url, headers: signer.auth() };
}

function compat(body: unknown, headers: Record<string, string> = {}): InjectOptions {
  return { method: 'POST', url: compatUrl, headers: { authorization: `Bearer ${accessToken}`, ...headers }, payload: JSON.stringify(body) };
}

function compatRaw(payload: string | undefined, headers: Record<string, string> = {}): InjectOptions {
  const withBody = payload === undefined ? {} : { payload };
  return { method: 'POST', url: compatUrl, headers: { authorization: `Bearer ${accessToken}`, ...headers }, ...withBody };
}

/** Cases every native POST route shares: a body that is not a JSON object, not JSON, too large, of another media type. */
function bodyShapeCases(url: string): Case[] {
  const big = JSON.stringify({ walletName: 'x'.repeat(BODY_LIMIT + 1) });
  return [
    { name: `${url} malformed JSON`, request: rawPost(url, '{"walletName":'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} trailing garbage`, request: rawPost(url, '{"walletName":"a"} x'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON array`, request: rawPost(url, '[]'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON array of an object`, request: rawPost(url, '[{"walletName":"a"}]'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON string`, request: rawPost(url, '"walletName"'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON null`, request: rawPost(url, 'null'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON number`, request: rawPost(url, '42'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} JSON true`, request: rawPost(url, 'true'), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} empty JSON body`, request: rawPost(url, ''), status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} no body, no content type`, request: { method: 'POST', url, headers: signer.auth() }, status: 400, code: 'invalid_input', field: 'body' },
    { name: `${url} body > 64 KiB`, request: rawPost(url, big), status: 413, code: 'body_too_large', field: 'body' },
    {
      name: `${url} body > 64 KiB, JSON with charset`,
      request: rawPost(url, big, { 'content-type': 'application/json; charset=utf-8' }),
      status: 413,
      code: 'body_too_large',
      field: 'body',
    },
    {
      name: `${url} application/xml`,
      request: rawPost(url, '<walletName>a</walletName>', { 'content-type': 'application/xml' }),
      status: 415,
      code: 'unsupported_media_type',
      field: 'content-type',
    },
    {
      name: `${url} form-urlencoded`,
      request: rawPost(url, 'walletName=a', { 'content-type': 'application/x-www-form-urlencoded' }),
      status: 415,
      code: 'unsupported_media_type',
      field: 'content-type',
    },
    {
      name: `${url} text/plain`,
      request: rawPost(url, '{"walletName":"a","keyIndex":0,"passphrase":"p"}', { 'content-type': 'text/plain' }),
      status: 415,
      code: 'unsupported_media_type',
      field: 'content-type',
    },
    {
      name: `${url} text/plain with charset`,
      request: rawPost(url, '{"walletName":"a"}', { 'content-type': 'text/plain; charset=utf-8' }),
      status: 415,
      code: 'unsupported_media_type',
      field: 'content-type',
    },
    {
      name: `${url} octet-stream`,
      request: rawPost(url, '{"walletName":"a"}', { 'content-type': 'application/octet-stream' }),
      status: 415,
      code: 'unsupported_media_type',
      field: 'content-type',
    },
  ];
}

/** Wallet-name cases for a body field; `make` builds the rest of the body around it. */
function walletNameBodyCases(url: string, make: (walletName: unknown) => Record<string, unknown>): Case[] {
  const values: Array<[string, unknown]> = [
    ['empty', ''],
    ['257 characters', 'w'.repeat(257)],
    ['a newline', 'alice\n@acme.com'],
    ['a NUL', 'alice\u0000'],
    ['DEL', 'alice\u007f'],
    ['a lone surrogate', 'alice\ud800'],
    ['a number', 42],
    ['null', null],
    ['an array', ['alice']],
    ['an object', { name: 'alice' }],
  ];
  return values.map(([label, walletName]) => ({
    name: `${url} walletName ${label}`,
    request: jsonPost(url, make(walletName)),
    status: 400,
    code: 'invalid_input',
    field: 'walletName',
  }));
}

// ── native API ──────────────────────────────────────────────────────────────────────────────

describe('native API: bad requests are 4xx with the field named', () => {
  test('POST /v1/sys/unseal', async () => {
    const url = '/v1/sys/unseal';
    await runCases(signer, [
      ...bodyShapeCases(url),
      { name: 'missing passphrase', request: jsonPost(url, {}), status: 400, code: 'invalid_input', field: 'passphrase' },
      { name: 'passphrase a number', request: jsonPost(url, { passphrase: 1234 }), status: 400, code: 'invalid_input', field: 'passphrase' },
      { name: 'passphrase null', request: jsonPost(url, { passphrase: null }), status: 400, code: 'invalid_input', field: 'passphrase' },
      { name: 'passphrase empty', request: jsonPost(url, { passphrase: '' }), status: 400, code: 'invalid_input', field: 'passphrase' },
      { name: 'passphrase 1025 chars', request: jsonPost(url, { passphrase: 'p'.repeat(1025) }), status: 400, code: 'invalid_input', field: 'passphrase' },
      { name: 'extra field', request: jsonPost(url, { passphrase: TEST_PASSPHRASE, remember: true }), status: 400, code: 'invalid_input', field: 'remember' },
      // a well-formed request on an unsealed signer
      { name: 'already unsealed', request: jsonPost(url, { passphrase: 'anything' }), status: 409, code: 'already_unsealed' },
    ]);
  });

  test('POST /v1/sys/unseal while sealed', async () => {
    const url = '/v1/sys/unseal';
    const cases: Case[] = [
      { name: 'sealed: malformed JSON', request: { method: 'POST', url, headers: json, payload: '{' }, status: 400, code: 'invalid_input', field: 'body' },
      { name: 'sealed: array', request: { method: 'POST', url, headers: json, payload: '[]' }, status: 400, code: 'invalid_input', field: 'body' },
      {
        name: 'sealed: missing passphrase',
        request: { method: 'POST', url, headers: json, payload: '{}' },
        status: 400,
        code: 'invalid_input',
        field: 'passphrase',
      },
      {
        name: 'sealed: passphrase number',
        request: { method: 'POST', url, headers: json, payload: '{"passphrase":1}' },
        status: 400,
        code: 'invalid_input',
        field: 'passphrase',
      },
      {
        name: 'sealed: body > 64 KiB',
        request: { method: 'POST', url, headers: json, payload: JSON.stringify({ passphrase: 'p'.repeat(BODY_LIMIT) }) },
        status: 413,
        code: 'body_too_large',
        field: 'body',
      },
      {
        name: 'sealed: xml',
        request: { method: 'POST', url, headers: { 'content-type': 'application/xml' }, payload: '<p/>' },
        status: 415,
        code: 'unsupported_media_type',
        field: 'content-type',
      },
      { name: 'sealed: pin a number', request: jsonPost(url, { pin: 1234 }), status: 400, code: 'invalid_input', field: 'pin' },
      { name: 'sealed: pin empty', request: jsonPost(url, { pin: '' }), status: 400, code: 'invalid_input', field: 'pin' },
      { name: 'sealed: pin 257 chars', request: jsonPost(url, { pin: 'p'.repeat(257) }), status: 400, code: 'invalid_input', field: 'pin' },
      { name: 'sealed: pin and passphrase', request: jsonPost(url, { pin: '1234', passphrase: 'x' }), status: 400, code: 'invalid_input' },
      // a PIN for a passphrase signer: the other kind, named, before any PKCS#11 library is loaded
      { name: 'sealed: pin to a passphrase signer', request: jsonPost(url, { pin: '1234' }), status: 400, code: 'unsealer_mismatch', field: 'pin' },
      {
        name: 'sealed: wrong passphrase',
        request: { method: 'POST', url, headers: json, payload: '{"passphrase":"wrong"}' },
        status: 401,
        code: 'unseal_failed',
      },
    ];
    await runCases(sealedSigner, cases);
    assert.equal((await sealedSigner.app.inject({ method: 'GET', url: '/v1/sys/status' })).json().sealed, true);
  });

  test('POST /v1/totp/enroll', async () => {
    const url = '/v1/totp/enroll';
    await runCases(signer, [
      ...bodyShapeCases(url),
      { name: 'missing walletName', request: jsonPost(url, {}), status: 400, code: 'invalid_input', field: 'walletName' },
      ...walletNameBodyCases(url, (walletName) => ({ walletName })),
      { name: 'extra field', request: jsonPost(url, { walletName: 'new@acme.com', issuer: 'Evil' }), status: 400, code: 'invalid_input', field: 'issuer' },
      { name: 'prototype key', request: rawPost(url, '{"walletName":"proto@acme.com","__proto__":{"x":1}}'), status: 400, code: 'invalid_input' },
    ]);
    // none of these enrolled anything
    const wallet = await signer.app.inject(get('/v1/wallets?walletName=new%40acme.com'));
    assertCase(wallet, { status: 404, code: 'wallet_not_found' }, 'no wallet was created');
  });

  test('POST /v1/sign/hash', async () => {
    const url = '/v1/sign/hash';
    const good = { walletName: 'alice@acme.com', keyIndex: 0, hash: HASH };
    const without = (field: keyof typeof good) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== field));
    const cases: Case[] = [
      ...bodyShapeCases(url),
      ...walletNameBodyCases(url, (walletName) => ({ ...good, walletName })),
      { name: 'missing walletName', request: jsonPost(url, without('walletName')), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'missing keyIndex', request: jsonPost(url, without('keyIndex')), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'missing hash', request: jsonPost(url, without('hash')), status: 400, code: 'invalid_input', field: 'hash' },
      { name: 'extra field', request: jsonPost(url, { ...good, chainId: 1 }), status: 400, code: 'invalid_input', field: 'chainId' },
      { name: 'extra field msgHash', request: jsonPost(url, { ...good, msgHash: HASH }), status: 400, code: 'invalid_input', field: 'msgHash' },
    ];
    const keyIndexes: Array<[string, unknown]> = [
      ['-1', -1],
      ['2^31', 2 ** 31],
      ['2^53', 2 ** 53],
      ['1.5', 1.5],
      ['"7"', '7'],
      ['null', null],
      ['true', true],
      ['[0]', [0]],
    ];
    for (const [label, keyIndex] of keyIndexes) {
      cases.push({ name: `keyIndex ${label}`, request: jsonPost(url, { ...good, keyIndex }), status: 400, code: 'invalid_input', field: 'keyIndex' });
    }
    const hashes: Array<[string, unknown]> = [
      ['too short (31 bytes)', 'ab'.repeat(31)],
      ['too long (33 bytes)', 'ab'.repeat(33)],
      ['odd length', `${HASH}a`],
      ['non-hex', 'zz'.repeat(32)],
      ['0x and 31 bytes', `0x${'ab'.repeat(31)}`],
      ['empty', ''],
      ['spaces', ` ${HASH.slice(1)}`],
      ['a number', 12345],
      ['bytes array', Array.from({ length: 32 }, () => 0xab)],
    ];
    for (const [label, hash] of hashes) {
      cases.push({ name: `hash ${label}`, request: jsonPost(url, { ...good, hash }), status: 400, code: 'invalid_input', field: 'hash' });
    }
    const codes: Array<[string, unknown]> = [
      ["'12345'", '12345'],
      ["'1234567'", '1234567'],
      ['123456 (a number)', 123456],
      ["'12a456'", '12a456'],
      ["' 12345'", ' 12345'],
      ["'１２３４５６' (full-width digits)", '１２３４５６'],
      ['empty', ''],
      ['null', null],
    ];
    for (const [label, code] of codes) {
      cases.push({ name: `code ${label}`, request: jsonPost(url, { ...good, code }), status: 400, code: 'invalid_input', field: 'code' });
      // the same on an enrolled wallet: the format is checked before any attempt is charged
      cases.push({
        name: `code ${label}, enrolled`,
        request: jsonPost(url, { ...good, walletName: ENROLLED, code }),
        status: 400,
        code: 'invalid_input',
        field: 'code',
      });
    }
    await runCases(signer, cases);
  });

  test('GET /v1/keys', async () => {
    const q = (query: string): InjectOptions => get(`/v1/keys?${query}`);
    await runCases(signer, [
      { name: 'no query', request: get('/v1/keys'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'missing walletName', request: q('keyIndex=0'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'missing keyIndex', request: q('walletName=alice'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex -1', request: q('walletName=alice&keyIndex=-1'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex 2^31', request: q('walletName=alice&keyIndex=2147483648'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex 9999999999', request: q('walletName=alice&keyIndex=9999999999'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex 1.5', request: q('walletName=alice&keyIndex=1.5'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex abc', request: q('walletName=alice&keyIndex=abc'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex 07', request: q('walletName=alice&keyIndex=07'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex 1e3', request: q('walletName=alice&keyIndex=1e3'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex empty', request: q('walletName=alice&keyIndex='), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex " 7"', request: q('walletName=alice&keyIndex=%207'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'keyIndex twice', request: q('walletName=alice&keyIndex=1&keyIndex=2'), status: 400, code: 'invalid_input', field: 'keyIndex' },
      { name: 'walletName empty', request: q('walletName=&keyIndex=0'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName 257 chars', request: q(`walletName=${'w'.repeat(257)}&keyIndex=0`), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName with a newline', request: q('walletName=alice%0A&keyIndex=0'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName with a NUL', request: q('walletName=%00&keyIndex=0'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName twice', request: q('walletName=a&walletName=b&keyIndex=0'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'extra parameter', request: q('walletName=alice&keyIndex=0&derivation=fortanix-v1'), status: 400, code: 'invalid_input', field: 'derivation' },
    ]);
  });

  test('GET /v1/wallets', async () => {
    const q = (query: string): InjectOptions => get(`/v1/wallets?${query}`);
    await runCases(signer, [
      { name: 'no query', request: get('/v1/wallets'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName empty', request: q('walletName='), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName 257 chars', request: q(`walletName=${'w'.repeat(257)}`), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName with a newline', request: q('walletName=a%0Ab'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'walletName twice', request: q('walletName=a&walletName=b'), status: 400, code: 'invalid_input', field: 'walletName' },
      { name: 'extra parameter', request: q('walletName=alice&keyIndex=0'), status: 400, code: 'invalid_input', field: 'keyIndex' },
    ]);
  });
});

// ── compatibility API ───────────────────────────────────────────────────────────────────────

describe('compatibility API: bad requests are 4xx with the field named', () => {
  test('POST /sys/v1/session/auth', async () => {
    const url = '/sys/v1/session/auth';
    await runCases(signer, [
      { name: 'no Authorization', request: { method: 'POST', url }, status: 401, code: 'unauthorized' },
      {
        name: 'Bearer instead of Basic',
        request: { method: 'POST', url, headers: { authorization: `Bearer ${signer.apiKey}` } },
        status: 401,
        code: 'unauthorized',
      },
      { name: 'Basic garbage', request: { method: 'POST', url, headers: { authorization: 'Basic Zm9vOmJhcg==' } }, status: 401, code: 'unauthorized' },
      { name: 'Basic empty', request: { method: 'POST', url, headers: { authorization: 'Basic ' } }, status: 401, code: 'unauthorized' },
      {
        name: 'body > 64 KiB',
        request: { method: 'POST', url, headers: { authorization: `Basic ${signer.apiKey}` }, payload: 'x'.repeat(BODY_LIMIT + 1) },
        status: 413,
        code: 'body_too_large',
        field: 'body',
      },
    ]);
  });

  test('POST /sys/v1/plugins/:signerId', async () => {
    const cases: Case[] = [
      { name: 'unknown operation', request: compat({ operation: 'export', walletName: 'a' }), status: 400, code: 'invalid_input', field: 'operation' },
      { name: 'operation in other case', request: compat({ operation: 'SIGN', walletName: 'a' }), status: 400, code: 'invalid_input', field: 'operation' },
      { name: 'missing operation', request: compat({ walletName: 'a' }), status: 400, code: 'invalid_input', field: 'operation' },
      { name: 'operation a number', request: compat({ operation: 1 }), status: 400, code: 'invalid_input', field: 'operation' },
      { name: 'operation __proto__', request: compat({ operation: '__proto__' }), status: 400, code: 'invalid_input', field: 'operation' },
      { name: 'register without walletName', request: compat({ operation: 'register' }), status: 400, code: 'invalid_input', field: 'walletName' },
      {
        name: 'register walletName empty',
        request: compat({ operation: 'register', walletName: '' }),
        status: 400,
        code: 'invalid_input',
        field: 'walletName',
      },
      {
        name: 'register walletName newline',
        request: compat({ operation: 'register', walletName: 'a\nb' }),
        status: 400,
        code: 'invalid_input',
        field: 'walletName',
      },
      {
        name: 'register walletName 257',
        request: compat({ operation: 'register', walletName: 'w'.repeat(257) }),
        status: 400,
        code: 'invalid_input',
        field: 'walletName',
      },
      {
        name: 'getPubKey keyIndex abc',
        request: compat({ operation: 'getPubKey', walletName: 'a', keyIndex: 'abc' }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'getPubKey keyIndex -1',
        request: compat({ operation: 'getPubKey', walletName: 'a', keyIndex: -1 }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'getPubKey keyIndex "01"',
        request: compat({ operation: 'getPubKey', walletName: 'a', keyIndex: '01' }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'getPubKey keyIndex 1.5',
        request: compat({ operation: 'getPubKey', walletName: 'a', keyIndex: 1.5 }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'getPubKey keyIndex "2147483648"',
        request: compat({ operation: 'getPubKey', walletName: 'a', keyIndex: '2147483648' }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'getPubKey missing keyIndex',
        request: compat({ operation: 'getPubKey', walletName: 'a' }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'sign keyIndex abc',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: 'abc', msgHash: HASH }),
        status: 400,
        code: 'invalid_input',
        field: 'keyIndex',
      },
      {
        name: 'sign msgHash non-hex',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: '0', msgHash: 'zz'.repeat(32) }),
        status: 400,
        code: 'invalid_input',
        field: 'msgHash',
      },
      {
        name: 'sign msgHash short',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: '0', msgHash: 'ab'.repeat(31) }),
        status: 400,
        code: 'invalid_input',
        field: 'msgHash',
      },
      {
        name: 'sign msgHash long',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: '0', msgHash: 'ab'.repeat(33) }),
        status: 400,
        code: 'invalid_input',
        field: 'msgHash',
      },
      {
        name: 'sign msgHash number',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: '0', msgHash: 1 }),
        status: 400,
        code: 'invalid_input',
        field: 'msgHash',
      },
      {
        name: 'sign msgHash missing',
        request: compat({ operation: 'sign', walletName: 'a', keyIndex: '0' }),
        status: 400,
        code: 'invalid_input',
        field: 'msgHash',
      },
      {
        name: 'sign code a number',
        request: compat({ operation: 'sign', walletName: ENROLLED, keyIndex: '0', msgHash: HASH, code: 123456 }),
        status: 400,
        code: 'invalid_input',
        field: 'code',
      },
      {
        name: "sign code '12345', enrolled",
        request: compat({ operation: 'sign', walletName: ENROLLED, keyIndex: '0', msgHash: HASH, code: '12345' }),
        status: 400,
        code: 'invalid_input',
        field: 'code',
      },
      {
        name: "sign code '1234567', enrolled",
        request: compat({ operation: 'sign', walletName: ENROLLED, keyIndex: '0', msgHash: HASH, code: '1234567' }),
        status: 400,
        code: 'invalid_input',
        field: 'code',
      },
      {
        name: 'sign without code, enrolled',
        request: compat({ operation: 'sign', walletName: ENROLLED, keyIndex: '0', msgHash: HASH }),
        status: 403,
        code: 'code_required',
        field: 'code',
      },
      { name: 'body not JSON, text/plain', request: compatRaw('hello', { 'content-type': 'text/plain' }), status: 400, code: 'invalid_input', field: 'body' },
      {
        name: 'body not JSON, application/json',
        request: compatRaw('{"operation":', { 'content-type': 'application/json' }),
        status: 400,
        code: 'invalid_input',
        field: 'body',
      },
      {
        name: 'body not JSON, octet-stream',
        request: compatRaw('\u0000\u0001', { 'content-type': 'application/octet-stream' }),
        status: 400,
        code: 'invalid_input',
        field: 'body',
      },
      { name: 'body not JSON, no content type', request: compatRaw('operation=sign'), status: 400, code: 'invalid_input', field: 'body' },
      {
        name: 'body not JSON, form content type',
        request: compatRaw('operation=sign', { 'content-type': 'application/x-www-form-urlencoded' }),
        status: 400,
        code: 'invalid_input',
        field: 'body',
      },
      { name: 'empty body', request: compatRaw(undefined), status: 400, code: 'invalid_input', field: 'body' },
      {
        name: 'empty body, JSON content type',
        request: compatRaw('', { 'content-type': 'application/json' }),
        status: 400,
        code: 'invalid_input',
        field: 'body',
      },
      { name: 'whitespace body', request: compatRaw('  \n', { 'content-type': 'application/json' }), status: 400, code: 'invalid_input', field: 'body' },
      { name: 'body an array', request: compatRaw('[{"operation":"register","walletName":"a"}]'), status: 400, code: 'invalid_input', field: 'body' },
      { name: 'body a string', request: compatRaw('"register"'), status: 400, code: 'invalid_input', field: 'body' },
      { name: 'body null', request: compatRaw('null'), status: 400, code: 'invalid_input', field: 'body' },
      { name: 'body a number', request: compatRaw('7'), status: 400, code: 'invalid_input', field: 'body' },
      {
        name: 'body > 64 KiB',
        request: compatRaw(JSON.stringify({ operation: 'register', walletName: 'x'.repeat(BODY_LIMIT) })),
        status: 413,
        code: 'body_too_large',
        field: 'body',
      },
      {
        name: 'another signerId',
        request: { ...compat({ operation: 'getPubKey', walletName: 'a', keyIndex: '0' }), url: '/sys/v1/plugins/00000000-0000-4000-8000-000000000000' },
        status: 404,
        code: 'signer_not_found',
        field: 'signerId',
      },
      {
        name: 'signerId longer than 64',
        request: { ...compat({ operation: 'getPubKey', walletName: 'a', keyIndex: '0' }), url: `/sys/v1/plugins/${'s'.repeat(65)}` },
        status: 400,
        code: 'invalid_input',
        field: 'signerId',
      },
      {
        name: 'no bearer token',
        request: { method: 'POST', url: compatUrl, headers: json, payload: '{"operation":"register","walletName":"a"}' },
        status: 401,
        code: 'unauthorized',
      },
      {
        name: 'the API key as bearer token',
        request: {
          method: 'POST',
          url: compatUrl,
          headers: { authorization: `Bearer ${signer.apiKey}` },
          payload: '{"operation":"register","walletName":"a"}',
        },
        status: 401,
        code: 'unauthorized',
      },
      {
        name: 'unknown bearer token',
        request: {
          method: 'POST',
          url: compatUrl,
          headers: { authorization: `Bearer ${'A'.repeat(43)}` },
          payload: '{"operation":"register","walletName":"a"}',
        },
        status: 401,
        code: 'unauthorized',
      },
    ];
    await runCases(signer, cases);
  });
});

// ── fuzz ────────────────────────────────────────────────────────────────────────────────────

const RUNS = 300;
const FUZZ_TIMEOUT_MS = 120_000;

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x1f || c === 0x7f) return true;
  }
  return false;
}

function isDecodable(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** Percent-encodes arbitrary bytes (including ones that are not UTF-8). */
function percentEncode(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }));
const anyValue = fc.oneof(fc.jsonValue(), anyText);
const validWalletName = fc.oneof(
  fc.constantFrom('alice@acme.com', ENROLLED, 'ünïcødé wallet', 'w'.repeat(256), 'a:b/c?d#e%f&g=h'),
  // mostly fresh names: a wallet the fuzz has not enrolled signs without a code
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 64 })
    .filter((n) => n.length <= 256 && !hasControlCharacter(n) && n.isWellFormed()),
);
const validHash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const validKeyIndex = fc.oneof(fc.constantFrom(0, 1, 2 ** 31 - 1), fc.nat({ max: 2 ** 31 - 1 }));

/** Values for a field: mostly right, so that requests get past the schemas into the kernel, else anything. */
function field<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid, weight: 3 },
    { arbitrary: anyValue, weight: 1 },
    { arbitrary: fc.constantFrom(null, -1, 1.5, 2 ** 31, '', [], {}), weight: 1 },
  );
}

type Fields = Record<string, fc.Arbitrary<unknown>>;

/** The body fields of each route, with plausible valid values. */
const BODY_FIELDS = {
  none: {} as Fields,
  unseal: {
    passphrase: field(fc.constantFrom(TEST_PASSPHRASE, 'x', 'p'.repeat(1024))),
    // a share file's shape with arbitrary members, or anything (the signer is a passphrase signer)
    share: field(fc.oneof(fc.string({ maxLength: 200 }), fc.dictionary(fc.constantFrom('format', 'version', 'share', 'checksum', 'index'), anyValue))),
    // a PKCS#11 PIN (the signer is a passphrase signer: never a module is loaded)
    pin: field(fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom('1234', 'p'.repeat(256)))),
  } as Fields,
  enroll: { walletName: field(validWalletName) } as Fields,
  sign: {
    walletName: field(validWalletName),
    keyIndex: field(validKeyIndex),
    hash: field(
      fc.oneof(
        validHash,
        validHash.map((h) => `0x${h}`),
        validHash.map((h) => h.toUpperCase()),
      ),
    ),
    code: field(
      fc.oneof(
        fc.stringMatching(/^[0-9]{6}$/),
        fc.constant(null).map(() => currentCode()),
      ),
    ),
  } as Fields,
  compat: {
    operation: field(fc.constantFrom('register', 'getPubKey', 'sign')),
    walletName: field(validWalletName),
    keyIndex: field(fc.oneof(validKeyIndex, validKeyIndex.map(String))),
    msgHash: field(
      fc.oneof(
        validHash,
        validHash.map((h) => `0x${h}`),
      ),
    ),
    code: field(
      fc.oneof(
        fc.stringMatching(/^[0-9]{6}$/),
        fc.constant(null).map(() => currentCode()),
      ),
    ),
  } as Fields,
};

/** A body: the route's fields (all, some, or with extras), arbitrary JSON, arbitrary text, or none. */
function anyBody(fields: Fields): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { arbitrary: fc.record(fields).map((o) => JSON.stringify(o)), weight: 4 },
    { arbitrary: fc.record(fields, { requiredKeys: [] }).map((o) => JSON.stringify(o)), weight: 2 },
    {
      arbitrary: fc
        .tuple(fc.record(fields, { requiredKeys: [] }), fc.dictionary(fc.string(), anyValue, { minKeys: 1, maxKeys: 3 }))
        .map(([o, extra]) => JSON.stringify({ ...extra, ...o })),
      weight: 1,
    },
    { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)), weight: 1 },
    { arbitrary: anyText, weight: 1 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  );
}

const anyContentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 8 },
  {
    arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/xml', 'application/json; charset=latin1', 'APPLICATION/JSON'),
    weight: 1,
  },
  { arbitrary: fc.string(), weight: 1 },
  { arbitrary: fc.constant(undefined), weight: 1 },
);

function anyAuthorization(valid: () => string): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { arbitrary: fc.constant(null).map(() => valid()), weight: 8 },
    { arbitrary: fc.string().map((s) => `Bearer ${s}`), weight: 1 },
    { arbitrary: fc.string().map((s) => `Basic ${s}`), weight: 1 },
    { arbitrary: fc.string(), weight: 1 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  );
}

/** The query parameters of each route. */
const QUERY_FIELDS = {
  none: {} as Record<string, fc.Arbitrary<string>>,
  keys: {
    walletName: fc.oneof({ arbitrary: validWalletName.map(encodeURIComponent), weight: 3 }, fc.uint8Array({ maxLength: 300 }).map(percentEncode), fc.string()),
    keyIndex: fc.oneof(
      { arbitrary: validKeyIndex.map(String), weight: 3 },
      fc.nat({ max: 2 ** 32 }).map(String),
      fc.string(),
      fc.uint8Array({ maxLength: 12 }).map(percentEncode),
    ),
  },
  wallets: {
    walletName: fc.oneof({ arbitrary: validWalletName.map(encodeURIComponent), weight: 3 }, fc.uint8Array({ maxLength: 300 }).map(percentEncode), fc.string()),
  },
};

function joinQuery(o: Record<string, string>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** A query string: the route's parameters (all, some, or with extras), arbitrary text, arbitrary bytes. */
function anyQuery(fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.record(fields).map(joinQuery), weight: 4 },
    { arbitrary: fc.record({ ...fields, extra: fc.string() }, { requiredKeys: [] }).map(joinQuery), weight: 2 },
    { arbitrary: fc.string(), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 64 }).map(percentEncode), weight: 1 },
  );
}

/** Extra headers of arbitrary names and values. */
const anyHeaders = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((h) => !['content-length', 'transfer-encoding', 'host', 'content-type', 'authorization'].includes(h)),
  fc.string(),
  { maxKeys: 3 },
);

interface FuzzRequest {
  body: string | undefined;
  contentType: string | undefined;
  authorization: string | undefined;
  query: string;
  headers: Record<string, string>;
}

interface RouteShape {
  /** The body's fields; several shapes when the schema takes one of them (oneOf), one picked per request. */
  body: Fields | Fields[];
  query: Record<string, fc.Arbitrary<string>>;
}

function fuzzRequest(validAuth: () => string, shape: RouteShape): fc.Arbitrary<FuzzRequest> {
  return fc.record({
    body: Array.isArray(shape.body) ? fc.oneof(...shape.body.map(anyBody)) : anyBody(shape.body),
    contentType: anyContentType,
    authorization: anyAuthorization(validAuth),
    query: anyQuery(shape.query),
    headers: anyHeaders,
  });
}

function toInject(method: 'GET' | 'POST', path: string, r: FuzzRequest): InjectOptions {
  const headers: Record<string, string> = { ...r.headers };
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  const request: InjectOptions = { method, url: r.query === '' ? path : `${path}?${r.query}`, headers };
  if (method === 'POST' && r.body !== undefined) request.payload = r.body;
  return request;
}

/**
 * Runs RUNS arbitrary requests against one route and checks the response property. Returns the
 * statuses seen, so that a test can check the fuzz got past the schemas (a fuzz that only ever
 * meets the schema validator tests little).
 */
async function fuzzRoute(method: 'GET' | 'POST', path: string, validAuth: () => string, shape: RouteShape): Promise<Set<number>> {
  let runs = 0;
  const statuses = new Set<number>();
  await fc.assert(
    fc.asyncProperty(fuzzRequest(validAuth, shape), async (r) => {
      runs++;
      const request = toInject(method, path, r);
      const res = await signer.app.inject(request);
      statuses.add(res.statusCode);
      assertWellFormed(res, `${method} ${String(request.url)}`);
    }),
    { numRuns: RUNS },
  );
  assert.equal(runs, RUNS);
  return statuses;
}

describe('fuzz: arbitrary bodies, query strings and headers never give a 5xx', { timeout: FUZZ_TIMEOUT_MS * 12 }, () => {
  const bearer = () => `Bearer ${signer.apiKey}`;
  const none: RouteShape = { body: BODY_FIELDS.none, query: QUERY_FIELDS.none };
  // [method, path, body and query shape, statuses the fuzz must reach besides 400]
  const routes: Array<['GET' | 'POST', string, RouteShape, number[]]> = [
    ['GET', '/v1/sys/status', none, [200]],
    // the body is exactly one of passphrase, share or pin (oneOf): bodies with one of them, or all
    [
      'POST',
      '/v1/sys/unseal',
      {
        body: [BODY_FIELDS.unseal, ...Object.entries(BODY_FIELDS.unseal as Fields).map(([name, value]) => ({ [name]: value }))],
        query: QUERY_FIELDS.none,
      },
      [409],
    ],
    // the body carries one share file ({"share"}): the fuzz's shapes of one reach the handler (409: unsealed)
    ['POST', '/v1/sys/unseal/reset', { body: { share: (BODY_FIELDS.unseal as Fields).share } as Fields, query: QUERY_FIELDS.none }, [409]],
    // the fuzz's key lacks the admin scope: the signer it shares with the other routes stays unsealed
    ['POST', '/v1/sys/seal', none, [403]],
    ['POST', '/v1/totp/enroll', { body: BODY_FIELDS.enroll, query: QUERY_FIELDS.none }, [409]],
    ['GET', '/v1/keys', { body: BODY_FIELDS.none, query: QUERY_FIELDS.keys }, [200]],
    ['GET', '/v1/wallets', { body: BODY_FIELDS.none, query: QUERY_FIELDS.wallets }, [200]],
    ['POST', '/v1/sign/hash', { body: BODY_FIELDS.sign, query: QUERY_FIELDS.none }, [200]],
    ['GET', '/v1/openapi.json', none, [200]],
  ];
  for (const [method, path, shape, reached] of routes) {
    test(`${method} ${path}`, { timeout: FUZZ_TIMEOUT_MS }, async () => {
      const statuses = await fuzzRoute(method, path, bearer, shape);
      for (const status of reached) assert.ok(statuses.has(status), `the fuzz reached ${status} (saw ${[...statuses].join(', ')})`);
    });
  }

  test('POST /sys/v1/session/auth', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const statuses = await fuzzRoute('POST', '/sys/v1/session/auth', () => `Basic ${signer.apiKey}`, none);
    assert.ok(statuses.has(200) && statuses.has(401), [...statuses].join(', '));
  });

  test('POST /sys/v1/plugins/:signerId', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const statuses = await fuzzRoute('POST', compatUrl, () => `Bearer ${accessToken}`, { body: BODY_FIELDS.compat, query: QUERY_FIELDS.none });
    assert.ok(statuses.has(200), [...statuses].join(', '));
  });

  test('POST /sys/v1/plugins/:signerId with an arbitrary signerId', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    // one path segment: '/', '?' and '#' would end it; everything else goes, bad percent-encodings
    // and segments over the router's 100-character parameter limit included
    const oneSegment = (id: string) => !id.includes('/') && !id.includes('?') && !id.includes('#');
    const anyId = fc
      .oneof(
        fc.string({ maxLength: 120 }),
        fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent),
        fc.uint8Array({ maxLength: 40 }).map(percentEncode),
        fc.uuid(),
      )
      .filter(oneSegment);
    await fc.assert(
      fc.asyncProperty(anyId, anyBody(BODY_FIELDS.compat), async (id, body) => {
        const request: InjectOptions = { method: 'POST', url: `/sys/v1/plugins/${id}`, headers: { authorization: `Bearer ${accessToken}` } };
        if (body !== undefined) request.payload = body;
        const res = await signer.app.inject(request);
        assertWellFormed(res, `POST ${String(request.url)}`);
        if (res.statusCode < 400) assert.equal(isDecodable(id) ? decodeURIComponent(id) : id, signer.signerId);
      }),
      { numRuns: RUNS },
    );
  });

  test('a path that Fastify’s router refuses (bad percent-encoding, parameter > 100 characters) still gets a Custos error', async () => {
    const requests: Array<[InjectOptions, number, ErrorCode]> = [
      [{ method: 'GET', url: '/v1/%80' }, 400, 'invalid_input'],
      [{ method: 'POST', url: '/sys/v1/plugins/%E0%A4%A', headers: { authorization: `Bearer ${accessToken}` }, payload: '{}' }, 400, 'invalid_input'],
      [{ method: 'POST', url: `/sys/v1/plugins/${'s'.repeat(101)}`, headers: { authorization: `Bearer ${accessToken}` }, payload: '{}' }, 400, 'invalid_input'],
    ];
    for (const [request, status, code] of requests) {
      const res = await signer.app.inject(request);
      assertWellFormed(res, String(request.url));
      assertCase(res, { status, code }, String(request.url));
      // while sealed, the sealed answer comes first like everywhere else
      assertCase(await sealedSigner.app.inject(request), { status: 503, code: 'sealed' }, `sealed ${String(request.url)}`);
    }
  });

  test('while sealed, every route: only 503 sealed, or a 4xx from status/unseal', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const paths = [
      '/v1/sys/status',
      '/v1/sys/unseal',
      '/v1/totp/enroll',
      '/v1/keys',
      '/v1/wallets',
      '/v1/sign/hash',
      '/v1/openapi.json',
      '/sys/v1/session/auth',
      compatUrl,
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom<'GET' | 'POST'>('GET', 'POST'),
        fuzzRequest(() => `Bearer ${sealedSigner.apiKey}`, { body: { ...BODY_FIELDS.unseal, ...BODY_FIELDS.sign }, query: QUERY_FIELDS.keys }),
        async (path, method, r) => {
          const request = toInject(method, path, r);
          const res = await sealedSigner.app.inject(request);
          const opened = !sealedSigner.kernel.status().sealed;
          // seal again at once, so that one run cannot leak into the next (or into shrinking)
          sealedSigner.kernel.seal();
          assertWellFormed(res, `${method} ${path}`, { allowed5xx: ['sealed'] });
          if (path !== '/v1/sys/status' && path !== '/v1/sys/unseal') assert.equal(res.json().error.code, 'sealed', res.body);
          if (opened) {
            // the generator sometimes sends the real passphrase: only a 200 from unseal may open the signer
            assert.equal(res.statusCode, 200, res.body);
            assert.equal(`${method} ${path}`, 'POST /v1/sys/unseal');
            assert.equal((JSON.parse(String(request.payload)) as { passphrase: unknown }).passphrase, TEST_PASSPHRASE);
          }
        },
      ),
      { numRuns: RUNS },
    );
    assert.equal((await sealedSigner.app.inject({ method: 'GET', url: '/v1/sys/status' })).json().sealed, true);
  });

  test('arbitrary methods and paths', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
    const anyPath = fc.oneof(
      fc.webPath(),
      fc.uint8Array({ maxLength: 40 }).map((b) => `/v1/${percentEncode(b)}`),
      fc.uint8Array({ maxLength: 40 }).map((b) => `/sys/v1/plugins/${percentEncode(b)}`),
      fc.constantFrom('/v1/sys/status', '/v1/keys', '/v1/sign/hash', '/sys/v1/plugins/', '/v1//keys', '/v1/keys/', '/V1/KEYS'),
      fc.string().map((s) => `/v1/${encodeURIComponent(s)}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods),
        anyPath,
        fuzzRequest(bearer, { body: BODY_FIELDS.sign, query: QUERY_FIELDS.keys }),
        async (method, path, r) => {
          const request = toInject(method === 'GET' ? 'GET' : 'POST', path.startsWith('/') ? path : `/${path}`, { ...r, query: '' });
          request.method = method;
          if (method === 'GET' || method === 'OPTIONS') delete request.payload;
          assertWellFormed(await signer.app.inject(request), `${method} ${path}`);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

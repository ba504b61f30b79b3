import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { prefixUpperBound } from './stores/rows.js';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// The wallet list (issue 15 point 5, GET /v1/wallets/list, kernel/wallets.ts listWallets): a page of
// the caller's tenant's wallets in code point order from an opaque cursor, bounded by a key's wallet
// prefix in the query itself, each wallet's rows checked as GET /v1/wallets checks them. One signer
// for the file (operator key of tenant `system`, which makes the backends' keys); the clock is the test's.

const T0 = Date.UTC(2026, 11, 7, 12, 0, 15);
const HASH = `0x${'ab'.repeat(32)}`;
let signer: TestSigner;

before(async () => {
  signer = await createTestSigner({ scopes: ['admin'], startMs: T0, policyDefaults: RAW_HASHES_ALLOWED });
});
after(async () => {
  await signer.close();
});

function call(method: 'GET' | 'POST', url: string, key: string, payload?: unknown): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method, url, headers: signer.auth(key), ...(payload === undefined ? {} : { payload: payload as object }) });
}

function expectError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().error.code, code, res.body);
  if (field !== undefined) assert.equal(res.json().error.details.field, field, res.body);
}

async function createKey(body: Record<string, unknown>): Promise<string> {
  const res = await call('POST', '/v1/apikeys', signer.apiKey, body);
  assert.equal(res.statusCode, 200, res.body);
  const { token } = res.json() as { token: string };
  recordTestSecret('apiKey', token);
  return token;
}

/** Creates the wallets (a derivation creates the wallet row for the key's tenant). */
async function derive(key: string, ...names: string[]): Promise<void> {
  for (const walletName of names) {
    const res = await call('GET', `/v1/keys?${new URLSearchParams({ walletName, keyIndex: '0' })}`, key);
    assert.equal(res.statusCode, 200, res.body);
  }
}

type Page = { wallets: Array<Record<string, unknown> & { walletName: string }>; nextCursor: string | null; more: boolean };

async function list(key: string, query: { limit?: number; cursor?: string } = {}): Promise<Page> {
  const params = new URLSearchParams();
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  if (query.cursor !== undefined) params.set('cursor', query.cursor);
  const res = await call('GET', `/v1/wallets/list?${params}`, key);
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Page;
}

const names = (page: Page) => page.wallets.map((w) => w.walletName);
/** A crafted cursor: the encoding of any name (the cursor is opaque, but nothing stops a caller from making one). */
const cursorOf = (name: string) => Buffer.from(name, 'utf8').toString('base64url');

describe('GET /v1/wallets/list', () => {
  it('pages in name order with inserts between pages: a wallet created after the cursor is listed later, none twice, none skipped', async () => {
    const key = await createKey({ name: 'paging', tenant: 'wl-page', scopes: ['derive'] });
    await derive(key, 'n02', 'n04', 'n06', 'n08', 'n10');
    const seen: string[] = [];
    const first = await list(key, { limit: 2 });
    assert.deepEqual(names(first), ['n02', 'n04']);
    assert.equal(first.more, true);
    seen.push(...names(first));
    await derive(key, 'n01', 'n05'); // one behind the cursor (not listed any more), one ahead
    const second = await list(key, { limit: 2, cursor: first.nextCursor as string });
    assert.deepEqual(names(second), ['n05', 'n06']);
    seen.push(...names(second));
    await derive(key, 'n07', 'n03');
    const third = await list(key, { limit: 2, cursor: second.nextCursor as string });
    assert.deepEqual(names(third), ['n07', 'n08']);
    assert.equal(third.more, true);
    seen.push(...names(third));
    const fourth = await list(key, { limit: 2, cursor: third.nextCursor as string });
    assert.deepEqual(names(fourth), ['n10']);
    assert.equal(fourth.more, false, 'the last page says so');
    seen.push(...names(fourth));
    assert.deepEqual(seen, ['n02', 'n04', 'n05', 'n06', 'n07', 'n08', 'n10']);
    // polling from the last cursor: nothing yet, the same cursor back; then the wallet created after it
    const empty = await list(key, { cursor: fourth.nextCursor as string });
    assert.deepEqual(empty, { wallets: [], nextCursor: fourth.nextCursor, more: false });
    await derive(key, 'n11');
    assert.deepEqual(names(await list(key, { cursor: fourth.nextCursor as string })), ['n11']);
    // the default page (50) holds them all, in order; an exactly full page is not "more"
    const all = await list(key);
    assert.deepEqual(names(all), ['n01', 'n02', 'n03', 'n04', 'n05', 'n06', 'n07', 'n08', 'n10', 'n11']);
    assert.equal(all.more, false);
    assert.equal((await list(key, { limit: 10 })).more, false);
    assert.equal((await list(key, { limit: 9 })).more, true);
    assert.deepEqual(all.wallets[0], { walletName: 'n01', createdAt: T0, factors: [], frozenAt: null, lockedUntil: null, pendingChanges: 0 });
  });

  it('names in code point order (as the store compares them), also past the BMP, the cursor continuing after any of them', async () => {
    const key = await createKey({ name: 'unicode', tenant: 'wl-unicode', scopes: ['derive'] });
    // UTF-16 code unit order would put the emoji (a surrogate pair, D83D…) before U+FF21
    const expected = ['u-a', 'u-é', 'u-\uFF21', 'u-\u{1F600}', 'u-\u{1F600}x'];
    await derive(key, ...[...expected].reverse());
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await list(key, { limit: 1, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...names(page));
      if (!page.more) break;
      cursor = page.nextCursor as string;
    }
    assert.deepEqual(seen, expected);
  });

  it('the prefix bound of the store query: the least string after every name under the prefix, in code point order', () => {
    assert.equal(prefixUpperBound('shop-'), 'shop.');
    assert.equal(prefixUpperBound('a\uD7FF'), 'a\uE000', 'the surrogates are no code points: skipped');
    assert.equal(prefixUpperBound('a\u{10FFFF}'), 'b', 'the last code point dropped, the one before raised');
    assert.equal(prefixUpperBound('\u{1F600}'), '\u{1F601}');
    assert.equal(prefixUpperBound('\u{10FFFF}\u{10FFFF}'), null, 'no bound: every name from the prefix on');
    const byCodePoint = (x: string, y: string) => {
      const [a, b] = [[...x].map((c) => c.codePointAt(0) as number), [...y].map((c) => c.codePointAt(0) as number)];
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
      return a.length - b.length;
    };
    for (const [prefix, name] of [
      ['shop-', 'shop-\u{10FFFF}\u{10FFFF}'],
      ['a\uD7FF', 'a\uD7FF\u{10FFFF}'],
      ['a\u{10FFFF}', 'a\u{10FFFF}\u{10FFFF}z'],
    ] as const)
      assert.ok(byCodePoint(name, prefixUpperBound(prefix) as string) < 0, `${JSON.stringify(name)} under the bound of ${JSON.stringify(prefix)}`);
  });

  it('tenant isolation: a key sees only its tenant’s wallets, also from a crafted cursor naming the other tenant’s', async () => {
    const keyA = await createKey({ name: 'tenant a', tenant: 'wl-a', scopes: ['derive'] });
    const keyB = await createKey({ name: 'tenant b', tenant: 'wl-b', scopes: ['derive'] });
    await derive(keyA, 'iso-a1', 'iso-a2', 'iso-a3');
    await derive(keyB, 'iso-b1');
    assert.deepEqual(names(await list(keyA)), ['iso-a1', 'iso-a2', 'iso-a3']);
    assert.deepEqual(names(await list(keyB)), ['iso-b1']);
    for (const crafted of ['iso-a1', 'iso-a', 'a', '\u{10FFFF}']) {
      const page = await list(keyB, { cursor: cursorOf(crafted) });
      assert.ok(
        page.wallets.every((w) => w.walletName.startsWith('iso-b')),
        `B from cursor ${crafted}: ${names(page)}`,
      );
    }
    assert.deepEqual(names(await list(keyB, { cursor: cursorOf('iso-a1') })), ['iso-b1']);
  });

  it('a key with a wallet prefix sees only the wallets under it, pages full of them, and a crafted cursor outside it gives nothing outside', async () => {
    const full = await createKey({ name: 'shop all', tenant: 'wl-shop', scopes: ['derive'] });
    const shop = await createKey({ name: 'shop only', tenant: 'wl-shop', scopes: ['derive'], walletPrefix: 'shop-' });
    await derive(full, 'a', 'sho', 'shop', 'shop-', 'shop-1', 'shop-2', 'shop-3', 'shop.', 'shoq-1', 'Shop-1', 'zzz');
    assert.deepEqual(names(await list(shop)), ['shop-', 'shop-1', 'shop-2', 'shop-3']);
    assert.deepEqual(names(await list(full)), ['Shop-1', 'a', 'sho', 'shop', 'shop-', 'shop-1', 'shop-2', 'shop-3', 'shop.', 'shoq-1', 'zzz']);
    // bounded in the query: a page of 2 is full of the prefix's wallets, and `more` is about them alone
    const first = await list(shop, { limit: 2 });
    assert.deepEqual([names(first), first.more], [['shop-', 'shop-1'], true]);
    const last = await list(shop, { limit: 2, cursor: first.nextCursor as string });
    assert.deepEqual([names(last), last.more], [['shop-2', 'shop-3'], false]);
    // crafted cursors before, inside and after the prefix: never a wallet outside it
    const from = async (name: string) => names(await list(shop, { cursor: cursorOf(name) }));
    assert.deepEqual(await from('a'), ['shop-', 'shop-1', 'shop-2', 'shop-3']);
    assert.deepEqual(await from('Shop-1'), ['shop-', 'shop-1', 'shop-2', 'shop-3']);
    assert.deepEqual(await from('shop-1'), ['shop-2', 'shop-3']);
    assert.deepEqual(await from('shop-3'), []);
    assert.deepEqual(await from('shop.'), []);
    assert.deepEqual(await from('zzz'), []);
  });

  it('shows a wallet’s factors, its freeze, its throttle lock (only while in the future) and its pending timelocked changes', async () => {
    const key = await createKey({ name: 'states', tenant: 'wl-states', scopes: ['register', 'derive', 'sign'] });
    signer.clock.now = T0;
    await derive(key, 'st-frozen', 'st-plain');
    const frozen = await call('POST', '/v1/wallets/freeze', signer.apiKey, { walletName: 'st-frozen' });
    assert.equal(frozen.statusCode, 200, frozen.body);
    const enrolled = await call('POST', '/v1/totp/enroll', key, { walletName: 'st-locked' });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const right = totpFromUri(enrolled.json().otpauthUri as string, T0);
    const wrong = right === '000000' ? '000001' : '000000';
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/v1/sign/hash', key, { walletName: 'st-locked', keyIndex: 0, hash: HASH, code: wrong });
      assert.equal(res.json().error.code, 'code_invalid', res.body);
    }
    const byName = async () => Object.fromEntries((await list(key)).wallets.map((w) => [w.walletName, w]));
    const listed = await byName();
    assert.deepEqual(listed['st-frozen'], { walletName: 'st-frozen', createdAt: T0, factors: [], frozenAt: T0, lockedUntil: null, pendingChanges: 0 });
    assert.deepEqual(listed['st-locked'], {
      walletName: 'st-locked',
      createdAt: T0,
      factors: ['totp'],
      frozenAt: null,
      lockedUntil: T0 + 30_000,
      pendingChanges: 0,
    });
    assert.deepEqual(listed['st-plain'], { walletName: 'st-plain', createdAt: T0, factors: [], frozenAt: null, lockedUntil: null, pendingChanges: 0 });
    signer.clock.now = T0 + 30_000;
    assert.equal((await byName())['st-locked']?.lockedUntil, null, 'a lock that has run out is not shown');
    // a timelocked change counts once the owner consented (pending), not while it is only requested
    const uri = (await call('POST', '/v1/totp/enroll', key, { walletName: 'st-change' })).json().otpauthUri as string;
    const created = await signer.kernel.requestChange(await signer.kernel.authenticateApiKey(key), { walletName: 'st-change', kind: '2fa.disable' });
    recordTestSecret('changeCapability', created.capability);
    assert.equal((await byName())['st-change']?.pendingChanges, 0);
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: totpFromUri(uri, signer.clock.now) });
    assert.equal(confirmed.state, 'pending');
    assert.equal((await byName())['st-change']?.pendingChanges, 1);
    signer.clock.now = T0;
  });

  it('a wallet whose row fails its MAC is listed by name as unreadable, the rest of the page as usual (never a 5xx)', async () => {
    const key = await createKey({ name: 'tamper', tenant: 'wl-tamper', scopes: ['derive'] });
    await derive(key, 'tm-1', 'tm-2', 'tm-3');
    // a database writer gives tm-2 another row's MAC (as if it moved a wallet or dropped a factor)
    await signer.sql("UPDATE wallets SET mac = (SELECT mac FROM wallets WHERE name = 'tm-1') WHERE name = 'tm-2'");
    const page = await list(key);
    assert.deepEqual(page.wallets[1], { walletName: 'tm-2', unreadable: true });
    assert.deepEqual(
      page.wallets.map((w) => [w.walletName, w.createdAt]),
      [
        ['tm-1', T0],
        ['tm-2', undefined],
        ['tm-3', T0],
      ],
    );
    // its own read refuses it, as before
    expectError(await call('GET', '/v1/wallets?walletName=tm-2', key), 503, 'record_unreadable');
  });

  it('bad limit or cursor: 400 invalid_input naming the field; a key without derive: 403 forbidden_scope, audited', async () => {
    const key = await createKey({ name: 'bad input', tenant: 'wl-bad', scopes: ['derive'] });
    const get = (query: string, as = key) => call('GET', `/v1/wallets/list?${query}`, as);
    for (const limit of ['0', '201', '999', '1000', '-1', 'x', '1.5', ''])
      expectError(await get(`limit=${encodeURIComponent(limit)}`), 400, 'invalid_input', 'limit');
    const badCursors = [
      '', // empty
      '!!', // not base64url
      'YQ==', // padded
      'YR', // non-canonical (trailing bits) spelling of "a"
      '_w', // 0xFF: not UTF-8
      cursorOf('\u0001'), // a name no wallet can have
      cursorOf('x'.repeat(257)),
      'A'.repeat(1025),
    ];
    for (const cursor of badCursors) expectError(await get(`cursor=${encodeURIComponent(cursor)}`), 400, 'invalid_input', 'cursor');
    expectError(await get('walletName=x'), 400, 'invalid_input', 'walletName');
    const signOnly = await createKey({ name: 'sign only', tenant: 'wl-bad', scopes: ['sign'] });
    expectError(await get('', signOnly), 403, 'forbidden_scope');
    const denied = await signer.sql("SELECT decision, reason FROM audit_log WHERE action = 'wallet.list' ORDER BY seq DESC LIMIT 1");
    assert.deepEqual(denied, [{ decision: 'denied', reason: 'forbidden_scope' }]);
    expectError(await get('', 'ck1.0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 401, 'unauthorized');
  });
});

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { combine } from 'shamir-secret-sharing';
import { CustosError } from '../errors.js';
import { encodeShareFile } from './encodeShareFile.js';
import { openSealedRoot } from './openSealedRoot.js';
import { parseShareFile } from './parseShareFile.js';
import { sealRoot } from './sealRoot.js';
import { sealRootFor } from './sealRootFor.js';
import { sealRootShamir } from './sealRootShamir.js';
import type { SealedRootV2 } from './sealedRootV2.js';
import type { UnsealShare } from './unsealerTypes.js';
import { unsealRootShamir } from './unsealRootShamir.js';
import { unsealRootWithKek } from './unsealRootWithKek.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const signerId = randomUUID();
const root = random(98);
let sealed: SealedRootV2;
let files: string[];
const shares = (...indexes: number[]): UnsealShare[] => indexes.map((i) => parseShareFile(files[i - 1]));

const failed = { name: 'CustosError', code: 'unseal_failed' };

/** Every k-subset of 1..n. */
function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k), ...subsets(n - 1, k - 1).map((s) => [...s, n])];
}

describe('Shamir unsealer (sealRootShamir / unsealRootShamir)', () => {
  before(async () => {
    const out = await sealRootShamir(root, { signerId, threshold: 3, shares: 5, random });
    sealed = out.sealedRoot;
    files = out.shareFiles.map((f) => f.text);
    assert.deepEqual(
      out.shareFiles.map((f) => [f.index, f.name]),
      [1, 2, 3, 4, 5].map((i) => [i, `share-${i}.json`]),
    );
  });

  it('writes a version-2 envelope naming the set, and no share or KEK in it', () => {
    assert.equal(sealed.version, 2);
    assert.deepEqual(Object.keys(sealed.unsealer).sort(), ['shareSetId', 'shares', 'threshold', 'type']);
    assert.equal(sealed.unsealer.type, 'shamir');
    const text = JSON.stringify(sealed);
    for (const f of files) assert.ok(!text.includes((JSON.parse(f) as { share: string }).share));
  });

  it('every 3 of the 5 shares open it, in any order, to the same root', async () => {
    const all = subsets(5, 3);
    assert.equal(all.length, 10);
    for (const set of all) {
      const opened = await unsealRootShamir(sealed, signerId, shares(...set.reverse()));
      assert.deepEqual(opened, root, set.join(','));
    }
    // more than the threshold works too
    assert.deepEqual(await unsealRootShamir(sealed, signerId, shares(1, 2, 3, 4, 5)), root);
  });

  it('2 of 3 do not: refused, and even forcibly combined they give a key the AEAD rejects', async () => {
    for (const set of subsets(5, 2)) await assert.rejects(unsealRootShamir(sealed, signerId, shares(...set)), failed);
    const kek = await combine(shares(1, 2).map((s) => s.share));
    assert.throws(() => unsealRootWithKek(sealed, kek), failed);
  });

  it('a corrupted share that passes its checksum recombines into a wrong key: unseal_failed, never a wrong root', async () => {
    const bad = shares(1)[0] as UnsealShare;
    bad.share[5] = (bad.share[5] as number) ^ 0x40;
    const reparsed = parseShareFile(encodeShareFile(bad));
    await assert.rejects(unsealRootShamir(sealed, signerId, [reparsed, ...shares(2, 3)]), failed);
  });

  it('a share of another set or another signer is share_foreign, before any combining', async () => {
    const other = await sealRootShamir(root, { signerId, threshold: 3, shares: 5, random });
    const foreign = parseShareFile(other.shareFiles[0]?.text);
    await assert.rejects(unsealRootShamir(sealed, signerId, [foreign, ...shares(2, 3)]), {
      code: 'share_foreign',
      details: { field: 'share.shareSetId' },
    });
    await assert.rejects(unsealRootShamir(sealed, randomUUID(), shares(1, 2, 3)), { code: 'share_foreign', details: { field: 'share.signerId' } });
  });

  it('the same share twice is share_duplicate (by index, or the same point under another index)', async () => {
    await assert.rejects(unsealRootShamir(sealed, signerId, shares(1, 1, 2)), { code: 'share_duplicate' });
    const renumbered = parseShareFile(encodeShareFile({ ...(shares(1)[0] as UnsealShare), index: 4 }));
    await assert.rejects(unsealRootShamir(sealed, signerId, [...shares(1, 2), renumbered]), { code: 'share_duplicate' });
  });

  it('the header is authenticated: shares rewritten to match an edited threshold or set still fail the tag', async () => {
    for (const edit of [{ threshold: 2 }, { shareSetId: randomBytes(16).toString('base64') }]) {
      const edited = { ...sealed, unsealer: { ...sealed.unsealer, ...edit } };
      const matching = shares(1, 2, 3).map((s) => parseShareFile(encodeShareFile({ ...s, ...edit })));
      await assert.rejects(unsealRootShamir(edited, signerId, matching), failed, JSON.stringify(edit));
    }
    const flipped = Buffer.from(sealed.ciphertext, 'base64');
    flipped[0] = (flipped[0] as number) ^ 1;
    await assert.rejects(unsealRootShamir({ ...sealed, ciphertext: flipped.toString('base64') }, signerId, shares(1, 2, 3)), failed);
  });

  it('refuses bad parameters: N outside 2..255, M outside 2..N', async () => {
    for (const [threshold, n] of [
      [2, 1],
      [2, 256],
      [1, 3],
      [4, 3],
      [2.5, 3],
    ] as const) {
      await assert.rejects(sealRootShamir(root, { signerId, threshold, shares: n, random }), { code: 'invalid_input' });
    }
  });
});

describe('the unsealer dispatch (openSealedRoot / sealRootFor)', () => {
  it('opens each kind with its own credential only (unsealer_mismatch otherwise)', async () => {
    const passphrase = new TextEncoder().encode('pass phrase');
    const v1 = await sealRoot(root, passphrase, { random, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
    assert.deepEqual(await openSealedRoot(v1, signerId, { type: 'passphrase', passphrase }), root);
    assert.deepEqual(await openSealedRoot(sealed, signerId, { type: 'shamir', shares: shares(1, 2, 3) }), root);
    await assert.rejects(openSealedRoot(v1, signerId, { type: 'shamir', shares: shares(1, 2, 3) }), { code: 'unsealer_mismatch' });
    await assert.rejects(openSealedRoot(sealed, signerId, { type: 'passphrase', passphrase }), { code: 'unsealer_mismatch' });
  });

  it('a stored envelope that does not parse is unseal_failed (the store is damaged), not the caller’s invalid_input', async () => {
    const passphrase = new TextEncoder().encode('pass phrase');
    const v1 = (await sealRoot(root, passphrase, { random, scrypt: { N: 2 ** 10, r: 8, p: 1 } })) as unknown as Record<string, unknown>;
    const corrupt = [
      { ...v1, version: 99 },
      { ...v1, kdf: { ...(v1.kdf as object), N: 3 } },
      { ...v1, cipher: { ...(v1.cipher as object), name: 'rot13' } },
      'not an envelope',
    ];
    for (const envelope of corrupt) {
      await assert.rejects(openSealedRoot(envelope, signerId, { type: 'passphrase', passphrase }), (e: unknown) => {
        assert.ok(e instanceof CustosError, String(e));
        assert.equal(e.code, 'unseal_failed', e.message);
        assert.equal(e.details.field, 'sealedRoot');
        assert.match(e.message, /stored sealed root is unreadable/);
        return true;
      });
    }
    const v2 = { ...(sealed as unknown as Record<string, unknown>), version: 99 };
    await assert.rejects(openSealedRoot(v2, signerId, { type: 'shamir', shares: shares(1, 2, 3) }), { code: 'unseal_failed' });
    // the caller's own bad credential stays invalid_input naming it
    await assert.rejects(openSealedRoot(v1, signerId, { type: 'passphrase', passphrase: new Uint8Array(0) }), {
      code: 'invalid_input',
      details: { field: 'passphrase' },
    });
  });

  it('dispatches PKCS#11 to the HSM: a module that does not load is hsm_unavailable, another kind of credential unsealer_mismatch', async () => {
    const keyId = '0123456789abcdef0123456789abcdef';
    const pkcs11 = { ...sealed, unsealer: { type: 'pkcs11', tokenLabel: 'custos', keyLabel: 'kek', keyId } };
    await assert.rejects(openSealedRoot(pkcs11, signerId, { type: 'pkcs11', modulePath: '/nonexistent/x.so', pin: new Uint8Array([0x31]) }), {
      code: 'hsm_unavailable',
    });
    await assert.rejects(openSealedRoot(pkcs11, signerId, { type: 'passphrase', passphrase: new Uint8Array([0x31]) }), { code: 'unsealer_mismatch' });
    await assert.rejects(openSealedRoot(sealed, signerId, { type: 'pkcs11', modulePath: '/nonexistent/x.so', pin: new Uint8Array([0x31]) }), {
      code: 'unsealer_mismatch',
    });
    await assert.rejects(
      sealRootFor(root, { type: 'pkcs11', modulePath: '/nonexistent/x.so', pin: new Uint8Array([0x31]), tokenLabel: 't', keyLabel: 'k' }, { signerId, random }),
      { code: 'hsm_unavailable' },
    );
  });
});

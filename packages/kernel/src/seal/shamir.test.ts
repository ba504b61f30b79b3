// Tests of the Shamir unsealer (shamir.ts): share signatures, sealRootShamir, unsealRootShamir, and the
// unsealer dispatch (unsealers.ts) over Shamir-sealed roots.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { combine } from 'shamir-secret-sharing';
import { CustosError } from '../errors.js';
import { sealRootShamirUnsigned } from '../testing/unsignedShares.js';
import { sealRoot } from './passphrase.js';
import { type SealedRootV2, unsealRootWithKek } from './sealedRoot.js';
import { sealRootShamir, shareSignatureMessage, signShareSet, unsealRootShamir, verifyShareSignature } from './shamir.js';
import { encodeShareFile, parseShareFile } from './shareFile.js';
import { openSealedRoot, sealRootFor, type UnsealShare } from './unsealers.js';

describe('share signatures (signShareSet / verifyShareSignature)', () => {
  const base = { signerId: randomUUID(), shareSetId: randomBytes(16).toString('base64'), threshold: 2, shares: 3 };
  const unsigned = [1, 2, 3].map((index) => ({ ...base, index, share: Uint8Array.from([...randomBytes(32), index]) }));
  const forged = { name: 'CustosError', code: 'share_forged', details: { field: 'share.signature' } };

  it('signs every share with a one-time key and wipes the key it was given', () => {
    const seed = new Uint8Array(randomBytes(32));
    const expectedKey = Buffer.from(ed25519.getPublicKey(seed)).toString('base64');
    const { shareKey, signatures } = signShareSet(seed, unsigned);
    assert.equal(shareKey, expectedKey);
    assert.ok(
      seed.every((b) => b === 0),
      'the private key is wiped',
    );
    assert.equal(signatures.length, 3);
    for (const [i, share] of unsigned.entries()) verifyShareSignature({ ...share, signature: signatures[i] as Uint8Array }, shareKey);
  });

  it('wipes the key even when signing fails', () => {
    const seed = new Uint8Array(randomBytes(32));
    assert.throws(() => signShareSet(seed, [{ ...base, index: 1, share: null as unknown as Uint8Array }]));
    assert.ok(seed.every((b) => b === 0));
  });

  it('a domain-separated message over every member: any change is share_forged', () => {
    const { shareKey, signatures } = signShareSet(new Uint8Array(randomBytes(32)), unsigned);
    const good: UnsealShare = { ...(unsigned[0] as UnsealShare), signature: signatures[0] as Uint8Array };
    assert.equal(Buffer.from(shareSignatureMessage(good)).subarray(0, 16).toString('latin1'), 'custos.share.v1\0');
    const flipped = Uint8Array.from(good.share);
    flipped[0] = (flipped[0] as number) ^ 1;
    for (const edit of [
      { index: 2 },
      { threshold: 3 },
      { shares: 4 },
      { signerId: randomUUID() },
      { shareSetId: randomBytes(16).toString('base64') },
      { share: flipped },
      // another share's signature
      { signature: signatures[1] as Uint8Array },
      { signature: undefined },
    ]) {
      assert.throws(() => verifyShareSignature({ ...good, ...edit } as UnsealShare, shareKey), forged, Object.keys(edit).join());
    }
    // another set's key
    const other = signShareSet(new Uint8Array(randomBytes(32)), unsigned);
    assert.throws(() => verifyShareSignature(good, other.shareKey), forged);
    // a key that is no curve point at all
    assert.throws(() => verifyShareSignature(good, Buffer.alloc(32, 0xff).toString('base64')), forged);
    verifyShareSignature(good, shareKey);
  });
});

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

  it('writes a version-2 envelope naming the set and its signing key, and no share or KEK in it', () => {
    assert.equal(sealed.version, 2);
    assert.deepEqual(Object.keys(sealed.unsealer).sort(), ['shareKey', 'shareSetId', 'shares', 'threshold', 'type']);
    assert.equal(sealed.unsealer.type, 'shamir');
    const text = JSON.stringify(sealed);
    for (const f of files) assert.ok(!text.includes((JSON.parse(f) as { share: string }).share));
    for (const f of files) assert.equal((JSON.parse(f) as { version: number }).version, 2);
  });

  it('the one-time signing key: drawn from the CSPRNG given, its public key in the header, the private key nowhere', async () => {
    const draws: Uint8Array[] = [];
    const recording = (n: number): Uint8Array => {
      const bytes = random(n);
      draws.push(Uint8Array.from(bytes));
      return bytes;
    };
    const out = await sealRootShamir(root, { signerId, threshold: 2, shares: 3, random: recording });
    // kek, shareSetId, the signing key, the IV — in that order
    assert.deepEqual(
      draws.map((d) => d.length),
      [32, 16, 32, 12],
    );
    const seed = draws[2] as Uint8Array;
    assert.equal(out.sealedRoot.unsealer.type === 'shamir' && out.sealedRoot.unsealer.shareKey, Buffer.from(ed25519.getPublicKey(seed)).toString('base64'));
    // neither the private key nor anything derived from it but the public key is in the outputs
    const outputs = [JSON.stringify(out.sealedRoot), ...out.shareFiles.map((f) => f.text)].join('\n');
    for (const encoding of ['base64', 'hex', 'base64url'] as const) assert.ok(!outputs.includes(Buffer.from(seed).toString(encoding)), encoding);
    const { head } = ed25519.utils.getExtendedPublicKey(seed);
    assert.ok(!outputs.includes(Buffer.from(head).toString('base64')) && !outputs.includes(Buffer.from(head).toString('hex')));
    // the signatures verify under the header's key (parsed, and opened)
    const parsed = out.shareFiles.map((f) => parseShareFile(f.text));
    assert.deepEqual(await unsealRootShamir(out.sealedRoot, signerId, parsed.slice(0, 2)), root);
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

  it('a forged share (valid checksum, right set, new bytes) or an altered one is share_forged, before any combining', async () => {
    const forged = { code: 'share_forged', details: { field: 'share.signature' } };
    const bad = shares(1)[0] as UnsealShare;
    bad.share[5] = (bad.share[5] as number) ^ 0x40;
    await assert.rejects(unsealRootShamir(sealed, signerId, [parseShareFile(encodeShareFile(bad)), ...shares(2, 3)]), forged);
    const { signature: _s, ...unsigned } = shares(1)[0] as UnsealShare;
    const fresh = { ...unsigned, share: Uint8Array.from([...randomBytes(32), 1]) };
    await assert.rejects(unsealRootShamir(sealed, signerId, [parseShareFile(encodeShareFile(fresh)), ...shares(2, 3)]), forged, 'unsigned (version 1)');
    await assert.rejects(
      unsealRootShamir(sealed, signerId, [parseShareFile(encodeShareFile({ ...fresh, signature: new Uint8Array(randomBytes(64)) })), ...shares(2, 3)]),
      forged,
    );
  });

  it('an unsigned set (made before shares were signed): a corrupted share recombines into a wrong key, unseal_failed, never a wrong root', async () => {
    const legacy = await sealRootShamirUnsigned(root, { signerId, threshold: 3, shares: 5, random });
    assert.deepEqual(Object.keys(legacy.sealedRoot.unsealer).sort(), ['shareSetId', 'shares', 'threshold', 'type']);
    const legacyShares = legacy.shareFiles.map((f) => parseShareFile(f.text));
    assert.deepEqual(await unsealRootShamir(legacy.sealedRoot, signerId, legacyShares.slice(0, 3)), root);
    const bad = { ...(legacyShares[0] as UnsealShare), share: Uint8Array.from((legacyShares[0] as UnsealShare).share) };
    bad.share[5] = (bad.share[5] as number) ^ 0x40;
    await assert.rejects(unsealRootShamir(legacy.sealedRoot, signerId, [parseShareFile(encodeShareFile(bad)), ...legacyShares.slice(1, 3)]), failed);
    // a signed share offered for an unsigned set is refused too
    const signed = { ...(legacyShares[0] as UnsealShare), signature: new Uint8Array(randomBytes(64)) };
    await assert.rejects(unsealRootShamir(legacy.sealedRoot, signerId, [signed, ...legacyShares.slice(1, 3)]), { code: 'share_forged' });
    // the same point under another index: share_duplicate (an unsigned set has no signature to catch it)
    const renumbered = parseShareFile(encodeShareFile({ ...(legacyShares[0] as UnsealShare), index: 4 }));
    await assert.rejects(unsealRootShamir(legacy.sealedRoot, signerId, [...legacyShares.slice(0, 2), renumbered]), { code: 'share_duplicate' });
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

  it('the same share twice is share_duplicate; the same point under another index is share_forged (the index is signed)', async () => {
    await assert.rejects(unsealRootShamir(sealed, signerId, shares(1, 1, 2)), { code: 'share_duplicate' });
    const renumbered = parseShareFile(encodeShareFile({ ...(shares(1)[0] as UnsealShare), index: 4 }));
    await assert.rejects(unsealRootShamir(sealed, signerId, [...shares(1, 2), renumbered]), { code: 'share_forged' });
  });

  it('the header is authenticated: a database writer who swaps the signing key and re-signs edited shares still fails the tag', async () => {
    for (const edit of [{ threshold: 2 }, { shareSetId: randomBytes(16).toString('base64') }, {}]) {
      const matching = shares(1, 2, 3).map(({ signature: _s, ...s }) => ({ ...s, ...edit }));
      const { shareKey, signatures } = signShareSet(new Uint8Array(randomBytes(32)), matching);
      const edited = { ...sealed, unsealer: { ...sealed.unsealer, ...edit, shareKey } };
      const resigned = matching.map((s, i) => parseShareFile(encodeShareFile({ ...s, signature: signatures[i] as Uint8Array })));
      await assert.rejects(unsealRootShamir(edited, signerId, resigned), failed, JSON.stringify(edit));
    }
    // the key removed (a downgrade to an unsigned set) with unsigned shares: the tag fails too
    const { shareKey: _k, ...stripped } = sealed.unsealer as { shareKey?: string };
    const unsignedShares = shares(1, 2, 3).map(({ signature: _s, ...s }) => parseShareFile(encodeShareFile(s)));
    await assert.rejects(unsealRootShamir({ ...sealed, unsealer: stripped }, signerId, unsignedShares), failed);
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

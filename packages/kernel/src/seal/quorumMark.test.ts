// store-independent: seals and opens envelopes in memory (passphrase and Shamir); no store
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { type SealedRoot, type SealedRootV2, sealedRootQuorum } from './sealedRoot.js';
import { parseShareFile } from './shareFile.js';
import { openSealedRoot, sealRootFor, sealRootWithQuorumMark, type UnsealCredential } from './unsealers.js';

// Issue 13 point 4 (review finding 1): "an admin quorum is configured" is a mark in the sealed
// root's authenticated header. A database writer who removes it (to switch the quorum off) or adds
// it leaves an envelope that no longer opens; the bootstrap marks an existing root without changing
// what the operators hold (the same passphrase, the same shares).

const random = (n: number) => new Uint8Array(randomBytes(n));
const scrypt = { N: 2 ** 10, r: 8, p: 1 };
const unsealFailed = { code: 'unseal_failed' };

describe('the quorum mark of a sealed root', () => {
  it('passphrase (version 1): marked at seal, carried by a re-seal; removing, adding or changing the mark fails the open', async () => {
    const signerId = randomUUID();
    const root = random(67);
    const passphrase = new TextEncoder().encode('correct horse');
    const credential: UnsealCredential = { type: 'passphrase', passphrase };
    const plain = (await sealRootFor(root, { type: 'passphrase', passphrase, scrypt }, { signerId, random })).sealedRoot as SealedRoot;
    assert.equal(sealedRootQuorum(plain), false);
    assert.equal('quorum' in plain, false, 'an unmarked envelope keeps the format it always had');
    const marked = (await sealRootWithQuorumMark(plain, signerId, credential, random)) as SealedRoot;
    assert.equal(sealedRootQuorum(marked), true);
    assert.deepEqual(marked.kdf.N, plain.kdf.N);
    assert.deepEqual(await openSealedRoot(marked, signerId, credential), root, 'the same passphrase opens it to the same root');
    assert.equal(await sealRootWithQuorumMark(marked, signerId, credential, random), marked, 'marked once');
    // the database writer's edits
    const { quorum: _removed, ...stripped } = marked;
    await assert.rejects(openSealedRoot(stripped, signerId, credential), unsealFailed);
    await assert.rejects(openSealedRoot({ ...plain, quorum: true }, signerId, credential), unsealFailed);
    for (const other of [false, 'true', 1, null]) {
      await assert.rejects(openSealedRoot({ ...marked, quorum: other }, signerId, credential), unsealFailed);
      assert.throws(() => sealedRootQuorum({ ...marked, quorum: other }), { code: 'invalid_input' });
    }
    // a wrong passphrase marks nothing
    await assert.rejects(sealRootWithQuorumMark(plain, signerId, { type: 'passphrase', passphrase: new TextEncoder().encode('wrong') }, random), unsealFailed);
    // sealed marked from the start (custos init --admin)
    const atInit = (await sealRootFor(root, { type: 'passphrase', passphrase, scrypt }, { signerId, random, quorum: true })).sealedRoot;
    assert.equal(sealedRootQuorum(atInit), true);
    assert.deepEqual(await openSealedRoot(atInit, signerId, credential), root);
  });

  it('Shamir (version 2): the bootstrap marks the root under the same KEK, so the operators’ shares keep working; the mark cannot be stripped', async () => {
    const signerId = randomUUID();
    const root = random(67);
    const sealed = await sealRootFor(root, { type: 'shamir', threshold: 2, shares: 3 }, { signerId, random });
    const shares = (...i: number[]) => ({ type: 'shamir' as const, shares: i.map((n) => parseShareFile(sealed.shareFiles[n - 1]?.text ?? '')) });
    const marked = (await sealRootWithQuorumMark(sealed.sealedRoot, signerId, shares(1, 2), random)) as SealedRootV2;
    assert.equal(sealedRootQuorum(marked), true);
    assert.deepEqual(marked.unsealer, (sealed.sealedRoot as SealedRootV2).unsealer, 'the same share set');
    assert.deepEqual(await openSealedRoot(marked, signerId, shares(2, 3)), root, 'other shares of the same set open it');
    const { quorum: _removed, ...stripped } = marked;
    await assert.rejects(openSealedRoot(stripped, signerId, shares(1, 3)), unsealFailed);
    await assert.rejects(openSealedRoot({ ...sealed.sealedRoot, quorum: true }, signerId, shares(1, 3)), unsealFailed);
    const atInit = await sealRootFor(root, { type: 'shamir', threshold: 2, shares: 2 }, { signerId, random, quorum: true });
    assert.equal(sealedRootQuorum(atInit.sealedRoot), true);
  });
});

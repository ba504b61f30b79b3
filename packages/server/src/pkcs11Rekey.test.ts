import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type App,
  bootstrapQuorumOffline,
  destroyKek,
  generateAdminKey,
  openSealedRoot,
  describeUnsealer,
  initializeSigner,
  Kernel,
  openPkcs11Token,
  rekeySigner,
  type UnsealCredential,
  type UnsealerSpec,
} from '@custos/kernel';
import { freshTokenLabel, softHsmForTests } from '@custos/kernel/testing/softHsm';
import { mnemonicToSeedSync } from '@scure/bip39';
import pkcs11js from 'pkcs11js';
import { type OpenedStore, openStore, type StoreLocation } from './openStore.js';
import { dropTestSchema, freshTestStoreLocation, recordTestSecret, TEST_MNEMONIC } from './testing/createTestSigner.js';

// rekeySigner with the PKCS#11 unsealer, on the store of the pass and a real SoftHSM2 token: what
// happens to the HSM keys when a rekey loses the compare-and-swap, or cannot destroy the old key
// (the crash matrix is in packages/cli/src/hsm.test.ts, with the real binary).

const { hsm, skip } = softHsmForTests();
const TOKEN = freshTokenLabel('rekey');
const PIN = `pin-${randomBytes(12).toString('base64url')}`;
recordTestSecret('pkcs11 user PIN', PIN);
const MODULE = hsm?.modulePath ?? '';
const pin = () => new TextEncoder().encode(PIN);
const credential = (): UnsealCredential => ({ type: 'pkcs11', modulePath: MODULE, pin: pin() });
const spec = (keyLabel: string): UnsealerSpec => ({ type: 'pkcs11', modulePath: MODULE, pin: pin(), tokenLabel: TOKEN, keyLabel });
const DERIVER: App = { id: 'rekey-test', name: 'rekey-test', tenant: 'default', scopes: ['derive'] };

/** The CKA_IDs (hex) of the AES keys labelled `keyLabel` on the token. */
function keyIds(keyLabel: string): string[] {
  const token = openPkcs11Token({ modulePath: MODULE, tokenLabel: TOKEN, pin: pin() });
  try {
    const { module, session } = token.use();
    module.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ]);
    const handles = module.C_FindObjects(session, 32);
    module.C_FindObjectsFinal(session);
    return handles.map((h) => (module.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_ID }])[0]?.value ?? Buffer.alloc(0)).toString('hex')).sort();
  } finally {
    token.close();
  }
}

const stores: Array<{ location: StoreLocation; store: OpenedStore }> = [];
after(async () => {
  for (const { location, store } of stores.splice(0)) {
    await store.close();
    if ('url' in location) await dropTestSchema(location.url);
  }
});

async function newSigner(keyLabel: string): Promise<OpenedStore> {
  const location = freshTestStoreLocation();
  const store = await openStore(location);
  stores.push({ location, store });
  await initializeSigner({ store, unsealer: spec(keyLabel), master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) }, derivation: 'custos-v1' });
  return store;
}

async function keyIdOf(store: OpenedStore): Promise<string> {
  const info = describeUnsealer((await store.getMeta())?.sealedRoot);
  assert.equal(info.type, 'pkcs11');
  return info.type === 'pkcs11' ? info.keyId : '';
}

async function addressWith(store: OpenedStore, unseal: UnsealCredential): Promise<string> {
  const kernel = await Kernel.open({ store });
  try {
    await kernel.unsealWith(unseal);
    return (await kernel.getPublicKey(DERIVER, { walletName: 'alice', keyIndex: 0 })).address;
  } finally {
    kernel.seal();
  }
}

describe('rekeySigner with PKCS#11 (SoftHSM2, store of the pass)', { skip }, () => {
  before(() => hsm?.initToken(TOKEN, { soPin: `so-${randomBytes(6).toString('hex')}`, pin: PIN }));

  it('a rekey that loses the compare-and-swap destroys the key it generated (no orphan); the winner stands', async () => {
    const store = await newSigner('race-old');
    const address = await addressWith(store, credential());
    const oldId = await keyIdOf(store);
    const pass = new TextEncoder().encode(`pp-${randomBytes(9).toString('hex')}`);
    recordTestSecret('rekey race passphrase', Buffer.from(pass).toString('utf8'));
    await assert.rejects(
      rekeySigner({
        store,
        current: credential(),
        next: spec('race-new'),
        // Another rekey (to a passphrase) completes while this one holds its new, sealed envelope.
        onStep: async (step) => {
          if (step !== 'sealed') return;
          assert.equal(keyIds('race-new').length, 1, 'the new key exists before the swap');
          const other = await rekeySigner({ store, current: credential(), next: { type: 'passphrase', passphrase: pass, scrypt: { N: 2 ** 10, r: 8, p: 1 } } });
          assert.equal(other.oldKey?.destroyed, true);
        },
      }),
      { name: 'CustosError', code: 'sealed_root_changed' },
    );
    assert.deepEqual(keyIds('race-new'), [], 'the losing rekey destroyed its new key');
    assert.deepEqual(keyIds('race-old'), [], 'the winner destroyed the old key');
    assert.ok(!keyIds('race-old').includes(oldId));
    assert.equal(describeUnsealer((await store.getMeta())?.sealedRoot).type, 'passphrase');
    assert.equal(await addressWith(store, { type: 'passphrase', passphrase: pass }), address);
  });

  it('an old key that cannot be destroyed after the swap is reported, not fatal; the audit record names the new key, never the PIN', async () => {
    const store = await newSigner('stuck-old');
    const address = await addressWith(store, credential());
    const oldId = await keyIdOf(store);
    const result = await rekeySigner({
      store,
      current: credential(),
      next: spec('stuck-new'),
      // The old key vanishes between the seal and the swap (an operator deleted it): destroying it fails.
      onStep: (step) => {
        if (step !== 'sealed') return;
        const token = openPkcs11Token({ modulePath: MODULE, tokenLabel: TOKEN, pin: pin() });
        try {
          destroyKek(token, oldId);
        } finally {
          token.close();
        }
      },
    });
    const newId = await keyIdOf(store);
    assert.notEqual(newId, oldId);
    assert.deepEqual(result.oldKey, {
      tokenLabel: TOKEN,
      keyLabel: 'stuck-old',
      keyId: oldId,
      destroyed: false,
      reason: `not_found: PKCS#11: no AES key with CKA_ID ${oldId} on token ${JSON.stringify(TOKEN)}`,
    });
    assert.equal(await addressWith(store, credential()), address);
    const records = await store.readAudit(0, 1000);
    const rekey = records.filter((r) => r.action === 'sys.rekey');
    assert.equal(rekey.length, 1);
    assert.deepEqual(rekey[0]?.detail, { from: 'pkcs11', to: 'pkcs11', tokenLabel: TOKEN, keyLabel: 'stuck-new', keyId: newId });
    assert.ok(!JSON.stringify(records).includes(PIN));
  });

  it('admin bootstrap marks the sealed root under the same HSM key (no new key); the mark cannot be stripped (issue 13)', async () => {
    const store = await newSigner('mark');
    const address = await addressWith(store, credential());
    const keyId = await keyIdOf(store);
    const before = (await store.getMeta())?.sealedRoot as Record<string, unknown>;
    assert.equal(before.quorum, undefined);
    await bootstrapQuorumOffline({
      store,
      credential: credential(),
      quorum: {
        threshold: 1,
        admins: [
          { publicKey: generateAdminKey().publicKey, email: 'a@example.com' },
          { publicKey: generateAdminKey().publicKey, email: 'b@example.com' },
        ],
      },
    });
    const marked = (await store.getMeta())?.sealedRoot as Record<string, unknown>;
    assert.equal(marked.quorum, true);
    assert.equal(await keyIdOf(store), keyId, 'the same HSM key');
    assert.deepEqual(keyIds('mark'), [keyId], 'no key generated');
    assert.equal(await addressWith(store, credential()), address);
    const { quorum: _mark, ...stripped } = marked;
    await assert.rejects(openSealedRoot(stripped, String((await store.getMeta())?.signerId), credential()), { code: 'unseal_failed' });
  });
});

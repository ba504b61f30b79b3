// Worker thread of the fixture builder: for ranges of bench wallets, seals each TOTP secret
// (encryptRecord, as Kernel.enrollTotp) and computes the MACs of the wallet and factor rows under
// its own Barrier (opened from the root as Kernel.unseal does), while the main thread writes the
// previous range to the store.
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { Barrier, canonicalJson, decodeRootKeyring, encryptRecord, wipeRootKeyring } from '@custos/kernel';
import { totpSecret, walletName } from './totp.mjs';

const keyring = decodeRootKeyring(new Uint8Array(workerData.root));
const barrier = new Barrier(keyring, workerData.derivation);
const barrierKey = Uint8Array.from(keyring.barrierKey);
wipeRootKeyring(keyring);
const benchKey = Buffer.from(workerData.benchKey);
const tenant = workerData.tenant;

// The MACed bytes of a new wallet's rows, as the kernel's macWallet (kernel/walletRecord.ts) and macFactorRecord (consent/consent.ts) make them
// (packages/kernel, the wallet record module): canonical JSON under a label per kind of row. A
// change there shows here as every bench sign refused `record_unreadable`.
const WALLET_MAC_LABEL = 'custos.wallet.v1';
const FACTOR_MAC_LABEL = 'custos.factor.v1';
const TOTP_FACTOR = { kind: 'totp', id: 'totp', version: 1 };
const encoder = new TextEncoder();
const walletMac = (name) => barrier.macRecord(WALLET_MAC_LABEL, encoder.encode(canonicalJson({ tenant, name, factors: [TOTP_FACTOR] })));
const factorMac = (name, secretEnvelope) =>
  barrier.macRecord(
    FACTOR_MAC_LABEL,
    encoder.encode(canonicalJson({ ...TOTP_FACTOR, walletName: name, secretEnvelope, lastAcceptedStep: null, failures: 0, lockedUntilMs: null })),
  );

// CSPRNG bytes drawn 64 KiB at a time: a randomBytes() call per 12-byte IV costs ~7 µs here,
// more than the AES-GCM itself.
let pool = randomBytes(65536);
let at = 0;
const random = (n) => {
  if (at + n > pool.length) {
    pool = randomBytes(65536);
    at = 0;
  }
  const out = new Uint8Array(pool.subarray(at, at + n));
  at += n;
  return out;
};

parentPort.on('message', ({ from, to }) => {
  if (from === undefined) {
    barrierKey.fill(0);
    barrier.wipe();
    parentPort.close();
    return;
  }
  const names = new Array(to - from);
  const envelopes = new Array(to - from);
  const walletMacs = new Array(to - from);
  const factorMacs = new Array(to - from);
  for (let i = from; i < to; i++) {
    const name = walletName(i);
    const secret = new Uint8Array(totpSecret(benchKey, name));
    const envelope = encryptRecord(barrierKey, `totp:${name}`, secret, random);
    secret.fill(0);
    names[i - from] = name;
    envelopes[i - from] = envelope;
    walletMacs[i - from] = walletMac(name);
    factorMacs[i - from] = factorMac(name, envelope);
  }
  parentPort.postMessage({ from, to, names, envelopes, walletMacs, factorMacs });
});

// Worker thread of the fixture builder: seals TOTP secrets (encryptRecord, as Kernel.enrollTotp)
// for ranges of bench wallets while the main thread writes the previous range to the store.
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { encryptRecord } from '@custos/kernel';
import { totpSecret, walletName } from './totp.mjs';

const barrierKey = new Uint8Array(workerData.barrierKey);
const benchKey = Buffer.from(workerData.benchKey);
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
    parentPort.close();
    return;
  }
  const names = new Array(to - from);
  const envelopes = new Array(to - from);
  for (let i = from; i < to; i++) {
    const name = walletName(i);
    const secret = new Uint8Array(totpSecret(benchKey, name));
    names[i - from] = name;
    envelopes[i - from] = encryptRecord(barrierKey, `totp:${name}`, secret, random);
    secret.fill(0);
  }
  parentPort.postMessage({ from, to, names, envelopes });
});

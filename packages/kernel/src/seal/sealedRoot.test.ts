// Tests of the sealed-root envelope (sealedRoot.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SealedRootHeader, sealedRootAad } from './sealedRoot.js';

const header: SealedRootHeader = {
  format: 'custos.sealed-root',
  version: 1,
  kdf: { name: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(32, 7).toString('base64') },
  cipher: { name: 'aes-256-gcm', iv: Buffer.alloc(12, 9).toString('base64') },
};

describe('sealedRootAad', () => {
  it('is deterministic and independent of member order', () => {
    const reordered = JSON.parse(
      JSON.stringify({ cipher: { iv: header.cipher.iv, name: header.cipher.name }, kdf: { ...header.kdf }, version: 1, format: header.format }),
    ) as SealedRootHeader;
    assert.deepEqual(sealedRootAad(header), sealedRootAad(reordered));
  });

  it('changes when any header field changes', () => {
    const base = Buffer.from(sealedRootAad(header)).toString('hex');
    const variants: SealedRootHeader[] = [
      { ...header, format: 'custos.sealed-rooT' as 'custos.sealed-root' },
      { ...header, version: 2 as 1 },
      { ...header, kdf: { ...header.kdf, name: 'scrypT' as 'scrypt' } },
      { ...header, kdf: { ...header.kdf, N: 2048 } },
      { ...header, kdf: { ...header.kdf, r: 7 } },
      { ...header, kdf: { ...header.kdf, p: 2 } },
      { ...header, kdf: { ...header.kdf, salt: Buffer.alloc(32, 6).toString('base64') } },
      { ...header, cipher: { ...header.cipher, name: 'aes-256-gcM' as 'aes-256-gcm' } },
      { ...header, cipher: { ...header.cipher, iv: Buffer.alloc(12, 8).toString('base64') } },
    ];
    const seen = new Set([base]);
    for (const variant of variants) {
      const aad = Buffer.from(sealedRootAad(variant)).toString('hex');
      assert.ok(!seen.has(aad));
      seen.add(aad);
    }
  });

  it('does not let one field run into the next (N=10, r=24 vs N=102, r=4)', () => {
    const a = sealedRootAad({ ...header, kdf: { ...header.kdf, N: 10, r: 24 } });
    const b = sealedRootAad({ ...header, kdf: { ...header.kdf, N: 102, r: 4 } });
    assert.notDeepEqual(a, b);
  });
});

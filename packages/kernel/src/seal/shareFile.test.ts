// Tests of the share file format (shareFile.ts): encodeShareFile, parseShareFile.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeShareFile, parseShareFile, shareFileChecksum } from './shareFile.js';
import type { UnsealShare } from './unsealers.js';

const share: UnsealShare = {
  signerId: randomUUID(),
  shareSetId: randomBytes(16).toString('base64'),
  index: 2,
  threshold: 2,
  shares: 3,
  share: Uint8Array.from([...randomBytes(32), 77]),
  // the parser checks the signature's form only (its verification is assertShareBelongs's)
  signature: new Uint8Array(randomBytes(64)),
};
const text = encodeShareFile(share);
/** The same share as a set made before shares were signed wrote it: version 1, no signature. */
const { signature: _signature, ...unsigned } = share;
const legacyText = encodeShareFile(unsigned);

const invalid = (field: string) => ({ name: 'CustosError', code: 'share_invalid', details: { field } });

/** The file as JSON, edited, re-encoded with a fresh (valid) checksum: the checksum cannot catch it. */
function resigned(edit: (o: Record<string, unknown>) => void): string {
  const o = JSON.parse(text) as Record<string, unknown>;
  edit(o);
  const { checksum: _old, ...body } = o;
  return JSON.stringify({ ...body, checksum: shareFileChecksum(body as unknown as Parameters<typeof shareFileChecksum>[0]) });
}

describe('share files (encodeShareFile / parseShareFile)', () => {
  it('round-trips every member, the share bytes into a fresh buffer', () => {
    const parsed = parseShareFile(text);
    assert.deepEqual(
      { ...parsed, share: [...parsed.share], signature: [...(parsed.signature ?? [])] },
      { ...share, share: [...share.share], signature: [...(share.signature ?? [])] },
    );
    assert.notEqual(parsed.share, share.share);
    const o = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(o), ['format', 'version', 'signerId', 'shareSetId', 'index', 'threshold', 'shares', 'share', 'signature', 'checksum']);
    assert.equal(o.format, 'custos.unseal-share');
    assert.equal(o.version, 2);
  });

  it('still reads a version-1 (unsigned) file, the format of a set made before shares were signed', () => {
    const o = JSON.parse(legacyText) as Record<string, unknown>;
    assert.deepEqual(Object.keys(o), ['format', 'version', 'signerId', 'shareSetId', 'index', 'threshold', 'shares', 'share', 'checksum']);
    assert.equal(o.version, 1);
    const parsed = parseShareFile(legacyText);
    assert.equal(parsed.signature, undefined);
    assert.deepEqual({ ...parsed, share: [...parsed.share] }, { ...unsigned, share: [...unsigned.share] });
  });

  it('a typo anywhere is refused (checksum), or — whitespace only — reads the same share', () => {
    fc.assert(
      fc.property(fc.nat({ max: text.length - 1 }), fc.integer({ min: 0x20, max: 0x7e }), (at, code) => {
        const typo = `${text.slice(0, at)}${String.fromCharCode(code)}${text.slice(at + 1)}`;
        if (typo === text) return;
        try {
          const parsed = parseShareFile(typo);
          // only a change JSON ignores (whitespace between tokens) may pass, and it reads the same
          assert.deepEqual({ ...parsed, share: [...parsed.share] }, { ...share, share: [...share.share] });
          assert.match(text[at] ?? '', /\s/);
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'share_invalid');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a flipped share byte is caught by the checksum, naming it', () => {
    const o = JSON.parse(text) as Record<string, string>;
    const bytes = Buffer.from(o.share ?? '', 'base64');
    bytes[0] = (bytes[0] as number) ^ 1;
    assert.throws(() => parseShareFile(JSON.stringify({ ...o, share: bytes.toString('base64') })), invalid('share.checksum'));
  });

  it('a truncated file, a non-object, an empty or oversized text is refused', () => {
    for (const cut of [1, 10, text.length / 2, text.length - 3]) assert.throws(() => parseShareFile(text.slice(0, cut)), invalid('share.file'));
    for (const bad of ['', '[]', 'null', '"x"', 'x'.repeat(5000)]) assert.throws(() => parseShareFile(bad), invalid('share.file'));
    assert.throws(() => parseShareFile(42), invalid('share.file'));
  });

  it('members are checked one by one, named, before the checksum', () => {
    const share = String((JSON.parse(text) as { share: string }).share);
    // [member, new value (undefined: removed), the field named]
    const cases: Array<[string, unknown, string]> = [
      ['format', 'custos.sealed-root', 'share.format'],
      ['version', 3, 'share.version'],
      // version 2 without its signature, or with one of the wrong length; version 1 with one
      ['signature', undefined, 'share.signature'],
      ['signature', Buffer.alloc(63, 1).toString('base64'), 'share.signature'],
      ['signature', Buffer.alloc(65, 1).toString('base64'), 'share.signature'],
      ['version', 1, 'share.signature'],
      ['signerId', 'not-a-uuid', 'share.signerId'],
      ['shareSetId', 'AAAA', 'share.shareSetId'],
      ['index', 0, 'share.index'],
      ['index', 4, 'share.index'],
      ['threshold', 4, 'share.threshold'],
      ['threshold', 1, 'share.threshold'],
      ['shares', 256, 'share.shares'],
      ['share', Buffer.alloc(32, 1).toString('base64'), 'share.share'],
      ['share', `${share.slice(0, -2)}==`, 'share.share'],
      // x coordinate 0 would be the secret itself
      ['share', Buffer.from([...randomBytes(32), 0]).toString('base64'), 'share.share'],
      ['extra', true, 'share.extra'],
      ['index', undefined, 'share.index'],
    ];
    for (const [member, value, field] of cases) {
      const edit = (o: Record<string, unknown>): void => {
        if (value === undefined) delete o[member];
        else o[member] = value;
      };
      assert.throws(() => parseShareFile(resigned(edit)), invalid(field), `${member} = ${String(value)}`);
    }
    // a bad checksum format, a wrong checksum
    assert.throws(() => parseShareFile(JSON.stringify({ ...JSON.parse(text), checksum: 'AB' })), invalid('share.checksum'));
    assert.throws(() => parseShareFile(JSON.stringify({ ...JSON.parse(text), checksum: '0'.repeat(64) })), invalid('share.checksum'));
  });

  it('never puts the share into an error message', () => {
    const secret = (JSON.parse(text) as { share: string }).share;
    for (const bad of [
      resigned((o) => {
        o.index = 9;
      }),
      JSON.stringify({ ...JSON.parse(text), checksum: '0'.repeat(64) }),
      text.slice(0, -20),
    ]) {
      try {
        parseShareFile(bad);
        assert.fail('refused');
      } catch (error) {
        assert.ok(!JSON.stringify(error).includes(secret) && !String((error as Error).message).includes(secret));
      }
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import {
  type AuditCheckpoint,
  auditCheckpointMessage,
  createAuditCheckpoint,
  parseAuditCheckpoint,
  verifyAuditCheckpointSignature,
} from './auditCheckpoint.js';

const secret = new Uint8Array(32).fill(7);
const signer = { auditPublicKey: ed25519.getPublicKey(secret), signCheckpoint: (m: Uint8Array) => ed25519.sign(m, secret) };
const body = { signerId: '5f0c6f0e-1111-4222-8333-444455556666', seq: 42, headHash: 'ab'.repeat(32), ts: 1_700_000_000_000 };

describe('audit checkpoints', () => {
  it('sign the pinned message: "custos.audit-checkpoint.v1\\0" ‖ canonical JSON of every member but the signature', () => {
    const checkpoint = createAuditCheckpoint(body, signer);
    const publicKey = Buffer.from(signer.auditPublicKey).toString('hex');
    assert.equal(
      new TextDecoder().decode(auditCheckpointMessage(checkpoint)),
      `custos.audit-checkpoint.v1\0{"format":"custos.audit-checkpoint","headHash":"${'ab'.repeat(32)}","publicKey":"${publicKey}","seq":42,"signerId":"${body.signerId}","ts":1700000000000,"version":1}`,
    );
    assert.equal(verifyAuditCheckpointSignature(checkpoint, signer.auditPublicKey), true);
    assert.deepEqual(parseAuditCheckpoint(JSON.parse(JSON.stringify(checkpoint))), checkpoint);
  });

  it('fail verification for any changed member, and under any other key', () => {
    const checkpoint = createAuditCheckpoint(body, signer);
    const changed: AuditCheckpoint[] = [
      { ...checkpoint, seq: 43 },
      { ...checkpoint, headHash: 'ac'.repeat(32) },
      { ...checkpoint, ts: checkpoint.ts + 1 },
      { ...checkpoint, signerId: 'other' },
      { ...checkpoint, signature: `${checkpoint.signature.slice(0, -2)}00` },
    ];
    for (const c of changed) assert.equal(verifyAuditCheckpointSignature(c, signer.auditPublicKey), false, JSON.stringify(c));
    assert.equal(verifyAuditCheckpointSignature(checkpoint, ed25519.getPublicKey(new Uint8Array(32).fill(8))), false);
  });

  it('parse refuses any malformed checkpoint with invalid_input naming the member (property: never throws anything else)', () => {
    const good = createAuditCheckpoint(body, signer);
    const bad: Array<[unknown, string]> = [
      [null, 'checkpoint'],
      [[], 'checkpoint'],
      [{ ...good, extra: 1 }, 'checkpoint'],
      [{ ...good, version: 2 }, 'checkpoint.format'],
      [{ ...good, seq: 0 }, 'checkpoint.seq'],
      [{ ...good, seq: '42' }, 'checkpoint.seq'],
      [{ ...good, ts: -1 }, 'checkpoint.ts'],
      [{ ...good, headHash: 'AB'.repeat(32) }, 'checkpoint.headHash'],
      [{ ...good, publicKey: 'ab' }, 'checkpoint.publicKey'],
      [{ ...good, signature: 'zz'.repeat(64) }, 'checkpoint.signature'],
      [{ ...good, signerId: '' }, 'checkpoint.signerId'],
    ];
    for (const [value, field] of bad) assert.throws(() => parseAuditCheckpoint(value), { code: 'invalid_input', details: { field } }, JSON.stringify(value));
    fc.assert(
      fc.property(fc.anything(), (value) => {
        try {
          parseAuditCheckpoint(value);
        } catch (error) {
          assert.equal((error as { code?: unknown }).code, 'invalid_input');
        }
      }),
      { numRuns: 300 },
    );
  });
});

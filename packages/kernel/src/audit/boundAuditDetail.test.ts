import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalJson } from '../util/canonicalJson.js';
import { AUDIT_DETAIL_MAX_BYTES, boundAuditDetail } from './boundAuditDetail.js';

describe('boundAuditDetail', () => {
  it('keeps a detail of at most 4 KB (canonical JSON, UTF-8 bytes) whole', () => {
    const base = { keyIndex: 1, summary: { text: 'é'.repeat(1_000) }, summaryText: '' };
    const detail = { ...base, summaryText: 'x'.repeat(AUDIT_DETAIL_MAX_BYTES - Buffer.byteLength(canonicalJson(base))) };
    assert.equal(Buffer.byteLength(canonicalJson(detail)), AUDIT_DETAIL_MAX_BYTES);
    assert.equal(boundAuditDetail(detail), detail);
    assert.ok('truncated' in boundAuditDetail({ ...detail, summaryText: `${detail.summaryText}x` }), 'one byte more is bounded');
  });

  it('over 4 KB: the small scalars, and the size, SHA-256 and a preview of the whole', () => {
    const detail = { summary: { text: '😀'.repeat(3_000) }, keyIndex: 7, factor: 'totp', totpStep: 123, summaryText: 'y'.repeat(65), ok: true, none: null };
    const json = canonicalJson(detail);
    const bounded = boundAuditDetail(detail) as { truncated: { bytes: number; sha256: string; preview: string } };
    assert.deepEqual(Object.keys(bounded).sort(), ['factor', 'keyIndex', 'none', 'ok', 'totpStep', 'truncated']);
    assert.equal(bounded.truncated.bytes, Buffer.byteLength(json));
    assert.equal(bounded.truncated.sha256, createHash('sha256').update(json).digest('hex'));
    assert.ok(json.startsWith(bounded.truncated.preview));
    assert.ok(bounded.truncated.preview.length >= 255 && bounded.truncated.preview.isWellFormed(), 'never half a surrogate pair');
    assert.ok(Buffer.byteLength(canonicalJson(bounded)) <= AUDIT_DETAIL_MAX_BYTES);
  });

  it('stays under 4 KB whatever the detail holds (many members, long names, a member named truncated)', () => {
    const detail: Record<string, unknown> = { truncated: 'forged', [`${'n'.repeat(100)}`]: 1 };
    for (let i = 0; i < 500; i++) detail[`m${i}`] = 'v'.repeat(64);
    const bounded = boundAuditDetail(detail);
    assert.ok(Buffer.byteLength(canonicalJson(bounded)) <= AUDIT_DETAIL_MAX_BYTES);
    assert.equal(Object.keys(bounded).length, 17);
    assert.equal(typeof (bounded.truncated as { sha256: string }).sha256, 'string');
  });
});

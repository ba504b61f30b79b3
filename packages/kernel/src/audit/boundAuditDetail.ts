import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonicalJson.js';

/** Largest audit detail kept whole: its canonical JSON, in UTF-8 bytes. */
export const AUDIT_DETAIL_MAX_BYTES = 4096;
/** Characters of the canonical JSON a bounded detail keeps as its preview. */
export const AUDIT_DETAIL_PREVIEW_CHARS = 256;
/** Top-level members a bounded detail keeps beside the digest: scalars (numbers, booleans, null, short strings) … */
const KEPT_MEMBERS = 16;
/** … whose name and (string) value are at most this long. */
const KEPT_STRING_CHARS = 64;

/** What a detail over AUDIT_DETAIL_MAX_BYTES becomes (documented in docs/operations.md). */
export interface TruncatedDetail {
  /** UTF-8 bytes of the full detail's canonical JSON. */
  bytes: number;
  /** Hex SHA-256 of the full detail's canonical JSON: a copy of the operation kept elsewhere can be matched to the record. */
  sha256: string;
  /** The first AUDIT_DETAIL_PREVIEW_CHARS characters of that canonical JSON. */
  preview: string;
}

/**
 * The detail an audit record keeps, allowed or denied: the detail itself when its canonical JSON
 * is at most 4 KB; otherwise its small top-level members (the key index, the consent evidence such
 * as `factor` and `totpStep`; at most 16 scalars, names and strings up to 64 characters) and
 * `truncated: { bytes, sha256, preview }` in place of the rest — so that a request carrying a
 * 60 KB message adds a record of well under 4 KB, not 60 KB, to the append-only log. The caller's
 * response is unaffected: it carries the full summary.
 */
export function boundAuditDetail(detail: Record<string, unknown>): Record<string, unknown> {
  const json = canonicalJson(detail);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes <= AUDIT_DETAIL_MAX_BYTES) return detail;
  const kept: Record<string, unknown> = {};
  let count = 0;
  for (const [name, value] of Object.entries(detail)) {
    if (count >= KEPT_MEMBERS) break;
    if (name === 'truncated' || name.length > KEPT_STRING_CHARS || !isSmallScalar(value)) continue;
    kept[name] = value;
    count += 1;
  }
  const truncated: TruncatedDetail = { bytes, sha256: createHash('sha256').update(json, 'utf8').digest('hex'), preview: previewOf(json) };
  return { ...kept, truncated };
}

function isSmallScalar(value: unknown): boolean {
  if (value === null || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  return typeof value === 'string' && value.length <= KEPT_STRING_CHARS;
}

/** The first characters of `json`, never ending in half a surrogate pair. */
function previewOf(json: string): string {
  let preview = json.slice(0, AUDIT_DETAIL_PREVIEW_CHARS);
  const last = preview.charCodeAt(preview.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) preview = preview.slice(0, -1);
  return preview;
}

import { createHash } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import type { CustosError } from '../errors.js';
import { invalidInput } from '../errors.js';
import { canonicalJson } from '../util/canonicalJson.js';
import type { KernelContext } from './context.js';

/**
 * What approvals and enrolment links share: a page reached by an unguessable capability (32 random
 * bytes, base64url; only its SHA-256 stored), a bounded time to live, and a row MAC'd under the
 * barrier over all its fields — where the transitions that only take power away (cancelled,
 * expired) keep the MAC of the row as it was while pending.
 */

const CAPABILITY = /^[A-Za-z0-9_-]{43}$/;
const encoder = new TextEncoder();

/** A fresh capability for a page, and the hash the row keeps. */
export function newCapability(ctx: KernelContext): { capability: string; capabilityHash: string } {
  const capability = Buffer.from(ctx.random(32)).toString('base64url');
  return { capability, capabilityHash: hashCapability(capability) };
}

function hashCapability(capability: string): string {
  return createHash('sha256').update(capability, 'ascii').digest('hex');
}

/** The stored hash of a capability from a URL; a malformed one is `notFound`, as an unknown one is. */
export function capabilityHashOf(capability: unknown, notFound: () => CustosError): string {
  if (typeof capability !== 'string' || !CAPABILITY.test(capability)) throw notFound();
  return hashCapability(capability);
}

/** A time to live in seconds: `bounds.default` when absent, else an integer within the bounds. */
export function assertTtlSeconds(ttlSeconds: unknown, bounds: { default: number; min: number; max: number }): number {
  if (ttlSeconds === undefined || ttlSeconds === null) return bounds.default;
  const { min, max } = bounds;
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < min || ttlSeconds > max)
    throw invalidInput('ttlSeconds', `an integer from ${min} to ${max}`, typeof ttlSeconds === 'number' ? String(ttlSeconds) : typeof ttlSeconds);
  return ttlSeconds;
}

/** The bytes a row's MAC covers: every field but the MAC, as canonical JSON. */
function macBytes(record: { mac: string }): Uint8Array {
  const { mac: _mac, ...fields } = record;
  return encoder.encode(canonicalJson(fields as Record<string, unknown>));
}

/** The MAC of a row under `label`. */
export function macRow<R extends { mac: string }>(barrier: Barrier, label: string, record: R): string {
  return barrier.macRecord(label, macBytes(record));
}

/**
 * Whether a row's MAC holds: over the row as it is, or — when `pendingForm` gives the row as it was
 * while pending (for a cancelled or expired row; undefined for any other) — over that.
 */
export function rowIntact<R extends { mac: string }>(barrier: Barrier, label: string, record: R, pendingForm: R | undefined): boolean {
  if (barrier.verifyRecordMac(label, macBytes(record), record.mac)) return true;
  return pendingForm !== undefined && barrier.verifyRecordMac(label, macBytes(pendingForm), record.mac);
}

/**
 * Whether the API key that created an approval or an enrolment link is revoked (or gone): what it
 * asked for is then void — its pending approvals are cancelled by the revocation itself, and an
 * approved one not yet used, or a pending enrolment link, is refused here.
 */
export async function creatorRevoked(ctx: KernelContext, apiKeyId: string): Promise<boolean> {
  const key = await ctx.store.getApiKey(apiKeyId);
  return key === undefined || key.revokedAt !== null;
}

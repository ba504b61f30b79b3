import { createHash, timingSafeEqual } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import type { FactorRecord, ProofChannel } from '../consent/Factor.js';
import { canonicalJson } from '../util/canonicalJson.js';
import type { KernelContext } from './context.js';
import { pendingFactorRecord } from './pendingChanges.js';
import { checkWalletRows } from './walletRecord.js';

/**
 * The device token of a card enrolled on the kernel's page (docs/hwkey.md "The browser the card
 * was enrolled in"): the enrolment page's response sets it as a cookie in the owner's browser, and
 * a card answer posted on an approval page counts as `bound` only when that browser sends it back
 * (and the challenge it answers was issued to that browser too).
 *
 * It is not stored anywhere: it is derived under the barrier's record MAC key from the card's row
 * as enrolled — HMAC-SHA256(label "custos.hwkey-device.v1", canonical JSON { walletName, id,
 * createdAt }) — so it is 32 bytes no one without the barrier can compute, different for every
 * card, wallet and enrolment (re-enrolling the card gives a new one), and nothing in the store
 * (not even a hash) can stand in for it. It never appears in logs, responses (but the Set-Cookie
 * header), audit records or errors.
 */
export const HWKEY_DEVICE_LABEL = 'custos.hwkey-device.v1';

/** The most device cookies one request's answer is compared with (a browser holds one per wallet whose card it enrolled). */
export const MAX_DEVICE_TOKENS = 16;

/**
 * The channel a card's answer posted on the approval page counts through: `page` only when the
 * request carried the card's device cookie AND the challenge it answers was issued to a request
 * that carried it (`via: page`); else `relay` — a challenge the API issued, or one stored without
 * `via` (issued before device cookies), posted with the cookie is still a relayed answer. With the
 * cookie and no unspent challenge at all (`stored` undefined) it stays `page`, so that the factor
 * refuses it for what it is (challenge_required): nothing can be approved without a challenge.
 */
export function hwkeyPageChannel(device: boolean, stored: { via?: 'page' | 'relay' } | undefined): ProofChannel {
  if (!device) return 'relay';
  return stored === undefined || stored.via === 'page' ? 'page' : 'relay';
}

/** The device token of `record` (an hwkey row), 32 bytes base64url. */
export function hwkeyDeviceToken(barrier: Barrier, record: Pick<FactorRecord<object>, 'walletName' | 'id' | 'createdAt'>): string {
  const bytes = new TextEncoder().encode(canonicalJson({ walletName: record.walletName, id: record.id, createdAt: record.createdAt }));
  return Buffer.from(barrier.macRecord(HWKEY_DEVICE_LABEL, bytes), 'hex').toString('base64url');
}

/**
 * Whether one of `tokens` (the request's device cookies) is `record`'s device token: each compared
 * in constant time (as SHA-256 digests, so lengths never leak), all of them compared whatever the
 * outcome. Only a page-enrolled card has one.
 */
export function hwkeyDeviceMatches(barrier: Barrier, record: FactorRecord<object>, tokens: readonly string[] | undefined): boolean {
  if (tokens === undefined || tokens.length === 0 || record.enrolledVia !== 'page') return false;
  const expected = createHash('sha256').update(hwkeyDeviceToken(barrier, record)).digest();
  let match = false;
  for (const token of tokens.slice(0, MAX_DEVICE_TOKENS)) {
    if (typeof token !== 'string') continue;
    const given = createHash('sha256').update(token).digest();
    if (timingSafeEqual(expected, given)) match = true;
  }
  return match;
}

/**
 * The device token of `walletName`'s card, for the enrolment page to set as its cookie in the
 * response that completed the card's enrolment (and for nothing else): the row read back and
 * checked under its MAC; undefined when the wallet has no card enrolled on the page.
 */
export async function enrolledHwkeyDeviceToken(ctx: KernelContext, walletName: string): Promise<string | undefined> {
  const barrier = ctx.requireBarrier();
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(walletName));
  if (rows.wallet === undefined) return undefined;
  const opened = checkWalletRows(barrier, ctx.factors, { tenant: rows.wallet.tenant, walletName }, rows);
  if (!opened.ok) throw opened.error;
  // A card added to a wallet that has a factor waits out the timelock (issue 13): its token is the one its row will have.
  const card = opened.value.enrolled.find((e) => e.factor.kind === 'hwkey')?.record ?? (await pendingFactorRecord(ctx, walletName, 'hwkey'));
  return card === undefined || card.enrolledVia !== 'page' ? undefined : hwkeyDeviceToken(barrier, card);
}

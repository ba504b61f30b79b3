import type { Barrier } from '../barrier/Barrier.js';
import { verifyFactorRecords } from '../consent/consent.js';
import type { FactorRecord } from '../consent/Factor.js';
import type { OobAddress } from '../consent/oobFactor.js';
import { oobAddressOf } from './oobDelivery.js';

/**
 * What an approver of a `wallet.change.approve` is shown of a factor a change adds, replaces or
 * removes (issue 13 point 4, "shown to each approver in full"; review finding G4), opened by the
 * kernel at view time from the factor's record as the change stores it:
 *
 *   oob      the channel and the delivery address MASKED (issue 14 point 6: a delivery address is
 *            never in plaintext in a response body, a log or a database row): the first characters of
 *            the local part, its length and the full domain (`al•••••@example.com`); a webhook
 *            recipient likewise (its first characters and length). The approver confirms it with the
 *            owner through a contact the deployment already has.
 *   passkey  the credential id's first characters, its relying party and transports
 *   hwkey    the card's public key (its identity) and subpath
 *   totp     a new authenticator app (its secret is never shown)
 *
 * Nothing here is stored or audited: it is computed for each view.
 */

/** The masked form of one delivery address (never the address itself). */
export interface MaskedAddress {
  channel: OobAddress['channel'];
  /** e.g. `al•••••@example.com`, or `ab•••••` for a webhook recipient. */
  masked: string;
  /** Characters before the `@` (e-mail), or of the whole recipient id (webhook). */
  length: number;
  /** The full domain of an e-mail address. */
  domain?: string;
}

const DOT = '\u2022';
/** At most this many mask characters are drawn (the length is given as a number). */
const MAX_DOTS = 12;

/** How many leading characters of a part of `length` characters show: 2, never more than half. */
function shownCount(length: number): number {
  return Math.min(2, Math.floor(length / 2));
}

function maskPart(part: string): { masked: string; length: number } {
  const chars = Array.from(part);
  const shown = shownCount(chars.length);
  return { masked: chars.slice(0, shown).join('') + DOT.repeat(Math.max(1, Math.min(MAX_DOTS, chars.length - shown))), length: chars.length };
}

/** A delivery address masked: the first (at most 2, at most half) characters, the length, the full e-mail domain. */
export function maskAddress(address: OobAddress): MaskedAddress {
  // An e-mail address without '@' (never accepted at enrolment; defensive) is masked whole, as a recipient: never shown as a "domain".
  const at = address.address.lastIndexOf('@');
  if (address.channel === 'email' && at > 0) {
    const local = maskPart(address.address.slice(0, at));
    const domain = address.address.slice(at + 1);
    return { channel: 'email', masked: `${local.masked}@${domain}`, length: local.length, domain };
  }
  const recipient = maskPart(address.address);
  return { channel: address.channel, masked: recipient.masked, length: recipient.length };
}

/** One line for a masked address: `e-mail al•••••@example.com (7 characters before @)`. */
export function maskedAddressLine(m: MaskedAddress): string {
  const plural = (n: number) => `${n} character${n === 1 ? '' : 's'}`;
  return m.channel === 'email' ? `e-mail ${m.masked} (${plural(m.length)} before @)` : `${m.channel} recipient ${m.masked} (${plural(m.length)})`;
}

/** A factor as an approver sees it: one line, and the same as data (no secret, no full address). */
export interface FactorShown {
  line: string;
  data: Record<string, unknown>;
}

/** Thrown when a stored record cannot be shown (its MAC does not match, or its address does not open): the view refuses the approval. */
export class FactorUnshowable extends Error {}

/**
 * A factor record a change carries (or the wallet's current one), as shown to an approver. Its MAC
 * is checked, and an oob record's sealed address opened by the barrier, then masked; a record that
 * fails either throws FactorUnshowable (fail closed: what cannot be shown is not approved).
 */
export function factorShown(barrier: Barrier, record: FactorRecord<object>): FactorShown {
  if (verifyFactorRecords(barrier, [record]) !== undefined) throw new FactorUnshowable(`the ${String(record.kind)} factor's record does not match its MAC`);
  const state = record.state as Record<string, unknown>;
  switch (record.kind) {
    case 'oob': {
      let address: OobAddress;
      try {
        address = oobAddressOf(barrier, record);
      } catch {
        throw new FactorUnshowable('the delivery address in the factor’s record could not be opened');
      }
      const masked = maskAddress(address);
      return { line: `delivery address: ${maskedAddressLine(masked)}`, data: { kind: 'oob', ...masked } };
    }
    case 'passkey': {
      const prefix = record.id.slice(0, 16);
      const transports = Array.isArray(state.transports) ? state.transports.map(String) : [];
      const rpId = typeof state.rpId === 'string' ? state.rpId : null;
      return {
        line: `a passkey, credential id ${prefix}… (relying party ${rpId ?? 'unknown'}${transports.length > 0 ? `; transports ${transports.join(', ')}` : ''})`,
        data: { kind: 'passkey', credentialIdPrefix: prefix, rpId, transports },
      };
    }
    case 'hwkey': {
      const subpath = typeof state.subpath === 'string' ? state.subpath : '';
      return {
        line: `a hardware key (card), public key ${record.id}${subpath === '' ? '' : `, subpath ${subpath}`}`,
        data: { kind: 'hwkey', publicKey: record.id, subpath },
      };
    }
    case 'totp':
      return { line: 'a new authenticator app (TOTP; its secret is never shown)', data: { kind: 'totp' } };
    default:
      return { line: `a ${String(record.kind)} factor`, data: { kind: String(record.kind) } };
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { CustosError, OWNER_DEVICE_TOKEN } from '@custos/kernel';

/**
 * The page forms' CSRF cookie: a random value the browser keeps (HttpOnly, SameSite=Strict, only
 * sent to the pages' path, /approve/…, /enroll/… or /owner/…, Secure when the public URL is https). Each form carries
 * kernel.pageFormToken(capability, value); a POST is decided only when its token checks against
 * its cookie (kernel.checkPageFormToken) and its Origin, when sent, is this signer's.
 */
export const FORM_COOKIE = 'custos_form';
const FORM_COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/**
 * The hardware-key device cookie (kernel/hwkeyDevice.ts): set by the response that completed a
 * card's enrolment on the page, one per wallet (its name ends in a tag of the wallet's name, so a
 * browser that enrolled the cards of several wallets keeps each), sent back only to the approval
 * pages, the owner page (unfreezing) and the change pages (confirming a change). A card's answer posted on an approval page counts as posted on the page (`bound`) only
 * with its card's cookie. HttpOnly, SameSite=Strict, Secure when the public URL is https, 400 days
 * (the longest a browser keeps a cookie).
 */
export const DEVICE_COOKIE_PREFIX = 'custos_hwkey_';
const DEVICE_COOKIE_MAX_AGE = 400 * 86_400;

/**
 * The device cookie's name for `walletName`: the prefix and 16 hex digits of SHA-256(walletName) —
 * under https with the `__Host-` prefix (Secure, no Domain, Path=/), which a browser accepts only from
 * this very host, so that a site on a sibling host of the same parent domain can neither plant a
 * cookie of that name to crowd the owner's out nor slip its own device's token in (as for the
 * owner-device cookie). Over plain http (development) no cookie name is safe from that.
 */
export function deviceCookieName(walletName: string, secure: boolean): string {
  return `${secure ? '__Host-' : ''}${DEVICE_COOKIE_PREFIX}${createHash('sha256').update(walletName).digest('hex').slice(0, 16)}`;
}

/**
 * The Set-Cookie headers of `walletName`'s card's device token: one `__Host-` cookie with Path=/ under
 * https; over http one for each of the pages that read it (approval, owner and change pages).
 */
export function deviceCookieHeaders(walletName: string, token: string, { secure }: { secure: boolean }): string[] {
  const name = deviceCookieName(walletName, secure);
  return (secure ? ['/'] : ['/approve/', '/owner/', '/changes/']).map(
    (path) => `${name}=${token}; Path=${path}; Max-Age=${DEVICE_COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`,
  );
}

/**
 * The well-formed values of the cookie named `name` (the approval's wallet's device cookie) in a
 * Cookie header, at most 4: cookies of other names — other wallets', or ones planted from a sibling
 * domain — never crowd out the owner's (the kernel compares at most 16).
 */
export function deviceCookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    if (FORM_COOKIE_VALUE.test(value) && values.length < 4) values.push(value);
  }
  return values;
}

/**
 * The owner-device cookie (kernel/ownerDevice.ts): set by the response to a step where the owner
 * proved a factor on one of the signer's pages (enrolment, approval, change, owner page), one per
 * wallet (its name ends in a tag of the wallet's name), sent back only to the change pages and the
 * owner page, where cancels are answered: a cancel answered with it is counted on the device's own
 * budget, which the wallet backend cannot reach. HttpOnly, SameSite=Strict, Secure when the public
 * URL is https; its value is a token the kernel MAC'd (never logged, never in a body).
 */
export const OWNER_DEVICE_COOKIE_PREFIX = 'custos_owner_';

/**
 * The owner-device cookie's name for `walletName`: the prefix and 16 hex digits of SHA-256(walletName)
 * — under https with the `__Host-` prefix, which a browser accepts only from this very host (Secure,
 * no Domain, Path=/): a site on a sibling host of the same parent domain (a wallet backend at
 * app.example.com beside the signer at custos.example.com) can then neither plant a cookie of that
 * name to push the owner's out nor slip its own device's token in. Over plain http (a development
 * set-up) no cookie name is safe from that: docs/timelock.md says so.
 */
export function ownerDeviceCookieName(walletName: string, secure: boolean): string {
  return `${secure ? '__Host-' : ''}${OWNER_DEVICE_COOKIE_PREFIX}${createHash('sha256').update(walletName).digest('hex').slice(0, 16)}`;
}

/** The Set-Cookie headers of a new owner-device token: `__Host-`, Path=/ under https; else one for the change pages and one for the owner page. */
export function ownerDeviceCookieHeaders(walletName: string, device: { token: string; maxAgeSeconds: number }, { secure }: { secure: boolean }): string[] {
  const name = ownerDeviceCookieName(walletName, secure);
  return (secure ? ['/'] : ['/changes/', '/owner/']).map(
    (path) => `${name}=${device.token}; Path=${path}; Max-Age=${device.maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`,
  );
}

/** The well-formed values of `walletName`'s owner-device cookie in a Cookie header (its `__Host-` name under https), at most 4 (the kernel checks each). */
export function ownerDeviceCookieValues(header: string | undefined, walletName: string, secure: boolean): string[] {
  if (header === undefined) return [];
  const name = ownerDeviceCookieName(walletName, secure);
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    if (OWNER_DEVICE_TOKEN.test(value) && values.length < 4) values.push(value);
  }
  return values;
}

/** The largest form body accepted, bytes (a token, a decision and a code fit in well under 1 KiB). */
export const FORM_BODY_LIMIT = 4 * 1024;

/**
 * The largest passkey answer accepted (`proof`, JSON text, characters). A WebAuthn answer is a few
 * base64url fields: even with the longest credential id (1023 bytes, named four times in a
 * registration) and an RSA key it stays under 10 KiB.
 */
export const MAX_PROOF_LENGTH = 16 * 1024;

/**
 * The largest body of a form that may carry passkey answers: two on the enrolment page (the new
 * passkey's and the consent of the wallet's passkey); URL-encoding adds to the JSON's punctuation.
 */
export const PROOF_FORM_BODY_LIMIT = 48 * 1024;

/** A new cookie value: 32 random bytes, base64url. */
export function newFormCookieValue(): string {
  return randomBytes(32).toString('base64url');
}

/** The Set-Cookie header for a new cookie value, sent only to `path` (default the approval pages'). */
export function formCookieHeader(
  value: string,
  { secure, path = '/approve/' }: { secure: boolean; path?: '/approve/' | '/enroll/' | '/owner/' | '/changes/' | '/admin/' },
): string {
  return `${FORM_COOKIE}=${value}; Path=${path}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** Every well-formed value of the form cookie in a Cookie header (a browser may send more than one). */
export function formCookieValues(header: string | undefined): string[] {
  if (header === undefined) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== FORM_COOKIE) continue;
    const value = pair.slice(eq + 1).trim();
    if (FORM_COOKIE_VALUE.test(value)) values.push(value);
  }
  return values;
}

/** The fields of a posted page form. A field sent twice or not a string is absent (never guessed). */
export interface PostedForm {
  csrf: string | undefined;
  decision: string | undefined;
  code: string | undefined;
  /** The factor the proof is for (`passkey`; absent on the code forms). */
  kind: string | undefined;
  /** A passkey's answer, as JSON text (see parseProof). */
  proof: string | undefined;
  /** The enrolment page's consent of the wallet's passkey to the new factor, as JSON text (see parseProof). */
  consent: string | undefined;
  /** A hardware key's signature (hex), on the approval and enrolment pages. */
  signature?: string | undefined;
  /** A hardware key's account xpub, subpath, or bare public key, on the enrolment page. */
  xpub?: string | undefined;
  subpath?: string | undefined;
  publicKey?: string | undefined;
}

/** Reads an application/x-www-form-urlencoded body (already bounded by FORM_BODY_LIMIT). */
export function parsePostedForm(body: unknown): PostedForm {
  if (typeof body !== 'string') return { csrf: undefined, decision: undefined, code: undefined, kind: undefined, proof: undefined, consent: undefined };
  const params = new URLSearchParams(body);
  const one = (name: string): string | undefined => {
    const all = params.getAll(name);
    return all.length === 1 ? all[0] : undefined;
  };
  return {
    csrf: one('csrf'),
    decision: one('decision'),
    code: one('code'),
    kind: one('kind'),
    proof: one('proof'),
    consent: one('consent'),
    // the hardware-key fields, only when posted (the other forms' shape stays as it was)
    ...present('signature', one('signature')),
    ...present('xpub', one('xpub')),
    ...present('subpath', one('subpath')),
    ...present('publicKey', one('publicKey')),
  };
}

/** `{ [name]: value }` when the field was posted, else nothing. */
function present<K extends string>(name: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: string };
}

/**
 * A posted passkey answer (the JSON the page's script put in the form's `proof`, or `consent`): at
 * most MAX_PROOF_LENGTH characters of JSON, an object. Its fields are the kernel's to check. Throws
 * invalid_input naming the field.
 */
export function parseProof(text: string | undefined, field: 'proof' | 'consent' = 'proof'): Record<string, unknown> {
  const invalid = (expected: string) => new CustosError('invalid_input', `${field}: expected ${expected}`, { details: { field } });
  if (text === undefined || text === '') throw invalid('the passkey’s answer (JSON), got none');
  if (text.length > MAX_PROOF_LENGTH) throw invalid(`at most ${MAX_PROOF_LENGTH} characters of JSON, got ${text.length}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('a JSON object');
  return parsed as Record<string, unknown>;
}

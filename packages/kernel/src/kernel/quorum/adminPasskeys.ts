import { timingSafeEqual } from 'node:crypto';
import { base64urlnopad } from '@scure/base';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import type { AuthenticatorTransportFuture } from '@simplewebauthn/server';
import type { Barrier } from '../../barrier/Barrier.js';
import { loadWebAuthn } from '../../consent/loadWebAuthn.js';
import { verifyPasskeyRegistration } from '../../consent/passkeyFactor.js';
import { CustosError, invalidInput } from '../../errors.js';
import type { AdminEnrollmentLinkRecord, AdminPasskeyRecord, Store, StoreTx } from '../../store/types.js';
import { checkScope } from '../authorize.js';
import { auditRecord } from '../auditRecord.js';
import { assertTtlSeconds, capabilityHashOf, macRow, newCapability, rowIntact } from '../capabilityRecords.js';
import { deny, type KernelContext, settle } from '../context.js';
import type { App } from '../types.js';
import {
  type AdminPasskeyCredential,
  type AdminPasskeySettings,
  adminPasskeyId,
  assertPasskeyAdminId,
  verifyAdminAssertion,
} from './adminPasskeyCredential.js';
import { type AdminEntry, type QuorumSettings, readQuorumSettings } from './settings.js';

/**
 * Passkey admins (issue 13 point 4; docs/quorum.md "Passkey admins"):
 *  - an operator (API key with scope `admin`) makes a single-use, expiring **admin enrolment link**
 *    (capability in the URL, only its SHA-256 stored, the row MAC'd);
 *  - the admin opens it on the kernel's page and registers a passkey (user verification required,
 *    rpID and origin the public URL's): the result is a **candidate** (`pk:…`), a row MAC'd under the
 *    barrier — NOT an admin. It joins the admin set only through `custos admin bootstrap` or an
 *    applied `quorum.set` proposal that names it (with its credential, as `candidateEntry` gives it);
 *  - the row keeps the passkey's signature counter: every assertion of an admin passkey (approval,
 *    proposal, page login) must carry a counter above it when either is non-zero, and moves it on in
 *    the unit that used the assertion;
 *  - the admin page's login: a passkey assertion over a challenge the kernel MACs (time-stamped, valid
 *    5 minutes) gives a stateless session token (MAC'd admin id and expiry, 15 minutes) that the page
 *    keeps in an HttpOnly, SameSite=Strict cookie. Its options name no credential (admin passkeys are
 *    registered discoverable), unless an admin typed its id. The session lets the admin read proposals
 *    and draft one; approving and proposing need the statement-bound assertion anyway.
 */

const LINK_MAC_LABEL = 'custos.admin-enrollment-link.v1';
const PASSKEY_MAC_LABEL = 'custos.admin-passkey.v1';
const LOGIN_MAC_LABEL = 'custos.admin-login.v1';
const SESSION_MAC_LABEL = 'custos.admin-session.v1';
export const ADMIN_LINK_TTL = { default: 24 * 3600, min: 300, max: 7 * 24 * 3600 };
const LOGIN_CHALLENGE_TTL_MS = 5 * 60_000;
export const ADMIN_SESSION_TTL_MS = 15 * 60_000;
const CEREMONY_TIMEOUT_MS = 300_000;
const SUPPORTED_ALGORITHMS = [-8, -7, -257];
const encoder = new TextEncoder();

export interface AdminEnrollmentLink {
  /** The capability: the link is `<public URL>/admin/enroll/<token>`. Shown once, never stored. */
  token: string;
  name: string;
  expiresAt: number;
}

/** The enrolment page's view of a link. */
export interface AdminEnrollmentPage {
  state: 'pending' | 'used' | 'expired';
  name: string;
  expiresAt: number;
  /** While pending: the options for startRegistration. */
  optionsJSON?: PublicKeyCredentialCreationOptionsJSON;
  /** Once used: the candidate it made. */
  adminId?: string;
}

/** A registered admin passkey as the operator sees it: the entry to name in a quorum.set payload. */
export interface AdminCandidate {
  adminId: string;
  name: string;
  createdAt: number;
  /** Whether the admin set in force names it. */
  inAdminSet: boolean;
  /** The admin set entry for it (quorum.set `admins[]`). */
  entry: { publicKey: string; name: string; passkey: AdminPasskeyCredential };
}

function requireSettings(settings: AdminPasskeySettings | undefined): AdminPasskeySettings {
  if (settings === undefined) throw new CustosError('passkeys_unavailable', 'this signer was started without a public URL: no passkey can be used', {});
  return settings;
}

function linkNotFound(): CustosError {
  return new CustosError('enrollment_not_found', 'no admin enrolment link at this address', {});
}

/** An admin passkey row's MAC (over every other field, the counter included). */
export function macAdminPasskey(barrier: Barrier, record: AdminPasskeyRecord): string {
  return macRow(barrier, PASSKEY_MAC_LABEL, record);
}

function credentialOf(row: AdminPasskeyRecord): AdminPasskeyCredential {
  return { credentialId: row.credentialId, publicKey: row.publicKey, rpId: row.rpId, transports: JSON.parse(row.transports) as string[] };
}

/** The set entry of a candidate row (for bootstrap and quorum.set): its MAC checked. */
export function candidateEntryOf(barrier: Barrier, row: AdminPasskeyRecord): AdminCandidate['entry'] {
  if (!rowIntact(barrier, PASSKEY_MAC_LABEL, row, undefined))
    throw new CustosError('record_unreadable', 'the admin passkey row does not match its MAC: refusing to act', { details: { admin: row.id } });
  return { publicKey: row.id, name: row.name, passkey: credentialOf(row) };
}

/** Resolves `pk:…` strings among an admin set's entries to their candidates' entries (custos admin bootstrap). */
export async function resolveCandidates(store: Store, barrier: Barrier, quorum: unknown): Promise<unknown> {
  if (quorum === null || typeof quorum !== 'object' || !Array.isArray((quorum as { admins?: unknown }).admins)) return quorum;
  const q = quorum as { admins: unknown[] };
  const admins: unknown[] = [];
  for (const [i, a] of q.admins.entries()) {
    const id = typeof a === 'string' ? a : a !== null && typeof a === 'object' && !('passkey' in a) ? (a as { publicKey?: unknown }).publicKey : undefined;
    if (typeof id !== 'string' || !id.startsWith('pk:')) {
      admins.push(a);
      continue;
    }
    const row = await store.readAdminPasskey(id);
    if (row === undefined) throw invalidInput(`admins[${i}]`, 'a passkey admin registered on this signer (custos admin candidates)', id);
    const entry = candidateEntryOf(barrier, row);
    const extra = typeof a === 'object' && a !== null ? (a as Record<string, unknown>) : {};
    // the candidate's registered name, unless the set names it otherwise; an e-mail address when given
    admins.push({
      ...entry,
      ...(typeof extra.name === 'string' && extra.name !== '' ? { name: extra.name } : {}),
      ...(extra.email === undefined ? {} : { email: extra.email }),
    });
  }
  return { ...q, admins };
}

/**
 * The passkey admin's counter row in a unit (locked): missing, or its MAC broken, or its credential
 * not the admin set's, is record_unreadable (fail closed: its counter is unknown).
 */
export async function lockAdminPasskey(tx: StoreTx, barrier: Barrier, entry: AdminEntry): Promise<AdminPasskeyRecord> {
  const row = await tx.getAdminPasskeyForUpdate(entry.publicKey);
  if (
    row === undefined ||
    !rowIntact(barrier, PASSKEY_MAC_LABEL, row, undefined) ||
    row.credentialId !== entry.passkey?.credentialId ||
    row.publicKey !== entry.passkey.publicKey
  )
    throw new CustosError('record_unreadable', 'the admin passkey’s row (its signature counter) is missing or does not match: refusing to act', {
      details: { admin: entry.publicKey },
    });
  return row;
}

/** Moves an admin passkey's counter on (in the unit that used its assertion). */
export async function saveAdminPasskeyCounter(tx: StoreTx, barrier: Barrier, row: AdminPasskeyRecord, counter: number): Promise<void> {
  const next: AdminPasskeyRecord = { ...row, counter };
  await tx.updateAdminPasskeyCounter(row.id, counter, macAdminPasskey(barrier, next));
}

/**
 * Verifies a passkey admin's assertion over `challenge` against its counter row, and moves the
 * counter on in the same unit. Throws the refusal (admin_signature_invalid, passkey_counter_invalid,
 * passkey_user_not_verified, invalid_input, record_unreadable).
 */
export async function useAdminPasskey(
  tx: StoreTx,
  barrier: Barrier,
  settings: AdminPasskeySettings | undefined,
  entry: AdminEntry,
  proof: unknown,
  challenge: Uint8Array,
): Promise<{ stored: string; counter: number }> {
  if (entry.passkey === undefined) throw new CustosError('internal', 'not a passkey admin');
  const row = await lockAdminPasskey(tx, barrier, entry);
  const { newCounter, stored } = await verifyAdminAssertion({ credential: entry.passkey, proof, challenge, settings, counter: row.counter });
  await saveAdminPasskeyCounter(tx, barrier, row, newCounter);
  return { stored, counter: newCounter };
}

/** An operator makes an admin enrolment link (scope `admin`); audited `quorum.admin-link`. */
export async function createAdminEnrollmentLink(
  ctx: KernelContext,
  settings: AdminPasskeySettings | undefined,
  app: App,
  request: { name?: unknown; ttlSeconds?: unknown },
): Promise<AdminEnrollmentLink> {
  const barrier = ctx.requireBarrier();
  const forbidden = checkScope(app, 'admin');
  if (forbidden !== undefined) {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action: 'quorum.admin-link', opHash: null, detail: {} }, forbidden));
    throw forbidden;
  }
  requireSettings(settings);
  const name = request.name ?? '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (typeof name !== 'string' || name.length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(name))
    throw invalidInput('name', 'at most 64 characters, no control characters');
  const ttl = assertTtlSeconds(request.ttlSeconds, ADMIN_LINK_TTL);
  const nowMs = ctx.now();
  const { capability, capabilityHash } = newCapability(ctx);
  const record: AdminEnrollmentLinkRecord = {
    tokenHash: capabilityHash,
    name,
    challenge: base64urlnopad.encode(ctx.random(32)),
    userId: base64urlnopad.encode(ctx.random(16)),
    createdAt: nowMs,
    expiresAt: nowMs + ttl * 1000,
    usedAt: null,
    adminId: null,
    mac: '',
  };
  record.mac = macRow(barrier, LINK_MAC_LABEL, record);
  await ctx.transact(async (tx) => {
    await tx.insertAdminEnrollmentLink(record);
    await tx.appendAudit(
      auditRecord(
        { ts: nowMs, appId: app.id, walletName: null, action: 'quorum.admin-link', opHash: null, detail: { name, expiresAt: record.expiresAt } },
        { allowed: {} },
      ),
    );
  });
  return { token: capability, name, expiresAt: record.expiresAt };
}

async function registrationOptions(settings: AdminPasskeySettings, link: AdminEnrollmentLinkRecord) {
  const { generateRegistrationOptions } = await loadWebAuthn();
  return generateRegistrationOptions({
    rpName: settings.rpName,
    rpID: settings.rpId,
    userName: link.name === '' ? 'Custos admin' : `Custos admin ${link.name}`,
    userID: new Uint8Array(base64urlnopad.decode(link.userId)),
    challenge: new Uint8Array(base64urlnopad.decode(link.challenge)),
    attestationType: 'none',
    supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    // Discoverable: the admin page's sign-in names no credential (it would tell anyone who is in the quorum).
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    timeout: CEREMONY_TIMEOUT_MS,
  });
}

function openLink(barrier: Barrier, link: AdminEnrollmentLinkRecord | undefined): AdminEnrollmentLinkRecord {
  if (link === undefined) throw linkNotFound();
  if (!rowIntact(barrier, LINK_MAC_LABEL, link, undefined))
    throw new CustosError('record_unreadable', 'the admin enrolment link does not match its MAC: refusing to act', {});
  return link;
}

/** The enrolment page of a link (GET: reads only). An unknown or malformed capability is enrollment_not_found. */
export async function openAdminEnrollmentPage(
  ctx: KernelContext,
  settings: AdminPasskeySettings | undefined,
  capability: unknown,
): Promise<AdminEnrollmentPage> {
  const barrier = ctx.requireBarrier();
  const hash = capabilityHashOf(capability, linkNotFound);
  const link = openLink(barrier, await ctx.readStore(() => ctx.store.readAdminEnrollmentLink(hash)));
  const base = { name: link.name, expiresAt: link.expiresAt };
  if (link.usedAt !== null) return { state: 'used', ...base, ...(link.adminId === null ? {} : { adminId: link.adminId }) };
  if (link.expiresAt <= ctx.now()) return { state: 'expired', ...base };
  return { state: 'pending', ...base, optionsJSON: await registrationOptions(requireSettings(settings), link) };
}

/**
 * The admin's new passkey on the link (POST): the registration verified (this link's challenge,
 * origin and rpID, user verification), the candidate row written and the link spent in one unit,
 * audited `quorum.admin-enroll`. A used link is enrollment_used, an expired one enrollment_expired.
 */
export async function completeAdminEnrollment(
  ctx: KernelContext,
  settings: AdminPasskeySettings | undefined,
  capability: unknown,
  proof: unknown,
): Promise<{ adminId: string; name: string }> {
  const barrier = ctx.requireBarrier();
  const hash = capabilityHashOf(capability, linkNotFound);
  const rp = requireSettings(settings);
  const nowMs = ctx.now();
  const outcome = await ctx.transact(async (tx) => {
    const link = openLink(barrier, await tx.getAdminEnrollmentLinkForUpdate(hash));
    const base = {
      ts: nowMs,
      appId: null,
      walletName: null,
      action: 'quorum.admin-enroll',
      opHash: null,
      detail: { name: link.name } as Record<string, unknown>,
    };
    if (link.usedAt !== null)
      return deny<{ adminId: string; name: string }>(tx, base, new CustosError('enrollment_used', 'this admin enrolment link was used already', {}));
    if (link.expiresAt <= nowMs)
      return deny<{ adminId: string; name: string }>(tx, base, new CustosError('enrollment_expired', 'this admin enrolment link expired', {}));
    let credential: AdminPasskeyCredential;
    let counter: number;
    try {
      if (proof === undefined || proof === null)
        throw new CustosError('code_required', 'create the passkey on this page first', { details: { field: 'proof' } });
      const registered = await verifyPasskeyRegistration(proof, { challenge: link.challenge, origin: rp.origin, rpId: rp.rpId });
      credential = { credentialId: registered.id, publicKey: registered.publicKey, rpId: rp.rpId, transports: registered.transports };
      counter = registered.counter;
    } catch (error) {
      if (!(error instanceof CustosError)) throw error;
      return deny<{ adminId: string; name: string }>(tx, base, error);
    }
    const adminId = adminPasskeyId(credential.credentialId);
    const row: AdminPasskeyRecord = {
      id: adminId,
      credentialId: credential.credentialId,
      publicKey: credential.publicKey,
      rpId: credential.rpId,
      transports: JSON.stringify(credential.transports),
      name: link.name,
      counter,
      createdAt: nowMs,
      mac: '',
    };
    row.mac = macAdminPasskey(barrier, row);
    if (!(await tx.insertAdminPasskey(row)))
      return deny<{ adminId: string; name: string }>(
        tx,
        base,
        new CustosError('already_enrolled', 'this passkey is registered as an admin passkey already', {}),
      );
    const used: AdminEnrollmentLinkRecord = { ...link, usedAt: nowMs, adminId };
    used.mac = macRow(barrier, LINK_MAC_LABEL, used);
    await tx.updateAdminEnrollmentLink(hash, used);
    await tx.appendAudit(auditRecord({ ...base, detail: { name: link.name, admin: adminId } }, { allowed: {} }));
    return { ok: true as const, value: { adminId, name: link.name } };
  });
  return settle(outcome);
}

/** The registered admin passkeys (scope `admin`): candidates, and which the admin set names. */
export async function listAdminCandidates(ctx: KernelContext, app: App): Promise<AdminCandidate[]> {
  const barrier = ctx.requireBarrier();
  const forbidden = checkScope(app, 'admin');
  if (forbidden !== undefined) throw forbidden;
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const rows = await ctx.readStore(() => ctx.store.listAdminPasskeys());
  const out: AdminCandidate[] = [];
  for (const row of rows) {
    if (!rowIntact(barrier, PASSKEY_MAC_LABEL, row, undefined)) continue;
    out.push({
      adminId: row.id,
      name: row.name,
      createdAt: row.createdAt,
      inAdminSet: quorum?.admins.some((a) => a.publicKey === row.id) ?? false,
      entry: candidateEntryOf(barrier, row),
    });
  }
  return out;
}

// ---- the admin page's login (stateless: MACs under the barrier) ----

/** The passkey admins of an admin set. */
export function passkeyAdmins(quorum: QuorumSettings | undefined): AdminEntry[] {
  return (quorum?.admins ?? []).filter((a) => a.passkey !== undefined);
}

function loginChallenge(barrier: Barrier, issuedAt: number, nonce: string): Uint8Array {
  return encoder.encode(barrier.macRecord(LOGIN_MAC_LABEL, encoder.encode(`${issuedAt}\0${nonce}`)));
}

/**
 * The login's options and the values the page posts back. They name no credential (a discoverable
 * passkey answers: the sign-in page, open to anyone, must not list who is in the quorum); with
 * `adminId` — typed by an admin whose passkey is not discoverable (registered before discoverable
 * passkeys were required) — that admin's credential only, when the set in force names it.
 */
export async function adminLoginOptions(
  ctx: KernelContext,
  settings: AdminPasskeySettings | undefined,
  { adminId }: { adminId?: unknown } = {},
): Promise<{ optionsJSON: PublicKeyCredentialRequestOptionsJSON; issuedAt: number; nonce: string }> {
  const barrier = ctx.requireBarrier();
  const rp = requireSettings(settings);
  const named = adminId === undefined ? undefined : assertPasskeyAdminId(adminId, 'admin');
  const quorum = named === undefined ? undefined : await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const issuedAt = ctx.now();
  const nonce = base64urlnopad.encode(ctx.random(16));
  const allowed = passkeyAdmins(quorum).filter((a) => a.publicKey === named);
  return { optionsJSON: await adminAssertionOptions(rp, allowed, loginChallenge(barrier, issuedAt, nonce)), issuedAt, nonce };
}

/** Options for an assertion over `challenge` by one of `admins` (passkey admins; none: a discoverable passkey), userVerification required. */
export async function adminAssertionOptions(
  rp: AdminPasskeySettings,
  admins: readonly AdminEntry[],
  challenge: Uint8Array,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await loadWebAuthn();
  return generateAuthenticationOptions({
    rpID: rp.rpId,
    challenge: new Uint8Array(challenge),
    allowCredentials: admins.map((a) => ({
      id: a.passkey?.credentialId as string,
      transports: a.passkey?.transports as AuthenticatorTransportFuture[],
    })),
    userVerification: 'required',
    timeout: CEREMONY_TIMEOUT_MS,
  });
}

/** The set's passkey admin whose credential made `proof` (admin_unknown when none). */
export function passkeyAdminOf(quorum: QuorumSettings | undefined, proof: unknown): AdminEntry {
  const id = proof !== null && typeof proof === 'object' ? (proof as { id?: unknown }).id : undefined;
  const entry = typeof id === 'string' ? passkeyAdmins(quorum).find((a) => a.passkey?.credentialId === id) : undefined;
  if (entry === undefined) throw new CustosError('admin_unknown', 'that passkey is not one of the admin set’s', { details: { field: 'proof' } });
  return entry;
}

function sessionMac(barrier: Barrier, adminId: string, expiresAt: number): string {
  return barrier.macRecord(SESSION_MAC_LABEL, encoder.encode(`${adminId}\0${expiresAt}`));
}

/**
 * The login (POST): the assertion of a passkey admin of the set in force over the challenge the
 * kernel issued (MAC'd, at most 5 minutes old), user verification, counter moved on. Audited
 * `quorum.admin-login`, allowed or denied. Returns the session token for the page's cookie.
 */
export async function finishAdminLogin(
  ctx: KernelContext,
  settings: AdminPasskeySettings | undefined,
  request: { issuedAt: unknown; nonce: unknown; proof: unknown },
): Promise<{ adminId: string; token: string; expiresAt: number }> {
  const barrier = ctx.requireBarrier();
  const rp = requireSettings(settings);
  const nowMs = ctx.now();
  const issuedAt = Number(request.issuedAt);
  if (!Number.isSafeInteger(issuedAt)) throw invalidInput('issuedAt', 'the login page’s time stamp');
  if (typeof request.nonce !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(request.nonce)) throw invalidInput('nonce', 'the login page’s nonce');
  const nonce = request.nonce;
  const outcome = await ctx.transact(async (tx) => {
    const base = { ts: nowMs, appId: null, walletName: null, action: 'quorum.admin-login', opHash: null, detail: {} as Record<string, unknown> };
    const quorum = await readQuorumSettings(tx, barrier, { sealed: ctx.quorumSealed?.() ?? false });
    try {
      if (issuedAt > nowMs + 60_000 || nowMs - issuedAt > LOGIN_CHALLENGE_TTL_MS)
        throw new CustosError('challenge_required', 'the login page is too old: load it again', { details: { field: 'issuedAt' } });
      const entry = passkeyAdminOf(quorum, request.proof);
      base.detail = { admin: entry.publicKey };
      await useAdminPasskey(tx, barrier, rp, entry, request.proof, loginChallenge(barrier, issuedAt, nonce));
      const expiresAt = nowMs + ADMIN_SESSION_TTL_MS;
      await tx.appendAudit(auditRecord({ ...base, detail: { admin: entry.publicKey, expiresAt } }, { allowed: {} }));
      return {
        ok: true as const,
        value: { adminId: entry.publicKey, expiresAt, token: `${entry.publicKey}.${expiresAt}.${sessionMac(barrier, entry.publicKey, expiresAt)}` },
      };
    } catch (error) {
      if (!(error instanceof CustosError) || error.code === 'store_unavailable' || error.code === 'internal') throw error;
      return deny<{ adminId: string; token: string; expiresAt: number }>(tx, base, error);
    }
  });
  return settle(outcome);
}

/**
 * The admin a session token names, when its MAC holds, it has not expired, and the admin set in
 * force still names that admin; else undefined.
 */
export async function checkAdminSession(ctx: KernelContext, token: string | undefined): Promise<AdminEntry | undefined> {
  if (token === undefined) return undefined;
  const barrier = ctx.requireBarrier();
  const match = /^(pk:[0-9a-f]{64})\.(\d{1,16})\.([0-9a-f]{16,128})$/.exec(token);
  if (match === null) return undefined;
  const [, adminId, expires, mac] = match as unknown as [string, string, string, string];
  const expiresAt = Number(expires);
  const expected = sessionMac(barrier, adminId, expiresAt);
  if (expected.length !== mac.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(mac))) return undefined;
  if (expiresAt <= ctx.now()) return undefined;
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  return passkeyAdmins(quorum).find((a) => a.publicKey === adminId);
}

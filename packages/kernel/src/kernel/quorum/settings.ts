import type { Barrier } from '../../barrier/Barrier.js';
import { CustosError, invalidInput } from '../../errors.js';
import type { SettingRecord, Store, StoreTx } from '../../store/types.js';
import { canonicalJson } from '../../util/canonicalJson.js';
import { assertOobAddress } from '../../consent/oobFactor.js';
import { sealedRootQuorum } from '../../seal/sealedRoot.js';
import { assertAdminPublicKey } from './adminKeys.js';
import { type AdminPasskeyCredential, adminPasskeyId, assertPasskeyAdminId, parseAdminPasskeyCredential } from './adminPasskeyCredential.js';
import { anchorRow, latestAnchor, rolledBack } from '../rowAnchors.js';

/**
 * Kernel settings that only a quorum changes: one MAC'd JSON row per name.
 *   `quorum`     — the admin set and its threshold M (QuorumSettings);
 *   `deployment` — the timelock delay, the webhook URL and the deployment's policy defaults
 *                  (DeploymentSettings), read by the other parts of issue 13.
 * A row whose MAC does not hold is `record_unreadable` (fail closed). The `quorum` row cannot be
 * deleted to switch the quorum off: the init or bootstrap that made it marked the sealed root
 * (sealedRootQuorum: part of the envelope's authenticated header, which a database writer cannot
 * remove without the signer failing to unseal), and a missing row under that mark is
 * `record_unreadable`; so is a missing row with a `quorum.bootstrap` record in the log.
 */

const SETTING_MAC_LABEL = 'custos.setting.v1';
export const QUORUM_SETTING = 'quorum';
export const DEPLOYMENT_SETTING = 'deployment';
export const QUORUM_BOOTSTRAP_ACTION = 'quorum.bootstrap';
const encoder = new TextEncoder();

export interface AdminEntry {
  /**
   * The admin's identity: an Ed25519 public key (64 lowercase hex digits) for a key-file admin, or
   * `pk:` and 64 hex digits (SHA-256 of the credential id) for a passkey admin (adminPasskeys.ts).
   */
  publicKey: string;
  /** A passkey admin's credential (absent for a key-file admin): what its assertions verify against. */
  passkey?: AdminPasskeyCredential;
  /** A label for people (e.g. a name), at most 64 characters. */
  name: string;
  /** Where the kernel announces proposals and their application to this admin (e-mail), if anywhere. */
  email?: string;
}

export interface QuorumSettings {
  /** M: approvals needed, the proposer's not counting (1 ≤ M ≤ N−1). */
  threshold: number;
  admins: AdminEntry[];
}

export interface DeploymentSettings {
  /** Delay of timelocked changes, seconds (default 48 h, never below 1 h). */
  timelockDelaySeconds: number;
  /** Where webhook events go, or null. */
  webhookUrl: string | null;
  /** The deployment's wallet policy defaults (issue 13 point 1 defines the shape; opaque here). */
  policyDefaults: Record<string, unknown>;
  /**
   * Raw hashes through the compatibility API under the quorum (`--compat-raw-hash` without one):
   * `policy` (the default: as /v1/sign/hash) or `allow` (the weaker mode). Absent from a payload: `policy`.
   */
  compatRawHash: 'allow' | 'policy';
}

export const DEFAULT_DEPLOYMENT_SETTINGS: DeploymentSettings = Object.freeze({
  timelockDelaySeconds: 48 * 3600,
  webhookUrl: null,
  policyDefaults: {},
  compatRawHash: 'policy',
}) as DeploymentSettings;
export const MIN_TIMELOCK_DELAY_SECONDS = 3600;
export const MAX_ADMINS = 32;

function macBytes(record: Omit<SettingRecord, 'mac'>): Uint8Array {
  return encoder.encode(canonicalJson({ name: record.name, value: record.value, version: record.version, updatedAt: record.updatedAt }));
}

/** A setting row with its MAC. */
export function settingRow(barrier: Barrier, name: string, value: unknown, version: number, updatedAt: number): SettingRecord {
  const row = { name, value: canonicalJson(value), version, updatedAt };
  return { ...row, mac: barrier.macRecord(SETTING_MAC_LABEL, macBytes(row)) };
}

/** The row's value, or record_unreadable when its MAC does not hold. */
function openSetting(barrier: Barrier, row: SettingRecord): unknown {
  if (!barrier.verifyRecordMac(SETTING_MAC_LABEL, macBytes(row), row.mac))
    throw new CustosError('record_unreadable', `the ${row.name} setting does not match its MAC: refusing to act`, { details: { setting: row.name } });
  return JSON.parse(row.value) as unknown;
}

/**
 * Checks an admin set: distinct valid keys, 1 ≤ M ≤ N−1 (quorum_threshold_invalid). Returns it normalised.
 * `field`: the prefix of the fields named in a refusal (`payload.` for a quorum.set proposal).
 * `requireEmail`: a new admin set (a bootstrap, a quorum.set proposal) must give every admin an e-mail
 * address — "every admin is told" of a freeze and of every proposal, and a set in which one admin
 * would be told nothing is refused (invalid_input naming `admins[i].email`). A stored set is read
 * without it: one made by an earlier version keeps working (docs/quorum.md "Every admin is told").
 */
export function parseQuorumSettings(value: unknown, { field = '', requireEmail = false }: { field?: string; requireEmail?: boolean } = {}): QuorumSettings {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput(`${field}quorum`, 'an object { threshold, admins }');
  const { threshold, admins, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalidInput(`${field}quorum`, 'only threshold and admins', Object.keys(rest).join(', '));
  if (!Array.isArray(admins) || admins.length === 0 || admins.length > MAX_ADMINS) throw invalidInput(`${field}admins`, `1–${MAX_ADMINS} admins`);
  const list: AdminEntry[] = admins.map((given, i) => {
    const at = `${field}admins[${i}]`;
    const e = (typeof given === 'string' ? { publicKey: given, name: '' } : given) as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object') throw invalidInput(at, 'a public key or { publicKey, name, email }');
    const { publicKey, name = '', email, passkey, ...other } = e;
    if (Object.keys(other).length > 0) throw invalidInput(at, 'only publicKey, name, email and passkey');
    if (typeof name !== 'string' || name.length > 64) throw invalidInput(`${at}.name`, 'at most 64 characters');
    // A passkey admin: `pk:…` naming exactly the credential it carries; a key-file admin: an Ed25519 key and no credential.
    const entry: AdminEntry =
      passkey === undefined
        ? { publicKey: assertAdminPublicKey(publicKey, `${at}.publicKey`), name }
        : { publicKey: assertPasskeyAdminId(publicKey, `${at}.publicKey`), name, passkey: parseAdminPasskeyCredential(passkey, `${at}.passkey`) };
    if (entry.passkey !== undefined && adminPasskeyId(entry.passkey.credentialId) !== entry.publicKey)
      throw invalidInput(`${at}.publicKey`, 'the passkey admin id of its credential (pk: and SHA-256 of the credential id)');
    if (email !== undefined) entry.email = assertOobAddressAt(email, `${at}.email`);
    else if (requireEmail)
      throw invalidInput(`${at}.email`, 'an e-mail address: every admin is told of each freeze and proposal, and an admin without one would be told nothing');
    return entry;
  });
  if (new Set(list.map((a) => a.publicKey)).size !== list.length) throw invalidInput(`${field}admins`, 'distinct public keys');
  if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 1 || threshold > list.length - 1)
    throw new CustosError('quorum_threshold_invalid', `the threshold must be an integer from 1 to N−1 = ${list.length - 1} (the proposer does not count)`, {
      details: { field: `${field}threshold`, admins: list.length, threshold: typeof threshold === 'number' ? threshold : null },
    });
  return { threshold, admins: list };
}

/** An admin's e-mail address, checked as a delivery address; a refusal names the admin's field. */
function assertOobAddressAt(email: unknown, field: string): string {
  try {
    return assertOobAddress('email', email).address;
  } catch (error) {
    if (error instanceof CustosError && error.code === 'invalid_input') throw invalidInput(field, 'an e-mail address (local@domain)');
    throw error;
  }
}

/** The admins of a set told nothing (no e-mail address: a set made by an earlier version), by public key. */
export function adminsWithoutEmail(quorum: QuorumSettings): string[] {
  return quorum.admins.filter((a) => a.email === undefined).map((a) => a.publicKey);
}

/** Checks deployment settings: every field present, the delay at least 1 h, the URL https (or http on localhost). */
export function parseDeploymentSettings(value: unknown): DeploymentSettings {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput('deployment', 'an object');
  const { timelockDelaySeconds, webhookUrl, policyDefaults, compatRawHash = 'policy', ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0)
    throw invalidInput('deployment', 'only timelockDelaySeconds, webhookUrl, policyDefaults and compatRawHash', Object.keys(rest).join(', '));
  if (typeof timelockDelaySeconds !== 'number' || !Number.isSafeInteger(timelockDelaySeconds) || timelockDelaySeconds < MIN_TIMELOCK_DELAY_SECONDS)
    throw invalidInput('timelockDelaySeconds', `an integer ≥ ${MIN_TIMELOCK_DELAY_SECONDS}`);
  if (webhookUrl !== null) {
    let url: URL | undefined;
    try {
      url = typeof webhookUrl === 'string' && webhookUrl.length <= 2048 ? new URL(webhookUrl) : undefined;
    } catch {
      url = undefined;
    }
    const local = url !== undefined && (url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]');
    if (url === undefined || !(url.protocol === 'https:' || (url.protocol === 'http:' && local)) || url.username !== '' || url.password !== '')
      throw invalidInput('webhookUrl', 'null or an https URL without credentials (http only on localhost)');
  }
  if (policyDefaults === null || typeof policyDefaults !== 'object' || Array.isArray(policyDefaults)) throw invalidInput('policyDefaults', 'an object');
  if (compatRawHash !== 'allow' && compatRawHash !== 'policy') throw invalidInput('compatRawHash', 'allow or policy');
  return { timelockDelaySeconds, webhookUrl: webhookUrl as string | null, policyDefaults: policyDefaults as Record<string, unknown>, compatRawHash };
}

type SettingSource = Pick<StoreTx, 'getSettingForUpdate' | 'latestRowAnchor'> | Pick<Store, 'readSetting' | 'readRowAnchor'>;

/**
 * A setting row, held to the log (rowAnchors.ts): every write anchors the row's version, and a row
 * older than the newest anchor (an earlier admin set or deployment settings put back), or missing
 * under one, is record_unreadable. The anchor is read first: a write committed between the two reads
 * shows a row newer than the anchor (taken), never an older one.
 */
async function readRow(source: SettingSource, name: string): Promise<SettingRecord | undefined> {
  const anchor = await latestAnchor(source, 'setting', name);
  const row = 'getSettingForUpdate' in source ? await source.getSettingForUpdate(name) : await source.readSetting(name);
  if (anchor !== undefined && (row === undefined || typeof anchor.state !== 'number' || row.version < anchor.state)) throw rolledBack('setting', anchor.seq);
  return row;
}

/** Writes a setting row and anchors its version in the log, in the caller's unit. */
export async function putAnchoredSetting(tx: Pick<StoreTx, 'putSetting' | 'appendAudit'>, row: SettingRecord): Promise<void> {
  await tx.putSetting(row);
  await anchorRow(tx, { row: 'setting', key: row.name, state: row.version, walletName: null, ts: row.updatedAt });
}

/**
 * The admin set, or undefined when none is configured. A missing row is record_unreadable (it was
 * deleted) when `sealed` says the sealed root carries the quorum mark (the caller's authenticated
 * view: the envelope the running kernel, the rekey or the bootstrap opened), and, in a unit (`tx`,
 * the row locked), when the log holds a `quorum.bootstrap` record.
 */
export async function readQuorumSettings(
  source: SettingSource | StoreTx,
  barrier: Barrier,
  { sealed = false }: { sealed?: boolean } = {},
): Promise<(QuorumSettings & { version: number }) | undefined> {
  const row = await readRow(source, QUORUM_SETTING);
  if (row === undefined) {
    if (sealed)
      throw new CustosError('record_unreadable', 'the sealed root says an admin quorum is configured but its row is gone: refusing to act', {
        details: { setting: QUORUM_SETTING },
      });
    if ('hasAuditAction' in source && (await source.hasAuditAction(QUORUM_BOOTSTRAP_ACTION)))
      throw new CustosError('record_unreadable', 'the admin set was bootstrapped but its row is gone: refusing to act', {
        details: { setting: QUORUM_SETTING },
      });
    return undefined;
  }
  return { ...parseQuorumSettings(openSetting(barrier, row)), version: row.version };
}

/**
 * The deployment settings (DEFAULT_DEPLOYMENT_SETTINGS while no row exists and no quorum is
 * configured), MAC checked. For the other parts of issue 13: pass the unit's tx (locked read) or the
 * store (unlocked). Under an admin quorum the row always exists (the bootstrap writes it), so a
 * missing row was deleted: record_unreadable (fail closed, never the defaults nor the flags) — when
 * the admin set's row is there, or when `quorum` says so (the caller's sealed-root mark or sticky view).
 */
export async function readDeploymentSettings(
  source: SettingSource,
  barrier: Barrier,
  { quorum = false }: { quorum?: boolean } = {},
): Promise<DeploymentSettings & { version: number }> {
  const row = await readRow(source, DEPLOYMENT_SETTING);
  if (row === undefined) {
    if (quorum || (await readRow(source, QUORUM_SETTING)) !== undefined) throw deploymentSettingsMissing();
    return { ...DEFAULT_DEPLOYMENT_SETTINGS, policyDefaults: {}, version: 0 };
  }
  return { ...parseDeploymentSettings(openSetting(barrier, row)), version: row.version };
}

/** A missing deployment settings row under an admin quorum (it was deleted): record_unreadable. */
export function deploymentSettingsMissing(): CustosError {
  return new CustosError('record_unreadable', 'an admin quorum is configured but the deployment settings row is gone: refusing to act', {
    details: { setting: DEPLOYMENT_SETTING },
  });
}

/** Writes a setting's next version (in the unit that decided it). */
export async function writeSetting(tx: StoreTx, barrier: Barrier, name: string, value: unknown, nowMs: number): Promise<SettingRecord> {
  const current = await readRow(tx, name);
  if (current !== undefined) openSetting(barrier, current);
  const row = settingRow(barrier, name, value, (current?.version ?? 0) + 1, nowMs);
  await putAnchoredSetting(tx, row);
  return row;
}

/**
 * Whether an admin set is configured, seen without the barrier (the CLI's direct writes ask this):
 * the sealed root's quorum mark (a database writer who strips it leaves a signer that no longer
 * unseals), its row, or the bootstrap's audit record should the row have been deleted.
 */
export async function quorumConfigured(store: Store): Promise<boolean> {
  const meta = await store.getMeta();
  if (meta !== undefined && sealedRootQuorum(meta.sealedRoot)) return true;
  if ((await store.readSetting(QUORUM_SETTING)) !== undefined) return true;
  return store.transact((tx) => tx.hasAuditAction(QUORUM_BOOTSTRAP_ACTION));
}

/** The refusal of a direct write of quorum-protected state on a signer with an admin set. */
export function quorumRequired(what: string): CustosError {
  return new CustosError('quorum_required', `an admin quorum is configured: ${what} needs a proposal — use custos admin propose`);
}

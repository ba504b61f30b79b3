import type { Barrier } from '../../barrier/Barrier.js';
import { CustosError, type ErrorCode, invalidInput } from '../../errors.js';
import { type ApiKeyRecord, OPERATOR_TENANT, type StoreTx } from '../../store/types.js';
import { assertTenantName } from '../../util/assertTenantName.js';
import { assertLimitsFitScopes, parseApiKeyLimits } from '../apiKeyLimits.js';
import { anchorKeyLimits, assertApiKeyName, parseScopes } from '../manageApiKeys.js';
import { candidateEntryOf } from './adminPasskeys.js';
import { macApiKey } from './apiKeyMac.js';
import {
  DEPLOYMENT_SETTING,
  type DeploymentSettings,
  parseDeploymentSettings,
  parseQuorumSettings,
  QUORUM_SETTING,
  type QuorumSettings,
  writeSetting,
} from './settings.js';

/**
 * The proposal-kind registry. A kind says how to read its payload (`parse`: throws invalid_input,
 * or a kind's own code, for anything it does not accept — unknown members included, so that what
 * the admins approve has one meaning), how to show it to an approver (`describe`: one line), and
 * how to apply it (`apply`: inside the unit that counted the last approval, with that unit's
 * audit record; it returns a JSON value without secrets, recorded as the proposal's result).
 * Other parts of the kernel register their kinds through KernelOptions.proposalKinds.
 */
export interface ProposalKind<P> {
  readonly kind: string;
  parse(payload: unknown): P;
  describe(p: P): string;
  apply(tx: StoreTx, ctx: ProposalApplyContext, p: P, meta: ProposalMeta): Promise<unknown>;
  /**
   * What the proposal acts on, as the kernel stores it now (a kind that approves something stored,
   * e.g. `wallet.change.approve`): shown to every approver beside the payload. `matches: false` when
   * the stored thing is not the one the payload names (approving is then refused with `refusal`).
   * Read in a unit of its own (getProposal) or in the approval's unit; a store failure is thrown.
   */
  inspect?(tx: StoreTx, p: P): Promise<ProposalSubject>;
}

/** What a proposal acts on, as stored: lines for the approver (no secrets) and the structured view. */
export interface ProposalSubject {
  /** One line per fact (kind, wallet, state, effective time, each field of a policy diff …). */
  lines: string[];
  /** The stored thing as data (payload shown, secrets withheld). */
  stored: unknown;
  /** False: the stored thing does not match the proposal; approving it is refused. */
  matches: boolean;
  /** Why it does not match: the error code an approval is refused with, and its message. */
  refusal?: { code: ErrorCode; message: string };
}

export interface ProposalApplyContext {
  barrier: Barrier;
  nowMs: number;
}

export interface ProposalMeta {
  id: string;
  kind: string;
  payloadHash: string;
  proposer: string;
  /** The admins whose approvals met the threshold. */
  approvers: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds kinds of every payload type
export type AnyProposalKind = ProposalKind<any>;

const KIND_NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;

/** A registry of kinds by name; refuses malformed or duplicate names. */
export function proposalRegistry(kinds: readonly AnyProposalKind[]): ReadonlyMap<string, AnyProposalKind> {
  const map = new Map<string, AnyProposalKind>();
  for (const k of kinds) {
    if (!KIND_NAME.test(k.kind) || k.kind.length > 64) throw invalidInput('proposalKinds', 'dotted lowercase names of at most 64 characters', k.kind);
    if (map.has(k.kind)) throw invalidInput('proposalKinds', 'one kind per name', k.kind);
    map.set(k.kind, k);
  }
  return map;
}

function exactObject(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput(field, 'an object');
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw invalidInput(field, `only ${allowed.join(', ')}`, extra.join(', '));
  return value as Record<string, unknown>;
}

/** `apikey.create`: a key whose token the proposer generated locally; the payload carries only its id and secret hash. */
export interface ApiKeyCreatePayload {
  id: string;
  name: string;
  tenant: string;
  scopes: ApiKeyRecord['scopes'];
  /** SHA-256 of the token's secret part, hex (apiKeyToken.ts hashApiKeySecret). */
  secretHash: string;
  /** When the key stops working (ms since the epoch); absent: never (apiKeyLimits.ts). */
  expiresAt?: number;
  /** The key reaches only its tenant's wallets whose names start with this; absent: all of them. */
  walletPrefix?: string;
}

export const apiKeyCreateKind: ProposalKind<ApiKeyCreatePayload> = {
  kind: 'apikey.create',
  parse(payload) {
    const p = exactObject(payload, 'payload', ['id', 'name', 'tenant', 'scopes', 'secretHash', 'expiresAt', 'walletPrefix']);
    if (typeof p.id !== 'string' || !/^[0-9a-f]{16}$/.test(p.id)) throw invalidInput('payload.id', 'a key id of 16 lowercase hex digits');
    const name = assertApiKeyName(p.name, 'payload.name');
    const tenant = assertTenantName(p.tenant, 'payload.tenant');
    if (!Array.isArray(p.scopes) || p.scopes.some((s) => typeof s !== 'string')) throw invalidInput('payload.scopes', 'a list of scopes');
    const scopes = parseScopes(p.scopes as string[]);
    if (scopes.length !== p.scopes.length) throw invalidInput('payload.scopes', 'distinct scopes');
    if (scopes.includes('admin') && tenant !== OPERATOR_TENANT) throw invalidInput('payload.scopes', `the admin scope only for tenant '${OPERATOR_TENANT}'`);
    if (typeof p.secretHash !== 'string' || !/^[0-9a-f]{64}$/.test(p.secretHash)) throw invalidInput('payload.secretHash', '32 bytes, lowercase hex');
    // The limits' shape now (an expiry in the past is refused when the proposal is applied).
    const limits = parseApiKeyLimits({ expiresAt: p.expiresAt, walletPrefix: p.walletPrefix }, Number.NEGATIVE_INFINITY, 'payload.');
    assertLimitsFitScopes(limits, scopes, 'payload.');
    return {
      id: p.id,
      name,
      tenant,
      scopes,
      secretHash: p.secretHash,
      ...(limits.expiresAt === null ? {} : { expiresAt: limits.expiresAt }),
      ...(limits.walletPrefix === null ? {} : { walletPrefix: limits.walletPrefix }),
    };
  },
  describe: (p) =>
    `create API key ${p.id} "${p.name}" for tenant ${p.tenant} with scopes ${p.scopes.join(',')}${p.expiresAt === undefined ? '' : `, expiring ${new Date(p.expiresAt).toISOString()}`}${p.walletPrefix === undefined ? '' : `, for wallets named ${JSON.stringify(p.walletPrefix)}…`}`,
  async apply(tx, ctx, p) {
    if ((await tx.listApiKeysForUpdate()).some((k) => k.id === p.id))
      throw new CustosError('proposal_exists', `an API key with id ${p.id} exists already`, { details: { field: 'payload.id' } });
    const record: ApiKeyRecord = {
      id: p.id,
      name: p.name,
      tenant: p.tenant,
      scopes: p.scopes,
      secretHash: new Uint8Array(Buffer.from(p.secretHash, 'hex')),
      createdAt: ctx.nowMs,
      revokedAt: null,
      mac: null,
      ...parseApiKeyLimits({ expiresAt: p.expiresAt, walletPrefix: p.walletPrefix }, ctx.nowMs, 'payload.'),
    };
    record.mac = macApiKey(ctx.barrier, record);
    await tx.insertApiKey(record);
    await anchorKeyLimits(tx, record);
    return { apiKeyId: p.id };
  },
};

/**
 * `quorum.set`: the whole admin set and M (1 ≤ M ≤ N−1), replacing the current one; every admin with
 * an e-mail address (refused at propose time otherwise: invalid_input naming `payload.admins[i].email`).
 */
export const quorumSetKind: ProposalKind<QuorumSettings> = {
  kind: 'quorum.set',
  parse: (payload) => parseQuorumSettings(payload, { field: 'payload.', requireEmail: true }),
  describe: (p) =>
    `set the admin quorum to ${p.threshold} of ${p.admins.length}: ${p.admins.map((a) => `${a.publicKey.slice(0, 16)}…${a.passkey === undefined ? '' : ' passkey'}${a.name === '' ? '' : ` (${a.name})`}`).join(', ')}`,
  async apply(tx, ctx, p) {
    // A passkey admin joins only as the candidate registered on this signer's enrolment page (its row
    // MAC'd, the same credential): else it could never act (its counter row is the fail-closed check).
    for (const [i, a] of p.admins.entries()) {
      if (a.passkey === undefined) continue;
      const row = await tx.getAdminPasskeyForUpdate(a.publicKey);
      const entry = row === undefined ? undefined : candidateEntryOf(ctx.barrier, row);
      if (
        entry === undefined ||
        entry.passkey.credentialId !== a.passkey.credentialId ||
        entry.passkey.publicKey !== a.passkey.publicKey ||
        entry.passkey.rpId !== a.passkey.rpId
      )
        throw invalidInput(`admins[${i}].passkey`, 'the credential of a passkey admin registered on this signer (custos admin candidates)');
    }
    const row = await writeSetting(tx, ctx.barrier, QUORUM_SETTING, p, ctx.nowMs);
    return { version: row.version };
  },
};

/** `deployment.settings`: the whole deployment settings row (timelock delay, webhook URL, policy defaults). */
export const deploymentSettingsKind: ProposalKind<DeploymentSettings> = {
  kind: 'deployment.settings',
  parse: parseDeploymentSettings,
  describe: (p) =>
    `set the deployment settings: timelock ${p.timelockDelaySeconds} s, webhook ${p.webhookUrl ?? 'none'}, policy defaults ${JSON.stringify(p.policyDefaults).slice(0, 200)}, compatibility raw hashes ${p.compatRawHash}`,
  async apply(tx, ctx, p) {
    const row = await writeSetting(tx, ctx.barrier, DEPLOYMENT_SETTING, p, ctx.nowMs);
    return { version: row.version };
  },
};

/**
 * `unsealer.change`: authorises one `custos rekey` to the unsealer it names. Applying it changes
 * nothing by itself; `custos rekey --proposal <id>` checks that the new unsealer matches and marks
 * the proposal `consumed` in the unit that switches the sealed root (quorum/proposals.ts
 * consumeUnsealerChange).
 */
export interface UnsealerChangePayload {
  unsealer: 'passphrase' | 'shamir' | 'pkcs11';
  shares?: number;
  threshold?: number;
  tokenLabel?: string;
  keyLabel?: string;
}

export const unsealerChangeKind: ProposalKind<UnsealerChangePayload> = {
  kind: 'unsealer.change',
  parse(payload) {
    const p = exactObject(payload, 'payload', ['unsealer', 'shares', 'threshold', 'tokenLabel', 'keyLabel']);
    if (p.unsealer === 'passphrase') {
      exactObject(payload, 'payload', ['unsealer']);
      return { unsealer: 'passphrase' };
    }
    if (p.unsealer === 'shamir') {
      exactObject(payload, 'payload', ['unsealer', 'shares', 'threshold']);
      const { shares, threshold } = p;
      if (typeof shares !== 'number' || !Number.isSafeInteger(shares) || shares < 2 || shares > 255) throw invalidInput('payload.shares', 'an integer 2–255');
      if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 2 || threshold > shares)
        throw invalidInput('payload.threshold', `an integer 2–${shares}`);
      return { unsealer: 'shamir', shares, threshold };
    }
    if (p.unsealer === 'pkcs11') {
      exactObject(payload, 'payload', ['unsealer', 'tokenLabel', 'keyLabel']);
      if (typeof p.tokenLabel !== 'string' || p.tokenLabel === '' || p.tokenLabel.length > 32) throw invalidInput('payload.tokenLabel', '1–32 characters');
      if (typeof p.keyLabel !== 'string' || p.keyLabel === '' || p.keyLabel.length > 64) throw invalidInput('payload.keyLabel', '1–64 characters');
      return { unsealer: 'pkcs11', tokenLabel: p.tokenLabel, keyLabel: p.keyLabel };
    }
    throw invalidInput('payload.unsealer', 'passphrase, shamir or pkcs11');
  },
  describe: (p) =>
    p.unsealer === 'shamir'
      ? `allow one rekey to Shamir shares, ${p.threshold} of ${p.shares}`
      : p.unsealer === 'pkcs11'
        ? `allow one rekey to a PKCS#11 key labelled ${p.keyLabel} on token ${p.tokenLabel}`
        : 'allow one rekey to a new passphrase',
  async apply() {
    return { authorizes: 'rekey' };
  },
};

/** The kinds the kernel itself registers. */
export const BUILT_IN_PROPOSAL_KINDS: readonly AnyProposalKind[] = [apiKeyCreateKind, quorumSetKind, deploymentSettingsKind, unsealerChangeKind];

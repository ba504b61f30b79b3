import type { AuditQuery, AuditRecord } from '../audit/types.js';
import { invalidInput } from '../errors.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { checkScope } from './authorize.js';
import { deny, type KernelContext } from './context.js';
import type { App } from './types.js';

/** GET /v1/audit's page size: default and bound. */
export const DEFAULT_AUDIT_PAGE = 100;
export const MAX_AUDIT_PAGE = 1000;

/** What GET /v1/audit takes (the route passes numbers for the numeric members; the kernel checks every one). */
export interface AuditListRequest {
  cursor?: unknown;
  limit?: unknown;
  walletName?: unknown;
  appId?: unknown;
  action?: unknown;
  decision?: unknown;
  opHash?: unknown;
  since?: unknown;
  until?: unknown;
}

export interface AuditPage {
  records: AuditRecord[];
  /** Where the next page starts: give it back as `cursor`. Present even on the last page, so that a follower polls from it for what is appended later. */
  nextCursor: string;
  /** Whether the page was full (more records may match already). */
  more: boolean;
}

/** Cursors are opaque to callers: `s` and the last seq read, in base 36. */
const CURSOR = /^s[0-9a-z]{1,11}$/;

/** The cursor of the records after `seq` (GET /v1/audit's nextCursor, `custos audit list`'s). */
export function encodeAuditCursor(seq: number): string {
  return `s${seq.toString(36)}`;
}

function decodeCursor(cursor: unknown): number {
  if (cursor === undefined) return 0;
  if (typeof cursor !== 'string' || !CURSOR.test(cursor)) throw invalidInput('cursor', 'a nextCursor of an earlier page');
  const seq = Number.parseInt(cursor.slice(1), 36);
  if (!Number.isSafeInteger(seq)) throw invalidInput('cursor', 'a nextCursor of an earlier page');
  return seq;
}

function optionalString(value: unknown, field: string, pattern: RegExp, expected: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) throw invalidInput(field, expected);
  return value;
}

function optionalTime(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidInput(field, 'ms since the epoch (a non-negative integer)');
  return value;
}

/** Checks GET /v1/audit's input into a store query; each bad member is invalid_input naming it. */
export function parseAuditListRequest(request: AuditListRequest): AuditQuery {
  const limit = request.limit ?? DEFAULT_AUDIT_PAGE;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE)
    throw invalidInput('limit', `an integer from 1 to ${MAX_AUDIT_PAGE}`);
  const walletName = request.walletName === undefined ? undefined : assertWalletName(request.walletName);
  const appId = optionalString(request.appId, 'appId', /^[A-Za-z0-9_.:-]{1,128}$/, 'an API key id');
  if (typeof request.action === 'string' && request.action.length > 64) throw invalidInput('action', 'at most 64 characters');
  const action = optionalString(
    request.action,
    'action',
    /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*(\.\*)?$/,
    'an audit action such as sign.transaction, or a prefix such as sign.*',
  );
  const decision = optionalString(request.decision, 'decision', /^(allowed|denied)$/, "'allowed' or 'denied'") as AuditQuery['decision'];
  const opHash = optionalString(request.opHash, 'opHash', /^[0-9a-f]{64}$/, '64 lower-case hex digits');
  const since = optionalTime(request.since, 'since');
  const until = optionalTime(request.until, 'until');
  if (since !== undefined && until !== undefined && until <= since) throw invalidInput('until', 'a time after since');
  return {
    afterSeq: decodeCursor(request.cursor),
    limit,
    ...(walletName === undefined ? {} : { walletName }),
    ...(appId === undefined ? {} : { appId }),
    ...(action === undefined ? {} : { action }),
    ...(decision === undefined ? {} : { decision }),
    ...(opHash === undefined ? {} : { opHash }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
  };
}

/**
 * A filtered page of the audit log, oldest first (scope `admin`, operator tenant only: the log
 * spans every tenant). A refusal is audited (`audit.read`, denied); an allowed read is not: it
 * changes nothing, and an export that appended a record per page would chase its own tail.
 * The records hold no secret (AuditEntry: codes, keys and secrets stay out).
 */
export async function listAudit(ctx: KernelContext, app: App, request: AuditListRequest): Promise<AuditPage> {
  ctx.requireBarrier();
  const forbidden = checkScope(app, 'admin');
  if (forbidden !== undefined) {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action: 'audit.read', opHash: null, detail: {} }, forbidden));
    throw forbidden;
  }
  const query = parseAuditListRequest(request);
  const records = await ctx.readStore(() => ctx.store.queryAudit(query));
  const last = records.at(-1);
  return { records, nextCursor: encodeAuditCursor(last === undefined ? query.afterSeq : last.seq), more: records.length === query.limit };
}

import type { Barrier } from '../../barrier/Barrier.js';
import { AUDIT_DETAIL_MAX_BYTES } from '../../audit/boundAuditDetail.js';
import type { AuditRecord } from '../../audit/types.js';
import { invalidInput } from '../../errors.js';
import type { Store, StoreTx } from '../../store/types.js';
import { canonicalJson } from '../../util/canonicalJson.js';
import { checkScope } from '../authorize.js';
import { auditRecord } from '../auditRecord.js';
import { deny, type KernelContext } from '../context.js';
import { enqueueMessage } from '../oobDelivery.js';
import type { App } from '../types.js';
import { adminsWithoutEmail, type QuorumSettings, readQuorumSettings } from './settings.js';

/** How long a message to the admins is worth sending. */
const ADMIN_MESSAGE_TTL_MS = 24 * 3600_000;
/** The bound of an admin's e-mail text (the outbox's): a longer notice ends with a pointer to its full text. */
export const ADMIN_MESSAGE_MAX_CHARS = 1000;
/** The audit action of a notice (the first record: its event, how many were told, its text or its first part). */
export const ADMIN_NOTICE_ACTION = 'admin.notice';
/** The audit action of the further parts of a long notice's text, right after its `admin.notice` record. */
export const ADMIN_NOTICE_PART_ACTION = 'admin.notice.part';
/** Characters of a notice's text one audit record carries (3 UTF-8 bytes each at most, escaped: well under the 4 KB bound). */
const NOTICE_PART_CHARS = 600;

/** What a notice tells of: a freeze or an unfreeze, a proposal made or applied, a change that waits for the quorum. */
export type AdminNoticeEvent = 'freeze' | 'unfreeze' | 'proposal' | 'proposal.applied' | 'change';

/** A notice as the admins read it (admin page, `custos admin notices`, GET /v1/admin/notices): its full text. */
export interface AdminNotice {
  /** The seq of its `admin.notice` audit record. */
  seq: number;
  ts: number;
  event: string;
  text: string;
  /** E-mails queued (one per admin with an address). */
  told: number;
  /** Admins of the set then in force who had no address, so were told nothing (a set made by an earlier version). */
  untold: number;
  /** False when a part of the text could not be found in the log (the text shown ends with a note saying so). */
  complete: boolean;
}

/**
 * The text of an admin's e-mail: the notice itself up to ADMIN_MESSAGE_MAX_CHARS, else cut before
 * that bound and ended with how much is left out and where to read it — never a silent cut.
 */
export function boundAdminMessage(text: string): string {
  if (text.length <= ADMIN_MESSAGE_MAX_CHARS) return text;
  const pointer = (left: number) => `… (${left} more characters: see the admin page or \`custos admin notices\`)`;
  // The pointer's own length depends on the number it carries: take the longest it can be.
  let cut = ADMIN_MESSAGE_MAX_CHARS - pointer(text.length).length;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1; // never half a surrogate pair
  return `${text.slice(0, cut)}${pointer(text.length - cut)}`;
}

/** A notice's text cut into the parts the log holds, in order (never inside a surrogate pair). */
function textParts(text: string): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < text.length || parts.length === 0) {
    let end = Math.min(at + NOTICE_PART_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(at, end));
    at = end;
  }
  return parts;
}

/**
 * "Every admin is told" (issue 13 points 3 and 4): in the caller's unit — so that the notice exists
 * only if the decision it tells of commits — queues `text` to every admin of `quorum` by e-mail
 * through the kernel's outbox (kind `quorum`; the text bounded by boundAdminMessage), and appends an
 * `admin.notice` audit record with the full text (inline under the log's 4 KB detail bound, else in
 * `admin.notice.part` records right after it): the list the admin page and `custos admin notices`
 * show. An admin without an address (a set made by an earlier version: new sets need one) is counted
 * `untold`. The wallet's name travels in the text only (walletName '' keeps the owner's "this was not
 * me" link out of an admin's message, and the record out of the owner's activity). Returns how many
 * e-mails were queued.
 */
export async function noticeAdmins(
  tx: StoreTx,
  ctx: Pick<KernelContext, 'random'>,
  barrier: Barrier,
  quorum: QuorumSettings,
  { event, text, nowMs }: { event: AdminNoticeEvent; text: string; nowMs: number },
): Promise<number> {
  const summaryText = boundAdminMessage(text);
  let told = 0;
  for (const admin of quorum.admins) {
    if (admin.email === undefined) continue;
    await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
      message: { kind: 'quorum', channel: 'email', address: admin.email, walletName: '', summaryText },
      approvalId: null,
      now: nowMs,
      expiresAt: nowMs + ADMIN_MESSAGE_TTL_MS,
    });
    told += 1;
  }
  const base = { ts: nowMs, appId: null, walletName: null, opHash: null };
  const detail = { event, told, untold: quorum.admins.length - told, chars: text.length };
  if (Buffer.byteLength(canonicalJson({ ...detail, text }), 'utf8') <= AUDIT_DETAIL_MAX_BYTES) {
    await tx.appendAudit(auditRecord({ ...base, action: ADMIN_NOTICE_ACTION, detail: { ...detail, text } }, { allowed: {} }));
    return told;
  }
  const [first = '', ...rest] = textParts(text);
  const head = await tx.appendAudit(
    auditRecord({ ...base, action: ADMIN_NOTICE_ACTION, detail: { ...detail, text: first, parts: rest.length + 1 } }, { allowed: {} }),
  );
  for (const [i, part] of rest.entries())
    await tx.appendAudit(
      auditRecord(
        { ...base, action: ADMIN_NOTICE_PART_ACTION, detail: { notice: head.seq, part: i + 2, parts: rest.length + 1, text: part } },
        { allowed: {} },
      ),
    );
  return told;
}

/**
 * `noticeAdmins` for the other parts of the kernel (a freeze, an unfreeze, a change that waits for the
 * quorum): the admin set read in the unit's view, unlocked (a freeze's unit holds the wallet's row: no
 * settings lock is taken after it). No admin set: nothing is queued nor recorded, and the decision's
 * own audit record is the notice. Returns how many e-mails were queued.
 */
export async function tellAdmins(tx: StoreTx, ctx: KernelContext, text: string, event: AdminNoticeEvent): Promise<number> {
  const barrier = ctx.requireBarrier();
  const quorum = await readQuorumSettings(ctx.store, barrier);
  if (quorum === undefined) return 0;
  return noticeAdmins(tx, ctx, barrier, quorum, { event, text, nowMs: ctx.now() });
}

/** A notice's detail as the log holds it; undefined for a record of another shape. */
function noticeDetail(record: AuditRecord): { event: string; told: number; untold: number; text: string; parts: number } | undefined {
  const d = record.detail as Record<string, unknown>;
  if (typeof d.text !== 'string' || typeof d.event !== 'string') return undefined;
  const parts = d.parts === undefined ? 1 : d.parts;
  if (typeof parts !== 'number' || !Number.isSafeInteger(parts) || parts < 1) return undefined;
  return { event: d.event, told: Number(d.told) || 0, untold: Number(d.untold) || 0, text: d.text, parts };
}

/**
 * The newest admin notices first, with their full text (parts joined from the records right after
 * each), read from the audit log. `beforeSeq`: the page before a notice's seq. A part that is not
 * where it should be leaves the notice marked incomplete, with a note in its text (never a silent cut).
 */
export async function readAdminNotices(store: Pick<Store, 'readAdminNotices' | 'readAudit'>, limit: number, beforeSeq?: number): Promise<AdminNotice[]> {
  const notices: AdminNotice[] = [];
  for (const record of await store.readAdminNotices(limit, beforeSeq)) {
    const d = noticeDetail(record);
    if (d === undefined) continue;
    let text = d.text;
    let complete = true;
    if (d.parts > 1) {
      const following = await store.readAudit(record.seq + 1, d.parts - 1);
      for (let part = 2; part <= d.parts; part += 1) {
        const r = following[part - 2];
        const pd = r?.detail as { notice?: unknown; part?: unknown; text?: unknown } | undefined;
        if (r === undefined || r.action !== ADMIN_NOTICE_PART_ACTION || pd?.notice !== record.seq || pd.part !== part || typeof pd.text !== 'string') {
          complete = false;
          break;
        }
        text += pd.text;
      }
      if (!complete) text += `\n[part of this notice is missing from the audit log: run custos audit verify]`;
    }
    notices.push({ seq: record.seq, ts: record.ts, event: d.event, text, told: d.told, untold: d.untold, complete });
  }
  return notices;
}

export const DEFAULT_NOTICE_LIMIT = 50;
export const MAX_NOTICE_LIMIT = 200;

/** The notices list and who of the set in force is told nothing. */
export interface AdminNoticeList {
  notices: AdminNotice[];
  /** Admins of the set in force without an e-mail address (a set made by an earlier version): told nothing until a quorum.set gives them one. */
  untoldAdmins: string[];
}

/**
 * The admin notices, newest first (scope `admin`; the admin page passes its own app after checking
 * the session): `limit` 1–200 (default 50), `before` a notice's seq for the page before it.
 */
export async function listAdminNotices(ctx: KernelContext, app: App, request: { limit?: unknown; before?: unknown }): Promise<AdminNoticeList> {
  const barrier = ctx.requireBarrier();
  const forbidden = checkScope(app, 'admin');
  if (forbidden !== undefined) {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action: 'quorum.read', opHash: null, detail: {} }, forbidden));
    throw forbidden;
  }
  const limit = request.limit ?? DEFAULT_NOTICE_LIMIT;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_NOTICE_LIMIT)
    throw invalidInput('limit', `an integer from 1 to ${MAX_NOTICE_LIMIT}`);
  const before = request.before;
  if (before !== undefined && (typeof before !== 'number' || !Number.isSafeInteger(before) || before < 1))
    throw invalidInput('before', 'a notice seq (a positive integer)');
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const notices = await ctx.readStore(() => readAdminNotices(ctx.store, limit, before));
  return { notices, untoldAdmins: quorum === undefined ? [] : adminsWithoutEmail(quorum) };
}

import { createHash } from 'node:crypto';
import { CustosError } from '../errors.js';
import type { Barrier } from '../barrier/Barrier.js';
import type { ApiKeyRecord, SessionRecord } from '../store/types.js';
import type { KernelContext } from './context.js';
import { assertNotExpired } from './apiKeyLimits.js';
import { appOfRecord, assertKeyRowAnchored } from './authorize.js';
import { latestAnchor } from './rowAnchors.js';
import type { App } from './types.js';

/**
 * Bearer sessions of the compatibility API (the TOTP ETH Signer's SDK logs in with its API key and
 * then presents a short-lived token): only the token's hash is stored; a session dies with its API
 * key's revocation.
 */
export class Sessions {
  readonly #ctx: KernelContext;
  readonly #ttlSeconds: number;
  #lastSweep = 0;

  constructor(ctx: KernelContext, ttlSeconds: number) {
    this.#ctx = ctx;
    this.#ttlSeconds = ttlSeconds;
  }

  /** API key (app) → short-lived bearer token. */
  async create(app: App): Promise<{ accessToken: string; expiresIn: number }> {
    const ctx = this.#ctx;
    // Expired sessions are useless (and refused); sweep them at most once a minute.
    if (ctx.now() - this.#lastSweep > 60_000) {
      this.#lastSweep = ctx.now();
      await ctx.readStore(() => ctx.store.deleteExpiredSessions(ctx.now()));
    }
    const accessToken = Buffer.from(ctx.random(32)).toString('base64url');
    const session: SessionRecord = { tokenHash: hashSessionToken(accessToken), apiKeyId: app.id, expiresAt: ctx.now() + this.#ttlSeconds * 1000 };
    session.mac = ctx.requireBarrier().macRecord(SESSION_MAC_LABEL, sessionMacBytes(session));
    await ctx.readStore(() => ctx.store.insertSession(session));
    return { accessToken, expiresIn: this.#ttlSeconds };
  }

  /**
   * Bearer token → the app of its API key; unknown, expired and revoked are `unauthorized`.
   * `admit`: the quorum's check of the session row's MAC and of its key's row (Kernel).
   */
  async authenticate(token: unknown, admit?: (session: SessionRecord, key: ApiKeyRecord) => Promise<boolean>): Promise<App> {
    const ctx = this.#ctx;
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) throw new CustosError('unauthorized', 'missing or malformed session token');
    const session = await ctx.readStore(() => ctx.store.getSession(hashSessionToken(token)));
    if (session === undefined || session.expiresAt <= ctx.now()) throw new CustosError('unauthorized', 'unknown or expired session');
    // The log's anchor of the key first, then its row (as appOfApiKey): a lifted limit or a revocation put back is refused here too.
    const anchor = await ctx.readStore(() => latestAnchor(ctx.store, 'apikey', session.apiKeyId));
    const record = await ctx.readStore(() => ctx.store.getApiKey(session.apiKeyId));
    if (record === undefined || record.revokedAt !== null) throw new CustosError('unauthorized', 'the session’s API key is revoked');
    await assertKeyRowAnchored(ctx, record, anchor);
    if (admit !== undefined && !(await admit(session, record))) throw new CustosError('unauthorized', 'unknown or expired session');
    // A session lives no longer than its key (apiKeyLimits.ts).
    assertNotExpired(record, ctx.now());
    return appOfRecord(record);
  }
}

const SESSION_MAC_LABEL = 'custos.session.v1';

/** The bytes a session row's MAC covers. */
export function sessionMacBytes(session: SessionRecord): Uint8Array {
  return new TextEncoder().encode(`${session.tokenHash}\0${session.apiKeyId}\0${session.expiresAt}`);
}

/** Whether a session row carries a valid MAC (constant-time compare). */
export function sessionMacHolds(barrier: Barrier, session: SessionRecord): boolean {
  return typeof session.mac === 'string' && barrier.verifyRecordMac(SESSION_MAC_LABEL, sessionMacBytes(session), session.mac);
}

function hashSessionToken(token: string): string {
  return createHash('sha256').update('custos.session.v1\0').update(token).digest('hex');
}

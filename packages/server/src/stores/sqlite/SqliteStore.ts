import { chmodSync, existsSync } from 'node:fs';
import {
  AUDIT_GENESIS_HASH,
  type ApiKeyRecord,
  type ApprovalChange,
  type ApprovalRecord,
  type EnrollmentLinkChange,
  type EnrollmentLinkRecord,
  type PendingChangeRecord,
  type AuditCheckpoint,
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  CustosError,
  type SessionRecord,
  type SignerMeta,
  type Store,
  type HwkeyFactorRecord,
  type PasskeyCredentialRecord,
  type RpcAccountRecord,
  type RpcRequestRecord,
  type IdempotencyRecord,
  type PolicyUsageRecord,
  type WalletPolicyRecord,
  type StoreTx,
  type TotpFactorRecord,
  type TotpFactorState,
  type WalletRecord,
  type WalletPageEntry,
  type WalletRows,
  type AdminEnrollmentLinkRecord,
  type AdminPasskeyRecord,
  type ProposalApprovalRecord,
  type ProposalRecord,
  type SettingRecord,
} from '@custos/kernel';
import Database from 'better-sqlite3';
import { appendChained } from '../appendChained.js';
import { type BatchDriver, GroupCommit } from '../groupCommit.js';
import {
  approvalParams,
  duplicateApproval,
  duplicateEnrollmentLink,
  duplicateHwkey,
  duplicatePasskey,
  enrollmentLinkParams,
  pairWalletRows,
  hwkeyParams,
  passkeyParams,
  type Row,
  queryAuditSql,
  SQL,
  toApiKey,
  toAuditCheckpoint,
  toApprovalRecord,
  toEnrollmentLink,
  toAuditRecord,
  toMeta,
  toHwkey,
  toPasskey,
  toRpcAccount,
  toRpcRequest,
  toIdempotency,
  toPolicyUsage,
  toWalletPolicy,
  toSessionRecord,
  toTotpFactor,
  toWalletRecord,
  toRecoveryCodesRecord,
  recoveryCodesParams,
  toCancelBudgetRecord,
  cancelBudgetParams,
  cancelBudgetUpdateParams,
  toWalletRows,
  toWalletPage,
  walletPageParams,
  walletPageSql,
} from '../rows.js';
import { deleteFactorSql, factorRowVanished, pendingChangeParams, TIMELOCK_SQL, toPendingChange, toSafeAddress, vanishedChange } from '../pendingChangeRows.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import {
  claimOutboxSql,
  duplicateOobChannel,
  OOB_SQL,
  oobChannelParams,
  outboxParams,
  toApprovalDelivery,
  toOobChannel,
  toOutbox,
  vanished,
} from '../outboxRows.js';
import { retryWhileBusy, SQLITE_BUSY_TIMEOUT_MS } from './retryWhileBusy.js';
import {
  duplicateProposal,
  proposalAuditPattern,
  proposalParams,
  QUORUM_SQL,
  settingParams,
  toProposal,
  toProposalApproval,
  toSetting,
} from '../quorumRows.js';
import { ADMIN_PASSKEY_SQL, adminLinkParams, adminPasskeyParams, toAdminLink, toAdminPasskey } from '../adminPasskeyRows.js';

export interface SqliteStoreOptions {
  /** Path of the database file (created with mode 0600). */
  path: string;
  /** Told after each pending migration is applied (`custos migrate`'s progress): how many of how many. */
  onMigration?: (done: number, total: number) => void;
  /** Most units of work in one group-commit transaction. */
  maxBatch?: number;
  /** Most units waiting for a transaction; beyond it work is refused as `overloaded`. */
  maxPending?: number;
  /**
   * Time budget of one group-commit batch, ms (see GroupCommit): SQLite runs a batch synchronously
   * on the event loop, so a batch stops taking units after this long and commits.
   */
  maxBatchMs?: number;
  /**
   * How long an operation waits for a lock held by another connection (another process), ms, before
   * it fails store_unavailable. The wait is asynchronous (retryWhileBusy): the event loop goes on.
   */
  busyDeadlineMs?: number;
}

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL (a commit is durable when
 * it returns). Units of work that arrive together share one transaction (group commit, see
 * GroupCommit). SQLite's single writer (BEGIN IMMEDIATE) serialises batches across processes, and
 * the audit head is read inside that lock, which is what makes single use and the chain hold.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #path: string;
  /**
   * A second, read-only connection for the audit log's readers (GET /v1/audit, the SIEM stream,
   * checkpoints, exports, the admin notices and the freeze notifier, a wallet's history): opened on
   * first use. The store's own
   * connection sees the rows of a batch still open in it (a unit may await mid-batch — a passkey's
   * WebCrypto — and let such a reader run); a reader that saw seq N of a batch that then rolled back
   * would move its cursor past the record later committed as N (review MEDIUM). In WAL mode this
   * connection sees committed transactions only. An in-memory database has no second connection.
   */
  #committedDb: Database.Database | undefined;
  readonly #committedStatements = new Map<string, Database.Statement>();
  readonly #statements = new Map<string, Database.Statement>();
  readonly #commits: GroupCommit;
  #head: { seq: number; hash: string } = { seq: 0, hash: AUDIT_GENESIS_HASH };
  #headAtUnit = this.#head;
  #closed = false;
  /**
   * API keys by id, read on every request. Valid while PRAGMA data_version is unchanged: SQLite
   * changes it on this connection whenever another connection (`custos apikey revoke` in another
   * process) has committed, so a revocation made anywhere is seen by the very next request. This
   * connection's own writes to api_keys (StoreTx.insertApiKey / revokeApiKey) clear it directly.
   * Raw writes through `database` bypass both: tools must not write api_keys that way.
   */
  readonly #apiKeys = new Map<string, ApiKeyRecord>();
  #apiKeysDataVersion: unknown;
  readonly #dataVersion: Database.Statement;
  readonly #busyDeadlineMs: number;

  constructor({ path, maxBatch = 256, maxPending = 8192, maxBatchMs = 2, busyDeadlineMs = 5_000, onMigration }: SqliteStoreOptions) {
    const created = !existsSync(path);
    this.#path = path;
    this.#db = new Database(path);
    if (created && path !== ':memory:') chmodSync(path, 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    // Opening (migrations) runs before anything is served: there SQLite may wait for the lock itself.
    this.#db.pragma('busy_timeout = 5000');
    this.#migrate(onMigration);
    // From here on SQLite's own busy wait (which blocks the event loop) is a few ms; longer waits
    // for another process's lock are asynchronous retries (#retry).
    this.#db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    this.#busyDeadlineMs = busyDeadlineMs;
    this.#dataVersion = this.#db.prepare('PRAGMA data_version').pluck();
    this.#commits = new GroupCommit(this.#driver, { maxBatch, maxPending, maxBatchMs });
  }

  /** Prepared once per SQL text; shared statements are written with `$n` placeholders in order. */
  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sqlitePlaceholders(sql));
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Applies the pending migrations in one write transaction: all of them or none, and one commit
   * (one fsync with synchronous = FULL) rather than one each — most of opening a fresh store. A
   * store with nothing pending is only read.
   */
  #migrate(onMigration?: (done: number, total: number) => void): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = () => new Set((this.#db.prepare('SELECT version FROM schema_migrations').pluck().all() as unknown[]).map(Number));
    // versions are only ever added: what is applied now stays applied
    const current = applied();
    if (SQLITE_MIGRATIONS.every((m) => current.has(m.version))) return;
    this.#db
      .transaction(() => {
        // under the write lock (immediate): another process that migrated meanwhile left nothing to do
        const done = applied();
        const pending = SQLITE_MIGRATIONS.filter((m) => !done.has(m.version));
        for (const [i, m] of pending.entries()) {
          this.#db.exec(m.sql);
          this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
          onMigration?.(i + 1, pending.length);
        }
      })
      .immediate();
  }

  get stats(): GroupCommit['stats'] {
    return this.#commits.stats;
  }

  get commits(): GroupCommit {
    return this.#commits;
  }

  async schemaVersions(): Promise<number[]> {
    return (await this.#retry(() => this.#stmt(SQL.schemaVersions).all() as Row[])).map((r) => Number(r.version));
  }

  async getMeta(): Promise<SignerMeta | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getMeta).get() as Row | undefined);
    return row === undefined ? undefined : toMeta(row);
  }

  async initMeta(meta: SignerMeta): Promise<void> {
    try {
      await this.#retry(() => this.#stmt(SQL.initMeta).run(meta.signerId, meta.derivation, JSON.stringify(meta.sealedRoot), meta.createdAt));
    } catch (error) {
      if (isUniqueViolation(error)) throw new CustosError('already_initialized', 'the store already holds an initialised signer', { cause: error });
      throw error;
    }
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const version = this.#dataVersion.get();
    if (version !== this.#apiKeysDataVersion) {
      this.#apiKeys.clear();
      this.#apiKeysDataVersion = version;
    }
    const cached = this.#apiKeys.get(id);
    if (cached !== undefined) return copyApiKey(cached);
    const row = await this.#retry(() => this.#stmt(SQL.getApiKey).get(id) as Row | undefined);
    if (row === undefined) return undefined; // misses are not cached: a key created elsewhere is found at once
    const record = toApiKey(row);
    if (this.#apiKeys.size >= MAX_CACHED_API_KEYS) this.#apiKeys.clear();
    this.#apiKeys.set(id, record);
    return copyApiKey(record);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#retry(() => this.#stmt(SQL.listApiKeys).all() as Row[])).map(toApiKey);
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    // A write of this connection: data_version does not move for it, so the cached row goes here.
    this.#apiKeys.delete(id);
    await this.#retry(() => this.#stmt(SQL.touchApiKey).run(at, id, at));
  }

  async insertSession(record: SessionRecord): Promise<void> {
    await this.#retry(() => this.#stmt(SQL.insertSession).run(record.tokenHash, record.apiKeyId, record.expiresAt, record.mac ?? null));
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getSession).get(tokenHash) as Row | undefined);
    return row === undefined ? undefined : toSessionRecord(row);
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return (await this.#retry(() => this.#stmt(SQL.deleteExpiredSessions).run(now))).changes;
  }

  async readApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getApproval).get(id) as Row | undefined);
    return row === undefined ? undefined : toApprovalRecord(row);
  }

  async readApprovalByCapability(capabilityHash: string): Promise<ApprovalRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getApprovalByCapability).get(capabilityHash) as Row | undefined);
    return row === undefined ? undefined : toApprovalRecord(row);
  }

  async readPendingChangeByCapability(capabilityHash: string): Promise<PendingChangeRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(TIMELOCK_SQL.getPendingChangeByCapability).get(capabilityHash, capabilityHash) as Row | undefined);
    return row === undefined ? undefined : toPendingChange(row);
  }

  async readPendingChange(id: string): Promise<PendingChangeRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(TIMELOCK_SQL.getPendingChange).get(id) as Row | undefined);
    return row === undefined ? undefined : toPendingChange(row);
  }

  async readEnrollmentLinkByCapability(capabilityHash: string): Promise<EnrollmentLinkRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getEnrollmentLinkByCapability).get(capabilityHash) as Row | undefined);
    return row === undefined ? undefined : toEnrollmentLink(row);
  }

  async readWalletRows(walletName: string): Promise<WalletRows> {
    // One read transaction: one snapshot of the wallet, factor, passkey and delivery channel rows.
    return this.#retry(() =>
      this.#db.transaction(() => {
        const rows = toWalletRows(this.#stmt(SQL.readWalletRows).all(walletName) as Row[]);
        const oob = this.#stmt(OOB_SQL.getOobChannel).get(walletName) as Row | undefined;
        return oob === undefined ? rows : { ...rows, oob: toOobChannel(oob) };
      })(),
    );
  }

  async readWalletPage(query: { tenant: string; prefix: string | null; after: string | null; limit: number }): Promise<WalletPageEntry[]> {
    // One statement: one snapshot of the page's wallets and their rows.
    const { bounds, params } = walletPageParams(query);
    return toWalletPage(await this.#retry(() => this.#stmt(walletPageSql('', bounds)).all(...params) as Row[]));
  }

  async readApprovalDelivery(approvalId: string) {
    return toApprovalDelivery(await this.#retry(() => this.#stmt(OOB_SQL.readApprovalDelivery).get(approvalId) as Row | undefined));
  }

  async readWalletByOwnerLink(linkHash: string): Promise<WalletRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getWalletByOwnerLink).get(linkHash) as Row | undefined);
    return row === undefined ? undefined : toWalletRecord(row);
  }

  async readRowAnchor(subject: string): Promise<AuditRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.latestRowAnchor).get(subject) as Row | undefined);
    return row === undefined ? undefined : toAuditRecord(row);
  }

  async readWalletAudit(walletName: string, limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): Promise<AuditRecord[]> {
    return (await this.#retry(() => this.#committedStmt(SQL.readWalletAudit).all(walletName, beforeSeq, limit) as Row[])).map(toAuditRecord);
  }

  /** A statement on the committed-only connection (#committedDb); the store's own where there is none (`:memory:`). */
  #committedStmt(sql: string): Database.Statement {
    if (this.#path === ':memory:') return this.#stmt(sql);
    if (this.#committedDb === undefined) {
      this.#committedDb = new Database(this.#path, { readonly: true, fileMustExist: true });
      this.#committedDb.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    }
    let statement = this.#committedStatements.get(sql);
    if (statement === undefined) {
      statement = this.#committedDb.prepare(sqlitePlaceholders(sql));
      this.#committedStatements.set(sql, statement);
    }
    return statement;
  }

  async readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return (await this.#retry(() => this.#committedStmt(SQL.readAudit).all(fromSeq, limit) as Row[])).map(toAuditRecord);
  }

  async readAdminNotices(limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): Promise<AuditRecord[]> {
    return (await this.#retry(() => this.#committedStmt(SQL.readAdminNotices).all(beforeSeq, limit) as Row[])).map(toAuditRecord);
  }

  async queryAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = queryAuditSql(query);
    return (await this.#retry(() => this.#committedStmt(sql).all(...params) as Row[])).map(toAuditRecord);
  }

  async readAuditCheckpoints(fromSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    return (await this.#retry(() => this.#committedStmt(SQL.readAuditCheckpoints).all(fromSeq, limit) as Row[])).map(toAuditCheckpoint);
  }

  async readRpcAccount(tenant: string, address: string): Promise<RpcAccountRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getRpcAccount).get(tenant, address) as Row | undefined);
    return row === undefined ? undefined : toRpcAccount(row);
  }

  async listRpcAccounts(tenant: string, limit: number, after?: { createdAt: number; address: string }): Promise<RpcAccountRecord[]> {
    const rows = await this.#retry(
      () =>
        (after === undefined
          ? this.#stmt(SQL.listRpcAccounts).all(tenant, limit)
          : this.#stmt(SQL.listRpcAccountsAfter).all(tenant, after.createdAt, after.createdAt, after.address, limit)) as Row[],
    );
    return rows.map(toRpcAccount);
  }

  async readRpcRequest(tenant: string, requestKey: string): Promise<RpcRequestRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getRpcRequest).get(tenant, requestKey) as Row | undefined);
    return row === undefined ? undefined : toRpcRequest(row);
  }

  async readWalletPolicy(walletName: string): Promise<WalletPolicyRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(SQL.getWalletPolicy).get(walletName) as Row | undefined);
    return row === undefined ? undefined : toWalletPolicy(row);
  }

  async readPolicyUsage(walletName: string, since: number): Promise<PolicyUsageRecord[]> {
    return (await this.#retry(() => this.#stmt(SQL.listPolicyUsage).all(walletName, since) as Row[])).map(toPolicyUsage);
  }

  async listPasskeyRpIds(): Promise<string[]> {
    return (await this.#retry(() => this.#stmt(SQL.listPasskeyRpIds).all() as Row[])).map((r) => String(r.rp_id));
  }

  /** Whether the database answers (readiness probe). */
  async ping(): Promise<boolean> {
    try {
      this.#db.prepare('SELECT 1').get();
      return !this.#closed;
    } catch {
      return false;
    }
  }

  /** Whether writes work (readiness, Store.writable): after a failed write, a probe audit append (GroupCommit.writable). */
  writable(): Promise<boolean> {
    return this.#commits.writable();
  }

  /** How long the oldest unit waiting for the next transaction has waited (GroupCommit.queueDelayMs). */
  queueDelayMs(): number {
    return this.#commits.queueDelayMs;
  }

  /** A statement outside a batch (or the batch's BEGIN): SQLITE_BUSY is retried asynchronously (retryWhileBusy). */
  #retry<T>(run: () => T): Promise<T> {
    return retryWhileBusy(run, { deadlineMs: this.#busyDeadlineMs });
  }

  transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#commits.submit(work);
  }

  readonly #driver: BatchDriver = {
    begin: async () => {
      // The write lock: while another process holds it, wait without blocking the event loop.
      await this.#retry(() => this.#stmt('BEGIN IMMEDIATE').run());
      const row = this.#stmt('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
      this.#head = row === undefined ? { seq: 0, hash: AUDIT_GENESIS_HASH } : { seq: Number(row.seq), hash: String(row.hash) };
      return this.#tx;
    },
    markUnit: () => {
      this.#headAtUnit = this.#head;
    },
    savepoint: async () => {
      this.#stmt('SAVEPOINT unit').run();
    },
    releaseSavepoint: async () => {
      this.#stmt('RELEASE unit').run();
    },
    rollbackToSavepoint: async () => {
      this.#stmt('ROLLBACK TO unit').run();
      this.#stmt('RELEASE unit').run();
      this.#head = this.#headAtUnit;
    },
    commit: async () => {
      this.#stmt('COMMIT').run();
    },
    rollback: async () => {
      if (!this.#db.inTransaction) return;
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // already out of the transaction
      }
    },
  };

  readonly #tx: StoreTx = {
    getWalletForUpdate: async (walletName) => {
      const row = this.#stmt(SQL.getWalletRow).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toWalletRecord(row);
    },
    insertWallet: async (record: WalletRecord) => {
      this.#stmt(SQL.insertWallet).run(record.name, record.tenant, record.createdAt, record.mac);
    },
    updateWalletMac: async (walletName: string, mac: string) => {
      if (this.#stmt(SQL.updateWalletMac).run(mac, walletName).changes !== 1)
        throw new CustosError('store_unavailable', 'wallet row vanished during the transaction');
    },
    setWalletFrozen: async (walletName: string, frozenAt: number | null, mac: string) => {
      if (this.#stmt(SQL.setWalletFrozen).run(frozenAt, mac, walletName).changes !== 1)
        throw new CustosError('store_unavailable', 'wallet row vanished during the transaction');
    },
    setWalletOwnerLink: async (walletName: string, linkHash: string) => {
      this.#stmt(SQL.setWalletOwnerLink).run(linkHash, walletName, linkHash);
    },
    getWalletByOwnerLinkForUpdate: async (linkHash) => {
      const row = this.#stmt(SQL.getWalletByOwnerLink).get(linkHash) as Row | undefined;
      return row === undefined ? undefined : toWalletRecord(row);
    },
    getRecoveryCodesForUpdate: async (walletName) => {
      const row = this.#stmt(SQL.getRecoveryCodes).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toRecoveryCodesRecord(row);
    },
    putRecoveryCodes: async (record) => {
      this.#stmt(SQL.putRecoveryCodes).run(...recoveryCodesParams(record));
    },
    lockCancelBudget: async (fresh) => {
      this.#stmt(SQL.insertCancelBudget).run(...cancelBudgetParams(fresh));
      return toCancelBudgetRecord(this.#stmt(SQL.getCancelBudget).get(fresh.walletName, fresh.budgetKey) as Row);
    },
    updateCancelBudget: async (record) => {
      if (this.#stmt(SQL.updateCancelBudget).run(...cancelBudgetUpdateParams(record)).changes !== 1)
        throw new CustosError('store_unavailable', 'cancel budget row vanished during the transaction');
    },
    getTotpFactorForUpdate: async (walletName) => {
      const row = this.#stmt(SQL.getTotpFactor).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toTotpFactor(row);
    },
    listPasskeysForUpdate: async (walletName: string) => (this.#stmt(SQL.listPasskeys).all(walletName) as Row[]).map(toPasskey),
    insertPasskey: async (record: PasskeyCredentialRecord) => {
      if (this.#stmt(SQL.insertPasskey).run(...passkeyParams(record)).changes !== 1) throw duplicatePasskey();
    },
    getHwkeyFactorForUpdate: async (walletName: string) => {
      const row = this.#stmt(SQL.getHwkey).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toHwkey(row);
    },
    insertHwkeyFactor: async (record: HwkeyFactorRecord) => {
      if (this.#stmt(SQL.insertHwkey).run(...hwkeyParams(record)).changes !== 1) throw duplicateHwkey();
    },
    updateHwkeyFactorState: async (walletName: string, state: { windowStart: number; issued: number }, mac: string) => {
      if (this.#stmt(SQL.updateHwkeyState).run(state.windowStart, state.issued, mac, walletName).changes !== 1)
        throw new CustosError('store_unavailable', 'hwkey row vanished during the transaction');
    },
    updatePasskeyCounter: async (credentialId: string, counter: number, mac: string) => {
      if (this.#stmt(SQL.updatePasskeyCounter).run(counter, mac, credentialId).changes !== 1)
        throw new CustosError('store_unavailable', 'passkey row vanished during the transaction');
    },
    insertTotpFactor: async (record: TotpFactorRecord) => {
      try {
        this.#stmt(SQL.insertTotpFactor).run(
          record.walletName,
          record.secretEnvelope,
          record.lastAcceptedStep,
          record.failures,
          record.lockedUntilMs,
          record.createdAt,
          record.mac,
          record.enrolledVia,
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new CustosError('already_enrolled', 'wallet already has a TOTP factor', { cause: error, details: { field: 'walletName' } });
        throw error;
      }
    },
    updateTotpFactorState: async (walletName: string, state: TotpFactorState, mac: string) => {
      const changed = this.#stmt(SQL.updateTotpFactorState).run(state.lastAcceptedStep, state.failures, state.lockedUntilMs, mac, walletName).changes;
      if (changed !== 1) throw new CustosError('store_unavailable', 'factor row vanished during the transaction');
    },
    // The batch holds SQLite's single write lock (BEGIN IMMEDIATE): every read in it is "for update".
    insertApproval: async (record: ApprovalRecord) => {
      if (this.#stmt(SQL.insertApproval).run(...approvalParams(record)).changes !== 1) throw duplicateApproval();
    },
    getApprovalForUpdate: async (id: string) => {
      const row = this.#stmt(SQL.getApproval).get(id) as Row | undefined;
      return row === undefined ? undefined : toApprovalRecord(row);
    },
    getApprovalByCapabilityForUpdate: async (capabilityHash: string) => {
      const row = this.#stmt(SQL.getApprovalByCapability).get(capabilityHash) as Row | undefined;
      return row === undefined ? undefined : toApprovalRecord(row);
    },
    updateApproval: async (id: string, c: ApprovalChange) => {
      if (this.#stmt(SQL.updateApproval).run(c.state, c.decidedAt, c.evidence, c.consumedSeq, c.challenge, c.mac, c.batch ?? null, id).changes !== 1)
        throw new CustosError('store_unavailable', 'approval row vanished during the transaction');
    },
    countPendingApprovals: async (tenant: string, walletName: string, now: number) => ({
      wallet: Number((this.#stmt(SQL.countPendingApprovalsOfWallet).get(walletName, tenant, now) as Row).n),
      tenant: Number((this.#stmt(SQL.countPendingApprovalsOfTenant).get(tenant, now) as Row).n),
    }),
    listExpiredOpenApprovals: async (now: number, limit: number, after = { expiresAt: -1, id: '' }) =>
      (this.#stmt(SQL.listExpiredOpenApprovals).all(now, after.expiresAt, after.expiresAt, after.id, limit) as Row[]).map(toApprovalRecord),
    listPendingApprovalsOfApiKey: async (apiKeyId: string) => (this.#stmt(SQL.listPendingApprovalsOfApiKey).all(apiKeyId) as Row[]).map(toApprovalRecord),
    insertEnrollmentLink: async (record: EnrollmentLinkRecord) => {
      if (this.#stmt(SQL.insertEnrollmentLink).run(...enrollmentLinkParams(record)).changes !== 1) throw duplicateEnrollmentLink();
    },
    getEnrollmentLinkByCapabilityForUpdate: async (capabilityHash: string) => {
      const row = this.#stmt(SQL.getEnrollmentLinkByCapability).get(capabilityHash) as Row | undefined;
      return row === undefined ? undefined : toEnrollmentLink(row);
    },
    listPendingEnrollmentLinksOfWallet: async (walletName: string) =>
      (this.#stmt(SQL.listPendingEnrollmentLinksOfWallet).all(walletName) as Row[]).map(toEnrollmentLink),
    updateEnrollmentLink: async (id: string, c: EnrollmentLinkChange) => {
      if (this.#stmt(SQL.updateEnrollmentLink).run(c.state, c.completedAt, c.failures, c.mac, id).changes !== 1)
        throw new CustosError('store_unavailable', 'enrolment link row vanished during the transaction');
    },
    updateEnrollmentLinkSecret: async (id, c) => {
      if (this.#stmt(OOB_SQL.updateEnrollmentLinkSecret).run(c.secretEnvelope, c.pending, c.mac, id).changes !== 1) throw vanished('enrolment link');
    },
    insertPendingChange: async (record) => {
      this.#stmt(TIMELOCK_SQL.insertPendingChange).run(...pendingChangeParams(record));
    },
    getPendingChangeForUpdate: async (id) => {
      const row = this.#stmt(TIMELOCK_SQL.getPendingChange).get(id) as Row | undefined;
      return row === undefined ? undefined : toPendingChange(row);
    },
    getPendingChangeByCapabilityForUpdate: async (capabilityHash) => {
      const row = this.#stmt(TIMELOCK_SQL.getPendingChangeByCapability).get(capabilityHash, capabilityHash) as Row | undefined;
      return row === undefined ? undefined : toPendingChange(row);
    },
    listOpenPendingChangesOfWallet: async (walletName) =>
      (this.#stmt(TIMELOCK_SQL.listOpenPendingChangesOfWallet).all(walletName) as Row[]).map(toPendingChange),
    listPendingChangesDueBy: async (by, limit, after) =>
      (after === undefined
        ? (this.#stmt(TIMELOCK_SQL.listPendingChangesDueBy).all(by, limit) as Row[])
        : (this.#stmt(TIMELOCK_SQL.listPendingChangesDueAfter).all(by, after.effectiveAt, after.effectiveAt, after.id, limit) as Row[])
      ).map(toPendingChange),
    updatePendingChange: async (id, c) => {
      if (
        this.#stmt(TIMELOCK_SQL.updatePendingChange).run(c.state, c.effectiveAt, c.decidedAt, c.reminders, c.cancelFailures, c.consent, c.mac, id).changes !== 1
      )
        throw vanishedChange();
    },
    getSafeAddressForUpdate: async (walletName) => {
      const row = this.#stmt(TIMELOCK_SQL.getSafeAddress).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toSafeAddress(row);
    },
    putSafeAddress: async (record) => {
      this.#stmt(TIMELOCK_SQL.putSafeAddress).run(record.walletName, record.address, record.updatedAt, record.mac);
    },
    deleteFactorRow: async (kind, walletName, id) => {
      const [sql, params] = deleteFactorSql(kind, walletName, id);
      if (this.#stmt(sql).run(...params).changes !== 1) throw factorRowVanished();
    },
    getOobChannelForUpdate: async (walletName) => {
      const row = this.#stmt(OOB_SQL.getOobChannel).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toOobChannel(row);
    },
    insertOobChannel: async (record) => {
      if (this.#stmt(OOB_SQL.insertOobChannel).run(...oobChannelParams(record)).changes !== 1) throw duplicateOobChannel();
    },
    deleteOobChannel: async (walletName) => {
      if (this.#stmt(OOB_SQL.deleteOobChannel).run(walletName).changes !== 1) throw vanished('delivery channel');
    },
    updateOobChannelState: async (walletName, state, mac) => {
      if (this.#stmt(OOB_SQL.updateOobChannelState).run(state, mac, walletName).changes !== 1) throw vanished('delivery channel');
    },
    insertOutbox: async (record) => {
      this.#stmt(OOB_SQL.insertOutbox).run(...outboxParams(record));
    },
    countOutboxSince: async (walletName, since) => Number((this.#stmt(OOB_SQL.countOutboxSince).get(walletName, since) as { n: number }).n),
    countOutboxToAddressSince: async (addressTag, since) => Number((this.#stmt(OOB_SQL.countOutboxToAddressSince).get(addressTag, since) as { n: number }).n),
    // The batch holds SQLite's single write lock: one sender claims at a time.
    claimOutbox: async (now, limit, leaseUntil) => (this.#stmt(claimOutboxSql(OOB_SQL.claimOutboxIds)).all(leaseUntil, now, now, limit) as Row[]).map(toOutbox),
    updateOutbox: async (id, c) => {
      if (this.#stmt(OOB_SQL.updateOutbox).run(c.status, c.attempts, c.nextAttemptAt, c.leaseUntil, c.sentAt, c.lastError, id).changes !== 1)
        throw vanished('outbox');
    },
    claimRecordMacMigration: async () => this.#stmt(SQL.claimRecordMacMigration).run().changes === 1,
    hasAuditAction: async (action: string) => this.#stmt(SQL.hasAuditAction).get(action) !== undefined,
    latestRowAnchor: async (subject: string) => {
      const row = this.#stmt(SQL.latestRowAnchor).get(subject) as Row | undefined;
      return row === undefined ? undefined : toAuditRecord(row);
    },
    listWalletRows: async () => pairWalletRows(this.#stmt(SQL.listWalletRows).all() as Row[], this.#stmt(SQL.listTotpFactors).all() as Row[]),
    setRecordMacs: async (walletName: string, walletMac: string, totpMac: string | null) => {
      this.#stmt(SQL.updateWalletMac).run(walletMac, walletName);
      if (totpMac !== null) this.#stmt(SQL.updateTotpFactorMac).run(totpMac, walletName);
    },
    insertRpcAccount: async (r: RpcAccountRecord) =>
      this.#stmt(SQL.insertRpcAccount).run(r.tenant, r.address, r.walletName, r.keyIndex, r.createdAt).changes === 1,
    putRpcRequest: async (r: RpcRequestRecord) => {
      this.#stmt(SQL.putRpcRequest).run(r.tenant, r.requestKey, r.approvalId, r.operation, r.createdAt);
    },
    deleteRpcRequest: async (tenant: string, requestKey: string, approvalId: string) => {
      this.#stmt(SQL.deleteRpcRequest).run(tenant, requestKey, approvalId);
    },
    deleteRpcRequestsBefore: async (createdBefore: number) => this.#stmt(SQL.deleteRpcRequestsBefore).run(createdBefore).changes,
    deleteFinishedApprovalsBefore: async (before: number, limit: number) => this.#stmt(SQL.deleteFinishedApprovalsBefore).run(before, limit).changes,
    deleteEnrollmentLinksBefore: async (before: number, limit: number) => this.#stmt(SQL.deleteEnrollmentLinksBefore).run(before, limit).changes,
    deleteFinishedOutboxBefore: async (before: number, limit: number) => this.#stmt(SQL.deleteFinishedOutboxBefore).run(before, before, limit).changes,
    getIdempotency: async (tenant: string, apiKeyId: string, idempotencyKey: string) => {
      const row = this.#stmt(SQL.getIdempotency).get(tenant, apiKeyId, idempotencyKey) as Row | undefined;
      return row === undefined ? undefined : toIdempotency(row);
    },
    putIdempotency: async (r: IdempotencyRecord) => {
      this.#stmt(SQL.putIdempotency).run(r.tenant, r.apiKeyId, r.idempotencyKey, r.requestHash, r.response, r.createdAt);
    },
    deleteIdempotencyBefore: async (createdBefore: number, limit: number) => this.#stmt(SQL.deleteIdempotencyBefore).run(createdBefore, limit).changes,
    getWalletPolicy: async (walletName: string) => {
      const row = this.#stmt(SQL.getWalletPolicy).get(walletName) as Row | undefined;
      return row === undefined ? undefined : toWalletPolicy(row);
    },
    putWalletPolicy: async (r: WalletPolicyRecord) => {
      this.#stmt(SQL.putWalletPolicy).run(r.walletName, r.tenant, r.policy, r.updatedAt, r.mac);
    },
    listPolicyUsage: async (walletName: string, since: number) => (this.#stmt(SQL.listPolicyUsage).all(walletName, since) as Row[]).map(toPolicyUsage),
    insertPolicyUsage: async (r: PolicyUsageRecord) => {
      this.#stmt(SQL.insertPolicyUsage).run(r.walletName, r.auditSeq, r.ts, r.amounts);
    },
    deletePolicyUsageBefore: async (before: number) => this.#stmt(SQL.deletePolicyUsageBefore).run(before).changes,
    insertApiKey: async (record: ApiKeyRecord) => {
      this.#apiKeys.clear();
      this.#stmt(SQL.insertApiKey).run(
        record.id,
        record.name,
        record.tenant,
        record.scopes.join(','),
        Buffer.from(record.secretHash),
        record.createdAt,
        record.revokedAt,
        record.mac ?? null,
        record.expiresAt ?? null,
        record.walletPrefix ?? null,
      );
    },
    revokeApiKey: async (id: string, revokedAt: number) => {
      // cleared before the write: no request may see the key as valid once the revocation commits
      this.#apiKeys.clear();
      return this.#stmt(SQL.revokeApiKey).run(revokedAt, id).changes === 1;
    },
    swapSealedRoot: async (expected: unknown, next: unknown) =>
      this.#stmt(SQL.swapSealedRoot).run(JSON.stringify(next), JSON.stringify(expected)).changes === 1,
    appendAudit: async (entry: AuditEntry): Promise<AuditRecord> => {
      const record = await appendChained(this.#head, entry, (params) => this.#stmt(SQL.insertAudit).run(...params));
      this.#head = { seq: record.seq, hash: record.hash };
      return record;
    },
    auditHead: async () => ({ ...this.#head }),
    latestAuditCheckpointSeq: async () => Number((this.#stmt(SQL.latestAuditCheckpointSeq).get() as Row).seq),
    appendAuditCheckpoint: async (c: AuditCheckpoint) =>
      this.#stmt(SQL.insertAuditCheckpoint).run(c.seq, c.signerId, c.headHash, c.ts, c.publicKey, c.signature).changes === 1,

    // ---- issue 13: quorum (migration 15; quorumRows.ts) ----
    getSettingForUpdate: async (name) => {
      const row = this.#stmt(QUORUM_SQL.getSetting).get(name) as Row | undefined;
      return row === undefined ? undefined : toSetting(row);
    },
    putSetting: async (record) => {
      this.#stmt(QUORUM_SQL.putSetting).run(...settingParams(record));
    },
    listApiKeysForUpdate: async () => (this.#stmt(QUORUM_SQL.listApiKeys).all() as Row[]).map(toApiKey),
    setApiKeyMac: async (id, mac) => {
      this.#apiKeys.clear();
      if (this.#stmt(QUORUM_SQL.setApiKeyMac).run(mac, id).changes !== 1) throw vanished('API key');
    },
    insertProposal: async (record) => {
      if (this.#stmt(QUORUM_SQL.insertProposal).run(...proposalParams(record)).changes !== 1) throw duplicateProposal();
    },
    getProposalForUpdate: async (id) => {
      const row = this.#stmt(QUORUM_SQL.getProposal).get(id) as Row | undefined;
      return row === undefined ? undefined : toProposal(row);
    },
    updateProposal: async (id, c) => {
      if (this.#stmt(QUORUM_SQL.updateProposal).run(c.state, c.decidedAt, c.result, c.mac, id).changes !== 1) throw vanished('proposal');
    },
    insertProposalApproval: async (r) => this.#stmt(QUORUM_SQL.insertProposalApproval).run(r.proposalId, r.admin, r.signature, r.createdAt).changes === 1,
    listProposalApprovals: async (proposalId) => (this.#stmt(QUORUM_SQL.listProposalApprovals).all(proposalId) as Row[]).map(toProposalApproval),
    hasProposalAudit: async (proposalId) => this.#stmt(QUORUM_SQL.hasProposalAudit).get(proposalAuditPattern(proposalId)) !== undefined,

    // ---- issue 13: admin passkeys (migration 16; adminPasskeyRows.ts) ----
    insertAdminEnrollmentLink: async (record) => {
      this.#stmt(ADMIN_PASSKEY_SQL.insertLink).run(...adminLinkParams(record));
    },
    getAdminEnrollmentLinkForUpdate: async (tokenHash) => {
      const row = this.#stmt(ADMIN_PASSKEY_SQL.getLink).get(tokenHash) as Row | undefined;
      return row === undefined ? undefined : toAdminLink(row);
    },
    updateAdminEnrollmentLink: async (tokenHash, c) => {
      if (this.#stmt(ADMIN_PASSKEY_SQL.updateLink).run(c.usedAt, c.adminId, c.mac, tokenHash).changes !== 1) throw vanished('admin enrolment link');
    },
    insertAdminPasskey: async (record) => this.#stmt(ADMIN_PASSKEY_SQL.insertPasskey).run(...adminPasskeyParams(record)).changes === 1,
    getAdminPasskeyForUpdate: async (id) => {
      const row = this.#stmt(ADMIN_PASSKEY_SQL.getPasskey).get(id) as Row | undefined;
      return row === undefined ? undefined : toAdminPasskey(row);
    },
    updateAdminPasskeyCounter: async (id, counter, mac) => {
      if (this.#stmt(ADMIN_PASSKEY_SQL.updateCounter).run(counter, mac, id).changes !== 1) throw vanished('admin passkey');
    },
  };

  // ---- issue 13: quorum (migration 15) ----
  async readSetting(name: string): Promise<SettingRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(QUORUM_SQL.getSetting).get(name) as Row | undefined);
    return row === undefined ? undefined : toSetting(row);
  }

  async readProposal(id: string): Promise<ProposalRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(QUORUM_SQL.getProposal).get(id) as Row | undefined);
    return row === undefined ? undefined : toProposal(row);
  }

  async listProposals(limit: number): Promise<ProposalRecord[]> {
    return (await this.#retry(() => this.#stmt(QUORUM_SQL.listProposals).all(limit) as Row[])).map(toProposal);
  }

  async readProposalApprovals(proposalId: string): Promise<ProposalApprovalRecord[]> {
    return (await this.#retry(() => this.#stmt(QUORUM_SQL.listProposalApprovals).all(proposalId) as Row[])).map(toProposalApproval);
  }

  // ---- issue 13: admin passkeys (migration 16) ----
  async readAdminEnrollmentLink(tokenHash: string): Promise<AdminEnrollmentLinkRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(ADMIN_PASSKEY_SQL.getLink).get(tokenHash) as Row | undefined);
    return row === undefined ? undefined : toAdminLink(row);
  }

  async readAdminPasskey(id: string): Promise<AdminPasskeyRecord | undefined> {
    const row = await this.#retry(() => this.#stmt(ADMIN_PASSKEY_SQL.getPasskey).get(id) as Row | undefined);
    return row === undefined ? undefined : toAdminPasskey(row);
  }

  async listAdminPasskeys(): Promise<AdminPasskeyRecord[]> {
    return (await this.#retry(() => this.#stmt(ADMIN_PASSKEY_SQL.listPasskeys).all() as Row[])).map(toAdminPasskey);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#commits.close();
    this.#committedDb?.close();
    this.#db.close();
  }

  /** For tests and tools: raw access to the database handle. */
  get database(): Database.Database {
    return this.#db;
  }
}

/** Shared SQL's `$1..$n` placeholders (in order) as SQLite's `?`. */
function sqlitePlaceholders(sql: string): string {
  let expected = 1;
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    if (Number(n) !== expected) throw new Error(`placeholders must be $1..$n in order: ${sql}`);
    expected += 1;
    return '?';
  });
}

/** API keys kept by the cache at most (a deployment has a handful; the bound only caps memory). */
const MAX_CACHED_API_KEYS = 1024;

function isUniqueViolation(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || error.code === 'SQLITE_CONSTRAINT_UNIQUE')
  );
}

/**
 * A copy of a cached API key record: a caller that wipes `secretHash` or edits `scopes` must not
 * change what the next lookup of the key sees (no mutable aliases into the cache).
 */
function copyApiKey(record: ApiKeyRecord): ApiKeyRecord {
  return { ...record, scopes: [...record.scopes], secretHash: Uint8Array.from(record.secretHash) };
}

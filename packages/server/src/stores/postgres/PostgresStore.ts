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
import pg from 'pg';
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
import { POSTGRES_MIGRATIONS } from './migrations.js';
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

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db` */
  connectionString: string;
  /**
   * Told after each pending migration is applied (`custos migrate`'s progress): how many of how many.
   * With it, the migrations go one query each (in the one transaction) rather than one script.
   */
  onMigration?: (done: number, total: number) => void;
  /** Schema holding the tables (created if missing); default `public`. */
  schema?: string;
  /** Connections in the pool (one of them is the batch writer). */
  poolSize?: number;
  /** Most units of work in one group-commit transaction. */
  maxBatch?: number;
  /** Most units waiting for a transaction; beyond it work is refused as `overloaded`. */
  maxPending?: number;
  /**
   * Time budget of one group-commit batch, ms (default 250; see GroupCommit): a unit's statements are
   * network round trips, so a batch of 256 units on a busy server ran for seconds, and none of its
   * units was answered before its COMMIT (issue 14, point 5: the kernel answered nothing for 8 s
   * after a load stopped). After this long a batch stops taking units and commits.
   */
  maxBatchMs?: number;
  /** Apply pending migrations at open (default). Off for a read-only look at a store that may be empty. */
  migrate?: boolean;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The scale-out store: any number of stateless kernel replicas on one PostgreSQL database.
 * Units of work that arrive together in one process share one transaction (group commit), each in
 * its own savepoint. Every batch first locks the audit head row (`SELECT … FOR UPDATE`), so
 * batches from all replicas serialise on it: the audit chain is one sequence with no fork or gap,
 * and the factor rows read in a batch cannot change under it — single use and throttle counters
 * hold across replicas because the database enforces them, not memory.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly schema: string;
  readonly #commits: GroupCommit;
  #writer: pg.PoolClient | undefined;
  #closed = false;
  #head: { seq: number; hash: string } = { seq: 0, hash: AUDIT_GENESIS_HASH };
  #headAtBatch = this.#head;
  #headAtUnit = this.#head;

  private constructor({ connectionString, schema = 'public', poolSize = 8, maxBatch = 256, maxPending = 8192, maxBatchMs = 250 }: PostgresStoreOptions) {
    if (!SCHEMA_NAME.test(schema)) throw new CustosError('invalid_input', 'store schema: expected [a-z_][a-z0-9_]*', { details: { field: 'schema' } });
    this.schema = schema;
    this.#commits = new GroupCommit(this.#driver, { maxBatch, maxPending, maxBatchMs });
    // Liveness across replicas: a replica that freezes mid-batch (pause, partition) must not hold the
    // audit-head lock forever. The server aborts a transaction idle for 10 s, and a batch waits at
    // most 5 s for a lock; either way the waiting requests fail closed with store_unavailable.
    this.#pool = new pg.Pool({
      connectionString,
      max: poolSize,
      options: `-c search_path=${schema} -c lock_timeout=5000 -c idle_in_transaction_session_timeout=10000`,
      application_name: `custos:${schema}`,
      keepAlive: true,
    });
    // An idle client that loses its connection must not crash the process.
    this.#pool.on('error', () => undefined);
  }

  /** Connects, creates the schema if needed and applies pending migrations. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      if (options.migrate === false) await store.#pool.query('SELECT 1');
      else await store.#migrate(options.onMigration);
    } catch (error) {
      await store.#pool.end().catch(() => undefined);
      throw new CustosError('store_unavailable', `cannot open the PostgreSQL store: ${describe(error)}`, { cause: error });
    }
    return store;
  }

  /**
   * Applies the pending migrations in one transaction: all of them or none (PostgreSQL's DDL is
   * transactional), with one commit and a few round trips rather than a transaction each — opening
   * a fresh store is most of a new replica's (and a test's) start-up. A store with nothing pending
   * takes one read and no lock.
   */
  async #migrate(onMigration?: (done: number, total: number) => void): Promise<void> {
    const client = await this.#pool.connect();
    try {
      if (this.schema !== 'public') await ignoreDuplicate(() => client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`));
      await ignoreDuplicate(() =>
        client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)'),
      );
      const applied = async () =>
        new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r: { version: number }) => Number(r.version)));
      // versions are only ever added: what is applied now stays applied
      const current = await applied();
      if (POSTGRES_MIGRATIONS.every((m) => current.has(m.version))) return;
      await client.query('BEGIN');
      try {
        // Concurrent replicas starting together: the table lock makes one apply, the others wait and
        // skip. They wait for all the pending migrations at once, so longer than the pool's 5 s.
        await client.query("SET LOCAL lock_timeout = '60s'; LOCK TABLE schema_migrations IN EXCLUSIVE MODE");
        const done = await applied();
        const pending = POSTGRES_MIGRATIONS.filter((m) => !done.has(m.version));
        // One simple-protocol query for all of them: each migration's SQL, then its row (the version
        // and name are this file's constants, checked here all the same).
        const now = Date.now();
        const script = pending.map((m) => {
          if (!Number.isInteger(m.version) || !/^[a-z0-9_]+$/.test(m.name)) throw new Error(`migration ${m.version}: bad version or name`);
          return `${m.sql};\nINSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, '${m.name}', ${now});`;
        });
        if (onMigration === undefined) {
          if (script.length > 0) await client.query(script.join('\n'));
        } else
          for (const [i, part] of script.entries()) {
            await client.query(part);
            onMigration(i + 1, script.length);
          }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      client.release();
    }
  }

  async schemaVersions(): Promise<number[]> {
    return (await this.#read(SQL.schemaVersions)).map((r) => Number(r.version));
  }

  async #read(sql: string, params: unknown[] = []): Promise<Row[]> {
    if (this.#closed) throw new CustosError('store_unavailable', 'the store is closed');
    try {
      return (await this.#pool.query(sql, params)).rows as Row[];
    } catch (error) {
      throw new CustosError('store_unavailable', `store query failed: ${describe(error)}`, { cause: error });
    }
  }

  async getMeta(): Promise<SignerMeta | undefined> {
    let row: Row | undefined;
    try {
      [row] = (await this.#pool.query(SQL.getMeta)).rows as Row[];
    } catch (error) {
      // A schema never migrated holds no signer (opened with migrate: false).
      if (pgCode(error) === '42P01') return undefined;
      throw new CustosError('store_unavailable', `store query failed: ${describe(error)}`, { cause: error });
    }
    return row === undefined ? undefined : toMeta(row);
  }

  async initMeta(meta: SignerMeta): Promise<void> {
    try {
      await this.#pool.query(SQL.initMeta, [meta.signerId, meta.derivation, JSON.stringify(meta.sealedRoot), meta.createdAt]);
    } catch (error) {
      if (pgCode(error) === '23505') throw new CustosError('already_initialized', 'the store already holds an initialised signer', { cause: error });
      throw new CustosError('store_unavailable', `store write failed: ${describe(error)}`, { cause: error });
    }
  }

  /**
   * Read on every request, not cached: PostgreSQL has no cheap "did anyone commit" signal like
   * SQLite's data_version, and a cache with a TTL would let a revoked key sign on the other
   * replicas until it expires. The read is an index lookup on the pool (it does not wait for the
   * batch writer), so it costs latency, not the throughput the single writer sets.
   */
  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.#read(SQL.getApiKey, [id]);
    return row === undefined ? undefined : toApiKey(row);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#read(SQL.listApiKeys)).map(toApiKey);
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    await this.#read(SQL.touchApiKey, [at, id, at]);
  }

  async insertSession(record: SessionRecord): Promise<void> {
    await this.#read(SQL.insertSession, [record.tokenHash, record.apiKeyId, record.expiresAt, record.mac ?? null]);
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const [row] = await this.#read(SQL.getSession, [tokenHash]);
    return row === undefined ? undefined : toSessionRecord(row);
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    if (this.#closed) throw new CustosError('store_unavailable', 'the store is closed');
    return (await this.#pool.query(SQL.deleteExpiredSessions, [now])).rowCount ?? 0;
  }

  async readApproval(id: string): Promise<ApprovalRecord | undefined> {
    const [row] = await this.#read(SQL.getApproval, [id]);
    return row === undefined ? undefined : toApprovalRecord(row);
  }

  async readApprovalByCapability(capabilityHash: string): Promise<ApprovalRecord | undefined> {
    const [row] = await this.#read(SQL.getApprovalByCapability, [capabilityHash]);
    return row === undefined ? undefined : toApprovalRecord(row);
  }

  async readPendingChangeByCapability(capabilityHash: string): Promise<PendingChangeRecord | undefined> {
    const [row] = await this.#read(TIMELOCK_SQL.getPendingChangeByCapability, [capabilityHash, capabilityHash]);
    return row === undefined ? undefined : toPendingChange(row);
  }

  async readPendingChange(id: string): Promise<PendingChangeRecord | undefined> {
    const [row] = await this.#read(TIMELOCK_SQL.getPendingChange, [id]);
    return row === undefined ? undefined : toPendingChange(row);
  }

  async readEnrollmentLinkByCapability(capabilityHash: string): Promise<EnrollmentLinkRecord | undefined> {
    const [row] = await this.#read(SQL.getEnrollmentLinkByCapability, [capabilityHash]);
    return row === undefined ? undefined : toEnrollmentLink(row);
  }

  async readWalletRows(walletName: string): Promise<WalletRows> {
    // One statement: one snapshot of the wallet, factor and passkey rows (READ COMMITTED takes one per statement).
    // The delivery channel is a second read: a row added between the two is seen as a wallet MAC
    // mismatch (record_unreadable) by this read only, never as a wallet without it.
    const rows = toWalletRows(await this.#read(SQL.readWalletRows, [walletName]));
    const [oob] = await this.#read(OOB_SQL.getOobChannel, [walletName]);
    return oob === undefined ? rows : { ...rows, oob: toOobChannel(oob) };
  }

  async readWalletPage(query: { tenant: string; prefix: string | null; after: string | null; limit: number }): Promise<WalletPageEntry[]> {
    // One statement: one snapshot of the page's wallets and their rows (names compared byte by byte: code point order).
    const { bounds, params } = walletPageParams(query);
    return toWalletPage(await this.#read(walletPageSql(' COLLATE "C"', bounds), params));
  }

  async readApprovalDelivery(approvalId: string) {
    const [row] = await this.#read(OOB_SQL.readApprovalDelivery, [approvalId]);
    return toApprovalDelivery(row);
  }

  async readWalletByOwnerLink(linkHash: string): Promise<WalletRecord | undefined> {
    const [row] = await this.#read(SQL.getWalletByOwnerLink, [linkHash]);
    return row === undefined ? undefined : toWalletRecord(row);
  }

  async readRowAnchor(subject: string): Promise<AuditRecord | undefined> {
    const row = (await this.#read(SQL.latestRowAnchor, [subject]))[0];
    return row === undefined ? undefined : toAuditRecord(row);
  }

  async readWalletAudit(walletName: string, limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): Promise<AuditRecord[]> {
    return (await this.#read(SQL.readWalletAudit, [walletName, beforeSeq, limit])).map(toAuditRecord);
  }

  async readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return (await this.#read(SQL.readAudit, [fromSeq, limit])).map(toAuditRecord);
  }

  async readAdminNotices(limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): Promise<AuditRecord[]> {
    return (await this.#read(SQL.readAdminNotices, [beforeSeq, limit])).map(toAuditRecord);
  }

  async queryAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = queryAuditSql(query);
    return (await this.#read(sql, params)).map(toAuditRecord);
  }

  async readAuditCheckpoints(fromSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    return (await this.#read(SQL.readAuditCheckpoints, [fromSeq, limit])).map(toAuditCheckpoint);
  }

  async readRpcAccount(tenant: string, address: string): Promise<RpcAccountRecord | undefined> {
    const [row] = await this.#read(SQL.getRpcAccount, [tenant, address]);
    return row === undefined ? undefined : toRpcAccount(row);
  }

  async listRpcAccounts(tenant: string, limit: number, after?: { createdAt: number; address: string }): Promise<RpcAccountRecord[]> {
    const rows =
      after === undefined
        ? await this.#read(SQL.listRpcAccounts, [tenant, limit])
        : await this.#read(SQL.listRpcAccountsAfter, [tenant, after.createdAt, after.createdAt, after.address, limit]);
    return rows.map(toRpcAccount);
  }

  // ---- issue 13: quorum (migration 15) ----
  async readSetting(name: string): Promise<SettingRecord | undefined> {
    const [row] = await this.#read(QUORUM_SQL.getSetting, [name]);
    return row === undefined ? undefined : toSetting(row);
  }

  async readProposal(id: string): Promise<ProposalRecord | undefined> {
    const [row] = await this.#read(QUORUM_SQL.getProposal, [id]);
    return row === undefined ? undefined : toProposal(row);
  }

  async listProposals(limit: number): Promise<ProposalRecord[]> {
    return (await this.#read(QUORUM_SQL.listProposals, [limit])).map(toProposal);
  }

  async readProposalApprovals(proposalId: string): Promise<ProposalApprovalRecord[]> {
    return (await this.#read(QUORUM_SQL.listProposalApprovals, [proposalId])).map(toProposalApproval);
  }

  // ---- issue 13: admin passkeys (migration 16) ----
  async readAdminEnrollmentLink(tokenHash: string): Promise<AdminEnrollmentLinkRecord | undefined> {
    const [row] = await this.#read(ADMIN_PASSKEY_SQL.getLink, [tokenHash]);
    return row === undefined ? undefined : toAdminLink(row);
  }

  async readAdminPasskey(id: string): Promise<AdminPasskeyRecord | undefined> {
    const [row] = await this.#read(ADMIN_PASSKEY_SQL.getPasskey, [id]);
    return row === undefined ? undefined : toAdminPasskey(row);
  }

  async listAdminPasskeys(): Promise<AdminPasskeyRecord[]> {
    return (await this.#read(ADMIN_PASSKEY_SQL.listPasskeys, [])).map(toAdminPasskey);
  }

  async readRpcRequest(tenant: string, requestKey: string): Promise<RpcRequestRecord | undefined> {
    const [row] = await this.#read(SQL.getRpcRequest, [tenant, requestKey]);
    return row === undefined ? undefined : toRpcRequest(row);
  }

  async readWalletPolicy(walletName: string): Promise<WalletPolicyRecord | undefined> {
    const [row] = await this.#read(SQL.getWalletPolicy, [walletName]);
    return row === undefined ? undefined : toWalletPolicy(row);
  }

  async readPolicyUsage(walletName: string, since: number): Promise<PolicyUsageRecord[]> {
    return (await this.#read(SQL.listPolicyUsage, [walletName, since])).map(toPolicyUsage);
  }

  async listPasskeyRpIds(): Promise<string[]> {
    return (await this.#read(SQL.listPasskeyRpIds)).map((r) => String(r.rp_id));
  }

  /** Whether the database answers (readiness probe). */
  async ping(): Promise<boolean> {
    try {
      await this.#pool.query('SELECT 1');
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

  get stats(): GroupCommit['stats'] {
    return this.#commits.stats;
  }

  get commits(): GroupCommit {
    return this.#commits;
  }

  transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#commits.submit(work);
  }

  /** One writer connection runs the batches; the head row lock serialises them across replicas. */
  readonly #driver: BatchDriver = {
    begin: async () => {
      const client = this.#writer ?? (await this.#connectWriter());
      await client.query('BEGIN');
      const { rows } = await client.query('SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE');
      const row = rows[0] as Row | undefined;
      if (row === undefined) throw new Error('audit_head row missing');
      this.#head = { seq: Number(row.seq), hash: String(row.hash) };
      this.#headAtBatch = this.#head;
      return this.#tx(client);
    },
    markUnit: () => {
      this.#headAtUnit = this.#head;
    },
    savepoint: async () => {
      await this.#requireWriter().query('SAVEPOINT unit');
    },
    releaseSavepoint: async () => {
      await this.#requireWriter().query('RELEASE SAVEPOINT unit');
    },
    rollbackToSavepoint: async () => {
      await this.#requireWriter().query('ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit');
      this.#head = this.#headAtUnit;
    },
    commit: async () => {
      const client = this.#requireWriter();
      if (this.#head.seq !== this.#headAtBatch.seq)
        await client.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [this.#head.seq, this.#head.hash]);
      // A transaction in which a statement failed (and a unit swallowed the error) is aborted:
      // PostgreSQL answers its COMMIT with ROLLBACK, and node-pg raises nothing. Releasing the
      // batch's results then would hand out signatures whose audit records were rolled back.
      const { command } = await client.query('COMMIT');
      if (command !== 'COMMIT')
        throw new CustosError('store_unavailable', `the batch's COMMIT was answered with ${command}: a statement in it failed; nothing was committed`);
    },
    rollback: async () => {
      const client = this.#writer;
      if (client === undefined) return;
      try {
        await client.query('ROLLBACK');
      } catch {
        // The connection is broken: drop it; the next batch takes a fresh one.
        this.#dropWriter(client);
      }
    },
  };

  /** The batch writer: a connection kept checked out; if it dies, it is dropped and replaced. */
  async #connectWriter(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    // The server ended the connection (restart, failover, terminate): the batch in flight fails
    // on its next query; forget the client so that the next batch connects afresh.
    client.on('error', () => this.#dropWriter(client));
    this.#writer = client;
    return client;
  }

  #dropWriter(client: pg.PoolClient): void {
    if (this.#writer !== client) return;
    this.#writer = undefined;
    client.release(true);
  }

  #requireWriter(): pg.PoolClient {
    if (this.#writer === undefined) throw new Error('no writer connection');
    return this.#writer;
  }

  #tx(client: pg.PoolClient): StoreTx {
    return {
      getWalletForUpdate: async (walletName) => {
        const { rows } = await client.query(`${SQL.getWalletRow} FOR UPDATE`, [walletName]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toWalletRecord(row);
      },
      insertWallet: async (record: WalletRecord) => {
        await client.query(SQL.insertWallet, [record.name, record.tenant, record.createdAt, record.mac]);
      },
      updateWalletMac: async (walletName: string, mac: string) => {
        const { rowCount } = await client.query(SQL.updateWalletMac, [mac, walletName]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'wallet row vanished during the transaction');
      },
      setWalletFrozen: async (walletName: string, frozenAt: number | null, mac: string) => {
        const { rowCount } = await client.query(SQL.setWalletFrozen, [frozenAt, mac, walletName]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'wallet row vanished during the transaction');
      },
      setWalletOwnerLink: async (walletName: string, linkHash: string) => {
        await client.query(SQL.setWalletOwnerLink, [linkHash, walletName, linkHash]);
      },
      getWalletByOwnerLinkForUpdate: async (linkHash) => {
        const { rows } = await client.query(`${SQL.getWalletByOwnerLink} FOR UPDATE`, [linkHash]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toWalletRecord(row);
      },
      getRecoveryCodesForUpdate: async (walletName) => {
        const { rows } = await client.query(`${SQL.getRecoveryCodes} FOR UPDATE`, [walletName]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toRecoveryCodesRecord(row);
      },
      putRecoveryCodes: async (record) => {
        await client.query(SQL.putRecoveryCodes, recoveryCodesParams(record));
      },
      lockCancelBudget: async (fresh) => {
        await client.query(SQL.insertCancelBudget, cancelBudgetParams(fresh));
        const { rows } = await client.query(`${SQL.getCancelBudget} FOR UPDATE`, [fresh.walletName, fresh.budgetKey]);
        return toCancelBudgetRecord(rows[0] as Row);
      },
      updateCancelBudget: async (record) => {
        const { rowCount } = await client.query(SQL.updateCancelBudget, cancelBudgetUpdateParams(record));
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'cancel budget row vanished during the transaction');
      },
      getTotpFactorForUpdate: async (walletName) => {
        const { rows } = await client.query(`${SQL.getTotpFactor} FOR UPDATE`, [walletName]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toTotpFactor(row);
      },
      listPasskeysForUpdate: async (walletName: string) => ((await client.query(`${SQL.listPasskeys} FOR UPDATE`, [walletName])).rows as Row[]).map(toPasskey),
      insertPasskey: async (record: PasskeyCredentialRecord) => {
        if ((await client.query(SQL.insertPasskey, passkeyParams(record))).rowCount !== 1) throw duplicatePasskey();
      },
      getHwkeyFactorForUpdate: async (walletName: string) => {
        const row = (await client.query(`${SQL.getHwkey} FOR UPDATE`, [walletName])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toHwkey(row);
      },
      insertHwkeyFactor: async (record: HwkeyFactorRecord) => {
        if ((await client.query(SQL.insertHwkey, hwkeyParams(record))).rowCount !== 1) throw duplicateHwkey();
      },
      updateHwkeyFactorState: async (walletName: string, state: { windowStart: number; issued: number }, mac: string) => {
        const { rowCount } = await client.query(SQL.updateHwkeyState, [state.windowStart, state.issued, mac, walletName]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'hwkey row vanished during the transaction');
      },
      updatePasskeyCounter: async (credentialId: string, counter: number, mac: string) => {
        const { rowCount } = await client.query(SQL.updatePasskeyCounter, [counter, mac, credentialId]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'passkey row vanished during the transaction');
      },
      insertTotpFactor: async (record: TotpFactorRecord) => {
        try {
          await client.query(SQL.insertTotpFactor, [
            record.walletName,
            record.secretEnvelope,
            record.lastAcceptedStep,
            record.failures,
            record.lockedUntilMs,
            record.createdAt,
            record.mac,
            record.enrolledVia,
          ]);
        } catch (error) {
          if (pgCode(error) === '23505')
            throw new CustosError('already_enrolled', 'wallet already has a TOTP factor', { cause: error, details: { field: 'walletName' } });
          throw error;
        }
      },
      updateTotpFactorState: async (walletName: string, state: TotpFactorState, mac: string) => {
        const { rowCount } = await client.query(SQL.updateTotpFactorState, [state.lastAcceptedStep, state.failures, state.lockedUntilMs, mac, walletName]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'factor row vanished during the transaction');
      },
      insertApproval: async (record: ApprovalRecord) => {
        if ((await client.query(SQL.insertApproval, approvalParams(record))).rowCount !== 1) throw duplicateApproval();
      },
      getApprovalForUpdate: async (id: string) => {
        const { rows } = await client.query(`${SQL.getApproval} FOR UPDATE`, [id]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toApprovalRecord(row);
      },
      getApprovalByCapabilityForUpdate: async (capabilityHash: string) => {
        const { rows } = await client.query(`${SQL.getApprovalByCapability} FOR UPDATE`, [capabilityHash]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toApprovalRecord(row);
      },
      updateApproval: async (id: string, c: ApprovalChange) => {
        const { rowCount } = await client.query(SQL.updateApproval, [c.state, c.decidedAt, c.evidence, c.consumedSeq, c.challenge, c.mac, c.batch ?? null, id]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'approval row vanished during the transaction');
      },
      countPendingApprovals: async (tenant: string, walletName: string, now: number) => {
        const [wallet] = (await client.query(SQL.countPendingApprovalsOfWallet, [walletName, tenant, now])).rows as Row[];
        const [all] = (await client.query(SQL.countPendingApprovalsOfTenant, [tenant, now])).rows as Row[];
        return { wallet: Number(wallet?.n), tenant: Number(all?.n) };
      },
      listExpiredOpenApprovals: async (now: number, limit: number, after = { expiresAt: -1, id: '' }) =>
        ((await client.query(`${SQL.listExpiredOpenApprovals} FOR UPDATE`, [now, after.expiresAt, after.expiresAt, after.id, limit])).rows as Row[]).map(
          toApprovalRecord,
        ),
      listPendingApprovalsOfApiKey: async (apiKeyId: string) =>
        ((await client.query(`${SQL.listPendingApprovalsOfApiKey} FOR UPDATE`, [apiKeyId])).rows as Row[]).map(toApprovalRecord),
      insertPendingChange: async (record) => {
        await client.query(TIMELOCK_SQL.insertPendingChange, pendingChangeParams(record));
      },
      getPendingChangeForUpdate: async (id) => {
        const row = (await client.query(`${TIMELOCK_SQL.getPendingChange} FOR UPDATE`, [id])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toPendingChange(row);
      },
      getPendingChangeByCapabilityForUpdate: async (capabilityHash) => {
        const row = (await client.query(`${TIMELOCK_SQL.getPendingChangeByCapability} FOR UPDATE`, [capabilityHash, capabilityHash])).rows[0] as
          | Row
          | undefined;
        return row === undefined ? undefined : toPendingChange(row);
      },
      listOpenPendingChangesOfWallet: async (walletName) =>
        ((await client.query(`${TIMELOCK_SQL.listOpenPendingChangesOfWallet} FOR UPDATE`, [walletName])).rows as Row[]).map(toPendingChange),
      listPendingChangesDueBy: async (by, limit, after) =>
        (
          (after === undefined
            ? await client.query(`${TIMELOCK_SQL.listPendingChangesDueBy} FOR UPDATE SKIP LOCKED`, [by, limit])
            : await client.query(`${TIMELOCK_SQL.listPendingChangesDueAfter} FOR UPDATE SKIP LOCKED`, [
                by,
                after.effectiveAt,
                after.effectiveAt,
                after.id,
                limit,
              ])
          ).rows as Row[]
        ).map(toPendingChange),
      updatePendingChange: async (id, c) => {
        const { rowCount } = await client.query(TIMELOCK_SQL.updatePendingChange, [
          c.state,
          c.effectiveAt,
          c.decidedAt,
          c.reminders,
          c.cancelFailures,
          c.consent,
          c.mac,
          id,
        ]);
        if (rowCount !== 1) throw vanishedChange();
      },
      getSafeAddressForUpdate: async (walletName) => {
        const row = (await client.query(`${TIMELOCK_SQL.getSafeAddress} FOR UPDATE`, [walletName])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toSafeAddress(row);
      },
      putSafeAddress: async (record) => {
        await client.query(TIMELOCK_SQL.putSafeAddress, [record.walletName, record.address, record.updatedAt, record.mac]);
      },
      deleteFactorRow: async (kind, walletName, id) => {
        const [sql, params] = deleteFactorSql(kind, walletName, id);
        if ((await client.query(sql, params)).rowCount !== 1) throw factorRowVanished();
      },
      insertEnrollmentLink: async (record: EnrollmentLinkRecord) => {
        if ((await client.query(SQL.insertEnrollmentLink, enrollmentLinkParams(record))).rowCount !== 1) throw duplicateEnrollmentLink();
      },
      getEnrollmentLinkByCapabilityForUpdate: async (capabilityHash: string) => {
        const { rows } = await client.query(`${SQL.getEnrollmentLinkByCapability} FOR UPDATE`, [capabilityHash]);
        const row = rows[0] as Row | undefined;
        return row === undefined ? undefined : toEnrollmentLink(row);
      },
      listPendingEnrollmentLinksOfWallet: async (walletName: string) =>
        ((await client.query(`${SQL.listPendingEnrollmentLinksOfWallet} FOR UPDATE`, [walletName])).rows as Row[]).map(toEnrollmentLink),
      updateEnrollmentLink: async (id: string, c: EnrollmentLinkChange) => {
        const { rowCount } = await client.query(SQL.updateEnrollmentLink, [c.state, c.completedAt, c.failures, c.mac, id]);
        if (rowCount !== 1) throw new CustosError('store_unavailable', 'enrolment link row vanished during the transaction');
      },
      updateEnrollmentLinkSecret: async (id, c) => {
        if ((await client.query(OOB_SQL.updateEnrollmentLinkSecret, [c.secretEnvelope, c.pending, c.mac, id])).rowCount !== 1) throw vanished('enrolment link');
      },
      getOobChannelForUpdate: async (walletName) => {
        const row = (await client.query(`${OOB_SQL.getOobChannel} FOR UPDATE`, [walletName])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toOobChannel(row);
      },
      insertOobChannel: async (record) => {
        if ((await client.query(OOB_SQL.insertOobChannel, oobChannelParams(record))).rowCount !== 1) throw duplicateOobChannel();
      },
      deleteOobChannel: async (walletName) => {
        if ((await client.query(OOB_SQL.deleteOobChannel, [walletName])).rowCount !== 1) throw vanished('delivery channel');
      },
      updateOobChannelState: async (walletName, state, mac) => {
        if ((await client.query(OOB_SQL.updateOobChannelState, [state, mac, walletName])).rowCount !== 1) throw vanished('delivery channel');
      },
      insertOutbox: async (record) => {
        await client.query(OOB_SQL.insertOutbox, outboxParams(record));
      },
      countOutboxSince: async (walletName, since) => Number((await client.query(OOB_SQL.countOutboxSince, [walletName, since])).rows[0]?.n ?? 0),
      countOutboxToAddressSince: async (addressTag, since) =>
        Number((await client.query(OOB_SQL.countOutboxToAddressSince, [addressTag, since])).rows[0]?.n ?? 0),
      // Another replica's claim holds its rows locked until its commit: skipped, never waited for.
      claimOutbox: async (now, limit, leaseUntil) =>
        ((await client.query(claimOutboxSql(`${OOB_SQL.claimOutboxIds} FOR UPDATE SKIP LOCKED`), [leaseUntil, now, now, limit])).rows as Row[]).map(toOutbox),
      updateOutbox: async (id, c) => {
        const { rowCount } = await client.query(OOB_SQL.updateOutbox, [c.status, c.attempts, c.nextAttemptAt, c.leaseUntil, c.sentAt, c.lastError, id]);
        if (rowCount !== 1) throw vanished('outbox');
      },
      claimRecordMacMigration: async () => (await client.query(SQL.claimRecordMacMigration)).rowCount === 1,
      hasAuditAction: async (action: string) => (await client.query(SQL.hasAuditAction, [action])).rows.length > 0,
      latestRowAnchor: async (subject: string) => {
        const row = (await client.query(SQL.latestRowAnchor, [subject])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toAuditRecord(row);
      },
      listWalletRows: async () =>
        pairWalletRows((await client.query(SQL.listWalletRows)).rows as Row[], (await client.query(`${SQL.listTotpFactors} FOR UPDATE`)).rows as Row[]),
      setRecordMacs: async (walletName: string, walletMac: string, totpMac: string | null) => {
        await client.query(SQL.updateWalletMac, [walletMac, walletName]);
        if (totpMac !== null) await client.query(SQL.updateTotpFactorMac, [totpMac, walletName]);
      },
      insertApiKey: async (record: ApiKeyRecord) => {
        await client.query(SQL.insertApiKey, [
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
        ]);
      },
      insertRpcAccount: async (r: RpcAccountRecord) =>
        (await client.query(SQL.insertRpcAccount, [r.tenant, r.address, r.walletName, r.keyIndex, r.createdAt])).rowCount === 1,
      putRpcRequest: async (r: RpcRequestRecord) => {
        await client.query(SQL.putRpcRequest, [r.tenant, r.requestKey, r.approvalId, r.operation, r.createdAt]);
      },
      deleteRpcRequest: async (tenant: string, requestKey: string, approvalId: string) => {
        await client.query(SQL.deleteRpcRequest, [tenant, requestKey, approvalId]);
      },
      deleteRpcRequestsBefore: async (createdBefore: number) => (await client.query(SQL.deleteRpcRequestsBefore, [createdBefore])).rowCount ?? 0,
      deleteFinishedApprovalsBefore: async (before: number, limit: number) =>
        (await client.query(SQL.deleteFinishedApprovalsBefore, [before, limit])).rowCount ?? 0,
      deleteEnrollmentLinksBefore: async (before: number, limit: number) =>
        (await client.query(SQL.deleteEnrollmentLinksBefore, [before, limit])).rowCount ?? 0,
      deleteFinishedOutboxBefore: async (before: number, limit: number) =>
        (await client.query(SQL.deleteFinishedOutboxBefore, [before, before, limit])).rowCount ?? 0,
      getIdempotency: async (tenant: string, apiKeyId: string, idempotencyKey: string) => {
        const row = (await client.query(SQL.getIdempotency, [tenant, apiKeyId, idempotencyKey])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toIdempotency(row);
      },
      putIdempotency: async (r: IdempotencyRecord) => {
        await client.query(SQL.putIdempotency, [r.tenant, r.apiKeyId, r.idempotencyKey, r.requestHash, r.response, r.createdAt]);
      },
      deleteIdempotencyBefore: async (createdBefore: number, limit: number) =>
        (await client.query(SQL.deleteIdempotencyBefore, [createdBefore, limit])).rowCount ?? 0,
      getWalletPolicy: async (walletName: string) => {
        const { rows } = await client.query(SQL.getWalletPolicy, [walletName]);
        return rows[0] === undefined ? undefined : toWalletPolicy(rows[0] as Row);
      },
      putWalletPolicy: async (r: WalletPolicyRecord) => {
        await client.query(SQL.putWalletPolicy, [r.walletName, r.tenant, r.policy, r.updatedAt, r.mac]);
      },
      listPolicyUsage: async (walletName: string, since: number) =>
        ((await client.query(SQL.listPolicyUsage, [walletName, since])).rows as Row[]).map(toPolicyUsage),
      insertPolicyUsage: async (r: PolicyUsageRecord) => {
        await client.query(SQL.insertPolicyUsage, [r.walletName, r.auditSeq, r.ts, r.amounts]);
      },
      deletePolicyUsageBefore: async (before: number) => (await client.query(SQL.deletePolicyUsageBefore, [before])).rowCount ?? 0,
      revokeApiKey: async (id: string, revokedAt: number) => (await client.query(SQL.revokeApiKey, [revokedAt, id])).rowCount === 1,
      swapSealedRoot: async (expected: unknown, next: unknown) =>
        (await client.query(SQL.swapSealedRoot, [JSON.stringify(next), JSON.stringify(expected)])).rowCount === 1,
      appendAudit: async (entry: AuditEntry): Promise<AuditRecord> => {
        const record = await appendChained(this.#head, entry, (params) => client.query(SQL.insertAudit, params));
        this.#head = { seq: record.seq, hash: record.hash };
        return record;
      },
      auditHead: async () => ({ ...this.#head }),
      latestAuditCheckpointSeq: async () => Number(((await client.query(SQL.latestAuditCheckpointSeq)).rows[0] as Row).seq),
      appendAuditCheckpoint: async (c: AuditCheckpoint) =>
        (await client.query(SQL.insertAuditCheckpoint, [c.seq, c.signerId, c.headHash, c.ts, c.publicKey, c.signature])).rowCount === 1,

      // ---- issue 13: quorum (migration 15; quorumRows.ts) ----
      getSettingForUpdate: async (name) => {
        const row = (await client.query(`${QUORUM_SQL.getSetting} FOR UPDATE`, [name])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toSetting(row);
      },
      putSetting: async (record) => {
        await client.query(QUORUM_SQL.putSetting, settingParams(record));
      },
      listApiKeysForUpdate: async () => ((await client.query(`${QUORUM_SQL.listApiKeys} FOR UPDATE`)).rows as Row[]).map(toApiKey),
      setApiKeyMac: async (id, mac) => {
        if ((await client.query(QUORUM_SQL.setApiKeyMac, [mac, id])).rowCount !== 1) throw vanished('API key');
      },
      insertProposal: async (record) => {
        if ((await client.query(QUORUM_SQL.insertProposal, proposalParams(record))).rowCount !== 1) throw duplicateProposal();
      },
      getProposalForUpdate: async (id) => {
        const row = (await client.query(`${QUORUM_SQL.getProposal} FOR UPDATE`, [id])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toProposal(row);
      },
      updateProposal: async (id, c) => {
        if ((await client.query(QUORUM_SQL.updateProposal, [c.state, c.decidedAt, c.result, c.mac, id])).rowCount !== 1) throw vanished('proposal');
      },
      insertProposalApproval: async (r) =>
        (await client.query(QUORUM_SQL.insertProposalApproval, [r.proposalId, r.admin, r.signature, r.createdAt])).rowCount === 1,
      listProposalApprovals: async (proposalId) => ((await client.query(QUORUM_SQL.listProposalApprovals, [proposalId])).rows as Row[]).map(toProposalApproval),
      hasProposalAudit: async (proposalId) => (await client.query(QUORUM_SQL.hasProposalAudit, [proposalAuditPattern(proposalId)])).rows.length > 0,

      // ---- issue 13: admin passkeys (migration 16; adminPasskeyRows.ts) ----
      insertAdminEnrollmentLink: async (record) => {
        await client.query(ADMIN_PASSKEY_SQL.insertLink, adminLinkParams(record));
      },
      getAdminEnrollmentLinkForUpdate: async (tokenHash) => {
        const row = (await client.query(`${ADMIN_PASSKEY_SQL.getLink} FOR UPDATE`, [tokenHash])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toAdminLink(row);
      },
      updateAdminEnrollmentLink: async (tokenHash, c) => {
        if ((await client.query(ADMIN_PASSKEY_SQL.updateLink, [c.usedAt, c.adminId, c.mac, tokenHash])).rowCount !== 1) throw vanished('admin enrolment link');
      },
      insertAdminPasskey: async (record) => (await client.query(ADMIN_PASSKEY_SQL.insertPasskey, adminPasskeyParams(record))).rowCount === 1,
      getAdminPasskeyForUpdate: async (id) => {
        const row = (await client.query(`${ADMIN_PASSKEY_SQL.getPasskey} FOR UPDATE`, [id])).rows[0] as Row | undefined;
        return row === undefined ? undefined : toAdminPasskey(row);
      },
      updateAdminPasskeyCounter: async (id, counter, mac) => {
        if ((await client.query(ADMIN_PASSKEY_SQL.updateCounter, [counter, mac, id])).rowCount !== 1) throw vanished('admin passkey');
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#commits.close();
    this.#writer?.release();
    this.#writer = undefined;
    await this.#pool.end();
  }

  /** For tests and tools: run a statement on the store's database. */
  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.#pool.query(sql, params)).rows as Row[];
  }
}

function pgCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

async function ignoreDuplicate(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    // Two replicas creating the same schema or table at once: the loser sees a duplicate — of the
    // schema (42P06), the table (42P07), or the table's row type (42710 "type … already exists", or
    // 23505 on pg_type's unique index), depending on where the two CREATEs meet.
    if (!['23505', '42P06', '42P07', '42710'].includes(pgCode(error) ?? '')) throw error;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

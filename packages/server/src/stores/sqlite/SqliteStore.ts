import { chmodSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import {
  AUDIT_GENESIS_HASH,
  type ApiKeyRecord,
  type AuditEntry,
  type AuditRecord,
  computeAuditHash,
  CustosError,
  type Scope,
  type SessionRecord,
  type SignerMeta,
  type Store,
  type StoreTx,
  type TotpFactorRecord,
  type TotpFactorState,
} from '@custos/kernel';
import { SQLITE_MIGRATIONS } from './migrations.js';

export interface SqliteStoreOptions {
  /** Path of the database file (created with mode 0600). */
  path: string;
  /** Most units of work in one group-commit transaction. */
  maxBatch?: number;
}

interface Pending {
  work: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Row = Record<string, unknown>;

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL (a commit is durable when
 * it returns). Units of work that arrive together share one transaction (group commit): each runs
 * inside its own savepoint, so one that fails is rolled back alone, and every unit's promise
 * settles only after the shared COMMIT. SQLite's single writer (BEGIN IMMEDIATE) serialises
 * batches across processes, which is what makes single use and the audit chain hold.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled = false;
  #running = false;
  #closed = false;
  #head: { seq: number; hash: string } = { seq: 0, hash: AUDIT_GENESIS_HASH };
  /** Batches committed and units in them, for metrics and tests. */
  readonly stats = { batches: 0, units: 0 };

  constructor({ path, maxBatch = 256 }: SqliteStoreOptions) {
    const created = !existsSync(path);
    this.#db = new Database(path);
    if (created && path !== ':memory:') chmodSync(path, 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    this.#maxBatch = maxBatch;
    this.#migrate();
  }

  #migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((this.#db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)));
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }).immediate();
    }
  }

  /** Schema versions applied, ascending. */
  schemaVersions(): number[] {
    return (this.#db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Row[]).map((r) => Number(r.version));
  }

  async getMeta(): Promise<SignerMeta | undefined> {
    const row = this.#db.prepare('SELECT signer_id, derivation, sealed_root, created_at FROM meta WHERE id = 1').get() as Row | undefined;
    if (row === undefined) return undefined;
    return {
      signerId: String(row.signer_id),
      derivation: row.derivation as SignerMeta['derivation'],
      sealedRoot: JSON.parse(String(row.sealed_root)) as unknown,
      createdAt: Number(row.created_at),
    };
  }

  async initMeta(meta: SignerMeta): Promise<void> {
    try {
      this.#db
        .prepare('INSERT INTO meta (id, signer_id, derivation, sealed_root, created_at) VALUES (1, ?, ?, ?, ?)')
        .run(meta.signerId, meta.derivation, JSON.stringify(meta.sealedRoot), meta.createdAt);
    } catch (error) {
      if (isUniqueViolation(error)) throw new CustosError('already_initialized', 'the data directory already holds an initialised signer', { cause: error });
      throw error;
    }
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : toApiKey(row);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all() as Row[]).map(toApiKey);
  }

  async insertSession(record: SessionRecord): Promise<void> {
    this.#db.prepare('INSERT INTO sessions (token_hash, api_key_id, expires_at) VALUES (?, ?, ?)').run(record.tokenHash, record.apiKeyId, record.expiresAt);
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const row = this.#db.prepare('SELECT token_hash, api_key_id, expires_at FROM sessions WHERE token_hash = ?').get(tokenHash) as Row | undefined;
    return row === undefined ? undefined : { tokenHash: String(row.token_hash), apiKeyId: String(row.api_key_id), expiresAt: Number(row.expires_at) };
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return this.#db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  async getWallet(walletName: string): Promise<{ name: string; createdAt: number; factors: string[] } | undefined> {
    const row = this.#db.prepare('SELECT name, created_at FROM wallets WHERE name = ?').get(walletName) as Row | undefined;
    if (row === undefined) return undefined;
    const totp = this.#db.prepare('SELECT 1 FROM totp_factors WHERE wallet_name = ?').get(walletName) !== undefined;
    return { name: String(row.name), createdAt: Number(row.created_at), factors: totp ? ['totp'] : [] };
  }

  async readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return (this.#db.prepare('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?').all(fromSeq, limit) as Row[]).map(toAuditRecord);
  }

  transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CustosError('store_unavailable', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#running = true;
    const batch = this.#queue.splice(0, this.#maxBatch);
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let committed = false;
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      this.#head = this.#readHead();
      for (const unit of batch) {
        const headBefore = this.#head;
        this.#db.exec('SAVEPOINT unit');
        try {
          const value = await unit.work(this.#tx);
          this.#db.exec('RELEASE unit');
          results.push({ ok: true, value });
        } catch (error) {
          this.#db.exec('ROLLBACK TO unit');
          this.#db.exec('RELEASE unit');
          this.#head = headBefore;
          results.push({ ok: false, error });
        }
      }
      this.#db.exec('COMMIT');
      committed = true;
      this.stats.batches += 1;
      this.stats.units += batch.length;
    } catch (error) {
      if (this.#db.inTransaction) {
        try {
          this.#db.exec('ROLLBACK');
        } catch {
          // the connection is already out of the transaction
        }
      }
      const failure = new CustosError('store_unavailable', 'the store transaction failed; nothing was committed', { cause: error });
      for (const unit of batch) unit.reject(failure);
    }
    if (committed) {
      batch.forEach((unit, i) => {
        const r = results[i];
        if (r === undefined) unit.reject(new CustosError('internal', 'unit of work lost'));
        else if (r.ok) unit.resolve(r.value);
        else unit.reject(r.error);
      });
    }
    this.#running = false;
    this.#schedule();
  }

  #readHead(): { seq: number; hash: string } {
    const row = this.#db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
    return row === undefined ? { seq: 0, hash: AUDIT_GENESIS_HASH } : { seq: Number(row.seq), hash: String(row.hash) };
  }

  readonly #tx: StoreTx = {
    getTotpFactorForUpdate: async (walletName) => {
      const row = this.#db.prepare('SELECT * FROM totp_factors WHERE wallet_name = ?').get(walletName) as Row | undefined;
      return row === undefined ? undefined : toTotpFactor(row);
    },
    insertTotpFactor: async (record: TotpFactorRecord) => {
      this.#db.prepare('INSERT OR IGNORE INTO wallets (name, created_at) VALUES (?, ?)').run(record.walletName, record.createdAt);
      try {
        this.#db
          .prepare('INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(record.walletName, record.secretEnvelope, record.lastAcceptedStep, record.failures, record.lockedUntilMs, record.createdAt);
      } catch (error) {
        if (isUniqueViolation(error)) throw new CustosError('already_enrolled', 'wallet already has a TOTP factor', { cause: error, details: { field: 'walletName' } });
        throw error;
      }
    },
    updateTotpFactorState: async (walletName: string, state: TotpFactorState) => {
      const changed = this.#db
        .prepare('UPDATE totp_factors SET last_accepted_step = ?, failures = ?, locked_until_ms = ? WHERE wallet_name = ?')
        .run(state.lastAcceptedStep, state.failures, state.lockedUntilMs, walletName).changes;
      if (changed !== 1) throw new CustosError('store_unavailable', 'factor row vanished during the transaction');
    },
    insertApiKey: async (record: ApiKeyRecord) => {
      this.#db
        .prepare('INSERT INTO api_keys (id, name, scopes, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(record.id, record.name, record.scopes.join(','), Buffer.from(record.secretHash), record.createdAt, record.revokedAt);
    },
    revokeApiKey: async (id: string, revokedAt: number) =>
      this.#db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(revokedAt, id).changes === 1,
    appendAudit: async (entry: AuditEntry): Promise<AuditRecord> => {
      const seq = this.#head.seq + 1;
      const prevHash = this.#head.hash;
      const hash = computeAuditHash(entry, seq, prevHash);
      try {
        this.#db
          .prepare('INSERT INTO audit_log (seq, ts, app_id, wallet_name, action, op_hash, decision, reason, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(seq, entry.ts, entry.appId, entry.walletName, entry.action, entry.opHash, entry.decision, entry.reason, JSON.stringify(entry.detail), prevHash, hash);
      } catch (error) {
        throw new CustosError('audit_unavailable', 'the audit record could not be written; nothing was signed', { cause: error });
      }
      this.#head = { seq, hash };
      return { ...entry, seq, prevHash, hash };
    },
  };

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#running || this.#scheduled || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    this.#db.close();
  }

  /** For tests and tools: raw access to the database handle. */
  get database(): Database.Database {
    return this.#db;
  }
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && (error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || error.code === 'SQLITE_CONSTRAINT_UNIQUE');
}

function toApiKey(row: Row): ApiKeyRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    scopes: String(row.scopes).split(',').filter((s) => s !== '') as Scope[],
    secretHash: new Uint8Array(row.secret_hash as Buffer),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

function toTotpFactor(row: Row): TotpFactorRecord {
  return {
    walletName: String(row.wallet_name),
    secretEnvelope: String(row.secret_envelope),
    lastAcceptedStep: row.last_accepted_step === null ? null : Number(row.last_accepted_step),
    failures: Number(row.failures),
    lockedUntilMs: row.locked_until_ms === null ? null : Number(row.locked_until_ms),
    createdAt: Number(row.created_at),
  };
}

function toAuditRecord(row: Row): AuditRecord {
  return {
    seq: Number(row.seq),
    ts: Number(row.ts),
    appId: row.app_id === null ? null : String(row.app_id),
    walletName: row.wallet_name === null ? null : String(row.wallet_name),
    action: String(row.action),
    opHash: row.op_hash === null ? null : String(row.op_hash),
    decision: row.decision as AuditRecord['decision'],
    reason: row.reason === null ? null : String(row.reason),
    detail: parseDetail(String(row.detail)),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

/** A tampered, unparseable detail column must surface as a broken record in `audit verify`, not a crash. */
function parseDetail(raw: string): Record<string, unknown> {
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { unparseable: raw };
}

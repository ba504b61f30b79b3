import { adminPasskeyMigrationSql } from '../adminPasskeyRows.js';
import { quorumMigrationSql } from '../quorumRows.js';
/**
 * Versioned schema migrations of the PostgreSQL store: plain SQL (no extensions, no procedural
 * code) so that Postgres-compatible engines can carry it. Same tables and columns as SQLite, plus
 * the audit head row that serialises appenders across replicas.
 */
export const POSTGRES_MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'kernel',
    sql: `
      CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        signer_id TEXT NOT NULL,
        derivation TEXT NOT NULL CHECK (derivation IN ('custos-v1', 'fortanix-v1')),
        sealed_root TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        secret_hash BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        api_key_id TEXT NOT NULL REFERENCES api_keys(id),
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX sessions_expires_at ON sessions (expires_at);
      CREATE TABLE wallets (
        name TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE totp_factors (
        wallet_name TEXT PRIMARY KEY REFERENCES wallets(name),
        secret_envelope TEXT NOT NULL,
        last_accepted_step BIGINT,
        failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
        locked_until_ms BIGINT,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        app_id TEXT,
        wallet_name TEXT,
        action TEXT NOT NULL,
        op_hash TEXT,
        decision TEXT NOT NULL CHECK (decision IN ('allowed', 'denied')),
        reason TEXT,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
      );
      CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');
    `,
  },
  {
    version: 2,
    name: 'tenants_and_macs',
    // Tenants: every existing API key and wallet belongs to `default`, except that a key holding the
    // operator scope `admin` moves to the operator tenant `system` (the only one that may hold it).
    // MACs: the wallet and factor rows get a MAC column, filled by the kernel in one audited unit at
    // the first unseal after this migration (it needs the barrier); records_mac_pending marks a
    // signer whose rows are still to be MAC'd (a signer initialised later takes the default: none).
    sql: `
      ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
      UPDATE api_keys SET tenant = 'system' WHERE (',' || scopes || ',') LIKE '%,admin,%';
      ALTER TABLE wallets ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE wallets ADD COLUMN mac TEXT;
      ALTER TABLE totp_factors ADD COLUMN mac TEXT;
      ALTER TABLE meta ADD COLUMN records_mac_pending INTEGER NOT NULL DEFAULT 0;
      UPDATE meta SET records_mac_pending = 1;
    `,
  },
  {
    // Signed checkpoints of the audit chain (see docs/audit.md): one per head seq.
    version: 3,
    name: 'audit_checkpoints',
    sql: `
      CREATE TABLE audit_checkpoints (
        seq BIGINT PRIMARY KEY,
        signer_id TEXT NOT NULL,
        head_hash TEXT NOT NULL,
        ts BIGINT NOT NULL,
        public_key TEXT NOT NULL,
        signature TEXT NOT NULL
      );
    `,
  },
  {
    // Approvals (kernel/approvals.ts): one operation the owner is asked to approve, MAC'd under the
    // barrier. Only the capability token's hash is stored. No foreign keys, as for audit_log: the
    // kernel validates the wallet and the key, and the MAC covers every column.
    version: 4,
    name: 'approvals',
    sql: `
      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        wallet_name TEXT NOT NULL,
        key_index INTEGER NOT NULL CHECK (key_index >= 0),
        op_type TEXT NOT NULL,
        op_hash TEXT NOT NULL,
        summary TEXT NOT NULL,
        summary_text TEXT NOT NULL,
        required_strength TEXT NOT NULL CHECK (required_strength IN ('present', 'bound')),
        capability_hash TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled', 'consumed')),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        evidence TEXT,
        consumed_seq BIGINT,
        mac TEXT NOT NULL
      );
      CREATE INDEX approvals_tenant_state_expires_at ON approvals (tenant, state, expires_at);
      CREATE INDEX approvals_wallet_state_expires_at ON approvals (wallet_name, state, expires_at);
      CREATE INDEX approvals_state_expires_at ON approvals (state, expires_at, id);
      CREATE INDEX approvals_api_key_state ON approvals (api_key_id, state);
    `,
  },
  {
    // Enrolment links (kernel/enrollmentLinks.ts): a one-time link on which the owner enrols a factor,
    // MAC'd under the barrier; only the capability token's hash is stored, the new factor's secret is
    // sealed. Factor rows record how they were enrolled: every row made before is the backend's (`api`).
    version: 5,
    name: 'enrollment_links',
    sql: `
      CREATE TABLE enrollment_links (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        wallet_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        capability_hash TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'completed', 'expired', 'cancelled', 'failed')),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        completed_at BIGINT,
        secret_envelope TEXT,
        pending TEXT NOT NULL,
        failures INTEGER NOT NULL CHECK (failures >= 0),
        mac TEXT NOT NULL
      );
      CREATE INDEX enrollment_links_wallet_state ON enrollment_links (wallet_name, state);
      ALTER TABLE totp_factors ADD COLUMN enrolled_via TEXT NOT NULL DEFAULT 'api' CHECK (enrolled_via IN ('api', 'page'));
    `,
  },
  {
    // Passkeys (consent/passkeyFactor.ts): a wallet's WebAuthn credentials, MAC'd under the barrier
    // (nothing in them is secret). The credential id is the key: one credential serves one wallet in
    // the whole signer; it belongs to a wallet row (a foreign key, as a TOTP factor's). The counter
    // is the authenticator's (32 bits in WebAuthn, kept in a 64-bit column as every integer is);
    // transports are a JSON array of strings. Approvals get the challenge issued for the owner's
    // factor on the approval page (kernel/approvalChallenge.ts), null when none is outstanding.
    // The credential id is base64url, mixed case: it is compared and ordered byte for byte (collation
    // "C", as SQLite's BINARY does), whatever the database's locale, so that "oldest first, then by
    // credential id" is one order on both stores.
    version: 6,
    name: 'passkey_credentials',
    sql: `
      CREATE TABLE passkey_credentials (
        wallet_name TEXT NOT NULL REFERENCES wallets(name),
        credential_id TEXT COLLATE "C" PRIMARY KEY,
        public_key TEXT NOT NULL,
        counter BIGINT NOT NULL CHECK (counter >= 0),
        transports TEXT NOT NULL,
        rp_id TEXT NOT NULL,
        enrolled_via TEXT NOT NULL CHECK (enrolled_via IN ('api', 'page')),
        created_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
      CREATE INDEX passkey_credentials_wallet_created_at ON passkey_credentials (wallet_name, created_at, credential_id);
      ALTER TABLE approvals ADD COLUMN challenge TEXT;
    `,
  },
  {
    // Hardware keys (consent/hwkeyFactor.ts): one card per wallet, MAC'd under the barrier (nothing
    // in it is secret): the account xpub and canonical subpath (or null and "" for a bare public
    // key), the derived compressed public key (the factor's id, hex), and the per-wallet challenge
    // rate limit's window (its start, ms, and the challenges issued in it), which every challenge
    // updates under the row's MAC so that the limit holds across replicas.
    version: 7,
    name: 'hwkey_factors',
    sql: `
      CREATE TABLE hwkey_factors (
        wallet_name TEXT NOT NULL PRIMARY KEY REFERENCES wallets(name),
        id TEXT NOT NULL,
        xpub TEXT,
        subpath TEXT NOT NULL,
        window_start BIGINT NOT NULL CHECK (window_start >= 0),
        issued BIGINT NOT NULL CHECK (issued >= 0),
        enrolled_via TEXT NOT NULL CHECK (enrolled_via IN ('api', 'page')),
        created_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
    `,
  },
  {
    // Batch approvals (kernel/batchApproval.ts): the operations of a batch and which of them are
    // signed, as canonical JSON under the row's MAC; NULL for an approval of one operation.
    version: 8,
    name: 'approval_batches',
    sql: `
      ALTER TABLE approvals ADD COLUMN batch TEXT;
    `,
  },
  {
    // The JSON-RPC signer (kernel/rpcAccounts.ts, server rpc/): each tenant's address book (an address
    // → a wallet and key index, derived by the kernel; eth_accounts lists it in insertion order), and
    // the signing requests that wait for an approval, keyed by the request as sent (SHA-256 of the
    // method and canonical params), with the operation as filled for the approval. Addresses and
    // keys are lowercase hex, compared byte for byte.
    version: 9,
    name: 'rpc_accounts',
    sql: `
      CREATE TABLE rpc_accounts (
        tenant TEXT NOT NULL,
        address TEXT COLLATE "C" NOT NULL,
        wallet_name TEXT NOT NULL,
        key_index INTEGER NOT NULL CHECK (key_index >= 0),
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, address)
      );
      CREATE INDEX rpc_accounts_tenant_created_at ON rpc_accounts (tenant, created_at, address);
      CREATE TABLE rpc_requests (
        tenant TEXT NOT NULL,
        request_key TEXT NOT NULL,
        approval_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, request_key)
      );
      CREATE INDEX rpc_requests_created_at ON rpc_requests (created_at);
    `,
  },
  {
    // Codes the kernel delivers itself (consent/oobFactor.ts, kernel/oobDelivery.ts): a wallet's
    // delivery channel — the address sealed under the barrier, the factor's state as JSON text, a MAC
    // over both — and the outbox, written in the unit of the decision that causes a message and sent
    // after its commit under a lease. An outbox row's envelope (sealed) holds all the sender needs;
    // its other columns only schedule it. No code is stored anywhere: it is computed at send time.
    version: 10,
    name: 'oob_delivery',
    sql: `
      CREATE TABLE oob_channels (
        wallet_name TEXT NOT NULL PRIMARY KEY REFERENCES wallets(name),
        secret_envelope TEXT NOT NULL,
        state TEXT NOT NULL,
        enrolled_via TEXT NOT NULL CHECK (enrolled_via IN ('api', 'page')),
        created_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
      CREATE TABLE outbox (
        id TEXT COLLATE "C" PRIMARY KEY,
        wallet_name TEXT NOT NULL,
        approval_id TEXT COLLATE "C",
        status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'expired')),
        attempts BIGINT NOT NULL CHECK (attempts >= 0),
        next_attempt_at BIGINT NOT NULL,
        lease_until BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        sent_at BIGINT,
        last_error TEXT,
        envelope TEXT NOT NULL
      );
      CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
      CREATE INDEX outbox_approval ON outbox (approval_id, created_at);
      CREATE INDEX outbox_wallet ON outbox (wallet_name, created_at);
    `,
  },
  {
    // The recipient's keyed tag on each outbox row (kernel/oobDelivery.ts addressTagOf: a MAC under the
    // barrier; the address stays sealed in the envelope), so that the address checks sent to one
    // address are capped across wallets: fresh wallet names do not make the kernel a mail relay.
    version: 11,
    name: 'outbox_address_tag',
    sql: `
      ALTER TABLE outbox ADD COLUMN address_tag TEXT;
      CREATE INDEX outbox_address_tag ON outbox (address_tag, created_at);
    `,
  },
  {
    // Wallet policies (kernel/walletPolicy.ts, evaluatePolicy.ts): a wallet's own override of the
    // deployment's policy (canonical JSON, MAC'd under the barrier), and what each signature counted
    // against its limits, written in the unit of the signature (one row per signature's audit record).
    version: 12,
    name: 'wallet_policies',
    sql: `
      CREATE TABLE wallet_policies (
        wallet_name TEXT NOT NULL PRIMARY KEY REFERENCES wallets(name),
        tenant TEXT NOT NULL,
        policy TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
      CREATE TABLE policy_usage (
        wallet_name TEXT NOT NULL,
        audit_seq BIGINT NOT NULL PRIMARY KEY,
        ts BIGINT NOT NULL,
        amounts TEXT NOT NULL
      );
      CREATE INDEX policy_usage_wallet_ts ON policy_usage (wallet_name, ts);
      CREATE INDEX policy_usage_ts ON policy_usage (ts);
    `,
  },
  {
    // Timelocked changes of a wallet's protection (kernel/pendingChanges.ts): asked for, consented by
    // the owner on the kernel's page, pending for the deployment's delay, then applied by the apply
    // loop unless cancelled. The kind's payload is canonical JSON text; the MAC (under the barrier)
    // covers every column. And each wallet's safe address (the emergency exit's destination), MAC'd.
    version: 13,
    name: 'pending_changes',
    sql: `
      CREATE TABLE pending_changes (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        api_key_id TEXT,
        wallet_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        capability_hash TEXT NOT NULL UNIQUE,
        notice_capability_hash TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('requested', 'pending', 'applied', 'cancelled', 'expired')),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        effective_at BIGINT,
        decided_at BIGINT,
        reminders INTEGER NOT NULL CHECK (reminders >= 0),
        cancel_failures INTEGER NOT NULL CHECK (cancel_failures >= 0),
        consent TEXT,
        mac TEXT NOT NULL
      );
      CREATE INDEX pending_changes_wallet_state ON pending_changes (wallet_name, state, created_at);
      CREATE INDEX pending_changes_state_effective_at ON pending_changes (state, effective_at, id);
      CREATE TABLE wallet_safe_addresses (
        wallet_name TEXT NOT NULL PRIMARY KEY,
        address TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
    `,
  },
  {
    // "This was not me" (kernel/freeze.ts): a wallet's freeze (frozen_at, covered by the wallet row's
    // MAC while set), the hash of the owner's per-wallet page capability (the freeze and activity
    // pages; the capability itself is a MAC under the barrier, never stored), and the wallet's
    // recovery codes (kernel/recoveryCodes.ts: keyed tags of the codes, their use and a throttle of
    // their own, the row MAC'd under the barrier).
    version: 14,
    name: 'wallet_freeze',
    sql: `
      ALTER TABLE wallets ADD COLUMN frozen_at BIGINT;
      ALTER TABLE wallets ADD COLUMN owner_link_hash TEXT;
      CREATE UNIQUE INDEX wallets_owner_link ON wallets (owner_link_hash);
      CREATE INDEX audit_log_wallet ON audit_log (wallet_name, seq);
      CREATE TABLE recovery_codes (
        wallet_name TEXT NOT NULL PRIMARY KEY,
        codes TEXT NOT NULL,
        failures INTEGER NOT NULL CHECK (failures >= 0),
        window_start BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        mac TEXT NOT NULL
      );
    `,
  },
  {
    // Issue 13, the admin quorum (kernel/quorum/): kernel settings (the admin set, the deployment
    // settings) as MAC'd JSON rows, proposals and their admins' approvals, and a MAC on API key rows.
    version: 15,
    name: 'admin_quorum',
    sql: quorumMigrationSql('BIGINT', 'TEXT COLLATE "C"'),
  },
  {
    // Issue 13, admin passkeys (kernel/quorum/adminPasskeys.ts): single-use admin enrolment links
    // (the capability's hash) and the passkeys registered on them, with their signature counters.
    version: 16,
    name: 'admin_passkeys',
    sql: adminPasskeyMigrationSql('BIGINT', 'TEXT COLLATE "C"'),
  },
  {
    // Row rollback (issue 13 review, kernel/rowAnchors.ts): the newest `row.anchor` record of a subject
    // (its hash in op_hash) is looked up by index on every use of an anchored row (the sign path among
    // them). Partial: only anchor records are in it, so the other appends do not maintain it.
    version: 17,
    name: 'row_anchors',
    sql: "CREATE INDEX audit_log_row_anchor ON audit_log (op_hash, seq) WHERE action = 'row.anchor';",
  },
  {
    // Cancel budgets the wallet backend cannot reach (issue 13 point 2, kernel/ownerDevice.ts): wrong
    // cancel answers and cancel codes sent through an owner-device cookie or a change's delivered link,
    // counted apart from the change's shared counter; each row MAC'd under the barrier.
    version: 18,
    name: 'cancel_budgets',
    sql: `
      CREATE TABLE cancel_budgets (
        wallet_name TEXT NOT NULL,
        budget_key TEXT COLLATE "C" NOT NULL,
        code_failures INTEGER NOT NULL CHECK (code_failures >= 0),
        recovery_failures INTEGER NOT NULL CHECK (recovery_failures >= 0),
        recovery_window_start BIGINT NOT NULL,
        sent_in_window INTEGER NOT NULL CHECK (sent_in_window >= 0),
        send_window_start BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        mac TEXT NOT NULL,
        PRIMARY KEY (wallet_name, budget_key)
      );
    `,
  },
  {
    // Admin notices (issue 13 points 3 and 4, kernel/quorum/tellAdmins.ts): what every admin is told
    // (freezes, proposals) is also an `admin.notice` audit record with its full text, listed newest
    // first on the admin page and by `custos admin notices`. Partial: only notice records are in it.
    version: 19,
    name: 'admin_notices',
    sql: "CREATE INDEX audit_log_admin_notice ON audit_log (seq) WHERE action = 'admin.notice';",
  },
  {
    // The audit log's filters (issue 15 point 4, GET /v1/audit and `custos audit list|export`): each
    // filter column is indexed with seq, so a filtered page is read in seq order from its cursor
    // without a scan (wallet_name is audit_log_wallet's, migration 14); ts for the time range.
    version: 20,
    name: 'audit_filters',
    sql: `
      CREATE INDEX audit_log_app ON audit_log (app_id, seq);
      CREATE INDEX audit_log_action ON audit_log (action, seq);
      CREATE INDEX audit_log_op_hash ON audit_log (op_hash, seq);
      CREATE INDEX audit_log_ts ON audit_log (ts);
    `,
  },
  {
    // API keys over the API (issue 15 point 5, kernel/manageApiKeys.ts): an optional expiry and
    // wallet-name prefix (both covered by the key's MAC and anchored in the audit log, so that a
    // database writer cannot lift them silently), and when the key was last used (informational,
    // written at most once a minute per key).
    version: 21,
    name: 'api_key_limits',
    sql: `
      ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
      ALTER TABLE api_keys ADD COLUMN wallet_prefix TEXT;
      ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
    `,
  },
  {
    // Idempotency keys (issue 15 point 6, kernel/idempotency.ts): the result of a sign or approval
    // request under its Idempotency-Key, per (tenant, API key), sealed under the barrier, written in
    // the decision's own unit; rows older than 24 h are ignored and purged (purgeExpiredIdempotency).
    version: 22,
    name: 'idempotency_keys',
    sql: `
      CREATE TABLE idempotency_keys (
        tenant TEXT NOT NULL,
        api_key_id TEXT COLLATE "C" NOT NULL,
        idempotency_key TEXT COLLATE "C" NOT NULL,
        request_hash TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, api_key_id, idempotency_key)
      );
      CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
    `,
  },
  {
    // The wallet list (issue 15 point 5, GET /v1/wallets/list, Store.readWalletPage): a tenant's
    // wallets in name order (code point order: the "C" collation, as the page query compares names), a page at a time from a cursor.
    version: 23,
    name: 'wallets_tenant_name',
    sql: `
      CREATE INDEX wallets_tenant_name ON wallets (tenant, name COLLATE "C");
    `,
  },
];

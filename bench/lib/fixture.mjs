// Fixtures: a signer made with the real CLI (`custos init`, `custos apikey create`), then N
// enrolled wallets written straight into its store — the same rows Kernel.enrollTotp writes
// (wallets + totp_factors, the TOTP secret sealed by encryptRecord(barrierKey, 'totp:' + name,
// secret, random), each row with its MAC under the barrier, the wallet owned by the API key's
// tenant `default`) without the QR rendering of the enrolment API.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DEFAULT_TENANT, unsealRoot } from '@custos/kernel';
import { openStore } from '@custos/server';
import Database from 'better-sqlite3';
import pg from 'pg';
import { runNode } from './children.mjs';

/** A fixed BIP39 test mnemonic: bench keys are throwaway. */
const MNEMONIC = 'test test test test test test test test test test test junk';

/** `custos init` + `custos apikey create` for a data dir or a postgres URL; returns the API key. */
export async function createSigner({ cli, workDir, name, location, passphrase }) {
  const passphraseFile = join(workDir, `${name}.passphrase`);
  const mnemonicFile = join(workDir, `${name}.mnemonic`);
  writeFileSync(passphraseFile, passphrase, { mode: 0o600 });
  writeFileSync(mnemonicFile, MNEMONIC, { mode: 0o600 });
  const where = 'dataDir' in location ? ['--data-dir', location.dataDir] : ['--store', location.url];
  const init = await runNode(`${name}-init`, [
    cli,
    'init',
    ...where,
    '--passphrase-file',
    passphraseFile,
    '--scrypt-log-n',
    '10',
    '--mnemonic-file',
    mnemonicFile,
  ]);
  if (init.code !== 0) throw new Error(`custos init failed (${init.code}): ${init.stderr}`);
  const key = await runNode(`${name}-apikey`, [cli, 'apikey', 'create', ...where, '--name', 'bench', '--scopes', 'register,derive,sign']);
  if (key.code !== 0) throw new Error(`custos apikey create failed (${key.code}): ${key.stderr}`);
  const apiKey = key.stdout.trim().split(/\s+/).at(-1);
  if (!/^ck1\./.test(apiKey)) throw new Error(`unexpected apikey output: ${key.stdout}`);
  return { apiKey, passphraseFile };
}

/**
 * The store signer's root (unsealRoot, as Kernel.unseal) and derivation scheme: each sealing worker
 * opens its own Barrier from them, as Kernel.unseal does, for the record key and the record MACs.
 */
async function unsealedRootOf(store, passphrase) {
  const meta = await store.getMeta();
  if (meta === undefined) throw new Error('store holds no signer');
  const root = await unsealRoot(meta.sealedRoot, new Uint8Array(Buffer.from(passphrase, 'utf8')));
  return { root, derivation: meta.derivation };
}

/**
 * Chunks {from, to, names, envelopes, walletMacs, factorMacs} of wallets [0, count), in order,
 * `chunk` rows each, sealed by a pool of worker threads (one per core, two chunks ahead each) so
 * that sealing — the costly part: one AES-GCM encryptRecord and two HMACs per wallet — runs on
 * every core while the caller writes.
 */
async function* sealedBatches({ root, derivation, benchKey, count, chunk, workers = Math.max(1, availableParallelism()) }) {
  const pool = [];
  const done = new Map();
  let wake;
  let failure;
  for (let w = 0; w < workers; w++) {
    const worker = new Worker(new URL('./envelopeWorker.mjs', import.meta.url), {
      workerData: { root: Uint8Array.from(root), derivation, tenant: DEFAULT_TENANT, benchKey: Uint8Array.from(benchKey) },
    });
    worker.on('message', (batch) => {
      done.set(batch.from, batch);
      wake?.();
    });
    worker.on('error', (error) => {
      failure = error;
      wake?.();
    });
    pool.push(worker);
  }
  const ranges = [];
  for (let from = 0; from < count; from += chunk) ranges.push({ from, to: Math.min(count, from + chunk) });
  let asked = 0;
  const ask = () => {
    if (asked < ranges.length) {
      pool[asked % workers].postMessage(ranges[asked]);
      asked += 1;
    }
  };
  try {
    for (let i = 0; i < 2 * workers; i++) ask();
    for (const range of ranges) {
      while (!done.has(range.from)) {
        if (failure) throw failure;
        await new Promise((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      const batch = done.get(range.from);
      done.delete(range.from);
      ask();
      yield batch;
    }
  } finally {
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}

/**
 * Inserts wallets [0, count) into a SQLite data dir: one prepared statement per table, one
 * transaction (db.transaction) per `batch` rows. Returns {rows, seconds}.
 */
export async function insertWalletsSqlite({ dataDir, passphrase, benchKey, count, batch = 50_000, onProgress }) {
  const store = await openStore({ dataDir });
  const started = performance.now();
  try {
    const { root, derivation } = await unsealedRootOf(store, passphrase);
    const db = store.database;
    const insertWallet = db.prepare('INSERT INTO wallets (name, tenant, created_at, mac) VALUES (?, ?, ?, ?)');
    const insertFactor = db.prepare(
      'INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac) VALUES (?, ?, NULL, 0, NULL, ?, ?)',
    );
    const insertBatch = db.transaction((chunks, now) => {
      for (const rows of chunks) {
        for (let k = 0; k < rows.names.length; k++) {
          insertWallet.run(rows.names[k], DEFAULT_TENANT, now, rows.walletMacs[k]);
          insertFactor.run(rows.names[k], rows.envelopes[k], now, rows.factorMacs[k]);
        }
      }
    });
    // one transaction per `batch` rows, filled from chunks the workers sealed meanwhile
    let pending = [];
    let rowsPending = 0;
    for await (const rows of sealedBatches({ root, derivation, benchKey, count, chunk: Math.min(batch, 10_000) })) {
      pending.push(rows);
      rowsPending += rows.names.length;
      if (rowsPending >= batch || rows.to === count) {
        insertBatch.immediate(pending, Date.now());
        onProgress?.(rows.to);
        pending = [];
        rowsPending = 0;
      }
    }
    root.fill(0);
  } finally {
    await store.close();
  }
  return { rows: count, seconds: (performance.now() - started) / 1000 };
}

/**
 * Inserts wallets [0, count) into a PostgreSQL schema: multi-row INSERTs (unnest of arrays,
 * `chunk` rows a statement), one transaction per `batch` rows, on a connection of our own.
 */
export async function insertWalletsPostgres({ url, passphrase, benchKey, count, batch = 50_000, chunk = 10_000, onProgress }) {
  const store = await openStore({ url });
  const started = performance.now();
  let unsealed;
  try {
    unsealed = await unsealedRootOf(store, passphrase);
  } finally {
    await store.close();
  }
  const { connectionString, schema } = splitSchema(url);
  const client = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    let open = false;
    let inTx = 0;
    for await (const rows of sealedBatches({ ...unsealed, benchKey, count, chunk: Math.min(batch, chunk) })) {
      if (!open) {
        await client.query('BEGIN');
        open = true;
      }
      const now = Date.now();
      await client.query('INSERT INTO wallets (name, tenant, created_at, mac) SELECT n, $3, $4, m FROM unnest($1::text[], $2::text[]) AS t(n, m)', [
        rows.names,
        rows.walletMacs,
        DEFAULT_TENANT,
        now,
      ]);
      await client.query(
        'INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac) SELECT n, e, NULL, 0, NULL, $4, m FROM unnest($1::text[], $2::text[], $3::text[]) AS t(n, e, m)',
        [rows.names, rows.envelopes, rows.factorMacs, now],
      );
      inTx += rows.names.length;
      if (inTx >= batch || rows.to === count) {
        await client.query('COMMIT');
        open = false;
        inTx = 0;
        onProgress?.(rows.to);
      }
    }
    await client.query('ANALYZE wallets');
    await client.query('ANALYZE totp_factors');
  } finally {
    unsealed.root.fill(0);
    await client.end();
  }
  return { rows: count, seconds: (performance.now() - started) / 1000 };
}

export function splitSchema(url) {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  u.searchParams.delete('schema');
  return { connectionString: u.toString(), schema };
}

/** sign.hash audit records by decision, and the head seq, of a SQLite data dir (read-only). */
export function auditCountsSqlite(dbPath) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const rows = db.prepare("SELECT decision, count(*) AS n FROM audit_log WHERE action = 'sign.hash' GROUP BY decision").all();
    const head = db.prepare('SELECT max(seq) AS seq FROM audit_log').get();
    return toCounts(rows, head?.seq);
  } finally {
    db.close();
  }
}

export async function auditCountsPostgres(url) {
  const { connectionString, schema } = splitSchema(url);
  const client = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT decision, count(*)::int AS n FROM audit_log WHERE action = 'sign.hash' GROUP BY decision");
    const head = await client.query('SELECT max(seq)::bigint AS seq FROM audit_log');
    return toCounts(rows, head.rows[0]?.seq);
  } finally {
    await client.end();
  }
}

function toCounts(rows, head) {
  const counts = { allowed: 0, denied: 0, headSeq: head === null || head === undefined ? 0 : Number(head) };
  for (const r of rows) counts[r.decision] = Number(r.n);
  return counts;
}

export async function dropSchema(url) {
  const { connectionString, schema } = splitSchema(url);
  if (!/^bench_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to drop schema ${schema}`);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

export async function postgresSettings(url) {
  const { connectionString } = splitSchema(url);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT name, setting, unit FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'server_version', 'commit_delay') ORDER BY name",
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting]));
  } finally {
    await client.end();
  }
}

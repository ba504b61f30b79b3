import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CustosError, type Store } from '@custos/kernel';
import { PostgresStore } from './stores/postgres/PostgresStore.js';
import { SqliteStore } from './stores/sqlite/SqliteStore.js';

export const DB_FILE = 'custos.db';

/** Where the signer's state lives: a data directory (embedded SQLite) or a PostgreSQL URL. */
export type StoreLocation = { dataDir: string } | { url: string };

export type OpenedStore = (SqliteStore | PostgresStore) & Store & { ping(): Promise<boolean> };

/**
 * Opens the store and applies pending migrations. A data directory holds `custos.db` (directory
 * mode 0700, file 0600). A URL `postgres://user@host:port/db[?schema=name]` opens the PostgreSQL
 * store; the optional `schema` parameter (default `public`) is Custos's, not libpq's.
 */
export async function openStore(
  location: StoreLocation,
  { migrate = true, onMigration }: { migrate?: boolean; onMigration?: (done: number, total: number) => void } = {},
): Promise<OpenedStore> {
  if ('dataDir' in location) {
    mkdirSync(location.dataDir, { recursive: true, mode: 0o700 });
    return new SqliteStore({ path: join(location.dataDir, DB_FILE), ...(onMigration === undefined ? {} : { onMigration }) });
  }
  const { connectionString, schema } = parseStoreUrl(location.url);
  return PostgresStore.open({ connectionString, schema, migrate, ...(onMigration === undefined ? {} : { onMigration }) });
}

/**
 * Checks a `postgres://` store URL and splits off Custos's `schema` parameter. Anything else is
 * invalid_input naming `store` (the URL itself is not echoed: it may hold a password).
 */
export function parseStoreUrl(raw: string): { connectionString: string; schema: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CustosError('invalid_input', 'store: expected a postgres:// URL', { details: { field: 'store' } });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new CustosError('invalid_input', 'store: expected a postgres:// URL', { details: { field: 'store' } });
  }
  const schema = url.searchParams.get('schema') ?? 'public';
  url.searchParams.delete('schema');
  return { connectionString: url.toString(), schema };
}

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from './stores/sqlite/SqliteStore.js';

export const DB_FILE = 'custos.db';

/** The data directory's store: the embedded SQLite file `custos.db` (directory mode 0700). */
export function openStore(dataDir: string): SqliteStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return new SqliteStore({ path: join(dataDir, DB_FILE) });
}

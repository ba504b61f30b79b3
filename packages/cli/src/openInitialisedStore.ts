import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CustosError } from '@custos/kernel';
import { DB_FILE, openStore, type SqliteStore } from '@custos/server';

/** Opens the data directory's store, refusing one that holds no initialised signer. */
export async function openInitialisedStore(dataDir: string): Promise<SqliteStore> {
  if (!existsSync(join(dataDir, DB_FILE))) throw new CustosError('not_initialized', `${dataDir} holds no signer; run custos init first`);
  const store = openStore(dataDir);
  if ((await store.getMeta()) === undefined) {
    await store.close();
    throw new CustosError('not_initialized', `${dataDir} holds no signer; run custos init first`);
  }
  return store;
}

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CustosError } from '@custos/kernel';
import { DB_FILE, type OpenedStore, openStore, parseStoreUrl, type StoreLocation } from '@custos/server';
import { requireOption } from './io.js';

/** `--data-dir D` (embedded SQLite) or `--store postgres://…`: exactly one. */
export function readStoreLocation(opts: { 'data-dir'?: string | undefined; store?: string | undefined }): StoreLocation {
  if (opts['data-dir'] !== undefined && opts.store !== undefined) {
    throw new CustosError('invalid_input', 'give either --data-dir or --store, not both', { details: { field: 'store' } });
  }
  if (opts.store !== undefined) {
    const url = requireOption(opts.store, 'store');
    parseStoreUrl(url);
    return { url };
  }
  return { dataDir: requireOption(opts['data-dir'], 'data-dir') };
}

export function describeLocation(location: StoreLocation): string {
  if ('dataDir' in location) return location.dataDir;
  const url = new URL(location.url);
  url.password = '';
  return url.toString();
}

/** Opens the store, refusing one that holds no initialised signer. */
export async function openInitialisedStore(location: StoreLocation): Promise<OpenedStore> {
  const where = describeLocation(location);
  if ('dataDir' in location && !existsSync(join(location.dataDir, DB_FILE)))
    throw new CustosError('not_initialized', `${where} holds no signer; run custos init first`);
  // Look first without migrating, so that a mistyped schema is not created as a side effect.
  const probe = await openStore(location, { migrate: false });
  const initialised = (await probe.getMeta()) !== undefined;
  await probe.close();
  if (!initialised) throw new CustosError('not_initialized', `${where} holds no signer; run custos init first`);
  return openStore(location);
}

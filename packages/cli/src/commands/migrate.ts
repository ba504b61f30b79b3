import { openStore } from '@custos/server';
import { type Io, parseOptions } from '../io.js';
import { describeLocation, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage: custos migrate (--data-dir D | --store postgres://…)

Applies the store's pending schema migrations and prints the versions applied. serve applies them
at start-up too; run this before rolling out replicas of a new version.`;

export async function migrateCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, { 'data-dir': { type: 'string' }, store: { type: 'string' } });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  const store = await openStore(location);
  try {
    io.stdout.write(`schema of ${describeLocation(location)} at versions ${(await store.schemaVersions()).join(', ')}\n`);
  } finally {
    await store.close();
  }
  return 0;
}

import { openStore } from '@custos/server';
import { type Io, parseOptions } from '../io.js';
import { describeLocation, readStoreLocation } from '../openInitialisedStore.js';
import { createProgress, type ProgressStream } from '../progress.js';

const HELP = `Usage: custos migrate (--data-dir D | --store postgres://…) [--quiet]

Applies the store's pending schema migrations (all in one transaction: all of them or none) and
prints the versions applied. serve applies them at start-up too; run this before rolling out
replicas of a new version. On a terminal a progress bar counts the migrations applied (plain lines
off a terminal once it has run 5 s; none with --quiet).`;

export async function migrateCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, { 'data-dir': { type: 'string' }, store: { type: 'string' }, quiet: { type: 'boolean' } });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  const progress = createProgress({ stream: io.stderr as ProgressStream, label: 'migrate', quiet: opts.quiet === true });
  let applied = 0;
  const store = await openStore(location, {
    onMigration: (done, total) => {
      applied = done;
      progress.update(done, total);
    },
  });
  if (applied > 0) progress.finish();
  try {
    io.stdout.write(`schema of ${describeLocation(location)} at versions ${(await store.schemaVersions()).join(', ')}\n`);
  } finally {
    await store.close();
  }
  return 0;
}

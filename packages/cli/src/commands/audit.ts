import { CustosError, readAuditPages, verifyAuditChain } from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage: custos audit verify (--data-dir D | --store postgres://…)

Recomputes the hash chain of the audit log and names the first record that breaks it
(exit 1), or prints the number of records and the head hash (exit 0).`;

export async function auditCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'verify') throw new CustosError('invalid_input', `unknown audit subcommand ${JSON.stringify(sub)}; expected verify`);
  const opts = parseOptions(rest, { 'data-dir': { type: 'string' }, store: { type: 'string' } });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const store = await openInitialisedStore(readStoreLocation(opts));
  try {
    const verdict = await verifyAuditChain(readAuditPages(store));
    if (verdict.ok) {
      io.stdout.write(`audit chain OK: ${verdict.records} records, head seq ${verdict.headSeq} hash ${verdict.headHash}\n`);
      return 0;
    }
    io.stdout.write(
      `audit chain BROKEN at record seq ${verdict.firstBrokenSeq}: ${verdict.reason.replaceAll('_', ' ')} (${verdict.records} records verified before it)\n`,
    );
    return 1;
  } finally {
    await store.close();
  }
}

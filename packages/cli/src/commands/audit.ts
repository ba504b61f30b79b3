import { compareFactorRows, CustosError, readAuditPages, verifyAuditChain } from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage: custos audit verify (--data-dir D | --store postgres://…) [--factors]

Recomputes the hash chain of the audit log and names the first record that breaks it
(exit 1), or prints the number of records and the head hash (exit 0).
  --factors   also compares the factor rows with the log (no key needed): reports every wallet the
              log shows enrolled whose wallet or factor row is missing, that was enrolled more than
              once, or whose last accepted step is not the one of its last signature in the log
              (exit 1 if any). The rows' MACs are checked online by the kernel, not here.`;

export async function auditCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'verify') throw new CustosError('invalid_input', `unknown audit subcommand ${JSON.stringify(sub)}; expected verify`);
  const opts = parseOptions(rest, { 'data-dir': { type: 'string' }, store: { type: 'string' }, factors: { type: 'boolean' } });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const store = await openInitialisedStore(readStoreLocation(opts));
  try {
    const verdict = await verifyAuditChain(readAuditPages(store));
    if (verdict.ok) {
      io.stdout.write(`audit chain OK: ${verdict.records} records, head seq ${verdict.headSeq} hash ${verdict.headHash}\n`);
      return opts.factors === true ? await reportFactorRows(store, io) : 0;
    }
    io.stdout.write(
      `audit chain BROKEN at record seq ${verdict.firstBrokenSeq}: ${verdict.reason.replaceAll('_', ' ')} (${verdict.records} records verified before it)\n`,
    );
    return 1;
  } finally {
    await store.close();
  }
}

/** `--factors`: the wallets the log shows enrolled whose rows say otherwise (exit 1 if any). */
async function reportFactorRows(store: Awaited<ReturnType<typeof openInitialisedStore>>, io: Io): Promise<number> {
  const { enrolled, discrepancies } = await compareFactorRows(readAuditPages(store), (walletName) => store.readWalletRows(walletName));
  for (const d of discrepancies) {
    const steps = d.problem === 'state_differs' ? ` (log: last accepted step ${d.expectedStep}, row: ${d.rowStep})` : '';
    io.stdout.write(`factor rows: wallet ${JSON.stringify(d.walletName)}: ${d.problem.replaceAll('_', ' ')}${steps}\n`);
  }
  if (discrepancies.length === 0) {
    io.stdout.write(`factor rows OK: ${enrolled} enrolled wallets match the log\n`);
    return 0;
  }
  io.stdout.write(`factor rows DIFFER from the log: ${discrepancies.length} of ${enrolled} enrolled wallets\n`);
  return 1;
}

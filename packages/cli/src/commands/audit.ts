import { readFileSync } from 'node:fs';
import {
  type AuditCheckpoint,
  type AuditLogFault,
  type AuditLogReport,
  CustosError,
  compareFactorRows,
  parseAuditCheckpoint,
  parseAuditPublicKey,
  readAuditCheckpointPages,
  readAuditPages,
  verifyAuditLog,
} from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage: custos audit verify (--data-dir D | --store postgres://…)
                          [--audit-public-key HEX|FILE] [--checkpoint FILE] [--factors]

Recomputes the hash chain of the audit log and holds it to its signed checkpoints (docs/audit.md).
Names the first record that breaks the chain, or the first checkpoint the log no longer matches
(exit 1); otherwise prints the number of records, the head hash, what the checkpoints cover and
how many records after the last checkpoint nothing protects (exit 0).
  --audit-public-key K  the audit public key that \`custos init\` printed (64 hex digits, or a file
                        holding them): every stored checkpoint must be signed by it, and at least
                        one must be. Without it the checkpoints are checked only against the log's
                        own key, which is no evidence against someone who can write the database.
  --checkpoint FILE     checkpoints kept outside the data directory (serve --audit-checkpoint-file
                        writes one JSON line each; a single JSON object also does): the log must
                        still hold each one's record with its hash (a cut or rewritten log fails).`;

export async function auditCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'verify') throw new CustosError('invalid_input', `unknown audit subcommand ${JSON.stringify(sub)}; expected verify`);
  const opts = parseOptions(rest, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    'audit-public-key': { type: 'string' },
    checkpoint: { type: 'string' },
    factors: { type: 'boolean' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const trustedKey = opts['audit-public-key'] === undefined ? undefined : readAuditPublicKey(opts['audit-public-key']);
  const external = opts.checkpoint === undefined ? undefined : readCheckpointFile(opts.checkpoint);
  const store = await openInitialisedStore(readStoreLocation(opts));
  try {
    const meta = await store.getMeta();
    const report = await verifyAuditLog({
      records: readAuditPages(store),
      checkpoints: readAuditCheckpointPages(store),
      signerId: meta?.signerId ?? '',
      ...(trustedKey === undefined ? {} : { trustedKey }),
      ...(external === undefined ? {} : { external }),
    });
    io.stdout.write(describeReport(report, external === undefined ? undefined : { file: opts.checkpoint as string, count: external.length }));
    if (!report.ok) return 1;
    return opts.factors === true ? await reportFactorRows(store, io) : 0;
  } finally {
    await store.close();
  }
}

/** `--factors`: the wallets the log shows enrolled whose rows say otherwise (exit 1 if any). */
async function reportFactorRows(store: Awaited<ReturnType<typeof openInitialisedStore>>, io: Io): Promise<number> {
  const { enrolled, discrepancies } = await compareFactorRows(
    readAuditPages(store),
    (walletName) => store.readWalletRows(walletName),
    // a read in a transaction of its own (the store has no other read of the row): it writes nothing
    (walletName) => store.transact((tx) => tx.getRecoveryCodesForUpdate(walletName)),
  );
  for (const d of discrepancies) {
    const steps =
      d.problem === 'state_differs' && d.credentialId !== undefined
        ? ` (passkey ${d.credentialId}: log: counter ${d.expectedCounter}, row: ${d.rowCounter})`
        : d.problem === 'state_differs'
          ? ` (log: last accepted step ${d.expectedStep}, row: ${d.rowStep})`
          : d.problem === 'no_factor_row' && d.credentialId !== undefined
            ? ` (passkey ${d.credentialId})`
            : d.problem === 'no_factor_row' && d.publicKey !== undefined
              ? ` (hardware key ${d.publicKey})`
              : d.problem === 'step_replayed'
                ? ` (audit record ${d.seq}: step ${d.step} accepted again, not above an earlier signature's)`
                : d.problem === 'recovery_codes_differ'
                  ? ` (log: ${d.expectedUnused} unused, row: ${d.rowUnused === null ? 'another set' : `${d.rowUnused} unused`})`
                  : '';
    io.stdout.write(`factor rows: wallet ${JSON.stringify(d.walletName)}: ${d.problem.replaceAll('_', ' ')}${steps}\n`);
  }
  if (discrepancies.length === 0) {
    io.stdout.write(`factor rows OK: ${enrolled} enrolled wallets match the log\n`);
    return 0;
  }
  const wallets = new Set(discrepancies.map((d) => d.walletName)).size;
  io.stdout.write(`factor rows DIFFER from the log: ${wallets} of ${enrolled} enrolled wallets\n`);
  return 1;
}

/** 64 hex digits on the command line, or a file holding them (surrounding white space ignored). */
function readAuditPublicKey(value: string): Uint8Array {
  if (/^(0x)?[0-9a-fA-F]{64}$/.test(value)) return parseAuditPublicKey(value, 'audit-public-key');
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (error) {
    throw new CustosError('invalid_input', `--audit-public-key: neither 64 hex digits nor a readable file: ${JSON.stringify(value)}`, {
      cause: error,
      details: { field: 'audit-public-key' },
    });
  }
  return parseAuditPublicKey(text.trim(), 'audit-public-key');
}

/** A file of checkpoints: JSON lines as the export writes them, or one JSON object. */
function readCheckpointFile(path: string): AuditCheckpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CustosError('invalid_input', `--checkpoint: cannot read ${JSON.stringify(path)}`, { cause: error, details: { field: 'checkpoint' } });
  }
  const parse = (json: string, where: string): AuditCheckpoint => {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new CustosError('invalid_input', `--checkpoint: ${where} is not JSON`, { details: { field: 'checkpoint' } });
    }
    return parseAuditCheckpoint(value, where === 'the file' ? 'checkpoint' : `checkpoint ${where}`);
  };
  const trimmed = text.trim();
  if (trimmed === '') throw new CustosError('invalid_input', '--checkpoint: the file holds no checkpoint', { details: { field: 'checkpoint' } });
  if (!trimmed.includes('\n')) return [parse(trimmed, 'the file')];
  try {
    return [parseAuditCheckpoint(JSON.parse(trimmed), 'checkpoint')];
  } catch {
    // not one (pretty-printed) object: JSON lines
  }
  return text.split('\n').flatMap((line, index) => (line.trim() === '' ? [] : [parse(line, `line ${index + 1}`)]));
}

function describeReport(report: AuditLogReport, external: { file: string; count: number } | undefined): string {
  const { fault } = report;
  if (fault?.kind === 'chain')
    return `audit chain BROKEN at record seq ${fault.seq}: ${fault.reason.replaceAll('_', ' ')} (${report.records} records verified before it)\n`;
  if (fault !== undefined) return `${describeFault(fault, report)}\n`;
  const lines = [`audit chain OK: ${report.records} records, head seq ${report.headSeq} hash ${report.headHash}`];
  if (report.key === null) lines.push('checkpoints: none stored');
  else if (report.key.trusted) lines.push(`checkpoints: ${report.checkpoints} verified against the audit public key ${report.key.publicKey}`);
  else
    lines.push(
      `checkpoints: ${report.checkpoints} checked only against the log's own key ${report.key.publicKey}, which is no evidence against a database writer (give --audit-public-key as printed by custos init)`,
    );
  if (external !== undefined) lines.push(`external checkpoints: the log extends all ${external.count} in ${external.file}`);
  lines.push(
    report.records === 0
      ? 'unprotected: none (the log is empty)'
      : report.unprotected === 0
        ? `unprotected: none (the last checkpoint covers the head, seq ${report.lastCheckpointSeq})`
        : `unprotected: ${report.unprotected} records after the last checkpoint (seq ${report.lastCheckpointSeq + 1}..${report.headSeq}) are covered by no checkpoint: a database writer could change or remove them unseen`,
  );
  return `${lines.join('\n')}\n`;
}

function describeFault(fault: Exclude<AuditLogFault, { kind: 'chain' }>, report: AuditLogReport): string {
  if (fault.kind === 'no_checkpoint')
    return `audit log UNPROTECTED: no checkpoint is signed by the audit public key ${report.key?.publicKey}: any of the ${report.records} records could have been rewritten`;
  const which = `the ${fault.source === 'store' ? 'stored' : 'external (--checkpoint)'} checkpoint at seq ${fault.seq}`;
  const key =
    report.key?.trusted === true ? `the audit public key ${report.key.publicKey}` : `the log's own key ${report.key?.publicKey} (its first checkpoint's)`;
  switch (fault.kind) {
    case 'checkpoint_mismatch':
      return `audit log REWRITTEN: ${which} commits to hash ${fault.checkpointHash}, the log has ${fault.logHash || 'no record'} there: records up to seq ${fault.seq} were changed, removed or reordered`;
    case 'checkpoint_beyond_head':
      return `audit log CUT SHORT: ${which} commits to a record the log no longer has (the log ends at seq ${fault.headSeq})`;
    case 'checkpoint_signature_invalid':
      return `audit checkpoint FORGED: ${which} does not verify under ${key}`;
    case 'checkpoint_key_mismatch':
      return `audit checkpoint FORGED: ${which} is signed by key ${fault.publicKey}, not by ${key}`;
    case 'checkpoint_foreign':
      return `audit checkpoint FOREIGN: ${which} is signer ${fault.signerId}'s, not this signer's`;
  }
}

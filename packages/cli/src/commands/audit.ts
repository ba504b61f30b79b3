import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import {
  type AuditCheckpoint,
  type AuditListRequest,
  type AuditQuery,
  type AuditRecord,
  type AuditLogFault,
  type AuditLogReport,
  CustosError,
  compareFactorRows,
  encodeAuditCursor,
  parseAuditCheckpoint,
  parseAuditListRequest,
  parseAuditPublicKey,
  readAuditCheckpointPages,
  readAuditPages,
  verifyAuditLog,
} from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { createProgress, type Progress, type ProgressStream } from '../progress.js';

const FILTER_HELP = `Filters (all optional, combined with AND):
  --wallet NAME         only this wallet
  --app ID              only what this API key id asked
  --action A            only this action (sign.transaction, sign.hash, apikey.create, sys.init, …)
  --decision D          allowed | denied
  --op-hash HEX         only this operation hash
  --since T, --until T  time range: 7d, 24h, 30m (before now), an ISO date, or ms since the epoch`;

const LIST_HELP = `Usage: custos audit list (--data-dir D | --store postgres://…) [filters]
                        [--limit N] [--cursor C] [--json]

Prints the matching audit records, oldest first, at most --limit (default 100, up to 1000), and the
cursor of the next page. --json: one JSON object { records, nextCursor, more } (as GET /v1/audit).
${FILTER_HELP}`;

const EXPORT_HELP = `Usage: custos audit export (--data-dir D | --store postgres://…) [filters]
                          [--format jsonl] [--out FILE] [--quiet]

Streams every matching audit record, oldest first, one JSON object a line, to stdout or --out FILE
(created 0600, must not exist). Progress on stderr: a bar on a terminal, otherwise a line every 10 %
or 5 s once it has run 5 s, nothing with --quiet.
${FILTER_HELP}

What did wallet X sign last week, and who asked (appId):
  custos audit list --data-dir D --wallet X --action 'sign.*' --decision allowed --since 7d`;

const HELP = `Usage: custos audit verify (--data-dir D | --store postgres://…)
                          [--audit-public-key HEX|FILE] [--checkpoint FILE] [--factors] [--quiet]

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
    io.stdout.write(`${HELP}\n\n${LIST_HELP}\n\n${EXPORT_HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'list' || sub === 'export') return await listOrExport(sub, rest, io);
  if (sub !== 'verify') throw new CustosError('invalid_input', `unknown audit subcommand ${JSON.stringify(sub)}; expected verify, list or export`);
  const opts = parseOptions(rest, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    'audit-public-key': { type: 'string' },
    checkpoint: { type: 'string' },
    factors: { type: 'boolean' },
    quiet: { type: 'boolean' },
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
    const head = (await store.transact((tx) => tx.auditHead())).seq;
    const progress = createProgress({ stream: io.stderr as ProgressStream, label: 'audit verify', total: head, quiet: opts.quiet === true });
    const report = await verifyAuditLog({
      records: withProgress(readAuditPages(store), progress),
      checkpoints: readAuditCheckpointPages(store),
      signerId: meta?.signerId ?? '',
      ...(trustedKey === undefined ? {} : { trustedKey }),
      ...(external === undefined ? {} : { external }),
    });
    progress.finish();
    io.stdout.write(describeReport(report, external === undefined ? undefined : { file: opts.checkpoint as string, count: external.length }));
    if (!report.ok) return 1;
    return opts.factors === true ? await reportFactorRows(store, io) : 0;
  } finally {
    await store.close();
  }
}

/** The pages as they are read, with the progress of the scan (by seq, against the head at the start). */
async function* withProgress(pages: AsyncIterable<AuditRecord[]>, progress: Progress): AsyncIterable<AuditRecord[]> {
  for await (const page of pages) {
    yield page;
    const last = page.at(-1);
    if (last !== undefined) progress.update(last.seq);
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

const FILTER_OPTIONS = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  wallet: { type: 'string' },
  app: { type: 'string' },
  action: { type: 'string' },
  decision: { type: 'string' },
  'op-hash': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

/** The CLI's option name of each field of the query (errors name the option the operator typed). */
const OPTION_OF: Record<string, string> = { walletName: 'wallet', appId: 'app', opHash: 'op-hash' };

/** `7d`, `24h`, `30m`, `45s` before now; an ISO 8601 date; or ms since the epoch. */
export function parseAuditTime(value: string, option: string, nowMs: number): number {
  const relative = /^([0-9]{1,6})([smhd])$/.exec(value);
  if (relative !== null) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return Math.max(0, nowMs - Number(relative[1]) * unit);
  }
  if (/^[0-9]{1,15}$/.test(value)) return Number(value);
  const parsed = /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(parsed))
    throw new CustosError('invalid_input', `--${option}: expected 7d, 24h, 30m, an ISO date or ms since the epoch, got ${JSON.stringify(value.slice(0, 40))}`, {
      details: { field: option },
    });
  return parsed;
}

function auditQueryOf(opts: Record<string, unknown>, extra: { cursor?: string; limit?: number }, nowMs: number): AuditQuery {
  const request: AuditListRequest = {
    ...extra,
    ...(opts.wallet === undefined ? {} : { walletName: opts.wallet }),
    ...(opts.app === undefined ? {} : { appId: opts.app }),
    ...(opts.action === undefined ? {} : { action: opts.action }),
    ...(opts.decision === undefined ? {} : { decision: opts.decision }),
    ...(opts['op-hash'] === undefined ? {} : { opHash: opts['op-hash'] }),
    ...(opts.since === undefined ? {} : { since: parseAuditTime(String(opts.since), 'since', nowMs) }),
    ...(opts.until === undefined ? {} : { until: parseAuditTime(String(opts.until), 'until', nowMs) }),
  };
  try {
    return parseAuditListRequest(request);
  } catch (error) {
    if (error instanceof CustosError && typeof error.details.field === 'string') {
      const option = OPTION_OF[error.details.field] ?? error.details.field;
      throw new CustosError('invalid_input', `--${option}: ${error.message}`, { details: { field: option }, cause: error });
    }
    throw error;
  }
}

function describeRecord(r: AuditRecord): string {
  const when = new Date(r.ts).toISOString();
  const detail = Object.keys(r.detail).length === 0 ? '' : ` ${JSON.stringify(r.detail)}`;
  return `${r.seq}\t${when}\t${r.decision}${r.reason === null ? '' : ` (${r.reason})`}\t${r.action}\twallet=${r.walletName ?? '-'}\tapp=${r.appId ?? '-'}${r.opHash === null ? '' : `\top=${r.opHash}`}${detail}`;
}

/** `custos audit list` (one page) and `custos audit export` (every matching record, streamed). */
async function listOrExport(sub: 'list' | 'export', argv: string[], io: Io): Promise<number> {
  const opts =
    sub === 'list'
      ? parseOptions(argv, { ...FILTER_OPTIONS, limit: { type: 'string' }, cursor: { type: 'string' }, json: { type: 'boolean' } })
      : parseOptions(argv, { ...FILTER_OPTIONS, format: { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean' } });
  if (opts.help) {
    io.stdout.write(`${sub === 'list' ? LIST_HELP : EXPORT_HELP}\n`);
    return 0;
  }
  const nowMs = Date.now();
  if (sub === 'list') {
    const o = opts as { limit?: string; cursor?: string; json?: boolean };
    if (o.limit !== undefined && !/^[0-9]{1,4}$/.test(o.limit))
      throw new CustosError('invalid_input', '--limit: expected an integer from 1 to 1000', { details: { field: 'limit' } });
    const query = auditQueryOf(
      opts,
      { ...(o.limit === undefined ? {} : { limit: Number(o.limit) }), ...(o.cursor === undefined ? {} : { cursor: o.cursor }) },
      nowMs,
    );
    const store = await openInitialisedStore(readStoreLocation(opts));
    try {
      const records = await store.queryAudit(query);
      const last = records.at(-1);
      const nextCursor = encodeAuditCursor(last === undefined ? query.afterSeq : last.seq);
      const more = records.length === query.limit;
      if (o.json === true) {
        io.stdout.write(`${JSON.stringify({ records, nextCursor, more })}\n`);
      } else {
        for (const r of records) io.stdout.write(`${describeRecord(r)}\n`);
        io.stdout.write(`${records.length} records${more ? `; more: --cursor ${nextCursor}` : ''}\n`);
      }
      return 0;
    } finally {
      await store.close();
    }
  }
  const o = opts as { format?: string; out?: string; quiet?: boolean };
  if (o.format !== undefined && o.format !== 'jsonl') throw new CustosError('invalid_input', '--format: expected jsonl', { details: { field: 'format' } });
  const query = auditQueryOf(opts, { limit: 1000 }, nowMs);
  let fd: number | undefined;
  if (o.out !== undefined) {
    try {
      fd = openSync(o.out, 'wx', 0o600);
    } catch (error) {
      throw new CustosError('invalid_input', `--out: cannot create ${o.out} (it must not exist)`, { details: { field: 'out' }, cause: error });
    }
  }
  const write = (text: string) => (fd === undefined ? io.stdout.write(text) : writeSync(fd, text));
  const store = await openInitialisedStore(readStoreLocation(opts));
  try {
    // progress by seq: how far the scan is through the log as it was at the start
    const head = (await store.transact((tx) => tx.auditHead())).seq;
    const progress = createProgress({ stream: io.stderr as ProgressStream, label: 'audit export', total: head, quiet: o.quiet === true });
    let afterSeq = query.afterSeq;
    let exported = 0;
    for (;;) {
      const page = await store.queryAudit({ ...query, afterSeq });
      if (page.length > 0) write(`${page.map((r) => JSON.stringify(r)).join('\n')}\n`);
      exported += page.length;
      const last = page.at(-1);
      if (last !== undefined) afterSeq = last.seq;
      // a short page is the end; a full one may be followed by more, even past the starting head
      if (page.length < query.limit) {
        progress.update(Math.max(head, afterSeq), Math.max(head, afterSeq));
        break;
      }
      progress.update(Math.min(afterSeq, head), head);
    }
    progress.finish();
    if (fd !== undefined) io.stderr.write(`${exported} records written to ${o.out}\n`);
    return 0;
  } finally {
    if (fd !== undefined) closeSync(fd);
    await store.close();
  }
}

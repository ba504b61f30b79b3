import { open, readFile, rename } from 'node:fs/promises';
import { assertHttpUrl } from './assertHttpUrl.js';
import { type AuditRecord, CustosError, type Store } from '@custos/kernel';
import type { Logger } from 'pino';
import { signWebhookBody } from './delivery/webhookChannel.js';
import { wakeableSleep } from './wakeableSleep.js';

/**
 * The audit log streamed to a SIEM as it is written (`custos serve --audit-stream-webhook`,
 * docs/audit.md): the records are read from the store after their commit, in seq order, and POSTed
 * in batches, HMAC-signed like the delivery webhook (X-Custos-Signature, verifyWebhookSignature in
 * the SDK). A durable cursor (the state file: the last seq the receiver accepted, fsynced) makes it
 * at-least-once: nothing is lost while the receiver is down or the signer restarts, a batch may
 * come twice (the receiver keys on seq). It never blocks or fails signing: the stream only reads.
 */
export interface AuditStreamOptions {
  webhookUrl: string;
  /** The HMAC secret (from a file, never argv). */
  secret: Uint8Array;
  /** Holds the cursor (`{"seq":N}`, created 0600); a missing file starts at the beginning of the log. */
  stateFile: string;
  /** Records per POST (default 100). */
  batch?: number;
  /** How often the store is asked for new records when the last batch emptied it (default 1 s). */
  pollMs?: number;
  /** The first wait after a failed POST (default 1 s), doubled each time up to maxRetryDelayMs (default 60 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** One POST's time limit (default 5 s). */
  timeoutMs?: number;
  now?: () => number;
}

export interface AuditStream {
  /** The last seq the receiver accepted. */
  readonly cursor: number;
  readonly stats: { delivered: number; failedAttempts: number };
  /** Stops after the POST in flight (the cursor is saved after each accepted batch). */
  close(): Promise<void>;
}

async function readCursor(stateFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return 0;
    throw new CustosError('invalid_input', `audit stream state: cannot read ${JSON.stringify(stateFile)}`, {
      cause: error,
      details: { field: 'audit-stream-state' },
    });
  }
  const seq = (() => {
    try {
      return (JSON.parse(text) as { seq?: unknown }).seq;
    } catch {
      return undefined;
    }
  })();
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
    throw new CustosError('invalid_input', `audit stream state: ${JSON.stringify(stateFile)} is not {"seq":N}`, { details: { field: 'audit-stream-state' } });
  return seq;
}

/** Saves the cursor durably: a new file fsynced, then renamed over the old one. */
async function writeCursor(stateFile: string, seq: number): Promise<void> {
  const temporary = `${stateFile}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ seq })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, stateFile);
}

export async function startAuditStream(
  store: Pick<Store, 'queryAudit' | 'getMeta'>,
  {
    webhookUrl,
    secret,
    stateFile,
    batch = 100,
    pollMs = 1000,
    retryDelayMs = 1000,
    maxRetryDelayMs = 60_000,
    timeoutMs = 5000,
    now = Date.now,
  }: AuditStreamOptions,
  logger: Logger | false,
): Promise<AuditStream> {
  assertHttpUrl(webhookUrl, 'audit stream webhook', 'audit-stream-webhook');
  if (secret.length < 16) throw new CustosError('invalid_input', 'audit stream secret: at least 16 bytes', { details: { field: 'audit-stream-secret-file' } });
  const key = Uint8Array.from(secret);
  let cursor = await readCursor(stateFile);
  // a state file that cannot be written stops the start, not the stream later
  await writeCursor(stateFile, cursor).catch((error: unknown) => {
    throw new CustosError('invalid_input', `audit stream state: cannot write ${JSON.stringify(stateFile)}`, {
      cause: error,
      details: { field: 'audit-stream-state' },
    });
  });
  const signerId = (await store.getMeta())?.signerId ?? '';
  const stats = { delivered: 0, failedAttempts: 0 };
  let closed = false;
  const { pause, wake } = wakeableSleep();
  const warn = (what: string, error?: unknown) => {
    if (logger !== false) logger.warn({ err: error, cursor }, `audit stream: ${what} (retried; nothing is lost)`);
  };

  const post = async (records: AuditRecord[]): Promise<boolean> => {
    const body = JSON.stringify({ format: 'custos.audit-stream', version: 1, signerId, records });
    try {
      const response = await fetch(webhookUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-custos-signature': signWebhookBody(key, body, Math.floor(now() / 1000)),
          'x-custos-audit-seq': String(records.at(-1)?.seq ?? cursor),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return true;
      warn(`the webhook answered ${response.status}`);
    } catch (error) {
      warn('the webhook is unreachable', error);
    }
    return false;
  };

  const run = async () => {
    let delay = retryDelayMs;
    while (!closed) {
      let records: AuditRecord[];
      try {
        records = await store.queryAudit({ afterSeq: cursor, limit: batch });
      } catch (error) {
        warn('the store could not be read', error);
        await pause(delay);
        delay = Math.min(delay * 2, maxRetryDelayMs);
        continue;
      }
      if (records.length === 0) {
        await pause(pollMs);
        continue;
      }
      if (!(await post(records))) {
        stats.failedAttempts += 1;
        await pause(delay);
        delay = Math.min(delay * 2, maxRetryDelayMs);
        continue;
      }
      delay = retryDelayMs;
      const next = records.at(-1)?.seq ?? cursor;
      stats.delivered += records.length;
      try {
        await writeCursor(stateFile, next);
      } catch (error) {
        // the batch was accepted: at worst it comes again after a restart (at-least-once)
        warn('the state file could not be written', error);
      }
      cursor = next;
      if (records.length < batch) await pause(pollMs);
    }
  };
  const running = run();

  return {
    get cursor() {
      return cursor;
    },
    stats,
    async close() {
      closed = true;
      wake();
      await running;
      key.fill(0);
    },
  };
}

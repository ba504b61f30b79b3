import { type FileHandle, open } from 'node:fs/promises';
import { assertHttpUrl } from './assertHttpUrl.js';
import { type AuditCheckpoint, CustosError } from '@custos/kernel';
import type { Logger } from 'pino';
import { wakeableSleep } from './wakeableSleep.js';

/** Where signed audit checkpoints go as they are made, out of the data directory (docs/audit.md). */
export interface AuditCheckpointExportOptions {
  /** Appends each checkpoint as one JSON line to this file (created mode 0600) and fsyncs it. */
  file?: string;
  /** POSTs each checkpoint (JSON) to this URL: best effort, retried, never holding up signing. */
  webhookUrl?: string;
  /** Attempts per checkpoint at the webhook (default 5), waiting retryDelayMs, then twice that, … */
  webhookAttempts?: number;
  retryDelayMs?: number;
  /** One POST's time limit (default 5 s). */
  webhookTimeoutMs?: number;
  /** Checkpoints waiting for the webhook at most (default 1000); beyond it the oldest is dropped (each commits to all before it). */
  maxQueued?: number;
}

export interface AuditCheckpointExporter {
  /** Queues a checkpoint for the file and the webhook; returns at once (called by the kernel after the commit). */
  push(checkpoint: AuditCheckpoint): void;
  /** Writes what is queued to the file, gives the webhook one last try per queued checkpoint, then closes. */
  close(): Promise<void>;
  readonly stats: { written: number; delivered: number; failed: number; dropped: number };
}

/**
 * Opens the export: the file is opened (created) here, so that a path that cannot be written stops
 * the start instead of losing checkpoints later. Failures after that are logged (`audit checkpoint
 * export failed`) and counted, never thrown into the kernel: a checkpoint is in the store before it
 * is exported, and each one commits to every record before it, so a later one makes up for a lost one.
 */
export async function openAuditCheckpointExport(
  { file, webhookUrl, webhookAttempts = 5, retryDelayMs = 1000, webhookTimeoutMs = 5000, maxQueued = 1000 }: AuditCheckpointExportOptions,
  logger: Logger | false,
): Promise<AuditCheckpointExporter> {
  if (webhookUrl !== undefined) assertHttpUrl(webhookUrl, 'audit checkpoint webhook', 'audit-checkpoint-webhook');
  let handle: FileHandle | undefined;
  if (file !== undefined) {
    try {
      handle = await open(file, 'a', 0o600);
    } catch (error) {
      throw new CustosError('invalid_input', `audit checkpoint file: cannot open ${JSON.stringify(file)} for appending`, {
        cause: error,
        details: { field: 'audit-checkpoint-file' },
      });
    }
  }
  const stats = { written: 0, delivered: 0, failed: 0, dropped: 0 };
  const warn = (what: string, error: unknown, seq: number) => {
    if (logger !== false) logger.error({ err: error, seq }, `audit checkpoint export failed: ${what}`);
  };

  // The file: one append + fsync at a time, in order.
  let fileQueue: Promise<void> = Promise.resolve();
  const writeFile = (checkpoint: AuditCheckpoint) => {
    const h = handle;
    if (h === undefined) return;
    fileQueue = fileQueue.then(async () => {
      try {
        await h.appendFile(`${JSON.stringify(checkpoint)}\n`);
        await h.sync();
        stats.written += 1;
      } catch (error) {
        stats.failed += 1;
        warn('file', error, checkpoint.seq);
      }
    });
  };

  // The webhook: one POST at a time, in order, retried with a doubling delay.
  const queued: AuditCheckpoint[] = [];
  let sending: Promise<void> | undefined;
  let closing = false;
  const { pause, wake } = wakeableSleep();
  const post = async (checkpoint: AuditCheckpoint): Promise<boolean> => {
    try {
      const response = await fetch(webhookUrl as string, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(checkpoint),
        signal: AbortSignal.timeout(webhookTimeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return true;
      warn(`webhook answered ${response.status}`, undefined, checkpoint.seq);
    } catch (error) {
      warn('webhook', error, checkpoint.seq);
    }
    return false;
  };
  const drain = async () => {
    for (let checkpoint = queued.shift(); checkpoint !== undefined; checkpoint = queued.shift()) {
      let delivered = false;
      for (let attempt = 1; !delivered; attempt += 1) {
        delivered = await post(checkpoint);
        if (delivered || closing || attempt >= webhookAttempts) break;
        await pause(retryDelayMs * 2 ** (attempt - 1));
      }
      if (delivered) stats.delivered += 1;
      else stats.failed += 1;
    }
    sending = undefined;
  };
  const sendWebhook = (checkpoint: AuditCheckpoint) => {
    if (webhookUrl === undefined) return;
    queued.push(checkpoint);
    if (queued.length > maxQueued) {
      queued.shift();
      stats.dropped += 1;
    }
    sending ??= drain();
  };

  return {
    push(checkpoint) {
      writeFile(checkpoint);
      sendWebhook(checkpoint);
    },
    async close() {
      closing = true;
      wake();
      await fileQueue;
      await sending;
      await handle?.close().catch(() => undefined);
      handle = undefined;
    },
    stats,
  };
}

import { CustosError, Kernel, type KernelOptions, type UnsealCredential } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './buildApp.js';
import { type AuditCheckpointExportOptions, openAuditCheckpointExport } from './exportAuditCheckpoints.js';
import { openStore, type StoreLocation } from './openStore.js';

export interface StartServerOptions {
  store: StoreLocation;
  host?: string;
  port?: number;
  /** When given, the kernel unseals at start; otherwise it starts sealed. */
  passphrase?: Uint8Array;
  /** Any unsealer's credential (Shamir: all M shares) for an unattended start; instead of passphrase. */
  credential?: UnsealCredential;
  logger: Logger | false;
  /** The PKCS#11 library a PKCS#11 signer is unsealed through (at start with a pkcs11 credential, or by `{"pin"}`). */
  pkcs11ModulePath?: string;
  kernelOptions?: Omit<KernelOptions, 'store'>;
  /**
   * Signed audit checkpoints: every `every` records (default 1000), every `intervalSeconds`
   * (default 60) when the log grew, at shutdown and at a seal; exported to a file and/or a webhook.
   */
  auditCheckpoints?: AuditCheckpointExportOptions & { every?: number; intervalSeconds?: number };
}

export interface RunningServer {
  app: FastifyInstance;
  kernel: Kernel;
  url: string;
  close(): Promise<void>;
}

/** Opens the store, the kernel (unsealing it if a passphrase is given) and listens. */
export async function startServer({
  store: location,
  host = '127.0.0.1',
  port = 8420,
  passphrase,
  credential,
  logger,
  pkcs11ModulePath,
  kernelOptions = {},
  auditCheckpoints = {},
}: StartServerOptions): Promise<RunningServer> {
  const { every, intervalSeconds = 60, ...exportOptions } = auditCheckpoints;
  if (!(Number.isFinite(intervalSeconds) && intervalSeconds > 0))
    throw new CustosError('invalid_input', 'audit checkpoint interval: expected a number of seconds > 0', { details: { field: 'audit-checkpoint-interval' } });
  const exporter = await openAuditCheckpointExport(exportOptions, logger);
  const store = await openStore(location).catch(async (error: unknown) => {
    await exporter.close();
    throw error;
  });
  let kernel: Kernel | undefined;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  let address: string;
  const onError = (error: unknown) => {
    if (logger !== false) logger.error({ err: error }, 'audit checkpoint failed: the records after the last checkpoint stay unprotected');
  };
  try {
    kernel = await Kernel.open({
      ...kernelOptions,
      store,
      auditCheckpoints: { ...(every === undefined ? {} : { every }), onCheckpoint: (c) => exporter.push(c), onError },
    });
    if (passphrase !== undefined) await kernel.unseal(passphrase);
    else if (credential !== undefined) await kernel.unsealWith(credential);
    app = await buildApp({ kernel, logger, ...(pkcs11ModulePath === undefined ? {} : { pkcs11ModulePath }) });
    address = await app.listen({ host, port });
  } catch (error) {
    // A start that fails (wrong passphrase, port in use) releases everything and exits promptly.
    await app?.close().catch(() => undefined);
    kernel?.seal();
    await store.close().catch(() => undefined);
    await exporter.close();
    throw error;
  }
  const url = address.replace('[::1]', 'localhost');
  const running = kernel;
  // The shell owns the timer; the kernel signs only when the log grew since the last checkpoint.
  const timer = setInterval(() => {
    if (!running.sealed) running.checkpoint().catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return {
    app,
    kernel,
    url,
    async close() {
      clearInterval(timer);
      await app.close();
      // The last checkpoint is signed before the key is wiped: nothing this process wrote is left unprotected.
      if (!kernel.sealed) await kernel.checkpoint().catch(onError);
      kernel.seal();
      await store.close();
      await exporter.close();
    },
  };
}

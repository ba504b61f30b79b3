import { isIP } from 'node:net';
import { CustosError, Kernel, type KernelOptions, type UnsealCredential } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type AdminSocket, listenAdminSocket } from './adminSocket.js';
import { buildApp } from './buildApp.js';
import type { PageOptions } from './pages/pageRoutes.js';
import { type AuditCheckpointExportOptions, openAuditCheckpointExport } from './exportAuditCheckpoints.js';
import { createListener, type Listener, type ListenerTimeouts, type TlsFiles } from './createListener.js';
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
  /** Serve HTTPS with this certificate and key (PEM files, re-read by `reloadTls`). */
  tls?: TlsFiles;
  /** Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy); refused otherwise. */
  insecureHttp?: boolean;
  /** Connection timeouts (ms); see DEFAULT_TIMEOUTS. */
  timeouts?: Partial<ListenerTimeouts>;
  /** The URL operators' browsers and tools reach the signer by (its host and origin are accepted on /v1/sys/…). */
  publicUrl?: string;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Requests served at once (default 1024). */
  maxInFlight?: number;
  /** Requests one client may have in flight (default half of maxInFlight); see BuildAppOptions. */
  maxInFlightPerClient?: number;
  /** Long polls for approval decisions at once (default 1000), apart from maxInFlight; see BuildAppOptions. */
  maxWaiting?: number;
  /** The kernel's pages: brand, language, token list (see BuildAppOptions). */
  pages?: PageOptions;
  /** A Unix socket to serve the app on as well, for operators (custos serve --admin-socket): see listenAdminSocket. */
  adminSocketPath?: string;
  /** Reverse proxies whose X-Forwarded-For is believed (custos serve --trust-proxy); see BuildAppOptions. */
  trustProxy?: readonly string[];
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
  /** Re-reads the TLS certificate and key: new connections get them (throws, keeping the old ones, if unusable). */
  reloadTls(): void;
  /** The admin socket's path, when one is served. */
  adminSocketPath?: string;
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
  tls,
  insecureHttp = false,
  timeouts,
  publicUrl,
  metricsToken,
  maxInFlight,
  maxInFlightPerClient,
  maxWaiting,
  pages,
  adminSocketPath,
  trustProxy = [],
  auditCheckpoints = {},
}: StartServerOptions): Promise<RunningServer> {
  assertPlainHttpAllowed({ host, tls, insecureHttp });
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
  let listener: Listener | undefined;
  let adminSocket: AdminSocket | undefined;
  const onError = (error: unknown) => {
    if (logger === false) return;
    if ((error as { code?: unknown }).code === 'record_unreadable')
      logger.error({ err: error }, 'audit checkpoint table tampered with: a stored checkpoint this signer did not make (the real head is signed anyway)');
    else logger.error({ err: error }, 'audit checkpoint failed: the records after the last checkpoint stay unprotected');
  };
  try {
    kernel = await Kernel.open({
      ...kernelOptions,
      store,
      auditCheckpoints: { ...(every === undefined ? {} : { every }), onCheckpoint: (c) => exporter.push(c), onError },
    });
    if (passphrase !== undefined) await kernel.unseal(passphrase);
    else if (credential !== undefined) await kernel.unsealWith(credential);
    app = await buildApp({
      kernel,
      logger,
      trustProxy,
      ...(pkcs11ModulePath === undefined ? {} : { pkcs11ModulePath }),
      ...(publicUrl === undefined ? {} : { publicUrl }),
      ...(metricsToken === undefined ? {} : { metricsToken }),
      ...(maxInFlight === undefined ? {} : { maxInFlight }),
      ...(maxInFlightPerClient === undefined ? {} : { maxInFlightPerClient }),
      ...(maxWaiting === undefined ? {} : { maxWaiting }),
      ...(pages === undefined ? {} : { pages }),
    });
    // The admin socket first: a refused socket path stops the start before the port is opened.
    if (adminSocketPath !== undefined) adminSocket = await listenAdminSocket(app, adminSocketPath);
    listener = await createListener(app, { host, port, ...(tls === undefined ? {} : { tls }), ...(timeouts === undefined ? {} : { timeouts }) });
  } catch (error) {
    // A start that fails (wrong passphrase, port in use) releases everything and exits promptly.
    await adminSocket?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    kernel?.seal();
    await store.close().catch(() => undefined);
    await exporter.close();
    throw error;
  }
  const { url } = listener;
  if (logger !== false) logger.info({ url }, 'listening');
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
    reloadTls: () => listener.reloadTls(),
    ...(adminSocket === undefined ? {} : { adminSocketPath: adminSocket.path }),
    async close() {
      clearInterval(timer);
      await Promise.all([listener.close(), adminSocket?.close(), app.close()]);
      // The last checkpoint is signed before the key is wiped: nothing this process wrote is left unprotected.
      if (!kernel.sealed) await kernel.checkpoint().catch(onError);
      kernel.seal();
      await store.close();
      await exporter.close();
    },
  };
}

/**
 * API keys and unseal credentials do not cross a network in clear text unless the operator says so:
 * plain HTTP on an address other than loopback needs `insecureHttp` (`--insecure-http`).
 */
export function assertPlainHttpAllowed({ host, tls, insecureHttp }: { host: string; tls: TlsFiles | undefined; insecureHttp: boolean }): void {
  if (tls !== undefined || insecureHttp || isLoopback(host)) return;
  throw new CustosError(
    'invalid_input',
    `--host ${host}: plain HTTP on a non-loopback address; serve HTTPS (--tls-cert F --tls-key F) or, behind a TLS-terminating proxy, pass --insecure-http`,
    { details: { field: 'insecure-http' } },
  );
}

/** A name or address that stays on this machine. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1' || /^::ffff:127\./.test(bare);
}

import { Kernel, type KernelOptions, type UnsealCredential } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type AdminSocket, listenAdminSocket } from './adminSocket.js';
import { buildApp } from './buildApp.js';
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
  /** A Unix socket to serve the app on as well, for operators (custos serve --admin-socket): see listenAdminSocket. */
  adminSocketPath?: string;
  /** Reverse proxies whose X-Forwarded-For is believed (custos serve --trust-proxy); see BuildAppOptions. */
  trustProxy?: readonly string[];
}

export interface RunningServer {
  app: FastifyInstance;
  kernel: Kernel;
  url: string;
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
  adminSocketPath,
  trustProxy = [],
}: StartServerOptions): Promise<RunningServer> {
  const store = await openStore(location);
  let kernel: Kernel | undefined;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  let address: string;
  let adminSocket: AdminSocket | undefined;
  try {
    kernel = await Kernel.open({ ...kernelOptions, store });
    if (passphrase !== undefined) await kernel.unseal(passphrase);
    else if (credential !== undefined) await kernel.unsealWith(credential);
    app = await buildApp({ kernel, logger, trustProxy, ...(pkcs11ModulePath === undefined ? {} : { pkcs11ModulePath }) });
    // The admin socket first: a refused socket path stops the start before the port is opened.
    if (adminSocketPath !== undefined) adminSocket = await listenAdminSocket(app, adminSocketPath);
    address = await app.listen({ host, port });
  } catch (error) {
    // A start that fails (wrong passphrase, port in use) releases everything and exits promptly.
    await adminSocket?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    kernel?.seal();
    await store.close().catch(() => undefined);
    throw error;
  }
  const url = address.replace('[::1]', 'localhost');
  return {
    app,
    kernel,
    url,
    ...(adminSocket === undefined ? {} : { adminSocketPath: adminSocket.path }),
    async close() {
      await adminSocket?.close();
      await app.close();
      kernel.seal();
      await store.close();
    },
  };
}

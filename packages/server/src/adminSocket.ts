import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { CustosError } from '@custos/kernel';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Connections accepted on an admin socket: a request over one of them comes from an operator. */
const adminConnections = new WeakSet<Socket>();

/** Whether the request came over the admin socket (its file permissions are the operator's credential). */
export function isAdminSocketRequest(request: FastifyRequest): boolean {
  return adminConnections.has(request.raw.socket);
}

export interface AdminSocket {
  path: string;
  close(): Promise<void>;
}

const adminSocketError = (message: string, cause?: unknown): CustosError =>
  new CustosError('invalid_input', `--admin-socket: ${message}`, { details: { field: 'admin-socket' }, ...(cause === undefined ? {} : { cause }) });

/**
 * Serves the app on a Unix socket as well (`custos serve --admin-socket PATH`): the operator's
 * channel. The socket file is created with mode 0600 (only the server's user can connect: the
 * permissions are the credential, as with Vault's and Docker's control sockets); a stale socket
 * file left by a server that died is replaced, but a socket something still answers on, or a file
 * that is not a socket, is refused rather than removed. The file is removed at close.
 */
export async function listenAdminSocket(app: FastifyInstance, path: string): Promise<AdminSocket> {
  await removeStaleSocket(path);
  const server: Server = createServer((req, res) => app.routing(req, res));
  server.on('connection', (socket: Socket) => adminConnections.add(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(adminSocketError(`cannot listen on ${path} (${(error as NodeJS.ErrnoException).code ?? error.message})`, error)));
    // The socket is bound synchronously within listen(): under this umask it is created 0600, so
    // that there is no moment at which another user could connect.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
  const { ino } = lstatSync(path);
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // Node removes the file when the listener closes; remove it here if not, unless it was replaced.
      try {
        const stat = lstatSync(path);
        if (stat.isSocket() && stat.ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}

/** Removes a socket file nothing answers on; refuses a live socket and anything that is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw adminSocketError(`cannot inspect ${path}`, error);
  }
  if (!stat.isSocket()) throw adminSocketError(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    // a listener that does not even refuse within 2 s is treated as alive (never removed)
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(true);
    }, 2_000);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (live) throw adminSocketError(`another server is listening on ${path}`);
  unlinkSync(path);
}

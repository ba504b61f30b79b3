import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { CustosError } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { earlyRefusalOf } from './earlyRefusal.js';

/**
 * How long a connection may take over each part of an exchange (ms). A client that stalls is cut
 * off (Node answers 408 where it still can) and the request's in-flight slot is released.
 */
export interface ListenerTimeouts {
  /** Receiving the request line and headers. */
  headersMs: number;
  /** Receiving the whole request, headers and body. */
  requestMs: number;
  /** A connection with no traffic in either direction while a request is open. */
  idleMs: number;
  /** An idle keep-alive connection between requests (above common load balancers' 60 s). */
  keepAliveMs: number;
}

export const DEFAULT_TIMEOUTS: ListenerTimeouts = { headersMs: 10_000, requestMs: 30_000, idleMs: 60_000, keepAliveMs: 72_000 };

/** The PEM files of the HTTPS certificate (chain) and its private key, read at start and at every reload. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /**
   * Mutual TLS (custos serve --tls-client-ca): PEM certificates of the CAs whose client certificates
   * are accepted. A client without a certificate signed by one of them is refused in the TLS
   * handshake (nothing reaches the app). Re-read with the certificate and key by reloadTls.
   */
  clientCaFile?: string;
}

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: TlsFiles;
  timeouts?: Partial<ListenerTimeouts>;
}

export interface Listener {
  server: http.Server;
  /** `http(s)://host:port` as bound (`[::1]` shown as localhost). */
  url: string;
  /** The port as bound (the one chosen, for port 0). */
  port: number;
  /** Re-reads the TLS files; new connections get the new certificate (throws and keeps the old one if they are unusable). */
  reloadTls(): void;
  /** Stops accepting, lets open requests finish (at most graceMs), then cuts what is left. */
  close(graceMs?: number): Promise<void>;
}

/** The accept queue asked of the OS (see createListener). */
const LISTEN_BACKLOG = 4096;

/**
 * One listening socket that hands every request to the app (its router, hooks and handlers), with
 * the timeouts set and, given TLS files, HTTPS whose certificate can be reloaded without a restart.
 * The app must be ready (buildApp awaits it). A server may have several listeners on one app.
 */
export async function createListener(app: FastifyInstance, { host, port, tls, timeouts = {} }: ListenerOptions): Promise<Listener> {
  const t = { ...DEFAULT_TIMEOUTS, ...timeouts };
  for (const [name, value] of Object.entries(t))
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`timeouts.${name}: expected a positive integer (ms), got ${value}`);
  const serverOptions: http.ServerOptions = {
    headersTimeout: Math.min(t.headersMs, t.requestMs),
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    // how often Node looks for connections past headersTimeout / requestTimeout (its default is 30 s)
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(t.headersMs / 2))),
  };
  // with a client CA: every client must present a certificate it signed (refused in the handshake otherwise)
  const clientAuth = tls?.clientCaFile === undefined ? {} : { requestCert: true, rejectUnauthorized: true };
  // Under overload the app may refuse a request before its router sees it (earlyRefusal.ts).
  const refusal = earlyRefusalOf(app);
  const handler: http.RequestListener =
    refusal === undefined
      ? app.routing
      : (req, res) => {
          if (!refusal(req, res)) app.routing(req, res);
        };
  const server: http.Server =
    tls === undefined ? http.createServer(serverOptions, handler) : https.createServer({ ...serverOptions, ...clientAuth, ...readTls(tls) }, handler);
  // `Expect: 100-continue`: refused before the client is told to send its body (Node's own
  // handling, which this replaces, says 100 Continue first)
  if (refusal !== undefined)
    server.on('checkContinue', (req, res) => {
      if (refusal(req, res)) return;
      res.writeContinue();
      app.routing(req, res);
    });
  server.setTimeout(t.idleMs);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue (Linux caps it at net.core.somaxconn): with Node's 511, a burst of new
    // connections while the loop is busy overflowed it, and each connection dropped waited for its
    // client's SYN retries (1 s, 3 s, 7 s…) — client timeouts no admission rule could prevent (issue 14 point 5).
    server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? (address.address === '::1' ? 'localhost' : `[${address.address}]`) : address.address;
  return {
    server,
    url: `${tls === undefined ? 'http' : 'https'}://${shownHost}:${address.port}`,
    port: address.port,
    reloadTls() {
      if (tls === undefined)
        throw new CustosError('invalid_input', 'this listener serves plain HTTP: there is no certificate to reload', { details: { field: 'tls-cert' } });
      (server as https.Server).setSecureContext(readTls(tls));
    },
    close(graceMs = 10_000) {
      return new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        cut.unref();
        // A keep-alive connection whose last request ends during the grace period (a long poll
        // answered at shutdown) is idle from then on: closed then, not at the end of the grace.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        sweep.unref();
        server.close(() => {
          clearTimeout(cut);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** Reads and checks the PEM pair (a certificate and the key that matches it) and the client CA if any; names the file at fault, never its content. */
function readTls({ certFile, keyFile, clientCaFile }: TlsFiles): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const read = (file: string, field: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new CustosError('invalid_input', `--${field}: cannot read ${file}`, { details: { field }, cause: error });
    }
  };
  const cert = read(certFile, 'tls-cert');
  const key = read(keyFile, 'tls-key');
  try {
    createSecureContext({ cert, key });
  } catch {
    key.fill(0);
    throw new CustosError('invalid_input', '--tls-cert, --tls-key: not a PEM certificate and the private key that matches it', {
      details: { field: 'tls-key' },
    });
  }
  if (clientCaFile === undefined) return { cert, key };
  const ca = read(clientCaFile, 'tls-client-ca');
  // a file with no certificate in it would accept no client: refused, as an unusable pair is
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    key.fill(0);
    throw new CustosError('invalid_input', '--tls-client-ca: not a PEM CA certificate', { details: { field: 'tls-client-ca' } });
  }
  try {
    createSecureContext({ cert, key, ca });
  } catch {
    key.fill(0);
    throw new CustosError('invalid_input', '--tls-client-ca: not a PEM CA certificate', { details: { field: 'tls-client-ca' } });
  }
  return { cert, key, ca };
}

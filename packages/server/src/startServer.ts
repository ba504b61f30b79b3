import { BlockList, isIP } from 'node:net';
import { CustosError, Kernel, type KernelOptions, type PasskeySettings, quorumConfigured, quorumRequired, type UnsealCredential } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type AdminSocket, listenAdminSocket } from './adminSocket.js';
import { buildApp, overloadGuardOf } from './buildApp.js';
import { buildOpsApp } from './buildOpsApp.js';
import { buildPagesApp } from './buildPagesApp.js';
import { parsePublicUrl } from './checkHostAndOrigin.js';
import { decidePasskeys } from './decidePasskeys.js';
import { createMetrics } from './metrics.js';
import { createLogger } from './createLogger.js';
import { createEmailChannel } from './delivery/emailChannel.js';
import { untoldAdminsWarning } from './warnUntoldAdmins.js';
import { type DeliveryChannels, startDeliveryLoop } from './delivery/startDeliveryLoop.js';
import { createWebhookChannel } from './delivery/webhookChannel.js';
import type { PageOptions } from './pages/pageRoutes.js';
import { type AuditCheckpointExportOptions, openAuditCheckpointExport } from './exportAuditCheckpoints.js';
import { type AuditStream, type AuditStreamOptions, startAuditStream } from './streamAuditLog.js';
import { createListener, type Listener, type ListenerTimeouts, type TlsFiles } from './createListener.js';
import { openStore, type StoreLocation } from './openStore.js';
import { DEFAULT_HOUSEKEEPING_INTERVAL_SECONDS, startHousekeeping } from './startHousekeeping.js';
import { assertHttpUrl } from './assertHttpUrl.js';

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
  /** The kernel's options; its passkey settings are decided here, from the public URL (see decidePasskeys). */
  kernelOptions?: Omit<KernelOptions, 'store' | 'passkeys'>;
  /** Serve HTTPS with this certificate and key (PEM files, re-read by `reloadTls`). */
  tls?: TlsFiles;
  /** Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy); refused otherwise. */
  insecureHttp?: boolean;
  /** Connection timeouts (ms); see DEFAULT_TIMEOUTS. */
  timeouts?: Partial<ListenerTimeouts>;
  /**
   * The URL operators' and wallet owners' browsers reach the signer by (its host and origin are
   * accepted on /v1/sys/…; the pages' links start with it; its host is the passkeys' rpID). Default
   * `http://localhost:<the pages' port>` for the links and passkeys only.
   */
  publicUrl?: string;
  /**
   * A listener of their own for the kernel's pages (`custos serve --public-listen HOST:PORT`): it
   * serves the pages and nothing else, and the API listener no longer serves them (buildPagesApp).
   * It uses `tls` too, when given.
   */
  publicListen?: { host: string; port: number };
  /**
   * A listener of its own for the probes and metrics (`custos serve --ops-listen HOST:PORT`): it serves
   * /healthz, /readyz and /metrics and nothing else, always plain HTTP, on a loopback or private
   * address (a wildcard or public one needs insecureHttp); the API listener then serves no /metrics
   * (its /healthz and /readyz stay, for load balancers). See buildOpsApp.
   */
  opsListen?: { host: string; port: number };
  /** The API listener answers only these addresses and CIDR ranges (custos serve --allow-from; buildApp allowFrom). */
  allowFrom?: readonly string[];
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Requests served at once (default 1024). */
  maxInFlight?: number;
  /** Requests one client may have in flight (default half of maxInFlight); see BuildAppOptions. */
  maxInFlightPerClient?: number;
  /** The wait a request may expect, which bounds admission (default 1,000 ms); see BuildAppOptions. */
  targetLatencyMs?: number;
  /** Long polls for approval decisions at once (default 1000), apart from maxInFlight; see BuildAppOptions. */
  maxWaiting?: number;
  /**
   * Codes the kernel delivers itself (docs/delivery.md): with an SMTP URL or a webhook URL, the `oob`
   * factor is registered and the outbox sender runs beside the listener.
   */
  delivery?: DeliveryOptions;
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
  /** The audit log streamed to a SIEM webhook as it is written, at-least-once from a durable cursor (streamAuditLog.ts). */
  auditStream?: AuditStreamOptions;
  /** The JSON-RPC signer's upstream node, wait and key-in-URL rule (custos serve --upstream-rpc, --rpc-wait, --rpc-key-in-url); see BuildAppOptions. */
  upstreamRpc?: string;
  rpcWaitSeconds?: number;
  rpcKeyInUrl?: boolean;
  /**
   * How often the housekeeping runs (seconds, default 3600; custos serve --housekeeping-interval): finished
   * approvals, enrolment links and outbox rows past the retention (kernelOptions.housekeeping) are deleted.
   */
  housekeepingIntervalSeconds?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  kernel: Kernel;
  url: string;
  /** The public listener's app and URL as bound, with --public-listen. */
  pagesApp?: FastifyInstance;
  pagesUrl?: string;
  /** The operations listener's app and URL as bound, with --ops-listen. */
  opsApp?: FastifyInstance;
  opsUrl?: string;
  /** The passkey settings the kernel runs with; undefined when passkeys are off. */
  passkeys?: PasskeySettings;
  /** Start-up lines for the operator: why passkeys are off, or a warning about them (also logged). */
  notices: string[];
  /** Re-reads the TLS certificate and key: new connections get them (throws, keeping the old ones, if unusable). */
  reloadTls(): void;
  /** The admin socket's path, when one is served. */
  adminSocketPath?: string;
  close(): Promise<void>;
}

export interface DeliveryOptions {
  /** `--smtp-url`: smtp://[user:pass@]host[:port] or smtps://… */
  smtpUrl?: string;
  /** `--mail-from`: the From of the messages. */
  mailFrom?: string;
  /** `--webhook-url`: the deployment's signed webhook (set by the operator, never per wallet). */
  webhookUrl?: string;
  /** The webhook's HMAC secret (from a file or the environment, never argv). */
  webhookSecret?: Uint8Array;
  /** `--webhook-trusted false`: the webhook's receiver may be within the backend's reach, so a webhook wallet's code counts `present`. */
  webhookTrusted?: boolean;
  /** `--oob-code-ttl` seconds (default 300, at most 600). */
  codeTtlSeconds?: number;
  /** How often the sender looks for due messages (ms, default 1000; it also wakes when one is queued). */
  intervalMs?: number;
}

/**
 * The channels of the delivery options; throws invalid_input naming the option. The webhook's URL is
 * looked up at each send (`urlInForce`: the deployment settings' URL takes precedence over the flag).
 */
function openChannels(
  delivery: DeliveryOptions | undefined,
  urlInForce: (flagUrl: string | undefined) => () => Promise<string | null>,
): DeliveryChannels | undefined {
  if (delivery === undefined || (delivery.smtpUrl === undefined && delivery.webhookUrl === undefined && delivery.webhookSecret === undefined)) return undefined;
  const channels: DeliveryChannels = {};
  if (delivery.smtpUrl !== undefined) {
    if (delivery.mailFrom === undefined) throw new CustosError('invalid_input', '--mail-from: needed with --smtp-url', { details: { field: 'mail-from' } });
    try {
      channels.email = createEmailChannel({ smtpUrl: delivery.smtpUrl, from: delivery.mailFrom });
    } catch {
      throw new CustosError('invalid_input', '--smtp-url: expected smtp://host[:port] or smtps://host[:port]', { details: { field: 'smtp-url' } });
    }
  }
  if (delivery.webhookUrl === undefined && delivery.webhookSecret !== undefined) {
    if (delivery.webhookSecret.length < 16)
      throw new CustosError('invalid_input', '--webhook-secret-file: a secret of at least 16 bytes is needed', { details: { field: 'webhook-secret-file' } });
    channels.webhook = createWebhookChannel({ url: urlInForce(undefined), secret: delivery.webhookSecret });
  }
  if (delivery.webhookUrl !== undefined) {
    const url = assertHttpUrl(delivery.webhookUrl, '--webhook-url', 'webhook-url');
    if (delivery.webhookSecret === undefined || delivery.webhookSecret.length < 16)
      throw new CustosError('invalid_input', '--webhook-secret-file: a secret of at least 16 bytes is needed with --webhook-url', {
        details: { field: 'webhook-secret-file' },
      });
    channels.webhook = createWebhookChannel({ url: urlInForce(url.href), secret: delivery.webhookSecret });
  }
  return channels;
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
  targetLatencyMs,
  maxWaiting,
  pages,
  adminSocketPath,
  trustProxy = [],
  auditCheckpoints = {},
  auditStream: auditStreamOptions,
  publicListen,
  upstreamRpc,
  rpcWaitSeconds,
  rpcKeyInUrl,
  delivery,
  housekeepingIntervalSeconds = DEFAULT_HOUSEKEEPING_INTERVAL_SECONDS,
  opsListen,
  allowFrom,
}: StartServerOptions): Promise<RunningServer> {
  // The webhook's URL in force at each send: the deployment settings' before the flag (kernel set below).
  const channels = openChannels(delivery, (flagUrl) => async () => (kernel === undefined ? (flagUrl ?? null) : kernel.webhookUrlInForce(flagUrl)));
  assertPlainHttpAllowed({ host, tls, insecureHttp });
  if (publicListen !== undefined) assertPlainHttpAllowed({ host: publicListen.host, tls, insecureHttp, option: 'public-listen' });
  if (opsListen !== undefined) assertOpsAddressAllowed(opsListen.host, insecureHttp);
  // the owners' browsers present no client certificate: mutual TLS is the API listener's only
  const pagesTls = tls === undefined ? undefined : { certFile: tls.certFile, keyFile: tls.keyFile };
  // The pages' public URL: as given, else http(s)://localhost:<the pages' port> (unknown before binding port 0).
  const pagesPort = publicListen?.port ?? port;
  const pagesUrl =
    publicUrl !== undefined
      ? parsePublicUrl(publicUrl)
      : pagesPort === 0
        ? undefined
        : new URL(`${tls === undefined ? 'http' : 'https'}://localhost:${pagesPort}`);
  if (!(Number.isSafeInteger(housekeepingIntervalSeconds) && housekeepingIntervalSeconds >= 1 && housekeepingIntervalSeconds <= 86_400))
    throw new CustosError('invalid_input', 'housekeeping interval: expected whole seconds 1..86400', { details: { field: 'housekeeping-interval' } });
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
  let pagesApp: FastifyInstance | undefined;
  let pagesListener: Listener | undefined;
  let opsApp: FastifyInstance | undefined;
  let opsListener: Listener | undefined;
  let adminSocket: AdminSocket | undefined;
  let auditStream: AuditStream | undefined;
  const notices: string[] = [];
  let passkeys: PasskeySettings | undefined;
  const onError = (error: unknown) => {
    if (logger === false) return;
    if ((error as { code?: unknown }).code === 'record_unreadable')
      logger.error({ err: error }, 'audit checkpoint table tampered with: a stored checkpoint this signer did not make (the real head is signed anyway)');
    else logger.error({ err: error }, 'audit checkpoint failed: the records after the last checkpoint stay unprotected');
  };
  try {
    // Under an admin quorum the timelock's delay and the webhook URL are quorum-protected settings:
    // a flag that would set them directly is refused (use a deployment.settings proposal).
    // So are the policy defaults (--policy-file: refused, they are the settings' policyDefaults) and the
    // compatibility API's raw hashes (--compat-raw-hash allow: refused, the settings' compatRawHash
    // decides; `policy`, stricter, is accepted).
    const quorumFlag =
      kernelOptions.timelock?.delayMs !== undefined
        ? 'the timelock delay (--timelock-delay)'
        : delivery?.webhookUrl !== undefined
          ? 'the webhook URL (--webhook-url)'
          : kernelOptions.policyDefaults !== undefined
            ? "the policy defaults (--policy-file: the deployment settings' policyDefaults)"
            : kernelOptions.compatRawHash === 'allow'
              ? "raw hashes on the compatibility API (--compat-raw-hash allow: the deployment settings' compatRawHash)"
              : undefined;
    const underQuorum = await quorumConfigured(store);
    if (quorumFlag !== undefined && underQuorum) throw quorumRequired(quorumFlag);
    // The looser modes one operator could switch on are refused under a quorum, and their stricter
    // values are the defaults there: a wallet with no factor never signs without a code
    // (--unknown-wallets deny) and the backend never enrols TOTP, seeing its secret (--backend-enrollment off).
    if (underQuorum) {
      const looser =
        kernelOptions.unknownWallets === 'allow'
          ? '--unknown-wallets allow (a wallet with no factor signs without a code)'
          : kernelOptions.backendEnrollment === 'on'
            ? '--backend-enrollment on (the backend enrols TOTP and sees its secret)'
            : undefined;
      if (looser !== undefined)
        throw new CustosError('quorum_required', `an admin quorum is configured: ${looser} is refused; under a quorum deny / off are in force`, {
          details: { field: looser.split(' ')[0]?.slice(2) },
        });
      kernelOptions = { ...kernelOptions, unknownWallets: 'deny', backendEnrollment: 'off' };
    }
    // "Every admin is told" (docs/quorum.md): under a quorum the admins are told of each freeze and
    // proposal by e-mail, so a start without a mail transport is refused (seen before the unseal:
    // quorumConfigured reads the sealed root's mark).
    if (underQuorum && channels?.email === undefined)
      throw new CustosError(
        'invalid_input',
        '--smtp-url and --mail-from are required: an admin quorum is configured, and its admins are told of each freeze and proposal by e-mail (docs/quorum.md)',
        { details: { field: 'smtp-url' } },
      );
    // Passkeys are bound to the public URL's host: a start under another host than the stored
    // passkeys' is refused before anything else happens (decidePasskeys).
    const decision = decidePasskeys(pagesUrl, await store.listPasskeyRpIds(), pages?.brandName ?? 'Custos');
    if (decision.kind === 'refused') throw decision.error;
    if (decision.kind === 'off') notices.push(decision.message);
    else {
      passkeys = decision.settings;
      if (decision.warning !== undefined) notices.push(decision.warning);
    }
    kernel = await Kernel.open({
      ...kernelOptions,
      ...(passkeys === undefined ? {} : { passkeys }),
      ...(channels === undefined
        ? {}
        : {
            oob: {
              channels: (['email', 'webhook'] as const).filter((c) => channels[c] !== undefined),
              ...(delivery?.codeTtlSeconds === undefined ? {} : { codeTtlSeconds: delivery.codeTtlSeconds }),
              ...(delivery?.webhookTrusted === undefined ? {} : { webhookTrusted: delivery.webhookTrusted }),
            },
          }),
      store,
      auditCheckpoints: { ...(every === undefined ? {} : { every }), onCheckpoint: (c) => exporter.push(c), onError },
    });
    // The SIEM stream reads committed records only: it never holds up or fails a decision.
    if (auditStreamOptions !== undefined) auditStream = await startAuditStream(store, auditStreamOptions, logger);
    if (passphrase !== undefined) await kernel.unseal(passphrase);
    else if (credential !== undefined) await kernel.unsealWith(credential);
    if (!kernel.sealed) {
      const warning = await untoldAdminsWarning(kernel);
      if (warning !== undefined) notices.push(warning);
    }
    const metrics = createMetrics();
    app = await buildApp({
      kernel,
      logger,
      trustProxy,
      metrics,
      // with a public listener, the pages are served there only; the links name its port by default
      ...(publicListen === undefined ? {} : { servePages: { port: () => pagesListener?.port ?? publicListen.port } }),
      ...(pkcs11ModulePath === undefined ? {} : { pkcs11ModulePath }),
      ...(publicUrl === undefined ? {} : { publicUrl }),
      ...(metricsToken === undefined ? {} : { metricsToken }),
      ...(maxInFlight === undefined ? {} : { maxInFlight }),
      ...(maxInFlightPerClient === undefined ? {} : { maxInFlightPerClient }),
      ...(targetLatencyMs === undefined ? {} : { targetLatencyMs }),
      ...(maxWaiting === undefined ? {} : { maxWaiting }),
      ...(pages === undefined ? {} : { pages }),
      ...(upstreamRpc === undefined ? {} : { upstreamRpc }),
      ...(rpcWaitSeconds === undefined ? {} : { rpcWaitSeconds }),
      ...(rpcKeyInUrl === undefined ? {} : { rpcKeyInUrl }),
      ...(allowFrom === undefined ? {} : { allowFrom }),
      ...(opsListen === undefined ? {} : { serveMetrics: false }),
    });
    // The admin socket first: a refused socket path stops the start before the port is opened.
    if (adminSocketPath !== undefined) adminSocket = await listenAdminSocket(app, adminSocketPath);
    listener = await createListener(app, { host, port, ...(tls === undefined ? {} : { tls }), ...(timeouts === undefined ? {} : { timeouts }) });
    if (publicListen !== undefined) {
      pagesApp = await buildPagesApp({
        kernel,
        logger,
        trustProxy,
        metrics,
        ...(pages === undefined ? {} : { pages }),
        ...(publicUrl === undefined ? {} : { publicUrl }),
        ...(maxInFlight === undefined ? {} : { maxInFlight }),
        ...(maxInFlightPerClient === undefined ? {} : { maxInFlightPerClient }),
      });
      pagesListener = await createListener(pagesApp, {
        ...publicListen,
        ...(pagesTls === undefined ? {} : { tls: pagesTls }),
        ...(timeouts === undefined ? {} : { timeouts }),
      });
    }
    if (opsListen !== undefined) {
      opsApp = await buildOpsApp({ kernel, metrics, guard: overloadGuardOf(app), logger, ...(metricsToken === undefined ? {} : { metricsToken }) });
      opsListener = await createListener(opsApp, { ...opsListen, ...(timeouts === undefined ? {} : { timeouts }) });
    }
  } catch (error) {
    // A start that fails (wrong passphrase, port in use) releases everything and exits promptly.
    await listener?.close(0).catch(() => undefined);
    await pagesListener?.close(0).catch(() => undefined);
    await pagesApp?.close().catch(() => undefined);
    await opsApp?.close().catch(() => undefined);
    await adminSocket?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await auditStream?.close();
    kernel?.seal();
    await store.close().catch(() => undefined);
    await exporter.close();
    throw error;
  }
  const { url } = listener;
  if (logger !== false) logger.info({ url }, 'listening');
  const publicListener = pagesListener;
  if (logger !== false && publicListener !== undefined) logger.info({ url: publicListener.url }, 'listening (pages)');
  const operationsListener = opsListener;
  if (logger !== false && operationsListener !== undefined) logger.info({ url: operationsListener.url }, 'listening (operations)');
  // Logged once the start succeeded: a refused start says only why it was refused.
  if (logger !== false) for (const notice of notices) logger.warn(notice);
  const running = kernel;
  // The shell owns the timer; the kernel signs only when the log grew since the last checkpoint.
  const timer = setInterval(() => {
    if (!running.sealed) running.checkpoint().catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  const housekeeping = startHousekeeping({ kernel, intervalMs: housekeepingIntervalSeconds * 1000, logger });
  // The outbox sender: beside the request path, never in it (a dead mail server delays no signature).
  const sender =
    channels === undefined
      ? undefined
      : startDeliveryLoop({
          kernel,
          channels,
          publicUrl: () => (pagesUrl ?? new URL(`${tls === undefined ? 'http' : 'https'}://localhost:${publicListener?.port ?? listener.port}`)).origin,
          logger: logger === false ? createLogger({ level: 'silent' }) : logger,
          ...(delivery?.intervalMs === undefined ? {} : { intervalMs: delivery.intervalMs }),
        });
  return {
    app,
    kernel,
    url,
    ...(pagesApp === undefined || publicListener === undefined ? {} : { pagesApp, pagesUrl: publicListener.url }),
    ...(opsApp === undefined || operationsListener === undefined ? {} : { opsApp, opsUrl: operationsListener.url }),
    ...(passkeys === undefined ? {} : { passkeys }),
    notices,
    reloadTls: () => {
      listener.reloadTls();
      publicListener?.reloadTls();
    },
    ...(adminSocket === undefined ? {} : { adminSocketPath: adminSocket.path }),
    async close() {
      clearInterval(timer);
      await housekeeping.stop();
      await sender?.stop();
      channels?.email?.close();
      await Promise.all([
        listener.close(),
        publicListener?.close(),
        operationsListener?.close(),
        adminSocket?.close(),
        app.close(),
        pagesApp?.close(),
        opsApp?.close(),
      ]);
      // The last checkpoint is signed before the key is wiped: nothing this process wrote is left unprotected.
      if (!kernel.sealed) await kernel.checkpoint().catch(onError);
      kernel.seal();
      await auditStream?.close();
      await store.close();
      await exporter.close();
    },
  };
}

/**
 * API keys and unseal credentials do not cross a network in clear text unless the operator says so:
 * plain HTTP on an address other than loopback needs `insecureHttp` (`--insecure-http`).
 */
export function assertPlainHttpAllowed({
  host,
  tls,
  insecureHttp,
  option = 'host',
}: {
  host: string;
  tls: TlsFiles | undefined;
  insecureHttp: boolean;
  /** The option that named the address (host, or public-listen). */
  option?: 'host' | 'public-listen';
}): void {
  if (tls !== undefined || insecureHttp || isLoopback(host)) return;
  throw new CustosError(
    'invalid_input',
    `--${option} ${host}: plain HTTP on a non-loopback address; serve HTTPS (--tls-cert F --tls-key F) or, behind a TLS-terminating proxy, pass --insecure-http`,
    { details: { field: option === 'host' ? 'insecure-http' : option } },
  );
}

/** A name or address that stays on this machine. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1' || /^::ffff:127\./.test(bare);
}

/** Addresses that stay inside a private network: loopback, RFC 1918, shared (RFC 6598), link-local, IPv6 unique local (RFC 4193). */
const PRIVATE = (() => {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['127.0.0.0', 8],
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['100.64.0.0', 10],
    ['169.254.0.0', 16],
  ] as const)
    list.addSubnet(net, prefix, 'ipv4');
  list.addAddress('::1', 'ipv6');
  list.addSubnet('fc00::', 7, 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  return list;
})();

/**
 * The operations listener is plain HTTP (its probes and metrics carry no secret but the metrics
 * token): on loopback or a private address it is allowed; a wildcard (0.0.0.0, ::), a name other than
 * localhost, or a public address needs `--insecure-http`, the operator's word that the network is private.
 */
export function assertOpsAddressAllowed(host: string, insecureHttp: boolean): void {
  if (insecureHttp || isLoopback(host)) return;
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const family = isIP(bare);
  if (family !== 0 && bare !== '0.0.0.0' && bare !== '::' && PRIVATE.check(bare, family === 6 ? 'ipv6' : 'ipv4')) return;
  throw new CustosError(
    'invalid_input',
    `--ops-listen ${host}: the operations listener is plain HTTP; bind it to loopback or a private address, or pass --insecure-http if this network is private`,
    { details: { field: 'ops-listen' } },
  );
}

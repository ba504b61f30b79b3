import { readFileSync } from 'node:fs';
import { assertWalletPolicy, CustosError, type WalletPolicy } from '@custos/kernel';
import {
  assertHttpUrl,
  assertOpsAddressAllowed,
  assertPlainHttpAllowed,
  createLogger,
  type DeliveryOptions,
  parseAllowFrom,
  parseListenAddress,
  parsePublicUrl,
  parseTrustProxy,
  readPageOptions,
  type StoreLocation,
  startServer,
} from '@custos/server';
import { type Io, readSecretFile } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { type ResolvedServeOptions, resolveServeOptions, type ServeValues, settingsForLog, withSourceInErrors } from '../serveConfig.js';
import { readCredential, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos serve [--config custos.yaml] (--data-dir D | --store postgres://… [--store-password-file F])
                    [--host H] [--port N]
                    [--passphrase-file P | --share-file F --share-file F2 … | --pkcs11-pin-file F]
                    [--pkcs11-module M] [--log-level L] [--unknown-wallets allow|deny]
                    [--backend-enrollment on|off] [--policy-file F] [--compat-raw-hash allow|policy]
                    [--tls-cert F --tls-key F | --insecure-http] [--public-url URL]
                    [--public-listen HOST:PORT]
                    [--metrics-token-file F] [--max-waiting N]
                    [--upstream-rpc URL] [--rpc-wait SECONDS] [--rpc-key-in-url]
                    [--token-list FILE] [--page-brand NAME] [--page-lang TAG]
                    [--admin-socket PATH] [--trust-proxy A[,B/N…]]
                    [--audit-bytes-per-second N] [--audit-burst-bytes N]
                    [--audit-checkpoint-every N] [--audit-checkpoint-interval SECONDS]
                    [--audit-checkpoint-file PATH] [--audit-checkpoint-webhook URL]
                    [--audit-stream-webhook URL --audit-stream-secret-file F --audit-stream-state FILE]
                    [--smtp-url URL [--smtp-password-file F] --mail-from ADDRESS]
                    [--webhook-url URL --webhook-secret-file F]
                    [--webhook-trusted true|false] [--oob-code-ttl SECONDS]
                    [--timelock-delay SECONDS]
                    [--ops-listen HOST:PORT] [--allow-from A[,B/N…]] [--tls-client-ca F]
                    [--housekeeping-interval SECONDS] [--housekeeping-retention-days N] [--admission-latency-ms MS]

Every option can also come from the environment (--some-flag as CUSTOS_SOME_FLAG; a repeatable
option as a comma-separated list) and from a YAML config file (--config F or CUSTOS_CONFIG; keys in
camelCase: someFlag), with the precedence flag > environment > file > default. Unknown file keys and
unknown CUSTOS_ variables that look like options are errors. custos config check prints the
effective settings, secrets masked. See docs/configuration.md.

Runs the HTTP API on H:N (default 127.0.0.1:8420). Starts sealed unless the credentials are given
(--passphrase-file, M --share-file for a Shamir signer, or --pkcs11-pin-file for a PKCS#11 signer:
an unattended start, where the operators accept that the credential sits on this host); a sealed
signer serves only GET /v1/sys/status, POST /v1/sys/unseal and POST /v1/sys/unseal/reset (see
custos unseal).
  --store-password-file F
                       the PostgreSQL password (the file's first line; or CUSTOS_STORE_PASSWORD), put
                       into the --store URL, which then names the user only (postgres://user@host/db):
                       a password in the URL on the command line is warned about (ps shows it)
  --pkcs11-module M    the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so) of a signer sealed
                       by an HSM: needed to unseal it, at start (--pkcs11-pin-file) or later with
                       POST /v1/sys/unseal {"pin"} (custos unseal --pin-file). The sealed seed names
                       the token and the key.
  --unknown-wallets    whether a wallet with no enrolled factor signs without a code (allow, the
                       default: the TOTP ETH Signer's semantics; a name with no row is created for
                       the caller's tenant) or never (deny: a name with no row is refused
                       wallet_not_found, a wallet without a factor factor_required; for deployments
                       that enrol every wallet, so that deleting a wallet's rows from the database
                       does not let it sign; enrolment and GET /v1/keys still create rows).
                       Under an admin quorum deny is in force and allow refused (quorum_required).
  --timelock-delay     how long a change of a wallet's protection (2FA off, a factor added,
                       removed or replaced, a new delivery or safe address, a looser policy) waits,
                       announced and cancellable by its owner, before it takes effect: seconds,
                       default 172800 (48 h), at least 3600 (1 h; less is refused at start-up).
                       See docs/timelock.md.
  --backend-enrollment whether the backend may enrol TOTP through the API — POST /v1/totp/enroll and
                       the compatibility register, which hand it the secret — for a wallet with no
                       factor (on, the default: the plugin's weaker mode) or not at all (off:
                       factors are enrolled on the kernel's enrolment page, POST /v1/enrollments).
                       Under an admin quorum off is in force and on refused (quorum_required).
  --policy-file F      the deployment's wallet policy defaults: a JSON file with the fields of a
                       wallet policy (docs/policy.md: strength, limits in base units per chain and
                       token, window, signature cap, allowlists, rawHash); each wallet's own policy
                       (PUT /v1/wallets/policy) overrides it field by field. Under an admin
                       quorum refused (quorum_required): the defaults are the deployment
                       settings' policyDefaults (custos admin propose --kind deployment.settings)
  --compat-raw-hash    raw hashes through the compatibility API (the TOTP ETH Signer plugin's sign):
                       allow (the default: the plugin's SDK keeps working — the weaker mode) or
                       policy (refused for enrolled wallets unless their policy allows raw hashes).
                       Under an admin quorum the deployment settings' compatRawHash decides
                       (default policy): allow is refused (quorum_required), policy accepted
  --tls-cert F --tls-key F
                       serve HTTPS with this PEM certificate (chain) and private key; SIGHUP re-reads
                       both (new connections get the new certificate, a bad pair keeps the old one)
  --insecure-http      allow plain HTTP on a non-loopback --host (behind a TLS-terminating proxy);
                       without it such a start is refused
  --public-url URL     the http(s)://host[:port] operators and browsers reach the signer by; the
                       operator routes (/v1/sys/…) accept only a Host of the listening address,
                       localhost or this URL's host, and no Origin but this URL's; the approval
                       links handed to wallet owners (approveUrl) are URL/approve/… (default
                       http://localhost:<port>, for development only). Its host is the passkeys'
                       rpID: choose it once — under another host every stored passkey stops
                       working, and the start is refused. On an IP address passkeys are off
                       (browsers refuse them there); over plain http they work on localhost only.
  --public-listen HOST:PORT
                       serve the kernel's pages (approval and enrolment pages, their scripts) on a
                       listener of their own, and nothing else there (no API, no probes); the API
                       listener then serves no pages. Same TLS as the API (--tls-cert: the
                       certificate must name the public URL's host too) or --insecure-http.
                       IPv6 as [::1]:8443.
  --metrics-token-file F
                       GET /metrics needs Authorization: Bearer <token> (the file's first line;
                       or the CUSTOS_METRICS_TOKEN environment variable); at least 16 characters
  --max-waiting N      long polls for approval decisions (GET /v1/approvals/ID?waitSeconds=…)
                       waiting at once (default 1000): counted apart from the requests in flight,
                       beyond it refused 503 overloaded
  --upstream-rpc URL   the Ethereum node (http or https) behind the JSON-RPC signer (POST /v1/rpc,
                       docs/json-rpc.md): every method it does not answer itself is forwarded
                       there, and eth_sendTransaction fills nonce, gas and fees from it and relays
                       the signed transaction with eth_sendRawTransaction. Without it only the
                       signing methods and eth_accounts are served.
  --rpc-wait SECONDS   how long a JSON-RPC signing call for a wallet that needs consent waits for
                       the owner's decision before it answers 4100 approval_pending (0–60, default
                       8: viem's HTTP transport gives up at 10 s); waiting calls count in the
                       --max-waiting pool
  --rpc-key-in-url     also accept the API key as POST /v1/rpc?apiKey=KEY, for tools that cannot
                       send headers (the key then sits in the tool's configuration and history;
                       the server never logs a query string)
  --token-list FILE    the tokens the approval page shows in their unit: a JSON array of
                       { "chainId", "address", "symbol", "decimals" } (docs/approval-page.md);
                       any other token's amounts are shown in base units with its contract
  --page-brand NAME    the name the kernel's pages show (default Custos)
  --page-lang TAG      the language tag of the kernel's pages (default en)
  --admin-socket PATH  also serve the API on a Unix socket at PATH, created mode 0600: the operators'
                       channel (custos unseal --admin-socket, custos seal --admin-socket). Its
                       unseals are never delayed by other clients' failures nor queued behind
                       them; a seal over it needs no API key (the file's permissions are the
                       credential: keep it in a directory only the server's user can reach). A
                       stale socket file is replaced; a live one or a non-socket file is refused.
                       The file is removed when the server stops.
  --trust-proxy LIST   comma-separated addresses or CIDR ranges of the reverse proxies in front of
                       the server: a request from one of them is attributed to the address it
                       forwarded (X-Forwarded-For, right-most untrusted entry). Off by default: the
                       socket's address is the client, whatever the headers say. The unseal
                       back-off is per client address (IPv6 per /64, 10,000 kept).
  --audit-bytes-per-second N, --audit-burst-bytes N
                       the audit budget of each tenant: bytes of audit records its API keys may add
                       per second, sustained (default 262144: 256 KiB), and at once (default
                       16777216: 16 MiB). Over it a request is refused 429 audit_rate_limited.
Audit checkpoints (docs/audit.md): the kernel signs the audit chain's head with its audit key every
N records (default 1000; 0: by time only), every SECONDS (default 60) when the log grew, at a seal
and at shutdown, and stores it; each is also pushed out of the data directory as it is made:
  --audit-checkpoint-file PATH     appended as one JSON line, fsynced (the file custos audit verify
                                   --checkpoint reads; keep it on another machine or volume)
  --audit-checkpoint-webhook URL   POSTed as JSON, best effort: retried 5 times over ~15 s, never
                                   holding up signing; a lost one is made up by the next
The audit log streamed to a SIEM as it is written (docs/audit.md), all three together:
  --audit-stream-webhook URL       every record POSTed in seq order, in batches, HMAC-signed
                                   (X-Custos-Signature); retried with backoff until accepted
  --audit-stream-secret-file F     the HMAC secret, at least 16 bytes
  --audit-stream-state FILE        the durable cursor (last seq accepted): nothing is lost while
                                   the receiver is down or serve is stopped; a batch may come twice
Codes the kernel delivers itself (docs/delivery.md): with a channel, wallet owners can set a
delivery address on their enrolment page (kind oob), and each approval of such a wallet sends its
summary, its link and an 8-digit code there, through an outbox sent after the commit and retried:
  --smtp-url URL       e-mail over SMTP: smtp://[user@]host[:port] or smtps://…, the password from
                       --smtp-password-file F (its first line) or CUSTOS_SMTP_PASSWORD (a password in
                       the URL on the command line is warned about: ps shows it);
                       ?ignoreTLS=true for a local relay without STARTTLS
  --mail-from ADDRESS  the From of the messages (needed with --smtp-url)
  --webhook-url URL    the deployment's signed webhook (one for all wallets, set by the operator):
                       its receiver must be outside the wallet backend's trust domain. A URL in
                       the deployment settings (custos admin propose --kind deployment.settings)
                       takes precedence; under an admin quorum this flag is refused (quorum_required):
                       give --webhook-secret-file alone and the settings' URL is used
  --webhook-secret-file F
                       the webhook's HMAC secret (the file's first line, at least 16 bytes; or the
                       CUSTOS_WEBHOOK_SECRET environment variable); X-Custos-Signature: t=…,v1=…
  --webhook-trusted true|false
                       whether the webhook's receiver is outside the wallet backend's trust domain
                       (true, the default); false: a code sent by webhook may be read by the
                       backend, so a webhook wallet's code counts as present, not bound
  --oob-code-ttl SECONDS
                       how long a delivered code is valid (default 300, 30 to 600)
Listeners and housekeeping (docs/operations.md):
  --ops-listen HOST:PORT
                       serve /healthz, /readyz and /metrics on a listener of their own, plain HTTP,
                       and nothing else there; the API listener then serves no /metrics (its
                       /healthz and /readyz stay). Loopback or a private address (10/8, 172.16/12,
                       192.168/16, 100.64/10, link-local, fc00::/7); a wildcard or public address
                       needs --insecure-http. --metrics-token-file applies there.
  --allow-from LIST    comma-separated addresses or CIDR ranges: the API listener answers only these
                       clients (the address as --trust-proxy resolves it: X-Forwarded-For counts
                       only from a trusted proxy); any other is refused 403 forbidden_address. The
                       pages' and operations listeners and the admin socket are not restricted.
  --tls-client-ca F    mutual TLS on the API listener (with --tls-cert): only clients presenting a
                       certificate signed by a CA in this PEM file complete the TLS handshake;
                       SIGHUP re-reads it with the certificate. Not on the pages' listener.
  --housekeeping-interval SECONDS
                       how often finished approvals, enrolment links and outbox messages past the
                       retention are deleted (default 3600, 1–86400); every replica may run it
  --admission-latency-ms MS
                       admission by expected wait (default 100; 0 turns it off): at most as many
                       requests busy as complete in MS (the last 2 s's rate, at least 64), none
                       while the store's queue (over max(MS, 1000)) or the event loop (over
                       max(MS/2, 250)) runs late; the rest refused 503 overloaded on arrival. See
                       docs/operations.md (Overload)
  --housekeeping-retention-days N
                       how long they are kept after their end (default 30, at least 1); the audit
                       log is never deleted
Timeouts: 10 s to send the headers, 30 s for the whole request, 60 s idle (a long poll's wait is
exempt), 72 s keep-alive.
Logs are JSON lines (pino) on standard output; L is one of fatal, error, warn, info (default), debug.
At start one line "custos started" gives the effective configuration (secrets masked, each value's
source), at shutdown one line "custos stopped" the signal and the uptime.`;

export async function serveCommand(argv: string[], io: Io): Promise<number> {
  const env = io.env ?? process.env;
  const resolved = resolveServeOptions(argv, env);
  if (resolved.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  // the merged values (flag > env > file), in parseOptions' shape: read them as opts['some-flag']
  const opts = resolved.values;
  const plan = withSourceInErrors(resolved, () => readServePlan(opts, env));
  const {
    location,
    port,
    level,
    host,
    edge,
    publicListen,
    adminSocketPath,
    trustProxy,
    auditCheckpoints,
    maxWaiting,
    upstreamRpc,
    rpcWait,
    pages,
    pkcs11Module,
    listeners,
  } = plan;
  const { unknownWallets, backendEnrollment, compatRawHash, policyDefaults, auditBytesPerSecond, auditBurstBytes, timelockDelay } = plan;
  const delivery = withSourceInErrors(resolved, () => readDeliveryOptions(opts, env));
  const auditStream = withSourceInErrors(resolved, () => readAuditStreamOptions(opts));
  let credential: ReturnType<typeof readCredential>;
  try {
    await (await openInitialisedStore(location)).close();
    credential = withSourceInErrors(resolved, () => readServeCredential(opts));
  } catch (error) {
    delivery?.webhookSecret?.fill(0);
    auditStream?.secret.fill(0);
    throw error;
  }
  const logger = createLogger({ level });
  // in the log, not on stderr: a failed start still prints exactly one line there
  for (const warning of resolved.warnings) logger.warn(warning);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({
      store: location,
      host,
      port,
      logger,
      trustProxy,
      ...(adminSocketPath === undefined ? {} : { adminSocketPath }),
      auditCheckpoints,
      ...(auditStream === undefined ? {} : { auditStream }),
      ...(maxWaiting === undefined ? {} : { maxWaiting }),
      ...(upstreamRpc === undefined ? {} : { upstreamRpc }),
      ...(rpcWait === undefined ? {} : { rpcWaitSeconds: Number(rpcWait) }),
      ...(plan.rpcKeyInUrl ? { rpcKeyInUrl: true } : {}),
      pages,
      ...(credential === undefined ? {} : { credential }),
      ...(pkcs11Module === undefined ? {} : { pkcs11ModulePath: pkcs11Module }),
      ...edge,
      ...(publicListen === undefined ? {} : { publicListen }),
      ...listeners.server,
      ...(delivery === undefined ? {} : { delivery }),
      kernelOptions: {
        ...(unknownWallets === undefined ? {} : { unknownWallets }),
        ...(backendEnrollment === undefined ? {} : { backendEnrollment }),
        ...(compatRawHash === undefined ? {} : { compatRawHash }),
        ...(policyDefaults === undefined ? {} : { policyDefaults }),
        ...(auditBytesPerSecond === undefined ? {} : { auditBytesPerSecond }),
        ...(auditBurstBytes === undefined ? {} : { auditBurstBytes }),
        ...(timelockDelay === undefined ? {} : { timelock: { delayMs: timelockDelay * 1000 } }),
        ...listeners.kernel,
      },
    });
  } finally {
    wipeCredential(credential);
    delivery?.webhookSecret?.fill(0);
    // the stream keeps a copy of its own (streamAuditLog.ts)
    auditStream?.secret.fill(0);
  }
  const status = server.kernel.status();
  io.stderr.write(`custos: listening on ${server.url} (signerId ${status.signerId}, ${status.sealed ? 'sealed' : 'unsealed'})\n`);
  if (server.pagesUrl !== undefined) io.stderr.write(`custos: pages on ${server.pagesUrl} (the API listener serves none)\n`);
  if (server.opsUrl !== undefined) io.stderr.write(`custos: probes and metrics on ${server.opsUrl} (the API listener serves no /metrics)\n`);
  for (const notice of server.notices) io.stderr.write(`custos: ${notice}\n`);
  // SIGHUP: a renewed certificate is picked up without a restart (a bad pair keeps the old one)
  const reload = () => {
    try {
      server.reloadTls();
      logger.info('TLS certificate reloaded');
    } catch (error) {
      logger.error({ err: error }, 'TLS certificate not reloaded; the previous one stays in use');
    }
  };
  if (edge.tls !== undefined) process.on('SIGHUP', reload);
  if (server.adminSocketPath !== undefined) io.stderr.write(`custos: admin socket ${server.adminSocketPath}\n`);
  // One line with the effective configuration (secrets masked), one at shutdown (docs/configuration.md).
  const startedAt = Date.now();
  logger.info({ ...settingsForLog(resolved, env), url: server.url, signerId: status.signerId, sealed: status.sealed }, 'custos started');
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', reload);
      const done = () => resolve(received);
      void server.close().then(done, done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  logger.info({ signal, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }, 'custos stopped');
  return 0;
}

/**
 * Checks the settings as serve does before it opens the store (`custos config check`): every value,
 * the files they name; the secrets read on the way are wiped.
 */
export function checkServeSettings(resolved: ResolvedServeOptions, env: NodeJS.ProcessEnv): void {
  withSourceInErrors(resolved, () => readServePlan(resolved.values, env));
  const delivery = withSourceInErrors(resolved, () => readDeliveryOptions(resolved.values, env));
  delivery?.webhookSecret?.fill(0);
  withSourceInErrors(resolved, () => readAuditStreamOptions(resolved.values))?.secret.fill(0);
  wipeCredential(withSourceInErrors(resolved, () => readServeCredential(resolved.values)));
}

/** The serve settings read from the resolved values, checked (no secret read, no store opened): shared with `custos config check`. */
function readServePlan(opts: ServeValues, env: NodeJS.ProcessEnv) {
  const location = readServeStoreLocation(opts, env);
  // digits only: Number() would turn '' into 0 (a random port) and take ' 80', '1e3' or '0x50'
  const port = opts.port === undefined ? 8420 : /^[0-9]{1,5}$/.test(opts.port) ? Number(opts.port) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CustosError('invalid_input', '--port: expected an integer 0..65535', { details: { field: 'port' } });
  const level = opts['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level))
    throw new CustosError('invalid_input', '--log-level: expected fatal, error, warn, info, debug, trace or silent', { details: { field: 'log-level' } });
  // Omitted: allow / on (the kernel's defaults), or — under an admin quorum — deny / off (startServer).
  const unknownWallets = opts['unknown-wallets'];
  if (unknownWallets !== undefined && unknownWallets !== 'allow' && unknownWallets !== 'deny')
    throw new CustosError('invalid_input', '--unknown-wallets: expected allow or deny', { details: { field: 'unknown-wallets' } });
  const backendEnrollment = opts['backend-enrollment'];
  if (backendEnrollment !== undefined && backendEnrollment !== 'on' && backendEnrollment !== 'off')
    throw new CustosError('invalid_input', '--backend-enrollment: expected on or off', { details: { field: 'backend-enrollment' } });
  const policyDefaults = readPolicyFile(opts['policy-file']);
  // Not given: `allow` without a quorum, the deployment settings' under one (the kernel decides).
  const compatRawHash = opts['compat-raw-hash'];
  if (compatRawHash !== undefined && compatRawHash !== 'allow' && compatRawHash !== 'policy')
    throw new CustosError('invalid_input', '--compat-raw-hash: expected allow or policy', { details: { field: 'compat-raw-hash' } });
  const host = opts.host ?? '127.0.0.1';
  const edge = readEdgeOptions(host, opts, env);
  const publicListen = opts['public-listen'] === undefined ? undefined : parseListenAddress(opts['public-listen'], 'public-listen');
  if (publicListen !== undefined)
    assertPlainHttpAllowed({ host: publicListen.host, tls: edge.tls, insecureHttp: edge.insecureHttp === true, option: 'public-listen' });
  const listeners = readListenerOptions(opts, edge);
  const adminSocketPath = opts['admin-socket'];
  if (adminSocketPath === '')
    throw new CustosError('invalid_input', '--admin-socket: expected the path of a Unix socket', { details: { field: 'admin-socket' } });
  const trustProxy = opts['trust-proxy'] === undefined ? [] : parseTrustProxy(opts['trust-proxy']);
  const auditBytesPerSecond = readPositiveInteger(opts['audit-bytes-per-second'], 'audit-bytes-per-second');
  const auditBurstBytes = readPositiveInteger(opts['audit-burst-bytes'], 'audit-burst-bytes');
  const auditCheckpoints = readAuditCheckpointOptions(opts);
  const maxWaiting = readPositiveInteger(opts['max-waiting'], 'max-waiting');
  const timelockDelay = readPositiveInteger(opts['timelock-delay'], 'timelock-delay');
  if (timelockDelay !== undefined && timelockDelay < 3600)
    throw new CustosError('invalid_input', '--timelock-delay: expected at least 3600 seconds (1 hour)', { details: { field: 'timelock-delay' } });
  const upstreamRpc = readUpstreamRpc(opts['upstream-rpc']);
  const rpcWait = opts['rpc-wait'];
  if (rpcWait !== undefined && !/^([0-9]|[1-5][0-9]|60)$/.test(rpcWait))
    throw new CustosError('invalid_input', '--rpc-wait: expected whole seconds 0–60', { details: { field: 'rpc-wait' } });
  const pages = readPageOptions({ tokenListFile: opts['token-list'], brandName: opts['page-brand'], lang: opts['page-lang'] });
  const pkcs11Module = opts['pkcs11-module'];
  if (pkcs11Module === '')
    throw new CustosError('invalid_input', '--pkcs11-module: expected the path of a PKCS#11 library', { details: { field: 'pkcs11-module' } });
  return {
    location,
    port,
    level,
    host,
    edge,
    publicListen,
    listeners,
    adminSocketPath,
    trustProxy,
    auditCheckpoints,
    maxWaiting,
    upstreamRpc,
    rpcWait,
    rpcKeyInUrl: opts['rpc-key-in-url'] === true,
    pages,
    pkcs11Module,
    unknownWallets,
    backendEnrollment,
    compatRawHash,
    policyDefaults,
    auditBytesPerSecond,
    auditBurstBytes,
    timelockDelay,
  } as const;
}

/** The unseal credential given for an unattended start (passphrase, shares or PKCS#11 PIN), read; the caller wipes it. */
function readServeCredential(opts: ServeValues): ReturnType<typeof readCredential> {
  return readCredential(opts['passphrase-file'], opts['share-file'], { module: opts['pkcs11-module'], pinFile: opts['pkcs11-pin-file'] });
}

/**
 * --data-dir or --store; a PostgreSQL password from --store-password-file (or CUSTOS_STORE_PASSWORD)
 * goes into the URL here, so that it need not be on the command line.
 */
export function readServeStoreLocation(opts: ServeValues, env: NodeJS.ProcessEnv): StoreLocation {
  const password = readUrlPassword(opts['store-password-file'], 'store-password-file', env.CUSTOS_STORE_PASSWORD, 'CUSTOS_STORE_PASSWORD');
  const location = readStoreLocation(opts);
  if (password === undefined) return location;
  const field = opts['store-password-file'] === undefined ? 'CUSTOS_STORE_PASSWORD' : 'store-password-file';
  if (!('url' in location)) throw new CustosError('invalid_input', `${flagOrEnv(field)}: only with --store postgres://…`, { details: { field } });
  return { url: withUrlPassword(location.url, password, field, 'store') };
}

function flagOrEnv(field: string): string {
  return field.startsWith('CUSTOS_') ? field : `--${field}`;
}

/** A URL password from its file (first line) or its environment variable; not both. */
function readUrlPassword(file: string | undefined, option: string, fromEnv: string | undefined, variable: string): string | undefined {
  if (file !== undefined && fromEnv !== undefined)
    throw new CustosError('invalid_input', `--${option}: not with ${variable} set (give one of them)`, { details: { field: option } });
  if (fromEnv !== undefined) {
    if (fromEnv === '') throw new CustosError('invalid_input', `${variable}: expected a password`, { details: { field: variable } });
    return fromEnv;
  }
  if (file === undefined) return undefined;
  const bytes = readSecretFile(file, option);
  const password = Buffer.from(bytes).toString('utf8');
  bytes.fill(0);
  if (password.includes('\n')) throw new CustosError('invalid_input', `--${option}: expected one line (the password)`, { details: { field: option } });
  return password;
}

/** The URL with this password put in (percent-encoded); refused when the URL carries one already. */
function withUrlPassword(value: string, password: string, field: string, urlOption: string): string {
  const url = new URL(value);
  if (url.password !== '')
    throw new CustosError('invalid_input', `${flagOrEnv(field)}: --${urlOption} carries a password already (give one of them)`, { details: { field } });
  if (url.username === '')
    throw new CustosError('invalid_input', `${flagOrEnv(field)}: --${urlOption} names no user (user@host) for the password`, { details: { field } });
  url.password = password;
  return url.toString();
}

/** The options of the HTTP edge: TLS or an explicit plain HTTP, the public URL, the metrics token. */
function readEdgeOptions(
  host: string,
  opts: {
    'tls-cert'?: string | undefined;
    'tls-key'?: string | undefined;
    'insecure-http'?: boolean | undefined;
    'public-url'?: string | undefined;
    'metrics-token-file'?: string | undefined;
  },
  env: NodeJS.ProcessEnv,
): { tls?: { certFile: string; keyFile: string }; insecureHttp?: boolean; publicUrl?: string; metricsToken?: string } {
  const certFile = opts['tls-cert'];
  const keyFile = opts['tls-key'];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? 'tls-cert' : 'tls-key';
    throw new CustosError('invalid_input', `--tls-cert and --tls-key go together: --${missing} is missing`, { details: { field: missing } });
  }
  if (certFile !== undefined && opts['insecure-http'] === true)
    throw new CustosError('invalid_input', '--insecure-http: not with --tls-cert (the signer serves HTTPS)', { details: { field: 'insecure-http' } });
  const tls = certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile };
  assertPlainHttpAllowed({ host, tls, insecureHttp: opts['insecure-http'] === true });
  const publicUrl = opts['public-url'];
  if (publicUrl !== undefined) parsePublicUrl(publicUrl);
  const metricsToken = readMetricsToken(opts['metrics-token-file'], env.CUSTOS_METRICS_TOKEN);
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(opts['insecure-http'] === true ? { insecureHttp: true } : {}),
    ...(publicUrl === undefined ? {} : { publicUrl }),
    ...(metricsToken === undefined ? {} : { metricsToken }),
  };
}

/**
 * The listeners' and housekeeping's options (issue 15 point 13): the operations listener, the API
 * listener's allowlist and client CA, the housekeeping's period and retention.
 */
function readListenerOptions(
  opts: {
    'ops-listen'?: string | undefined;
    'allow-from'?: string | undefined;
    'tls-client-ca'?: string | undefined;
    'housekeeping-interval'?: string | undefined;
    'housekeeping-retention-days'?: string | undefined;
    'admission-latency-ms'?: string | undefined;
  },
  edge: { tls?: { certFile: string; keyFile: string }; insecureHttp?: boolean },
): {
  server: Pick<Parameters<typeof startServer>[0], 'opsListen' | 'allowFrom' | 'tls' | 'housekeepingIntervalSeconds' | 'targetLatencyMs'>;
  kernel: { housekeeping?: { retentionMs: number } };
} {
  const opsListen = opts['ops-listen'] === undefined ? undefined : parseListenAddress(opts['ops-listen'], 'ops-listen');
  if (opsListen !== undefined) assertOpsAddressAllowed(opsListen.host, edge.insecureHttp === true);
  const allowFrom = opts['allow-from'] === undefined ? undefined : parseAllowFrom(opts['allow-from']);
  const clientCaFile = opts['tls-client-ca'];
  if (clientCaFile !== undefined && edge.tls === undefined)
    throw new CustosError('invalid_input', '--tls-client-ca: needs --tls-cert and --tls-key (mutual TLS is TLS)', { details: { field: 'tls-client-ca' } });
  const interval = readPositiveInteger(opts['housekeeping-interval'], 'housekeeping-interval');
  if (interval !== undefined && interval > 86_400)
    throw new CustosError('invalid_input', '--housekeeping-interval: expected whole seconds 1–86400', { details: { field: 'housekeeping-interval' } });
  const retentionDays = readPositiveInteger(opts['housekeeping-retention-days'], 'housekeeping-retention-days');
  if (retentionDays !== undefined && retentionDays > 36_500)
    throw new CustosError('invalid_input', '--housekeeping-retention-days: expected 1–36500', { details: { field: 'housekeeping-retention-days' } });
  // admission by expected wait: on by default (DEFAULT_ADMISSION_LATENCY_MS), 0 turns it off
  const rawAdmission = opts['admission-latency-ms'];
  const admissionMs = rawAdmission === undefined ? DEFAULT_ADMISSION_LATENCY_MS : /^[0-9]{1,6}$/.test(rawAdmission) ? Number(rawAdmission) : Number.NaN;
  if (!(admissionMs === 0 || (admissionMs >= 50 && admissionMs <= 60_000)))
    throw new CustosError('invalid_input', '--admission-latency-ms: expected 50–60000 ms, or 0 (off)', { details: { field: 'admission-latency-ms' } });
  const admissionLatency = admissionMs === 0 ? undefined : admissionMs;
  return {
    server: {
      ...(admissionLatency === undefined ? {} : { targetLatencyMs: admissionLatency }),
      ...(opsListen === undefined ? {} : { opsListen }),
      ...(allowFrom === undefined ? {} : { allowFrom }),
      ...(clientCaFile === undefined || edge.tls === undefined ? {} : { tls: { ...edge.tls, clientCaFile } }),
      ...(interval === undefined ? {} : { housekeepingIntervalSeconds: interval }),
    },
    kernel: retentionDays === undefined ? {} : { housekeeping: { retentionMs: retentionDays * 86_400_000 } },
  };
}

/** The metrics token: from --metrics-token-file, else CUSTOS_METRICS_TOKEN (never a command-line value: argv is visible to every user). */
function readMetricsToken(file: string | undefined, fromEnv: string | undefined): string | undefined {
  if (file !== undefined && fromEnv !== undefined)
    throw new CustosError('invalid_input', '--metrics-token-file: not with CUSTOS_METRICS_TOKEN set (give one of them)', {
      details: { field: 'metrics-token-file' },
    });
  let token: string;
  if (file !== undefined) {
    const bytes = readSecretFile(file, 'metrics-token-file');
    token = Buffer.from(bytes).toString('utf8');
    bytes.fill(0);
  } else if (fromEnv !== undefined) token = fromEnv;
  else return undefined;
  const field = file === undefined ? 'CUSTOS_METRICS_TOKEN' : 'metrics-token-file';
  if (!/^[\x21-\x7e]{16,512}$/.test(token))
    throw new CustosError('invalid_input', `${file === undefined ? field : `--${field}`}: expected one line of 16 to 512 printable characters, no spaces`, {
      details: { field },
    });
  return token;
}

/**
 * The latency target of admission by expected wait (`--admission-latency-ms`, startServer's
 * targetLatencyMs; docs/operations.md, Overload): low, so that the kernel keeps about as many
 * requests in flight as it needs to be busy (at least 64) and refuses the rest at once — a
 * client's requests then wait little and need few connections (a new connection is accepted only
 * once per turn of a busy event loop: issue 14, point 5).
 */
export const DEFAULT_ADMISSION_LATENCY_MS = 100;

/** An optional flag that must be a positive integer (digits only, as --port). */
function readPositiveInteger(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^[0-9]{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) throw new CustosError('invalid_input', `--${flag}: expected a positive integer`, { details: { field: flag } });
  return value;
}

/** The --audit-checkpoint-* options, checked: counts and seconds are plain digits, paths and URLs non-empty. */
function readAuditCheckpointOptions(opts: {
  'audit-checkpoint-every'?: string | undefined;
  'audit-checkpoint-interval'?: string | undefined;
  'audit-checkpoint-file'?: string | undefined;
  'audit-checkpoint-webhook'?: string | undefined;
}): NonNullable<Parameters<typeof startServer>[0]['auditCheckpoints']> {
  const digits = (value: string | undefined, option: string, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    const n = /^[0-9]{1,9}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= min && n <= max)) throw new CustosError('invalid_input', `--${option}: expected an integer ${min}..${max}`, { details: { field: option } });
    return n;
  };
  const every = digits(opts['audit-checkpoint-every'], 'audit-checkpoint-every', 0, 100_000_000);
  const intervalSeconds = digits(opts['audit-checkpoint-interval'], 'audit-checkpoint-interval', 1, 86_400);
  const file = opts['audit-checkpoint-file'];
  const webhookUrl = opts['audit-checkpoint-webhook'];
  if (file === '') throw new CustosError('invalid_input', '--audit-checkpoint-file: expected a path', { details: { field: 'audit-checkpoint-file' } });
  if (webhookUrl === '')
    throw new CustosError('invalid_input', '--audit-checkpoint-webhook: expected an http(s) URL', { details: { field: 'audit-checkpoint-webhook' } });
  return {
    ...(every === undefined ? {} : { every }),
    ...(intervalSeconds === undefined ? {} : { intervalSeconds }),
    ...(file === undefined ? {} : { file }),
    ...(webhookUrl === undefined ? {} : { webhookUrl }),
  };
}

/** The --audit-stream-* options: all three or none; the secret from a file, never argv. */
function readAuditStreamOptions(opts: {
  'audit-stream-webhook'?: string | undefined;
  'audit-stream-secret-file'?: string | undefined;
  'audit-stream-state'?: string | undefined;
}): NonNullable<Parameters<typeof startServer>[0]['auditStream']> | undefined {
  const webhookUrl = opts['audit-stream-webhook'];
  const secretFile = opts['audit-stream-secret-file'];
  const stateFile = opts['audit-stream-state'];
  if (webhookUrl === undefined && secretFile === undefined && stateFile === undefined) return undefined;
  for (const [flag, value] of [
    ['audit-stream-webhook', webhookUrl],
    ['audit-stream-secret-file', secretFile],
    ['audit-stream-state', stateFile],
  ] as const)
    if (value === undefined || value === '')
      throw new CustosError('invalid_input', `--${flag}: required with the other --audit-stream-* options`, { details: { field: flag } });
  return { webhookUrl: webhookUrl as string, secret: readSecretFile(secretFile, 'audit-stream-secret-file'), stateFile: stateFile as string };
}

/** --upstream-rpc: an http(s) URL (its credentials, if any, are the node provider's: kept, never logged). */
function readUpstreamRpc(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  assertHttpUrl(value, '--upstream-rpc', 'upstream-rpc');
  return value;
}

/** The delivery channels' options (docs/delivery.md): secrets from files or the environment, never argv values. */
function readDeliveryOptions(
  opts: {
    'smtp-url'?: string | undefined;
    'smtp-password-file'?: string | undefined;
    'mail-from'?: string | undefined;
    'webhook-url'?: string | undefined;
    'webhook-secret-file'?: string | undefined;
    'oob-code-ttl'?: string | undefined;
    'webhook-trusted'?: string | undefined;
  },
  env: NodeJS.ProcessEnv,
): DeliveryOptions | undefined {
  const trusted = opts['webhook-trusted'];
  if (trusted !== undefined && trusted !== 'true' && trusted !== 'false')
    throw new CustosError('invalid_input', '--webhook-trusted: expected true or false', { details: { field: 'webhook-trusted' } });
  // The webhook is on with --webhook-url, or with --webhook-secret-file alone: its URL is then the
  // deployment settings' (a deployment.settings proposal; under an admin quorum, the only way).
  const webhookWanted = opts['webhook-url'] !== undefined || opts['webhook-secret-file'] !== undefined;
  if (trusted !== undefined && !webhookWanted)
    throw new CustosError('invalid_input', '--webhook-trusted: only with --webhook-url', { details: { field: 'webhook-trusted' } });
  const smtpPassword = readUrlPassword(opts['smtp-password-file'], 'smtp-password-file', env.CUSTOS_SMTP_PASSWORD, 'CUSTOS_SMTP_PASSWORD');
  const passwordField = opts['smtp-password-file'] === undefined ? 'CUSTOS_SMTP_PASSWORD' : 'smtp-password-file';
  if (smtpPassword !== undefined && opts['smtp-url'] === undefined)
    throw new CustosError('invalid_input', `${flagOrEnv(passwordField)}: only with --smtp-url`, { details: { field: passwordField } });
  let smtpUrl = opts['smtp-url'];
  if (smtpUrl !== undefined && smtpPassword !== undefined) {
    try {
      new URL(smtpUrl);
    } catch {
      throw new CustosError('invalid_input', '--smtp-url: expected smtp://[user@]host[:port] or smtps://…', { details: { field: 'smtp-url' } });
    }
    smtpUrl = withUrlPassword(smtpUrl, smtpPassword, passwordField, 'smtp-url');
  }
  const webhookUrl = opts['webhook-url'];
  const codeTtlSeconds = readPositiveInteger(opts['oob-code-ttl'], 'oob-code-ttl');
  if (codeTtlSeconds !== undefined && (codeTtlSeconds < 30 || codeTtlSeconds > 600))
    throw new CustosError('invalid_input', '--oob-code-ttl: expected 30 to 600 seconds', { details: { field: 'oob-code-ttl' } });
  if (smtpUrl === undefined && !webhookWanted) {
    for (const flag of ['mail-from', 'oob-code-ttl'] as const)
      if (opts[flag] !== undefined) throw new CustosError('invalid_input', `--${flag}: only with --smtp-url or --webhook-url`, { details: { field: flag } });
    return undefined;
  }
  let webhookSecret: Uint8Array | undefined;
  if (webhookWanted) {
    const file = opts['webhook-secret-file'];
    const fromEnv = env.CUSTOS_WEBHOOK_SECRET;
    if (file !== undefined) webhookSecret = readSecretFile(file, 'webhook-secret-file');
    else if (fromEnv !== undefined) webhookSecret = new TextEncoder().encode(fromEnv);
  }
  return {
    ...(smtpUrl === undefined ? {} : { smtpUrl }),
    ...(opts['mail-from'] === undefined ? {} : { mailFrom: opts['mail-from'] }),
    ...(webhookUrl === undefined ? {} : { webhookUrl }),
    ...(webhookSecret === undefined ? {} : { webhookSecret }),
    ...(codeTtlSeconds === undefined ? {} : { codeTtlSeconds }),
    ...(trusted === undefined ? {} : { webhookTrusted: trusted === 'true' }),
  };
}

/** --policy-file: the deployment's policy defaults, a JSON file validated as a wallet policy (every field named when wrong). */
export function readPolicyFile(path: string | undefined): WalletPolicy | undefined {
  if (path === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CustosError('invalid_input', '--policy-file: expected a readable JSON file', { details: { field: 'policy-file' }, cause: error });
  }
  return assertWalletPolicy(parsed, 'policy-file');
}

/**
 * The first deployment settings of an admin quorum (`custos init --admin`, `custos admin bootstrap`):
 * `--policy-file` (the defaults the signer served with: else the bootstrap would drop their limits)
 * and `--compat-raw-hash`, as a `deployment.settings` payload; undefined when neither is given (the
 * built-in settings). From then on only a deployment.settings proposal changes them.
 */
export function readFirstDeploymentSettings(opts: { 'policy-file'?: string | undefined; 'compat-raw-hash'?: string | undefined }): unknown {
  const policyDefaults = readPolicyFile(opts['policy-file']);
  const compatRawHash = opts['compat-raw-hash'];
  if (compatRawHash !== undefined && compatRawHash !== 'allow' && compatRawHash !== 'policy')
    throw new CustosError('invalid_input', '--compat-raw-hash: expected allow or policy', { details: { field: 'compat-raw-hash' } });
  if (policyDefaults === undefined && compatRawHash === undefined) return undefined;
  return { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: policyDefaults ?? {}, compatRawHash: compatRawHash ?? 'policy' };
}

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { CustosError, KERNEL_VERSION, type Kernel } from '@custos/kernel';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { isAdminSocketRequest } from './adminSocket.js';
import { assertHostAndOrigin, parsePublicUrl } from './checkHostAndOrigin.js';
import { type AdmittedRequest, createOverloadGuard, type OverloadGuard } from './createOverloadGuard.js';
import { createEarlyRefusal, setEarlyRefusal } from './earlyRefusal.js';
import { monitorLoopLag } from './loopLag.js';
import { docsPage } from './docsPage.js';
import { errorBody, errorCodeOf, handleError } from './errorHandler.js';
import { groupClientAddress } from './groupClientAddress.js';
import { createMetrics, type Metrics } from './metrics.js';
import { type PageOptions, pageRoutes } from './pages/pageRoutes.js';
import { addressMatcher } from './parseAllowFrom.js';
import { probeRoutes } from './routes/probeRoutes.js';
import type { GroupCommit } from './stores/groupCommit.js';
import { chainRoutes } from './routes/chainRoutes.js';
import { compatRoutes } from './routes/compatRoutes.js';
import { APPROVAL_ROUTE, approvalRoutes } from './routes/approvalRoutes.js';
import { enrollmentRoutes } from './routes/enrollmentRoutes.js';
import { changeRoutes } from './routes/changeRoutes.js';
import { rpcRoutes } from './routes/rpcRoutes.js';
import { createUpstream } from './rpc/createUpstream.js';
import { hwkeyRoutes } from './routes/hwkeyRoutes.js';
import { sysRoutes } from './routes/sysRoutes.js';
import { apiKeyRoutes } from './routes/apiKeyRoutes.js';
import { v1Routes } from './routes/v1Routes.js';
import { quorumRoutes } from './routes/quorumRoutes.js';
import { auditRoutes } from './routes/auditRoutes.js';
import { policyRoutes } from './routes/policyRoutes.js';
import { logRequests, requestLoggingOptions } from './requestLogging.js';
import { shareSchemaCompilers } from './shareSchemaCompilers.js';

export interface BuildAppOptions {
  kernel: Kernel;
  /** Prometheus metrics (a fresh registry when not given). */
  metrics?: Metrics;
  /** Requests served at once; beyond it a request is refused 503 `overloaded` (Retry-After: 1). */
  maxInFlight?: number;
  /**
   * Requests one client (its address as resolved with trustProxy, IPv6 grouped per /64) may have in
   * flight and still being received (headers or body); beyond it its requests are refused 503
   * `overloaded` too, so that one client holding requests open cannot take every slot, while a
   * backend whose requests arrive whole may use them all. Default half of maxInFlight.
   */
  maxInFlightPerClient?: number;
  /**
   * The time a request may expect to wait, which bounds admission (ms; off by default — `custos
   * serve --admission-latency-ms`, experimental, issue 14 point 5): at most as many requests in flight as completed in this time (the last 2 s's rate, at
   * least 64, at most maxInFlight), and none admitted while the oldest unit of work waiting for the
   * store's next transaction has waited longer (Store.queueDelayMs) — refused 503 `overloaded`
   * (Retry-After: 1) on arrival, before any work is done for them. The in-flight count alone does
   * not bound latency: 1,024 requests wait over 10 s where the store commits under 100 a second.
   */
  targetLatencyMs?: number;
  /**
   * Long polls waiting for an approval's decision (`GET /v1/approvals/{id}?waitSeconds=N`) at once:
   * a pool of their own, not counted in maxInFlight; beyond it they are refused 503 `overloaded`.
   */
  maxWaiting?: number;
  /** How often pending approvals past their expiry are marked expired (ms, default 30 s). */
  approvalSweepMs?: number;
  /** `/readyz` answers 503 when the in-flight count stays at its limit this long with no request completing (ms). */
  stuckAfterMs?: number;
  /** The clock of the overload guard (ms); tests pass their own. */
  now?: () => number;
  /**
   * The URL browsers and operators reach the signer by (`custos serve --public-url`): its host is
   * accepted in `Host`, and its origin is the only `Origin` accepted, on the operator routes; the
   * approval pages' links (approveUrl) start with it. Without it, approveUrl is
   * `http://localhost:<the port the request came in on>` (development).
   */
  publicUrl?: string;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** A pino logger; false for none. */
  logger?: Logger | false;
  /** Largest accepted request body, bytes. */
  bodyLimit?: number;
  /** The PKCS#11 library for `POST /v1/sys/unseal {"pin"}` (custos serve --pkcs11-module). */
  pkcs11ModulePath?: string;
  /**
   * The reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges, see
   * parseTrustProxy; custos serve --trust-proxy). Empty or absent: the socket's address is the
   * client's, whatever the headers say (the unseal back-off is kept per client address).
   */
  trustProxy?: readonly string[];
  /** The kernel's own pages (approval page): brand, language, token list. */
  pages?: PageOptions;
  /**
   * Whether this app serves the kernel's pages: true (the default, development), or not because
   * another listener does (`custos serve --public-listen`, see buildPagesApp): `{ port }` is that
   * listener's, read when a link is made — without publicUrl, approveUrl and enrollUrl are
   * `http(s)://localhost:<port>` (false: the port the request came in on).
   */
  servePages?: boolean | { port: () => number };
  /** The Ethereum node the JSON-RPC signer (`POST /v1/rpc`) forwards to and fills transactions from (custos serve --upstream-rpc). */
  upstreamRpc?: string;
  /** How long a JSON-RPC signing call waits for the owner's decision, seconds (custos serve --rpc-wait; default 8, below viem's 10 s). */
  rpcWaitSeconds?: number;
  /** Whether `POST /v1/rpc?apiKey=` is accepted, for tools that cannot send headers (custos serve --rpc-key-in-url; the URL's query is never logged). */
  rpcKeyInUrl?: boolean;
  /**
   * The addresses and CIDR ranges this app answers (custos serve --allow-from; see parseAllowFrom): a
   * request from any other client address (as resolved with trustProxy) is refused 403
   * `forbidden_address` before anything else is looked at. The admin socket is exempt. Absent: all.
   */
  allowFrom?: readonly string[];
  /** Whether this app serves `GET /metrics` (false when an operations listener serves it: custos serve --ops-listen). */
  serveMetrics?: boolean;
}

const overloadGuards = new WeakMap<FastifyInstance, OverloadGuard>();

/** The in-flight guard of an app built by buildApp (the operations listener's /readyz reports whether it is stuck). */
export function overloadGuardOf(app: FastifyInstance): OverloadGuard {
  const guard = overloadGuards.get(app);
  if (guard === undefined) throw new Error('not an app of buildApp');
  return guard;
}

/** Requests counted in the request metrics (probes are not). */
const countedRequests = new WeakSet<object>();

/** Routes served while sealed; every other request is answered 503 `sealed`. */
const SEALED_ALLOWED = new Set(['/v1/sys/status', '/v1/sys/unseal', '/v1/sys/unseal/reset', '/healthz', '/readyz', '/metrics']);
/** With a latency target, the store's queue refuses new work when its oldest unit waited over the target, but never less than this (ms). */
const MIN_QUEUE_DELAY_MS = 1_000;
/** With a latency target, a loop persistently late by over half the target, but never less than this (ms), refuses new work. */
const MIN_LOOP_LAG_MS = 250;

/** Operational probes: never refused as overloaded, not counted as API traffic. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
/** The API docs page's CSP (/docs): its own scripts and styles only (Swagger UI sets style attributes: 'unsafe-inline' for styles), no framing, no other origin. */
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** The port of `custos serve` when none is given (the approval links' fallback for a request that came in on no port). */
const DEFAULT_PORT = 8420;

/** `GET /v1/approvals/{id}?waitSeconds=…`: a long poll, counted in the waiting pool (HEAD is its twin). */
function isLongPoll(request: FastifyRequest): boolean {
  return (
    (request.method === 'GET' || request.method === 'HEAD') &&
    request.routeOptions.url === APPROVAL_ROUTE &&
    typeof request.query === 'object' &&
    request.query !== null &&
    (request.query as Record<string, unknown>).waitSeconds !== undefined
  );
}

/** Calls `done` once when the exchange ends: answered, or its connection closed first. */
export function whenExchangeEnds(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const socket = request.raw.socket;
  const once = () => {
    reply.raw.off('close', once);
    socket.off('close', once);
    done();
  };
  reply.raw.once('close', once);
  socket.once('close', once);
  if (socket.destroyed) once();
}

/** Whether the request came over TLS (the listeners share --tls-cert: the pages' listener too). */
function isTls(request: FastifyRequest): boolean {
  const socket = request.raw.socket as { encrypted?: boolean };
  return socket.encrypted === true;
}

/** Operator routes: only for a Host of this signer and no foreign Origin (see checkHostAndOrigin). */
const OPERATOR_PREFIX = '/v1/sys/';

/**
 * Builds the HTTP shell around a kernel (no listening: see startServer). Input is validated by
 * the route schemas without coercion, and responses are serialised by their schemas.
 */
export async function buildApp({
  kernel,
  logger = false,
  bodyLimit = 64 * 1024,
  metrics = createMetrics(),
  maxInFlight = 1024,
  maxInFlightPerClient,
  targetLatencyMs,
  maxWaiting = 1000,
  approvalSweepMs,
  stuckAfterMs = 30_000,
  now = Date.now,
  publicUrl,
  metricsToken,
  pkcs11ModulePath,
  trustProxy = [],
  pages = {},
  servePages = true,
  upstreamRpc,
  rpcWaitSeconds = 8,
  rpcKeyInUrl = false,
  allowFrom,
  serveMetrics = true,
}: BuildAppOptions): Promise<FastifyInstance> {
  const allowed = allowFrom === undefined ? undefined : addressMatcher(allowFrom);
  const publicOrigin = publicUrl === undefined ? undefined : parsePublicUrl(publicUrl);
  if (!(Number.isFinite(rpcWaitSeconds) && rpcWaitSeconds >= 0 && rpcWaitSeconds <= 60))
    throw new CustosError('invalid_input', 'rpcWaitSeconds: expected 0–60 seconds', { details: { field: 'rpc-wait' } });
  /** The admitted requests' guard handles, to end their count against their client when the body is in. */
  const admitted = new WeakMap<FastifyRequest, AdmittedRequest>();
  const guard = createOverloadGuard({
    maxInFlight,
    stuckAfterMs,
    now,
    ...(targetLatencyMs === undefined ? {} : { targetLatencyMs }),
    ...(maxInFlightPerClient === undefined ? {} : { maxInFlightPerClient }),
  });
  // Long polls wait in a pool of their own: a thousand backends waiting for their owners leave the in-flight slots to signing.
  const waitingGuard = createOverloadGuard({ maxInFlight: maxWaiting, maxInFlightPerClient: maxWaiting, now });
  const app = Fastify({
    loggerInstance: logger === false ? undefined : logger,
    logger: logger === false ? false : undefined,
    ...requestLoggingOptions(),
    bodyLimit,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // the routes' validators and serializers, compiled once per process for every app with the same options
    schemaController: shareSchemaCompilers(),
    return503OnClosing: true,
    trustProxy: trustProxy.length === 0 ? false : [...trustProxy],
    // Requests the router refuses (bad percent-encoding, over-long parameters) get the same
    // error body and the same sealed rule as every other request.
    frameworkErrors: (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
      if (kernel.sealed) {
        void reply.status(503).send(errorBody(new CustosError('sealed', 'the signer is sealed')));
        return;
      }
      handleError(error, request, reply);
    },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  logRequests(app, PROBES);
  app.setErrorHandler(handleError);
  // The native API speaks JSON only: other media types are 415, not parsed as text.
  app.removeContentTypeParser('text/plain');
  // A bodiless POST that says application/json (curl -H 'content-type: application/json' -X POST …/seal)
  // is a POST without a body, as if it had no content type: routes that need a body refuse it by their
  // schema. A request no route matches is not parsed at all: it is 404 whatever its body and type.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (request.is404 || body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
  app.setNotFoundHandler((request, reply) => {
    if (kernel.sealed) {
      void reply.status(503).send(errorBody(new CustosError('sealed', 'the signer is sealed')));
      return;
    }
    void reply.status(404).send(errorBody(new CustosError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
  });
  overloadGuards.set(app, guard);
  // With a latency target, two more signs of overload refuse on arrival (the message says which):
  // the store's queue (its oldest unit has waited past max(target, 1 s)) and the event loop running
  // persistently late (requests wait unread while admitted work takes the CPU: loopLag.ts) by over
  // max(target / 2, 250 ms).
  const loopLag = targetLatencyMs === undefined ? undefined : monitorLoopLag();
  const behind = (): string | undefined => {
    if (targetLatencyMs === undefined) return undefined;
    if ((kernel.store.queueDelayMs?.() ?? 0) > Math.max(targetLatencyMs, MIN_QUEUE_DELAY_MS)) return 'the signer is at its limit of queued work; retry later';
    if ((loopLag?.ms ?? 0) > Math.max(targetLatencyMs / 2, MIN_LOOP_LAG_MS)) return 'the signer is running behind its requests; retry later';
    return undefined;
  };
  // Under overload, refused on arrival before Fastify sees them (earlyRefusal.ts): every request but
  // the probes, the long polls and the operator routes — and, under an address allowlist, only from
  // an address it names, as the socket shows it when no proxy is trusted (an address it does not
  // name learns nothing, not even the load). The rest meets the same guard in the onRequest hook below.
  let refusedSinceLog = 0;
  let lastRefusalLog = 0;
  setEarlyRefusal(
    app,
    createEarlyRefusal({
      shedding: () => guard.full() || behind() !== undefined,
      refusable: (req) => {
        const url = req.url ?? '/';
        if (url.startsWith(OPERATOR_PREFIX) || PROBES.has(url.split('?')[0] ?? '')) return false;
        // a long poll waits in its own pool (the app's guard decides)
        if ((req.method === 'GET' || req.method === 'HEAD') && url.includes('waitSeconds')) return false;
        // under an allowlist only an address it names may learn of the load: the socket's, when no proxy is trusted
        return allowed === undefined || (trustProxy.length === 0 && allowed(req.socket.remoteAddress ?? ''));
      },
      refused: () => {
        metrics.requests.inc({ route: 'refused on arrival', method: 'any', status: '503', outcome: 'overloaded' });
        metrics.denials.inc({ reason: 'overloaded' });
        refusedSinceLog += 1;
        const at = Date.now();
        if (at - lastRefusalLog >= 10_000) {
          app.log.warn(
            { errorCode: 'overloaded', refused: refusedSinceLog, inFlight: guard.inFlight, busy: guard.busy, limit: guard.limit },
            'requests refused on arrival: overloaded',
          );
          refusedSinceLog = 0;
          lastRefusalLog = at;
        }
      },
    }),
  );
  app.addHook('onRequest', async (request, reply) => {
    // The allowlist first: a client it does not name learns nothing else (request.ip follows trustProxy).
    if (allowed !== undefined && !isAdminSocketRequest(request) && !allowed(request.ip))
      throw new CustosError('forbidden_address', "this client's address may not use this listener", { details: { field: 'address' } });
    const path = request.url.split('?')[0] ?? '';
    if (PROBES.has(path)) return;
    countedRequests.add(request);
    // The router percent-decodes the path (`/v1/%73ys/status` is the status route): the rules go by
    // the route matched as well as by the raw path.
    const route = request.routeOptions.url ?? path;
    const operator = path.startsWith(OPERATOR_PREFIX) || route.startsWith(OPERATOR_PREFIX);
    // The operators' admin socket is never refused by a guard that network clients filled; a long
    // poll waits in a pool of its own.
    if (!isAdminSocketRequest(request)) {
      if (isLongPoll(request)) holdWaitingSlot(request, reply);
      else holdInFlightSlot(request, reply, operator);
    }
    if (operator) assertHostAndOrigin(request, publicOrigin);
    if (!(SEALED_ALLOWED.has(path) && SEALED_ALLOWED.has(route)) && kernel.sealed)
      throw new CustosError('sealed', 'the signer is sealed: only /v1/sys/status, /v1/sys/unseal and /v1/sys/unseal/reset are served');
    // After a failed audit write nothing is decided — no code checked, so no guess goes uncharged —
    // until a write commits again: Store.writable answers at once while writes work, else waits
    // for its one shared probe (docs/audit.md). Reads and the operator routes (status, seal) pass.
    if (
      request.method !== 'GET' &&
      request.method !== 'HEAD' &&
      !operator &&
      kernel.store.writable !== undefined &&
      !(await kernel.store.writable().catch(() => false))
    )
      throw new CustosError(
        'audit_unavailable',
        'audit records cannot be written (a write failed, and a probe write failed again): refused before any check, nothing was decided',
      );
  });
  /** Takes an in-flight slot (or refuses `overloaded`) and gives it back however the exchange ends. */
  function holdInFlightSlot(request: FastifyRequest, reply: FastifyReply, operator: boolean): void {
    // The operator routes (seal, unseal, status) meet only maxInFlight and the client's share: a
    // flood of valid requests that keeps the rate-based limit full, or the loop late, must not keep
    // the operator from sealing.
    // Behind (the store's queue, the event loop): refused on arrival, nothing done for it (a refusal
    // after authentication and derivation would cost nearly as much as a signature).
    const late = operator ? undefined : behind();
    if (late !== undefined) throw new CustosError('overloaded', late, { details: { retryAfterSeconds: 1 } });
    const release = guard.tryEnter(groupClientAddress(request.ip), { operator });
    if (release === undefined)
      throw new CustosError('overloaded', 'the signer is at its concurrency limit; retry later', { details: { retryAfterSeconds: 1 } });
    metrics.inFlight.set(guard.inFlight);
    // The slot is given back however the exchange ends: answered, or the connection closed before
    // (a body never finished, a timeout, an error) — onResponse is not called then. A pipelined
    // request whose response never got the socket only sees the socket close.
    admitted.set(request, release);
    whenExchangeEnds(request, reply, () => {
      release();
      metrics.inFlight.set(guard.inFlight);
    });
  }
  /** A long poll takes a slot of the waiting pool instead (or is refused `overloaded`), given back however it ends. */
  function holdWaitingSlot(request: FastifyRequest, reply: FastifyReply): void {
    // one key for all: the waiting pool has no per-client share
    const release = waitingGuard.tryEnter('waiting');
    if (release === undefined)
      throw new CustosError('overloaded', 'the signer is at its limit of waiting requests; retry later', { details: { retryAfterSeconds: 1 } });
    whenExchangeEnds(request, reply, release);
  }
  // Once its body is in, a request no longer counts against its client's share (only the global limit).
  app.addHook('preValidation', async (request) => {
    admitted.get(request)?.received();
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!countedRequests.delete(request)) return;
    const route = request.routeOptions.url ?? 'unmatched';
    const outcome = errorCodeOf(reply) ?? (reply.statusCode < 400 ? 'ok' : `http_${reply.statusCode}`);
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode), outcome });
    metrics.latency.observe({ route, outcome }, reply.elapsedTime / 1000);
    if (outcome !== 'ok') metrics.denials.inc({ reason: outcome });
  });
  const commits = (kernel.store as { commits?: GroupCommit }).commits;
  if (commits !== undefined) {
    commits.onBatch = (size, durationMs) => {
      metrics.batchSize.observe(size);
      metrics.commitLatency.observe(durationMs / 1000);
    };
  }

  // Requests refused `audit_rate_limited` are recorded as one record per API key and minute. The
  // kernel owns no timer: the app records the tallies of past minutes every 15 s, and all of them
  // when it closes (before the kernel is sealed and the store closed). A tally that fails is kept.
  const auditTallies = setInterval(() => {
    kernel.flushAuditRateLimited().catch((error: unknown) => app.log.error({ err: error }, 'audit.rate_limited tallies not recorded yet'));
  }, 15_000);
  auditTallies.unref();
  app.addHook('onClose', async () => {
    clearInterval(auditTallies);
    loopLag?.stop();
    await kernel.flushAuditRateLimited({ all: true }).catch((error: unknown) => app.log.error({ err: error }, 'audit.rate_limited tallies not recorded'));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Custos signing kernel',
        version: KERNEL_VERSION,
        description: 'Native REST API (/v1) and the TOTP ETH Signer compatibility API (/sys/v1). Errors: docs/errors.md.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <API key>' },
          basicApiKey: { type: 'http', scheme: 'basic', description: 'Compatibility API: Authorization: Basic <API key, verbatim>' },
          bearer: { type: 'http', scheme: 'bearer', description: 'Compatibility API: Authorization: Bearer <access_token>' },
        },
      },
    },
  });

  await app.register(probeRoutes, { kernel, metrics, guard, serveMetrics, ...(metricsToken === undefined ? {} : { metricsToken }) });
  await app.register(sysRoutes, { kernel, ...(pkcs11ModulePath === undefined ? {} : { pkcs11ModulePath }) });
  await app.register(v1Routes, { kernel });
  await app.register(apiKeyRoutes, { kernel });
  await app.register(quorumRoutes, { kernel });
  await app.register(auditRoutes, { kernel });

  await app.register(chainRoutes, { kernel });
  await app.register(compatRoutes, { kernel, bodyLimit });
  const pagesPort = typeof servePages === 'object' ? servePages.port : undefined;
  const publicBaseUrl = (request: FastifyRequest) =>
    publicOrigin?.origin ?? `${isTls(request) ? 'https' : 'http'}://localhost:${pagesPort?.() ?? request.raw.socket.localPort ?? DEFAULT_PORT}`;
  await app.register(approvalRoutes, { kernel, publicBaseUrl, ...(approvalSweepMs === undefined ? {} : { sweepMs: approvalSweepMs }) });
  await app.register(enrollmentRoutes, { kernel, publicBaseUrl });
  await app.register(changeRoutes, { kernel, publicBaseUrl });
  await app.register(policyRoutes, { kernel, publicBaseUrl });
  await app.register(rpcRoutes, {
    kernel,
    upstream: createUpstream(upstreamRpc),
    rpcWaitMs: rpcWaitSeconds * 1000,
    keyInUrl: rpcKeyInUrl,
    publicBaseUrl,
    // a JSON-RPC call waiting for the owner counts in the long polls' pool, and leaves its in-flight
    // slot to signing meanwhile (as a long poll takes none)
    enterWaiting: (request: FastifyRequest) => {
      const release = waitingGuard.tryEnter('waiting');
      if (release === undefined) return undefined;
      admitted.get(request)?.();
      metrics.inFlight.set(guard.inFlight);
      return release;
    },
    // a call forwarded to the node keeps its slot but is not busy while the node answers: a slow
    // node must not fill the rate-based limit and refuse signing while the kernel idles
    awayWhile: async <T>(request: FastifyRequest, work: () => Promise<T>): Promise<T> => {
      const back = admitted.get(request)?.away();
      try {
        return await work();
      } finally {
        back?.();
      }
    },
  });
  await app.register(hwkeyRoutes, { kernel });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // The OpenAPI document as a browsable page (issue 15 point 7): Swagger UI's files from node_modules,
  // nothing from another origin (its validator badge off), under a CSP that allows only this origin.
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    validatorUrl: false,
    uiConfig: { deepLinking: true },
    staticCSP: DOCS_CSP,
  });
  // what each error code means: the target of every error body's `docs` URL
  await app.register(docsPage);
  // the kernel's own pages (pages/): HTML, no API key, the capability in the URL is the authority;
  // with a public listener of their own they are served there only (buildPagesApp)
  if (servePages === true) await app.register(pageRoutes, { ...pages, kernel, ...(publicUrl === undefined ? {} : { publicUrl }) });
  await app.ready();
  return app;
}

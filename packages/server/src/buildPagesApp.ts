import { CustosError, isCustosError, type Kernel } from '@custos/kernel';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { whenExchangeEnds } from './buildApp.js';
import { assertHost, parsePublicUrl } from './checkHostAndOrigin.js';
import { type AdmittedRequest, createOverloadGuard } from './createOverloadGuard.js';
import { errorCodeOf } from './errorHandler.js';
import { groupClientAddress } from './groupClientAddress.js';
import type { Metrics } from './metrics.js';
import { newNonce, pageHeaders } from './pages/pageHeaders.js';
import { failureNotice, type Notice, type PageOptions, pageRoutes } from './pages/pageRoutes.js';
import { renderNoticePage } from './pages/renderApprovalPage.js';
import { logRequests, requestLoggingOptions } from './requestLogging.js';
import { shareSchemaCompilers } from './shareSchemaCompilers.js';

export interface BuildPagesAppOptions {
  kernel: Kernel;
  /** The pages' brand, language and token list (as on the API listener). */
  pages?: PageOptions;
  /** `--public-url`: the only Host besides localhost and the listening address, and the pages' origin. */
  publicUrl?: string;
  /** The API listener's logger: the same request serializer (no query string, capabilities redacted). */
  logger?: Logger | false;
  /** Requests served at once on this listener, in a pool of its own (default 1024); see BuildAppOptions. */
  maxInFlight?: number;
  maxInFlightPerClient?: number;
  /** Reverse proxies whose X-Forwarded-For is believed (see BuildAppOptions). */
  trustProxy?: readonly string[];
  /** The API listener's metrics: page requests are counted there too. */
  metrics?: Metrics;
}

/** The pages' listener serves no probe: every request is logged at `info`. */
const NO_PROBES: ReadonlySet<string> = new Set();
const WRONG_HOST: Notice = { status: 403, title: 'Wrong address', text: ['This signer does not answer under this address.'] };
const NOT_FOUND: Notice = {
  status: 404,
  title: 'Page not found',
  text: ['There is nothing at this address.', 'Check that the link was copied whole.'],
};

/**
 * The app of the public listener (`custos serve --public-listen HOST:PORT`): the kernel's pages
 * (pageRoutes: the approval and enrolment pages and their assets) and nothing else — no /v1, no
 * compatibility API, no probes. Anything else is a 404 page with the page headers. This is the
 * listener an operator exposes to wallet owners' browsers; the API listener, which holds the API
 * keys' routes and the operator routes, then needs no exposure beyond the wallet backend's network.
 *
 * Every request must name this signer in `Host` (its listening address, localhost or the public
 * URL's host: DNS rebinding gets nothing), has its in-flight slot in a pool of its own (a flood of
 * page requests cannot take the API's slots), and is logged by the API's logger (the URL without
 * its query string, the capability redacted).
 */
export async function buildPagesApp({
  kernel,
  pages = {},
  publicUrl,
  logger = false,
  maxInFlight = 1024,
  maxInFlightPerClient,
  trustProxy = [],
  metrics,
}: BuildPagesAppOptions): Promise<FastifyInstance> {
  const publicOrigin = publicUrl === undefined ? undefined : parsePublicUrl(publicUrl);
  const { brandName = 'Custos', lang = 'en' } = pages;
  const sendNotice = (reply: FastifyReply, notice: Notice) => {
    const nonce = newNonce();
    return reply.status(notice.status).headers(pageHeaders(nonce)).send(renderNoticePage({ brandName, lang, nonce }, notice));
  };
  /** A failure outside the pages' own handlers (the router, a refused Host, the guard, sealed) as a page, as the pages answer theirs. */
  const sendFailure = (error: unknown, request: FastifyRequest, reply: FastifyReply) => sendNotice(reply, failureNotice(request, reply, error).notice);

  const admitted = new WeakMap<FastifyRequest, AdmittedRequest>();
  const guard = createOverloadGuard({ maxInFlight, ...(maxInFlightPerClient === undefined ? {} : { maxInFlightPerClient }) });
  const app = Fastify({
    loggerInstance: logger === false ? undefined : logger,
    logger: logger === false ? false : undefined,
    // The pages are public: their request ids are always made here, never taken from a visitor's header.
    ...requestLoggingOptions({ acceptClientId: false }),
    return503OnClosing: true,
    // the routes' validators and serializers, compiled once per process for every app with the same options
    schemaController: shareSchemaCompilers(),
    trustProxy: trustProxy.length === 0 ? false : [...trustProxy],
    frameworkErrors: sendFailure,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  logRequests(app, NO_PROBES);
  app.setErrorHandler(sendFailure);
  app.setNotFoundHandler((_request, reply) => sendNotice(reply, NOT_FOUND));
  // Nothing but the pages' forms is read on this listener (pageRoutes adds its own parser).
  app.removeAllContentTypeParsers();

  app.addHook('onRequest', async (request, reply) => {
    const release = guard.tryEnter(groupClientAddress(request.ip));
    if (release === undefined)
      throw new CustosError('overloaded', 'the signer is at its concurrency limit; retry later', { details: { retryAfterSeconds: 1 } });
    admitted.set(request, release);
    whenExchangeEnds(request, reply, release);
    try {
      assertHost(request, publicOrigin);
    } catch (error) {
      if (!isCustosError(error) || error.code !== 'forbidden_host') throw error;
      request.log.info({ errorCode: 'forbidden_host' }, 'page refused: forbidden_host');
      return sendNotice(reply, WRONG_HOST);
    }
    // What is not a page is not found, whatever its body (nothing is parsed for it) and whether sealed or not.
    if (request.routeOptions.url === undefined) return sendNotice(reply, NOT_FOUND);
    // The pages show the sealed notice (pageRoutes' error handler).
    if (kernel.sealed) throw new CustosError('sealed', 'the signer is sealed: its pages can neither show nor decide requests');
    // after a failed audit write, no decision (no code checked) until a write commits again — as on the API listener (buildApp)
    if (request.method !== 'GET' && request.method !== 'HEAD' && kernel.store.writable !== undefined && !(await kernel.store.writable().catch(() => false)))
      throw new CustosError(
        'audit_unavailable',
        'audit records cannot be written (a write failed, and a probe write failed again): refused before any check, nothing was decided',
      );
  });
  app.addHook('preValidation', async (request) => {
    admitted.get(request)?.received();
  });
  if (metrics !== undefined)
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const outcome = errorCodeOf(reply) ?? (reply.statusCode < 400 ? 'ok' : `http_${reply.statusCode}`);
      metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode), outcome });
      metrics.latency.observe({ route, outcome }, reply.elapsedTime / 1000);
    });

  await app.register(pageRoutes, { ...pages, kernel, ...(publicUrl === undefined ? {} : { publicUrl }) });
  await app.ready();
  return app;
}

import { CustosError, type Kernel } from '@custos/kernel';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { OverloadGuard } from './createOverloadGuard.js';
import { errorBody, handleError } from './errorHandler.js';
import type { Metrics } from './metrics.js';
import { logRequests, requestLoggingOptions } from './requestLogging.js';
import { probeRoutes } from './routes/probeRoutes.js';

export interface BuildOpsAppOptions {
  kernel: Kernel;
  /** The API app's metrics (what /metrics shows) and in-flight guard (what /readyz reports stuck). */
  metrics: Metrics;
  guard: OverloadGuard;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`, here as on the API listener. */
  metricsToken?: string;
  logger?: Logger | false;
}

/** Every request here is a probe: logged at debug, as the API listener logs its probes. */
const ALL_PROBES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The app of the operations listener (`custos serve --ops-listen HOST:PORT`): `/healthz`, `/readyz`
 * and `/metrics` (probeRoutes, on the API app's metrics and guard) and nothing else — no /v1, no
 * pages, no OpenAPI document; anything else is 404 `not_found`, sealed or not. It reads no body. It
 * is the listener an orchestrator's probes and a Prometheus scraper reach on a private network,
 * plain HTTP (startServer decides where that is allowed); the API listener then serves no /metrics.
 */
export async function buildOpsApp({ kernel, metrics, guard, metricsToken, logger = false }: BuildOpsAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger === false ? undefined : logger,
    logger: logger === false ? false : undefined,
    ...requestLoggingOptions({ acceptClientId: false }),
    return503OnClosing: true,
    frameworkErrors: handleError,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  logRequests(app, ALL_PROBES);
  app.setErrorHandler(handleError);
  app.removeAllContentTypeParsers();
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody(new CustosError('not_found', `no route ${request.method} ${request.url.split('?')[0]} on the operations listener`)));
  });
  await app.register(probeRoutes, { kernel, metrics, guard, ...(metricsToken === undefined ? {} : { metricsToken }) });
  await app.ready();
  return app;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/swagger';
import { CustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { OverloadGuard } from '../createOverloadGuard.js';
import type { Metrics } from '../metrics.js';

/**
 * Operational probes, served sealed or not and never refused as overloaded:
 * - `/healthz`: the process is up and serving HTTP;
 * - `/readyz`: it can serve traffic — unsealed, the store answers, its writes (audit appends) work,
 *   and the in-flight guard is not stuck at its limit (503 otherwise). After a write failed, each
 *   call tries one probe write (Store.writable): the kernel turns ready again by itself once the
 *   store can write, without a restart;
 * - `/metrics`: Prometheus text format (behind a bearer token when one is configured).
 */
export async function probeRoutes(
  app: FastifyInstance,
  {
    kernel,
    metrics,
    guard,
    metricsToken,
    serveMetrics = true,
  }: {
    kernel: Kernel;
    metrics: Metrics;
    guard: OverloadGuard;
    metricsToken?: string;
    /** false: no /metrics here (an operations listener serves it: custos serve --ops-listen). */
    serveMetrics?: boolean;
  },
): Promise<void> {
  app.get(
    '/healthz',
    { schema: { hide: true, summary: 'Liveness', tags: ['ops'], response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
    async () => ({
      status: 'ok',
    }),
  );

  const readiness = {
    type: 'object',
    required: ['ready', 'sealed', 'store', 'audit', 'inFlight', 'maxInFlight', 'guard'],
    properties: {
      ready: { type: 'boolean' },
      sealed: { type: 'boolean' },
      store: { type: 'string', enum: ['ok', 'unreachable'] },
      audit: { type: 'string', enum: ['ok', 'failing'] },
      inFlight: { type: 'integer' },
      maxInFlight: { type: 'integer' },
      guard: { type: 'string', enum: ['ok', 'stuck'] },
    },
  } as const;
  app.get(
    '/readyz',
    {
      schema: {
        hide: true,
        summary: 'Readiness: unsealed, the store reachable, audit writes working, the in-flight guard not stuck',
        tags: ['ops'],
        response: { 200: readiness, 503: readiness },
      },
    },
    async (_request, reply) => {
      const sealed = kernel.sealed;
      const storeOk = await kernel.store.ping().catch(() => false);
      // after a failed audit write: a probe write, whose success clears the failure
      const auditOk = storeOk && (kernel.store.writable === undefined || (await kernel.store.writable().catch(() => false)));
      // stuck: at the limit for the whole window with no request completing — never mere load
      const stuck = guard.stuck();
      const ready = !sealed && storeOk && auditOk && !stuck;
      void reply.status(ready ? 200 : 503);
      return {
        ready,
        sealed,
        store: storeOk ? 'ok' : 'unreachable',
        audit: auditOk ? 'ok' : 'failing',
        inFlight: guard.inFlight,
        maxInFlight: guard.maxInFlight,
        guard: stuck ? 'stuck' : 'ok',
      };
    },
  );

  if (!serveMetrics) return;
  // compared as SHA-256 digests: constant time whatever the length of what was sent
  const expected = metricsToken === undefined ? undefined : digest(metricsToken);
  app.get('/metrics', { schema: { hide: true, summary: 'Prometheus metrics', tags: ['ops'] } }, async (request, reply) => {
    if (expected !== undefined) {
      const m = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '');
      if (m?.[1] === undefined || !timingSafeEqual(digest(m[1]), expected))
        throw new CustosError('unauthorized', 'GET /metrics needs Authorization: Bearer <metrics token>', { details: { field: 'authorization' } });
    }
    metrics.sealed.set(kernel.sealed ? 1 : 0);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics.js';

/**
 * Operational probes, served sealed or not and never refused as overloaded:
 * - `/healthz`: the process is up and serving HTTP;
 * - `/readyz`: it can serve traffic — unsealed and the store answers (503 otherwise);
 * - `/metrics`: Prometheus text format.
 */
export async function probeRoutes(app: FastifyInstance, { kernel, metrics }: { kernel: Kernel; metrics: Metrics }): Promise<void> {
  app.get(
    '/healthz',
    { schema: { hide: true, summary: 'Liveness', tags: ['ops'], response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
    async () => ({
      status: 'ok',
    }),
  );

  const readiness = {
    type: 'object',
    required: ['ready', 'sealed', 'store'],
    properties: { ready: { type: 'boolean' }, sealed: { type: 'boolean' }, store: { type: 'string', enum: ['ok', 'unreachable'] } },
  } as const;
  app.get(
    '/readyz',
    { schema: { hide: true, summary: 'Readiness: unsealed and the store reachable', tags: ['ops'], response: { 200: readiness, 503: readiness } } },
    async (_request, reply) => {
      const sealed = kernel.sealed;
      const storeOk = await kernel.store.ping().catch(() => false);
      const ready = !sealed && storeOk;
      void reply.status(ready ? 200 : 503);
      return { ready, sealed, store: storeOk ? 'ok' : 'unreachable' };
    },
  );

  app.get('/metrics', { schema: { hide: true, summary: 'Prometheus metrics', tags: ['ops'] } }, async (_request, reply) => {
    metrics.sealed.set(kernel.sealed ? 1 : 0);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The kernel's Prometheus metrics, in a registry of its own (no process-wide default registry).
 * Labels carry route patterns, outcomes and error codes only — never a wallet name, key or code.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'custos_' });
  const requests = new Counter({
    name: 'custos_http_requests_total',
    help: 'HTTP requests by route pattern, method and outcome (ok or the error code)',
    labelNames: ['route', 'method', 'status', 'outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'custos_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and outcome',
    labelNames: ['route', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const denials = new Counter({
    name: 'custos_denials_total',
    help: 'Requests refused, by reason (the error code)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const commitLatency = new Histogram({
    name: 'custos_audit_commit_duration_seconds',
    help: 'Duration of one group-commit transaction (consume consents + append audit records + COMMIT)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'custos_commit_batch_size',
    help: 'Units of work (requests) per group-commit transaction',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const sealed = new Gauge({ name: 'custos_sealed', help: '1 while the signer is sealed, 0 when unsealed', registers: [registry] });
  const inFlight = new Gauge({ name: 'custos_http_in_flight', help: 'Requests being served', registers: [registry] });
  return { registry, requests, latency, denials, commitLatency, batchSize, sealed, inFlight };
}

export type Metrics = ReturnType<typeof createMetrics>;

import { type App, CustosError, type Kernel } from '@custos/kernel';
import type { FastifyRequest } from 'fastify';

/** Reads `Authorization: <scheme> <credential>`; anything else is unauthorized. */
export function readAuthorization(request: FastifyRequest, scheme: 'Bearer' | 'Basic'): string {
  const header = request.headers.authorization;
  if (typeof header !== 'string') throw new CustosError('unauthorized', `missing Authorization: ${scheme} header`);
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== scheme.toLowerCase()) {
    throw new CustosError('unauthorized', `expected Authorization: ${scheme} <credential>`);
  }
  return header.slice(space + 1).trim();
}

/** Native API: `Authorization: Bearer <apiKey>`. */
export function authenticateApiKey(kernel: Kernel, request: FastifyRequest): Promise<App> {
  return kernel.authenticateApiKey(readAuthorization(request, 'Bearer'));
}

/** The Idempotency-Key header as sent (the kernel checks its form); undefined when absent. */
export function idempotencyKeyOf(request: FastifyRequest): unknown {
  return request.headers['idempotency-key'];
}

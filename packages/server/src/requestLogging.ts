import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';

/** The header a request's id travels in, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** A request id taken from the client as it is: a plain token, so that a header never injects anything into a log line. */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's `X-Request-Id` when it is a plain token (at most 128 letters, digits, `.`, `_`, `:`, `-`), else a new random UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Fastify's options for request ids and request logging (both listeners): the id from requestIdOf,
 * logged as `requestId` in every line of the request (Fastify's request logger is a child bound to
 * it); Fastify's own request lines are off, logRequests writes them instead.
 */
export function requestLoggingOptions({ acceptClientId = true }: { acceptClientId?: boolean } = {}) {
  return {
    requestIdHeader: false as const,
    genReqId: acceptClientId ? requestIdOf : () => randomUUID(),
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
  };
}

/**
 * The request lines (`incoming request`, `request completed`, as Fastify writes them) — at `debug`
 * for the probes, which an orchestrator calls every few seconds, at `info` for everything else — and
 * the id echoed in `X-Request-Id` on every answer, errors included. Registered before any other hook,
 * so that a request a later hook refuses is logged too.
 */
export function logRequests(app: FastifyInstance, probes: ReadonlySet<string>): void {
  const levelOf = (request: FastifyRequest) => (probes.has(request.url.split('?')[0] ?? '') ? 'debug' : 'info');
  app.addHook('onRequest', async (request) => {
    request.log[levelOf(request)]({ req: request }, 'incoming request');
  });
  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log[levelOf(request)]({ res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed');
  });
}

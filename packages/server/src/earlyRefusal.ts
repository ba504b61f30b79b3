import type { IncomingMessage, ServerResponse } from 'node:http';
import { CustosError } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { errorBody } from './errorHandler.js';
import { REQUEST_ID_HEADER, requestIdOf } from './requestLogging.js';

/**
 * Refusing under overload before the framework sees a request (issue 14, point 5). While the kernel
 * sheds load, a request that may be refused is answered here, from the listener's own handler
 * (createListener), with a body serialised once: 503 `overloaded`, `Retry-After: 1`, its
 * `X-Request-Id`. Refused inside Fastify (routing, hooks, an error object and its stack, the error
 * handler, serialisation, two log lines) a request cost about half as much CPU as a signature: at
 * twice the rate the kernel serves, the refusals alone took its CPU, it served a fifth of its rate
 * and requests waited unread past their clients' timeouts. What is not refused here goes to
 * Fastify, whose own admission (the same guard, the per-client share) and checks apply as before.
 */
export type EarlyRefusal = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface EarlyRefusalOptions {
  /** Whether the kernel sheds load now (the in-flight guard at its limit, the store's queue too long). */
  shedding(): boolean;
  /** Whether this request may be refused here (cheap checks on the method, the raw path, the socket). */
  refusable(req: IncomingMessage): boolean;
  /** Called for each refusal (metrics, the periodic log line). */
  refused(): void;
}

/** The message of an early refusal (the same code and Retry-After as a refusal by the guard in Fastify). */
export const EARLY_REFUSAL_MESSAGE = 'the signer is at its limit; retry later';

export function createEarlyRefusal({ shedding, refusable, refused }: EarlyRefusalOptions): EarlyRefusal {
  const body = Buffer.from(JSON.stringify(errorBody(new CustosError('overloaded', EARLY_REFUSAL_MESSAGE, { details: { retryAfterSeconds: 1 } }))), 'utf8');
  return (req, res) => {
    if (!shedding() || !refusable(req)) return false;
    refused();
    // The body of the request, if any, is read and dropped by Node once this answer ends (the
    // connection stays usable for the next request).
    res.writeHead(503, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
      'retry-after': '1',
      [REQUEST_ID_HEADER]: requestIdOf(req),
    });
    res.end(body);
    return true;
  };
}

const earlyRefusals = new WeakMap<FastifyInstance, EarlyRefusal>();

/** Registers the early refusal of an app (buildApp); createListener calls it before the app's router. */
export function setEarlyRefusal(app: FastifyInstance, refusal: EarlyRefusal): void {
  earlyRefusals.set(app, refusal);
}

export function earlyRefusalOf(app: FastifyInstance): EarlyRefusal | undefined {
  return earlyRefusals.get(app);
}

import { CustosError, isCustosError } from '@custos/kernel';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** How much of a caller's member name is echoed into an error message. */
const SHOWN = 64;

/** Where the signer explains each code (`GET /docs/errors`, docsPage.ts): the code's anchor is that of its section of docs/errors.md. */
export function errorDocsUrl(error: CustosError): string {
  return `/docs/errors#${error.docsPath.split('#')[1] ?? ''}`;
}

/** The one body every error takes: its code, message, details, and the URL of the code's explanation (relative to the signer's origin). */
export function errorBody(error: CustosError): { error: { code: string; message: string; details: Record<string, unknown>; docs: string } } {
  return { error: { ...error.toJSON(), docs: errorDocsUrl(error) } };
}

/**
 * Maps every failure to a CustosError and its status from the one table. Input problems found
 * by Fastify (schema validation, unparseable JSON, body size, content type) become 4xx with the
 * field named; anything unexpected is a 500 `internal`, logged with its cause, never echoed.
 */
export function toCustosError(error: unknown): CustosError {
  if (isCustosError(error)) return error;
  const e = error as FastifyError & {
    validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>;
    validationContext?: string;
  };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    const first = e.validation[0];
    // JSON pointer → the kernel's field paths: /transaction/accessList/0/address → transaction.accessList[0].address;
    // member names in the path and an unknown member's name are the caller's: cut to 64 characters
    // each (as the kernel's assertFields does) so that a huge key is not echoed or logged whole
    const fromPath = (first?.instancePath ?? '')
      .replace(/^\//, '')
      .split('/')
      .map((segment) => segment.slice(0, SHOWN))
      .join('/')
      .replace(/\/([0-9]+)(?=\/|$)/g, '[$1]')
      .replaceAll('/', '.');
    const missing = typeof first?.params?.missingProperty === 'string' ? first.params.missingProperty : undefined;
    const extra = typeof first?.params?.additionalProperty === 'string' ? first.params.additionalProperty.slice(0, SHOWN) : undefined;
    const field = [fromPath, missing ?? extra].filter((s) => s !== undefined && s !== '').join('.') || (e.validationContext ?? 'body');
    const what = extra !== undefined ? 'is not a known field' : (first?.message ?? 'is invalid');
    return new CustosError('invalid_input', `${field}: ${what}`, { details: { field, in: e.validationContext ?? 'body' } });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CustosError('body_too_large', 'the request body is too large', { details: { field: 'body' } });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CustosError('unsupported_media_type', 'the request body must be application/json', { details: { field: 'content-type' } });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CustosError('invalid_input', 'body: expected a JSON object, got an empty body', { details: { field: 'body' } });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CustosError('invalid_input', 'content-length does not match the body', { details: { field: 'content-length' } });
    default:
      break;
  }
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new CustosError('invalid_input', 'body: expected valid JSON', { details: { field: 'body' } });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new CustosError('invalid_input', `request: ${e.code ?? 'rejected'}`, { details: { field: 'request' } });
  }
  return new CustosError('internal', 'internal failure; nothing was signed', { cause: error });
}

/** 5xx answers that describe a state of the service, not a fault: no stack trace, not at error level. */
const EXPECTED_UNAVAILABLE = new Set<string>(['sealed', 'not_initialized', 'overloaded']);

const errorCodes = new WeakMap<FastifyReply, string>();

/** The error code a reply was sent with (for metrics), if it was an error. */
export function errorCodeOf(reply: FastifyReply): string | undefined {
  return errorCodes.get(reply);
}

export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const custos = toCustosError(error);
  errorCodes.set(reply, custos.code);
  if (EXPECTED_UNAVAILABLE.has(custos.code)) request.log.info({ errorCode: custos.code }, `request refused: ${custos.code}`);
  else if (custos.status >= 500)
    request.log.error({ err: custos, errorCode: custos.code, cause: describeCause(custos.cause) }, `request failed: ${custos.code}`);
  else request.log.info({ errorCode: custos.code, field: custos.details.field }, `request denied: ${custos.code}`);
  const retryAfter = custos.details.retryAfterSeconds;
  if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  void reply.status(custos.status).send(errorBody(custos));
}

function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}

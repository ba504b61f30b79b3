import { type CustosError, ERROR_CODES, isCustosError } from '@custos/kernel';
import type { FastifyReply } from 'fastify';

/**
 * What the change and enrolment pages do with a posted form (beside pageForms.ts, which parses it):
 * read a field posted exactly once, and answer a kernel refusal. One place, so both pages refuse alike.
 */

/** A form field posted exactly once, else undefined (a field given twice is no answer). */
export function onlyField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'string') return undefined;
  const all = new URLSearchParams(body).getAll(name);
  return all.length === 1 ? all[0] : undefined;
}

/**
 * Runs a posted step and answers what the kernel refused: its link's not-found code → the page's
 * not-found notice; a refusal the page shows above itself (`refusals`: the link is fine, the answer
 * was not) → the page again with that error, at the error's HTTP status; anything else is thrown
 * (the server's error handler answers it, and logs it).
 */
export async function answerPostedStep(
  step: () => Promise<FastifyReply>,
  on: {
    notFoundCode: CustosError['code'];
    refusals: ReadonlySet<string>;
    notFound(): FastifyReply;
    refused(status: number, error: CustosError): Promise<FastifyReply>;
  },
): Promise<FastifyReply> {
  try {
    return await step();
  } catch (error) {
    if (!isCustosError(error)) throw error;
    if (error.code === on.notFoundCode) return on.notFound();
    if (!on.refusals.has(error.code)) throw error;
    return on.refused(ERROR_CODES[error.code].status, error);
  }
}

/** JSON schemas shared by the routes. Responses are schemas too: what is not declared is not sent. */
export const walletNameSchema = { type: 'string', minLength: 1, maxLength: 256, description: 'Opaque, case-sensitive wallet name' } as const;
export const keyIndexSchema = { type: 'integer', minimum: 0, maximum: 2147483647, description: 'Key index, 0 ≤ k < 2^31' } as const;
export const keyIndexQuerySchema = { type: 'string', pattern: '^(0|[1-9][0-9]{0,9})$', description: 'Key index as a decimal string, 0 ≤ k < 2^31' } as const;
export const hex32Schema = { type: 'string', pattern: '^(0x)?[0-9a-fA-F]{64}$', description: '32 bytes, hex' } as const;
export const codeSchema = { type: 'string', pattern: '^[0-9]{6}$', description: 'The current 6-digit TOTP code' } as const;
/** An approval's id (POST /v1/approvals): 16 random bytes as 32 lowercase hex digits. */
export const approvalIdSchema = { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'An approval id: 32 lowercase hex digits' } as const;
/** On a sign route: an approved approval of this very operation, instead of `code` (both: invalid_input). */
export const signApprovalIdSchema = {
  ...approvalIdSchema,
  description: 'Instead of code: the id of an approval the owner approved for exactly this operation (POST /v1/approvals); not together with code',
} as const;

export const errorResponseSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
        docs: {
          type: 'string',
          description: "The code's explanation: /docs/errors#<code, _ as ->, on this signer (the section of docs/errors.md of the same anchor)",
        },
      },
    },
  },
} as const;

/** Error responses every authenticated route can give. */
export const commonErrorResponses = {
  400: errorResponseSchema,
  401: errorResponseSchema,
  403: errorResponseSchema,
  404: errorResponseSchema,
  409: errorResponseSchema,
  413: errorResponseSchema,
  415: errorResponseSchema,
  429: errorResponseSchema,
  500: errorResponseSchema,
  503: errorResponseSchema,
} as const;

/**
 * The Idempotency-Key request header of the sign and approval-creation routes (docs/idempotency.md).
 * Its form is checked by the kernel (invalid_input naming the header), so that one place decides it.
 */
export const idempotencyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      description:
        'Optional, 1–128 characters of A–Z a–z 0–9 . _ : ~ + / = - (else 400 invalid_input, field Idempotency-Key). A retry with the same key (per API key, kept 24 h) and the same operation — compared without code and approvalId — returns the stored result; nothing is decided again, no code is checked or spent. The same key with another operation: 409 idempotency_conflict. Only successes are stored. See docs/idempotency.md.',
    },
  },
} as const;

import type {} from '@fastify/swagger';
import type { Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { approvalIdSchema, commonErrorResponses, walletNameSchema } from '../schemas.js';
import { APPROVAL_ROUTE, approvalViewSchema } from './approvalRoutes.js';
import { authenticateApiKey } from './authenticate.js';

const bearer = [{ apiKey: [] }];
const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: approvalIdSchema } } as const;

/** POST /v1/factors: the enrolled hardware key as the kernel will verify its answers. */
export const enrolledHwkeySchema = {
  type: 'object',
  required: ['walletName', 'kind', 'publicKey', 'subpath', 'enrolledVia'],
  additionalProperties: false,
  properties: {
    walletName: { type: 'string' },
    kind: { type: 'string', enum: ['hwkey'] },
    publicKey: { type: 'string', description: 'The key derived from the xpub along the subpath (or the bare key): 33 bytes compressed, hex' },
    subpath: { type: 'string', description: 'The subpath in its canonical form ("0/5"; "" for none): the card signs at this path below its account xpub' },
    enrolledVia: { type: 'string', enum: ['api'], description: 'Enrolled by the backend: its answers count as present at most' },
  },
} as const;

/** POST /v1/approvals/{id}/hwkey-challenge: what the card signs. */
export const hwkeyChallengeSchema = {
  type: 'object',
  required: ['digest', 'subpath', 'expiresAt'],
  additionalProperties: false,
  properties: {
    digest: {
      type: 'string',
      description:
        'The 32-byte digest the card signs raw (hex): SHA-256(utf8("custos.hwkey.v1\\0") ‖ signerId ‖ approvalId ‖ opHash ‖ nonce), the nonce the kernel’s',
    },
    subpath: { type: 'string', description: 'The subpath to sign at, below the card’s account xpub ("" for a bare key)' },
    expiresAt: { type: 'integer', description: 'ms since the epoch: the approval’s expiry (the challenge never outlives it)' },
  },
} as const;

/**
 * Hardware keys (hwkey, TAPSIGNER style) through the API: enrolment by the backend (scope
 * `register`, only for a wallet with no factor, then `present` at most), a challenge for one
 * approval, and the card's answer relayed by the backend (`present`). The kernel owns every rule
 * (consent/hwkeyFactor.ts, kernel/approvals.ts). See docs/hwkey.md.
 */
export async function hwkeyRoutes(app: FastifyInstance, { kernel }: { kernel: Kernel }): Promise<void> {
  app.post<{ Body: { walletName: string; kind: 'hwkey'; xpub?: string; publicKey?: string; subpath?: string } }>(
    '/v1/factors',
    {
      schema: {
        summary: 'Enrol a hardware key (TAPSIGNER style) for a wallet with no factor yet (scope: register)',
        description:
          'kind hwkey: the card’s account xpub (as its xpub command returns it; xpub or tpub, never a private xprv) with a non-hardened subpath of at most 2 steps ("0/5" or "m/0/5"), or a bare compressed publicKey. Only for a wallet with no factor (else already_enrolled); refused backend_enrollment_disabled under --backend-enrollment off. Marked enrolledVia api: its answers count as present at most, and every approval page says so. Audited as hwkey.enroll. See docs/hwkey.md.',
        tags: ['factors'],
        security: bearer,
        body: {
          type: 'object',
          required: ['walletName', 'kind'],
          additionalProperties: false,
          properties: {
            walletName: walletNameSchema,
            kind: { type: 'string', enum: ['hwkey'], description: 'The factor to enrol (hwkey)' },
            xpub: { type: 'string', maxLength: 200, description: 'The card’s account extended public key (xpub/tpub, base58)' },
            publicKey: { type: 'string', maxLength: 200, description: 'Or a bare compressed public key: 66 hex digits' },
            subpath: { type: 'string', maxLength: 64, description: 'With xpub: up to 2 non-hardened steps, "0/5" or "m/0/5"' },
          },
        },
        response: { 200: enrolledHwkeySchema, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { walletName, xpub, publicKey, subpath } = request.body;
      return kernel.enrollHwkey(await authenticateApiKey(kernel, request), { walletName, xpub, publicKey, subpath });
    },
  );

  app.post<{ Params: { id: string } }>(
    `${APPROVAL_ROUTE}/hwkey-challenge`,
    {
      schema: {
        summary: 'A hardware-key challenge for a pending approval (scope: sign)',
        description: `Returns the digest the wallet's card must sign raw at the subpath; a new challenge replaces the previous one, and any answer spends it. At most 20 per wallet per 10 minutes (hwkey_challenge_rate_limited, with Retry-After). The wallet must have an hwkey (factor_required). Issued as a relay's: a relayed answer counts as present, so where the approval requires bound (a wallet whose card was enrolled on the kernel's page) it is refused up front with consent_too_weak — not counted, and the nonce of the owner's page is left as it is (the card approves such a wallet only on the approval page, in the browser it was enrolled in). Not audited (the decision is). See docs/hwkey.md.`,
        tags: ['approvals'],
        security: bearer,
        params: idParams,
        response: { 200: hwkeyChallengeSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.issueHwkeyChallenge(await authenticateApiKey(kernel, request), { id: request.params.id }),
  );

  app.post<{ Params: { id: string }; Body: { signature: string } }>(
    `${APPROVAL_ROUTE}/hwkey`,
    {
      schema: {
        summary: 'Relay the card’s answer to the approval’s hardware-key challenge (scope: sign)',
        description:
          'signature: the card’s 64-byte r‖s over the digest (hex), or the 65-byte form with a header byte first (27–34, 39–42; the header never selects the key). Verified against the enrolled key; a high s is refused (hwkey_signature_high_s), a wrong key or digest hwkey_invalid, an answer without an unspent challenge challenge_required. A relayed answer proves possession but not what the owner saw: strength present, so an approval that requires bound is refused consent_too_weak before the signature is checked. Audited as approval.approve. Returns the approval.',
        tags: ['approvals'],
        security: bearer,
        params: idParams,
        body: {
          type: 'object',
          required: ['signature'],
          additionalProperties: false,
          properties: { signature: { type: 'string', maxLength: 140, description: '128 or 130 hex digits (an optional 0x)' } },
        },
        response: { 200: approvalViewSchema, ...commonErrorResponses },
      },
    },
    async (request) => kernel.answerHwkeyChallenge(await authenticateApiKey(kernel, request), { id: request.params.id, signature: request.body.signature }),
  );
}

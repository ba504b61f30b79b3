import type {} from '@fastify/swagger';
import { CustosError, type Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses } from '../schemas.js';
import { isAdminSocketRequest } from '../adminSocket.js';
import { unsealClientOf } from '../unsealClientOf.js';
import { untoldAdminsWarning } from '../warnUntoldAdmins.js';
import { authenticateApiKey } from './authenticate.js';

const progressSchema = {
  type: 'object',
  required: ['submitted', 'threshold'],
  properties: { submitted: { type: 'integer' }, threshold: { type: 'integer' } },
} as const;

const statusProperties = {
  sealed: { type: 'boolean' },
  signerId: { type: ['string', 'null'] },
  version: { type: 'string' },
  derivation: { type: ['string', 'null'] },
  unsealer: {
    type: ['object', 'null'],
    description:
      'How the signer unseals: passphrase, shamir (threshold of shares, progress while sealed) or pkcs11 (the token and the key the sealed root names; never the PIN)',
    required: ['type'],
    properties: {
      type: { type: 'string', enum: ['passphrase', 'shamir', 'pkcs11'] },
      threshold: { type: 'integer' },
      shares: { type: 'integer' },
      sharesSigned: {
        type: 'boolean',
        description: 'Shamir: whether the share files are signed (false: a set made before shares were signed; `custos rekey` issues a signed one)',
      },
      progress: progressSchema,
      tokenLabel: { type: 'string' },
      keyLabel: { type: 'string' },
      keyId: { type: 'string' },
    },
  },
  auditPublicKey: {
    type: ['string', 'null'],
    description:
      'The audit public key (Ed25519, hex) that signs the audit log’s checkpoints, while unsealed (null while sealed). A convenience: the anchor is the key `custos init` printed, since this answer comes from the server being checked.',
  },
} as const;

const statusSchema = { type: 'object', required: ['sealed', 'signerId', 'version', 'derivation', 'unsealer'], properties: statusProperties } as const;

/** A share file: its text as written by init/rekey, or the same JSON object. */
const shareSchema = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 4096 },
    { type: 'object', maxProperties: 16 },
  ],
  description: 'Shamir: one operator share file (its text, or its JSON object)',
} as const;

/** Longest PKCS#11 user PIN accepted (bytes of UTF-8); tokens take far shorter ones. */
export const MAX_PIN_BYTES = 256;

/**
 * Status (no auth), unseal and unseal reset (served while sealed; the credential is the
 * authentication), and seal on demand (API key with the `admin` scope). `pkcs11ModulePath`: the
 * PKCS#11 library `custos serve --pkcs11-module` named; without it a `{"pin"}` unseal of a PKCS#11
 * signer is `unsealer_unavailable` (the HTTP caller never chooses which library the server loads).
 */
export async function sysRoutes(app: FastifyInstance, { kernel, pkcs11ModulePath }: { kernel: Kernel; pkcs11ModulePath?: string }): Promise<void> {
  app.get(
    '/v1/sys/status',
    { schema: { summary: 'Seal state, unsealer and identity of the signer (no auth)', tags: ['sys'], response: { 200: statusSchema } } },
    // Read afresh: a rekey by another process (custos rekey) names its new unsealer here at once.
    async () => kernel.currentStatus(),
  );

  app.post<{ Body: { passphrase?: string; share?: string | Record<string, unknown>; pin?: string } }>(
    '/v1/sys/unseal',
    {
      // Once unsealed: a loud warning when admins of the set would be told nothing (warnUntoldAdmins.ts).
      onResponse: async (request, reply) => {
        if (reply.statusCode !== 200 || kernel.sealed) return;
        const warning = await untoldAdminsWarning(kernel);
        if (warning !== undefined) request.log.warn(warning);
      },
      schema: {
        summary: 'Unseal: the passphrase, one Shamir share per call, or the PKCS#11 user PIN',
        description:
          'Passphrase signer: {"passphrase"} unseals. Shamir signer: {"share"} submits one operator share; until the threshold is reached the answer is {"sealed": true, "progress": {submitted, threshold}}; the share that reaches it unseals (or fails unseal_failed and discards the pending shares). PKCS#11 signer: {"pin"} logs in to the token the sealed root names (the server must have been started with --pkcs11-module; otherwise unsealer_unavailable); a wrong PIN is unseal_failed with details.pkcs11 = CKR_PIN_INCORRECT; a token whose flags say a wrong PIN would lock it (or was already counted) is refused 423 hsm_pin_protect without trying the PIN (the admin socket is not refused). After each failed unseal the next attempt of the same client waits (1 s doubling to 5 min, reset by a success): 429 unseal_throttled with Retry-After, nothing tried. The client is the address (--trust-proxy), IPv6 per /64; the admin socket is its own client.',
        tags: ['sys'],
        body: {
          type: 'object',
          required: [],
          additionalProperties: false,
          // exactly one of the three (a missing passphrase is named as such)
          oneOf: [{ required: ['passphrase'] }, { required: ['share'] }, { required: ['pin'] }],
          properties: {
            passphrase: { type: 'string', minLength: 1, maxLength: 1024 },
            share: shareSchema,
            pin: { type: 'string', minLength: 1, maxLength: MAX_PIN_BYTES, description: 'PKCS#11: the token user PIN' },
          },
        },
        response: {
          200: { type: 'object', required: statusSchema.required, properties: { ...statusProperties, progress: progressSchema } },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      if (!kernel.sealed) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      // The back-off and the queue bound are this client's own (docs/operations.md#unsealing).
      const client = unsealClientOf(request);
      const { passphrase: text, share, pin: pinText } = request.body;
      if (pinText !== undefined) {
        // The module is the server's choice (its command line), never the caller's.
        if (pkcs11ModulePath === undefined && kernel.status().unsealer?.type === 'pkcs11')
          throw new CustosError('unsealer_unavailable', 'this server was started without --pkcs11-module: it cannot reach the HSM', {
            details: { field: 'pin', unsealer: 'pkcs11' },
          });
        const pin = new Uint8Array(Buffer.from(pinText, 'utf8'));
        try {
          if (pin.length > MAX_PIN_BYTES) throw new CustosError('invalid_input', `pin: expected at most ${MAX_PIN_BYTES} bytes`, { details: { field: 'pin' } });
          // Another kind of signer answers unsealer_mismatch before any module is loaded.
          await kernel.unsealWith({ type: 'pkcs11', modulePath: pkcs11ModulePath ?? '', pin }, client);
        } finally {
          pin.fill(0);
        }
        return kernel.status();
      }
      if (share !== undefined) {
        const progress = await kernel.submitUnsealShare(typeof share === 'string' ? share : JSON.stringify(share), client);
        // The server log records each accepted share (never the share itself).
        request.log.info({ event: 'sys.unseal.share', progress: progress.progress, sealed: progress.sealed }, 'unseal share accepted');
        return { ...kernel.status(), progress: progress.progress };
      }
      if (text === undefined) throw new CustosError('invalid_input', 'body: expected passphrase or share', { details: { field: 'body' } });
      const passphrase = new Uint8Array(Buffer.from(text, 'utf8'));
      try {
        await kernel.unsealWith({ type: 'passphrase', passphrase }, client);
      } finally {
        passphrase.fill(0);
      }
      return kernel.status();
    },
  );

  app.post<{ Body: { share: string | Record<string, unknown> } }>(
    '/v1/sys/unseal/reset',
    {
      schema: {
        summary: 'Discard the Shamir shares submitted so far, on the proof of one share of the current set',
        description:
          'The body carries one valid share file of the current share set ({"share"}), checked as POST /v1/sys/unseal checks it — its signature included (share_forged), so only an operator holding a share can reset — and not kept. A share set made before shares were signed (status: unsealer.sharesSigned false) is checked by checksum, signer and share set only. The reset is audited (sys.unseal.reset); a refused one is not.',
        tags: ['sys'],
        body: {
          type: 'object',
          required: ['share'],
          additionalProperties: false,
          properties: { share: shareSchema },
        },
        response: { 200: { type: 'object', required: ['discarded'], properties: { discarded: { type: 'integer' } } }, ...commonErrorResponses },
      },
    },
    async (request) => {
      if (!kernel.sealed) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const { share } = request.body;
      const result = await kernel.resetUnseal(typeof share === 'string' ? share : JSON.stringify(share), unsealClientOf(request));
      // The audit log holds the reset (sys.unseal.reset); the server log adds where it came from.
      request.log.warn({ event: 'sys.unseal.reset', discarded: result.discarded, remoteAddress: request.ip }, 'unseal progress reset');
      return result;
    },
  );

  app.post(
    '/v1/sys/seal',
    {
      schema: {
        summary: 'Seal now: wipe the key material from memory (scope: admin; no key over the admin socket)',
        description:
          'Requests in flight either finish with their audit record or fail 503 sealed. Audited as sys.seal. Over the admin socket (custos serve --admin-socket, custos seal) no API key is needed: the socket file (mode 0600) is the credential.',
        tags: ['sys'],
        security: [{ apiKey: [] }],
        response: { 200: statusSchema, ...commonErrorResponses },
      },
    },
    async (request) => {
      // The admin socket's file permissions are the operator's credential (docs/operations.md#admin-socket).
      if (isAdminSocketRequest(request)) return kernel.sealAsOperator('admin-socket');
      return kernel.sealOnDemand(await authenticateApiKey(kernel, request));
    },
  );
}

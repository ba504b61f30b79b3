import type {} from '@fastify/swagger';
import { assertHex, CustosError, invalidInput, type Kernel } from '@custos/kernel';
import type { FastifyInstance } from 'fastify';
import { commonErrorResponses, idempotencyHeaders, walletNameSchema } from '../schemas.js';
import { readAuthorization } from './authenticate.js';

/**
 * The TOTP ETH Signer (Fortanix DSM plugin) compatibility API, so that its Node.js SDK works with
 * `signerUrl` pointed at `http://host:port/sys/`. Same payloads; the kernel's rules (fail closed,
 * ±1 step, throttling, single use) apply unchanged.
 */
export async function compatRoutes(app: FastifyInstance, { kernel, bodyLimit }: { kernel: Kernel; bodyLimit: number }): Promise<void> {
  // The plugin's clients send JSON under various content types (or none): parse the body as JSON
  // whatever the Content-Type says.
  // A malformed Content-Type header (which Fastify would refuse with 415 before any parser runs)
  // is treated like any other: the body is read as JSON.
  app.addHook('onRequest', async (request) => {
    request.headers['content-type'] = 'application/json';
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new CustosError('invalid_input', 'body: expected valid JSON', { details: { field: 'body' } }), undefined);
    }
  });

  app.post(
    '/sys/v1/session/auth',
    {
      schema: {
        summary: 'TOTP ETH Signer compatibility: exchange the API key (Basic) for a bearer session',
        tags: ['compat'],
        security: [{ basicApiKey: [] }],
        response: {
          200: {
            type: 'object',
            required: ['access_token', 'token_type', 'expires_in'],
            properties: { access_token: { type: 'string' }, token_type: { type: 'string' }, expires_in: { type: 'integer' } },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const appIdentity = await kernel.authenticateApiKey(readAuthorization(request, 'Basic'));
      const session = await kernel.createSession(appIdentity);
      return { access_token: session.accessToken, token_type: 'Bearer', expires_in: session.expiresIn };
    },
  );

  app.post<{ Params: { signerId: string } }>(
    '/sys/v1/plugins/:signerId',
    {
      schema: {
        summary: 'TOTP ETH Signer compatibility: register | getPubKey | sign',
        description:
          'Body (JSON, any Content-Type): {"operation":"register","walletName"} → {url, security_object}; {"operation":"getPubKey","walletName","keyIndex"} → {xpub}; {"operation":"sign","walletName","keyIndex","msgHash","code"} → {r, s, xpub}.',
        tags: ['compat'],
        security: [{ bearer: [] }],
        params: { type: 'object', required: ['signerId'], properties: { signerId: { type: 'string', maxLength: 64 } } },
        headers: idempotencyHeaders,
        // The plugin's payloads. Extra members are tolerated (the plugin's clients may send more);
        // the kernel validates every field it uses again.
        body: {
          type: 'object',
          required: ['operation'],
          properties: {
            operation: { type: 'string', enum: ['register', 'getPubKey', 'sign'] },
            walletName: walletNameSchema,
            keyIndex: {
              anyOf: [{ type: 'string' }, { type: 'integer' }],
              description: 'getPubKey, sign: key index, decimal string (or integer), 0 ≤ k < 2^31',
            },
            msgHash: { type: 'string', description: 'sign: 32-byte hash, 64 hex digits' },
            code: { type: 'string', description: 'sign: the current TOTP code, when the wallet is enrolled' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              url: { type: 'string', description: 'register: the otpauth URI' },
              security_object: { type: 'string', description: 'register: "totp/<walletName>"' },
              xpub: { type: 'string', description: 'getPubKey, sign: 33-byte compressed public key of the leaf, hex' },
              r: { type: 'string', description: 'sign: 32 bytes hex' },
              s: { type: 'string', description: 'sign: 32 bytes hex, low-s' },
            },
          },
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const status = kernel.status();
      if (status.sealed) throw new CustosError('sealed', 'the signer is sealed');
      const appIdentity = await kernel.authenticateSession(readAuthorization(request, 'Bearer'));
      if (request.params.signerId !== status.signerId)
        throw new CustosError('signer_not_found', 'no signer with that id here', { details: { field: 'signerId' } });
      const body = request.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidInput('body', 'a JSON object');
      const op = body as Record<string, unknown>;
      switch (op.operation) {
        case 'register': {
          const enrolled = await kernel.enrollTotp(appIdentity, { walletName: op.walletName });
          return { url: enrolled.otpauthUri, security_object: enrolled.securityObject };
        }
        case 'getPubKey': {
          const key = await kernel.getPublicKey(appIdentity, { walletName: op.walletName, keyIndex: op.keyIndex });
          return { xpub: key.publicKey };
        }
        case 'sign': {
          const msgHash = Buffer.from(assertHex(op.msgHash, 'msgHash', 32)).toString('hex');
          // the plugin's raw hashes follow the deployment's compatRawHash (default: allowed — the weaker mode, docs/policy.md)
          const signed = await kernel.signCompatHash(appIdentity, {
            walletName: op.walletName,
            keyIndex: op.keyIndex,
            hash: msgHash,
            code: op.code,
            idempotencyKey: request.headers['idempotency-key'],
          });
          return { r: signed.r, s: signed.s, xpub: signed.publicKey };
        }
        default:
          throw invalidInput(
            'operation',
            'one of "register", "getPubKey", "sign"',
            typeof op.operation === 'string' ? JSON.stringify(op.operation.slice(0, 32)) : typeof op.operation,
          );
      }
    },
  );
}

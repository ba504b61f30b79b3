// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { shareSchemaCompilers } from './shareSchemaCompilers.js';

/** The compiled functions of one app's route, as Fastify hands them to the route's requests. */
interface Compiled {
  body: unknown;
  querystring: unknown;
  ok: unknown;
}

/**
 * An app with one route whose schemas are built afresh for each app (object literals, as the
 * routes' are), the shared compilers, and `prepare` to add schemas or options before the route.
 * The route answers with its compiled functions (kept in `seen`).
 */
async function appWithRoute(
  options: FastifyServerOptions = {},
  prepare: (app: FastifyInstance) => void = () => undefined,
): Promise<{ app: FastifyInstance; seen: Compiled[] }> {
  const seen: Compiled[] = [];
  const app = Fastify({ ...options, schemaController: shareSchemaCompilers() });
  prepare(app);
  app.post(
    '/thing',
    {
      schema: {
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { $ref: 'name#' } } },
        querystring: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer' } } },
        response: { 200: { type: 'object', properties: { name: { type: 'string' } } } },
      },
    },
    async (request, reply) => {
      seen.push({
        body: request.getValidationFunction('body'),
        querystring: request.getValidationFunction('querystring'),
        ok: reply.getSerializationFunction('200'),
      });
      // `secret` is not in the response schema: the serializer leaves it out
      return { ...(request.body as object), secret: 'not in the schema' };
    },
  );
  await app.ready();
  return { app, seen };
}

const nameOfAtMost = (maxLength: number) => (app: FastifyInstance) => {
  app.addSchema({ $id: 'name', type: 'string', maxLength });
};
// as buildApp's: no coercion, nothing removed
const STRICT: FastifyServerOptions = { ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } };

async function post(app: FastifyInstance, body: unknown, query = '') {
  return app.inject({ method: 'POST', url: `/thing${query}`, payload: body as object });
}

describe('shareSchemaCompilers', () => {
  test('two apps with the same routes and options reuse the compiled validators and serializers, and both still validate', async () => {
    const a = await appWithRoute(STRICT, nameOfAtMost(8));
    const b = await appWithRoute(STRICT, nameOfAtMost(8));
    try {
      for (const { app } of [a, b]) {
        const ok = await post(app, { name: 'alice' });
        assert.equal(ok.statusCode, 200);
        assert.deepEqual(ok.json(), { name: 'alice' });
        assert.equal((await post(app, { name: 'much too long' })).statusCode, 400);
        assert.equal((await post(app, { name: 'alice', extra: 1 })).statusCode, 400);
        assert.equal((await post(app, {})).statusCode, 400);
        assert.equal((await post(app, { name: 'alice' }, '?n=x')).statusCode, 400);
      }
      const [first, second] = [a.seen[0], b.seen[0]];
      assert.ok(first !== undefined && second !== undefined);
      assert.equal(typeof first.body, 'function');
      assert.equal(second.body, first.body, 'the body validator is compiled once');
      assert.equal(second.querystring, first.querystring, 'the querystring validator is compiled once');
      assert.equal(second.ok, first.ok, 'the 200 serializer is compiled once');
      assert.notEqual(first.body, first.querystring, 'each part has its own');
    } finally {
      await Promise.all([a.app.close(), b.app.close()]);
    }
  });

  test('apps whose external schemas (addSchema) differ get their own validators: neither sees the other’s', async () => {
    const short = await appWithRoute(STRICT, nameOfAtMost(3));
    const long = await appWithRoute(STRICT, nameOfAtMost(10));
    try {
      assert.equal((await post(short.app, { name: 'alice' })).statusCode, 400);
      assert.equal((await post(long.app, { name: 'alice' })).statusCode, 200);
      assert.equal((await post(short.app, { name: 'bob' })).statusCode, 200);
      assert.notEqual(short.seen[0]?.body, long.seen[0]?.body);
    } finally {
      await Promise.all([short.app.close(), long.app.close()]);
    }
  });

  test("one app's Ajv options do not leak into another's: type coercion stays where it was asked for", async () => {
    const strict = await appWithRoute(STRICT, nameOfAtMost(8));
    const coercing = await appWithRoute({ ajv: { customOptions: { coerceTypes: true } } }, nameOfAtMost(8));
    try {
      assert.equal((await post(strict.app, { name: 'alice' }, '?n=5')).statusCode, 400, 'no coercion: "5" is no integer');
      assert.equal((await post(coercing.app, { name: 'alice' }, '?n=5')).statusCode, 200, 'coerced');
      // a number for a string: coerced into "5" by one, refused by the other
      assert.equal((await post(strict.app, { name: 5 })).statusCode, 400);
      assert.equal((await post(coercing.app, { name: 5 })).statusCode, 200);
    } finally {
      await Promise.all([strict.app.close(), coercing.app.close()]);
    }
  });

  test('a schema added inside an encapsulated plugin stays in that plugin', async () => {
    const app = Fastify({ ...STRICT, schemaController: shareSchemaCompilers() });
    app.addSchema({ $id: 'name', type: 'string', maxLength: 10 });
    const route = (instance: FastifyInstance, url: string) =>
      instance.post(url, { schema: { body: { type: 'object', required: ['name'], properties: { name: { $ref: 'name#' } } } } }, async () => ({}));
    route(app, '/outer');
    await app.register(async (child) => {
      child.addSchema({ $id: 'other', type: 'string' });
      route(child, '/inner');
    });
    await app.register(async (sibling) => route(sibling, '/sibling'));
    await app.ready();
    try {
      for (const url of ['/outer', '/inner', '/sibling']) {
        assert.equal((await app.inject({ method: 'POST', url, payload: { name: 'alice' } })).statusCode, 200, url);
        assert.equal((await app.inject({ method: 'POST', url, payload: { name: 'much too long' } })).statusCode, 400, url);
      }
    } finally {
      await app.close();
    }
  });

  test('a header schema naming a header in another case than lowercase is refused when the app starts (Fastify would leave it as written); a lowercase one validates', async () => {
    for (const schema of [
      { type: 'object', required: ['X-Key'], properties: { 'X-Key': { type: 'string' } } },
      { type: 'object', required: ['X-Key'] },
      { type: 'object', properties: { 'x-Key': { type: 'string' } } },
    ]) {
      const app = Fastify({ schemaController: shareSchemaCompilers() });
      app.get('/h', { schema: { headers: schema } }, async () => ({}));
      await assert.rejects(async () => app.ready(), /must name its headers in lowercase/);
      await app.close();
    }
    const app = Fastify({ schemaController: shareSchemaCompilers() });
    app.get(
      '/h',
      { schema: { headers: { type: 'object', required: ['x-key'], properties: { 'x-key': { type: 'string', maxLength: 3 } } } } },
      async () => ({}),
    );
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/h', headers: { 'X-Key': 'abc' } })).statusCode, 200);
      assert.equal((await app.inject({ method: 'GET', url: '/h', headers: { 'X-Key': 'abcd' } })).statusCode, 400);
      assert.equal((await app.inject({ method: 'GET', url: '/h' })).statusCode, 400);
    } finally {
      await app.close();
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KERNEL_VERSION } from '@custos/kernel';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';

/** The operations the app serves, as OpenAPI paths. GET /v1/openapi.json itself is not documented. */
const EXPECTED_OPERATIONS = [
  'get /v1/sys/status',
  'post /v1/sys/unseal',
  'post /v1/sys/unseal/reset',
  'post /v1/sys/seal',
  'post /v1/totp/enroll',
  'get /v1/keys',
  'get /v1/wallets',
  'get /v1/wallets/list',
  'post /v1/wallets/freeze',
  'get /v1/wallets/policy',
  'put /v1/wallets/policy',
  'post /v1/sign/hash',
  'post /v1/sign/transaction',
  'post /v1/sign/message',
  'post /v1/sign/typed-data',
  'post /v1/sign/authorization',
  'post /v1/approvals',
  'get /v1/approvals/{id}',
  'post /v1/approvals/{id}/cancel',
  'post /v1/approvals/{id}/resend',
  'post /v1/enrollments',
  'post /v1/changes',
  'get /v1/changes',
  'post /v1/changes/confirm',
  'post /v1/changes/cancel',
  'post /v1/factors',
  'post /v1/approvals/{id}/hwkey-challenge',
  'post /v1/approvals/{id}/hwkey',
  'post /sys/v1/session/auth',
  'post /sys/v1/plugins/{signerId}',
  'post /v1/rpc',
  'post /v1/rpc/accounts',
  'get /v1/rpc/accounts',
  'post /v1/admin/proposals',
  'get /v1/admin/proposals',
  'get /v1/admin/proposals/{id}',
  'post /v1/admin/proposals/{id}/approvals',
  'post /v1/admin/passkey-links',
  'get /v1/admin/notices',
  'get /v1/admin/passkey-candidates',
  'get /v1/audit',
  'get /v1/apikeys',
  'post /v1/apikeys',
  'delete /v1/apikeys',
].sort();

/** Operations that need no credential. */
const UNAUTHENTICATED = new Set(['get /v1/sys/status', 'post /v1/sys/unseal', 'post /v1/sys/unseal/reset']);
/** POSTs that take no body (an action on the signer as a whole, or on the resource in the path). */
const BODILESS = new Set(['post /v1/sys/seal', 'post /v1/approvals/{id}/cancel', 'post /v1/approvals/{id}/hwkey-challenge', 'post /v1/approvals/{id}/resend']);
/** Operations whose success is 201 Created. */
const CREATED = new Set(['post /v1/approvals', 'post /v1/enrollments', 'post /v1/changes']);
/** The JSON-RPC endpoint: its 200 is a JSON-RPC response object, or an array of them (a batch). */
const JSON_RPC = 'post /v1/rpc';

interface Schema {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, Schema>;
  [key: string]: unknown;
}
interface Operation {
  summary?: string;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: Schema }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
}

let signer: TestSigner;
let doc: OpenApiDocument;

before(async () => {
  signer = await createTestSigner();
  const res = await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  doc = res.json() as OpenApiDocument;
});

after(async () => {
  await signer.close();
});

function operations(): Array<[string, Operation]> {
  const out: Array<[string, Operation]> = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) out.push([`${method} ${path}`, op]);
  }
  return out;
}

function jsonSchema(content: Record<string, { schema?: Schema }> | undefined): Schema | undefined {
  return content?.['application/json']?.schema;
}

/** Operational probes, served outside the API and its document (like the spec route itself). */
const PROBES = ['/healthz', '/readyz', '/metrics'];
/** The kernel's pages, their scripts and the approval page's challenge route: for browsers, not the API (hidden from its document). */
const PAGE_PATHS = /^\/(approve|enroll|owner|assets|admin)\//;
/** The browsable rendering of this document (Swagger UI at /docs: its page, assets and a copy of the document), hidden from it. */
const DOCS_PATHS = /^\/docs(\/|$)/;

/** The routes the Fastify app really serves, from its route tree (HEAD twins, the hidden spec route and the probes left out). */
function servedOperations(): string[] {
  const out: string[] = [];
  // The tree nests a route under its parent (`/v1/sys/unseal` then `│   └── /reset`): keep the
  // path of each depth (4 characters of indentation a level) to rebuild the full path.
  const parents: string[] = [];
  for (const line of signer.app.printRoutes({ commonPrefix: false }).split('\n')) {
    // (a segment may continue its parent's without a slash: `/hwkey` then `-challenge`)
    const m = /([/-]\S*) \(([A-Z, ]+)\)/.exec(line);
    if (m === null || m[1] === undefined || m[2] === undefined) continue;
    const depth = Math.floor(m.index / 4) - 1;
    parents.length = depth;
    const full = `${parents.join('')}${m[1]}`;
    parents.push(full.slice(parents.join('').length));
    const path = full.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const method of m[2].split(',').map((s) => s.trim())) {
      if (method === 'HEAD' || path === '/v1/openapi.json' || PROBES.includes(path) || PAGE_PATHS.test(path) || DOCS_PATHS.test(path)) continue;
      out.push(`${method.toLowerCase()} ${path}`);
    }
  }
  return out.sort();
}

describe('GET /v1/openapi.json', () => {
  test('is an OpenAPI 3.x document of this version', () => {
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    assert.equal(typeof doc.info.title, 'string');
    assert.ok(doc.info.title.length > 0);
    assert.equal(doc.info.version, KERNEL_VERSION);
  });

  test('documents exactly the operations the app serves', () => {
    const documented = operations()
      .map(([name]) => name)
      .sort();
    assert.deepEqual(documented, EXPECTED_OPERATIONS);
    // and the list above is the app's real route table: a new route must be documented too
    assert.deepEqual(servedOperations(), EXPECTED_OPERATIONS);
    // the probes are served, and kept out of the API document
    const tree = signer.app.printRoutes({ commonPrefix: false });
    for (const probe of PROBES) {
      assert.match(tree, new RegExp(`${probe} \\(GET`), `${probe} is served`);
      assert.equal(doc.paths[probe], undefined, `${probe} is not in the API document`);
    }
  });

  test('every operation has a summary and a JSON object schema for its 200 (or 201) response', () => {
    for (const [name, op] of operations()) {
      assert.ok(typeof op.summary === 'string' && op.summary.length > 0, `${name}: summary`);
      const schema = jsonSchema(op.responses?.[CREATED.has(name) ? '201' : '200']?.content);
      assert.ok(schema !== undefined, `${name}: 200 response schema`);
      if (name === JSON_RPC) {
        const [single, batch] = (schema.anyOf ?? []) as Schema[];
        assert.deepEqual(single?.required, ['jsonrpc', 'id'], `${name}: a JSON-RPC response`);
        assert.deepEqual(batch?.items, single, `${name}: or an array of them`);
        continue;
      }
      assert.equal(schema.type, 'object', `${name}: 200 response is an object`);
      assert.ok(Object.keys(schema.properties ?? {}).length > 0, `${name}: 200 response declares its properties`);
    }
  });

  test('every operation but status declares the error body for its error statuses', () => {
    for (const [name, op] of operations()) {
      if (name === 'get /v1/sys/status') continue;
      for (const status of ['400', '401', '500', '503']) {
        const schema = jsonSchema(op.responses?.[status]?.content);
        assert.ok(schema !== undefined, `${name}: ${status} response schema`);
        assert.deepEqual(schema.required, ['error'], `${name}: ${status}`);
        assert.deepEqual(schema.properties?.error?.required, ['code', 'message'], `${name}: ${status}`);
      }
    }
  });

  test('operations that take a JSON body declare it, with its required fields', () => {
    const bodies: Record<string, { required: string[]; properties: string[] }> = {
      // one of the three (oneOf): the passphrase, one Shamir share, or the PKCS#11 PIN
      'post /v1/sys/unseal': { required: [], properties: ['passphrase', 'pin', 'share'] },
      'post /v1/totp/enroll': { required: ['walletName'], properties: ['walletName'] },
      'post /v1/wallets/freeze': { required: ['walletName'], properties: ['walletName'] },
      'post /v1/sign/hash': { required: ['walletName', 'keyIndex', 'hash'], properties: ['approvalId', 'code', 'hash', 'keyIndex', 'walletName'] },
      'post /v1/sign/transaction': {
        required: ['walletName', 'keyIndex', 'transaction'],
        properties: ['approvalId', 'code', 'keyIndex', 'transaction', 'walletName'],
      },
      'post /v1/sign/message': { required: ['walletName', 'keyIndex', 'message'], properties: ['approvalId', 'code', 'keyIndex', 'message', 'walletName'] },
      'post /v1/sign/typed-data': {
        required: ['walletName', 'keyIndex', 'typedData'],
        properties: ['approvalId', 'code', 'keyIndex', 'typedData', 'walletName'],
      },
      'post /v1/sign/authorization': {
        required: ['walletName', 'keyIndex', 'authorization'],
        properties: ['approvalId', 'authorization', 'code', 'keyIndex', 'walletName'],
      },
      // keyIndex: required for one operation, absent for a batch (the kernel says which, naming the field)
      'post /v1/approvals': { required: ['walletName', 'operation'], properties: ['keyIndex', 'operation', 'ttlSeconds', 'walletName'] },
      'post /v1/enrollments': { required: ['walletName'], properties: ['kind', 'ttlSeconds', 'walletName'] },
      'post /v1/rpc/accounts': { required: ['walletName', 'keyIndex'], properties: ['keyIndex', 'walletName'] },
      'post /v1/factors': { required: ['walletName', 'kind'], properties: ['kind', 'publicKey', 'subpath', 'walletName', 'xpub'] },
      'post /v1/approvals/{id}/hwkey': { required: ['signature'], properties: ['signature'] },
      'post /v1/changes': { required: ['walletName', 'kind'], properties: ['kind', 'payload', 'ttlSeconds', 'walletName'] },
      'post /v1/changes/confirm': { required: ['id'], properties: ['id'] },
      'post /v1/changes/cancel': { required: ['id'], properties: ['id'] },
      'post /v1/admin/proposals': {
        required: ['id', 'kind', 'payload', 'proposer', 'signature', 'expiresAt'],
        properties: ['expiresAt', 'id', 'kind', 'payload', 'proposer', 'signature'],
      },
      'post /v1/admin/proposals/{id}/approvals': { required: ['admin', 'payloadHash', 'signature'], properties: ['admin', 'payloadHash', 'signature'] },
      'put /v1/wallets/policy': { required: ['walletName', 'policy'], properties: ['policy', 'walletName'] },
    };
    for (const [name, expected] of Object.entries(bodies)) {
      const op = operations().find(([n]) => n === name)?.[1];
      assert.ok(op !== undefined, name);
      assert.equal(op.requestBody?.required, true, `${name}: body required`);
      const schema = jsonSchema(op.requestBody?.content);
      assert.ok(schema !== undefined, `${name}: request body schema`);
      assert.equal(schema.type, 'object');
      assert.equal(schema.additionalProperties, false, `${name}: unknown fields refused`);
      assert.deepEqual(schema.required, expected.required, name);
      assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), expected.properties, name);
    }
  });

  test('operations that take query or path input declare their parameters with schemas', () => {
    const parameters: Record<string, Array<[string, string]>> = {
      'get /v1/keys': [
        ['query', 'keyIndex'],
        ['query', 'walletName'],
      ],
      'get /v1/wallets': [['query', 'walletName']],
      'get /v1/wallets/list': [
        ['query', 'cursor'],
        ['query', 'limit'],
      ],
      'get /v1/wallets/policy': [['query', 'walletName']],
      'post /sys/v1/plugins/{signerId}': [
        ['header', 'idempotency-key'],
        ['path', 'signerId'],
      ],
      'get /v1/approvals/{id}': [
        ['path', 'id'],
        ['query', 'waitSeconds'],
      ],
      'post /v1/approvals/{id}/cancel': [['path', 'id']],
      'post /v1/rpc': [['query', 'apiKey']],
      'get /v1/rpc/accounts': [
        ['query', 'cursor'],
        ['query', 'limit'],
      ],
      'post /v1/approvals/{id}/hwkey-challenge': [['path', 'id']],
      'post /v1/approvals/{id}/hwkey': [['path', 'id']],
      'post /v1/approvals/{id}/resend': [['path', 'id']],
      'get /v1/changes': [['query', 'id']],
      'get /v1/admin/proposals': [['query', 'limit']],
      'get /v1/admin/notices': [
        ['query', 'before'],
        ['query', 'limit'],
      ],
      'get /v1/audit': [
        ['query', 'action'],
        ['query', 'appId'],
        ['query', 'cursor'],
        ['query', 'decision'],
        ['query', 'limit'],
        ['query', 'opHash'],
        ['query', 'since'],
        ['query', 'until'],
        ['query', 'walletName'],
      ],
      'get /v1/admin/proposals/{id}': [['path', 'id']],
      'post /v1/admin/proposals/{id}/approvals': [['path', 'id']],
      'delete /v1/apikeys': [['query', 'id']],
    };
    // The sign and approval-creation routes document the optional Idempotency-Key header (docs/idempotency.md).
    const idempotent = [
      'post /v1/sign/hash',
      'post /v1/sign/transaction',
      'post /v1/sign/message',
      'post /v1/sign/typed-data',
      'post /v1/sign/authorization',
      'post /v1/approvals',
    ];
    for (const name of idempotent) parameters[name] = [['header', 'idempotency-key']];
    /** Parameters that may be left out. */
    const optional = new Set([
      ...[...idempotent, 'post /sys/v1/plugins/{signerId}'].map((name) => `${name} idempotency-key`),
      'get /v1/approvals/{id} waitSeconds',
      'post /v1/rpc apiKey',
      'get /v1/wallets/list cursor',
      'get /v1/wallets/list limit',
      'get /v1/rpc/accounts cursor',
      'get /v1/rpc/accounts limit',
      'get /v1/admin/proposals limit',
      'get /v1/admin/notices limit',
      'get /v1/admin/notices before',
      'get /v1/audit action',
      'get /v1/audit appId',
      'get /v1/audit cursor',
      'get /v1/audit decision',
      'get /v1/audit limit',
      'get /v1/audit opHash',
      'get /v1/audit since',
      'get /v1/audit until',
      'get /v1/audit walletName',
    ]);
    for (const [name, op] of operations()) {
      const expected = parameters[name] ?? [];
      const declared = (op.parameters ?? []).map((p) => [p.in, p.name] as [string, string]).sort();
      assert.deepEqual(declared, expected.sort(), `${name}: parameters`);
      for (const p of op.parameters ?? []) {
        assert.equal(p.required ?? false, !optional.has(`${name} ${p.name}`), `${name}: ${p.name} required`);
        assert.equal(p.schema?.type, 'string', `${name}: ${p.name} schema`);
      }
    }
    // every operation that takes input has a body or a parameter schema
    for (const [name, op] of operations()) {
      if (
        name === 'get /v1/sys/status' ||
        name === 'get /v1/admin/passkey-candidates' ||
        name === 'get /v1/apikeys' ||
        name === 'post /sys/v1/session/auth' ||
        BODILESS.has(name)
      )
        continue;
      assert.ok(op.requestBody !== undefined || (op.parameters ?? []).length > 0, `${name}: input schema`);
      // a POST that reads a body declares it
      if (name.startsWith('post ')) assert.ok(op.requestBody !== undefined, `${name}: request body schema`);
    }
  });

  test('the compatibility plugin operation declares its JSON body, operation required', () => {
    const op = doc.paths['/sys/v1/plugins/{signerId}']?.post;
    const schema = jsonSchema(op?.requestBody?.content);
    assert.ok(schema !== undefined, 'request body schema');
    assert.equal(schema.type, 'object');
    assert.deepEqual(schema.required, ['operation']);
    assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), ['code', 'keyIndex', 'msgHash', 'operation', 'walletName']);
    assert.deepEqual(schema.properties?.operation?.enum, ['register', 'getPubKey', 'sign']);
  });

  test('declares its security schemes, and every authenticated operation uses a declared one', () => {
    const schemes = doc.components?.securitySchemes ?? {};
    assert.deepEqual(Object.keys(schemes).sort(), ['apiKey', 'basicApiKey', 'bearer']);
    assert.equal(schemes.apiKey?.type, 'http');
    assert.equal(schemes.apiKey?.scheme, 'bearer');
    assert.equal(schemes.basicApiKey?.type, 'http');
    assert.equal(schemes.basicApiKey?.scheme, 'basic');
    assert.equal(schemes.bearer?.type, 'http');
    assert.equal(schemes.bearer?.scheme, 'bearer');
    const expected: Record<string, string> = {
      'post /v1/totp/enroll': 'apiKey',
      'post /v1/wallets/freeze': 'apiKey',
      'get /v1/keys': 'apiKey',
      'get /v1/wallets': 'apiKey',
      'get /v1/wallets/list': 'apiKey',
      'get /v1/wallets/policy': 'apiKey',
      'put /v1/wallets/policy': 'apiKey',
      'post /v1/sign/hash': 'apiKey',
      'post /v1/sign/transaction': 'apiKey',
      'post /v1/sign/message': 'apiKey',
      'post /v1/sign/typed-data': 'apiKey',
      'post /v1/sign/authorization': 'apiKey',
      'post /v1/approvals': 'apiKey',
      'get /v1/approvals/{id}': 'apiKey',
      'post /v1/approvals/{id}/cancel': 'apiKey',
      'post /v1/approvals/{id}/resend': 'apiKey',
      'post /v1/enrollments': 'apiKey',
      'post /v1/factors': 'apiKey',
      'post /v1/approvals/{id}/hwkey-challenge': 'apiKey',
      'post /v1/approvals/{id}/hwkey': 'apiKey',
      'post /v1/sys/seal': 'apiKey',
      'post /sys/v1/session/auth': 'basicApiKey',
      'post /sys/v1/plugins/{signerId}': 'bearer',
      'post /v1/rpc': 'apiKey',
      'post /v1/rpc/accounts': 'apiKey',
      'get /v1/rpc/accounts': 'apiKey',
      'post /v1/changes': 'apiKey',
      'get /v1/changes': 'apiKey',
      'post /v1/changes/confirm': 'apiKey',
      'post /v1/changes/cancel': 'apiKey',
      'post /v1/admin/proposals': 'apiKey',
      'get /v1/admin/proposals': 'apiKey',
      'get /v1/admin/notices': 'apiKey',
      'get /v1/admin/proposals/{id}': 'apiKey',
      'post /v1/admin/proposals/{id}/approvals': 'apiKey',
      'post /v1/admin/passkey-links': 'apiKey',
      'get /v1/admin/passkey-candidates': 'apiKey',
      'get /v1/audit': 'apiKey',
      'get /v1/apikeys': 'apiKey',
      'post /v1/apikeys': 'apiKey',
      'delete /v1/apikeys': 'apiKey',
    };
    for (const [name, op] of operations()) {
      if (UNAUTHENTICATED.has(name)) {
        assert.ok(op.security === undefined || op.security.length === 0, `${name}: no credential`);
        continue;
      }
      const used = (op.security ?? []).flatMap((requirement) => Object.keys(requirement));
      assert.deepEqual(used, [expected[name]], `${name}: security`);
      for (const scheme of used) assert.ok(Object.hasOwn(schemes, scheme), `${name}: ${scheme} is declared`);
    }
  });

  test('is served only while unsealed', async () => {
    signer.kernel.seal();
    try {
      const res = await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'sealed');
    } finally {
      await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
    assert.equal((await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' })).statusCode, 200);
  });
});

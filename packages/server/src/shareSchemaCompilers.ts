import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

/**
 * Fastify compiles every route's JSON schemas (an Ajv validator per request part, a
 * fast-json-stringify serializer per response status) again for each new Fastify instance: most of
 * the cost of building an app. The API app and the pages app share a process, and so do the apps of
 * a restart or of a test file's signers, with the same routes. These compilers share what was
 * compiled across the apps of the process.
 *
 * What decides a compiled function is shared too, so that one app's setup never leaks into another:
 * - the compiler: the app's Ajv options (or serializer options) and the external schemas it added
 *   with addSchema — each combination has its own Ajv instance and its own cache (an encapsulated
 *   plugin that adds a schema gets its own, as with Fastify's own compilers);
 * - the schema: its JSON text (route schemas are object literals built per app, so their identity
 *   differs between apps while their content does not), with the request part or response status.
 * A schema or an option that is not plain JSON data (a function, a RegExp, a custom Ajv plugin) has
 * no faithful key: it is compiled for its app alone, as Fastify would.
 *
 * Header schemas must name their headers in lowercase: with compilers of its own, Fastify no longer
 * lowercases a header schema's names (it leaves custom compilers' schemas alone), and Node gives the
 * headers lowercased, so `required: ['X-Key']` would silently never match. A header schema with a
 * name in another case is refused when the app starts; lowercase ones (`idempotency-key`) work as
 * with Fastify's own compilers.
 */
export function shareSchemaCompilers(): NonNullable<FastifyServerOptions['schemaController']> {
  return { compilersFactory: { buildValidator: sharedValidatorCompiler as never, buildSerializer: sharedSerializerCompiler as never } };
}

type RouteSchema = { schema: unknown; method?: string; url?: string; httpPart?: string; httpStatus?: string; contentType?: string };
type Compiled = (route: RouteSchema) => unknown;

/** One compiler per (options, external schemas), with its compiled functions by schema key. */
interface SharedCompiler {
  compile: Compiled;
  byKey: Map<string, unknown>;
}

const validators = new Map<string, SharedCompiler>();
const serializers = new Map<string, SharedCompiler>();
// Fastify's own factories: each call makes a fresh compiler (an Ajv instance of its own).
const newValidatorCompiler = AjvCompiler() as unknown as (externalSchemas: unknown, options: unknown) => Compiled;
const newSerializerCompiler = SerializerSelector() as unknown as (externalSchemas: unknown, options: unknown) => Compiled;

function sharedValidatorCompiler(externalSchemas: Record<string, unknown>, ajvOptions: unknown): Compiled {
  return shared(validators, newValidatorCompiler, externalSchemas, ajvOptions, (route) => {
    if (route.httpPart === 'headers' && !headerNamesLowercase(route.schema))
      throw new Error(
        `${route.method ?? ''} ${route.url ?? ''}: a header schema must name its headers in lowercase (Fastify leaves their names as written with these compilers, see shareSchemaCompilers)`,
      );
    return `${route.httpPart ?? ''}|${route.contentType ?? ''}`;
  });
}

/** Whether every header a header schema names (its properties, its required list) is in lowercase. */
function headerNamesLowercase(schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return true;
  const { properties, required } = schema as { properties?: unknown; required?: unknown };
  const names = [
    ...(properties !== null && typeof properties === 'object' ? Object.keys(properties) : []),
    ...(Array.isArray(required) ? required.map(String) : []),
  ];
  return names.every((name) => name === name.toLowerCase());
}

function sharedSerializerCompiler(externalSchemas: Record<string, unknown>, serializerOptions: unknown): Compiled {
  return shared(serializers, newSerializerCompiler, externalSchemas, serializerOptions, (route) => `${route.httpStatus ?? ''}|${route.contentType ?? ''}`);
}

function shared(
  pool: Map<string, SharedCompiler>,
  create: (externalSchemas: unknown, options: unknown) => Compiled,
  externalSchemas: Record<string, unknown>,
  options: unknown,
  partOf: (route: RouteSchema) => string,
): Compiled {
  const poolKey = jsonKey([externalSchemas, options ?? null]);
  // options or external schemas with no faithful key: a compiler of this app's own, as Fastify's
  if (poolKey === undefined) return create(externalSchemas, options);
  let compiler = pool.get(poolKey);
  if (compiler === undefined) {
    compiler = { compile: create(externalSchemas, options), byKey: new Map() };
    pool.set(poolKey, compiler);
  }
  const { compile, byKey } = compiler;
  return (route) => {
    const part = partOf(route);
    const schemaKey = jsonKey(route.schema);
    if (schemaKey === undefined) return compile(route);
    const key = `${part}|${schemaKey}`;
    let compiled = byKey.get(key);
    if (compiled === undefined) {
      compiled = compile(route);
      byKey.set(key, compiled);
    }
    return compiled;
  };
}

/** The JSON text of a value made of plain JSON data only; undefined when anything else is in it (its JSON would not say all of it). */
function jsonKey(value: unknown): string | undefined {
  return isPlainJson(value, 0) ? JSON.stringify(value) : undefined;
}

function isPlainJson(value: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((item) => isPlainJson(item, depth + 1));
  if (typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  // symbol keys (Fastify marks visited schemas with one) say nothing about the schema itself
  return Object.values(value).every((item) => item !== undefined && isPlainJson(item, depth + 1));
}

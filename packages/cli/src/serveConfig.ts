import { readFileSync } from 'node:fs';
import { CustosError } from '@custos/kernel';
import { parse as parseYaml } from 'yaml';
import { parseOptions } from './io.js';

/**
 * One `custos serve` option. The one declaration every other form derives from (docs/configuration.md):
 * the flag `--NAME` (node's parseArgs: `type`, `multiple`), the environment variable `CUSTOS_NAME`
 * (upper case, `-` → `_`), the config file key `camelCaseName`, how `custos config check` and the
 * start-up log line show it, and its default as shown there.
 */
export interface ServeOption {
  type: 'string' | 'boolean';
  /** The flag may repeat; in the file a YAML list of strings, in the environment a comma-separated list. */
  multiple?: true;
  /**
   * The value's form in the config file where it is not a string (the flag's string form derives from it):
   * `integer` a YAML integer; `list` a YAML list of strings, joined with commas (the flag takes
   * `A,B`); `true|false` a YAML boolean (the flag takes the word).
   */
  file?: 'integer' | 'list' | 'true|false';
  /**
   * How the value is shown: `url-password` a URL whose password is masked (`user:***@`);
   * `url-origin` a URL shown as its origin only (a webhook's or a node provider's path or query may be
   * its credential). Unmarked values are shown as they are (a secret option names a file, never the secret).
   */
  mask?: 'url-password' | 'url-origin';
  /** The option names a file that holds a secret; this environment variable may carry the secret itself instead. */
  secretEnv?: string;
  /** The default as `config check` shows it (the commands' code keeps the real default). */
  shown?: string;
}

/**
 * Every `custos serve` option. A new option is one line here (the flag's parseArgs declaration, plus
 * `file`/`mask`/`secretEnv`/`shown` where they apply); serve reads it from the resolved values like
 * any parseOptions value, and the environment variable, file key and `config check` line follow.
 */
export const SERVE_OPTIONS = {
  'data-dir': { type: 'string' },
  store: { type: 'string', mask: 'url-password' },
  'store-password-file': { type: 'string', secretEnv: 'CUSTOS_STORE_PASSWORD' },
  host: { type: 'string', shown: '127.0.0.1' },
  port: { type: 'string', file: 'integer', shown: '8420' },
  'passphrase-file': { type: 'string' },
  'share-file': { type: 'string', multiple: true },
  'pkcs11-module': { type: 'string' },
  'pkcs11-pin-file': { type: 'string' },
  'log-level': { type: 'string', shown: 'info' },
  'unknown-wallets': { type: 'string', shown: 'allow (deny under an admin quorum)' },
  'backend-enrollment': { type: 'string', shown: 'on (off under an admin quorum)' },
  'policy-file': { type: 'string' },
  'compat-raw-hash': { type: 'string', shown: 'allow (the deployment settings’ under an admin quorum)' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'insecure-http': { type: 'boolean', shown: 'false' },
  'public-url': { type: 'string', shown: 'http://localhost:<port>' },
  'public-listen': { type: 'string' },
  'metrics-token-file': { type: 'string', secretEnv: 'CUSTOS_METRICS_TOKEN' },
  'max-waiting': { type: 'string', file: 'integer', shown: '1000' },
  'upstream-rpc': { type: 'string', mask: 'url-origin' },
  'rpc-wait': { type: 'string', file: 'integer', shown: '8' },
  'rpc-key-in-url': { type: 'boolean', shown: 'false' },
  'token-list': { type: 'string' },
  'page-brand': { type: 'string', shown: 'Custos' },
  'page-lang': { type: 'string', shown: 'en' },
  'admin-socket': { type: 'string' },
  'trust-proxy': { type: 'string', file: 'list' },
  'audit-bytes-per-second': { type: 'string', file: 'integer', shown: '262144' },
  'audit-burst-bytes': { type: 'string', file: 'integer', shown: '16777216' },
  'audit-checkpoint-every': { type: 'string', file: 'integer', shown: '1000' },
  'audit-checkpoint-interval': { type: 'string', file: 'integer', shown: '60' },
  'audit-checkpoint-file': { type: 'string' },
  'audit-checkpoint-webhook': { type: 'string', mask: 'url-origin' },
  'audit-stream-webhook': { type: 'string', mask: 'url-origin' },
  'audit-stream-secret-file': { type: 'string' },
  'audit-stream-state': { type: 'string' },
  'smtp-url': { type: 'string', mask: 'url-password' },
  'smtp-password-file': { type: 'string', secretEnv: 'CUSTOS_SMTP_PASSWORD' },
  'mail-from': { type: 'string' },
  'webhook-url': { type: 'string', mask: 'url-origin' },
  'webhook-secret-file': { type: 'string', secretEnv: 'CUSTOS_WEBHOOK_SECRET' },
  'oob-code-ttl': { type: 'string', file: 'integer', shown: '300' },
  'webhook-trusted': { type: 'string', file: 'true|false', shown: 'true' },
  'timelock-delay': { type: 'string', file: 'integer', shown: '172800' },
  'ops-listen': { type: 'string' },
  'allow-from': { type: 'string', file: 'list' },
  'tls-client-ca': { type: 'string' },
  'housekeeping-interval': { type: 'string', file: 'integer', shown: '3600' },
  'housekeeping-retention-days': { type: 'string', file: 'integer', shown: '30' },
  'admission-latency-ms': { type: 'string', file: 'integer', shown: '100' },
} as const satisfies Record<string, ServeOption>;

export type ServeOptionName = keyof typeof SERVE_OPTIONS;

/** The options of `custos serve` and `custos config check`: the table plus `--config FILE`. */
const COMMAND_OPTIONS = { ...SERVE_OPTIONS, config: { type: 'string' } } as const;

/** The values serve reads: the shape parseOptions gives for the table (flag > env > file, merged). */
export type ServeValues = Omit<ReturnType<typeof parseOptions<typeof COMMAND_OPTIONS>>, 'help' | 'config'>;

/** Where a value came from. */
export type ServeSource = 'flag' | { env: string } | { file: string; key: string } | 'default';

export interface ResolvedServeOptions {
  help: boolean;
  /** The config file read (--config or CUSTOS_CONFIG), if any. */
  configFile: string | undefined;
  values: ServeValues;
  /** The source of every option given (absent: the default). */
  sources: Partial<Record<ServeOptionName, ServeSource>>;
  /** Things the operator should change (a password on the command line). */
  warnings: string[];
}

const TABLE: Record<string, ServeOption> = SERVE_OPTIONS;
const NAMES = Object.keys(SERVE_OPTIONS) as ServeOptionName[];

/** `--some-flag` → `CUSTOS_SOME_FLAG`. */
export function envNameOf(option: string): string {
  return `CUSTOS_${option.toUpperCase().replaceAll('-', '_')}`;
}

/** `--some-flag` → `someFlag` (the config file's key). */
export function fileKeyOf(option: string): string {
  return option.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The config file's environment variable (`--config` has no file key: a file does not name another). */
export const CONFIG_ENV = 'CUSTOS_CONFIG';

/**
 * CUSTOS_ variables that belong to other tools (the test runner, benchmarks, the CLI's client
 * commands, the audit script): never taken for serve options, whatever their names.
 */
const OTHER_TOOLS_PREFIXES = ['CUSTOS_TEST_', 'CUSTOS_BENCH_', 'CUSTOS_CRASH_', 'CUSTOS_FUZZ_', 'CUSTOS_DEV_'];
const OTHER_TOOLS_NAMES = new Set([
  'CUSTOS_URL',
  'CUSTOS_API_KEY',
  'CUSTOS_BIN',
  'CUSTOS_FAULT_INJECT',
  'CUSTOS_REQUIRE_AUDIT',
  'CUSTOS_UPDATE_DOCS_SCREENSHOT',
]);

/**
 * Reads the serve options from the command line, the environment and the config file, in that order
 * of precedence (flag > env > file > default), option by option: a multi-valued option's list comes
 * whole from the first source that has it. Unknown file keys, and unknown CUSTOS_ variables that look
 * like serve options, are refused (invalid_input, details.field the key or the variable).
 */
export function resolveServeOptions(argv: string[], env: NodeJS.ProcessEnv): ResolvedServeOptions {
  const flags = parseOptions(argv, COMMAND_OPTIONS);
  const values: Record<string, string | boolean | string[] | undefined> = {};
  const sources: Partial<Record<ServeOptionName, ServeSource>> = {};
  const warnings: string[] = [];
  if (flags.help === true) return { help: true, configFile: undefined, values: {}, sources, warnings };
  checkEnvNames(env);
  const configFile = flags.config ?? nonEmpty(env[CONFIG_ENV], CONFIG_ENV);
  if (flags.config === '') throw new CustosError('invalid_input', '--config: expected the path of a YAML file', { details: { field: 'config' } });
  const fromFile = configFile === undefined ? {} : readConfigFile(configFile);
  for (const name of NAMES) {
    const option = TABLE[name] as ServeOption;
    const flagValue = (flags as Record<string, string | boolean | string[] | undefined>)[name];
    const envName = envNameOf(name);
    if (flagValue !== undefined) {
      values[name] = flagValue;
      sources[name] = 'flag';
    } else if (env[envName] !== undefined) {
      values[name] = envValue(option, envName, env[envName] as string);
      sources[name] = { env: envName };
    } else if (configFile !== undefined && Object.hasOwn(fromFile, fileKeyOf(name))) {
      values[name] = fileValue(option, configFile, fileKeyOf(name), fromFile[fileKeyOf(name)]);
      sources[name] = { file: configFile, key: fileKeyOf(name) };
    }
  }
  for (const name of ['store', 'smtp-url'] as const) {
    const value = values[name];
    if (sources[name] === 'flag' && typeof value === 'string' && urlPassword(value) !== '')
      warnings.push(
        `--${name} carries a password on the command line, where every user of this host sees it (ps): give it with --${name === 'store' ? 'store' : 'smtp'}-password-file or ${name === 'store' ? 'CUSTOS_STORE_PASSWORD' : 'CUSTOS_SMTP_PASSWORD'} instead`,
      );
  }
  return { help: false, configFile, values: values as ServeValues, sources, warnings };
}

function nonEmpty(value: string | undefined, field: string): string | undefined {
  if (value === '') throw new CustosError('invalid_input', `${field}: expected the path of a YAML file`, { details: { field } });
  return value;
}

/** Refuses a CUSTOS_ variable no serve option has but that looks like one (a typo, an option that does not exist). */
function checkEnvNames(env: NodeJS.ProcessEnv): void {
  const known = new Set<string>([CONFIG_ENV]);
  for (const name of NAMES) {
    known.add(envNameOf(name));
    const secretEnv = (TABLE[name] as ServeOption).secretEnv;
    if (secretEnv !== undefined) known.add(secretEnv);
  }
  const firstWords = new Set(NAMES.map((name) => name.split('-')[0]?.toUpperCase()));
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith('CUSTOS_') || known.has(variable) || OTHER_TOOLS_NAMES.has(variable)) continue;
    if (OTHER_TOOLS_PREFIXES.some((prefix) => variable.startsWith(prefix))) continue;
    const rest = variable.slice('CUSTOS_'.length);
    const nearest = nearestName([...known], variable);
    const looksLikeOption = firstWords.has(rest.split('_')[0]) || (nearest !== undefined && editDistance(nearest, variable) <= 2);
    if (looksLikeOption)
      throw new CustosError(
        'invalid_input',
        `${variable}: no custos serve option has this environment variable${nearest === undefined ? '' : ` (did you mean ${nearest}?)`}; see docs/configuration.md`,
        { details: { field: variable } },
      );
  }
}

/** A value from the environment, in the flag's form: a boolean is `true` or `false`, a list comma-separated. */
function envValue(option: ServeOption, variable: string, raw: string): string | boolean | string[] {
  if (option.type === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new CustosError('invalid_input', `${variable}: expected true or false`, { details: { field: variable } });
    return raw === 'true';
  }
  if (option.multiple === true) {
    const items = raw.split(',');
    if (items.some((item) => item === ''))
      throw new CustosError('invalid_input', `${variable}: expected a comma-separated list with no empty item`, { details: { field: variable } });
    return items;
  }
  return raw;
}

/** A value from the config file, checked against the option's type and turned into the flag's form. */
function fileValue(option: ServeOption, file: string, key: string, raw: unknown): string | boolean | string[] {
  const wrong = (expected: string) =>
    new CustosError('invalid_input', `${file}: ${key}: expected ${expected}, got ${describeYamlValue(raw)}`, { details: { field: key } });
  const isStringList = (value: unknown): value is string[] =>
    Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item !== '');
  if (option.type === 'boolean') {
    if (typeof raw !== 'boolean') throw wrong('true or false');
    return raw;
  }
  if (option.multiple === true) {
    if (!isStringList(raw)) throw wrong('a list of non-empty strings');
    return raw;
  }
  switch (option.file) {
    case 'integer':
      if (typeof raw !== 'number' || !Number.isSafeInteger(raw)) throw wrong('an integer');
      return String(raw);
    case 'list':
      if (!isStringList(raw)) throw wrong('a list of non-empty strings');
      return raw.join(',');
    case 'true|false':
      if (typeof raw !== 'boolean') throw wrong('true or false');
      return String(raw);
    default:
      if (typeof raw !== 'string') throw wrong('a string');
      return raw;
  }
}

function describeYamlValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`.slice(0, 60);
}

/** Reads the YAML config file: one mapping whose keys are the options' file keys, nothing else. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CustosError('invalid_input', `--config: cannot read ${file}`, { details: { field: 'config' }, cause: error });
  }
  let parsed: unknown;
  try {
    // YAML 1.2 core schema (yes/no/on/off stay strings), duplicate keys refused, no alias expansion
    parsed = parseYaml(text, { uniqueKeys: true, maxAliasCount: 0, prettyErrors: false });
  } catch (error) {
    throw new CustosError('invalid_input', `--config: ${file} is not valid YAML: ${error instanceof Error ? error.message.split('\n')[0] : ''}`, {
      details: { field: 'config' },
      cause: error,
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new CustosError('invalid_input', `--config: ${file} must hold one mapping of settings (key: value)`, { details: { field: 'config' } });
  const keys = new Map(NAMES.map((name) => [fileKeyOf(name), name]));
  for (const key of Object.keys(parsed)) {
    if (keys.has(key)) continue;
    const nearest = nearestName([...keys.keys()], key);
    throw new CustosError(
      'invalid_input',
      `${file}: unknown key ${JSON.stringify(key)}${nearest !== undefined && editDistance(nearest, key) <= 3 ? ` (did you mean ${nearest}?)` : ''}; see docs/configuration.md`,
      { details: { field: key } },
    );
  }
  return parsed as Record<string, unknown>;
}

function nearestName(candidates: string[], name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(candidate, name);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance (short names only). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length] as number;
}

function urlPassword(value: string): string {
  try {
    return new URL(value).password;
  } catch {
    return '';
  }
}

/** A value as `config check` and the start-up line show it: secrets masked. */
export function maskValue(name: ServeOptionName, value: string | boolean | string[]): string | boolean | string[] {
  const mask = (TABLE[name] as ServeOption).mask;
  if (typeof value !== 'string' || mask === undefined) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return '***';
  }
  if (mask === 'url-origin') return url.pathname === '/' && url.search === '' && url.username === '' ? url.origin : `${url.origin}/***`;
  if (url.password !== '') url.password = '***';
  for (const key of [...url.searchParams.keys()]) if (/pass|secret|key|token/i.test(key)) url.searchParams.set(key, '***');
  return url.toString();
}

function describeSource(source: ServeSource | undefined): string {
  if (source === undefined || source === 'default') return 'default';
  if (source === 'flag') return 'flag';
  if ('env' in source) return `env ${source.env}`;
  return `file ${source.file} (${source.key})`;
}

export interface EffectiveSetting {
  option: ServeOptionName | string;
  /** Masked; undefined: not set and no default. */
  value: string | boolean | string[] | undefined;
  source: string;
}

/**
 * The effective settings, every option in table order, secrets masked: a value given (with its source),
 * else the default. A secret given through its environment variable (CUSTOS_METRICS_TOKEN …) is listed
 * as `***`; a secret's value never appears.
 */
export function effectiveSettings(resolved: ResolvedServeOptions, env: NodeJS.ProcessEnv): EffectiveSetting[] {
  const out: EffectiveSetting[] = [];
  for (const name of NAMES) {
    const option = TABLE[name] as ServeOption;
    const value = resolved.values[name];
    if (value !== undefined) out.push({ option: name, value: maskValue(name, value), source: describeSource(resolved.sources[name]) });
    else out.push({ option: name, value: option.shown, source: 'default' });
    if (option.secretEnv !== undefined && env[option.secretEnv] !== undefined)
      out.push({ option: option.secretEnv, value: '***', source: `env ${option.secretEnv}` });
  }
  return out;
}

/** The settings that are set (given or defaulted), as one object for the start-up log line: option → masked value. */
export function settingsForLog(resolved: ResolvedServeOptions, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const setting of effectiveSettings(resolved, env)) {
    if (setting.value === undefined) continue;
    config[setting.option] = setting.value;
    if (setting.source !== 'default') sources[setting.option] = setting.source;
  }
  return { config, configSources: sources, configFile: resolved.configFile ?? null };
}

/**
 * Runs `read` (serve's checks of the values); an invalid_input about an option that came from the
 * environment or the file says so, so that the operator finds the value where it was given.
 */
export function withSourceInErrors<T>(resolved: ResolvedServeOptions, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof CustosError && error.code === 'invalid_input') {
      const field = (error.details as { field?: unknown } | undefined)?.field;
      const source = typeof field === 'string' ? resolved.sources[field as ServeOptionName] : undefined;
      if (source !== undefined && source !== 'flag' && source !== 'default')
        throw new CustosError('invalid_input', `${error.message} (given as ${describeSource(source)})`, { details: error.details, cause: error });
    }
    throw error;
  }
}

// store-independent: serve's settings from flags, environment and config file, and custos config check, answered before any store is opened (runs in the SQLite pass only)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CustosError } from '@custos/kernel';
import { readServeStoreLocation } from './commands/serve.js';
import { main } from './main.js';
import { envNameOf, fileKeyOf, resolveServeOptions, SERVE_OPTIONS, type ServeOptionName, settingsForLog } from './serveConfig.js';
import { ROOT, recordTestSecret, secretInputs } from './testing/cliHarness.js';

// Issue 15 points 1 and 8: every serve option from a flag, CUSTOS_ environment variable or YAML
// config file (flag > env > file > default), unknown keys refused, secrets never printed.

const inputs = secretInputs('custos-serve-config');

/** Runs the CLI in-process with this environment (no process.env involved). */
async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: {
      write: (chunk: string) => {
        stdout += chunk;
      },
    },
    stderr: {
      write: (chunk: string) => {
        stderr += chunk;
      },
    },
    env,
  });
  return { code, stdout, stderr };
}

/** The CustosError `work` throws: invalid_input, with this field and a message that mentions `mentions`. */
function assertInvalid(work: () => unknown, field: string, mentions: string): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof CustosError, String(error));
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.details.field, field, error.message);
    assert.ok(error.message.includes(mentions), `${error.message} should mention ${mentions}`);
    return true;
  });
}

describe('serve configuration', () => {
  it('every option has one flag, one environment variable and one file key, all distinct', () => {
    const names = Object.keys(SERVE_OPTIONS);
    assert.equal(new Set(names.map(envNameOf)).size, names.length);
    assert.equal(new Set(names.map(fileKeyOf)).size, names.length);
    assert.equal(envNameOf('audit-checkpoint-webhook'), 'CUSTOS_AUDIT_CHECKPOINT_WEBHOOK');
    assert.equal(fileKeyOf('audit-checkpoint-webhook'), 'auditCheckpointWebhook');
  });

  it('precedence: flag > environment > file > default, option by option (all eight combinations)', () => {
    const file = inputs.write('precedence.yaml', 'port: 1111\npageBrand: FromFile\n');
    for (let mask = 0; mask < 8; mask += 1) {
      const [flag, env, inFile] = [(mask & 4) !== 0, (mask & 2) !== 0, (mask & 1) !== 0];
      const resolved = resolveServeOptions([...(flag ? ['--port', '3333'] : []), ...(inFile ? ['--config', file] : [])], env ? { CUSTOS_PORT: '2222' } : {});
      const [value, source] = flag
        ? ['3333', 'flag']
        : env
          ? ['2222', { env: 'CUSTOS_PORT' }]
          : inFile
            ? ['1111', { file, key: 'port' }]
            : [undefined, undefined];
      assert.equal(resolved.values.port, value, `flag ${flag} env ${env} file ${inFile}`);
      assert.deepEqual(resolved.sources.port, source);
      // another option of the same file keeps its own source
      assert.equal(resolved.values['page-brand'], inFile ? 'FromFile' : undefined);
    }
    // the config file itself from CUSTOS_CONFIG
    assert.equal(resolveServeOptions([], { CUSTOS_CONFIG: file }).values.port, '1111');
  });

  it('config check prints each setting with its source, defaults included', async () => {
    const file = inputs.write('check.yaml', 'dataDir: /srv/custos\nport: 1111\nlogLevel: debug\n');
    const result = await run(['config', 'check', '--config', file, '--log-level', 'warn'], { CUSTOS_PORT: '2222' });
    assert.equal(result.code, 0, result.stderr);
    const line = (option: string) => result.stdout.split('\n').find((l) => l.startsWith(`${option} `));
    assert.match(line('data-dir') ?? '', new RegExp(`/srv/custos +\\[file ${file} \\(dataDir\\)\\]$`));
    assert.match(line('port') ?? '', /2222 +\[env CUSTOS_PORT\]$/);
    assert.match(line('log-level') ?? '', /warn +\[flag\]$/);
    assert.match(line('rpc-wait') ?? '', /8 +\[default\]$/);
    assert.match(line('tls-cert') ?? '', /- +\[unset\]$/);
  });

  it('unknown file keys are errors naming the key (with a suggestion), and so is a file that is not one mapping', async () => {
    const typo = inputs.write('typo.yaml', 'dataDir: /srv/custos\nprot: 8420\n');
    assertInvalid(() => resolveServeOptions(['--config', typo], {}), 'prot', 'unknown key "prot" (did you mean port?)');
    // a flag's spelling is not a file key: the file has one spelling per option
    const kebab = inputs.write('kebab.yaml', 'data-dir: /srv/custos\n');
    assertInvalid(() => resolveServeOptions(['--config', kebab], {}), 'data-dir', 'unknown key "data-dir" (did you mean dataDir?)');
    assertInvalid(() => resolveServeOptions(['--config', inputs.write('list.yaml', '- port\n')], {}), 'config', 'one mapping');
    assertInvalid(() => resolveServeOptions(['--config', inputs.write('dup.yaml', 'port: 1\nport: 2\n')], {}), 'config', 'not valid YAML');
    assertInvalid(() => resolveServeOptions(['--config', `${typo}.missing`], {}), 'config', 'cannot read');
    const viaCli = await run(['config', 'check', '--config', typo], {});
    assert.equal(viaCli.code, 2);
    assert.equal(viaCli.stdout, '');
    assert.match(viaCli.stderr, /^custos: invalid_input: .*unknown key "prot"/);
  });

  it('a CUSTOS_ variable that looks like a serve option but is none is an error; other tools’ variables are left alone', async () => {
    assertInvalid(() => resolveServeOptions([], { CUSTOS_PROT: '8420' }), 'CUSTOS_PROT', 'did you mean CUSTOS_PORT?');
    assertInvalid(() => resolveServeOptions([], { CUSTOS_TLS_CERTIFICATE: '/x' }), 'CUSTOS_TLS_CERTIFICATE', 'no custos serve option');
    assertInvalid(() => resolveServeOptions([], { CUSTOS_STORE_URL: 'postgres://x' }), 'CUSTOS_STORE_URL', 'no custos serve option');
    const others = {
      CUSTOS_TEST_STORE: 'postgres',
      CUSTOS_TEST_PG_URL: 'postgres://x',
      CUSTOS_TEST_ARTIFACTS: '/tmp/x',
      CUSTOS_BENCH_PG: '1',
      CUSTOS_CRASH_SEED: '1',
      CUSTOS_FUZZ_CASES: '5',
      CUSTOS_URL: 'http://127.0.0.1:1',
      CUSTOS_API_KEY: 'x',
      CUSTOS_BIN: '/x',
      CUSTOS_FAULT_INJECT: 'x',
      CUSTOS_REQUIRE_AUDIT: '1',
      CUSTOS_UPDATE_DOCS_SCREENSHOT: '1',
      CUSTOS_SOMETHING_ELSE: 'x',
      // the secrets' own variables
      CUSTOS_METRICS_TOKEN: 'x'.repeat(16),
      CUSTOS_WEBHOOK_SECRET: 'x'.repeat(16),
      CUSTOS_STORE_PASSWORD: 'x',
      CUSTOS_SMTP_PASSWORD: 'x',
    };
    assert.deepEqual(resolveServeOptions([], others).sources, {});
    const viaCli = await run(['serve', '--data-dir', '/nonexistent'], { CUSTOS_LOG_LEVE: 'debug' });
    assert.equal(viaCli.code, 2);
    assert.match(viaCli.stderr, /^custos: invalid_input: CUSTOS_LOG_LEVE: .*did you mean CUSTOS_LOG_LEVEL\?/);
  });

  it('multi-valued options: a YAML list in the file, a comma-separated list in the environment, the flag repeated', () => {
    const env = { CUSTOS_SHARE_FILE: '/s/a,/s/b', CUSTOS_TRUST_PROXY: '10.0.0.0/8,::1' };
    const fromEnv = resolveServeOptions([], env);
    assert.deepEqual(fromEnv.values['share-file'], ['/s/a', '/s/b']);
    assert.equal(fromEnv.values['trust-proxy'], '10.0.0.0/8,::1');
    const file = inputs.write('lists.yaml', 'shareFile: [/f/a, /f/b, /f/c]\ntrustProxy:\n  - 192.0.2.1\n  - 2001:db8::/32\n');
    const fromFile = resolveServeOptions(['--config', file], {});
    assert.deepEqual(fromFile.values['share-file'], ['/f/a', '/f/b', '/f/c']);
    assert.equal(fromFile.values['trust-proxy'], '192.0.2.1,2001:db8::/32');
    // the list comes whole from the first source that has it, never merged
    const both = resolveServeOptions(['--config', file, '--share-file', '/c/a', '--share-file', '/c/b'], env);
    assert.deepEqual(both.values['share-file'], ['/c/a', '/c/b']);
    assert.deepEqual(resolveServeOptions(['--config', file], env).values['share-file'], ['/s/a', '/s/b']);
    assertInvalid(() => resolveServeOptions([], { CUSTOS_SHARE_FILE: '/s/a,,/s/b' }), 'CUSTOS_SHARE_FILE', 'no empty item');
  });

  it('a file value of the wrong type is refused, naming the key and what was expected', () => {
    const cases: Array<[string, string, string]> = [
      ['port: "8420"\n', 'port', 'expected an integer, got string "8420"'],
      ['port: 84.5\n', 'port', 'expected an integer'],
      ['insecureHttp: "yes"\n', 'insecureHttp', 'expected true or false'],
      ['insecureHttp: yes\n', 'insecureHttp', 'expected true or false'], // YAML 1.2: yes is a string
      ['shareFile: /s/a\n', 'shareFile', 'expected a list of non-empty strings'],
      ['trustProxy: [1, 2]\n', 'trustProxy', 'expected a list of non-empty strings'],
      ['host: 127\n', 'host', 'expected a string, got number 127'],
      ['webhookTrusted: "false"\n', 'webhookTrusted', 'expected true or false'],
      ['pageBrand: { a: 1 }\n', 'pageBrand', 'got a mapping'],
    ];
    for (const [text, key, mentions] of cases) assertInvalid(() => resolveServeOptions(['--config', inputs.write('wrong.yaml', text)], {}), key, mentions);
    // a boolean and an integer in their YAML form become the flag's form
    const right = resolveServeOptions(['--config', inputs.write('right.yaml', 'insecureHttp: true\nwebhookTrusted: false\nmaxWaiting: 50\n')], {});
    assert.equal(right.values['insecure-http'], true);
    assert.equal(right.values['webhook-trusted'], 'false');
    assert.equal(right.values['max-waiting'], '50');
    assertInvalid(() => resolveServeOptions([], { CUSTOS_INSECURE_HTTP: '1' }), 'CUSTOS_INSECURE_HTTP', 'expected true or false');
    assert.equal(resolveServeOptions([], { CUSTOS_INSECURE_HTTP: 'false' }).values['insecure-http'], false);
  });

  it("serve's own checks say where a bad value came from", async () => {
    const viaEnv = await run(['config', 'check', '--data-dir', '/srv/custos'], { CUSTOS_PORT: '80a' });
    assert.equal(viaEnv.code, 2);
    assert.equal(viaEnv.stderr, 'custos: invalid_input: --port: expected an integer 0..65535 (given as env CUSTOS_PORT)\n');
    const file = inputs.write('level.yaml', 'dataDir: /srv/custos\nlogLevel: loud\n');
    const viaFile = await run(['config', 'check', '--config', file], {});
    assert.match(viaFile.stderr, /--log-level: expected .* \(given as file .* \(logLevel\)\)\n$/);
  });

  it('the store password from a file or CUSTOS_STORE_PASSWORD goes into the URL; never both, never beside an inline one', () => {
    const password = `pw:@/${randomBytes(9).toString('base64url')}`;
    recordTestSecret('config test store password', password);
    const file = inputs.write('store-password', `${password}\n`);
    for (const [argv, env] of [
      [['--store', 'postgres://custos@db.internal:5432/custos', '--store-password-file', file], {}],
      [['--store', 'postgres://custos@db.internal:5432/custos'], { CUSTOS_STORE_PASSWORD: password }],
    ] as Array<[string[], NodeJS.ProcessEnv]>) {
      const location = readServeStoreLocation(resolveServeOptions(argv, env).values, env);
      assert.ok('url' in location);
      assert.equal(decodeURIComponent(new URL(location.url).password), password);
    }
    const both = { CUSTOS_STORE_PASSWORD: password };
    const values = resolveServeOptions(['--store', 'postgres://custos@db/custos', '--store-password-file', file], both).values;
    assertInvalid(() => readServeStoreLocation(values, both), 'store-password-file', 'not with CUSTOS_STORE_PASSWORD');
    const inline = resolveServeOptions(['--store', 'postgres://custos:x@db/custos', '--store-password-file', file], {});
    assertInvalid(() => readServeStoreLocation(inline.values, {}), 'store-password-file', 'carries a password already');
    const sqlite = resolveServeOptions(['--data-dir', '/srv/custos', '--store-password-file', file], {});
    assertInvalid(() => readServeStoreLocation(sqlite.values, {}), 'store-password-file', 'only with --store');
  });

  it('secrets are never printed: config check and the start-up line mask them; a password on the command line is warned about', async () => {
    const secret = (label: string, length = 24) => {
      const value = randomBytes(length).toString('base64url');
      recordTestSecret(`config test ${label}`, value);
      return value;
    };
    const inlineStorePassword = secret('inline store password');
    const metricsToken = secret('metrics token');
    const webhookSecret = secret('webhook secret');
    const smtpPassword = secret('smtp password');
    const rpcKey = secret('upstream rpc key');
    const webhookPath = secret('webhook path');
    const checkpointToken = secret('checkpoint webhook token');
    const file = inputs.write(
      'secrets.yaml',
      [
        `upstreamRpc: https://mainnet.example.net/v3/${rpcKey}`,
        `webhookUrl: https://hooks.example.com/services/${webhookPath}`,
        `auditCheckpointWebhook: https://audit.example.com/in?token=${checkpointToken}`,
        'smtpUrl: smtp://custos@mail.example.com:587',
        `smtpPasswordFile: ${inputs.write('smtp-password', smtpPassword)}`,
        'mailFrom: custos@example.com',
        '',
      ].join('\n'),
    );
    const env = { CUSTOS_METRICS_TOKEN: metricsToken, CUSTOS_WEBHOOK_SECRET: webhookSecret };
    const argv = ['--config', file, '--store', `postgres://custos:${inlineStorePassword}@db.internal/custos`];
    const result = await run(['config', 'check', ...argv], env);
    assert.equal(result.code, 0, result.stderr);
    const line = (option: string) => result.stdout.split('\n').find((l) => l.startsWith(`${option} `)) ?? '';
    assert.match(line('store'), /postgres:\/\/custos:\*\*\*@db\.internal\/custos +\[flag\]/);
    assert.match(line('upstream-rpc'), /https:\/\/mainnet\.example\.net\/\*\*\* /);
    assert.match(line('CUSTOS_METRICS_TOKEN'), /\*\*\* +\[env CUSTOS_METRICS_TOKEN\]/);
    assert.match(line('CUSTOS_WEBHOOK_SECRET'), /\*\*\* +\[env CUSTOS_WEBHOOK_SECRET\]/);
    assert.match(result.stderr, /^custos: warning: --store carries a password on the command line.*--store-password-file or CUSTOS_STORE_PASSWORD/);
    const startLine = JSON.stringify(settingsForLog(resolveServeOptions(argv, env), env));
    for (const printed of [result.stdout, result.stderr, startLine])
      for (const value of [inlineStorePassword, metricsToken, webhookSecret, smtpPassword, rpcKey, webhookPath, checkpointToken])
        assert.ok(!printed.includes(value), `a secret was printed: ${printed}`);
    assert.ok(startLine.includes('"store":"postgres://custos:***@db.internal/custos"'), startLine);
  });

  it('every table entry resolves from its variable, and is documented', () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, option] of Object.entries(SERVE_OPTIONS) as Array<[ServeOptionName, (typeof SERVE_OPTIONS)[ServeOptionName]]>)
      env[envNameOf(name)] = option.type === 'boolean' ? 'true' : 'x';
    const resolved = resolveServeOptions([], env);
    for (const name of Object.keys(SERVE_OPTIONS) as ServeOptionName[]) assert.deepEqual(resolved.sources[name], { env: envNameOf(name) });
    // and docs/configuration.md names each one's flag, variable and file key
    const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const name of Object.keys(SERVE_OPTIONS))
      assert.ok(doc.includes(`| \`--${name}\` | \`${envNameOf(name)}\``) && doc.includes(`| \`${fileKeyOf(name)}\` |`), `docs/configuration.md: ${name}`);
  });
});

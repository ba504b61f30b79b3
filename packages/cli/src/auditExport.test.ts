import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '@custos/kernel';
import { createTestSigner, type TestSigner } from '@custos/server/testing';
import { createProgress } from './progress.js';
import { assertFailure, runCliInProcess, storeArgs, testArtifactsDir } from './testing/cliHarness.js';

// Issue 15 points 4 and 9: `custos audit list` and `custos audit export --format jsonl` read the log
// filtered, so that "what did wallet X sign last week, and who asked" is one command; export streams
// every matching record with progress on stderr (plain lines off a terminal, none with --quiet).
// One signer for the file (a real store of the pass); the CLI runs in-process on its store.

const DAY = 86_400_000;
const HASH = 'cd'.repeat(32);
let signer: TestSigner;
let backend: { id: string; token: string };
let args: string[];

before(async () => {
  // the CLI's --since 7d is relative to the real clock: the signer's clock starts 9 days ago
  const start = Date.now() - 9 * DAY;
  signer = await createTestSigner({ startMs: start, policyDefaults: { rawHash: 'allow' } });
  const key = await createApiKey(signer.store, { name: 'backend', scopes: ['sign'] });
  backend = { id: key.id, token: key.token };
  for (const [day, wallet] of [
    [0, 'alice'], // older than a week
    [5, 'bob'],
    [8, 'alice'],
  ] as const) {
    signer.clock.now = start + day * DAY;
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(backend.token),
      payload: { walletName: wallet, keyIndex: 0, hash: HASH },
    });
    assert.equal(res.statusCode, 200, res.body);
  }
  args = storeArgs(signer.location);
});

after(async () => {
  await signer?.close();
});

describe('custos audit list and export', () => {
  test('one command: what alice signed last week, and who asked', async () => {
    const out = await runCliInProcess([
      'audit',
      'list',
      ...args,
      '--wallet',
      'alice',
      '--action',
      'sign.*',
      '--decision',
      'allowed',
      '--since',
      '7d',
      '--json',
    ]);
    assert.equal(out.code, 0, out.stderr);
    const { records, more } = JSON.parse(out.stdout) as { records: Array<{ walletName: string; action: string; appId: string }>; more: boolean };
    assert.deepEqual(
      records.map((r) => [r.walletName, r.action, r.appId]),
      [['alice', 'sign.hash', backend.id]],
    );
    assert.equal(more, false);
    // the same as text: one line a record, then the count
    const text = await runCliInProcess(['audit', 'list', ...args, '--wallet', 'alice', '--action', 'sign.*', '--since', '7d']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, text.stdout);
    assert.match(lines[0] ?? '', new RegExp(`\\tallowed\\tsign\\.hash\\twallet=alice\\tapp=${backend.id}\\top=[0-9a-f]{64}`));
    assert.equal(lines[1], '1 records');
  });

  test('export --format jsonl: every matching record once, oldest first, progress lines on a non-terminal stderr; --quiet none; --out 0600', async () => {
    const all = await runCliInProcess(['audit', 'export', ...args, '--format', 'jsonl']);
    assert.equal(all.code, 0, all.stderr);
    const records = all.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; action: string });
    assert.deepEqual(
      records.map((r) => r.seq),
      records.map((_, i) => i + 1),
    );
    assert.equal(records[0]?.action, 'sys.init', "init's own record is the first of the chain");
    // off a terminal a quick export prints no progress (the lines start after 5 s; see the progress tests)
    assert.ok(all.stderr === '' || /audit export: \d+\/\d+ done in \d+s\n$/.test(all.stderr), all.stderr);

    const quiet = await runCliInProcess(['audit', 'export', ...args, '--wallet', 'bob', '--quiet']);
    assert.deepEqual([quiet.code, quiet.stderr], [0, '']);
    assert.equal(quiet.stdout.trimEnd().split('\n').length, 1);

    const file = join(testArtifactsDir(), `audit-export-${process.pid}-${Date.now()}.jsonl`);
    const toFile = await runCliInProcess(['audit', 'export', ...args, '--action', 'sign.hash', '--out', file, '--quiet']);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal(toFile.stdout, '');
    assert.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 3);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // an existing file is never overwritten
    assertFailure(await runCliInProcess(['audit', 'export', ...args, '--out', file]), 2, 'invalid_input', '--out');
  });

  test('audit verify and recover take --quiet; a quick run off a terminal prints no progress', async () => {
    for (const extra of [[], ['--quiet']]) {
      const verify = await runCliInProcess(['audit', 'verify', ...args, ...extra]);
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stdout, /^audit chain OK: \d+ records/);
      assert.ok(extra.length === 0 ? !verify.stderr.includes('\r') : verify.stderr === '', verify.stderr);
    }
  });

  test('bad options are invalid_input naming the option', async () => {
    for (const [extra, option] of [
      [['--decision', 'maybe'], '--decision'],
      [['--since', 'last week'], '--since'],
      [['--op-hash', 'xyz'], '--op-hash'],
      [['--format', 'csv'], '--format'],
      [['--wallet', 'a', '--wallet', 'b'], '--wallet'],
    ] as const) {
      assertFailure(await runCliInProcess(['audit', 'export', ...args, ...extra]), 2, 'invalid_input', option);
    }
    assertFailure(await runCliInProcess(['audit', 'list', ...args, '--limit', '0']), 2, 'invalid_input', '--limit');
    // serve's SIEM stream: its three options together
    assertFailure(
      await runCliInProcess(['serve', ...args, '--audit-stream-webhook', 'http://127.0.0.1:9/x']),
      2,
      'invalid_input',
      '--audit-stream-secret-file',
    );
  });
});

test('apikey list --json: the keys as JSON, no secret material', async () => {
  const out = await runCliInProcess(['apikey', 'list', ...args, '--json']);
  assert.equal(out.code, 0, out.stderr);
  const { apiKeys } = JSON.parse(out.stdout) as { apiKeys: Array<Record<string, unknown>> };
  const mine = apiKeys.find((k) => k.id === backend.id);
  assert.deepEqual(Object.keys(mine ?? {}).sort(), ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'scopes', 'tenant', 'walletPrefix']);
  assert.deepEqual([mine?.name, mine?.scopes, mine?.revokedAt], ['backend', ['sign'], null]);
  assert.ok(!out.stdout.includes(backend.token.split('.').at(-1) ?? backend.token));
});

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, stream: { isTTY, columns: 60, write: (c: string) => chunks.push(c) } };
  };

  test('a terminal gets one bar redrawn in place with an estimate, ended by a newline', () => {
    let t = 0;
    const { chunks, stream } = sink(true);
    const p = createProgress({ stream, label: 'rekey', total: 100, now: () => t });
    for (let done = 10; done <= 100; done += 10) {
      t += 1000;
      p.update(done);
    }
    p.finish();
    assert.ok(chunks.slice(0, -1).every((c) => c.startsWith('\r') && !c.includes('\n')));
    assert.match(chunks[0] ?? '', /^\rrekey \[##-+\] 10% 10\/100 ETA 9s/);
    assert.match(chunks.at(-1) ?? '', /^ done in 10s\n$/);
  });

  test('elsewhere, after the first interval, a plain line every 10 % or every interval, no control characters; --quiet nothing', () => {
    let t = 0;
    const { chunks, stream } = sink(false);
    const p = createProgress({ stream, label: 'migrate', total: 1000, now: () => t, intervalMs: 5000 });
    for (let done = 1; done <= 1000; done += 1) {
      t += 10;
      p.update(done);
    }
    p.finish();
    assert.ok(chunks.every((c) => c.endsWith('\n') && !c.includes('\r') && !c.includes('\u001b')));
    // nothing in the first 5 s (a quick run stays silent), then each 10 % step
    assert.deepEqual(chunks.slice(0, 2), ['migrate: 500/1000 (50%), about 5s left\n', 'migrate: 600/1000 (60%), about 4s left\n']);
    assert.equal(chunks.length, 7, chunks.join(''));
    assert.equal(chunks.at(-1), 'migrate: 1000/1000 done in 10s\n');
    const quiet = sink(false);
    const q = createProgress({ stream: quiet.stream, label: 'x', total: 10, quiet: true });
    q.update(5);
    q.finish();
    assert.deepEqual(quiet.chunks, []);
  });
});

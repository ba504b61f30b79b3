import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { migrateCommand } from './commands/migrate.js';
import { freshStoreLocation, storeArgs } from './testing/cliHarness.js';

// Issue 15 point 9: `custos migrate` shows its progress — the migrations applied of those pending —
// on a terminal as a bar (plain lines off one once it has run 5 s; none with --quiet). A fresh store
// of the pass (a data directory, or a new PostgreSQL schema) has every migration pending.

function io(isTTY: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { stdout: { write: (c: string) => out.push(c) }, stderr: { isTTY, columns: 100, write: (c: string) => err.push(c) } },
  };
}

describe('custos migrate: progress', () => {
  test('on a terminal: a bar that ends with every pending migration applied; a second run has none pending and draws nothing', async () => {
    const location = freshStoreLocation();
    const first = io(true);
    assert.equal(await migrateCommand(storeArgs(location), first.io), 0);
    const drawn = first.err.join('');
    const counts = [...drawn.matchAll(/migrate \[[#-]+\] \d+% (\d+)\/(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.ok(counts.length >= 1, drawn);
    const [done = 0, total = 0] = counts.at(-1) ?? [];
    assert.ok(total >= 20, `the migrations of a fresh store: ${total}`);
    assert.equal(done, total, 'the last bar drawn shows every pending migration applied');
    assert.match(drawn, /done in \d+s\n$/);
    assert.match(first.out.join(''), /at versions 1, 2, 3,/);
    const again = io(true);
    assert.equal(await migrateCommand(storeArgs(location), again.io), 0);
    assert.equal(again.err.join(''), '', 'nothing pending: no bar');
  });

  test('--quiet: nothing on stderr; off a terminal a quick run prints no progress line', async () => {
    for (const [tty, args] of [
      [true, ['--quiet']],
      [false, []],
    ] as const) {
      const location = freshStoreLocation();
      const run = io(tty);
      assert.equal(await migrateCommand([...storeArgs(location), ...args], run.io), 0);
      assert.equal(run.err.join(''), '', `tty ${tty} ${args.join(' ')}`);
      assert.match(run.out.join(''), /at versions /);
    }
  });
});

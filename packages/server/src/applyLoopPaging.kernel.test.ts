import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 point 2 (review LOW): one apply pass looks at 1000 due rows at most (read 100 at a time),
// and a pass that stops at that bound is continued by the next from where it stopped. Here the
// kernel's paging option scales both down (pages of 10, at most 100 rows a pass: the same code
// crossing the same bound with a tenth of the rows, each made through the kernel's own request and
// confirm). More rows than the bound, the first bound's worth of which wait (their wallets frozen):
// the next pass reaches the rows after them and applies them; once the frozen wallets thaw, every row
// is applied over the passes; a wallet frozen for good keeps its rows waiting without holding up the
// others. TOTP-only wallets; a stand-in approves their admin quorum (not the subject here).

const T0 = Date.UTC(2026, 11, 11, 8, 0, 0);
const HOUR = 3_600_000;
const PAGE = 10; // pendingChanges.ts APPLY_PAGE is 100
const PASS_MAX = 100; // pendingChanges.ts APPLY_PASS_MAX is 1000
const PER_WALLET = 8; // MAX_OPEN_CHANGES_PER_WALLET
const HELD = PASS_MAX; // rows whose wallets the freeze hook holds, first in the loop's order
const FROZEN = 3; // rows of a wallet frozen by an operator, for good
const LATER = 15; // rows after all of them (more than a page)

describe('the apply loop past its bound of due rows', () => {
  let signer: TestSigner;
  let app: App;
  const uris = new Map<string, string>();
  /** Wallets the freeze hook says are frozen (kernel option timelock.hooks.isFrozen: a freeze check besides the row's own). */
  const held = new Set<string>();

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      kernelOptions: {
        timelock: {
          delayMs: HOUR,
          applyPaging: { page: PAGE, passMax: PASS_MAX },
          hooks: { ...QUORUM_APPROVED_STAND_IN, isFrozen: async (_tx, walletName) => held.has(walletName) },
        },
      },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    // The app's own loop (every 30 s of real time) would run passes of its own between this test's:
    // closed, so that each pass here is the one the test counts (nothing here goes over HTTP).
    await signer.app.close();
  });
  after(async () => {
    await signer.close();
  });

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  /** `count` pending changes over fresh TOTP wallets named `prefix`<n>, in the loop's order; returns their ids and wallets. */
  async function pendingChanges(prefix: string, count: number): Promise<{ ids: string[]; wallets: string[] }> {
    const ids: string[] = [];
    const wallets: string[] = [];
    for (let w = 0; ids.length < count; w++) {
      const walletName = `${prefix}${w}`;
      const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
      recordTestSecret('totpUri', otpauthUri);
      uris.set(walletName, otpauthUri);
      wallets.push(walletName);
      for (let i = 0; i < PER_WALLET && ids.length < count; i++) {
        const address = `0x${(ids.length + 1).toString(16).padStart(40, '0')}`;
        const created = await signer.kernel.requestChange(app, { walletName, kind: 'safeAddress.set', payload: { address } });
        recordTestSecret('changeCapability', created.capability);
        assert.equal((await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(walletName) })).state, 'pending');
        ids.push(created.id);
      }
    }
    return { ids, wallets };
  }

  async function states(ids: readonly string[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const wanted = new Set(ids);
    for (const row of await signer.sql('SELECT id, state FROM pending_changes')) {
      if (!wanted.has(String(row.id))) continue;
      counts[String(row.state)] = (counts[String(row.state)] ?? 0) + 1;
    }
    return counts;
  }

  async function pass(expectedApplied: number, what: string): Promise<void> {
    const started = Date.now();
    assert.equal(await signer.kernel.applyDueChanges(), expectedApplied, what);
    console.log(`# pass: ${expectedApplied} applied in ${Date.now() - started} ms (${what})`);
  }

  it(`${HELD + FROZEN + LATER} due rows, the first ${HELD} waiting: the next pass continues where the last stopped, and every row is applied in the end`, async () => {
    const started = Date.now();
    const first = await pendingChanges('held', HELD);
    for (const w of first.wallets) held.add(w);
    const frozen = await pendingChanges('frozen', FROZEN);
    await signer.kernel.freezeWalletByAdmin(app, { walletName: frozen.wallets[0] as string });
    const later = await pendingChanges('later', LATER);
    console.log(`# ${HELD + FROZEN + LATER} pending changes made in ${Date.now() - started} ms`);

    // All due, in this order: the held rows, the frozen wallet's, then the later ones.
    signer.clock.now += 2 * HOUR;
    const due = await signer.sql("SELECT id FROM pending_changes WHERE state = 'pending' AND effective_at <= $1 ORDER BY effective_at, id", signer.clock.now);
    const expected = [...first.ids, ...frozen.ids, ...later.ids];
    const got = due.map((r) => String(r.id));
    const at = expected.findIndex((id, i) => got[i] !== id);
    assert.equal(at, -1, `the due rows in the loop's order: ${got.length} of ${expected.length}, first difference at ${at}`);
    assert.equal(got.length, expected.length);

    // Pass 1 looks at the first PASS_MAX rows (all waiting) and stops at its bound: nothing applied.
    await pass(0, 'the bound reached on waiting rows');
    // Pass 2 continues after them: the frozen wallet's rows wait, the later ones are applied.
    await pass(LATER, 'continued where the last pass stopped');
    assert.deepEqual(await states(later.ids), { applied: LATER });
    // Pass 3 reached the end: it starts over at the head, where the held rows fill its bound again.
    await pass(0, 'started over: the bound reached again');

    // The held wallets thaw. Pass 4 continues after them (only the frozen wallet's rows, which wait);
    // pass 5 starts over and applies PASS_MAX (its bound); pass 6 continues: nothing is left but the frozen wallet's.
    held.clear();
    await pass(0, 'continued after the bound: the frozen wallet’s rows wait');
    await pass(PASS_MAX, 'started over: the thawed rows, up to the bound');
    await pass(0, 'continued: only the frozen wallet’s rows are left, and they wait');
    assert.deepEqual(await states(first.ids), { applied: HELD });
    assert.deepEqual(await states(frozen.ids), { pending: FROZEN }, 'a frozen wallet’s changes wait');
    const audits = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.apply');
    assert.equal(audits.filter((r) => r.decision === 'allowed').length, HELD + LATER, 'each applied once');
    assert.equal(audits.filter((r) => r.decision === 'denied').length, 0, 'nothing refused');
  });
});

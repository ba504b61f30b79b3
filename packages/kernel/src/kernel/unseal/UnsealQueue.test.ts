import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_QUEUED_UNSEALS_PER_CLIENT, UnsealQueue } from './UnsealQueue.js';

/** An attempt that runs until released (a slow scrypt or HSM round trip), recording its start. */
function slowAttempt(log: string[], name: string): { attempt: () => Promise<string>; release(): void } {
  let release: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    attempt: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
    release: () => release(),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const network = (key: string) => ({ key, operator: false });
const OPERATOR = { key: 'admin-socket', operator: true };

describe('UnsealQueue', () => {
  it('runs attempts one at a time, in arrival order, failures included', async () => {
    const queue = new UnsealQueue();
    const log: string[] = [];
    const a = slowAttempt(log, 'a');
    const b = slowAttempt(log, 'b');
    const ra = queue.run(network('x'), a.attempt);
    const rFail = queue.run(network('y'), async () => {
      log.push('fail');
      throw new Error('wrong');
    });
    const rb = queue.run(network('z'), b.attempt);
    await tick();
    assert.deepEqual(log, ['start a']);
    a.release();
    b.release();
    assert.equal(await ra, 'a');
    await assert.rejects(rFail, /wrong/);
    assert.equal(await rb, 'b');
    assert.deepEqual(log, ['start a', 'end a', 'fail', 'start b', 'end b']);
  });

  it(`a network client has at most ${MAX_QUEUED_UNSEALS_PER_CLIENT} attempts under way; more are refused unheard`, async () => {
    const queue = new UnsealQueue();
    const log: string[] = [];
    const slow = [slowAttempt(log, 'a1'), slowAttempt(log, 'a2'), slowAttempt(log, 'a3')];
    const runs = slow.slice(0, MAX_QUEUED_UNSEALS_PER_CLIENT).map((s) => queue.run(network('attacker'), s.attempt));
    await assert.rejects(queue.run(network('attacker'), (slow[2] as { attempt: () => Promise<string> }).attempt), {
      name: 'CustosError',
      code: 'unseal_throttled',
      details: { retryAfterSeconds: 1 },
    });
    // another client is not bounded by the attacker's attempts
    const other = queue.run(network('operator-ip'), async () => 'ok');
    for (const s of slow) s.release();
    await Promise.all(runs);
    assert.equal(await other, 'ok');
    assert.ok(!log.includes('start a3'));
    // once its attempts ended, the client may try again
    assert.equal(await queue.run(network('attacker'), async () => 'again'), 'again');
  });

  it("an operator's attempt waits only for the running attempt, never for the queued network ones", async () => {
    const queue = new UnsealQueue();
    const log: string[] = [];
    const attackers = Array.from({ length: 50 }, (_, i) => slowAttempt(log, `n${i}`));
    const runs = attackers.map((s, i) => queue.run(network(`ip:${i}`), s.attempt));
    await tick();
    const operator = queue.run(OPERATOR, async () => {
      log.push('operator');
      return 'unsealed';
    });
    assert.equal(queue.waiting, 50);
    (attackers[0] as { release(): void }).release();
    assert.equal(await operator, 'unsealed');
    assert.deepEqual(log, ['start n0', 'end n0', 'operator']);
    for (const s of attackers) s.release();
    await Promise.all(runs);
    assert.equal(queue.waiting, 0);
  });

  it('an operator is never refused for attempts under way', async () => {
    const queue = new UnsealQueue();
    const runs = Array.from({ length: MAX_QUEUED_UNSEALS_PER_CLIENT + 3 }, (_, i) => queue.run(OPERATOR, async () => i));
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3, 4]);
  });
});

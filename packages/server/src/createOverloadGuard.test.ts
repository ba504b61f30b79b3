// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOverloadGuard, defaultMaxInFlightPerClient } from './createOverloadGuard.js';

describe('createOverloadGuard', () => {
  it('refuses a client over its share while others are admitted, and every count comes back to 0', () => {
    const guard = createOverloadGuard({ maxInFlight: 10, maxInFlightPerClient: 3 });
    const mine = [guard.tryEnter('a'), guard.tryEnter('a'), guard.tryEnter('a')];
    assert.ok(mine.every((release) => release !== undefined));
    assert.equal(guard.tryEnter('a'), undefined, "over a's share");
    const theirs = guard.tryEnter('b');
    assert.ok(theirs !== undefined);
    assert.equal(guard.inFlight, 4);
    assert.equal(guard.inFlightOf('a'), 3);
    mine[0]?.();
    mine[0]?.(); // idempotent
    assert.equal(guard.inFlightOf('a'), 2);
    const again = guard.tryEnter('a');
    assert.ok(again !== undefined, "a released slot is the client's again");
    for (const release of [...mine, again]) release?.();
    theirs();
    assert.equal(guard.inFlightOf('b'), 0);
    assert.equal(guard.inFlightOf('a'), 0);
    assert.equal(guard.inFlight, 0);
  });

  it('a request whose body is in no longer counts against its client: a busy backend may use every slot', () => {
    const guard = createOverloadGuard({ maxInFlight: 10, maxInFlightPerClient: 2 });
    const received = Array.from({ length: 8 }, () => {
      const admitted = guard.tryEnter('backend');
      assert.ok(admitted !== undefined);
      admitted.received();
      admitted.received(); // idempotent
      return admitted;
    });
    assert.equal(guard.inFlight, 8);
    assert.equal(guard.inFlightOf('backend'), 0);
    const receiving = [guard.tryEnter('backend'), guard.tryEnter('backend')];
    assert.ok(receiving.every((admitted) => admitted !== undefined));
    assert.equal(guard.tryEnter('slow'), undefined, 'the global limit still holds');
    for (const admitted of [...received, ...receiving]) admitted?.();
    assert.equal(guard.inFlight, 0);
    assert.equal(guard.inFlightOf('backend'), 0);
  });

  it('the share defaults to half the slots, at least 1, and never exceeds the limit', () => {
    assert.equal(defaultMaxInFlightPerClient(1024), 512);
    assert.equal(defaultMaxInFlightPerClient(16), 8);
    assert.equal(defaultMaxInFlightPerClient(1), 1);
    assert.equal(createOverloadGuard({ maxInFlight: 1024 }).maxInFlightPerClient, 512);
    assert.equal(createOverloadGuard({ maxInFlight: 4, maxInFlightPerClient: 9 }).maxInFlightPerClient, 4);
    assert.throws(() => createOverloadGuard({ maxInFlight: 4, maxInFlightPerClient: 0 }), RangeError);
  });

  it('with targetLatencyMs, admits about as many busy requests as complete in that time (never fewer than minInFlight, never more than maxInFlight)', () => {
    const clock = { now: 0 };
    const guard = createOverloadGuard({ maxInFlight: 1000, maxInFlightPerClient: 1000, targetLatencyMs: 1000, minInFlight: 10, now: () => clock.now });
    /** Admits one request and marks its body as in (busy), or undefined if refused. */
    const enterWhole = (client: string) => {
      const release = guard.tryEnter(client);
      release?.received();
      return release;
    };
    assert.equal(guard.limit, 10, 'idle: the floor');
    const admitted = Array.from({ length: 10 }, (_, i) => enterWhole(`c${i}`));
    assert.ok(admitted.every((release) => release !== undefined));
    assert.equal(guard.busy, 10);
    assert.equal(guard.full(), true);
    assert.equal(guard.tryEnter('c'), undefined, 'at the floor with nothing completed');
    for (const release of admitted) release?.();
    // 100 completions a second for 2 s: the limit is about 100 (what completed in the last 2 s, per 1 s; the current 250 ms bucket is partial)
    for (let i = 0; i < 200; i++) {
      clock.now += 10;
      enterWhole('c')?.();
    }
    assert.ok(guard.limit >= 85 && guard.limit <= 105, `limit ${guard.limit}`);
    const held = Array.from({ length: 150 }, (_, i) => enterWhole(`c${i}`)).filter((release) => release !== undefined);
    assert.equal(held.length, guard.limit, 'admitted up to the limit, the rest refused');
    // nothing completes for 2 s: back to the floor, the held requests still count
    clock.now += 2_500;
    assert.equal(guard.limit, 10);
    assert.equal(guard.tryEnter('c'), undefined);
    for (const release of held) release?.();
    assert.equal(guard.inFlight, 0);
    assert.equal(guard.busy, 0);
    // without targetLatencyMs the limit is maxInFlight whatever the rate
    assert.equal(createOverloadGuard({ maxInFlight: 7 }).limit, 7);
  });

  it('with targetLatencyMs, requests still being received do not count against the rate-based limit: a slow client takes only its share of maxInFlight, a busy backend may use the whole limit; stuck is judged against either limit', () => {
    const clock = { now: 0 };
    // the defaults of buildApp: 1,024 slots, a share of 512, the floor 64
    const guard = createOverloadGuard({ maxInFlight: 1024, targetLatencyMs: 1000, stuckAfterMs: 30_000, now: () => clock.now });
    assert.equal(guard.limit, 64);
    // the attack of the first version's review: a slow client (bodies trickling in, never received)
    const slow = Array.from({ length: 600 }, () => guard.tryEnter('slow')).filter((release) => release !== undefined);
    assert.equal(slow.length, 512, 'its share of maxInFlight, no more');
    assert.equal(guard.busy, 0);
    assert.equal(guard.full(), false, 'the rate-based limit is untouched');
    // one busy backend whose requests arrive whole uses the whole rate-based limit (not half of it)
    const backend = Array.from({ length: 64 }, () => {
      const release = guard.tryEnter('backend');
      release?.received();
      return release;
    });
    assert.ok(
      backend.every((release) => release !== undefined),
      'the whole limit in force for one client',
    );
    assert.equal(guard.busy, 64);
    assert.equal(guard.tryEnter('late'), undefined, 'at the limit in force');
    // nothing completes: stuck after stuckAfterMs at the rate-based limit (it used to wait for 1,024)
    assert.equal(guard.stuck(), false);
    clock.now += 30_000;
    assert.equal(guard.stuck(), true);
    for (const release of backend) release?.();
    assert.equal(guard.stuck(), false, 'below the limit again: not stuck, even with the slow client still there');
    clock.now += 60_000;
    assert.equal(guard.stuck(), false, 'requests being received alone never make the guard stuck below maxInFlight');
    for (const release of slow) release?.();
    assert.equal(guard.inFlight, 0);
  });

  it('with targetLatencyMs, an operator request meets maxInFlight and its share only; a request away (waiting on the node) is not busy; a burst after a quiet spell is not stuck at once', () => {
    const clock = { now: 0 };
    const guard = createOverloadGuard({
      maxInFlight: 70,
      maxInFlightPerClient: 70,
      targetLatencyMs: 100,
      minInFlight: 64,
      stuckAfterMs: 30_000,
      now: () => clock.now,
    });
    clock.now += 60_000; // a quiet minute: nothing completed, lastProgress is old
    const whole = Array.from({ length: 64 }, () => {
      const release = guard.tryEnter('backend');
      release?.received();
      return release;
    });
    assert.ok(whole.every((release) => release !== undefined));
    assert.equal(guard.full(), true);
    assert.equal(guard.stuck(), false, 'reaching the limit is movement: stuck only after stuckAfterMs from here');
    clock.now += 30_000;
    assert.equal(guard.stuck(), true);
    // the rate-based limit is full: a plain request is refused, an operator's is admitted up to maxInFlight
    assert.equal(guard.tryEnter('operator'), undefined);
    const operators = Array.from({ length: 8 }, () => guard.tryEnter('operator', { operator: true }));
    assert.equal(operators.filter((release) => release !== undefined).length, 6, 'up to maxInFlight (70), no further');
    for (const release of operators) release?.();
    // one of the busy requests waits on the node: it keeps its slot, the busy count drops, another is admitted
    const first = whole[0];
    assert.ok(first !== undefined);
    const back = first.away();
    assert.equal(guard.busy, 63);
    assert.equal(guard.inFlight, 64);
    assert.equal(first.away()(), undefined, 'a second away while away changes nothing');
    assert.equal(guard.busy, 63);
    const extra = guard.tryEnter('backend');
    assert.ok(extra !== undefined);
    extra.received();
    assert.equal(guard.tryEnter('backend'), undefined, 'full again');
    back();
    back();
    assert.equal(guard.busy, 65, 'back from the node: busy again (once)');
    // a request still being received cannot go away (it is not busy): busy never goes negative
    const receiving = guard.tryEnter('slow', { operator: true });
    assert.ok(receiving !== undefined);
    const busyBefore = guard.busy;
    receiving.away()();
    receiving.away();
    assert.equal(guard.busy, busyBefore);
    receiving();
    // released while away: the away count ends with it
    const second = whole[1];
    second?.away();
    second?.();
    extra();
    for (const release of whole) release?.();
    assert.equal(guard.inFlight, 0);
    assert.equal(guard.busy, 0);
  });
});

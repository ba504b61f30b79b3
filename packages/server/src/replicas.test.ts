import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { computeOpHash, generateTotp, type HashSignature, KERNEL_VERSION, parseOtpauthUri, totpStep } from '@custos/kernel';
import { POSTGRES_MIGRATIONS } from './stores/postgres/migrations.js';
import { dropTestSchema, recordTestSecret, testArtifactsDir, testStoreKind } from './testing/createTestSigner.js';
import {
  callReplica,
  createReplicaCluster,
  errorCodeOf,
  type HttpResult,
  initArgs,
  newTestSchemaUrl,
  type Replica,
  type ReplicaCluster,
  runBounded,
  schemaPool,
  startReplica,
  writeSignerInputs,
} from './testing/replicas.js';
import { runCustos } from './testing/runCustos.js';
import { verifySignature } from './testing/verifySignature.js';

// Several stateless kernel replicas — separate `custos serve` processes — on one PostgreSQL schema
// must be exactly as safe as one: a TOTP code is used at most once, throttle counters are shared,
// and the audit log stays one hash chain with no fork and no gap, even when a replica dies
// mid-burst. Time is the real clock (the replicas cannot be given another): codes are computed
// from the enrolment's secret at Date.now(), and every round is short next to the 30 s step.

const IN_FLIGHT = 128;

/** The body of a 200 from POST /v1/sign/hash. */
type SignResponse = HashSignature;

/** A 200 from /v1/sign/hash together with what was asked. */
interface Signed {
  walletName: string;
  keyIndex: number;
  hash: string;
  body: SignResponse;
}

if (testStoreKind() !== 'postgres') {
  it('runs in the PostgreSQL pass', { skip: 'replica tests need PostgreSQL; they run in the postgres pass of npm test (scripts/test.mjs)' }, () => undefined);
} else {
  describe('replicas: several kernel processes on one PostgreSQL database', { timeout: 600_000 }, () => {
    let cluster: ReplicaCluster;
    let token: string;
    /** Audit records the test's requests caused for sure; `unknown`: requests whose outcome was not seen (each 0 or 1 record). */
    const tally = { records: 2 /* sys.init and store.mac_records at init */ + 1 /* apikey create */ + 3 /* each replica's sys.unseal at start */, unknown: 0 };
    const signed: Signed[] = [];

    before(
      async () => {
        // The replicas sign raw hashes for TOTP-enrolled wallets: their deployment allows it (the kernel's default refuses).
        const policyFile = join(testArtifactsDir(), `policy-${process.pid}-${Date.now()}.json`);
        writeFileSync(policyFile, JSON.stringify({ rawHash: 'allow' }));
        cluster = await createReplicaCluster({ count: 3, serveArgs: ['--policy-file', policyFile] }); // 3: see tally
        token = cluster.apiKey;
      },
      { timeout: 60_000 },
    );
    after(
      async () => {
        await cluster?.close();
      },
      { timeout: 30_000 },
    );

    const replica = (i: number): Replica => {
      const r = cluster.replicas[i % cluster.replicas.length];
      assert.ok(r !== undefined);
      return r;
    };

    /** Counts the audit record an answer implies: a decision (200, 403, 409, 429) writes one; 400/401/404 none. */
    const count = (result: HttpResult): HttpResult => {
      if ([200, 403, 409, 429].includes(result.status)) tally.records += 1;
      else if (result.status >= 500) tally.unknown += 1;
      return result;
    };
    const enroll = async (r: Replica, walletName: string) => count(await callReplica(r, '/v1/totp/enroll', { method: 'POST', token, json: { walletName } }));
    const getKey = async (r: Replica, walletName: string, keyIndex: number) =>
      count(await callReplica(r, `/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`, { token }));
    const getWallet = (r: Replica, walletName: string) => callReplica(r, `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, { token });
    const sign = async (r: Replica, request: { walletName: string; keyIndex: number; hash: string; code?: string }) => {
      const result = count(await callReplica(r, '/v1/sign/hash', { method: 'POST', token, json: request }));
      if (result.status === 200)
        signed.push({ walletName: request.walletName, keyIndex: request.keyIndex, hash: request.hash, body: result.body as SignResponse });
      return result;
    };

    /** The TOTP secret of an enrolment answer (recorded for the post-suite secret scan). */
    const secretOf = (result: HttpResult): Uint8Array => {
      assert.equal(result.status, 200, JSON.stringify(result.body));
      const uri = (result.body as { otpauthUri: string }).otpauthUri;
      recordTestSecret('replicas totpSecretBase32', new URL(uri).searchParams.get('secret') ?? '');
      return parseOtpauthUri(uri).secret;
    };
    const codeAt = (secret: Uint8Array, nowMs: number): string => {
      const code = generateTotp(secret, Math.floor(nowMs / 1000));
      recordTestSecret('replicas totpCode', code);
      return code;
    };

    it('uses each code at most once: 100 wallets × 100 concurrent attempts over 3 replicas', { timeout: 300_000 }, async () => {
      const wallets = Array.from({ length: 100 }, (_, i) => `double-use-${i}@replicas.test`);
      const enrolments = await runBounded(
        wallets.map((w, i) => () => enroll(replica(i), w)),
        16,
      );
      const secrets = new Map(wallets.map((w, i) => [w, secretOf(enrolments[i] as HttpResult)]));
      // the public keys, read on another replica than the one that enrolled
      const keyReads = await runBounded(
        wallets.map((w, i) => () => getKey(replica(i + 1), w, 0)),
        16,
      );
      const publicKeys = new Map(
        wallets.map((w, i) => {
          const read = keyReads[i] as HttpResult;
          assert.equal(read.status, 200, JSON.stringify(read.body));
          return [w, (read.body as { publicKey: string }).publicKey];
        }),
      );

      // Each wallet's code is computed when its first attempt leaves (so that it is current), then
      // the same code goes out 100 times, each attempt for a different hash, over all 3 replicas.
      const codes = new Map<string, { code: string; atMs: number }>();
      const codeFor = (w: string) => {
        let entry = codes.get(w);
        if (entry === undefined) {
          const atMs = Date.now();
          entry = { code: codeAt(secrets.get(w) as Uint8Array, atMs), atMs };
          codes.set(w, entry);
        }
        return entry;
      };
      const lastAnswerMs = new Map<string, number>();
      const tasks = wallets.flatMap((w, i) =>
        Array.from({ length: 100 }, (_, k) => async () => {
          const hash = createHash('sha256').update(`${w}/${k}`).digest('hex');
          const { code } = codeFor(w);
          const sentMs = Date.now();
          const result = await sign(replica(i + k), { walletName: w, keyIndex: 0, hash, code });
          const answeredMs = Date.now();
          lastAnswerMs.set(w, answeredMs);
          return { w, k, hash, result, sentMs, answeredMs };
        }),
      );
      const started = Date.now();
      const results = await runBounded(tasks, IN_FLIGHT);
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `replicas: ${results.length} sign attempts over 3 replicas in ${seconds.toFixed(1)} s (${Math.round(results.length / seconds)}/s, ${IN_FLIGHT} in flight; steps ${totpStep(started)}..${totpStep(Date.now())})`,
      );

      // no 5xx, no other status than the three the rules allow
      const statuses = new Map<string, number>();
      for (const { result } of results)
        statuses.set(`${result.status} ${errorCodeOf(result) ?? ''}`, (statuses.get(`${result.status} ${errorCodeOf(result) ?? ''}`) ?? 0) + 1);
      assert.deepEqual(Object.fromEntries(statuses), { '200 ': 100, '403 code_reused': 9900 });

      // per wallet: one signature, then 99 reuses, none charged (a retry never locks the owner out)
      for (const w of wallets) {
        const mine = results.filter((r) => r.w === w);
        const span = `${w}: code at ${codes.get(w)?.atMs}, last answer at ${lastAnswerMs.get(w)}`;
        assert.equal(mine.filter((r) => r.result.status === 200).length, 1, span);
        assert.equal(mine.filter((r) => errorCodeOf(r.result) === 'code_reused').length, 99, span);
      }

      // each signature verifies under the wallet's key (read independently) and names its audit record
      const winners = results.filter((r) => r.result.status === 200);
      for (const { w, hash, result } of winners) {
        const body = result.body as SignResponse;
        assert.equal(body.walletName, w);
        assert.equal(body.publicKey, publicKeys.get(w));
        assert.equal(body.signature, `0x${body.r}${body.s}${(27 + body.recoveryId).toString(16)}`);
        assert.equal(verifySignature({ r: body.r, s: body.s, hash, publicKey: body.publicKey, recoveryId: body.recoveryId }), true, `signature of ${w}`);
        assert.equal(body.opHash, computeOpHash({ type: 'hash', walletName: w, keyIndex: 0, hash }));
      }
      assert.equal(new Set(winners.map((r) => (r.result.body as SignResponse).auditSeq)).size, 100, 'one audit record per signature');

      // the database: the step consumed, no failure and no lock on any factor
      const factors = await cluster.sql(
        "SELECT wallet_name, last_accepted_step, failures, locked_until_ms FROM totp_factors WHERE wallet_name LIKE 'double-use-%'",
      );
      assert.equal(factors.length, 100);
      const allowedRows = await cluster.sql(
        "SELECT seq, wallet_name, op_hash, detail FROM audit_log WHERE action = 'sign.hash' AND decision = 'allowed' AND wallet_name LIKE 'double-use-%'",
      );
      assert.equal(allowedRows.length, 100, 'exactly one allowed signature per wallet in the audit log: no double use');
      const allowedBy = new Map(allowedRows.map((row) => [String(row.wallet_name), row]));
      for (const f of factors) {
        const w = String(f.wallet_name);
        const { code, atMs } = codes.get(w) ?? assert.fail(`no code for ${w}`);
        // the steps this code stands for, around the time it was computed (a code may repeat)
        const secret = secrets.get(w) as Uint8Array;
        const base = totpStep(atMs);
        const steps = [base - 1, base, base + 1, base + 2].filter((s) => generateTotp(secret, s * 30) === code);
        assert.ok(steps.includes(Number(f.last_accepted_step)), `${w}: accepted step ${f.last_accepted_step} is the code's (${steps.join(',')})`);
        assert.equal(Number(f.failures), 0, w);
        assert.equal(f.locked_until_ms, null, w);
        const row = allowedBy.get(w) ?? assert.fail(`no allowed record for ${w}`);
        const winner = winners.find((r) => r.w === w) ?? assert.fail(`no winner for ${w}`);
        assert.equal(Number(row.seq), (winner.result.body as SignResponse).auditSeq);
        assert.equal(row.op_hash, (winner.result.body as SignResponse).opHash);
        assert.equal((JSON.parse(String(row.detail)) as { totpStep: number }).totpStep, Number(f.last_accepted_step));
      }
      const denials = await cluster.sql(
        "SELECT reason, count(*)::int AS n FROM audit_log WHERE action = 'sign.hash' AND decision = 'denied' AND wallet_name LIKE 'double-use-%' GROUP BY reason ORDER BY reason",
      );
      assert.deepEqual(
        denials.map((d) => [d.reason, d.n]),
        [['code_reused', 9900]],
      );
    });

    it('shares throttle counters: 5 wrong codes on 3 replicas lock the factor on all of them', { timeout: 30_000 }, async () => {
      const w = 'throttle@replicas.test';
      const secret = secretOf(await enroll(replica(0), w));
      const nowS = Math.floor(Date.now() / 1000);
      const near = new Set([-2, -1, 0, 1, 2].map((d) => generateTotp(secret, nowS + d * 30)));
      let n = 0;
      while (near.has(String(n).padStart(6, '0'))) n += 1;
      const wrong = String(n).padStart(6, '0');

      const factor = async () => {
        const [row] = await cluster.sql('SELECT last_accepted_step, failures, locked_until_ms FROM totp_factors WHERE wallet_name = $1', [w]);
        return row ?? assert.fail('factor row missing');
      };
      for (let i = 0; i < 5; i++) {
        const result = await sign(replica(i), { walletName: w, keyIndex: 0, hash: randomBytes(32).toString('hex'), code: wrong });
        assert.equal(result.status, 403, `attempt ${i + 1}: ${JSON.stringify(result.body)}`);
        assert.equal(errorCodeOf(result), 'code_invalid');
        assert.equal(result.retryAfter, null);
        assert.equal((await factor()).failures, i + 1, `attempt ${i + 1} on replica ${i % 3} is counted in the shared row`);
      }
      // the 6th attempt, with the right code, on every replica
      const lockedUntil = Number((await factor()).locked_until_ms);
      for (let i = 0; i < 3; i++) {
        const sentMs = Date.now();
        const result = await sign(replica(i), { walletName: w, keyIndex: 0, hash: randomBytes(32).toString('hex'), code: codeAt(secret, Date.now()) });
        const answeredMs = Date.now();
        assert.equal(result.status, 429, `replica ${i}: ${JSON.stringify(result.body)}`);
        assert.equal(errorCodeOf(result), 'factor_throttled');
        const retryAfter = Number(result.retryAfter);
        const bounds = [Math.ceil((lockedUntil - answeredMs) / 1000), Math.ceil((lockedUntil - sentMs) / 1000)] as const;
        assert.ok(
          Number.isInteger(retryAfter) && retryAfter >= bounds[0] && retryAfter <= bounds[1] && retryAfter <= 30,
          `Retry-After ${result.retryAfter} within ${bounds.join('..')}`,
        );
      }
      const row = await factor();
      assert.equal(row.failures, 5, 'refusals while locked are not counted');
      assert.equal(row.last_accepted_step, null, 'nothing was accepted');
      assert.equal(Number(row.locked_until_ms), lockedUntil, 'refusals while locked do not extend the lock');
      assert.ok(lockedUntil > Date.now() + 20_000, 'locked for 30 s from the 5th failure');
      const reasons = await cluster.sql(
        "SELECT decision, reason, count(*)::int AS n FROM audit_log WHERE wallet_name = $1 AND action = 'sign.hash' GROUP BY decision, reason ORDER BY reason",
        [w],
      );
      assert.deepEqual(
        reasons.map((r) => [r.decision, r.reason, r.n]),
        [
          ['denied', 'code_invalid', 5],
          ['denied', 'factor_throttled', 3],
        ],
      );
    });

    /** `custos audit verify`, then the same properties straight from the tables; returns the record count. */
    const assertOneChain = async (): Promise<number> => {
      const verified = await runCustos(['audit', 'verify', '--store', cluster.storeUrl]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.equal(verified.stderr, '');
      // the first line is the chain's; the checkpoint lines follow (docs/audit.md)
      const match = /^audit chain OK: (\d+) records, head seq (\d+) hash ([0-9a-f]{64})\n/.exec(verified.stdout) ?? assert.fail(verified.stdout);
      const records = Number(match[1]);
      assert.equal(Number(match[2]), records);
      const [stats] = await cluster.sql('SELECT count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last FROM audit_log');
      assert.deepEqual(stats, { n: records, first: 1, last: records }, 'seq is 1..N with no gap');
      const [head] = await cluster.sql('SELECT h.seq::int AS seq, h.hash, l.hash AS last_hash FROM audit_head h LEFT JOIN audit_log l ON l.seq = h.seq');
      assert.deepEqual(head, { seq: records, hash: match[3], last_hash: match[3] }, 'audit_head is the last record');
      assert.deepEqual(
        await cluster.sql('SELECT prev_hash, count(*)::int AS n FROM audit_log GROUP BY prev_hash HAVING count(*) > 1'),
        [],
        'no fork: no two records share a prev_hash',
      );
      const [links] = await cluster.sql('SELECT count(*)::int AS broken FROM audit_log a JOIN audit_log b ON b.seq = a.seq + 1 WHERE b.prev_hash <> a.hash');
      assert.deepEqual(links, { broken: 0 });
      return records;
    };

    /** Every signature returned as 200 has its audit record: that seq, that opHash, allowed. */
    const assertSignaturesAudited = async (list: Signed[]) => {
      const seqs = list.map((s) => s.body.auditSeq);
      assert.equal(new Set(seqs).size, seqs.length, 'no two signatures share an audit record');
      const rows = await cluster.sql('SELECT seq::int AS seq, wallet_name, action, op_hash, decision FROM audit_log WHERE seq = ANY($1::bigint[])', [seqs]);
      const bySeq = new Map(rows.map((r) => [r.seq as number, r]));
      for (const s of list) {
        const opHash = computeOpHash({ type: 'hash', walletName: s.walletName, keyIndex: s.keyIndex, hash: s.hash });
        assert.equal(s.body.opHash, opHash);
        assert.deepEqual(
          bySeq.get(s.body.auditSeq),
          { seq: s.body.auditSeq, wallet_name: s.walletName, action: 'sign.hash', op_hash: opHash, decision: 'allowed' },
          `audit record of a 200 (seq ${s.body.auditSeq})`,
        );
      }
    };

    it('keeps one audit chain (no fork, no gap) under a burst of 2,090 mixed requests on 3 replicas', { timeout: 60_000 }, async () => {
      const random = mulberry32(0x5eed);
      type Task = () => Promise<{ kind: string; result: HttpResult; key?: string }>;
      const groups: Task[][] = [];
      for (let i = 0; i < 900; i++) {
        const walletName = `free-${i % 150}@replicas.test`;
        const hash = randomBytes(32).toString('hex');
        groups.push([async () => ({ kind: 'sign', result: await sign(replica(i), { walletName, keyIndex: i % 7, hash }) })]);
      }
      for (let i = 0; i < 700; i++) groups.push([async () => ({ kind: 'key', result: await getKey(replica(i), `reader-${i % 200}@replicas.test`, i % 11) })]);
      for (let i = 0; i < 200; i++) groups.push([async () => ({ kind: 'enroll', result: await enroll(replica(i), `burst-enrol-${i}@replicas.test`) })]);
      // the same wallet enrolled on all 3 replicas at once: one wins, the others are refused
      for (let j = 0; j < 30; j++) {
        const walletName = `contested-${j}@replicas.test`;
        groups.push([0, 1, 2].map((r) => async () => ({ kind: 'contested', key: walletName, result: await enroll(replica(r + j), walletName) })));
      }
      // reads that decide nothing and write no audit record
      for (let i = 0; i < 200; i++)
        groups.push([async () => ({ kind: 'unknown-wallet', result: await getWallet(replica(i), `never-seen-${i}@replicas.test`) })]);
      for (let i = groups.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [groups[i], groups[j]] = [groups[j] as Task[], groups[i] as Task[]];
      }
      const tasks = groups.flat();
      assert.equal(tasks.length, 2090);
      const signedBefore = signed.length;

      const started = Date.now();
      const results = await runBounded(tasks, IN_FLIGHT);
      const seconds = (Date.now() - started) / 1000;
      console.log(`replicas: ${results.length} mixed requests in ${seconds.toFixed(1)} s (${Math.round(results.length / seconds)}/s)`);

      const outcome = (kind: string) => {
        const tallyOf = new Map<string, number>();
        for (const r of results.filter((x) => x.kind === kind)) {
          const label = `${r.result.status} ${errorCodeOf(r.result) ?? ''}`;
          tallyOf.set(label, (tallyOf.get(label) ?? 0) + 1);
        }
        return Object.fromEntries(tallyOf);
      };
      assert.deepEqual(outcome('sign'), { '200 ': 900 });
      assert.deepEqual(outcome('key'), { '200 ': 700 });
      assert.deepEqual(outcome('enroll'), { '200 ': 200 });
      assert.deepEqual(outcome('contested'), { '200 ': 30, '409 already_enrolled': 60 });
      assert.deepEqual(outcome('unknown-wallet'), { '404 wallet_not_found': 200 });
      for (let j = 0; j < 30; j++) {
        const mine = results.filter((r) => r.key === `contested-${j}@replicas.test`);
        assert.equal(mine.filter((r) => r.result.status === 200).length, 1, `contested-${j}: one enrolment`);
      }
      for (const r of results.filter((x) => x.kind === 'enroll' || (x.kind === 'contested' && x.result.status === 200))) secretOf(r.result);
      const [factors] = await cluster.sql("SELECT count(*)::int AS n FROM totp_factors WHERE wallet_name LIKE 'contested-%'");
      assert.deepEqual(factors, { n: 30 });

      const burstSigned = signed.slice(signedBefore);
      assert.equal(burstSigned.length, 900);
      assertSampleVerifies(burstSigned);
      await assertSignaturesAudited(signed);

      assert.equal(tally.unknown, 0, 'every request of this file so far had a seen outcome');
      // init's two (sys.init, store.mac_records) + apikey create + 3 replicas' sys.unseal + test 1 (100 enrolments, 100 key reads, 10,000 sign decisions) + test 2 (1 + 8) + this burst (1,890 decisions)
      assert.equal(tally.records, 2 + 1 + 3 + 100 + 100 + 10_000 + 1 + 8 + 900 + 700 + 200 + 90);
      assert.equal(await assertOneChain(), tally.records);
    });

    it('loses no audited signature when a replica is SIGKILLed mid-burst; the others keep serving', { timeout: 60_000 }, async () => {
      const victim = replica(0);
      const inFlight = [0, 0, 0];
      let answered = 0;
      let lost = 0;
      let inFlightAtKill = -1;
      const signedBefore = signed.length;
      const tasks = Array.from({ length: 900 }, (_, i) => async () => {
        const r = i % 3;
        const walletName = `kill-${i % 100}@replicas.test`;
        inFlight[r] = (inFlight[r] ?? 0) + 1;
        try {
          const result = await sign(replica(r), { walletName, keyIndex: i % 5, hash: randomBytes(32).toString('hex') });
          answered += 1;
          // killed the moment one of its 200s arrives: had it answered before its commit, that record would be missing
          if (r === 0 && result.status === 200 && answered >= 200 && inFlightAtKill < 0) {
            inFlightAtKill = (inFlight[0] ?? 0) - 1;
            victim.child.kill('SIGKILL');
          }
          return { r, result };
        } catch (error) {
          // only the killed replica may fail to answer; its outcome is unknown (0 or 1 record)
          if (r !== 0) throw error;
          lost += 1;
          return { r, result: undefined };
        } finally {
          inFlight[r] = (inFlight[r] ?? 1) - 1;
        }
      });
      const started = Date.now();
      const results = await runBounded(tasks, 48);
      await victim.kill();
      console.log(
        `replicas: 900 signs in ${((Date.now() - started) / 1000).toFixed(1)} s; replica 0 SIGKILLed with ${inFlightAtKill} of its requests in flight, ${lost} unanswered`,
      );
      assert.equal(victim.child.signalCode, 'SIGKILL');
      assert.ok(inFlightAtKill > 0, 'the replica was killed while requests to it were in flight');
      assert.ok(lost > 0, 'some requests to the killed replica went unanswered');
      tally.unknown += lost;
      for (const { r, result } of results) {
        if (result === undefined) continue;
        assert.equal(result.status, 200, `replica ${r}: ${JSON.stringify(result.body)}`);
      }
      const survivorsAnswered = results.filter((x) => x.r !== 0 && x.result !== undefined).length;
      assert.equal(survivorsAnswered, 600, 'every request to a surviving replica was answered');

      // the survivors, and a replica started after the kill, keep serving
      const fresh = await cluster.addReplica();
      const later = await runBounded(
        Array.from(
          { length: 60 },
          (_, i) => () =>
            sign([replica(1), replica(2), fresh][i % 3] as Replica, {
              walletName: `after-kill-${i}@replicas.test`,
              keyIndex: 0,
              hash: randomBytes(32).toString('hex'),
            }),
        ),
        16,
      );
      assert.deepEqual(
        later.map((r) => r.status),
        later.map(() => 200),
      );

      const killSigned = signed.slice(signedBefore);
      assertSampleVerifies(killSigned);
      await assertSignaturesAudited(signed);
      const records = await assertOneChain();
      assert.ok(
        records >= tally.records && records <= tally.records + tally.unknown,
        `${records} records: ${tally.records} seen + up to ${tally.unknown} unseen`,
      );
      const [allowed] = await cluster.sql(
        "SELECT count(*)::int AS n FROM audit_log WHERE action = 'sign.hash' AND decision = 'allowed' AND wallet_name LIKE 'kill-%'",
      );
      const answeredOk = killSigned.filter((s) => s.walletName.startsWith('kill-')).length;
      assert.ok(
        allowed !== undefined && (allowed.n as number) >= answeredOk && (allowed.n as number) <= answeredOk + lost,
        `allowed ${allowed?.n}, answered ${answeredOk}, lost ${lost}`,
      );
    });
  });

  describe('replicas starting together on an empty schema', () => {
    it(
      '3 concurrent `custos migrate` apply each migration once; 3 concurrent inits make one signer; 3 replicas start together',
      {
        timeout: 60_000,
      },
      async () => {
        const storeUrl = newTestSchemaUrl('mig');
        const inputs = writeSignerInputs();
        const pool = schemaPool(storeUrl);
        const started: Replica[] = [];
        try {
          const migrations = await Promise.all([0, 1, 2].map(() => runCustos(['migrate', '--store', storeUrl])));
          const versions = POSTGRES_MIGRATIONS.map((m) => m.version);
          for (const m of migrations) {
            assert.equal(m.code, 0, m.stderr);
            assert.equal(m.stderr, '');
            assert.match(m.stdout, new RegExp(`^schema of postgres://\\S+ at versions ${versions.join(', ')}\\n$`));
          }
          const applied = await pool.query('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
          assert.deepEqual(
            applied.rows,
            versions.map((version) => ({ version, n: 1 })),
          );
          const head = await pool.query('SELECT id, seq::int AS seq, hash FROM audit_head');
          assert.deepEqual(head.rows, [{ id: 1, seq: 0, hash: '0'.repeat(64) }], 'the first migration ran exactly once');

          const inits = await Promise.all([0, 1, 2].map(() => runCustos(initArgs(storeUrl, inputs))));
          const winners = inits.filter((r) => r.code === 0);
          assert.equal(winners.length, 1, inits.map((r) => r.stderr).join(''));
          for (const loser of inits.filter((r) => r.code !== 0)) {
            assert.equal(loser.code, 1);
            assert.equal(loser.stdout, '');
            assert.match(loser.stderr, /^custos: already_initialized: [^\n]+\n$/);
          }
          const signerId = /^signerId (\S+)$/m.exec(winners[0]?.stdout ?? '')?.[1] ?? assert.fail('no signerId');
          const auditPublicKey = /^audit public key (\S+)$/m.exec(winners[0]?.stdout ?? '')?.[1] ?? assert.fail('no audit public key');
          const meta = await pool.query('SELECT signer_id FROM meta');
          assert.deepEqual(meta.rows, [{ signer_id: signerId }]);

          const replicas = await Promise.allSettled([0, 1, 2].map(() => startReplica(storeUrl, inputs.passphraseFile)));
          for (const r of replicas) if (r.status === 'fulfilled') started.push(r.value);
          assert.equal(started.length, 3, replicas.map((r) => (r.status === 'rejected' ? String(r.reason) : '')).join(' '));
          for (const r of started) {
            const status = await callReplica(r, '/v1/sys/status');
            assert.equal(status.status, 200);
            assert.deepEqual(status.body, {
              sealed: false,
              signerId,
              version: KERNEL_VERSION,
              derivation: 'custos-v1',
              unsealer: { type: 'passphrase' },
              auditPublicKey,
            });
          }
          const again = await pool.query('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version');
          assert.deepEqual(again.rows, applied.rows, 'replicas starting together applied nothing twice');
        } finally {
          await Promise.all(started.map((r) => r.stop()));
          await pool.end();
          await dropTestSchema(storeUrl);
          inputs.cleanup();
        }
      },
    );
  });
}

/** Every 10th signature (noble's check costs milliseconds each on this machine) verifies and recovers its key. */
function assertSampleVerifies(list: Signed[]): void {
  const sample = list.filter((_, i) => i % 10 === 0);
  assert.ok(sample.length > 0);
  for (const s of sample) {
    assert.equal(
      verifySignature({ r: s.body.r, s: s.body.s, hash: s.hash, publicKey: s.body.publicKey, recoveryId: s.body.recoveryId }),
      true,
      `signature for ${s.walletName}`,
    );
  }
}

/** A small seeded PRNG, so that the burst's order is the same on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

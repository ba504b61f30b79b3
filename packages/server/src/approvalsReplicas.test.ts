import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '@custos/kernel';
import { recordTestSecret, testStoreKind } from './testing/createTestSigner.js';
import { callReplica, createReplicaCluster, errorCodeOf, type HttpResult, type Replica, type ReplicaCluster } from './testing/replicas.js';
import { runCustos } from './testing/runCustos.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Approvals (issue 11, point 7) across replicas: separate `custos serve` processes on one
// PostgreSQL schema, behind one public URL as a load balancer would put them. An approval created
// on one replica is decided on another's page; a long poll on one replica hears of a decision or a
// cancel taken on the other (it reads the store every 250 ms); and an approved approval signs its
// operation exactly once under 100 concurrent requests over both replicas — the identical operation
// repeats the same signature, a swapped one is refused — with one consumption in the database and
// one audit chain. Everything goes over HTTP; time is the real clock (TOTP codes from Date.now()).

/** The URL both replicas are reached by (--public-url): approveUrl starts with it, and the page accepts only its Origin. */
const PUBLIC_URL = 'http://custos.replicas.test';
const TO = '0x3535353535353535353535353535353535353535';
const TRANSACTION = { type: 'eip1559', chainId: 1, nonce: 7, to: TO, value: '1000', gas: '21000', maxFeePerGas: '30', maxPriorityFeePerGas: '2' };
/** The same transaction with one field changed: another opHash. */
const SWAPPED = { ...TRANSACTION, to: '0x4646464646464646464646464646464646464646' };

interface Created {
  id: string;
  approveUrl: string;
  state: string;
  opHash: string;
}

interface View {
  id: string;
  state: string;
  decidedAt: number | null;
  factor: string | null;
}

/** The form of an approval page as one browser holds it: its cookie and the hidden csrf field. */
interface PageForm {
  cookie: string;
  csrf: string;
}

if (testStoreKind() !== 'postgres') {
  it('runs in the PostgreSQL pass', { skip: 'replica tests need PostgreSQL; they run in the postgres pass of npm test (scripts/test.mjs)' }, () => undefined);
} else {
  describe('approvals across replicas: two kernel processes on one PostgreSQL database', { timeout: 120_000 }, () => {
    let cluster: ReplicaCluster;
    let token: string;
    let r1: Replica;
    let r2: Replica;

    before(
      async () => {
        cluster = await createReplicaCluster({ count: 2, serveArgs: ['--public-url', PUBLIC_URL] });
        token = cluster.apiKey;
        [r1, r2] = cluster.replicas as [Replica, Replica];
      },
      { timeout: 60_000 },
    );
    after(
      async () => {
        await cluster?.close();
      },
      { timeout: 30_000 },
    );

    const ok = (result: HttpResult, status = 200): unknown => {
      assert.equal(result.status, status, JSON.stringify(result.body));
      return result.body;
    };
    /** Enrols TOTP for the wallet (it then needs consent) on a replica; returns the otpauth URI. */
    const enroll = async (r: Replica, walletName: string): Promise<string> =>
      (ok(await callReplica(r, '/v1/totp/enroll', { method: 'POST', token, json: { walletName } })) as { otpauthUri: string }).otpauthUri;
    const createApproval = async (r: Replica, walletName: string, transaction = TRANSACTION): Promise<Created> => {
      const created = ok(
        await callReplica(r, '/v1/approvals', { method: 'POST', token, json: { walletName, keyIndex: 0, operation: { transaction } } }),
        201,
      ) as Created;
      const capability = new URL(created.approveUrl).pathname.split('/').at(-1) ?? '';
      recordTestSecret('approvalsReplicas capability', capability);
      assert.equal(created.approveUrl, `${PUBLIC_URL}/approve/${capability}`, 'approveUrl starts with the public URL, whichever replica made it');
      return created;
    };
    const view = async (r: Replica, id: string): Promise<View> => ok(await callReplica(r, `/v1/approvals/${id}`, { token })) as View;
    const signTransaction = (r: Replica, walletName: string, transaction: Record<string, unknown>, approvalId: string) =>
      callReplica(r, '/v1/sign/transaction', { method: 'POST', token, json: { walletName, keyIndex: 0, transaction, approvalId } });

    /** The approval page on a given replica: approveUrl's path on the replica's own address (the load balancer's choice). */
    const pageUrl = (r: Replica, approveUrl: string): string => `${r.url}${new URL(approveUrl).pathname}`;

    /** GET the page (a browser with no cookie yet): 200, its Set-Cookie and the csrf field. */
    const openPage = async (r: Replica, approveUrl: string): Promise<PageForm> => {
      const res = await fetch(pageUrl(r, approveUrl), { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const cookie = /^(custos_form=[A-Za-z0-9_-]{43});/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? assert.fail('the page set no form cookie');
      const csrf = /name="csrf" value="([^"]+)"/.exec(body)?.[1] ?? assert.fail('the page has no csrf field');
      return { cookie, csrf };
    };

    /** POSTs the page's form as the browser would (its cookie, its Origin), to a given replica. */
    const postPage = async (
      r: Replica,
      approveUrl: string,
      form: PageForm,
      fields: Record<string, string>,
      origin = PUBLIC_URL,
    ): Promise<{ status: number; body: string }> => {
      const res = await fetch(pageUrl(r, approveUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie, origin },
        body: new URLSearchParams({ csrf: form.csrf, ...fields }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.text() };
    };

    /** The owner approves with the code their app shows now. */
    const approveOnPage = async (r: Replica, approveUrl: string, form: PageForm, otpauthUri: string) => {
      const decided = await postPage(r, approveUrl, form, { decision: 'approve', code: totpFromUri(otpauthUri, Date.now()) });
      assert.equal(decided.status, 200, decided.body);
      return decided;
    };

    it('an approval created through replica 1 is approved on replica 2’s page, with a form served by replica 1', async () => {
      const walletName = 'page@approvals-replicas.test';
      const uri = await enroll(r1, walletName);
      const created = await createApproval(r1, walletName);
      assert.equal(created.state, 'pending');
      // both replicas show the page; the form of replica 1's page is checked by replica 2 (the token is a MAC under the shared barrier)
      await openPage(r2, created.approveUrl);
      const form = await openPage(r1, created.approveUrl);

      // the Origin a page post must carry is the public URL's, not a replica's own address
      const foreign = await postPage(r2, created.approveUrl, form, { decision: 'approve', code: totpFromUri(uri, Date.now()) }, r2.url);
      assert.equal(foreign.status, 403, foreign.body);
      assert.match(foreign.body, /Form refused/);
      assert.equal((await view(r2, created.id)).state, 'pending', 'a refused form decided nothing');

      const before = Date.now();
      const decided = await approveOnPage(r2, created.approveUrl, form, uri);
      assert.doesNotMatch(decided.body, /Form refused|Wrong code/);
      for (const r of [r1, r2]) {
        const seen = await view(r, created.id);
        assert.equal(seen.state, 'approved', `as replica ${r === r1 ? 1 : 2} reads it`);
        assert.equal(seen.factor, 'totp');
        assert.ok(seen.decidedAt !== null && seen.decidedAt >= before - 1_000 && seen.decidedAt <= Date.now() + 1_000, `decidedAt ${seen.decidedAt}`);
      }
      const [row] = await cluster.sql('SELECT state, consumed_seq FROM approvals WHERE id = $1', [created.id]);
      assert.deepEqual(row, { state: 'approved', consumed_seq: null });

      // deciding again, on either replica, with the same form: refused, the approval unchanged
      const again = await postPage(r1, created.approveUrl, form, { decision: 'reject' });
      assert.equal(again.status, ERROR_CODES.approval_decided.status, again.body);
      assert.match(again.body, /already decided/);
      assert.equal((await view(r1, created.id)).state, 'approved');

      // and it signs, on the replica that did not decide it
      const signed = await signTransaction(r1, walletName, TRANSACTION, created.id);
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      assert.equal((signed.body as { opHash: string }).opHash, created.opHash);
      assert.equal((await view(r2, created.id)).state, 'consumed');
      const audit = await cluster.sql(
        "SELECT action, decision FROM audit_log WHERE action LIKE 'approval.%' AND detail::jsonb->>'approvalId' = $1 ORDER BY seq",
        [created.id],
      );
      assert.deepEqual(
        audit.map((a) => `${a.action} ${a.decision}`),
        ['approval.create allowed', 'approval.approve allowed', 'approval.reject denied'],
        'the refused second decision is audited too',
      );
    });

    it('a long poll on replica 2 answers approved soon after the owner decides on replica 1’s page', async () => {
      const walletName = 'poll@approvals-replicas.test';
      const uri = await enroll(r2, walletName);
      const created = await createApproval(r1, walletName);
      const form = await openPage(r1, created.approveUrl);

      const pollStarted = performance.now();
      let pollAnsweredAt: number | undefined;
      const poll = callReplica(r2, `/v1/approvals/${created.id}?waitSeconds=20`, { token, timeoutMs: 30_000 }).then((result) => {
        pollAnsweredAt = performance.now();
        return result;
      });
      // let the poll reach its first read of the store (pending) and start waiting
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(pollAnsweredAt, undefined, 'the poll waits while the approval is pending');

      await approveOnPage(r1, created.approveUrl, form, uri);
      const decidedAt = performance.now();
      const result = await poll;
      const answeredAt = pollAnsweredAt ?? assert.fail('no answer');
      const body = ok(result) as View;
      assert.equal(body.state, 'approved');
      assert.equal(body.factor, 'totp');
      const lag = answeredAt - decidedAt;
      console.log(
        `approvalsReplicas: the poll on replica 2 answered ${Math.round(lag)} ms after the decision on replica 1 (waited ${Math.round(answeredAt - pollStarted)} ms of 20 s)`,
      );
      assert.ok(lag < 5_000, `answered ${Math.round(lag)} ms after the decision (it reads the store every 250 ms), well before its 20 s deadline`);
    });

    it('exactly once: 50 identical and 50 swapped sign requests at once over both replicas', async () => {
      const walletName = 'once@approvals-replicas.test';
      const uri = await enroll(r1, walletName);
      const created = await createApproval(r1, walletName);
      await approveOnPage(r1, created.approveUrl, await openPage(r1, created.approveUrl), uri);
      assert.equal((await view(r2, created.id)).state, 'approved');

      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const swapped = i % 2 === 1;
          const r = Math.floor(i / 2) % 2 === 0 ? r1 : r2;
          return { swapped, result: await signTransaction(r, walletName, swapped ? SWAPPED : TRANSACTION, created.id) };
        }),
      );
      console.log(`approvalsReplicas: 100 concurrent sign requests with one approval over 2 replicas in ${Math.round(performance.now() - started)} ms`);

      const tally = new Map<string, number>();
      for (const { swapped, result } of results) {
        const label = `${swapped ? 'swapped' : 'identical'} ${result.status} ${errorCodeOf(result) ?? ''}`;
        tally.set(label, (tally.get(label) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(tally), { 'identical 200 ': 50, 'swapped 403 approval_mismatch': 50 });
      type Signed = { serializedTransaction: string; transactionHash: string; auditSeq: number; opHash: string };
      const signed = results.filter((x) => !x.swapped).map((x) => x.result.body as Signed);
      assert.equal(new Set(signed.map((s) => s.serializedTransaction)).size, 1, 'every identical request gets the same signed transaction');
      assert.equal(new Set(signed.map((s) => s.transactionHash)).size, 1);
      assert.ok(signed.every((s) => s.opHash === created.opHash));
      assert.equal(new Set(signed.map((s) => s.auditSeq)).size, 50, 'each answer names its own audit record');

      // the audit log: one first signature, 49 repeats pointing at it, 50 refusals
      const rows = await cluster.sql(
        `SELECT seq::int AS seq, decision, reason, detail FROM audit_log
          WHERE action = 'sign.transaction' AND (detail::jsonb->'approval'->>'id' = $1 OR detail::jsonb->>'approvalId' = $1) ORDER BY seq`,
        [created.id],
      );
      const detailOf = (row: Record<string, unknown>) => JSON.parse(String(row.detail)) as { repeatOf?: unknown; approvalOpHash?: unknown };
      const allowed = rows.filter((row) => row.decision === 'allowed');
      const firsts = allowed.filter((row) => detailOf(row).repeatOf === undefined);
      assert.equal(firsts.length, 1, 'exactly one allowed record without repeatOf: the approval was consumed once');
      const first = firsts[0] ?? assert.fail();
      const repeats = allowed.filter((row) => row !== first);
      assert.equal(repeats.length, 49);
      for (const row of repeats) {
        assert.equal(detailOf(row).repeatOf, first.seq, `record ${row.seq} repeats the first`);
        assert.ok(Number(row.seq) > Number(first.seq), 'a repeat comes after the consumption it points at');
      }
      assert.deepEqual(
        allowed.map((row) => row.seq).sort((a, b) => Number(a) - Number(b)),
        signed.map((s) => s.auditSeq).sort((a, b) => a - b),
        'the 50 answers are the 50 allowed records',
      );
      const denied = rows.filter((row) => row.decision === 'denied');
      assert.equal(denied.length, 50);
      for (const row of denied) {
        assert.equal(row.reason, 'approval_mismatch');
        assert.equal(detailOf(row).approvalOpHash, created.opHash);
      }
      assert.equal(rows.length, 100);

      const [approval] = await cluster.sql('SELECT state, consumed_seq::int AS consumed_seq FROM approvals WHERE id = $1', [created.id]);
      assert.deepEqual(approval, { state: 'consumed', consumed_seq: first.seq });
      for (const r of [r1, r2]) assert.equal((await view(r, created.id)).state, 'consumed');

      const verified = await runCustos(['audit', 'verify', '--store', cluster.storeUrl]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /^audit chain OK: \d+ records/);
    });

    it('a cancel through replica 2 answers a long poll waiting on replica 1: cancelled', async () => {
      const walletName = 'cancel@approvals-replicas.test';
      await enroll(r1, walletName);
      const created = await createApproval(r2, walletName);

      const pollStarted = performance.now();
      let pollAnsweredAt: number | undefined;
      const poll = callReplica(r1, `/v1/approvals/${created.id}?waitSeconds=20`, { token, timeoutMs: 30_000 }).then((result) => {
        pollAnsweredAt = performance.now();
        return result;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(pollAnsweredAt, undefined, 'the poll waits while the approval is pending');

      const cancelled = ok(await callReplica(r2, `/v1/approvals/${created.id}/cancel`, { method: 'POST', token })) as View;
      assert.equal(cancelled.state, 'cancelled');
      const cancelledAt = performance.now();
      const body = ok(await poll) as View;
      const answeredAt = pollAnsweredAt ?? assert.fail('no answer');
      assert.equal(body.state, 'cancelled');
      const lag = answeredAt - cancelledAt;
      console.log(
        `approvalsReplicas: the poll on replica 1 answered ${Math.round(lag)} ms after the cancel on replica 2 (waited ${Math.round(answeredAt - pollStarted)} ms of 20 s)`,
      );
      assert.ok(lag < 5_000, `answered ${Math.round(lag)} ms after the cancel, well before its 20 s deadline`);

      // cancelled for both replicas: the sign route refuses it
      const signed = await signTransaction(r1, walletName, TRANSACTION, created.id);
      assert.equal(signed.status, ERROR_CODES.approval_cancelled.status, JSON.stringify(signed.body));
      assert.equal(errorCodeOf(signed), 'approval_cancelled');
    });

    it('no replica logged an error', async () => {
      for (const r of [r1, r2]) {
        const errors = readFileSync(r.logFile, 'utf8')
          .split('\n')
          .filter((line) => /"level":"(error|fatal)"/.test(line));
        assert.deepEqual(errors, [], r.logFile);
      }
    });
  });
}

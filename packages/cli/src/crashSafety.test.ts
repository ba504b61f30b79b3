import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { StoreLocation } from '@custos/server';
import { totpFromUri } from '@custos/server/testing';
import {
  freshStoreLocation,
  recordTestSecret,
  runCli,
  runCliOk,
  runSql,
  type Served,
  secretInputs,
  serve,
  storeArgs,
  testStoreKind,
} from './testing/cliHarness.js';
import { type Answer, errorCode, http, waitFor } from './testing/httpJson.js';

// Issue 14, point 2 — crash safety, end to end against the real `custos serve`: while concurrent
// clients sign (never-enrolled wallets, and TOTP-enrolled ones with codes computed from the secret
// they enrolled), enrol new wallets, go through approvals (create, the owner approves on the page
// with a code, sign with approvalId), write wallet policies and request timelocked changes — and a
// `custos rekey` runs now and then against the live store —, the kernel is killed with SIGKILL at
// random moments (seeded, the seed printed) and restarted with the current passphrase. SQLite: one
// serve. PostgreSQL: two replicas on one schema, killed one at a time, the load spread over both.
// Every answer the clients got is kept. Then, servers up: every enrolment answered 200 is in force
// and its secret opens; every approval created is readable, in a state its answers allow; every
// policy write answered 200 is in force (or a later one whose answer was lost); every change
// answered 201 reads back through GET /v1/changes (its MAC checked by the kernel). Servers
// stopped: `custos audit verify` passes; every signature received has its allowed record (seq,
// opHash, and the TOTP step or approval it used); no TOTP step accepted twice for a wallet; no
// approval consumed twice; a code whose answer was lost, sent again, is either signed once or
// refused code_reused with its first record in the log; no record_unreadable, no 5xx anywhere.
//
// Kills: CUSTOS_CRASH_KILLS (default 10; `npm run soak` runs 50). Seed: CUSTOS_CRASH_SEED.

const KILLS = Number(process.env.CUSTOS_CRASH_KILLS ?? '10');
const SEED = process.env.CUSTOS_CRASH_SEED === undefined ? randomBytes(4).readUInt32BE() : Number(process.env.CUSTOS_CRASH_SEED);
/** Concurrent clients (each one request in flight). */
const CLIENTS = 6;
const STEP_MS = 30_000;
/** Generous: under a load average of 30 on the 2-core machine a serve took 44 s to listen. */
const STATE_TIMEOUT_MS = 240_000;
const FIRST_TOTP_WALLETS = 8;
const MAX_ENROLMENTS = 16;
const POLICY_WALLETS = 3;
const CHANGES_PER_WALLET = 5;

assert.ok(Number.isInteger(KILLS) && KILLS >= 1, `CUSTOS_CRASH_KILLS: expected a positive integer, got ${process.env.CUSTOS_CRASH_KILLS}`);
assert.ok(Number.isInteger(SEED), `CUSTOS_CRASH_SEED: expected an integer, got ${process.env.CUSTOS_CRASH_SEED}`);

const inputs = secretInputs('custos-crash-inputs');
// the TOTP wallets sign raw hashes: this deployment allows it (the built-in policy refuses them for enrolled wallets)
const policyFile = inputs.write('policy', '{"rawHash":"allow"}');

/** A small seeded PRNG (mulberry32): the kill moments and the clients' choices of a run follow from its seed. */
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const currentStep = () => Math.floor(Date.now() / STEP_MS);
/** Whether the kernel still takes a code of `step` (its window is ±1 step) for at least 5 more seconds. */
const stillInWindow = (step: number) => step >= Math.floor((Date.now() + 5_000) / STEP_MS) - 1;
const freshHash = () => `0x${randomBytes(32).toString('hex')}`;

/** One at a time: a rekey and a restart never overlap (the restart reads the current passphrase). */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

interface Replica {
  served: Served | undefined;
  up: boolean;
}

interface TotpWallet {
  name: string;
  uri: string;
  /** The lowest step this test may still use (every step is used at most once). */
  nextStep: number;
  busy: boolean;
  changes: number;
}

interface Signature {
  wallet: string;
  opHash: string;
  auditSeq: number;
  via: 'plain' | 'totp' | 'approval';
  step?: number;
  approvalId?: string;
}

interface ApprovalSeen {
  wallet: string;
  /** The TOTP step of the code typed on the page. */
  step: number;
  approved: 'yes' | 'unknown' | 'no';
  signed: 'yes' | 'unknown' | 'no';
}

interface PolicyWallet {
  name: string;
  busy: boolean;
  next: number;
  acked: number | undefined;
  /** Caps written after the last acknowledged one whose answer was lost. */
  lost: number[];
}

class CrashRig {
  readonly replicas: Replica[];
  readonly random: () => number;
  /** The kills' own generator: the moments of a run follow from the seed, whatever the clients draw. */
  readonly killRandom: () => number;
  readonly mutex = new Mutex();
  token = '';
  passphraseFiles: string[] = [];
  running = true;

  readonly totp: TotpWallet[] = [];
  readonly policies: PolicyWallet[] = [];
  readonly signatures: Signature[] = [];
  readonly approvals = new Map<string, ApprovalSeen>();
  readonly changes: Array<{ id: string; wallet: string }> = [];
  readonly enrolled: string[] = [];
  /** Enrolments whose answer was lost: enrolled wholly or not at all. */
  readonly enrolmentsLost: string[] = [];
  readonly codeRetries: Array<{ wallet: string; step: number; outcome: 'signed' | 'reused' }> = [];
  readonly unexpected: string[] = [];
  readonly answers = new Map<string, number>();
  /** Answers received from the kernel (the kill moments are counted in them). */
  served = 0;
  /** Requests whose answer was lost (the connection died with the kernel). */
  lost = 0;
  lostSigns = 0;
  requests = 0;
  enrolments = 0;
  rekeys = 0;
  kills = 0;
  restartMs: number[] = [];

  constructor(
    readonly location: StoreLocation,
    replicaCount: number,
    seed: number,
  ) {
    this.replicas = Array.from({ length: replicaCount }, () => ({ served: undefined, up: false }));
    this.random = mulberry32(seed ^ 0x9e3779b9);
    this.killRandom = mulberry32(seed);
  }

  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.random() * items.length)];
  }

  between(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min));
  }

  newPassphraseFile(): string {
    const passphrase = `pp-${randomBytes(12).toString('base64url')}`;
    recordTestSecret('crash passphrase', passphrase);
    const file = inputs.write(`passphrase-${this.passphraseFiles.length}`, `${passphrase}\n`);
    this.passphraseFiles.push(file);
    return file;
  }

  get passphraseFile(): string {
    return this.passphraseFiles.at(-1) ?? '';
  }

  async setUp(): Promise<void> {
    await runCliOk(['init', ...storeArgs(this.location), '--passphrase-file', this.newPassphraseFile(), '--scrypt-log-n', '10']);
    const out = await runCliOk(['apikey', 'create', ...storeArgs(this.location), '--name', 'crash', '--tenant', 'system', '--scopes', 'register,derive,sign']);
    this.token = out.trim().split(/\s+/).at(-1) ?? '';
    recordTestSecret('crash api key', this.token);
    for (let i = 0; i < this.replicas.length; i++) await this.start(i);
    for (let i = 0; i < FIRST_TOTP_WALLETS; i++) assert.equal(await this.enrol(), true, 'the first enrolments, before any kill');
    // Caps of 9 digits: never a 6- or 8-digit one-time code's shape (the secret scan looks for codes as JSON values).
    for (let i = 0; i < POLICY_WALLETS; i++) this.policies.push({ name: `policy-${i}`, busy: false, next: 100_000_000, acked: undefined, lost: [] });
  }

  async start(index: number): Promise<void> {
    const replica = this.replicas[index] as Replica;
    const started = Date.now();
    replica.served = await serve(this.location, ['--passphrase-file', this.passphraseFile, '--policy-file', policyFile], { startTimeoutMs: STATE_TIMEOUT_MS });
    const url = replica.served.url;
    await waitFor(
      `replica ${index} unsealed and ready`,
      () => http(`${url}/readyz`),
      (a) => a.status === 200,
      STATE_TIMEOUT_MS,
    );
    this.restartMs.push(Date.now() - started);
    replica.up = true;
  }

  /** SIGKILL (also while a rekey runs), wait for the exit, restart with the current passphrase (once no rekey runs). */
  async killAndRestart(index: number): Promise<void> {
    const replica = this.replicas[index] as Replica;
    const child = replica.served?.child;
    assert.ok(child !== undefined && child.exitCode === null && child.signalCode === null, `replica ${index} is running before its kill`);
    replica.up = false;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    assert.equal(child.signalCode, 'SIGKILL');
    this.kills += 1;
    await this.mutex.run(() => this.start(index));
  }

  /** A request to a replica that is up (waiting while none is); undefined when the answer was lost. */
  async call(path: string, options: { method?: string; json?: unknown } = {}): Promise<Answer | undefined> {
    const url = await this.liveUrl();
    this.requests += 1;
    try {
      const answer = await http(`${url}${path}`, { ...options, token: this.token });
      this.served += 1;
      const key = `${options.method ?? 'GET'} ${path.split('?')[0]?.replace(/[0-9a-f]{32}/, ':id')} ${answer.status}${errorCode(answer) === undefined ? '' : ` ${errorCode(answer)}`}`;
      this.answers.set(key, (this.answers.get(key) ?? 0) + 1);
      if (answer.status >= 500 || errorCode(answer) === 'record_unreadable' || errorCode(answer) === 'internal')
        this.unexpected.push(`${key}: ${JSON.stringify(answer.body)}`);
      return answer;
    } catch {
      this.lost += 1;
      return undefined;
    }
  }

  async liveUrl(): Promise<string> {
    const deadline = Date.now() + STATE_TIMEOUT_MS * 2;
    for (;;) {
      const url = this.pick(this.replicas.filter((r) => r.up))?.served?.url;
      if (url !== undefined) return url;
      assert.ok(Date.now() < deadline, 'no replica came back up');
      await sleep(20);
    }
  }

  unexpectedAnswer(what: string, answer: Answer): void {
    this.unexpected.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  // ── the clients' actions ─────────────────────────────────────────────────────────────────

  async signPlain(): Promise<void> {
    const wallet = `plain-${this.between(0, 6)}`;
    const answer = await this.call('/v1/sign/hash', { method: 'POST', json: { walletName: wallet, keyIndex: this.between(0, 3), hash: freshHash() } });
    if (answer === undefined) this.lostSigns += 1;
    else if (answer.status === 200) this.book(wallet, answer, { via: 'plain' });
    else this.unexpectedAnswer(`sign ${wallet}`, answer);
  }

  book(wallet: string, answer: Answer, how: { via: Signature['via']; step?: number; approvalId?: string }): void {
    assert.equal(typeof answer.body.signature, 'string', JSON.stringify(answer.body));
    this.signatures.push({ wallet, opHash: String(answer.body.opHash), auditSeq: Number(answer.body.auditSeq), ...how });
  }

  /** A TOTP wallet with a step this test has not used yet, within the kernel's ±1 window now (≥ 30 s of validity left); marked busy. */
  takeTotpWallet(): { wallet: TotpWallet; step: number; code: string } | undefined {
    const now = currentStep();
    const wallet = this.pick(this.totp.filter((w) => !w.busy && w.nextStep <= now + 1));
    if (wallet === undefined) return undefined;
    const step = Math.max(wallet.nextStep, now);
    wallet.busy = true;
    wallet.nextStep = step + 1;
    return { wallet, step, code: totpFromUri(wallet.uri, step * STEP_MS) };
  }

  async signTotp(): Promise<void> {
    // a code is taken only while a replica is up: a restart's wait must not eat its step's window
    await this.liveUrl();
    const taken = this.takeTotpWallet();
    if (taken === undefined) return this.signPlain();
    const { wallet, step, code } = taken;
    try {
      const sign = () => this.call('/v1/sign/hash', { method: 'POST', json: { walletName: wallet.name, keyIndex: 0, hash: freshHash(), code } });
      const answer = await sign();
      if (answer?.status === 200) return this.book(wallet.name, answer, { via: 'totp', step });
      if (answer !== undefined) return this.unexpectedAnswer(`sign ${wallet.name} with a fresh code`, answer);
      this.lostSigns += 1;
      // the answer was lost: the same code again (another hash), while its step is still in the window — signed once, or code_reused
      for (let attempt = 0; attempt < 5; attempt++) {
        await this.liveUrl();
        if (!stillInWindow(step)) return; // out of the window by now: nothing more to learn from it
        const again = await sign();
        if (again === undefined) {
          this.lostSigns += 1;
          continue;
        }
        if (again.status === 200) {
          this.book(wallet.name, again, { via: 'totp', step });
          this.codeRetries.push({ wallet: wallet.name, step, outcome: 'signed' });
        } else if (again.status === 403 && errorCode(again) === 'code_reused') {
          this.codeRetries.push({ wallet: wallet.name, step, outcome: 'reused' });
        } else this.unexpectedAnswer(`sign ${wallet.name} with a code sent again`, again);
        return;
      }
    } finally {
      wallet.busy = false;
    }
  }

  /** Enrols a new wallet's TOTP through the API; true when answered 200. */
  async enrol(): Promise<boolean> {
    this.enrolments += 1;
    const name = `enrolled-${this.enrolments}`;
    const answer = await this.call('/v1/totp/enroll', { method: 'POST', json: { walletName: name } });
    if (answer === undefined) {
      this.enrolmentsLost.push(name);
      return false;
    }
    if (answer.status !== 200) {
      this.unexpectedAnswer(`enrol ${name}`, answer);
      return false;
    }
    const uri = String(answer.body.otpauthUri);
    recordTestSecret('crash otpauth uri', uri);
    this.enrolled.push(name);
    this.totp.push({ name, uri, nextStep: currentStep(), busy: false, changes: 0 });
    return true;
  }

  /** Create an approval, the owner approves it on the page with a code, the backend signs with its id. */
  async approval(): Promise<void> {
    await this.liveUrl();
    const taken = this.takeTotpWallet();
    if (taken === undefined) return this.signPlain();
    const { wallet, step, code } = taken;
    try {
      const hash = freshHash();
      const created = await this.call('/v1/approvals', { method: 'POST', json: { walletName: wallet.name, keyIndex: 0, operation: { hash } } });
      if (created === undefined) return;
      if (created.status !== 201) return this.unexpectedAnswer(`approval for ${wallet.name}`, created);
      const id = String(created.body.id);
      const seen: ApprovalSeen = { wallet: wallet.name, step, approved: 'no', signed: 'no' };
      this.approvals.set(id, seen);
      const capabilityPath = new URL(String(created.body.approveUrl)).pathname;
      recordTestSecret('crash approval capability', capabilityPath.split('/').at(-1) ?? '');
      seen.approved = await this.approveOnPage(capabilityPath, code, step);
      if (seen.approved === 'no') return;
      for (let attempt = 0; attempt < 5; attempt++) {
        const signed = await this.call('/v1/sign/hash', { method: 'POST', json: { walletName: wallet.name, keyIndex: 0, hash, approvalId: id } });
        if (signed === undefined) {
          this.lostSigns += 1;
          seen.signed = 'unknown';
          continue;
        }
        if (signed.status === 200) {
          seen.signed = 'yes';
          return this.book(wallet.name, signed, { via: 'approval', approvalId: id });
        }
        // the page's answer was lost and its decision did not commit: still pending
        if (seen.approved === 'unknown' && signed.status === 409 && errorCode(signed) === 'approval_pending') return;
        return this.unexpectedAnswer(`sign with approval ${id}`, signed);
      }
    } finally {
      wallet.busy = false;
    }
  }

  /** The owner on the approval page: GET (the form's cookie and token), POST approve with the code. */
  async approveOnPage(path: string, code: string, step: number): Promise<'yes' | 'unknown' | 'no'> {
    const url = await this.liveUrl();
    // a restart's wait took the code's step out of the window: the approval stays pending
    if (!stillInWindow(step)) return 'no';
    this.requests += 2;
    try {
      const page = await fetch(`${url}${path}`);
      const html = await page.text();
      if (page.status !== 200) {
        this.unexpected.push(`GET the approval page: ${page.status}`);
        return 'no';
      }
      const cookie = /custos_form=([A-Za-z0-9_-]+)/.exec(page.headers.get('set-cookie') ?? '')?.[1];
      const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(html)?.[1];
      assert.ok(cookie !== undefined && csrf !== undefined, 'the page sets its form cookie and token');
      const posted = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}` },
        body: new URLSearchParams({ csrf, decision: 'approve', code }).toString(),
      });
      const text = await posted.text();
      const key = `POST /approve ${posted.status}`;
      this.answers.set(key, (this.answers.get(key) ?? 0) + 1);
      if (posted.status === 200) return 'yes';
      this.unexpected.push(`approve on the page: ${posted.status} ${text.slice(0, 300)}`);
      return 'no';
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      this.lost += 1;
      return 'unknown';
    }
  }

  /** Tightens a never-enrolled wallet's signature cap by one (a tightening applies at once: 200). */
  async writePolicy(): Promise<void> {
    const wallet = this.pick(this.policies.filter((p) => !p.busy));
    if (wallet === undefined) return this.signPlain();
    wallet.busy = true;
    try {
      const cap = wallet.next;
      wallet.next -= 1;
      const answer = await this.call('/v1/wallets/policy', {
        method: 'PUT',
        json: { walletName: wallet.name, policy: { windowSeconds: 86_400, maxSignaturesPerWindow: cap } },
      });
      if (answer === undefined) wallet.lost.push(cap);
      else if (answer.status === 200) {
        wallet.acked = cap;
        wallet.lost = [];
      } else this.unexpectedAnswer(`policy of ${wallet.name}`, answer);
    } finally {
      wallet.busy = false;
    }
  }

  /** Asks for a timelocked 2FA deactivation of a TOTP wallet (it waits for the owner's consent: nothing changes). */
  async requestChange(): Promise<void> {
    const wallet = this.pick(this.totp.filter((w) => w.changes < CHANGES_PER_WALLET));
    if (wallet === undefined) return this.signPlain();
    wallet.changes += 1;
    const answer = await this.call('/v1/changes', { method: 'POST', json: { walletName: wallet.name, kind: '2fa.disable' } });
    if (answer === undefined) return;
    if (answer.status !== 201) return this.unexpectedAnswer(`change of ${wallet.name}`, answer);
    recordTestSecret('crash change capability', new URL(String(answer.body.changeUrl)).pathname.split('/').at(-1) ?? '');
    this.changes.push({ id: String(answer.body.id), wallet: wallet.name });
  }

  async client(): Promise<void> {
    while (this.running) {
      const roll = this.random();
      if (roll < 0.4) await this.signPlain();
      else if (roll < 0.65) await this.signTotp();
      else if (roll < 0.75) await this.approval();
      else if (roll < 0.85) await this.writePolicy();
      else if (roll < 0.92) await this.requestChange();
      else if (this.enrolments < MAX_ENROLMENTS) await this.enrol();
      else await this.signPlain();
    }
  }

  /** `custos rekey` to a new passphrase against the live store, now and then; never during a restart. */
  async rekeyLoop(): Promise<void> {
    while (this.running) {
      const until = Date.now() + this.between(5_000, 10_000);
      while (this.running && Date.now() < until) await sleep(100);
      if (!this.running) return;
      await this.mutex.run(async () => {
        const current = this.passphraseFile;
        const next = this.newPassphraseFile();
        const result = await runCli(
          ['rekey', ...storeArgs(this.location), '--passphrase-file', current, '--new-passphrase-file', next, '--scrypt-log-n', '10'],
          {
            timeoutMs: 120_000,
          },
        );
        if (result.code !== 0) {
          this.unexpected.push(`rekey: exit ${result.code}: ${result.stderr}`);
          this.passphraseFiles.pop();
          return;
        }
        this.rekeys += 1;
      });
    }
  }
}

// ── the checks, servers up ─────────────────────────────────────────────────────────────────

async function checkStateThroughApi(rig: CrashRig): Promise<Record<string, unknown>> {
  // every enrolment answered 200: in force (no code: code_required) and its secret opens (a fresh code signs, or a wrong one is code_invalid)
  let enrolmentsSigned = 0;
  for (const name of rig.enrolled) {
    const noCode = await rig.call('/v1/sign/hash', { method: 'POST', json: { walletName: name, keyIndex: 0, hash: freshHash() } });
    assert.equal(noCode?.status, 403, `enrolment of ${name} in force: ${JSON.stringify(noCode?.body)}`);
    assert.equal(errorCode(noCode as Answer), 'code_required');
    const wallet = rig.totp.find((w) => w.name === name) as TotpWallet;
    const now = currentStep();
    if (wallet.nextStep <= now + 1) {
      const step = Math.max(wallet.nextStep, now);
      wallet.nextStep = step + 1;
      const signed = await rig.call('/v1/sign/hash', {
        method: 'POST',
        json: { walletName: name, keyIndex: 0, hash: freshHash(), code: totpFromUri(wallet.uri, step * STEP_MS) },
      });
      assert.equal(signed?.status, 200, `enrolment of ${name} readable: ${JSON.stringify(signed?.body)}`);
      rig.book(name, signed as Answer, { via: 'totp', step });
      enrolmentsSigned += 1;
    } else {
      const valid = new Set([-1, 0, 1, 2].map((offset) => totpFromUri(wallet.uri, (now + offset) * STEP_MS)));
      let wrong = 0;
      while (valid.has(String(wrong).padStart(6, '0'))) wrong += 1;
      const refused = await rig.call('/v1/sign/hash', {
        method: 'POST',
        json: { walletName: name, keyIndex: 0, hash: freshHash(), code: String(wrong).padStart(6, '0') },
      });
      assert.equal(refused?.status, 403, `enrolment of ${name} readable: ${JSON.stringify(refused?.body)}`);
      assert.equal(errorCode(refused as Answer), 'code_invalid');
    }
  }
  // an enrolment whose answer was lost: wholly there (code_required) or not at all (signs without a code as a never-enrolled wallet)
  const lostEnrolments = new Map<string, number>();
  for (const name of rig.enrolmentsLost) {
    const answer = await rig.call('/v1/sign/hash', { method: 'POST', json: { walletName: name, keyIndex: 0, hash: freshHash() } });
    const outcome = answer?.status === 200 ? 'absent' : answer?.status === 403 && errorCode(answer) === 'code_required' ? 'enrolled' : undefined;
    assert.ok(outcome !== undefined, `enrolment of ${name}, its answer lost: ${JSON.stringify(answer)}`);
    if (answer?.status === 200) rig.book(name, answer, { via: 'plain' });
    lostEnrolments.set(outcome, (lostEnrolments.get(outcome) ?? 0) + 1);
  }
  // every approval created: readable, in a state its answers allow
  const approvalStates = new Map<string, number>();
  for (const [id, seen] of rig.approvals) {
    const answer = await rig.call(`/v1/approvals/${id}`);
    assert.equal(answer?.status, 200, `approval ${id} readable: ${JSON.stringify(answer?.body)}`);
    const state = String(answer?.body.state);
    approvalStates.set(state, (approvalStates.get(state) ?? 0) + 1);
    const allowed =
      seen.signed === 'yes'
        ? ['consumed']
        : seen.approved === 'yes'
          ? ['approved', 'consumed']
          : seen.approved === 'unknown'
            ? ['pending', 'approved', 'consumed']
            : ['pending'];
    assert.ok(allowed.includes(state), `approval ${id} (${JSON.stringify(seen)}) is ${state}, expected one of ${allowed}`);
  }
  // every policy write answered 200 is in force, or a later one whose answer was lost
  for (const wallet of rig.policies) {
    if (wallet.acked === undefined && wallet.lost.length === 0) continue;
    const answer = await rig.call(`/v1/wallets/policy?walletName=${wallet.name}`);
    assert.equal(answer?.status, 200, JSON.stringify(answer?.body));
    const cap = (answer?.body.policy as { maxSignaturesPerWindow?: number }).maxSignaturesPerWindow;
    const allowed = [...(wallet.acked === undefined ? [] : [wallet.acked]), ...wallet.lost];
    assert.ok(allowed.includes(cap as number), `policy of ${wallet.name}: cap ${cap}, expected one of ${allowed}`);
  }
  // every change answered 201 reads back, its MAC checked by the kernel
  const changeStates = new Map<string, number>();
  for (const change of rig.changes) {
    const answer = await rig.call(`/v1/changes?id=${change.id}`);
    assert.equal(answer?.status, 200, `change ${change.id} readable: ${JSON.stringify(answer?.body)}`);
    assert.equal(answer?.body.id, change.id);
    assert.equal(answer?.body.walletName, change.wallet);
    assert.equal(answer?.body.kind, '2fa.disable');
    const state = String(answer?.body.state);
    changeStates.set(state, (changeStates.get(state) ?? 0) + 1);
  }
  return {
    enrolments: rig.enrolled.length,
    enrolmentsSigned,
    lostEnrolments: Object.fromEntries(lostEnrolments),
    approvals: Object.fromEntries(approvalStates),
    changes: Object.fromEntries(changeStates),
  };
}

// ── the checks, servers stopped: the audit log ─────────────────────────────────────────────

interface Row {
  seq: number;
  action: string;
  wallet: string | null;
  opHash: string | null;
  decision: string;
  reason: string | null;
  detail: Record<string, unknown>;
}

async function checkAuditLog(rig: CrashRig): Promise<Record<string, unknown>> {
  const verify = await runCli(['audit', 'verify', ...storeArgs(rig.location)], { timeoutMs: 120_000 });
  assert.equal(verify.code, 0, `audit verify: ${verify.stdout}${verify.stderr}`);
  assert.match(verify.stdout, /^audit chain OK: /m);
  const rows: Row[] = (await runSql(rig.location, 'SELECT seq, action, wallet_name, op_hash, decision, reason, detail FROM audit_log ORDER BY seq')).map(
    (r) => ({
      seq: Number(r.seq),
      action: String(r.action),
      wallet: r.wallet_name === null ? null : String(r.wallet_name),
      opHash: r.op_hash === null ? null : String(r.op_hash),
      decision: String(r.decision),
      reason: r.reason === null ? null : String(r.reason),
      detail: JSON.parse(String(r.detail)) as Record<string, unknown>,
    }),
  );
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  assert.deepEqual(
    rows.filter((r) => r.reason === 'record_unreadable').map((r) => r.seq),
    [],
    'no record_unreadable',
  );

  // an operation is signed once: one allowed record per opHash, any other one a repeat pointing at it
  const signs = rows.filter((r) => r.action === 'sign.hash' && r.decision === 'allowed');
  const first = new Map<string, number>();
  for (const row of signs.filter((r) => r.detail.repeatOf === undefined)) {
    assert.equal(first.get(row.opHash as string), undefined, `operation ${row.opHash} signed at ${first.get(row.opHash as string)} and again at ${row.seq}`);
    first.set(row.opHash as string, row.seq);
  }
  for (const row of signs.filter((r) => r.detail.repeatOf !== undefined)) {
    assert.equal(row.detail.repeatOf, first.get(row.opHash as string), `the repeat at ${row.seq} points at the operation's record`);
  }

  // every signature received has its allowed record, with the step or approval it used
  for (const s of rig.signatures) {
    const row = bySeq.get(s.auditSeq);
    assert.ok(row !== undefined, `the record of a signature received (seq ${s.auditSeq})`);
    assert.deepEqual(
      { action: row.action, decision: row.decision, opHash: row.opHash, wallet: row.wallet },
      { action: 'sign.hash', decision: 'allowed', opHash: s.opHash, wallet: s.wallet },
    );
    if (s.via === 'totp') assert.deepEqual({ factor: row.detail.factor, step: row.detail.totpStep }, { factor: 'totp', step: s.step }, `seq ${row.seq}`);
    if (s.via === 'approval') assert.equal((row.detail.approval as { id?: string } | undefined)?.id, s.approvalId, `seq ${row.seq}`);
    if (s.via === 'plain') assert.equal(row.detail.factor, 'none', `seq ${row.seq}`);
  }
  const received = new Set(rig.signatures.map((s) => s.auditSeq));
  const unanswered = signs.filter((r) => !received.has(r.seq)).length;
  assert.ok(unanswered <= rig.lostSigns, `${unanswered} allowed sign records without an answer received, ${rig.lostSigns} answers lost`);

  // no TOTP step accepted twice for a wallet (signing or approving), no approval consumed twice
  const steps = new Map<string, number>();
  for (const row of rows.filter((r) => r.decision === 'allowed' && r.detail.factor === 'totp' && r.detail.totpStep !== undefined)) {
    const key = `${row.wallet} ${row.detail.totpStep}`;
    assert.equal(steps.get(key), undefined, `step ${key} accepted at ${steps.get(key)} and again at ${row.seq} (${row.action})`);
    steps.set(key, row.seq);
  }
  const consumed = new Map<string, number>();
  for (const row of signs.filter((r) => r.detail.approval !== undefined && r.detail.repeatOf === undefined)) {
    const id = String((row.detail.approval as { id: string }).id);
    assert.equal(consumed.get(id), undefined, `approval ${id} consumed at ${consumed.get(id)} and again at ${row.seq}`);
    consumed.set(id, row.seq);
  }
  // an approval approved once, with the step typed on the page; one approved on the page has its record
  const approvedAt = new Map<string, Row>();
  for (const row of rows.filter((r) => r.action === 'approval.approve' && r.decision === 'allowed')) {
    const id = String(row.detail.approvalId);
    assert.equal(approvedAt.get(id), undefined, `approval ${id} approved at ${approvedAt.get(id)?.seq} and again at ${row.seq}`);
    approvedAt.set(id, row);
  }
  for (const [id, seen] of rig.approvals) {
    const row = approvedAt.get(id);
    if (seen.approved === 'yes' || seen.signed === 'yes') assert.ok(row !== undefined, `approval ${id}: its approval.approve record`);
    if (row !== undefined) assert.deepEqual({ wallet: row.wallet, step: row.detail.totpStep }, { wallet: seen.wallet, step: seen.step }, `approval ${id}`);
    const consumedAt = consumed.get(id);
    if (seen.signed === 'yes') assert.ok(consumedAt !== undefined && consumedAt > (row?.seq ?? 0), `approval ${id} consumed after its approval`);
  }
  // a code sent again after a lost answer and refused code_reused: its first use is in the log
  for (const retry of rig.codeRetries.filter((r) => r.outcome === 'reused')) {
    assert.ok(steps.has(`${retry.wallet} ${retry.step}`), `code_reused for ${retry.wallet} step ${retry.step}: its first use is recorded`);
  }
  assert.equal(rows.filter((r) => r.action === 'sys.rekey' && r.decision === 'allowed').length, rig.rekeys, 'one sys.rekey record per rekey');
  return {
    records: rows.length,
    signRecords: signs.length,
    totpStepsAccepted: steps.size,
    approvalsApproved: approvedAt.size,
    approvalsConsumed: consumed.size,
    unansweredSignRecords: unanswered,
    verify: verify.stdout.split('\n')[0],
  };
}

// ── the run ────────────────────────────────────────────────────────────────────────────────

async function crashRun(name: string, location: StoreLocation, replicaCount: number): Promise<void> {
  const started = Date.now();
  process.stdout.write(`# crash safety — ${name}: seed ${SEED} (CUSTOS_CRASH_SEED=${SEED} repeats the kill moments), ${KILLS} kills\n`);
  const rig = new CrashRig(location, replicaCount, SEED);
  try {
    await rig.setUp();
    const clients = Array.from({ length: CLIENTS }, () => rig.client());
    const rekeys = rig.rekeyLoop();
    for (let kill = 0; kill < KILLS; kill++) {
      // a random moment under load: after 10–60 more answers (counted, not timed: a loaded machine
      // answers slowly), then 0–300 ms more
      const target = rig.served + 10 + Math.floor(rig.killRandom() * 50);
      await waitFor(
        'the load before a kill',
        async () => rig.served,
        (n) => n >= target,
        STATE_TIMEOUT_MS,
      );
      await sleep(Math.floor(rig.killRandom() * 300));
      await rig.killAndRestart(kill % replicaCount);
    }
    await sleep(1_000);
    rig.running = false;
    await Promise.all([...clients, rekeys]);
    const loadMs = Date.now() - started;
    const state = await checkStateThroughApi(rig);
    for (const replica of rig.replicas) assert.equal(await replica.served?.stop(), 0, 'a clean shutdown at the end');
    const log = await checkAuditLog(rig);
    assert.deepEqual(rig.unexpected, [], 'no unexpected answer (5xx, record_unreadable, a refusal of a valid request)');
    const figures = {
      seed: SEED,
      kills: rig.kills,
      replicas: replicaCount,
      requests: rig.requests,
      answersLost: rig.lost,
      signaturesChecked: rig.signatures.length,
      byVia: Object.fromEntries(['plain', 'totp', 'approval'].map((via) => [via, rig.signatures.filter((s) => s.via === via).length])),
      codesSentAgain: rig.codeRetries.length,
      codesSentAgainReused: rig.codeRetries.filter((r) => r.outcome === 'reused').length,
      rekeys: rig.rekeys,
      policyWrites: rig.policies.reduce((n, p) => n + (1_000_000 - p.next), 0),
      changes: rig.changes.length,
      ...state,
      ...log,
      restartMs: rig.restartMs,
      loadSeconds: Math.round(loadMs / 100) / 10,
      totalSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    process.stdout.write(`# crash safety — ${name}: ${JSON.stringify(figures)}\n# answers: ${JSON.stringify(Object.fromEntries(rig.answers))}\n`);
  } finally {
    rig.running = false;
    for (const replica of rig.replicas) await replica.served?.stop();
  }
}

/** Wide: a restart took 8–131 s under a load average of 20–35 on the 2-core machine. */
const timeout = 300_000 + KILLS * 180_000;

describe('crash safety: SIGKILL under load, restarted each time', () => {
  it(`SQLite, one serve: ${KILLS} kills`, { skip: testStoreKind() === 'sqlite' ? false : 'runs in the SQLite pass', timeout }, async () => {
    await crashRun('SQLite', freshStoreLocation({ kind: 'sqlite' }), 1);
  });
  it(
    `PostgreSQL, two replicas on one schema, killed one at a time: ${KILLS} kills`,
    { skip: testStoreKind() === 'postgres' ? false : 'runs in the PostgreSQL pass', timeout },
    async () => {
      await crashRun('PostgreSQL', freshStoreLocation({ kind: 'postgres' }), 2);
    },
  );
});

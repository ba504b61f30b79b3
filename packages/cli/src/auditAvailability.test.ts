import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { StoreLocation } from '@custos/server';
import { totpFromUri } from '@custos/server/testing';
import { skipUnlessCi } from '@custos/kernel/testing/requirePart';
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
  testArtifactsDir,
  testStoreKind,
} from './testing/cliHarness.js';
import { type Answer, errorCode, http, waitFor as waitForWithin } from './testing/httpJson.js';

// Issue 14, point 3 — audit availability, end to end against the real `custos serve`: the audit
// write is made to fail while the kernel serves (1: the SQLite disk fills — a tmpfs of a few MB
// mounted by the test, filled by a file; 2: the SQLite files made immutable — `chattr +i`, which
// holds against root, unlike chmod; 3: a PostgreSQL cluster the test started itself, stopped with
// `pg_ctl stop -m fast` in the middle of traffic — never the machine's shared server). Then: no
// response carries a signature, /readyz answers 503 `audit: failing` while /healthz stays 200,
// a TOTP code sent meanwhile is not consumed; writing is repaired and, without a restart, /readyz
// turns 200 by itself and the kernel signs again (the same code once, then code_reused). After
// each: `custos audit verify` passes, every signature received has its allowed audit record (by
// auditSeq and opHash), and no operation was signed twice.
//
// Cases 1 and 2 need root (mount, chattr) and run in the SQLite pass; case 3 needs the PostgreSQL
// server binaries (initdb, pg_ctl) and runs in the PostgreSQL pass. A missing capability fails
// under CI=true and skips loudly elsewhere (skipUnlessCi).

const inputs = secretInputs('custos-auditavail-inputs');
const PASSPHRASE = `pp-${randomBytes(12).toString('base64url')}`;
recordTestSecret('auditavail passphrase', PASSPHRASE);
const passphraseFile = inputs.write('passphrase', `${PASSPHRASE}\n`);
// the TOTP wallet signs raw hashes: this deployment allows it (the built-in policy refuses them for enrolled wallets)
const policyFile = inputs.write('policy', '{"rawHash":"allow"}');
const PLAIN = 'plain-wallet';
const OWNED = 'owned-wallet';
/** The codes a refusal may carry while the audit cannot be written (both 503, docs/errors.md). */
const OUTAGE_CODES = new Set(['audit_unavailable', 'store_unavailable']);
/** Generous: a loaded 2-core machine runs 3–4× slower. */
const STATE_TIMEOUT_MS = 60_000;

/** Polls until `done` holds, within STATE_TIMEOUT_MS unless told. */
function waitFor<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = STATE_TIMEOUT_MS): Promise<T> {
  return waitForWithin(what, probe, done, timeoutMs);
}

// ── capabilities ───────────────────────────────────────────────────────────────────────────

function tryRun(file: string, args: string[]): string | undefined {
  try {
    execFileSync(file, args, { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `${file} ${args.join(' ')}: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Whether this process may mount a tmpfs (root, and mount works here); the reason when not. */
function tmpfsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (mount needs it)';
  const dir = mkdtempSync(join(tmpdir(), 'custos-auditavail-probe-'));
  try {
    const failed = tryRun('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    if (failed !== undefined) return failed;
    tryRun('umount', [dir]);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `chattr +i` holds against a write through an already open descriptor, in the artifacts' file system. */
function immutableMissing(dir: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (chattr +i needs it)';
  const file = join(dir, 'immutable-probe');
  const fd = openSync(file, 'a');
  try {
    const failed = tryRun('chattr', ['+i', file]);
    if (failed !== undefined) return failed;
    try {
      writeSync(fd, 'x');
      return 'chattr +i does not stop writes through an open descriptor on this file system';
    } catch {
      return undefined;
    } finally {
      tryRun('chattr', ['-i', file]);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

/** The newest PostgreSQL server binaries (initdb, pg_ctl), or the reason there are none. */
function postgresBin(): { bin: string } | { missing: string } {
  const root = '/usr/lib/postgresql';
  if (process.getuid?.() !== 0) return { missing: 'not running as root (the test runs initdb as the postgres user)' };
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) return { missing: `no initdb under ${root}` };
  if (tryRun('id', ['postgres']) !== undefined) return { missing: 'no postgres user' };
  return { bin: join(root, newest, 'bin') };
}

// ── the signer ─────────────────────────────────────────────────────────────────────────────

interface Signed {
  hash: string;
  opHash: string;
  auditSeq: number;
  signature: string;
}

/** A served signer, its API key, a TOTP-enrolled wallet, and the bookkeeping of every sign request. */
class Rig {
  readonly signed: Signed[] = [];
  /** The hashes of requests refused (no signature in the answer). */
  readonly refused: string[] = [];
  /** The refusals' status and code, counted. */
  readonly refusals = new Map<string, number>();
  served!: Served;
  token = '';
  otpauthUri = '';

  constructor(readonly location: StoreLocation) {}

  async start(): Promise<void> {
    await runCliOk(['init', ...storeArgs(this.location), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    const out = await runCliOk(['apikey', 'create', ...storeArgs(this.location), '--name', 'avail', '--tenant', 'system', '--scopes', 'register,derive,sign']);
    this.token = out.trim().split(/\s+/).at(-1) ?? '';
    recordTestSecret('auditavail api key', this.token);
    await this.serve();
    const enrolled = await http(`${this.served.url}/v1/totp/enroll`, { method: 'POST', token: this.token, json: { walletName: OWNED } });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    this.otpauthUri = String(enrolled.body.otpauthUri);
    recordTestSecret('auditavail otpauth uri', this.otpauthUri);
  }

  async serve(): Promise<void> {
    this.served = await serve(this.location, ['--passphrase-file', passphraseFile, '--policy-file', policyFile], { startTimeoutMs: STATE_TIMEOUT_MS });
    await waitFor(
      'unsealed and ready',
      () => this.readyz(),
      (a) => a.status === 200,
    );
  }

  readyz(): Promise<Answer> {
    return http(`${this.served.url}/readyz`);
  }

  /** One sign request for a fresh hash (the never-enrolled wallet, or the TOTP wallet with `code`); booked as signed or refused. */
  async sign(code?: string): Promise<Answer> {
    const hash = `0x${randomBytes(32).toString('hex')}`;
    const json = code === undefined ? { walletName: PLAIN, keyIndex: 0, hash } : { walletName: OWNED, keyIndex: 0, hash, code };
    const answer = await http(`${this.served.url}/v1/sign/hash`, { method: 'POST', token: this.token, json });
    if (answer.status === 200) {
      assert.equal(typeof answer.body.signature, 'string');
      this.signed.push({ hash, opHash: String(answer.body.opHash), auditSeq: Number(answer.body.auditSeq), signature: String(answer.body.signature) });
    } else {
      assert.equal(answer.body.signature, undefined, 'a refusal carries no signature');
      assert.ok(!JSON.stringify(answer.body).match(/"0x[0-9a-f]{130}"/), `no signature-shaped value in a refusal: ${JSON.stringify(answer.body)}`);
      this.refused.push(hash);
      const key = `${answer.status} ${errorCode(answer)}`;
      this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
    }
    return answer;
  }

  /** While the audit cannot be written: sequential and parallel sign requests all refused 503 with an outage code, not ready, still alive. */
  async assertOutage(): Promise<{ codes: string[]; readyz: Answer }> {
    const readyz = await waitFor(
      '/readyz 503 audit failing',
      () => this.readyz(),
      (a) => a.status === 503 && a.body.audit === 'failing',
    );
    assert.equal(readyz.body.ready, false);
    assert.equal(readyz.body.sealed, false);
    assert.equal((await http(`${this.served.url}/healthz`)).status, 200, '/healthz: the process is alive');
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await this.sign());
    answers.push(...(await Promise.all(Array.from({ length: 8 }, () => this.sign()))));
    for (const answer of answers) {
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.ok(OUTAGE_CODES.has(errorCode(answer) ?? ''), JSON.stringify(answer.body));
    }
    // still not ready after the refusals (a probe write per call, each failing)
    const again = await this.readyz();
    assert.equal(again.status, 503, JSON.stringify(again.body));
    return { codes: [...new Set(answers.map((a) => errorCode(a) ?? ''))].sort(), readyz };
  }

  /**
   * The code of the TOTP wallet for the next step (accepted now, within the ±1 window, for 60–90 s):
   * sent during the outage, refused and not consumed.
   */
  async codeDuringOutage(): Promise<string> {
    const code = totpFromUri(this.otpauthUri, Date.now(), 1);
    const answer = await this.sign(code);
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.ok(OUTAGE_CODES.has(errorCode(answer) ?? ''), JSON.stringify(answer.body));
    // a wrong code gets the same answer: nothing tells a guess from the right code meanwhile
    const wrong = await this.sign(code === '000000' ? '000001' : '000000');
    assert.deepEqual({ status: wrong.status, code: errorCode(wrong) }, { status: answer.status, code: errorCode(answer) });
    return code;
  }

  /** After the repair, without a restart: ready by itself, signs again; the code refused during the outage signs once, then code_reused. */
  async assertRecovered(code: string, pid: number | undefined): Promise<number> {
    const started = Date.now();
    const ready = await waitFor(
      '/readyz 200 after the repair',
      () => this.readyz(),
      (a) => a.status === 200,
    );
    const recoveryMs = Date.now() - started;
    assert.equal(ready.body.audit, 'ok');
    assert.equal(this.served.child.pid, pid, 'the same process: no restart');
    assert.equal(this.served.child.exitCode, null);
    for (let i = 0; i < 3; i++) assert.equal((await this.sign()).status, 200);
    const first = await this.sign(code);
    assert.equal(first.status, 200, `the code refused during the outage was not consumed: ${JSON.stringify(first.body)}`);
    const replay = await this.sign(code);
    assert.equal(replay.status, 403, JSON.stringify(replay.body));
    assert.equal(errorCode(replay), 'code_reused');
    return recoveryMs;
  }

  /**
   * After the server stopped: the chain and checkpoints verify; every signature received has its
   * allowed audit record; no operation has two allowed records; a refused one has none
   * (`refusedMayHaveCommitted`: at most one — PostgreSQL stopped under a COMMIT may have committed
   * it and lost the answer; then no signature was released, but the record may stand).
   */
  async assertLog({ refusedMayHaveCommitted = false, expectResumed = true } = {}): Promise<{ records: number; refusedCommitted: number; resumed: unknown[] }> {
    const verify = await runCli(['audit', 'verify', ...storeArgs(this.location)], { timeoutMs: 120_000 });
    assert.equal(verify.code, 0, `audit verify: ${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /^audit chain OK: /m);
    const resumed = await runSql(this.location, "SELECT detail FROM audit_log WHERE action = 'sys.audit-resumed' ORDER BY seq");
    // where a write failed while the store answered, the probe that found writing working again left its record
    if (expectResumed) assert.ok(resumed.length >= 1, 'a sys.audit-resumed record');
    const rows = await runSql(this.location, "SELECT seq, action, op_hash, decision FROM audit_log WHERE action = 'sign.hash' ORDER BY seq");
    const allowed = new Map<string, number[]>();
    for (const row of rows) {
      if (row.decision !== 'allowed') continue;
      const list = allowed.get(String(row.op_hash)) ?? [];
      list.push(Number(row.seq));
      allowed.set(String(row.op_hash), list);
    }
    for (const [opHash, seqs] of allowed) assert.equal(seqs.length, 1, `operation ${opHash} signed once, not at seqs ${seqs}`);
    for (const s of this.signed) assert.deepEqual(allowed.get(s.opHash), [s.auditSeq], `signature for ${s.hash}: its allowed record at seq ${s.auditSeq}`);
    // the opHash of a raw hash is not the hash: a refused request is matched by the allowed records left over
    const ours = new Set(this.signed.map((s) => s.opHash));
    const leftOver = [...allowed.keys()].filter((opHash) => !ours.has(opHash)).length;
    if (refusedMayHaveCommitted) assert.ok(leftOver <= this.refused.length);
    else assert.equal(leftOver, 0, 'no allowed record for a refused request');
    return { records: rows.length, refusedCommitted: leftOver, resumed: resumed.map((r) => JSON.parse(String(r.detail)) as unknown) };
  }
}

function report(name: string, figures: Record<string, unknown>): void {
  process.stdout.write(`# audit availability — ${name}: ${JSON.stringify(figures)}\n`);
}

// ── 1 and 2: SQLite ────────────────────────────────────────────────────────────────────────

const SQLITE_PASS = testStoreKind() === 'sqlite';
const tmpfsSkip = SQLITE_PASS ? (tmpfsMissing() ?? false) : 'runs in the SQLite pass';
const tmpfsSkipReason =
  typeof tmpfsSkip === 'string' && SQLITE_PASS
    ? skipUnlessCi(tmpfsSkip, { tests: 'the audit availability test (disk full)', part: 'a tmpfs mount' })
    : tmpfsSkip;

describe('audit availability, SQLite: the disk fills (a tmpfs mounted by the test)', { skip: tmpfsSkipReason }, () => {
  it('refuses every signature while full, /readyz 503 audit failing, and recovers without a restart when space is freed', { timeout: 300_000 }, async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'custos-auditavail-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mountPoint]);
    let mounted = true;
    const unmount = () => {
      if (!mounted) return;
      mounted = false;
      tryRun('umount', ['-l', mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    };
    after(unmount);
    const rig = new Rig({ dataDir: join(mountPoint, 'data') });
    try {
      await rig.start();
      for (let i = 0; i < 5; i++) assert.equal((await rig.sign()).status, 200);
      const pid = rig.served.child.pid;

      // fill the file system: one file, until ENOSPC
      const filler = join(mountPoint, 'filler');
      const fd = openSync(filler, 'w');
      const chunk = Buffer.alloc(64 * 1024, 0xa5);
      let filled = 0;
      try {
        for (;;) filled += writeSync(fd, chunk);
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      // fill the tail too (smaller writes), so that no page is left
      for (const size of [4096, 512, 1]) {
        try {
          for (;;) filled += writeSync(fd, chunk.subarray(0, size));
        } catch {}
      }
      closeSync(fd);

      // sign until the audit write fails: the WAL may hold a few more frames in pages it has
      let tries = 0;
      while ((await rig.sign()).status === 200) {
        tries += 1;
        assert.ok(tries < 2_000, 'the audit write never failed on a full disk');
      }
      const outage = await rig.assertOutage();
      const code = await rig.codeDuringOutage();

      // free the space: the kernel, never restarted, turns ready and signs again
      unlinkSync(filler);
      const recoveryMs = await rig.assertRecovered(code, pid);
      assert.equal(await rig.served.stop(), 0, 'a clean shutdown after the recovery');
      const log = await rig.assertLog();
      report('SQLite disk full', {
        fillerBytes: filled,
        signedAfterFull: tries,
        refusals: Object.fromEntries(rig.refusals),
        codes: outage.codes,
        readyz: outage.readyz.body,
        recoveryMs,
        signatures: rig.signed.length,
        signRecords: log.records,
        resumed: log.resumed,
      });
    } finally {
      await rig.served?.stop();
      unmount();
    }
  });
});

function immutableMissingInArtifacts(): string | undefined {
  const dir = mkdtempSync(join(testArtifactsDir(), 'auditavail-ro-probe-'));
  try {
    return immutableMissing(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const immutableSkip = SQLITE_PASS ? (immutableMissingInArtifacts() ?? false) : 'runs in the SQLite pass';
const immutableSkipReason =
  typeof immutableSkip === 'string' && SQLITE_PASS
    ? skipUnlessCi(immutableSkip, { tests: 'the audit availability test (read-only file)', part: 'chattr +i' })
    : immutableSkip;

describe('audit availability, SQLite: the database files made read-only while serving (chattr +i)', { skip: immutableSkipReason }, () => {
  it('refuses every signature while read-only, /readyz 503 audit failing, and recovers without a restart when writable', { timeout: 300_000 }, async () => {
    const location = freshStoreLocation({ kind: 'sqlite' }) as { dataDir: string };
    const rig = new Rig(location);
    const files = () =>
      readdirSync(location.dataDir)
        .filter((f) => f.startsWith('custos.db'))
        .map((f) => join(location.dataDir, f));
    let frozen: string[] = [];
    const thaw = () => {
      for (const file of frozen) tryRun('chattr', ['-i', file]);
      frozen = [];
    };
    after(thaw);
    try {
      await rig.start();
      for (let i = 0; i < 5; i++) assert.equal((await rig.sign()).status, 200);
      const pid = rig.served.child.pid;
      // root ignores the mode bits: the immutable attribute stops its writes too, open descriptors
      // included. Not the -shm file: SQLite writes it through a shared mapping, where a write to an
      // immutable file is a SIGBUS, not an error (the WAL and the database file are what a commit
      // writes, with write(2)).
      frozen = files().filter((f) => !f.endsWith('-shm'));
      assert.ok(
        frozen.some((f) => f.endsWith('-wal')),
        `WAL mode: ${frozen}`,
      );
      for (const file of frozen) execFileSync('chattr', ['+i', file]);

      const first = await rig.sign();
      assert.equal(first.status, 503, JSON.stringify(first.body));
      const outage = await rig.assertOutage();
      const code = await rig.codeDuringOutage();

      thaw();
      const recoveryMs = await rig.assertRecovered(code, pid);
      assert.equal(await rig.served.stop(), 0, 'a clean shutdown after the recovery');
      const log = await rig.assertLog();
      report('SQLite read-only', {
        refusals: Object.fromEntries(rig.refusals),
        codes: outage.codes,
        readyz: outage.readyz.body,
        recoveryMs,
        signatures: rig.signed.length,
        signRecords: log.records,
        resumed: log.resumed,
      });
    } finally {
      thaw();
      await rig.served?.stop();
    }
  });
});

// ── 3: PostgreSQL, a cluster of the test's own ─────────────────────────────────────────────

const PG_PASS = testStoreKind() === 'postgres';
const pg = PG_PASS ? postgresBin() : undefined;
const pgSkip =
  pg === undefined
    ? 'runs in the PostgreSQL pass'
    : 'missing' in pg
      ? skipUnlessCi(pg.missing, { tests: 'the audit availability test (PostgreSQL stopped)', part: 'the PostgreSQL server binaries' })
      : false;

/** A free TCP port on 127.0.0.1, chosen now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('audit availability, PostgreSQL: the test’s own cluster stopped mid-traffic (pg_ctl stop -m fast)', { skip: pgSkip }, () => {
  it('refuses every signature while stopped, /readyz 503, and recovers without a restart when started again', { timeout: 300_000 }, async () => {
    const bin = pg !== undefined && 'bin' in pg ? pg.bin : '';
    const dir = mkdtempSync(join(tmpdir(), 'custos-auditavail-pg-'));
    const data = join(dir, 'data');
    const pgLog = join(dir, 'postgres.log');
    chmodSync(dir, 0o700);
    chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    // initdb and pg_ctl write to /dev/null as the postgres user; where /dev/null is not the device (a
    // broken machine: a regular file left by a root write after someone removed it), they run in a
    // mount namespace of their own with a null device of this test bound over it
    const nullBroken = !statSync('/dev/null').isCharacterDevice();
    if (nullBroken) {
      process.stderr.write('\n*** /dev/null is not a character device here: initdb and pg_ctl run with a private one (unshare -m) ***\n\n');
      execFileSync('mknod', ['-m', '666', join(dir, 'null'), 'c', '1', '3']);
    }
    const asPostgres = (tool: string, args: string[]) =>
      nullBroken
        ? execFileSync(
            'unshare',
            [
              '-m',
              '--propagation',
              'private',
              '--',
              'sh',
              '-c',
              'mount --bind "$0" /dev/null && exec runuser -u postgres -- "$@"',
              join(dir, 'null'),
              join(bin, tool),
              ...args,
            ],
            { stdio: 'pipe', timeout: 120_000 },
          )
        : execFileSync('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { stdio: 'pipe', timeout: 120_000 });
    const port = await freePort();
    const pgCtl = (action: string, ...extra: string[]) =>
      asPostgres('pg_ctl', ['-D', data, '-l', pgLog, '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, action, ...extra]);
    let running = false;
    const cleanUp = () => {
      if (running) {
        try {
          asPostgres('pg_ctl', ['-D', data, '-w', '-m', 'immediate', 'stop']);
        } catch {}
      }
      running = false;
      rmSync(dir, { recursive: true, force: true });
    };
    after(cleanUp);
    const rig = new Rig({ url: `postgresql://postgres@127.0.0.1:${port}/postgres` });
    try {
      asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
      pgCtl('start');
      running = true;
      await rig.start();
      for (let i = 0; i < 5; i++) assert.equal((await rig.sign()).status, 200);
      const pid = rig.served.child.pid;

      // traffic: 4 clients signing one after another, while the cluster stops
      let traffic = true;
      const during: Answer[] = [];
      const clients = Array.from({ length: 4 }, async () => {
        while (traffic) during.push(await rig.sign());
      });
      await waitFor(
        'traffic flowing',
        async () => during.length,
        (n) => n >= 8,
      );
      pgCtl('stop', '-m', 'fast');
      running = false;
      await waitFor(
        'a refusal after the stop',
        async () => during.filter((a) => a.status !== 200).length,
        (n) => n >= 4,
      );
      traffic = false;
      await Promise.all(clients);
      for (const answer of during.filter((a) => a.status !== 200)) {
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.ok(OUTAGE_CODES.has(errorCode(answer) ?? ''), JSON.stringify(answer.body));
      }
      const outage = await rig.assertOutage();
      assert.equal(outage.readyz.body.store, 'unreachable');
      const code = await rig.codeDuringOutage();

      pgCtl('start');
      running = true;
      const recoveryMs = await rig.assertRecovered(code, pid);
      assert.equal(await rig.served.stop(), 0, 'a clean shutdown after the recovery');
      const log = await rig.assertLog({ refusedMayHaveCommitted: true, expectResumed: false });
      report('PostgreSQL stopped', {
        duringTraffic: during.length,
        refusals: Object.fromEntries(rig.refusals),
        codes: outage.codes,
        readyz: outage.readyz.body,
        recoveryMs,
        signatures: rig.signed.length,
        signRecords: log.records,
        resumed: log.resumed,
        refusedButCommitted: log.refusedCommitted,
      });
      assert.ok(readFileSync(pgLog, 'utf8').includes('database system is shut down'), 'the cluster really stopped');
    } finally {
      await rig.served?.stop();
      cleanUp();
    }
  });
});

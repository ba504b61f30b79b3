import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyMessage } from 'viem';
import { ROOT, recordTestSecret, testArtifactsDir } from './testing/cliHarness.js';

// store-independent: the container's entry point runs on its data directory volume (SQLite), whatever the pass (runs in the SQLite pass only)

// The deployment recipes (issue 15, point 3; docs/deployment.md): the systemd unit's hardening and
// `systemd-analyze verify`, the container image's definition, and its entry point run as the image
// would run it — as uid 10001, the root filesystem read-only (a private mount namespace where / is
// remounted read-only), the data directory the only writable path — through init, apikey create,
// serve, /healthz, /readyz and a signature. Without root or unshare (a developer machine) the entry
// point runs without the namespace, with a notice; in CI that is a failure.

const UNIT = join(ROOT, 'deploy', 'systemd', 'custos.service');
const CONTAINERFILE = join(ROOT, 'deploy', 'container', 'Containerfile');
const ENTRYPOINT = join(ROOT, 'deploy', 'container', 'entrypoint.sh');
const IMAGE_UID = 10001;

/** The [Service] section's settings; a key that repeats keeps every value. */
function serviceSettings(): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const heading = /^\[(\w+)\]$/.exec(line);
    if (heading) section = heading[1] ?? '';
    const setting = /^(\w+)=(.*)$/.exec(line);
    if (setting && section === 'Service') settings.set(setting[1] ?? '', [...(settings.get(setting[1] ?? '') ?? []), setting[2] ?? '']);
  }
  return settings;
}

function missingPart(what: string): void {
  if (process.env.CI === 'true') assert.fail(`${what} (CI needs it)`);
  console.log(`*** ${what}: skipped on this machine ***`);
}

describe('the systemd unit (deploy/systemd/custos.service)', () => {
  it('runs as its own user with the hardening keys: NoNewPrivileges, ProtectSystem=strict, the data directory as StateDirectory, no capabilities', () => {
    const s = serviceSettings();
    const one = (key: string): string | undefined => s.get(key)?.[0];
    assert.equal(one('User'), 'custos');
    assert.equal(one('Group'), 'custos');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('StateDirectory'), 'custos');
    assert.equal(one('StateDirectoryMode'), '0700');
    assert.equal(one('CapabilityBoundingSet'), '');
    for (const key of [
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'ProtectKernelTunables',
      'ProtectKernelModules',
      'ProtectControlGroups',
      'RestrictSUIDSGID',
      'LockPersonality',
    ])
      assert.equal(one(key), 'yes', key);
    assert.match(one('ExecStart') ?? '', / serve --data-dir \/var\/lib\/custos /, 'serves from the state directory');
    assert.match(one('ExecStart') ?? '', /--host 127\.0\.0\.1 /, 'on loopback (a proxy in front terminates TLS)');
    // V8's JIT needs writable and executable memory: the unit says so rather than setting a key that kills node
    assert.equal(one('MemoryDenyWriteExecute'), 'no');
    assert.match(readFileSync(UNIT, 'utf8'), /MemoryDenyWriteExecute=yes stops V8/, 'the unit says why');
    assert.match(readFileSync(join(ROOT, 'deploy', 'systemd', 'custos.sysusers.conf'), 'utf8'), /^u custos - /m);
  });

  it('passes systemd-analyze verify (ExecStart pointed at this machine’s node and checkout)', () => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) return missingPart('systemd-analyze is not installed (Debian package systemd)');
    const dir = mkdtempSync(join(tmpdir(), 'custos-unit-'));
    try {
      const unit = readFileSync(UNIT, 'utf8')
        .replace('ExecStart=/usr/bin/node /opt/custos/', `ExecStart=${process.execPath} ${ROOT}`)
        .replace('Documentation=file:/opt/custos/', `Documentation=file:${ROOT}`);
      writeFileSync(join(dir, 'custos.service'), unit);
      const result = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'custos.service')], { encoding: 'utf8', timeout: 60_000 });
      // lines about the unit itself; systemd-analyze also reports the host's own units, which are not ours
      const ours = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.includes('custos.service'));
      assert.deepEqual(ours, [], `systemd-analyze verify: ${result.stdout}${result.stderr}`);
      assert.equal(result.status, 0, `systemd-analyze verify: ${result.stdout}${result.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the container image (deploy/container/Containerfile)', () => {
  it('is non-root, pins its Node base image by version, keeps the data directory a volume and starts through the entry point', () => {
    const file = readFileSync(CONTAINERFILE, 'utf8');
    assert.match(file, /^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-[a-z]+-slim$/m, 'a full Node version, never a floating tag');
    assert.match(file, new RegExp(`^USER ${IMAGE_UID}:${IMAGE_UID}$`, 'm'));
    assert.match(file, /^VOLUME \["\/var\/lib\/custos"\]$/m);
    assert.match(file, /install -d -o 10001 -g 10001 -m 0700 \/var\/lib\/custos/);
    assert.match(file, /^ENTRYPOINT \["\/opt\/custos\/deploy\/container\/entrypoint\.sh"\]$/m);
    assert.match(file, /^CMD \["serve"\]$/m);
    assert.match(file, /--read-only --cap-drop ALL --security-opt no-new-privileges/);
    assert.ok((statSync(ENTRYPOINT).mode & 0o111) !== 0, 'the entry point is executable');
  });
});

describe('the container’s entry point, run as the image runs it', () => {
  let data: string;
  let logFile: string;
  let passphraseFile: string;
  let isolated = false;
  const running = new Set<ChildProcess>();

  before(() => {
    data = mkdtempSync(join(tmpdir(), 'custos-volume-'));
    const secrets = mkdtempSync(join(tmpdir(), 'custos-volume-secrets-'));
    const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
    recordTestSecret('deploy entrypoint passphrase', passphrase);
    passphraseFile = join(secrets, 'passphrase');
    writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o400 });
    logFile = join(testArtifactsDir(), `deploy-entrypoint-${process.pid}.log`);
    const root = process.getuid?.() === 0;
    const unshare = spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status === 0;
    isolated = root && unshare && spawnSync('setpriv', ['--version']).status === 0;
    if (isolated) {
      // the volume and the mounted secret as the image gives them: owned by the image's user
      chownSync(data, IMAGE_UID, IMAGE_UID);
      chmodSync(data, 0o700);
      chownSync(secrets, IMAGE_UID, IMAGE_UID);
      chownSync(passphraseFile, IMAGE_UID, IMAGE_UID);
    } else missingPart('not root or no unshare/setpriv: the entry point runs as this user on a writable root filesystem');
  });
  after(() => {
    for (const child of running) child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
    rmSync(join(passphraseFile, '..'), { recursive: true, force: true });
  });

  /**
   * Starts the entry point with `args` as the image would: env as the image sets it, in a private
   * mount namespace where the data directory is bind-mounted writable and / is then remounted
   * read-only, as uid/gid 10001 with no supplementary groups. Output goes to logFile.
   */
  function entrypoint(args: string[], env: Record<string, string> = {}, { captureStdout = false } = {}): ChildProcess & { output: () => string } {
    const fd = openSync(logFile, 'a');
    const stdio: ['ignore', 'pipe' | number, number] = ['ignore', captureStdout ? 'pipe' : fd, fd];
    const imageEnv = { PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`, CUSTOS_DATA_DIR: data, CUSTOS_HOST: '0.0.0.0', CUSTOS_PORT: '0', ...env };
    const setup =
      'mount --bind "$DATA" "$DATA" && mount -o remount,bind,ro / && exec setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all -- "$@"';
    const child = isolated
      ? spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', setup, 'sh', ENTRYPOINT, ...args], {
          stdio,
          env: { ...imageEnv, DATA: data },
        })
      : spawn(ENTRYPOINT, args, { stdio, env: { ...process.env, ...imageEnv } });
    closeSync(fd);
    running.add(child);
    child.once('exit', () => running.delete(child));
    // what init and apikey create print (the mnemonic, the key) stays out of the log files
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    return Object.assign(child, { output: () => out });
  }

  async function finished(child: ChildProcess): Promise<number | null> {
    if (child.exitCode !== null) return child.exitCode;
    return new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  it(
    'initialises the volume, creates a key, serves on 0.0.0.0 (plain HTTP only when told), answers /healthz and /readyz, signs, and stops on SIGTERM — writing nowhere but the volume',
    { timeout: 180_000 },
    async () => {
      const log = (): string => readFileSync(logFile, 'utf8');
      const init = entrypoint(['init', '--passphrase-file', passphraseFile, '--scrypt-log-n', '10'], {}, { captureStdout: true });
      assert.equal(await finished(init), 0, `init: ${log()}`);
      assert.match(init.output(), /^signerId /m);
      const key = entrypoint(['apikey', 'create', '--data-dir', data, '--name', 'deploy', '--scopes', 'derive,sign'], {}, { captureStdout: true });
      assert.equal(await finished(key), 0, `apikey create: ${log()}`);
      const token = key.output().trim().split(/\s+/).at(-1) ?? '';
      assert.match(token, /^\S{20,}$/);
      recordTestSecret('deploy entrypoint apiKey', token);

      // fail closed: plain HTTP on 0.0.0.0 without --insecure-http is refused at start
      const refused = entrypoint(['serve', '--passphrase-file', passphraseFile]);
      assert.notEqual(await finished(refused), 0, 'plain HTTP on a non-loopback host is refused');

      const mark = log().length;
      const served = entrypoint(['serve', '--passphrase-file', passphraseFile, '--insecure-http']);
      let port: string | undefined;
      const deadline = Date.now() + 60_000;
      while (port === undefined) {
        port = /custos: listening on https?:\/\/[^\s]*:(\d+) /.exec(log().slice(mark))?.[1];
        if (port !== undefined) break;
        assert.ok(served.exitCode === null && Date.now() < deadline, `serve did not start: ${log().slice(mark)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const base = `http://127.0.0.1:${port}`;
      const healthz = await fetch(`${base}/healthz`);
      assert.equal(healthz.status, 200);
      assert.deepEqual(await healthz.json(), { status: 'ok' });
      const readyz = await fetch(`${base}/readyz`);
      assert.equal(readyz.status, 200, 'unsealed at start, store and audit writable: ready');
      assert.equal(((await readyz.json()) as { ready: boolean }).ready, true);

      const signed = await fetch(`${base}/v1/sign/message`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ walletName: 'deploy-smoke', keyIndex: 0, message: { text: 'hello from the entry point' } }),
      });
      const answer = (await signed.json()) as { address: `0x${string}`; signature: `0x${string}` };
      assert.equal(signed.status, 200, JSON.stringify(answer));
      assert.ok(await verifyMessage({ address: answer.address, message: 'hello from the entry point', signature: answer.signature }), 'a valid signature');

      served.kill('SIGTERM');
      assert.equal(await finished(served), 0, 'SIGTERM: a clean stop');

      // what the signer wrote is in the volume, owned by the image's user, readable by no one else
      const files = readdirSync(data);
      assert.ok(files.length > 0, 'the volume holds the signer');
      if (isolated)
        for (const name of files) {
          const st = statSync(join(data, name));
          assert.equal(st.uid, IMAGE_UID, `${name}: owned by the image's user`);
          assert.equal(st.mode & 0o077, 0, `${name}: no access for group or others`);
        }
    },
  );

  it('the simulation holds: in that namespace, as that user, only the volume is writable', { timeout: 30_000 }, (t) => {
    if (!isolated) return t.skip('no namespace on this machine');
    const probe = `for p in /tmp "$HOME" ${JSON.stringify(ROOT)} "$DATA"; do if touch "$p/.custos-probe" 2>/dev/null; then echo "writable $p"; rm -f "$p/.custos-probe"; fi; done`;
    const setup =
      'mount --bind "$DATA" "$DATA" && mount -o remount,bind,ro / && exec setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all -- sh -c "$0"';
    const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', setup, probe], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', DATA: data, HOME: '/root' },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, `writable ${data}\n`);
  });

  it('refuses to start without a writable data directory (the volume not mounted), before node runs', { timeout: 30_000 }, async () => {
    const mark = readFileSync(logFile, 'utf8').length;
    const child = entrypoint(['serve'], { CUSTOS_DATA_DIR: join(data, 'not-mounted') });
    assert.equal(await finished(child), 64);
    assert.match(
      readFileSync(logFile, 'utf8').slice(mark),
      /custos-entrypoint: the data directory .*not-mounted is not a writable directory: mount the data volume there/,
    );
  });
});

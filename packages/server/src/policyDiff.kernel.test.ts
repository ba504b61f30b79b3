import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, AuditRecord, WalletPolicy } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin, quorumDriver } from './testing/testAdmins.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13, what the owner sees of a policy loosening: the change page, the code e-mail, every notice
// and GET /v1/changes show the difference field by field (old → new), computed by the kernel from
// the policy in force and the one the change gives — never from anything the backend sent. A
// TOTP-only wallet's change says it waits for admin approval. A loosening confirmed before the
// deployment's defaults were loosened (and the wallet pinned) never lifts the pin when it applies.
// Messages are read from a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 10, 6, 0, 0);
const ORIGIN = 'http://localhost:9311';
const HOUR = 3_600_000;
const ETHER = 10n ** 18n;
const ALICE = `0x${'a1'.repeat(20)}`;
const BOB = `0x${'b0'.repeat(20)}`;
const FAKE = `0x${'ee'.repeat(20)}`;

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');

/** The deployment's defaults at first: 1 ETH per transaction on chain 1. */
const CONFIG: WalletPolicy = { windowSeconds: 3600, native: { '1': { perTx: String(ETHER) } } };

describe('what the owner sees of a policy loosening: field by field, on the page, in the mail, in the API', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      policyDefaults: CONFIG,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'] } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  async function oobWallet(walletName: string, address: string) {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
    const message = await delivery.deliver();
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
  }

  /** PUT /v1/wallets/policy over HTTP: a loosening answers 202 with the change (and its diff). */
  async function loosen(walletName: string, policy: WalletPolicy) {
    const res = await signer.app.inject({ method: 'PUT', url: '/v1/wallets/policy', headers: signer.auth(), payload: { walletName, policy } });
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json() as { id: string; changeUrl: string; policyDiff: Array<Record<string, unknown>> };
    const capability = new URL(body.changeUrl).pathname.split('/').at(-1) as string;
    recordTestSecret('changeCapability', capability);
    return { ...body, capability };
  }

  /** The first message from index `from` on that `match` accepts (other wallets' notices may come first). */
  async function mailMatching(from: number, match: (m: { to: string; subject: string; text: string }) => boolean) {
    for (let i = from; ; i += 1) {
      const m = await delivery.mail.nextMail(i);
      if (match(m)) return m;
    }
  }

  async function audits(action: string, walletName: string): Promise<AuditRecord[]> {
    return (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === action && r.walletName === walletName);
  }

  /** The three lines a loosening of `dora`'s policy must show (old → new), as GET /v1/changes carries them. */
  const DORA_DIFF = [
    {
      field: 'native.1.perTx',
      label: 'Limit per transaction on the currency of chain 1 (maximum cost: value + gas × fee)',
      from: '1000000000000000000 wei (1 in the chain’s currency)',
      to: '5000000000000000000 wei (5 in the chain’s currency)',
      looser: true,
    },
    {
      field: 'destinations',
      label: 'Allowed destinations (allowlist)',
      from: '1 address',
      to: '2 addresses',
      added: [BOB],
      removed: [],
      looser: true,
    },
    { field: 'rawHash', label: 'Raw 32-byte hashes (blind signing)', from: 'deny', to: 'allow', looser: true },
  ];

  it('a raised limit, an added destination and rawHash deny → allow: in the API view, on the page, in the code mail and in every notice', async () => {
    await oobWallet('dora', 'dora@example.com');
    // A tightening applies at once: an allowlist where there was none.
    assert.equal('timelocked' in (await signer.kernel.setWalletPolicy(app, { walletName: 'dora', policy: { destinations: [ALICE] } })), false);
    const change = await loosen('dora', { native: { '1': { perTx: String(5n * ETHER) } }, destinations: [ALICE, BOB], rawHash: 'allow' });
    assert.deepEqual(change.policyDiff, DORA_DIFF, 'the 202 carries the diff');
    const get = await signer.app.inject({ method: 'GET', url: `/v1/changes?id=${change.id}`, headers: signer.auth() });
    assert.equal(get.statusCode, 200, get.body);
    assert.deepEqual(get.json().policyDiff, DORA_DIFF);
    assert.equal(get.json().adminApproval, undefined, 'a wallet with an e-mail address needs no quorum');

    // The page: one row per field, old and new, the added address listed, the loosening marked.
    const page = await signer.app.inject({ method: 'GET', url: `/changes/${change.capability}` });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /<section id="policy-diff"[^>]*data-lines="3"/);
    assert.match(
      page.body,
      /<tr data-field="native\.1\.perTx" data-looser="true">[\s\S]*?<td class="from">1000000000000000000 wei \(1 in the chain’s currency\)<\/td><td class="to">5000000000000000000 wei \(5 in the chain’s currency\)/,
    );
    assert.match(
      page.body,
      new RegExp(
        `<tr data-field="destinations" data-looser="true">[\\s\\S]*?<ul class="added"><li><span aria-hidden="true">\\+</span> <code>${BOB}</code></li></ul>`,
      ),
    );
    assert.match(page.body, /<tr data-field="rawHash" data-looser="true">[\s\S]*?<td class="from">deny<\/td><td class="to">allow/);

    // The code e-mail: the whole difference before the code.
    await signer.kernel.sendChangeCode(change.capability);
    const codeMail = await delivery.deliver();
    assert.equal(codeMail.to, 'dora@example.com');
    const expectedLines = [
      'What changes (old → new):',
      '- Limit per transaction on the currency of chain 1 (maximum cost: value + gas × fee): 1000000000000000000 wei (1 in the chain’s currency) → 5000000000000000000 wei (5 in the chain’s currency)  [LOOSER]',
      '- Allowed destinations (allowlist): 1 address → 2 addresses  [LOOSER]',
      `    + ${BOB}`,
      '- Raw 32-byte hashes (blind signing): deny → allow  [LOOSER]',
    ];
    for (const line of expectedLines) assert.ok(codeMail.text.includes(line), `code mail lacks ${JSON.stringify(line)}:\n${codeMail.text}`);
    const mark = delivery.mail.received.length;
    const confirmed = await signer.kernel.confirmChange(change.capability, { kind: 'oob', proof: codeMail.code });
    assert.equal(confirmed.state, 'pending');

    // The announcement, the reminders and the applied notice: each carries it.
    await delivery.loop.runOnce();
    const announced = await delivery.mail.nextMail(mark);
    assert.match(announced.subject, /was requested/);
    for (const line of expectedLines) assert.ok(announced.text.includes(line), `announcement lacks ${JSON.stringify(line)}`);
    signer.clock.now = (confirmed.effectiveAt as number) - HOUR;
    let count = delivery.mail.received.length;
    await signer.kernel.applyDueChanges();
    await delivery.loop.runOnce();
    const reminder = await delivery.mail.nextMail(count);
    assert.match(reminder.subject, /Reminder/);
    for (const line of expectedLines) assert.ok(reminder.text.includes(line), 'reminder');
    signer.clock.now = confirmed.effectiveAt as number;
    count = delivery.mail.received.length;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    await delivery.loop.runOnce();
    const applied = await delivery.mail.nextMail(count);
    assert.match(applied.subject, /took effect/);
    for (const line of expectedLines) assert.ok(applied.text.includes(line), 'applied notice');
    const policy = (await signer.kernel.getWalletPolicy(app, { walletName: 'dora' })).policy;
    assert.deepEqual([policy.native?.['1']?.perTx, policy.destinations, policy.rawHash], [String(5n * ETHER), [ALICE, BOB], 'allow']);
  });

  it('attack: a backend that sends its own from/to with the payload changes nothing the owner is shown — the kernel computes both', async () => {
    await oobWallet('dino', 'dino@example.com');
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/changes',
      headers: signer.auth(),
      payload: {
        walletName: 'dino',
        kind: 'policy.loosen',
        payload: {
          policy: { native: {}, destinations: [FAKE] },
          from: { native: {}, destinations: [FAKE] },
          to: { native: {}, destinations: [FAKE] },
        },
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    const diff = res.json().policyDiff as Array<{ field: string; from: string; to: string; looser: boolean }>;
    // The real difference: the deployment's 1 ETH limit removed (an empty native map: the wallet has no limits left) and an allowlist of one added.
    assert.deepEqual(
      diff.map((l) => [l.field, l.from, l.to, l.looser]),
      [
        ['valueLimits', 'set', 'none', true],
        ['native.1.perTx', '1000000000000000000 wei (1 in the chain’s currency)', 'no limit', true],
        ['destinations', 'any destination (no allowlist)', '1 address', false],
      ],
    );
    const [row] = await signer.sql('SELECT payload FROM pending_changes WHERE id = $1', res.json().id);
    const stored = JSON.parse(String(row?.payload)) as { from: WalletPolicy; to: WalletPolicy };
    assert.equal(stored.from.destinations, undefined, 'from is the policy in force, not the backend’s');
    assert.deepEqual(stored.to.native, {});
  });

  it('a TOTP-only wallet’s change says it is waiting for admin approval (page and API), then approved', async () => {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName: 'tom' });
    recordTestSecret('otpauthUri', otpauthUri);
    const change = await loosen('tom', { rawHash: 'allow' });
    const view = async () => (await signer.app.inject({ method: 'GET', url: `/v1/changes?id=${change.id}`, headers: signer.auth() })).json();
    assert.equal((await view()).adminApproval, 'waiting');
    const requested = await signer.app.inject({ method: 'GET', url: `/changes/${change.capability}` });
    assert.match(requested.body, /<p id="admin-approval" class="state" data-admin-approval="waiting">After you confirm, it is also waiting for admin approval/);
    signer.clock.now += 30_000;
    await signer.kernel.confirmChange(change.capability, { kind: 'totp', proof: totpFromUri(otpauthUri, signer.clock.now) });
    assert.equal((await view()).adminApproval, 'waiting');
    const pending = await signer.app.inject({ method: 'GET', url: `/changes/${change.capability}` });
    assert.match(pending.body, /data-admin-approval="waiting">It is waiting for admin approval/);
    // Past the delay, without the quorum: not applied, still waiting.
    signer.clock.now += 49 * HOUR;
    await signer.kernel.applyDueChanges();
    assert.equal((await view()).state, 'pending');
    assert.equal((await view()).adminApproval, 'waiting');
  });

  describe('the pin of a defaults loosening is respected by an older policy.loosen', () => {
    /** Proposed by A, approved by B and C: M = 2 (testing/testAdmins.ts). */
    const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
    const settle = async (kind: string, payload: unknown) => {
      await q.pass(A, [B, C], kind, payload);
    };

    it('attack: rawHash allow confirmed, then the quorum raises the defaults to 100 ETH — the older change is refused when due, the pin (1 ETH) stays until its own change', async () => {
      await oobWallet('pia', 'pia@example.com');
      const change = await loosen('pia', { rawHash: 'allow' });
      await signer.kernel.sendChangeCode(change.capability);
      const confirmed = await signer.kernel.confirmChange(change.capability, { kind: 'oob', proof: (await delivery.deliver()).code });
      assert.equal(confirmed.state, 'pending');
      // An hour later, 2 of 3 admins loosen the defaults: pia is pinned at 1 ETH (her own change of that pin waits its delay).
      signer.clock.now += HOUR;
      // The quorum starts from the configuration's defaults (its settings row decides from now on).
      await bootstrapTestQuorum(signer.store, adminSet(2, [A, B, C]), { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: CONFIG });
      await settle('deployment.settings', {
        timelockDelaySeconds: 48 * 3600,
        webhookUrl: null,
        policyDefaults: { windowSeconds: 3600, native: { '1': { perTx: String(100n * ETHER) } } },
      });
      const pinned = (await signer.kernel.getWalletPolicy(app, { walletName: 'pia' })).override;
      assert.equal(pinned?.native?.['1']?.perTx, String(ETHER), 'pinned at the old defaults');
      const pinChange = (await signer.sql("SELECT id FROM pending_changes WHERE wallet_name = 'pia' AND id <> $1", change.id))[0]?.id as string;
      const pinView = await signer.kernel.getChange(app, { id: pinChange });
      assert.deepEqual(
        pinView.policyDiff?.map((l) => [l.field, l.from, l.to]),
        [['native.1.perTx', '1000000000000000000 wei (1 in the chain’s currency)', '100000000000000000000 wei (100 in the chain’s currency)']],
        'the pin’s removal shows the raised limit',
      );

      // The older change comes due: applying its override ({ rawHash: allow }) now would drop the pin and give 100 ETH.
      signer.clock.now = (confirmed.effectiveAt as number) + 60_000;
      const count = delivery.mail.received.length;
      await signer.kernel.applyDueChanges();
      assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'cancelled');
      const refused = (await audits('change.apply', 'pia')).at(-1);
      assert.equal(refused?.decision, 'denied');
      assert.equal(refused?.reason, 'change_not_applicable');
      const after = (await signer.kernel.getWalletPolicy(app, { walletName: 'pia' })).policy;
      assert.deepEqual([after.native?.['1']?.perTx, after.rawHash], [String(ETHER), 'deny'], 'the pin stays whole');
      await delivery.loop.runOnce();
      const told = await mailMatching(count, (m) => m.to === 'pia@example.com' && /was not made/.test(m.subject));
      assert.match(told.text, /Raw 32-byte hashes \(blind signing\): deny → allow/);

      // The pin's own change applies after its delay: the new defaults, as the owner was shown.
      signer.clock.now += HOUR;
      assert.ok((await signer.kernel.applyDueChanges()) >= 1);
      assert.equal((await signer.kernel.getChange(app, { id: pinChange })).state, 'applied');
      assert.equal((await signer.kernel.getWalletPolicy(app, { walletName: 'pia' })).policy.native?.['1']?.perTx, String(100n * ETHER));
    });
  });
});

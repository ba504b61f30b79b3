import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type OpenedStore, openStore, PostgresStore, type StoreLocation } from '@custos/server';
import { codeOf, type MailServer, startMailServer, totpFromUri } from '@custos/server/testing';
import { hashMessage, recoverAddress } from 'viem';
import {
  freshStoreLocation,
  recordTestSecret,
  runCliOk,
  runSqlOn,
  type Served,
  secretInputs,
  serve,
  storeArgs,
  testArtifactsDir,
  testStoreKind,
} from './testing/cliHarness.js';

// Issue 14, point 1 — the compromised-backend suite. The attacker holds a valid API key (scopes
// register, derive, sign) and sees every code the owner types into the backend; every attack below
// drives the real `custos serve` over HTTP as that backend would (native /v1 routes, the TOTP ETH
// Signer compatibility API, the JSON-RPC endpoint, the kernel's own pages with the links the
// backend is handed), and asserts the exact refusal (HTTP status and error code, or the JSON-RPC
// error) and the audit record the kernel wrote for it, read from the store. The owner's side (the
// authenticator app, the mailbox) is played by the test too: each attack first shows that the
// owner's genuine action works where the attacker's does not, so that a refusal is the rule's and
// not a broken set-up's. The table of attacks is printed at the end and written to the artifacts
// directory (compromised-backend.md). docs/security-testing.md, "Compromised backend".
//
// One `custos serve` on the pass's store (the SQLite pass: a data directory; the PostgreSQL pass: a
// schema of the test database); in the PostgreSQL pass a second replica on the same schema for the
// cross-replica guessing attacks. The deployment allows raw hashes and uncountable flows with a
// `present` factor (--policy-file) so that the swap attacks reach the approval check on every
// route; the blind-signing attacks use wallets whose own policy is the built-in default (rawHash
// deny, uncountable bound). The compatibility API runs with --compat-raw-hash policy (its default,
// allow, is the plugin's documented weaker mode: a relayed code signs any hash).

const KIND = testStoreKind();
const inputs = secretInputs('custos-attack-inputs');
const PASSPHRASE = `pp-${randomBytes(12).toString('base64url')}`;
recordTestSecret('attack passphrase', PASSPHRASE);
const passphraseFile = inputs.write('passphrase', `${PASSPHRASE}\n`);
const policyFile = inputs.write('policy', JSON.stringify({ rawHash: 'allow', uncountable: 'present' }));
/** The built-in defaults, as a wallet's own (stricter) override: what the blind-signing attacks face. */
const STRICT = { rawHash: 'deny', uncountable: 'bound' };

const TO = '0x3535353535353535353535353535353535353535';
const tx = (nonce: number, value = '1000') => ({
  type: 'eip1559',
  chainId: 1,
  nonce,
  to: TO,
  value,
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
});
const typedData = (contents: string) => ({
  domain: { name: 'Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: { Mail: [{ name: 'contents', type: 'string' }] },
  primaryType: 'Mail',
  message: { contents },
});
const hash32 = () => `0x${randomBytes(32).toString('hex')}`;

// ── the table ──────────────────────────────────────────────────────────────────────────────

interface Row {
  attack: string;
  route: string;
  expected: string;
  observed: string;
  audit: string;
  pass: string;
}
const rows: Row[] = [];

/** What an attack reports as it goes: the refusal it saw, and the audit record that backs it. */
interface Seen {
  observed(text: string): void;
  audit(text: string): void;
}

/** One attack: a test of its own (named in failures) and a row of the table, filled as it runs. */
function attack(name: string, route: string, expected: string, run: (seen: Seen) => Promise<void>, skip?: string): void {
  const row: Row = { attack: name, route, expected, observed: 'not run', audit: '', pass: 'not run' };
  rows.push(row);
  if (skip !== undefined) {
    row.observed = `skipped: ${skip}`;
    row.pass = `skipped (${skip})`;
  }
  it(`${name} — ${route}`, { timeout: 120_000, ...(skip === undefined ? {} : { skip }) }, async () => {
    try {
      await run({
        observed: (text) => {
          row.observed = text;
        },
        audit: (text) => {
          row.audit = text;
        },
      });
      row.pass = 'pass';
    } catch (error) {
      row.pass = 'FAIL';
      throw error;
    }
  });
}

/** An attack the product does not let a backend make at all: a row saying why, never a pass. */
function notApplicable(name: string, route: string, why: string): void {
  rows.push({ attack: name, route, expected: '—', observed: '—', audit: '—', pass: `n/a: ${why}` });
}

function tableMarkdown(): string {
  const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
  const lines = ['| attack | route | expected | observed | audit record | pass |', '| --- | --- | --- | --- | --- | --- |'];
  for (const r of rows) lines.push(`| ${[r.attack, r.route, r.expected, r.observed, r.audit, r.pass].map(cell).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

// ── HTTP ───────────────────────────────────────────────────────────────────────────────────

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

async function request(url: string, init: RequestInit): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // a page
  }
  return { status: response.status, body, text };
}

function errorCode(answer: Answer): string | undefined {
  return (answer.body.error as { code?: string } | undefined)?.code;
}

function statusAndCode(answer: Answer): string {
  return `${answer.status} ${errorCode(answer) ?? ''}`.trim();
}

/** The alert a page shows for a refusal (`data-code` on the role="alert" element). */
function alertCode(html: string): string | undefined {
  return /role="alert"[^>]*data-code="([a-z_]+)"|data-code="([a-z_]+)"[^>]*role="alert"/
    .exec(html)
    ?.slice(1)
    .find((x) => x !== undefined);
}

/** A refusal carries no signature, nor anything shaped like one. */
function assertNoSignature(answer: Answer): void {
  assert.equal(answer.body.signature, undefined);
  assert.equal(answer.body.serializedTransaction, undefined);
  assert.doesNotMatch(answer.text, /0x[0-9a-f]{130}/, 'no 65-byte signature in a refusal');
}

// ── the signer and its store ───────────────────────────────────────────────────────────────

let location: StoreLocation;
let store: OpenedStore;
let served: Served;
let replica: Served | undefined;
let mail: MailServer;
let apiKey = '';
let signerId = '';
const startedAt = Date.now();

function api(method: string, path: string, json?: unknown, on: Served = served): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
  if (json !== undefined) headers['content-type'] = 'application/json';
  return request(`${on.url}${path}`, { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
}

async function compatSession(): Promise<string> {
  const answer = await request(`${served.url}/sys/v1/session/auth`, { method: 'POST', headers: { authorization: `Basic ${apiKey}` } });
  assert.equal(answer.status, 200, answer.text);
  const token = String(answer.body.access_token);
  recordTestSecret('compat access token', token);
  return token;
}

function compat(token: string, payload: Record<string, unknown>): Promise<Answer> {
  return request(`${served.url}/sys/v1/plugins/${signerId}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
}

let rpcId = 0;
async function rpc(
  method: string,
  params: unknown[],
): Promise<{ status: number; result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } }> {
  rpcId += 1;
  const answer = await api('POST', '/v1/rpc', { jsonrpc: '2.0', id: rpcId, method, params });
  return { status: answer.status, ...(answer.body as { result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } }) };
}

interface AuditRow {
  seq: number;
  action: string;
  decision: string;
  reason: string | null;
  opHash: string | null;
  detail: Record<string, unknown>;
}

/** The wallet's audit records (after seq `since`), read from the store the server writes. */
async function auditOf(walletName: string, since = 0): Promise<AuditRow[]> {
  const found = await runSqlOn(store, 'SELECT seq, action, decision, reason, op_hash, detail FROM audit_log WHERE wallet_name = $1 AND seq > $2 ORDER BY seq', [
    walletName,
    since,
  ]);
  return found.map((r) => ({
    seq: Number(r.seq),
    action: String(r.action),
    decision: String(r.decision),
    reason: r.reason === null ? null : String(r.reason),
    opHash: r.op_hash === null ? null : String(r.op_hash),
    detail: JSON.parse(String(r.detail)) as Record<string, unknown>,
  }));
}

async function auditHead(): Promise<number> {
  const [row] = await runSqlOn(store, 'SELECT max(seq) AS head FROM audit_log');
  return Number(row?.head ?? 0);
}

/** The one denied record of the wallet (after `since`) with this action and reason; returns it and a line for the table. */
async function deniedRecord(walletName: string, action: string, reason: string, since = 0): Promise<{ record: AuditRow; line: string }> {
  const records = (await auditOf(walletName, since)).filter((r) => r.action === action && r.decision === 'denied' && r.reason === reason);
  assert.equal(records.length, 1, `one denied ${action} ${reason} record for ${walletName}: ${JSON.stringify(await auditOf(walletName, since))}`);
  const record = records[0] as AuditRow;
  return { record, line: `${action} denied ${reason} (seq ${record.seq})` };
}

async function allowedSigns(walletName: string, action: string, since = 0): Promise<AuditRow[]> {
  return (await auditOf(walletName, since)).filter((r) => r.action === action && r.decision === 'allowed');
}

// ── the owner's side ───────────────────────────────────────────────────────────────────────

/** Enrols TOTP through the API (the backend holds the secret: a `present` factor); returns the otpauth URI. */
async function enrolTotp(walletName: string, policy?: Record<string, unknown>): Promise<string> {
  if (policy !== undefined) {
    const set = await api('PUT', '/v1/wallets/policy', { walletName, policy });
    assert.equal(set.status, 200, set.text);
  }
  const enrolled = await api('POST', '/v1/totp/enroll', { walletName });
  assert.equal(enrolled.status, 200, enrolled.text);
  const uri = String(enrolled.body.otpauthUri);
  recordTestSecret('attack otpauth uri', uri);
  totpFromUri(uri, Date.now()); // records the secret's encodings for the scan
  return uri;
}

/** A six-digit code that is none of the codes of the wallet's steps −2…+2 (so surely wrong, now). */
function wrongCode(uri: string): string {
  const now = Date.now();
  const near = new Set([-2, -1, 0, 1, 2].map((offset) => totpFromUri(uri, now, offset)));
  for (;;) {
    const guess = String(randomInt(0, 1_000_000)).padStart(6, '0');
    if (!near.has(guess)) return guess;
  }
}

interface PageForm {
  path: string;
  origin: string;
  cookie: string;
  csrf: string;
  body: string;
}

/** Opens a kernel page (approval, enrolment) from its link as a browser would: its form cookie and token. */
async function openPage(link: string): Promise<PageForm> {
  const url = new URL(link);
  const response = await fetch(`${served.url}${url.pathname}`);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  const cookie = /custos_form=([A-Za-z0-9_-]{43});/.exec(response.headers.get('set-cookie') ?? '')?.[1];
  const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(body)?.[1];
  assert.ok(cookie !== undefined && csrf !== undefined, 'the page has its form cookie and token');
  // a browser on the page posts with the page's origin: the address it was reached at (no --public-url here)
  return { path: url.pathname, origin: new URL(served.url).origin, cookie, csrf, body };
}

async function postPage(page: PageForm, fields: Record<string, string>): Promise<{ status: number; body: string; alert: string | undefined }> {
  const response = await fetch(`${served.url}${page.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${page.cookie}`, origin: page.origin },
    body: new URLSearchParams({ csrf: page.csrf, ...fields }).toString(),
  });
  const body = await response.text();
  return { status: response.status, body, alert: alertCode(body) };
}

/** Creates an approval of the operation; returns its id and the owner's link (recorded as a secret). */
async function createApproval(
  walletName: string,
  operation: Record<string, unknown>,
  keyIndex = 0,
): Promise<{ id: string; approveUrl: string; opHash: string }> {
  const created = await api('POST', '/v1/approvals', { walletName, keyIndex, operation });
  assert.equal(created.status, 201, created.text);
  const approveUrl = String(created.body.approveUrl);
  recordTestSecret('approval capability', new URL(approveUrl).pathname.split('/').at(-1) ?? '');
  return { id: String(created.body.id), approveUrl, opHash: String(created.body.opHash) };
}

/** The owner approves on the kernel's page with the authenticator app's current code. */
async function ownerApproves(approveUrl: string, uri: string): Promise<void> {
  const page = await openPage(approveUrl);
  const decided = await postPage(page, { decision: 'approve', code: totpFromUri(uri, Date.now()) });
  assert.equal(decided.status, 200, `the owner's approval: ${decided.alert ?? decided.body.slice(0, 300)}`);
}

/** The next message to `to` among those received after `count`. */
async function mailTo(to: string, count: number): Promise<{ text: string; index: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const index = mail.received.findIndex((m, i) => i >= count && m.to === to);
    if (index >= 0) return { text: (mail.received[index] as { text: string }).text, index };
    assert.ok(Date.now() < deadline, `no message to ${to} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Enrols a delivery address on the kernel's enrolment page (the owner's first factor); returns the confirmation code it used. */
async function enrolOob(walletName: string, address: string): Promise<string> {
  const created = await api('POST', '/v1/enrollments', { walletName, kind: 'oob' });
  assert.equal(created.status, 201, created.text);
  const enrollUrl = String(created.body.enrollUrl);
  recordTestSecret('enrollment capability', new URL(enrollUrl).pathname.split('/').at(-1) ?? '');
  const page = await openPage(enrollUrl);
  const count = mail.received.length;
  const sent = await postPage(page, { channel: 'email', address });
  assert.equal(sent.status, 200, sent.alert ?? sent.body.slice(0, 300));
  const code = codeOf((await mailTo(address, count)).text);
  recordTestSecret('oob code', code);
  const done = await postPage(page, { code });
  assert.equal(done.status, 200, done.alert ?? done.body.slice(0, 300));
  assert.match(done.body, /Signing codes active/);
  return code;
}

// ── the suite ──────────────────────────────────────────────────────────────────────────────

describe('compromised backend: every attack against the real custos serve', () => {
  before(async () => {
    location = freshStoreLocation();
    await runCliOk(['init', ...storeArgs(location), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    const out = await runCliOk(['apikey', 'create', ...storeArgs(location), '--name', 'backend', '--tenant', 'default', '--scopes', 'register,derive,sign']);
    apiKey = out.trim().split(/\s+/).at(-1) ?? '';
    recordTestSecret('attack api key', apiKey);
    mail = await startMailServer();
    const args = [
      '--passphrase-file',
      passphraseFile,
      '--policy-file',
      policyFile,
      '--compat-raw-hash',
      'policy',
      '--rpc-wait',
      '0',
      '--smtp-url',
      mail.url,
      '--mail-from',
      'custos@example.com',
    ];
    served = await serve(location, args, { startTimeoutMs: 60_000 });
    if (KIND === 'postgres') replica = await serve(location, args, { startTimeoutMs: 60_000 });
    store = await openStore(location);
    const status = await api('GET', '/v1/sys/status');
    signerId = String(status.body.signerId);
    assert.equal(status.body.sealed, false);
  });

  after(async () => {
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    const passed = rows.filter((r) => r.pass === 'pass').length;
    const header = `Compromised backend (${KIND} pass): ${passed} of ${rows.length} rows pass, ${rows.length - passed} do not (n/a, skipped, not run or failed); ${seconds} s\n\n`;
    const table = tableMarkdown();
    process.stdout.write(`\n${header}${table}\n`);
    writeFileSync(join(testArtifactsDir(), `compromised-backend-${KIND}.md`), `# ${header}${table}`);
    await replica?.stop();
    await served?.stop();
    await mail?.close();
    await store?.close();
  });

  // ── code swap: the owner approves A, the backend submits B ────────────────────────────────

  const swaps: Array<{ route: string; action: string; a: Record<string, unknown>; b: Record<string, unknown> }> = [
    { route: '/v1/sign/transaction', action: 'sign.transaction', a: { transaction: tx(1) }, b: { transaction: tx(1, '1000000000000000000') } },
    { route: '/v1/sign/message', action: 'sign.message', a: { message: { text: 'log in to example.com' } }, b: { message: { text: 'transfer everything' } } },
    { route: '/v1/sign/typed-data', action: 'sign.typedData', a: { typedData: typedData('hello') }, b: { typedData: typedData('pay the attacker') } },
    {
      route: '/v1/sign/authorization',
      action: 'sign.authorization',
      a: { authorization: { chainId: 1, address: '0x1111111111111111111111111111111111111111', nonce: 0 } },
      b: { authorization: { chainId: 1, address: '0x6666666666666666666666666666666666666666', nonce: 0 } },
    },
    { route: '/v1/sign/hash', action: 'sign.hash', a: { hash: hash32() }, b: { hash: hash32() } },
  ];
  for (const swap of swaps) {
    attack(`code swap: approve A, submit B with A's approval`, swap.route, '403 approval_mismatch', async (seen) => {
      const walletName = `swap-${swap.action}`;
      const uri = await enrolTotp(walletName);
      const approval = await createApproval(walletName, swap.a);
      await ownerApproves(approval.approveUrl, uri);
      const swapped = await api('POST', swap.route, { walletName, keyIndex: 0, ...swap.b, approvalId: approval.id });
      seen.observed(statusAndCode(swapped));
      assert.equal(swapped.status, 403, swapped.text);
      assert.equal(errorCode(swapped), 'approval_mismatch');
      assertNoSignature(swapped);
      const { record, line } = await deniedRecord(walletName, swap.action, 'approval_mismatch');
      assert.notEqual(record.opHash, approval.opHash, "the record names B's opHash");
      seen.audit(line);
      // the approval itself was good: A signs with it, once
      const genuine = await api('POST', swap.route, { walletName, keyIndex: 0, ...swap.a, approvalId: approval.id });
      assert.equal(genuine.status, 200, genuine.text);
      assert.equal((await allowedSigns(walletName, swap.action)).length, 1);
    });
  }

  /** A JSON-RPC signing method's parameters for operation A or B of an address. */
  const transactionCall = (from: string, which: 'A' | 'B') => [
    {
      from,
      to: TO,
      value: which === 'A' ? '0x1' : '0xde0b6b3a7640000',
      gas: '0x5208',
      nonce: '0x7',
      chainId: '0x1',
      type: '0x2',
      maxFeePerGas: '0x77359400',
      maxPriorityFeePerGas: '0xf4240',
    },
  ];
  const rpcSwaps: Array<{ method: string; action: string; params: (from: string, which: 'A' | 'B') => unknown[]; result: RegExp }> = [
    { method: 'eth_signTransaction', action: 'sign.transaction', params: transactionCall, result: /^0x02[0-9a-f]+$/ },
    // no node behind this signer: A, once approved, is signed and then cannot be relayed (-32603 upstream_unavailable)
    { method: 'eth_sendTransaction', action: 'sign.transaction', params: transactionCall, result: /^-32603 upstream_unavailable$/ },
    {
      method: 'personal_sign',
      action: 'sign.message',
      params: (from, which) => [which === 'A' ? 'log in to example.com' : 'transfer everything', from],
      result: /^0x[0-9a-f]{130}$/,
    },
    {
      method: 'eth_signTypedData_v4',
      action: 'sign.typedData',
      params: (from, which) => [from, typedData(which === 'A' ? 'hello' : 'pay the attacker')],
      result: /^0x[0-9a-f]{130}$/,
    },
  ];
  for (const swap of rpcSwaps) {
    attack(
      'code swap through the JSON-RPC endpoint: approve A, send B',
      `POST /v1/rpc ${swap.method}`,
      '4100 approval_pending (a new approval for B), nothing signed',
      async (seen) => {
        const walletName = `swap-rpc-${swap.method}`;
        const uri = await enrolTotp(walletName);
        const account = await api('POST', '/v1/rpc/accounts', { walletName, keyIndex: 0 });
        assert.equal(account.status, 200, account.text);
        const from = String(account.body.address);
        const first = await rpc(swap.method, swap.params(from, 'A'));
        assert.equal(first.error?.code, 4100, JSON.stringify(first));
        assert.equal(first.error?.data?.code, 'approval_pending');
        const approveUrl = String(first.error?.data?.approveUrl);
        recordTestSecret('approval capability', new URL(approveUrl).pathname.split('/').at(-1) ?? '');
        await ownerApproves(approveUrl, uri);
        const since = await auditHead();
        const swapped = await rpc(swap.method, swap.params(from, 'B'));
        seen.observed(
          `${swapped.error?.code} ${String(swapped.error?.data?.code)}${swapped.error?.data?.approvalId === first.error?.data?.approvalId ? ' (A’s approval!)' : ' (new approval)'}`,
        );
        assert.equal(swapped.result, undefined, 'nothing signed');
        assert.equal(swapped.error?.code, 4100);
        assert.equal(swapped.error?.data?.code, 'approval_pending');
        assert.notEqual(swapped.error?.data?.approvalId, first.error?.data?.approvalId, 'B is not A: it needs its own approval');
        const records = await auditOf(walletName, since);
        const created = records.filter((r) => r.action === 'approval.create' && r.decision === 'allowed');
        assert.equal(created.length, 1, JSON.stringify(records));
        assert.equal(records.filter((r) => r.action === swap.action && r.decision === 'allowed').length, 0, 'no signature for B');
        seen.audit(`approval.create allowed for B (seq ${created[0]?.seq}); no ${swap.action}`);
        // A, sent again identically, signs (the approval was good)
        const genuine = await rpc(swap.method, swap.params(from, 'A'));
        const outcome = genuine.error === undefined ? String(genuine.result) : `${genuine.error.code} ${String(genuine.error.data?.code)}`;
        assert.match(outcome, swap.result, JSON.stringify(genuine));
        assert.equal((await allowedSigns(walletName, swap.action)).length, 1);
      },
    );
  }

  attack('code swap through the compatibility API: a relayed code for A used on hash B', '/sys/v1/plugins sign', '403 consent_too_weak', async (seen) => {
    // The plugin's sign takes a TOTP code relayed by the backend, which binds to no operation: the
    // kernel cannot tell A from B there (docs/threat-model.md). What stops the swap is the wallet's
    // policy asking for `bound` consent: the relayed code is then refused, unchecked.
    const walletName = 'swap-compat';
    const uri = await enrolTotp(walletName, { requiredStrength: 'bound' });
    const token = await compatSession();
    const answer = await compat(token, { operation: 'sign', walletName, keyIndex: '0', msgHash: hash32().slice(2), code: totpFromUri(uri, Date.now()) });
    seen.observed(statusAndCode(answer));
    assert.equal(answer.status, 403, answer.text);
    assert.equal(errorCode(answer), 'consent_too_weak');
    assertNoSignature(answer);
    seen.audit((await deniedRecord(walletName, 'sign.hash', 'consent_too_weak')).line);
  });

  // ── replay ───────────────────────────────────────────────────────────────────────────────

  attack('approval replayed on a second operation', '/v1/sign/transaction', '403 approval_mismatch', async (seen) => {
    const walletName = 'replay-approval';
    const uri = await enrolTotp(walletName);
    const approval = await createApproval(walletName, { transaction: tx(2) });
    await ownerApproves(approval.approveUrl, uri);
    assert.equal((await api('POST', '/v1/sign/transaction', { walletName, keyIndex: 0, transaction: tx(2), approvalId: approval.id })).status, 200);
    const replayed = await api('POST', '/v1/sign/transaction', { walletName, keyIndex: 0, transaction: tx(3), approvalId: approval.id });
    seen.observed(statusAndCode(replayed));
    assert.equal(replayed.status, 403, replayed.text);
    assert.equal(errorCode(replayed), 'approval_mismatch');
    assertNoSignature(replayed);
    seen.audit((await deniedRecord(walletName, 'sign.transaction', 'approval_mismatch')).line);
    assert.equal((await allowedSigns(walletName, 'sign.transaction')).length, 1);
  });

  attack(
    'approval replayed through JSON-RPC: the identical request sent again after it was signed',
    'POST /v1/rpc eth_signTransaction',
    '4100 approval_pending (a new approval: the used one is forgotten), nothing signed twice',
    async (seen) => {
      const walletName = 'replay-rpc';
      const uri = await enrolTotp(walletName);
      const account = await api('POST', '/v1/rpc/accounts', { walletName, keyIndex: 0 });
      assert.equal(account.status, 200, account.text);
      const params = transactionCall(String(account.body.address), 'A');
      const first = await rpc('eth_signTransaction', params);
      assert.equal(first.error?.data?.code, 'approval_pending', JSON.stringify(first));
      const approveUrl = String(first.error?.data?.approveUrl);
      recordTestSecret('approval capability', new URL(approveUrl).pathname.split('/').at(-1) ?? '');
      await ownerApproves(approveUrl, uri);
      assert.match(String((await rpc('eth_signTransaction', params)).result), /^0x02/);
      const since = await auditHead();
      const replayed = await rpc('eth_signTransaction', params);
      seen.observed(
        `${replayed.error?.code} ${String(replayed.error?.data?.code)}${replayed.error?.data?.approvalId === first.error?.data?.approvalId ? ' (the used approval!)' : ' (new approval)'}`,
      );
      assert.equal(replayed.result, undefined, 'not signed again');
      assert.equal(replayed.error?.code, 4100);
      assert.equal(replayed.error?.data?.code, 'approval_pending');
      assert.notEqual(replayed.error?.data?.approvalId, first.error?.data?.approvalId);
      const records = await auditOf(walletName, since);
      assert.deepEqual(
        records.map((r) => `${r.action} ${r.decision} ${r.reason}`),
        // the request as such (no consent left for it), the new approval, the wait's answer
        ['sign.transaction denied code_required', 'approval.create allowed null', 'sign.transaction denied approval_pending'],
      );
      assert.equal((await allowedSigns(walletName, 'sign.transaction')).length, 1, 'signed once');
      seen.audit(
        `sign.transaction denied code_required (seq ${records[0]?.seq}), approval.create allowed (seq ${records[1]?.seq}), sign.transaction denied approval_pending (seq ${records[2]?.seq}); allowed once in all`,
      );
    },
  );

  attack('code replayed on a second operation', '/v1/sign/hash', '403 code_reused', async (seen) => {
    const walletName = 'replay-code';
    const uri = await enrolTotp(walletName);
    const code = totpFromUri(uri, Date.now());
    assert.equal((await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code })).status, 200);
    const replayed = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code });
    seen.observed(statusAndCode(replayed));
    assert.equal(replayed.status, 403, replayed.text);
    assert.equal(errorCode(replayed), 'code_reused');
    assertNoSignature(replayed);
    seen.audit((await deniedRecord(walletName, 'sign.hash', 'code_reused')).line);
  });

  attack('code replayed on another route (native → compatibility)', '/sys/v1/plugins sign', '403 code_reused', async (seen) => {
    const walletName = 'replay-code-compat';
    const uri = await enrolTotp(walletName);
    const code = totpFromUri(uri, Date.now());
    assert.equal((await api('POST', '/v1/sign/message', { walletName, keyIndex: 0, message: { text: 'A' }, code })).status, 200);
    const replayed = await compat(await compatSession(), { operation: 'sign', walletName, keyIndex: '0', msgHash: hash32().slice(2), code });
    seen.observed(statusAndCode(replayed));
    assert.equal(replayed.status, 403, replayed.text);
    assert.equal(errorCode(replayed), 'code_reused');
    assertNoSignature(replayed);
    seen.audit((await deniedRecord(walletName, 'sign.hash', 'code_reused')).line);
  });

  attack('a code obtained for an enrolment confirmation used to sign', 'approval page (delivered code)', '403 code_invalid', async (seen) => {
    const walletName = 'enrol-code';
    const address = 'enrol-code@example.com';
    const enrolmentCode = await enrolOob(walletName, address);
    const count = mail.received.length;
    const approval = await createApproval(walletName, { transaction: tx(4) });
    const approvalCode = codeOf((await mailTo(address, count)).text);
    recordTestSecret('oob code', approvalCode);
    assert.notEqual(approvalCode, enrolmentCode);
    const page = await openPage(approval.approveUrl);
    const answer = await postPage(page, { decision: 'approve', kind: 'oob', code: enrolmentCode });
    seen.observed(`${answer.status} ${answer.alert}`);
    assert.equal(answer.status, 403);
    assert.equal(answer.alert, 'code_invalid');
    seen.audit((await deniedRecord(walletName, 'approval.approve', 'code_invalid')).line);
    // the approval's own code approves it, and it signs
    assert.equal((await postPage(page, { decision: 'approve', kind: 'oob', code: approvalCode })).status, 200);
    assert.equal((await api('POST', '/v1/sign/transaction', { walletName, keyIndex: 0, transaction: tx(4), approvalId: approval.id })).status, 200);
  });

  // ── guessing ─────────────────────────────────────────────────────────────────────────────

  attack(
    'guessing across operations: 5 wrong codes on 5 operations, then the right code',
    '/v1/sign/*',
    '5 × 403 code_invalid, then 429 factor_throttled',
    async (seen) => {
      const walletName = 'guess-ops';
      const uri = await enrolTotp(walletName);
      const answers: Answer[] = [];
      answers.push(await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: wrongCode(uri) }));
      answers.push(await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: wrongCode(uri) }));
      answers.push(await api('POST', '/v1/sign/transaction', { walletName, keyIndex: 0, transaction: tx(10), code: wrongCode(uri) }));
      answers.push(await api('POST', '/v1/sign/message', { walletName, keyIndex: 0, message: { text: 'x' }, code: wrongCode(uri) }));
      answers.push(await api('POST', '/v1/sign/typed-data', { walletName, keyIndex: 0, typedData: typedData('y'), code: wrongCode(uri) }));
      const right = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: totpFromUri(uri, Date.now()) });
      seen.observed(`${answers.map(statusAndCode).join(', ')}; then ${statusAndCode(right)}`);
      for (const a of answers) assert.equal(statusAndCode(a), '403 code_invalid');
      assert.equal(statusAndCode(right), '429 factor_throttled', 'the right code too: the lock is per wallet, whatever the operation');
      const records = await auditOf(walletName);
      assert.equal(records.filter((r) => r.decision === 'denied' && r.reason === 'code_invalid').length, 5);
      const throttled = await deniedRecord(walletName, 'sign.hash', 'factor_throttled');
      seen.audit(`5 denied code_invalid, then ${throttled.line}`);
    },
  );

  attack(
    'guessing across sessions and routes: native, two compatibility sessions, the approval page',
    '/v1/sign/hash, /sys/v1/plugins (2 sessions), /approve page',
    '5 × code_invalid, then 429 factor_throttled',
    async (seen) => {
      const walletName = 'guess-routes';
      const uri = await enrolTotp(walletName);
      const approval = await createApproval(walletName, { transaction: tx(11) });
      const observed: string[] = [];
      const native = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: wrongCode(uri) });
      observed.push(`native ${statusAndCode(native)}`);
      for (const label of ['session 1', 'session 2', 'session 3']) {
        const answer = await compat(await compatSession(), { operation: 'sign', walletName, keyIndex: '0', msgHash: hash32().slice(2), code: wrongCode(uri) });
        observed.push(`compat ${label} ${statusAndCode(answer)}`);
      }
      const page = await openPage(approval.approveUrl);
      const onPage = await postPage(page, { decision: 'approve', code: wrongCode(uri) });
      observed.push(`page ${onPage.status} ${onPage.alert}`);
      const right = await compat(await compatSession(), {
        operation: 'sign',
        walletName,
        keyIndex: '0',
        msgHash: hash32().slice(2),
        code: totpFromUri(uri, Date.now()),
      });
      observed.push(`then the right code, compat: ${statusAndCode(right)}`);
      seen.observed(observed.join(', '));
      assert.deepEqual(observed.slice(0, 5), [
        'native 403 code_invalid',
        'compat session 1 403 code_invalid',
        'compat session 2 403 code_invalid',
        'compat session 3 403 code_invalid',
        'page 403 code_invalid',
      ]);
      assert.equal(statusAndCode(right), '429 factor_throttled');
      const records = await auditOf(walletName);
      const invalid = records.filter((r) => r.decision === 'denied' && r.reason === 'code_invalid');
      assert.deepEqual(
        invalid.map((r) => r.action),
        ['sign.hash', 'sign.hash', 'sign.hash', 'sign.hash', 'approval.approve'],
      );
      seen.audit(`${invalid.map((r) => `${r.action} code_invalid`).join(', ')}; ${(await deniedRecord(walletName, 'sign.hash', 'factor_throttled')).line}`);
    },
  );

  attack('guessing with parallel requests: 12 wrong codes at once', '/v1/sign/hash', 'exactly 5 × 403 code_invalid, 7 × 429 factor_throttled', async (seen) => {
    const walletName = 'guess-parallel';
    const uri = await enrolTotp(walletName);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: wrongCode(uri) })),
    );
    const tally = new Map<string, number>();
    for (const a of answers) tally.set(statusAndCode(a), (tally.get(statusAndCode(a)) ?? 0) + 1);
    seen.observed([...tally].map(([k, n]) => `${n} × ${k}`).join(', '));
    assert.deepEqual(Object.fromEntries(tally), { '403 code_invalid': 5, '429 factor_throttled': 7 });
    const records = await auditOf(walletName);
    const invalid = records.filter((r) => r.reason === 'code_invalid').length;
    const throttled = records.filter((r) => r.reason === 'factor_throttled').length;
    assert.deepEqual([invalid, throttled], [5, 7]);
    seen.audit(`sign.hash denied: 5 code_invalid, 7 factor_throttled`);
  });

  attack(
    'guessing across resends: 3 wrong delivered codes, a resend, 2 more, then the right one',
    'approval page + POST /v1/approvals/{id}/resend',
    '429 code_tries_exhausted (the resend does not reset the count)',
    async (seen) => {
      const walletName = 'guess-resend';
      const address = 'guess-resend@example.com';
      await enrolOob(walletName, address);
      let count = mail.received.length;
      const approval = await createApproval(walletName, { transaction: tx(12) });
      const first = await mailTo(address, count);
      recordTestSecret('oob code', codeOf(first.text));
      const page = await openPage(approval.approveUrl);
      const wrong = (right: string) => (right === '00000000' ? '00000001' : '00000000');
      const observed: string[] = [];
      for (let i = 0; i < 3; i++) observed.push(String((await postPage(page, { decision: 'approve', kind: 'oob', code: wrong(codeOf(first.text)) })).alert));
      count = mail.received.length;
      const resent = await api('POST', `/v1/approvals/${approval.id}/resend`);
      assert.equal(resent.status, 200, resent.text);
      const second = codeOf((await mailTo(address, count)).text);
      recordTestSecret('oob code', second);
      for (let i = 0; i < 2; i++) observed.push(String((await postPage(page, { decision: 'approve', kind: 'oob', code: wrong(second) })).alert));
      const right = await postPage(page, { decision: 'approve', kind: 'oob', code: second });
      seen.observed(`${observed.join(', ')}; then the right code: ${right.status} ${right.alert}`);
      assert.deepEqual(observed, ['code_invalid', 'code_invalid', 'code_invalid', 'code_invalid', 'code_invalid']);
      assert.equal(right.status, 429);
      assert.equal(right.alert, 'code_tries_exhausted');
      seen.audit((await deniedRecord(walletName, 'approval.approve', 'code_tries_exhausted')).line);
      const state = await api('GET', `/v1/approvals/${approval.id}`);
      assert.equal(state.body.state, 'pending', 'never approved');
    },
  );

  attack(
    'guessing across replicas: wrong codes alternated over two replicas, then parallel over both',
    '/v1/sign/hash on 2 replicas (PostgreSQL)',
    '5 × code_invalid then 429 factor_throttled; parallel: exactly 5 code_invalid',
    async (seen) => {
      assert.ok(replica !== undefined);
      const other = replica;
      const walletName = 'guess-replicas';
      const uri = await enrolTotp(walletName);
      const sequential: string[] = [];
      for (let i = 0; i < 5; i++)
        sequential.push(
          statusAndCode(await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: wrongCode(uri) }, i % 2 === 0 ? served : other)),
        );
      const right = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: totpFromUri(uri, Date.now()) }, other);
      const parallelWallet = 'guess-replicas-parallel';
      const uri2 = await enrolTotp(parallelWallet);
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          api('POST', '/v1/sign/hash', { walletName: parallelWallet, keyIndex: 0, hash: hash32(), code: wrongCode(uri2) }, i % 2 === 0 ? served : other),
        ),
      );
      const tally = new Map<string, number>();
      for (const a of answers) tally.set(statusAndCode(a), (tally.get(statusAndCode(a)) ?? 0) + 1);
      seen.observed(`${sequential.join(', ')}, then ${statusAndCode(right)}; parallel: ${[...tally].map(([k, n]) => `${n} × ${k}`).join(', ')}`);
      assert.deepEqual(sequential, Array(5).fill('403 code_invalid'));
      assert.equal(statusAndCode(right), '429 factor_throttled');
      assert.deepEqual(Object.fromEntries(tally), { '403 code_invalid': 5, '429 factor_throttled': 7 });
      assert.equal((await auditOf(walletName)).filter((r) => r.reason === 'code_invalid').length, 5);
      assert.equal((await auditOf(parallelWallet)).filter((r) => r.reason === 'code_invalid').length, 5);
      seen.audit(`${(await deniedRecord(walletName, 'sign.hash', 'factor_throttled')).line}; parallel: 5 code_invalid, 7 factor_throttled`);
    },
    KIND === 'postgres' ? undefined : 'runs in the PostgreSQL pass (replicas share a PostgreSQL store)',
  );

  notApplicable(
    'guessing through the JSON-RPC endpoint',
    'POST /v1/rpc',
    'the endpoint takes no code: a signing call for an enrolled wallet makes an approval, whose code is typed on the kernel’s page — guesses there count on the same per-wallet counter (the "across sessions and routes" row)',
  );

  // ── the owner's factors ──────────────────────────────────────────────────────────────────

  attack(
    'repointing the delivery channel: the backend opens an enrolment link and sets its own address',
    'POST /v1/enrollments (oob) + enrolment page',
    '403 code_required (the current address’s code), nothing changed',
    async (seen) => {
      const walletName = 'repoint';
      const address = 'repoint-owner@example.com';
      const attacker = 'attacker@evil.example';
      await enrolOob(walletName, address);
      const since = await auditHead();
      const created = await api('POST', '/v1/enrollments', { walletName, kind: 'oob' });
      assert.equal(created.status, 201, created.text);
      const enrollUrl = String(created.body.enrollUrl);
      recordTestSecret('enrollment capability', new URL(enrollUrl).pathname.split('/').at(-1) ?? '');
      const page = await openPage(enrollUrl);
      const count = mail.received.length;
      const sent = await postPage(page, { channel: 'email', address: attacker });
      assert.equal(sent.status, 200, sent.alert);
      const attackerCode = codeOf((await mailTo(attacker, count)).text);
      recordTestSecret('oob code', attackerCode);
      const answer = await postPage(page, { code: attackerCode });
      seen.observed(`${answer.status} ${answer.alert}`);
      assert.equal(answer.status, 403);
      assert.equal(answer.alert, 'code_required');
      assert.deepEqual(
        await runSqlOn(store, 'SELECT kind, state FROM pending_changes WHERE wallet_name = $1', [walletName]),
        [],
        'no delivery.change was queued',
      );
      // the owner's address is still the one that gets the next approval's code
      const before = mail.received.length;
      await createApproval(walletName, { transaction: tx(13) });
      assert.equal((await mailTo(address, before)).index >= before, true);
      assert.ok(!mail.received.slice(before).some((m) => m.to === attacker), 'nothing to the attacker');
      const records = await auditOf(walletName, since);
      seen.audit((await deniedRecord(walletName, 'oob.enroll', 'code_required', since)).line);
      assert.ok(!records.some((r) => r.action.startsWith('change.') && r.decision === 'allowed'), 'no change was requested');
    },
  );

  attack(
    'disabling 2FA without the owner',
    'POST /v1/changes {kind: 2fa.disable}, POST /v1/changes/confirm',
    '201 requested, not applied; confirm by the API key 403 owner_consent_required; signing still 403 code_required',
    async (seen) => {
      const walletName = 'disable-2fa';
      await enrolTotp(walletName);
      const requested = await api('POST', '/v1/changes', { walletName, kind: '2fa.disable' });
      assert.equal(requested.status, 201, requested.text);
      const state = String((requested.body as { state?: string }).state ?? (requested.body.change as { state?: string } | undefined)?.state);
      recordTestSecret('change capability', new URL(String(requested.body.changeUrl)).pathname.split('/').at(-1) ?? '');
      const confirm = await api('POST', '/v1/changes/confirm', { id: String(requested.body.id) });
      const sign = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32() });
      seen.observed(`change ${requested.status} ${state}; confirm by the API key: ${statusAndCode(confirm)}; sign without a code: ${statusAndCode(sign)}`);
      assert.equal(state, 'requested');
      assert.equal(statusAndCode(confirm), '403 owner_consent_required');
      assert.equal(statusAndCode(sign), '403 code_required');
      assertNoSignature(sign);
      const wallet = await api('GET', `/v1/wallets?walletName=${walletName}`);
      assert.deepEqual(wallet.body.factors, ['totp']);
      const records = await auditOf(walletName);
      const request = records.find((r) => r.action === 'change.request');
      assert.ok(request !== undefined, JSON.stringify(records));
      seen.audit(
        `change.request ${request.decision} (seq ${request.seq}); ${(await deniedRecord(walletName, 'change.confirm', 'owner_consent_required')).line}; ${(await deniedRecord(walletName, 'sign.hash', 'code_required')).line}`,
      );
      const [change] = await runSqlOn(store, 'SELECT state FROM pending_changes WHERE wallet_name = $1', [walletName]);
      assert.equal(change?.state, 'requested');
    },
  );

  attack(
    'disabling 2FA with a code the owner typed into the backend (a TOTP-only wallet)',
    'POST /v1/changes {kind: 2fa.disable} + the change page (changeUrl)',
    'a guess 403 code_invalid; the captured code confirms it only as pending: 48 h timelock and the admin quorum’s approval (waiting); signing still 403 code_required',
    async (seen) => {
      const walletName = 'disable-2fa-relayed';
      const uri = await enrolTotp(walletName);
      const requested = await api('POST', '/v1/changes', { walletName, kind: '2fa.disable' });
      assert.equal(requested.status, 201, requested.text);
      const changeUrl = String(requested.body.changeUrl);
      recordTestSecret('change capability', new URL(changeUrl).pathname.split('/').at(-1) ?? '');
      const page = await openPage(changeUrl);
      const guessed = await postPage(page, { decision: 'confirm', code: wrongCode(uri) });
      const confirmed = await postPage(page, { decision: 'confirm', code: totpFromUri(uri, Date.now()) });
      const view = await api('GET', `/v1/changes?id=${String(requested.body.id)}`);
      const sign = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32() });
      const hours = (Number(view.body.effectiveAt) - Date.now()) / 3_600_000;
      seen.observed(
        `guess ${guessed.status} ${guessed.alert}; captured code ${confirmed.status}: ${String(view.body.state)}, effective in ${hours.toFixed(1)} h, adminApproval ${String(view.body.adminApproval)}; sign ${statusAndCode(sign)}`,
      );
      assert.equal(`${guessed.status} ${guessed.alert}`, '403 code_invalid');
      assert.equal(confirmed.status, 200, confirmed.alert ?? confirmed.body.slice(0, 300));
      assert.equal(view.body.state, 'pending');
      assert.equal(view.body.adminApproval, 'waiting', 'a TOTP-only wallet’s change also waits for the admin quorum');
      assert.ok(hours > 47.9 && hours <= 48, `the 48 h delay: ${hours}`);
      assert.equal(statusAndCode(sign), '403 code_required');
      const wallet = await api('GET', `/v1/wallets?walletName=${walletName}`);
      assert.deepEqual(wallet.body.factors, ['totp']);
      const records = await auditOf(walletName);
      const confirm = records.filter((r) => r.action === 'change.confirm').map((r) => `${r.decision} ${r.reason ?? ''}`.trim());
      assert.deepEqual(confirm, ['denied code_invalid', 'allowed']);
      seen.audit(
        `change.confirm denied code_invalid, change.confirm allowed (pending); ${(await deniedRecord(walletName, 'sign.hash', 'code_required')).line}`,
      );
    },
  );

  attack(
    'enrolling the attacker’s factor on an enrolled wallet',
    'POST /v1/totp/enroll, /sys/v1/plugins register',
    '409 already_enrolled (both)',
    async (seen) => {
      const walletName = 'enrol-attacker';
      await enrolTotp(walletName);
      const native = await api('POST', '/v1/totp/enroll', { walletName });
      const viaCompat = await compat(await compatSession(), { operation: 'register', walletName });
      seen.observed(`native ${statusAndCode(native)}, compat ${statusAndCode(viaCompat)}`);
      assert.equal(statusAndCode(native), '409 already_enrolled');
      assert.equal(statusAndCode(viaCompat), '409 already_enrolled');
      const denied = (await auditOf(walletName)).filter((r) => r.decision === 'denied' && r.reason === 'already_enrolled');
      assert.equal(denied.length, 2, JSON.stringify(await auditOf(walletName)));
      seen.audit(denied.map((r) => `${r.action} denied already_enrolled (seq ${r.seq})`).join(', '));
    },
  );

  attack(
    'enrolling the attacker’s authenticator through an enrolment link the backend holds',
    'POST /v1/enrollments (totp) + enrolment page, on a wallet with a delivery address',
    '403 code_required (the code sent to the owner’s address); a guess 409 challenge_required before one was sent, 403 code_invalid after; no factor added',
    async (seen) => {
      const walletName = 'enrol-page';
      const address = 'enrol-page@example.com';
      await enrolOob(walletName, address);
      const since = await auditHead();
      const created = await api('POST', '/v1/enrollments', { walletName, kind: 'totp' });
      assert.equal(created.status, 201, created.text);
      const enrollUrl = String(created.body.enrollUrl);
      recordTestSecret('enrollment capability', new URL(enrollUrl).pathname.split('/').at(-1) ?? '');
      const page = await openPage(enrollUrl);
      // the link shows the new secret to whoever holds it: the attacker scans it into an app of its own
      const secret = /aria-label="Secret key">([A-Z2-7 ]+)</.exec(page.body)?.[1]?.replaceAll(' ', '');
      assert.ok(secret !== undefined, 'the page shows the secret to type by hand');
      const attackerUri = `otpauth://totp/Attacker:app?secret=${secret}&issuer=Attacker`;
      const without = await postPage(page, { code: totpFromUri(attackerUri, Date.now()) });
      const early = await postPage(page, { code: totpFromUri(attackerUri, Date.now()), currentCode: '12345678' });
      // asking for the owner's code sends it to the owner's address (who thereby hears of the attempt)
      const count = mail.received.length;
      assert.equal((await postPage(page, { decision: 'change-code' })).status, 200);
      const ownerCode = codeOf((await mailTo(address, count)).text);
      recordTestSecret('oob code', ownerCode);
      const guessed = await postPage(page, { code: totpFromUri(attackerUri, Date.now()), currentCode: ownerCode === '12345678' ? '87654321' : '12345678' });
      seen.observed(
        `without the owner’s code: ${without.status} ${without.alert}; a guess before any was sent: ${early.status} ${early.alert}; a guess after: ${guessed.status} ${guessed.alert}`,
      );
      assert.equal(`${without.status} ${without.alert}`, '403 code_required');
      assert.equal(`${early.status} ${early.alert}`, '409 challenge_required');
      assert.equal(`${guessed.status} ${guessed.alert}`, '403 code_invalid');
      const wallet = await api('GET', `/v1/wallets?walletName=${walletName}`);
      assert.deepEqual(wallet.body.factors, ['oob'], 'no authenticator app was added');
      assert.deepEqual(await runSqlOn(store, 'SELECT kind FROM pending_changes WHERE wallet_name = $1', [walletName]), [], 'no factor.add was queued');
      const denied = (await auditOf(walletName, since)).filter((r) => r.decision === 'denied');
      assert.deepEqual(
        denied.map((r) => r.reason),
        ['code_required', 'challenge_required', 'code_invalid'],
      );
      seen.audit(denied.map((r) => `${r.action} denied ${r.reason} (seq ${r.seq})`).join(', '));
    },
  );

  attack(
    'reading the TOTP secret after enrolment',
    'GET /v1/wallets, GET /v1/wallets/policy, POST /v1/totp/enroll, compat register',
    'no answer carries the secret; enrol again 409 already_enrolled',
    async (seen) => {
      const walletName = 'read-secret';
      const uri = await enrolTotp(walletName);
      const secret = new URL(uri).searchParams.get('secret') ?? '';
      assert.match(secret, /^[A-Z2-7]{16,}$/);
      const answers = [
        await api('GET', `/v1/wallets?walletName=${walletName}`),
        await api('GET', `/v1/wallets/policy?walletName=${walletName}`),
        await api('POST', '/v1/totp/enroll', { walletName }),
        await compat(await compatSession(), { operation: 'register', walletName }),
        await api('GET', `/v1/keys?walletName=${walletName}&keyIndex=0`),
      ];
      seen.observed(answers.map(statusAndCode).join(', '));
      for (const a of answers) {
        assert.ok(!a.text.includes(secret), `the secret in ${a.text}`);
        assert.ok(!a.text.toLowerCase().includes('otpauth'), `an otpauth URI in ${a.text}`);
      }
      assert.equal(statusAndCode(answers[2] as Answer), '409 already_enrolled');
      assert.equal(statusAndCode(answers[3] as Answer), '409 already_enrolled');
      const denied = (await auditOf(walletName)).filter((r) => r.decision === 'denied');
      assert.deepEqual(
        denied.map((r) => `${r.action} ${r.reason}`),
        ['totp.enroll already_enrolled', 'totp.enroll already_enrolled'],
      );
      seen.audit(denied.map((r) => `${r.action} denied ${r.reason} (seq ${r.seq})`).join(', '));
    },
  );

  attack(
    'reading the TOTP secret after enrolment: the enrolment link opened again',
    'GET /enroll/<capability> (the link the backend was handed)',
    'the used link shows no secret (no QR, no key); a post 409 enrollment_used',
    async (seen) => {
      const walletName = 'read-secret-page';
      const created = await api('POST', '/v1/enrollments', { walletName, kind: 'totp' });
      assert.equal(created.status, 201, created.text);
      const enrollUrl = String(created.body.enrollUrl);
      recordTestSecret('enrollment capability', new URL(enrollUrl).pathname.split('/').at(-1) ?? '');
      // the owner scans the secret and types the app's code (a first factor: no consent needed)
      const page = await openPage(enrollUrl);
      const secret = /aria-label="Secret key">([A-Z2-7 ]+)</.exec(page.body)?.[1]?.replaceAll(' ', '');
      assert.ok(secret !== undefined);
      const uri = `otpauth://totp/Owner:wallet?secret=${secret}&issuer=Owner`;
      const done = await postPage(page, { code: totpFromUri(uri, Date.now()) });
      assert.equal(done.status, 200, done.alert ?? done.body.slice(0, 300));
      // the backend opens the link again, and posts to it
      const again = await fetch(`${served.url}${page.path}`);
      const body = await again.text();
      const posted = await postPage(page, { code: totpFromUri(uri, Date.now(), 1) });
      seen.observed(
        `GET ${again.status}, ${body.includes(secret) || /otpauth/i.test(body) || /class="qr"/.test(body) ? 'SECRET SHOWN' : 'no secret'}; POST ${posted.status} ${posted.alert ?? ''}`,
      );
      assert.ok(!body.includes(secret), 'no secret on the used link');
      assert.doesNotMatch(body, /otpauth|class="qr"|aria-label="Secret key"/i);
      assert.equal(`${posted.status} ${posted.alert}`, '409 enrollment_used');
      assert.ok(!posted.body.includes(secret));
      assert.doesNotMatch(posted.body, /otpauth|class="qr"|aria-label="Secret key"/i);
      const records = await auditOf(walletName);
      const enrolled = records.filter((r) => r.action === 'totp.enroll' && r.decision === 'allowed');
      assert.equal(enrolled.length, 1);
      seen.audit(
        `totp.enroll allowed once (seq ${enrolled[0]?.seq}, via ${String(enrolled[0]?.detail.via)}); ${
          records
            .filter((r) => r.decision === 'denied')
            .map((r) => `${r.action} denied ${r.reason}`)
            .join(', ') || 'no other record'
        }`,
      );
    },
  );

  // ── blind and cross-protocol signing ─────────────────────────────────────────────────────

  attack(
    'blind signing: a raw hash (another chain’s transaction, a permit…)',
    '/v1/sign/hash',
    '403 policy_operation_not_allowed (rule rawHash)',
    async (seen) => {
      const walletName = 'blind-native';
      const uri = await enrolTotp(walletName, STRICT);
      const answer = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32(), code: totpFromUri(uri, Date.now()) });
      seen.observed(`${statusAndCode(answer)} (rule ${String((answer.body.error as { details?: { rule?: string } }).details?.rule)})`);
      assert.equal(statusAndCode(answer), '403 policy_operation_not_allowed');
      assert.equal((answer.body.error as { details: { rule: string } }).details.rule, 'rawHash');
      assertNoSignature(answer);
      seen.audit((await deniedRecord(walletName, 'sign.hash', 'policy_operation_not_allowed')).line);
    },
  );

  attack('blind signing: an approval of a raw hash', 'POST /v1/approvals {operation: {hash}}', '403 policy_operation_not_allowed', async (seen) => {
    const walletName = 'blind-approval';
    await enrolTotp(walletName, STRICT);
    const answer = await api('POST', '/v1/approvals', { walletName, keyIndex: 0, operation: { hash: hash32() } });
    seen.observed(statusAndCode(answer));
    assert.equal(statusAndCode(answer), '403 policy_operation_not_allowed');
    assert.equal(answer.body.approveUrl, undefined);
    seen.audit((await deniedRecord(walletName, 'approval.create', 'policy_operation_not_allowed')).line);
  });

  attack('blind signing through the compatibility API', '/sys/v1/plugins sign (--compat-raw-hash policy)', '403 policy_operation_not_allowed', async (seen) => {
    const walletName = 'blind-compat';
    const uri = await enrolTotp(walletName, STRICT);
    const answer = await compat(await compatSession(), {
      operation: 'sign',
      walletName,
      keyIndex: '0',
      msgHash: hash32().slice(2),
      code: totpFromUri(uri, Date.now()),
    });
    seen.observed(statusAndCode(answer));
    assert.equal(statusAndCode(answer), '403 policy_operation_not_allowed');
    assertNoSignature(answer);
    seen.audit((await deniedRecord(walletName, 'sign.hash', 'policy_operation_not_allowed')).line);
  });

  attack(
    'cross-protocol: typed data that moves no value the limits can count (what a permit-like signature can hide), with a relayed code',
    '/v1/sign/typed-data',
    '403 consent_too_weak',
    async (seen) => {
      const walletName = 'cross-typed';
      const uri = await enrolTotp(walletName, STRICT);
      const answer = await api('POST', '/v1/sign/typed-data', {
        walletName,
        keyIndex: 0,
        typedData: typedData('anything'),
        code: totpFromUri(uri, Date.now()),
      });
      seen.observed(statusAndCode(answer));
      assert.equal(statusAndCode(answer), '403 consent_too_weak');
      assertNoSignature(answer);
      seen.audit((await deniedRecord(walletName, 'sign.typedData', 'consent_too_weak')).line);
    },
  );

  attack('cross-protocol: an EIP-7702 delegation with a relayed code', '/v1/sign/authorization', '403 consent_too_weak', async (seen) => {
    const walletName = 'cross-7702';
    const uri = await enrolTotp(walletName, STRICT);
    const answer = await api('POST', '/v1/sign/authorization', {
      walletName,
      keyIndex: 0,
      authorization: { chainId: 1, address: '0x6666666666666666666666666666666666666666', nonce: 0 },
      code: totpFromUri(uri, Date.now()),
    });
    seen.observed(statusAndCode(answer));
    assert.equal(statusAndCode(answer), '403 consent_too_weak');
    assertNoSignature(answer);
    seen.audit((await deniedRecord(walletName, 'sign.authorization', 'consent_too_weak')).line);
  });

  attack(
    'cross-protocol: typed data that moves no countable value, through the JSON-RPC endpoint and its approval',
    'POST /v1/rpc eth_signTypedData_v4 + approval page (TOTP)',
    'the owner’s TOTP code on the page 403 consent_too_weak; nothing signed',
    async (seen) => {
      const walletName = 'cross-rpc-typed';
      const uri = await enrolTotp(walletName, STRICT);
      const account = await api('POST', '/v1/rpc/accounts', { walletName, keyIndex: 0 });
      assert.equal(account.status, 200, account.text);
      const first = await rpc('eth_signTypedData_v4', [String(account.body.address), typedData('anything')]);
      const observed = [`rpc ${first.error?.code} ${String(first.error?.data?.code)}`];
      assert.equal(first.result, undefined);
      assert.equal(first.error?.data?.code, 'approval_pending', JSON.stringify(first));
      const approveUrl = String(first.error?.data?.approveUrl);
      recordTestSecret('approval capability', new URL(approveUrl).pathname.split('/').at(-1) ?? '');
      const page = await openPage(approveUrl);
      const decided = await postPage(page, { decision: 'approve', code: totpFromUri(uri, Date.now()) });
      observed.push(`page ${decided.status} ${decided.alert}`);
      const again = await rpc('eth_signTypedData_v4', [String(account.body.address), typedData('anything')]);
      observed.push(`rpc again ${again.error?.code} ${String(again.error?.data?.code)}`);
      seen.observed(observed.join('; '));
      assert.equal(`${decided.status} ${decided.alert}`, '403 consent_too_weak');
      assert.equal(again.result, undefined, 'nothing signed');
      assert.equal(again.error?.data?.code, 'approval_pending');
      seen.audit((await deniedRecord(walletName, 'approval.approve', 'consent_too_weak')).line);
      assert.equal((await allowedSigns(walletName, 'sign.typedData')).length, 0);
    },
  );

  attack(
    'cross-protocol: a transaction digest sent to eth_sign / a raw message',
    'POST /v1/rpc eth_sign, /v1/sign/message {raw}',
    'signed only as an EIP-191 message: the signature does not verify over the digest',
    async (seen) => {
      const walletName = 'cross-eth-sign'; // never enrolled: signs without consent (unknownWallets allow)
      const account = await api('POST', '/v1/rpc/accounts', { walletName, keyIndex: 0 });
      assert.equal(account.status, 200, account.text);
      const address = String(account.body.address).toLowerCase();
      const digest = hash32() as `0x${string}`;
      const viaRpc = await rpc('eth_sign', [address, digest]);
      const viaNative = await api('POST', '/v1/sign/message', { walletName, keyIndex: 0, message: { raw: digest } });
      assert.equal(viaNative.status, 200, viaNative.text);
      const signatures = [String(viaRpc.result), String(viaNative.body.signature)] as Array<`0x${string}`>;
      const asMessage = await Promise.all(signatures.map((signature) => recoverAddress({ hash: hashMessage({ raw: digest }), signature })));
      const asDigest = await Promise.all(signatures.map((signature) => recoverAddress({ hash: digest, signature })));
      seen.observed(
        `recovers to the account over the EIP-191 hash: ${asMessage.map((a) => a.toLowerCase() === address)}; over the raw digest: ${asDigest.map((a) => a.toLowerCase() === address)}`,
      );
      for (const a of asMessage) assert.equal(a.toLowerCase(), address);
      for (const a of asDigest) assert.notEqual(a.toLowerCase(), address);
      const signed = await allowedSigns(walletName, 'sign.message');
      assert.equal(signed.length, 2);
      seen.audit(`2 × sign.message allowed (seq ${signed.map((r) => r.seq).join(', ')}), never sign.hash`);
      assert.equal((await auditOf(walletName)).filter((r) => r.action === 'sign.hash').length, 0);
    },
  );

  // ── the audit trail ──────────────────────────────────────────────────────────────────────

  attack(
    'signing while the audit log cannot be written (a failing insert in the store itself)',
    '/v1/sign/hash',
    '503 audit_unavailable, no signature; signs again once writing works (no restart)',
    async (seen) => {
      // The full cases — a full disk, immutable files, a stopped PostgreSQL — are
      // auditAvailability.test.ts; this cheap variant makes every audit insert fail inside the
      // database (a trigger in SQLite, a NOT VALID check constraint in PostgreSQL) under the running server.
      const walletName = 'audit-blind';
      const pid = served.child.pid;
      const undo = await forceAuditFailure(store);
      let answers: Answer[];
      try {
        answers = [];
        for (let i = 0; i < 3; i++) answers.push(await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32() }));
      } finally {
        await undo();
      }
      seen.observed(answers.map(statusAndCode).join(', '));
      for (const a of answers) {
        assert.equal(a.status, 503, a.text);
        assert.ok(['audit_unavailable', 'store_unavailable'].includes(errorCode(a) ?? ''), a.text);
        assertNoSignature(a);
      }
      assert.equal(errorCode(answers.at(-1) as Answer), 'audit_unavailable');
      assert.equal((await auditOf(walletName)).filter((r) => r.action === 'sign.hash').length, 0, 'no record: nothing was signed');
      const deadline = Date.now() + 60_000;
      for (;;) {
        const ready = await request(`${served.url}/readyz`, {});
        if (ready.status === 200) break;
        assert.ok(Date.now() < deadline, `not ready again: ${ready.text}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const after = await api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: hash32() });
      assert.equal(after.status, 200, after.text);
      assert.equal(served.child.pid, pid);
      const signed = await allowedSigns(walletName, 'sign.hash');
      assert.deepEqual(
        signed.map((r) => r.seq),
        [Number(after.body.auditSeq)],
      );
      const resumed = await runSqlOn(store, "SELECT seq FROM audit_log WHERE action = 'sys.audit-resumed'");
      seen.audit(`no sign.hash record while failing; sys.audit-resumed (seq ${resumed.map((r) => r.seq).join(', ')}); then 1 allowed at seq ${signed[0]?.seq}`);
    },
  );
});

/** Every audit insert fails inside the database (as createTestSigner's forceAuditFailure); returns the undo. */
async function forceAuditFailure(opened: OpenedStore): Promise<() => Promise<void>> {
  if (opened instanceof PostgresStore) {
    await opened.query('ALTER TABLE audit_log ADD CONSTRAINT forced_audit_failure CHECK (seq < 0) NOT VALID');
    return async () => {
      await opened.query('ALTER TABLE audit_log DROP CONSTRAINT forced_audit_failure');
    };
  }
  await runSqlOn(
    opened,
    "CREATE TRIGGER forced_audit_failure BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit write failed (forced by test)'); END",
  );
  return async () => {
    await runSqlOn(opened, 'DROP TRIGGER forced_audit_failure');
  };
}

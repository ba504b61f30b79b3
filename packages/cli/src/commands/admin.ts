import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import {
  type AdminNoticeList,
  APPROVE_LABEL,
  bootstrapQuorumOffline,
  computePayloadHash,
  CustosError,
  DEFAULT_TENANT,
  type ErrorCode,
  ERROR_CODES,
  generateAdminKey,
  generateApiKeyToken,
  parseAdminKeyFile,
  parseScopes,
  DEFAULT_PROPOSAL_TTL_SECONDS,
  MAX_NOTICE_LIMIT,
  MAX_PROPOSAL_TTL_SECONDS,
  MIN_PROPOSAL_TTL_SECONDS,
  PROPOSE_LABEL,
  type ProposalView,
  signAdminMessage,
  type UnsealCredential,
} from '@custos/kernel';
import { type Io, parseOptions, readLineFromStdin, readSecretFile, requireOption } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { readCredential, wipeCredential } from '../unsealerOptions.js';
import { readFirstDeploymentSettings } from './serve.js';

const HELP = `Usage:
  custos admin keygen --out FILE
  custos admin bootstrap (--data-dir D | --store URL) (--passphrase-file P | --share-file F … | --pkcs11-module M --pkcs11-pin-file F)
                         --admin PUBKEY,EMAIL [--admin PUBKEY,EMAIL …] --quorum M
                         [--policy-file F] [--compat-raw-hash allow|policy]
  custos admin propose --url U --api-key-file K --key FILE --kind KIND
                       (--payload-file P.json | apikey.create: --name N --scopes S [--tenant T] --token-out FILE)
                       [--ttl-seconds S] [--signer-id ID]
  custos admin approve --url U --api-key-file K --key FILE --id ID [--signer-id ID] [--yes]
  custos admin list    --url U --api-key-file K [--json]
  custos admin show    --url U --api-key-file K --id ID
  custos admin notices --url U --api-key-file K [--limit N] [--json]
  custos admin passkey-link --url U --api-key-file K [--name N] [--ttl-seconds S]
  custos admin candidates   --url U --api-key-file K [--json]

The admin quorum (docs/quorum.md). Each admin holds an Ed25519 key file made by keygen (mode 0600;
its public key is printed). bootstrap fixes the first admin set and M (1 ≤ M ≤ N−1) on a signer
that has none, with its current unseal credentials, and MACs the API keys present. After that,
quorum-protected changes are proposals: one admin proposes (signing the payload's hash), M other
admins approve (each signing it again after reading the payload in full), and the approval that
meets M applies the change. Every signature covers the signer id (the deployment: pin it with
--signer-id, else the server's is used and printed), the proposal id, the proposer, the expiry and
the payload's hash. approve shows the payload in full (control characters escaped) and signs only
once you type "yes" (or with --yes). The API key (--api-key-file) is an operator key with the admin scope.
Kinds: apikey.create (the token is made here and written to --token-out, never sent), quorum.set
({ threshold, admins }), deployment.settings ({ timelockDelaySeconds, webhookUrl, policyDefaults }),
unsealer.change ({ unsealer, … }: allows one custos rekey --proposal ID), wallet.change.approve
({ changeId, walletName, kind, payloadHash }: a TOTP-only wallet's timelocked change; the admins get
this payload by e-mail when its owner confirms it), wallet.unfreeze ({ tenant?, walletName }),
wallet.factor-reset ({ tenant?, walletName }: a 2fa.disable through the wallet's timelock).

notices prints what every admin was told (freezes, unfreezes, proposals, applied proposals, changes
waiting for the quorum), newest first, each in full — an admin's e-mail is cut at 1000 characters and
says so; --json prints the API's answer as it is. Every admin needs an e-mail address (bootstrap and
quorum.set refuse one without); a set made by an earlier version whose admins lack one keeps working,
and notices and list say who is told nothing.

Passkey admins (no key file): passkey-link makes a single-use link (default 24 h; give it to the new
admin only) to the signer's admin page, where the admin registers a passkey. That passkey is a
candidate, named pk:<64 hex digits>, not an admin: candidates lists them with the entry a quorum.set
payload names to add one; bootstrap takes --admin pk:…,EMAIL. Passkey admins sign in on
<public URL>/admin/, read each proposal in full and approve it there with their passkey.`;

/**
 * `--admin PUBKEY,EMAIL`: an admin and the address the kernel tells it of each freeze and proposal.
 * The address is required (docs/quorum.md "Every admin is told"): `--admin PUBKEY` alone is refused,
 * naming the flag and which one it is.
 */
export function readAdminFlags(values: readonly string[] | undefined): Array<{ publicKey: string; name: string; email: string }> {
  return (values ?? []).map((value, i) => {
    const comma = value.indexOf(',');
    if (comma < 0 || comma === value.length - 1)
      throw new CustosError(
        'invalid_input',
        `--admin #${i + 1} (${escapeForTerminal(value.slice(0, 20))}…): expected PUBKEY,EMAIL — every admin needs an e-mail address, where the signer tells it of each freeze and proposal`,
        { details: { field: 'admin', index: i } },
      );
    return { publicKey: value.slice(0, comma), name: '', email: value.slice(comma + 1) };
  });
}

/** Writes a new file with mode 0600 (refusing to overwrite), fsynced. */
function writePrivateFile(path: string, text: string, option: string): void {
  if (existsSync(path)) throw new CustosError('invalid_input', `--${option}: ${path} exists; refusing to overwrite it`, { details: { field: option } });
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readKey(path: string | undefined): { publicKey: string; privateKey: Uint8Array } {
  const bytes = readSecretFile(path, 'key');
  try {
    return parseAdminKeyFile(Buffer.from(bytes).toString('utf8'));
  } finally {
    bytes.fill(0);
  }
}

/** A call to the signer's API with an API key (custos admin: the operator key; custos wallet: a register key); a refusal is thrown as its code. */
export async function callApi<T>(url: string | undefined, apiKeyFile: string | undefined, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const base = requireOption(url, 'url');
  if (!/^https?:\/\/[^/]+\/?$/.test(base)) throw new CustosError('invalid_input', '--url: expected http(s)://host:port', { details: { field: 'url' } });
  const keyBytes = readSecretFile(apiKeyFile, 'api-key-file');
  const apiKey = Buffer.from(keyBytes).toString('utf8').trim();
  keyBytes.fill(0);
  let response: Response;
  try {
    response = await fetch(new URL(path, base), {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new CustosError('signer_unreachable', `nothing answers at ${base}`, { details: { field: 'url' }, cause: error });
  }
  const text = await response.text();
  let answer: { error?: { code?: string; message?: string } } & Record<string, unknown>;
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    answer = {};
  }
  if (!response.ok) {
    const code = answer.error?.code;
    const known = typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
    throw new CustosError(known ? (code as ErrorCode) : 'internal', answer.error?.message ?? `HTTP ${response.status}`);
  }
  return answer as T;
}

/**
 * Text from the server made safe for a terminal: every control character (C0, DEL, C1 — escape
 * sequences that could move the cursor, clear the screen or retitle the window — and the Unicode
 * line, paragraph and bidirectional controls) shown as a \u escape, so that what an admin reads is what it signs.
 */
export function escapeForTerminal(text: string): string {
  return String(text).replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A proposal as the CLI shows it: the payload in full (JSON with every string's control characters escaped). */
export function renderProposal(p: ProposalView): string {
  // Line by line: the pretty-printer's own newlines stay, any other control character is escaped.
  const payload = (JSON.stringify(p.payload, null, 2) ?? 'null').split('\n').map(escapeForTerminal).join('\n              ');
  const lines = [
    `proposal ${escapeForTerminal(p.id)}`,
    `  kind        ${escapeForTerminal(p.kind)}`,
    `  state       ${escapeForTerminal(p.state)}`,
    `  description ${escapeForTerminal(p.description)}`,
    `  proposer    ${escapeForTerminal(p.proposer)}`,
    `  created     ${new Date(p.createdAt).toISOString()}`,
    `  expires     ${new Date(p.expiresAt).toISOString()}`,
    `  approvals   ${p.approvals.length} of ${p.threshold}${p.approvals.map((a) => `\n    ${escapeForTerminal(a.admin)}`).join('')}`,
    `  payloadHash ${escapeForTerminal(p.payloadHash)}`,
    `  payload     ${payload}`,
  ];
  if (p.result !== null) lines.push(`  result      ${escapeForTerminal(JSON.stringify(p.result))}`);
  // What it approves, as the kernel stores it (wallet.change.approve: the change itself, its policy diff).
  if (p.subject !== undefined) lines.push(`  approves    ${p.subject.lines.map(escapeForTerminal).join('\n              ')}`);
  return `${lines.join('\n')}\n`;
}

/** The admin notices as the CLI shows them: newest first, each in full (control characters escaped, its own line breaks kept). */
export function renderNotices(list: AdminNoticeList): string {
  const out: string[] = [];
  if (list.untoldAdmins.length > 0)
    out.push(
      `WARNING: ${list.untoldAdmins.length} admin(s) of the set in force have no e-mail address and are told nothing: ${list.untoldAdmins.map(escapeForTerminal).join(', ')}\n  Propose a quorum.set that gives every admin an address (docs/quorum.md).\n`,
    );
  if (list.notices.length === 0) out.push('No notices.\n');
  for (const n of list.notices) {
    const text = n.text.replace(/\n$/, '').split('\n').map(escapeForTerminal).join('\n    ');
    out.push(
      `#${n.seq}  ${new Date(n.ts).toISOString()}  ${escapeForTerminal(n.event)}  (${n.told} told${n.untold === 0 ? '' : `, ${n.untold} without an address`})\n    ${text}\n`,
    );
  }
  return out.join('');
}

function showProposal(p: ProposalView, io: Io): void {
  io.stdout.write(renderProposal(p));
}

/**
 * The signer id the admin's signature binds to: the server's (GET /v1/sys/status), which must
 * equal --signer-id when given (so that an approval meant for production is never made on staging).
 */
async function signerIdFor(opts: { url?: string; 'api-key-file'?: string; 'signer-id'?: string }): Promise<string> {
  const status = await callApi<{ signerId: string | null }>(opts.url, opts['api-key-file'], 'GET', '/v1/sys/status');
  if (typeof status.signerId !== 'string' || status.signerId === '')
    throw new CustosError('not_initialized', 'the server names no signer id', { details: { field: 'url' } });
  const pinned = opts['signer-id'];
  if (pinned !== undefined && pinned !== status.signerId)
    throw new CustosError(
      'invalid_input',
      `--signer-id: the server at --url is signer ${escapeForTerminal(status.signerId)}, not ${escapeForTerminal(pinned)}`,
      {
        details: { field: 'signer-id' },
      },
    );
  return status.signerId;
}

export async function adminCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  const opts = parseOptions(rest, {
    out: { type: 'string' },
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'share-file': { type: 'string', multiple: true },
    'pkcs11-module': { type: 'string' },
    'pkcs11-pin-file': { type: 'string' },
    admin: { type: 'string', multiple: true },
    quorum: { type: 'string' },
    'policy-file': { type: 'string' },
    'compat-raw-hash': { type: 'string' },
    url: { type: 'string' },
    'api-key-file': { type: 'string' },
    key: { type: 'string' },
    kind: { type: 'string' },
    'payload-file': { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'string' },
    tenant: { type: 'string' },
    'token-out': { type: 'string' },
    'ttl-seconds': { type: 'string' },
    'signer-id': { type: 'string' },
    yes: { type: 'boolean' },
    id: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  switch (sub) {
    case 'keygen': {
      const out = requireOption(opts.out, 'out');
      const file = generateAdminKey();
      writePrivateFile(out, `${JSON.stringify(file, null, 2)}\n`, 'out');
      io.stdout.write(`Wrote the admin key to ${out} (mode 0600; keep it offline). Public key:\n${file.publicKey}\n`);
      return 0;
    }
    case 'bootstrap': {
      const location = readStoreLocation(opts);
      const admins = readAdminFlags(opts.admin);
      const threshold = /^[0-9]{1,2}$/.test(opts.quorum ?? '') ? Number(opts.quorum) : Number.NaN;
      if (Number.isNaN(threshold)) throw new CustosError('invalid_input', '--quorum: expected M, an integer', { details: { field: 'quorum' } });
      const deployment = readFirstDeploymentSettings(opts);
      let credential: UnsealCredential | undefined;
      try {
        credential = readCredential(opts['passphrase-file'], opts['share-file'], { module: opts['pkcs11-module'], pinFile: opts['pkcs11-pin-file'] });
        if (credential === undefined)
          throw new CustosError('invalid_input', 'the current credentials are required: --passphrase-file, --share-file (M of them) or --pkcs11-pin-file', {
            details: { field: 'passphrase-file' },
          });
        const store = await openInitialisedStore(location);
        try {
          const done = await bootstrapQuorumOffline({
            store,
            credential,
            quorum: { threshold, admins },
            ...(deployment === undefined ? {} : { deployment }),
          });
          io.stdout.write(`Bootstrapped the admin quorum: ${done.threshold} of ${done.admins} admins; MAC'd ${done.apiKeysMacd} API keys.\n`);
        } finally {
          await store.close();
        }
      } finally {
        wipeCredential(credential);
      }
      return 0;
    }
    case 'propose': {
      const kind = requireOption(opts.kind, 'kind');
      let payload: unknown;
      let token: string | undefined;
      if (kind === 'apikey.create' && opts['payload-file'] === undefined) {
        const tokenOut = requireOption(opts['token-out'], 'token-out');
        if (existsSync(tokenOut))
          throw new CustosError('invalid_input', `--token-out: ${tokenOut} exists; refusing to overwrite it`, { details: { field: 'token-out' } });
        const generated = generateApiKeyToken((n) => new Uint8Array(randomBytes(n)));
        token = generated.token;
        payload = {
          id: generated.id,
          name: requireOption(opts.name, 'name'),
          tenant: opts.tenant ?? DEFAULT_TENANT,
          scopes: parseScopes(requireOption(opts.scopes, 'scopes')),
          secretHash: Buffer.from(generated.secretHash).toString('hex'),
        };
      } else {
        const path = requireOption(opts['payload-file'], 'payload-file');
        try {
          payload = JSON.parse(readFileSync(path, 'utf8')) as unknown;
        } catch (error) {
          throw new CustosError('invalid_input', `--payload-file: cannot read JSON from ${path}`, { details: { field: 'payload-file' }, cause: error });
        }
      }
      const ttl = opts['ttl-seconds'] === undefined ? DEFAULT_PROPOSAL_TTL_SECONDS : Number(opts['ttl-seconds']);
      if (!Number.isSafeInteger(ttl) || ttl < MIN_PROPOSAL_TTL_SECONDS || ttl > MAX_PROPOSAL_TTL_SECONDS)
        throw new CustosError('invalid_input', `--ttl-seconds: expected an integer from ${MIN_PROPOSAL_TTL_SECONDS} to ${MAX_PROPOSAL_TTL_SECONDS}`, {
          details: { field: 'ttl-seconds' },
        });
      const signerId = await signerIdFor(opts);
      const id = randomBytes(16).toString('hex');
      const expiresAt = Date.now() + ttl * 1000;
      const payloadHash = computePayloadHash(kind, payload);
      const key = readKey(opts.key);
      let signature: string;
      try {
        signature = signAdminMessage(key.privateKey, PROPOSE_LABEL, { signerId, id, proposer: key.publicKey, expiresAt, payloadHash });
      } finally {
        key.privateKey.fill(0);
      }
      const view = await callApi<ProposalView>(opts.url, opts['api-key-file'], 'POST', '/v1/admin/proposals', {
        id,
        kind,
        payload,
        proposer: key.publicKey,
        signature,
        expiresAt,
      });
      // The token is written only once the proposal stands; it works once M admins approved.
      if (token !== undefined) writePrivateFile(opts['token-out'] as string, `${token}\n`, 'token-out');
      showProposal(view, io);
      io.stdout.write(`Proposed ${view.id}: ${view.threshold} other admins must approve it (custos admin approve --id ${view.id}).\n`);
      if (token !== undefined) io.stdout.write(`The new API key is in ${opts['token-out']} (mode 0600); it works once the proposal is applied.\n`);
      return 0;
    }
    case 'approve': {
      const id = requireOption(opts.id, 'id');
      if (!/^[0-9a-f]{32}$/.test(id))
        throw new CustosError('invalid_input', '--id: expected a proposal id (32 lowercase hex digits)', { details: { field: 'id' } });
      const signerId = await signerIdFor(opts);
      const shown = await callApi<ProposalView>(opts.url, opts['api-key-file'], 'GET', `/v1/admin/proposals/${id}`);
      if (shown.id !== id) throw new CustosError('invalid_input', '--id: the server answered with another proposal', { details: { field: 'id' } });
      // What is approved is the payload shown here, hashed here: never the server's hash.
      const payloadHash = computePayloadHash(shown.kind, shown.payload);
      showProposal({ ...shown, payloadHash }, io);
      io.stdout.write(`  signer      ${escapeForTerminal(signerId)}\n`);
      // The stored subject is not the one the proposal names: the kernel refuses the approval; nothing is signed.
      if (shown.subject !== undefined && !shown.subject.matches)
        throw new CustosError(
          shown.subject.refusal?.code ?? 'proposal_payload_mismatch',
          `the proposal does not match what the signer stores: ${shown.subject.refusal?.message ?? 'mismatch'}; nothing was signed`,
          { details: { field: 'id' } },
        );
      const key = readKey(opts.key);
      let signature: string;
      try {
        // A typed confirmation, unless --yes: nothing is signed before the admin read the payload.
        if (opts.yes !== true) {
          io.stdout.write('Type "yes" to sign your approval of exactly this payload: ');
          const answer = await (io.readLine ?? readLineFromStdin)();
          if (answer?.trim() !== 'yes')
            throw new CustosError('invalid_input', 'not confirmed: nothing was signed (type "yes", or pass --yes)', { details: { field: 'yes' } });
        }
        signature = signAdminMessage(key.privateKey, APPROVE_LABEL, { signerId, id, proposer: shown.proposer, expiresAt: shown.expiresAt, payloadHash });
      } finally {
        key.privateKey.fill(0);
      }
      const view = await callApi<ProposalView>(opts.url, opts['api-key-file'], 'POST', `/v1/admin/proposals/${id}/approvals`, {
        admin: key.publicKey,
        payloadHash,
        signature,
      });
      io.stdout.write(
        view.state === 'applied'
          ? `Approved and applied ${id} (${view.approvals.length} of ${view.threshold}).\n`
          : `Approved ${id}: ${view.approvals.length} of ${view.threshold} approvals.\n`,
      );
      return 0;
    }
    case 'list': {
      const list = await callApi<{
        quorum: { threshold: number; admins: Array<{ publicKey: string; name: string; email?: string; passkey?: unknown }> } | null;
        proposals: ProposalView[];
      }>(opts.url, opts['api-key-file'], 'GET', '/v1/admin/proposals');
      if (opts.json === true) {
        io.stdout.write(`${JSON.stringify(list)}\n`);
        return 0;
      }
      if (list.quorum === null) io.stdout.write('No admin quorum is configured.\n');
      else
        io.stdout.write(
          `Admin quorum: ${list.quorum.threshold} of ${list.quorum.admins.length}\n${list.quorum.admins.map((a) => `  ${a.publicKey}${a.passkey === undefined ? '' : '  (passkey)'}${a.name === '' ? '' : `  ${a.name}`}${a.email === undefined ? '  (no e-mail address: told nothing)' : `  <${a.email}>`}\n`).join('')}`,
        );
      for (const p of list.proposals) io.stdout.write(`${p.id}  ${p.state.padEnd(8)} ${p.approvals.length}/${p.threshold}  ${p.kind}  ${p.description}\n`);
      return 0;
    }
    case 'passkey-link': {
      const ttl = opts['ttl-seconds'] === undefined ? undefined : Number(opts['ttl-seconds']);
      const link = await callApi<{ url: string; name: string; expiresAt: number }>(opts.url, opts['api-key-file'], 'POST', '/v1/admin/passkey-links', {
        ...(opts.name === undefined ? {} : { name: opts.name }),
        ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
      });
      io.stdout.write(
        `Admin enrolment link (single use, until ${new Date(link.expiresAt).toISOString()}; give it to the new admin only):\n${escapeForTerminal(link.url)}\n` +
          'The passkey registered there is a candidate: it becomes an admin once bootstrap or a quorum.set proposal names it (custos admin candidates).\n',
      );
      return 0;
    }
    case 'candidates': {
      const { candidates } = await callApi<{ candidates: Array<{ adminId: string; name: string; inAdminSet: boolean; entry: unknown }> }>(
        opts.url,
        opts['api-key-file'],
        'GET',
        '/v1/admin/passkey-candidates',
      );
      if (opts.json === true) {
        io.stdout.write(`${JSON.stringify({ candidates })}\n`);
        return 0;
      }
      if (candidates.length === 0) io.stdout.write('No admin passkey is registered.\n');
      for (const c of candidates)
        io.stdout.write(
          `${escapeForTerminal(c.adminId)}  ${c.inAdminSet ? 'admin    ' : 'candidate'}  ${escapeForTerminal(c.name)}\n  quorum.set entry (add its "email"): ${escapeForTerminal(JSON.stringify(c.entry))}\n`,
        );
      return 0;
    }
    case 'notices': {
      const limit = opts.limit;
      if (limit !== undefined && !/^[1-9][0-9]{0,2}$/.test(limit))
        throw new CustosError('invalid_input', `--limit: expected an integer from 1 to ${MAX_NOTICE_LIMIT}`, { details: { field: 'limit' } });
      if (limit !== undefined && Number(limit) > MAX_NOTICE_LIMIT)
        throw new CustosError('invalid_input', `--limit: expected an integer from 1 to ${MAX_NOTICE_LIMIT}`, { details: { field: 'limit' } });
      const list = await callApi<AdminNoticeList>(opts.url, opts['api-key-file'], 'GET', `/v1/admin/notices${limit === undefined ? '' : `?limit=${limit}`}`);
      if (opts.json === true) {
        io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return 0;
      }
      io.stdout.write(renderNotices(list));
      return 0;
    }
    case 'show': {
      const id = requireOption(opts.id, 'id');
      if (!/^[0-9a-f]{32}$/.test(id))
        throw new CustosError('invalid_input', '--id: expected a proposal id (32 lowercase hex digits)', { details: { field: 'id' } });
      showProposal(await callApi<ProposalView>(opts.url, opts['api-key-file'], 'GET', `/v1/admin/proposals/${id}`), io);
      return 0;
    }
    default:
      throw new CustosError(
        'invalid_input',
        `unknown admin subcommand ${JSON.stringify(sub)}; expected keygen, bootstrap, propose, approve, list, show, notices, passkey-link or candidates`,
      );
  }
}

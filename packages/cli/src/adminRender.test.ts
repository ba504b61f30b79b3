// store-independent: renders a proposal and runs approve's confirmation in-process against a local HTTP stub; opens no store
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { generateAdminKey, type ProposalView } from '@custos/kernel';
import { adminCommand, escapeForTerminal, renderProposal } from './commands/admin.js';
import { secretInputs } from './testing/cliHarness.js';

// Issue 13 point 4 (review finding 3): `custos admin approve` shows the payload in full with every
// control character escaped — a payload cannot clear the screen or hide a line from the admin — and
// signs only after a typed "yes" (or --yes).

const inputs = secretInputs('custos-cli-admin-render');
const ESC = '\u001b';
const proposal: ProposalView = {
  id: '0123456789abcdef0123456789abcdef',
  kind: 'deployment.settings',
  payload: { webhookUrl: `https://ok.example/${ESC}[2J${ESC}]0;title\u0007\rhidden\u202e`, policyDefaults: { note: 'line1\nline2\u009b' } },
  payloadHash: 'aa'.repeat(32),
  description: `settings ${ESC}[31mred`,
  proposer: 'bb'.repeat(32),
  createdAt: 0,
  expiresAt: 3_600_000,
  state: 'pending',
  decidedAt: null,
  threshold: 1,
  approvals: [],
  result: null,
};

describe('custos admin approve: what the admin reads', () => {
  it('escapes every control character of the payload and description (no raw ESC, BEL, CR, C1 or bidi control reaches the terminal)', () => {
    const text = renderProposal(proposal);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for raw control characters
    assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f\u202e]/);
    assert.ok(text.includes('\\u001b[2J\\u001b]0;title\\u0007\\rhidden\\u202e'), text);
    assert.ok(text.includes('settings \\u001b[31mred'), text);
    assert.ok(text.includes('line1\\nline2\\u009b'), text);
    assert.equal(escapeForTerminal('plain ascii, é, 中文'), 'plain ascii, é, 中文');
  });

  it('signs nothing unless "yes" is typed; the typed "yes" signs (the server receives one approval)', async () => {
    const key = generateAdminKey();
    const keyFile = inputs.write('admin-key', JSON.stringify(key));
    const apiKeyFile = inputs.write('api-key', 'ck1.0011223344556677.stub\n');
    const approvals: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/sys/status') return res.end(JSON.stringify({ signerId: 'signer-1' }));
        if (req.method === 'GET') return res.end(JSON.stringify(proposal));
        approvals.push(JSON.parse(body));
        res.end(JSON.stringify({ ...proposal, approvals: [{ admin: key.publicKey, createdAt: 1 }] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const run = async (answer: string | null, extra: string[] = []) => {
        let stdout = '';
        const io = {
          stdout: {
            write: (c: string) => {
              stdout += c;
              return true;
            },
          },
          stderr: { write: () => true },
          readLine: async () => answer,
        };
        const args = ['approve', '--url', url, '--api-key-file', apiKeyFile, '--key', keyFile, '--id', proposal.id, ...extra];
        try {
          return { code: await adminCommand(args, io), stdout, error: undefined as unknown };
        } catch (error) {
          return { code: 1, stdout, error };
        }
      };
      for (const answer of [null, '', 'no', 'y', 'YES please']) {
        const refused = await run(answer);
        assert.equal((refused.error as { code?: string } | undefined)?.code, 'invalid_input', String(answer));
        assert.match(refused.stdout, /\\u001b\[2J/);
        assert.match(refused.stdout, /signer {6}signer-1/);
      }
      assert.equal(approvals.length, 0, 'nothing was signed or sent');
      assert.equal((await run('yes')).code, 0);
      assert.equal((await run(null, ['--yes'])).code, 0);
      assert.equal(approvals.length, 2);
      // a pinned signer id that is not the server's: refused before anything is shown or signed
      const pinned = await run('yes', ['--signer-id', 'production']);
      assert.equal((pinned.error as { code?: string } | undefined)?.code, 'invalid_input');
      assert.equal(approvals.length, 2);
    } finally {
      server.close();
    }
  });

  it('a wallet.change.approve: approve prints the stored change (its policy diff lines) before asking; a subject that does not match is refused, nothing signed', async () => {
    const key = generateAdminKey();
    const keyFile = inputs.write('admin-key', JSON.stringify(key));
    const apiKeyFile = inputs.write('api-key', 'ck1.0011223344556677.stub\n');
    const diffLine = 'native.1.perTx: 1 ETH → no limit (looser)';
    const change: ProposalView = {
      ...proposal,
      kind: 'wallet.change.approve',
      payload: { changeId: 'cc'.repeat(16), walletName: 'tom', kind: 'policy.loosen', payloadHash: 'dd'.repeat(32) },
      subject: {
        lines: ['The stored change matches the proposal (id, wallet, kind, payload hash).', 'Change … (policy.loosen) of wallet "tom"', diffLine],
        stored: {},
        matches: true,
      },
    };
    let served = change;
    const approvals: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/sys/status') return res.end(JSON.stringify({ signerId: 'signer-1' }));
        if (req.method === 'GET') return res.end(JSON.stringify(served));
        approvals.push(JSON.parse(body));
        res.end(JSON.stringify({ ...served, approvals: [{ admin: key.publicKey, createdAt: 1 }] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const run = async (answer: string | null) => {
        let stdout = '';
        let askedAfter = '';
        const io = {
          stdout: {
            write: (c: string) => {
              stdout += c;
              return true;
            },
          },
          stderr: { write: () => true },
          readLine: async () => {
            askedAfter = stdout;
            return answer;
          },
        };
        const args = ['approve', '--url', url, '--api-key-file', apiKeyFile, '--key', keyFile, '--id', proposal.id];
        try {
          return { code: await adminCommand(args, io), stdout, askedAfter, error: undefined as unknown };
        } catch (error) {
          return { code: 1, stdout, askedAfter, error };
        }
      };
      const ok = await run('yes');
      assert.equal(ok.code, 0);
      // printed before the question
      assert.ok(ok.askedAfter.includes(diffLine), ok.askedAfter);
      assert.match(ok.askedAfter, /approves {4}The stored change matches/);
      assert.equal(approvals.length, 1);
      // the signer says its stored change is not the one named: refused before any question or signature
      served = {
        ...change,
        subject: {
          lines: ['DOES NOT MATCH: the change row does not match its MAC'],
          stored: null,
          matches: false,
          refusal: { code: 'record_unreadable', message: 'the change row does not match its MAC' },
        },
      };
      const refused = await run('yes');
      assert.equal((refused.error as { code?: string } | undefined)?.code, 'record_unreadable');
      assert.match(refused.stdout, /DOES NOT MATCH/);
      assert.equal(refused.askedAfter, '', 'never asked');
      assert.equal(approvals.length, 1, 'nothing signed or sent');
    } finally {
      server.close();
    }
  });
});

// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Address,
  type ApprovalPage,
  type ApprovalState,
  type ApprovalView,
  type OperationSummary,
  parseTransaction,
  prepareAuthorization,
  prepareMessage,
  prepareTypedData,
  summarizeBatch,
  summarizeTransaction,
} from '@custos/kernel';
import { encodeFunctionData, maxUint256, parseAbi } from 'viem';
import { ETHER_MAIL } from '../testing/etherMail.js';
import { APP_TEXT_LABEL, renderApprovalPage, renderDecisionPage, renderNoticePage } from './renderApprovalPage.js';
import type { PageContext } from './renderDocument.js';
import { EMPTY_TOKEN_LIST, parseTokenList } from './tokenList.js';

const FROM = '0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0' as Address;
const USDC = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';
const SPENDER = '0x3535353535353535353535353535353535353535';
const CTX: PageContext = { brandName: 'Custos', lang: 'en', nonce: 'bm9uY2Vub25jZW5vbmNlMQ==' };
const TOKEN = 'f'.repeat(64);
const T = Date.UTC(2026, 11, 6, 19, 30, 0);
const erc20 = parseAbi([
  'function transfer(address to, uint256 amount)',
  'function approve(address spender, uint256 amount)',
  'function increaseAllowance(address spender, uint256 addedValue)',
]);

/** A fake ApprovalPage around a summary (the kernel's own summarize functions make the summaries). */
function pageOf(
  { summary, summaryText }: { summary: OperationSummary; summaryText: string },
  over: Partial<ApprovalView> = {},
  factors: ApprovalPage['factors'] = [
    { kind: 'totp', id: 'totp', label: 'TOTP', strength: 'present', createdAt: Date.UTC(2026, 10, 1, 8, 15), enrolledVia: 'api' },
  ],
): ApprovalPage {
  return {
    approval: {
      id: 'a'.repeat(32),
      walletName: 'alice',
      keyIndex: 0,
      operationType: summary.operation,
      opHash: `0x${'11'.repeat(32)}`,
      summary,
      summaryText,
      requiredStrength: 'present',
      state: 'pending',
      createdAt: T,
      expiresAt: T + 600_000,
      decidedAt: null,
      factor: null,
      ...over,
    },
    factors,
  };
}

function transaction(fields: Record<string, unknown>) {
  const tx = parseTransaction({ type: 'eip1559', chainId: 8453, nonce: 7, gas: '100000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1', ...fields });
  return summarizeTransaction(tx, FROM);
}

function render(page: ApprovalPage, tokens = EMPTY_TOKEN_LIST): string {
  return renderApprovalPage(CTX, { page, formToken: TOKEN, tokens });
}

/** The box of the app's text: from its label to the end of its section. */
function appTextBox(out: string): string {
  const start = out.indexOf(APP_TEXT_LABEL);
  assert.ok(start > 0, 'the app text box is there');
  return out.slice(start, out.indexOf('</section>', start));
}

/** Text of the page without tags and with the entities of showText/escapeHtml undone (what a reader sees). */
function visibleText(out: string): string {
  return out
    .replace(/<style[\s\S]*?<\/style>/, '')
    .replace(/<[^>]+>/g, ' ')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&amp;', '&')
    .replace(/\s+/g, ' ');
}

describe('approval page: app text escaped, invisible characters shown', () => {
  it('a message with <script> and U+202E: escaped and visible, inside the app text box, never raw', () => {
    const text = 'Hello <script>alert(1)</script> pay \u202Eevil\u2066 and \u0007 bell';
    const out = render(pageOf(prepareMessage({ text }).summarize(FROM), { walletName: 'bob<img src=x onerror=alert(2)>\u202E' }));
    assert.ok(!out.includes('<script'), 'no script element');
    assert.ok(!out.includes('<img'), 'no img element');
    for (const raw of ['\u202E', '\u2066', '\u0007']) assert.ok(!out.includes(raw), `no raw ${JSON.stringify(raw)}`);
    const box = appTextBox(out);
    assert.ok(box.includes('Hello &lt;script&gt;alert(1)&lt;/script&gt; pay <span class="cp">⟨U+202E⟩</span>evil<span class="cp">⟨U+2066⟩</span>'));
    assert.ok(box.includes('<span class="cp">⟨U+0007⟩</span> bell'));
    assert.ok(box.includes('bob&lt;img src=x onerror=alert(2)&gt;<span class="cp">⟨U+202E⟩</span>'), 'the wallet name is app text too');
    assert.match(visibleText(out), /invisible or direction-changing characters/);
  });

  it('typed data: names and values are escaped and shown in the app text box', () => {
    const typed = {
      ...ETHER_MAIL,
      types: { ...ETHER_MAIL.types, Mail: [...ETHER_MAIL.types.Mail] },
      domain: { ...ETHER_MAIL.domain, name: 'Ether <b>Mail</b>\u202E' },
      message: { ...ETHER_MAIL.message, contents: '</dd><script>x</script>\u200F' },
    };
    const out = render(pageOf(prepareTypedData(typed).summarize(FROM)));
    const box = appTextBox(out);
    assert.ok(box.includes('Ether &lt;b&gt;Mail&lt;/b&gt;<span class="cp">⟨U+202E⟩</span>'));
    assert.ok(box.includes('&lt;/dd&gt;&lt;script&gt;x&lt;/script&gt;<span class="cp">⟨U+200F⟩</span>'));
    assert.ok(box.includes('<dt>contents</dt>') && box.includes('<dt>wallet</dt>'), 'field names shown');
    assert.ok(!out.includes('<script') && !out.includes('<b>Mail'));
    // the verifying contract is the kernel's checked address, among the facts
    assert.match(visibleText(out), /Contract \(verifies the signature\) 0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC/i);
    assert.match(visibleText(out), /Chain Ethereum \(chain 1\)/);
  });

  it('typed data too large to show in full (a spender after a long list): a warning and no Approve form — only Reject', () => {
    // A Permit2-like batch: 200 entries, then the spender (keys are shown in canonical, alphabetical order).
    const typed = {
      types: {
        EIP712Domain: [{ name: 'name', type: 'string' }],
        Entry: [
          { name: 'token', type: 'address' },
          { name: 'amount', type: 'uint256' },
        ],
        Batch: [
          { name: 'permitted', type: 'Entry[]' },
          { name: 'spender', type: 'address' },
        ],
      },
      primaryType: 'Batch',
      domain: { name: 'Permit2' },
      message: { permitted: Array.from({ length: 200 }, () => ({ token: FROM, amount: '0' })), spender: '0x000000000000000000000000000000000000dEaD' },
    };
    const out = render(pageOf(prepareTypedData(typed).summarize(FROM)));
    assert.match(visibleText(out), /too large to show in full on this page, so it cannot be approved here/);
    assert.doesNotMatch(out, /name="decision" value="approve"/, 'no Approve form');
    assert.match(out, /name="decision" value="reject"/, 'Reject stays');
    // A small one keeps its Approve form.
    const small = render(pageOf(prepareTypedData({ ...typed, message: { ...typed.message, permitted: typed.message.permitted.slice(0, 3) } }).summarize(FROM)));
    assert.match(small, /name="decision" value="approve"/);
    assert.doesNotMatch(visibleText(small), /too large to show/);
  });

  it('typed data without a chain: a warning; with a chain id too large to name: that id, no warning', () => {
    const { chainId: _, ...noChain } = ETHER_MAIL.domain;
    const none = render(pageOf(prepareTypedData({ ...ETHER_MAIL, domain: noChain }).summarize(FROM)));
    assert.match(visibleText(none), /Chain any chain: the data names none/);
    assert.match(none, /<li>No chain: this signature is valid on every chain/);
    const huge = render(pageOf(prepareTypedData({ ...ETHER_MAIL, domain: { ...ETHER_MAIL.domain, chainId: '9007199254740993' } }).summarize(FROM)));
    assert.match(visibleText(huge), /Chain chain 9007199254740993/);
    assert.doesNotMatch(huge, /No chain/);
  });

  it('the brand name and the language come from the context, escaped', () => {
    const out = renderApprovalPage(
      { ...CTX, brandName: 'Acme <Custody>', lang: 'de' },
      { page: pageOf(prepareMessage({ text: 'x' }).summarize(FROM)), formToken: TOKEN, tokens: EMPTY_TOKEN_LIST },
    );
    assert.ok(out.startsWith('<!doctype html>\n<html lang="de">'));
    assert.ok(out.includes('Acme &lt;Custody&gt;') && !out.includes('<Custody>'));
    assert.ok(out.includes(`<style nonce="${CTX.nonce}">`));
    assert.ok(out.includes('<meta name="viewport" content="width=device-width, initial-scale=1">'));
    assert.ok(!/<script|<link|<img|src=|href=/i.test(out.replace(/<style[\s\S]*?<\/style>/, '')), 'no script, no external asset, no link out');
  });
});

describe('approval page: the summary large and unambiguous', () => {
  it('native transfer: chain, from, to, amount with its unit, maximum fee', () => {
    const out = visibleText(render(pageOf(transaction({ to: SPENDER, value: '1500000000000000000' }))));
    assert.match(out, /Send 1\.5 ETH/);
    assert.match(out, /Chain Base \(chain 8453\)/);
    assert.match(out, new RegExp(`From ${FROM}`));
    assert.match(out, new RegExp(`To ${SPENDER}`));
    assert.match(out, /Amount of ETH sent 1\.5 ETH \(1500000000000000000 wei\)/);
    assert.match(out, /Maximum fee 0\.0002 ETH \(200000000000000 wei\)/);
    assert.match(out, /Nonce 7/);
    assert.doesNotMatch(out, /Unlimited|Delegation|Blind|deployment/i);
  });

  it('ERC-20 transfer of a token not in the list: base units and the contract address', () => {
    const data = encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [SPENDER, 1_500_000n] });
    const out = visibleText(render(pageOf(transaction({ to: USDC, data }))));
    assert.match(out, /Token a token not in the operator's token list, contract 0x833589fcd6edb6e08f4c7c32d4f71b54bda02913/i);
    assert.match(out, /Token amount 1500000 base units/);
    assert.match(out, new RegExp(`Token recipient ${SPENDER}`));
    assert.match(out, /To \(the contract called\) 0x833589fcd6edb6e08f4c7c32d4f71b54bda02913/i);
  });

  it('ERC-20 transfer of a token in the operator’s list: its symbol and unit, and the base units', () => {
    const tokens = parseTokenList([{ chainId: 8453, address: USDC, symbol: 'USDC', decimals: 6 }]);
    const data = encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [SPENDER, 1_500_000n] });
    const out = visibleText(render(pageOf(transaction({ to: USDC, data })), tokens));
    assert.match(out, /Token USDC , contract 0x833589fcd6edb6e08f4c7c32d4f71b54bda02913/i);
    assert.match(out, /Token amount 1\.5 USDC \(1500000 base units\)/);
    // the same token on another chain is not that token
    const other = parseTokenList([{ chainId: 1, address: USDC, symbol: 'USDC', decimals: 6 }]);
    assert.match(visibleText(render(pageOf(transaction({ to: USDC, data })), other)), /Token amount 1500000 base units/);
  });

  it('warning: unlimited allowance (ERC-20 approve of max uint256)', () => {
    const data = encodeFunctionData({ abi: erc20, functionName: 'approve', args: [SPENDER, maxUint256] });
    const out = render(pageOf(transaction({ to: USDC, data })));
    assert.match(out, /<ul class="warnings" aria-label="Warnings"><li>Unlimited allowance: the spender may take ALL/);
    assert.match(visibleText(out), /Allowance UNLIMITED \(115792089237316195423570985008687907853269984665640564039457584007913129639935 base units/);
    const tokens = parseTokenList([{ chainId: 8453, address: USDC, symbol: 'USDC', decimals: 6 }]);
    assert.match(visibleText(render(pageOf(transaction({ to: USDC, data })), tokens)), /Allowance UNLIMITED USDC \(/);
  });

  it('increaseAllowance: shown as an allowance added, unlimited warned', () => {
    const some = visibleText(
      render(pageOf(transaction({ to: USDC, data: encodeFunctionData({ abi: erc20, functionName: 'increaseAllowance', args: [SPENDER, 5n] }) }))),
    );
    assert.match(some, /Allow more spending of a token \(ERC-20 increaseAllowance\)/);
    assert.match(some, /Allowance added 5 base units/);
    const all = render(
      pageOf(transaction({ to: USDC, data: encodeFunctionData({ abi: erc20, functionName: 'increaseAllowance', args: [SPENDER, maxUint256] }) })),
    );
    assert.match(all, /<li>Unlimited allowance: the spender may take ALL/);
  });

  it('warning: contract deployment', () => {
    const out = render(pageOf(transaction({ to: null, data: '0x6080604052' })));
    assert.match(out, /<li>Contract deployment: this creates a new contract/);
    assert.match(visibleText(out), /To nobody: this creates a new contract/);
  });

  it('warning: delegation (EIP-7702 authorization), and on every chain for chain id 0', () => {
    const delegate = '0x1111111111111111111111111111111111111111';
    const one = render(pageOf(prepareAuthorization({ chainId: 1, address: delegate, nonce: 0 }).summarize(FROM)));
    assert.match(one, new RegExp(`<li>Delegation: the contract ${delegate} will control this account`));
    assert.doesNotMatch(one, /Every chain/);
    const all = render(pageOf(prepareAuthorization({ chainId: 0, address: delegate, nonce: 0 }).summarize(FROM)));
    assert.match(all, /<li>Every chain: this authorization is valid on all chains/);
  });

  it('warning: blind hash', () => {
    const hash = `0x${'ab'.repeat(32)}`;
    const out = render(pageOf({ summary: { operation: 'hash', from: FROM, hash, blind: true }, summaryText: 'x' }));
    assert.match(out, /<li>Blind signing: Custos cannot show what this hash commits to/);
    assert.match(visibleText(out), new RegExp(`Hash ${hash}`));
  });

  it('warning: an unknown function call', () => {
    const out = render(pageOf(transaction({ to: USDC, data: '0xdeadbeef00' })));
    assert.match(out, /<li>Unknown function: Custos cannot decode what this call does/);
  });

  it('a summary of an unexpected shape: a warning and the kernel’s text, escaped', () => {
    const out = render(pageOf({ summary: { operation: 'transaction', from: FROM } as OperationSummary, summaryText: 'Do <x>' }));
    assert.match(out, /<li>Custos cannot lay this operation out in detail/);
    assert.ok(appTextBox(out).includes('Do &lt;x&gt;'));
  });
});

describe('approval page: factors and forms', () => {
  it('pending: the factors with kind and enrolment date, an Approve form with a labelled 6-digit code field, and a Reject form', () => {
    const out = render(pageOf(prepareMessage({ text: 'x' }).summarize(FROM)));
    assert.match(
      visibleText(out),
      /Authenticator app \(TOTP code\) “TOTP”, enrolled 2026-11-01 08:15 UTC, added by the app \(it may know this factor’s secret\)/,
    );
    assert.equal(out.match(/<form method="post">/g)?.length, 2);
    assert.equal(out.match(new RegExp(`<input type="hidden" name="csrf" value="${TOKEN}">`, 'g'))?.length, 2);
    assert.ok(out.includes('<input type="hidden" name="decision" value="approve">'));
    assert.ok(out.includes('<input type="hidden" name="decision" value="reject">'));
    assert.ok(out.includes('<label for="code">'));
    assert.match(out, /<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="\[0-9\]\{6\}"[^>]* required/);
    assert.match(out, /<button type="submit" class="approve">Approve<\/button>/);
    assert.match(out, /<button type="submit" class="reject">Reject<\/button>/);
    assert.match(visibleText(out), /Decide before 2026-12-06 19:40 UTC/);
  });

  it('each factor says how it was enrolled: by the app (which may know its secret) or by the owner on the page', () => {
    const summary = prepareMessage({ text: 'x' }).summarize(FROM);
    const at = Date.UTC(2026, 10, 2, 9, 30);
    const viaPage = visibleText(
      render(pageOf(summary, {}, [{ kind: 'totp', id: 'totp', label: 'TOTP', strength: 'present', createdAt: at, enrolledVia: 'page' }])),
    );
    assert.match(viaPage, /“TOTP”, enrolled 2026-11-02 09:30 UTC, added on this signer’s enrolment page/);
    assert.doesNotMatch(viaPage, /added by the app/);
    const viaApi = visibleText(
      render(pageOf(summary, {}, [{ kind: 'totp', id: 'totp', label: 'TOTP', strength: 'present', createdAt: at, enrolledVia: 'api' }])),
    );
    assert.match(viaApi, /added by the app \(it may know this factor’s secret\)/);
    assert.doesNotMatch(viaApi, /enrolment page/);
  });

  it('requiredStrength bound: no code field (a code is not enough), Reject still there', () => {
    const out = render(pageOf(prepareMessage({ text: 'x' }).summarize(FROM), { requiredStrength: 'bound' }));
    assert.ok(!out.includes('name="code"'));
    assert.match(out, /needs a passkey/);
    assert.match(out, /class="reject">Reject/);
  });

  const decided: Array<[ApprovalState, RegExp]> = [
    ['approved', /Approved on 2026-12-06 19:31 UTC/],
    ['consumed', /the operation has been signed/],
    ['rejected', /Rejected on 2026-12-06 19:31 UTC/],
    ['expired', /Expired at 2026-12-06 19:40 UTC/],
    ['cancelled', /Cancelled by the app/],
  ];
  for (const [state, text] of decided) {
    it(`${state}: the state shown, and no form`, () => {
      const out = render(pageOf(prepareMessage({ text: 'x' }).summarize(FROM), { state, decidedAt: state === 'expired' ? null : T + 60_000 }));
      assert.match(visibleText(out), text);
      assert.ok(!out.includes('<form') && !out.includes('name="csrf"'));
    });
  }

  it('a refusal is shown above the page', () => {
    const page = pageOf(prepareMessage({ text: 'x' }).summarize(FROM));
    const out = renderApprovalPage(CTX, { page, formToken: TOKEN, tokens: EMPTY_TOKEN_LIST, refusal: 'Wrong code.' });
    assert.match(out, /<p class="state bad" role="alert">Wrong code\.<\/p>\s*<h1>/);
  });
});

describe('decision and notice pages', () => {
  it('the decision page says what was decided', () => {
    const { approval } = pageOf(prepareMessage({ text: 'x' }).summarize(FROM), { state: 'approved', decidedAt: T });
    assert.match(visibleText(renderDecisionPage(CTX, approval, EMPTY_TOKEN_LIST)), /Approved Approved on 2026-12-06 19:30 UTC\..*Sign a message/);
  });

  it('a notice page escapes its text', () => {
    const out = renderNoticePage(CTX, { title: 'T<', text: ['a<b', 'c'] });
    assert.ok(out.includes('<h1>T&lt;</h1>') && out.includes('a&lt;b'));
  });
});

describe('approval page: the passkey step', () => {
  const SCRIPTS = ['/assets/webauthn-0123456789abcdef.js', '/assets/passkey-fedcba9876543210.js'];
  const PK_CTX: PageContext = { ...CTX, passkeyScripts: SCRIPTS };
  const CREDENTIAL = 'AbCdEfGhIjKlMnOpQrStUv';
  const at = Date.UTC(2026, 10, 3, 10, 5);
  const passkeyFactor = { kind: 'passkey', id: CREDENTIAL, label: 'passkey', strength: 'bound', createdAt: at, enrolledVia: 'page' } as const;
  const totpFactor = { kind: 'totp', id: 'totp', label: 'TOTP', strength: 'present', createdAt: at, enrolledVia: 'api' } as const;
  const message = () => prepareMessage({ text: 'x' }).summarize(FROM);

  function renderPk(page: ApprovalPage, extra: { refusal?: string; refusalCode?: string } = {}): string {
    return renderApprovalPage(PK_CTX, { page, formToken: TOKEN, tokens: EMPTY_TOKEN_LIST, ...extra });
  }

  /** Every <script> tag of a page. */
  function scriptTags(out: string): string[] {
    return [...out.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]);
  }

  it('a wallet with a passkey (bound): the Approve-with-passkey step with its ids and form, the scripts with the nonce, no code form', () => {
    const out = renderPk(pageOf(message(), { requiredStrength: 'bound' }, [passkeyFactor, totpFactor]));
    assert.match(out, /<section id="passkey-step" class="passkey" data-mode="approve" data-state="loading"/);
    assert.match(out, /<button type="button" id="passkey-approve" class="approve" disabled>Approve with passkey<\/button>/);
    assert.match(out, /<p id="passkey-status" class="status" role="status" aria-live="polite"><\/p>/);
    const form = /<form method="post" id="passkey-form">([\s\S]*?)<\/form>/.exec(out)?.[1] ?? '';
    for (const field of [`name="csrf" value="${TOKEN}"`, 'name="decision" value="approve"', 'name="kind" value="passkey"', 'name="proof" value=""'])
      assert.ok(form.includes(`<input type="hidden" ${field}>`), field);
    // the two scripts, in order, each with the response's nonce; no other script, none inline
    assert.deepEqual(
      scriptTags(out),
      SCRIPTS.map((src) => `<script nonce="${CTX.nonce}" src="${src}" defer>`),
    );
    assert.ok(!/<script[^>]*>[^<]/.test(out), 'no inline script body');
    assert.ok(!/\son[a-z]+=/i.test(out), 'no inline event handler');
    // without JavaScript the step says so
    assert.match(out, /<noscript><p class="state bad">Approving with a passkey needs JavaScript/);
    // bound: a code is not enough, so no code form, though the wallet has TOTP
    assert.ok(!out.includes('name="code"'));
    assert.match(out, /class="reject">Reject/);
    // the factor list: the passkey, when and where it was registered
    assert.match(visibleText(out), /Passkey AbCdEfGh…\s*, registered 2026-11-03 10:05 UTC, added on this signer’s enrolment page/);
  });

  it('a wallet without a passkey: no step, no script tag at all', () => {
    for (const factors of [[totpFactor], []]) {
      const out = renderPk(pageOf(message(), {}, factors));
      assert.deepEqual(scriptTags(out), []);
      assert.ok(!out.includes('passkey-step') && !out.includes('passkey-approve'));
    }
  });

  it('a passkey wallet, but the approval decided or lapsed, or not fully shown: no step, no script', () => {
    for (const state of ['approved', 'rejected', 'expired', 'cancelled', 'consumed'] as const) {
      const out = renderPk(pageOf(message(), { state, requiredStrength: 'bound', decidedAt: T }, [passkeyFactor]));
      assert.deepEqual(scriptTags(out), [], state);
      assert.ok(!out.includes('passkey-approve'), state);
    }
    // typed data too large to show in full (as the HTTP test's Permit2 batch)
    const typed = prepareTypedData({
      types: {
        EIP712Domain: [{ name: 'name', type: 'string' }],
        Entry: [{ name: 'amount', type: 'uint256' }],
        Batch: [{ name: 'permitted', type: 'Entry[]' }],
      },
      primaryType: 'Batch',
      domain: { name: 'Permit2' },
      message: { permitted: Array.from({ length: 300 }, () => ({ amount: '0' })) },
    }).summarize(FROM);
    const out = renderPk(pageOf(typed, { requiredStrength: 'bound' }, [passkeyFactor]));
    assert.match(out, /cannot be approved on this page/);
    assert.deepEqual(scriptTags(out), []);
  });

  it('a refusal of a passkey answer: the alert carries the kernel’s code, the step is offered again', () => {
    const out = renderPk(pageOf(message(), { requiredStrength: 'bound' }, [passkeyFactor]), {
      refusal: 'The passkey’s answer could not be read.',
      refusalCode: 'invalid_input',
    });
    assert.match(out, /<p class="state bad" data-code="invalid_input" role="alert">The passkey’s answer could not be read\.<\/p>/);
    assert.ok(out.includes('id="passkey-approve"'));
  });
});

describe('approval page: a batch', () => {
  const payee = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`;
  const usdc = (to: string, amount: bigint) =>
    transaction({ to: USDC, value: '0', data: encodeFunctionData({ abi: erc20, functionName: 'transfer', args: [to as Address, amount] }) });

  it('shows the totals per asset (in the token’s unit when the operator’s list knows it), every item with its recipient and amount, and the items’ warnings', () => {
    const items = [
      { keyIndex: 0, ...transaction({ to: payee(1), value: '1500000000000000000' }) },
      { keyIndex: 0, ...transaction({ to: payee(2), value: '2000000000000000000' }) },
      { keyIndex: 1, ...usdc(payee(3), 12_000_000_000n) },
      { keyIndex: 1, ...usdc(payee(4), 500_000n) },
      { keyIndex: 2, ...prepareAuthorization({ chainId: 8453, address: SPENDER, nonce: 1 }).summarize(FROM) },
    ];
    const batch = summarizeBatch(items.map(({ keyIndex, summary, summaryText }) => ({ keyIndex, summary, summaryText })));
    const tokens = parseTokenList([{ chainId: 8453, address: USDC, symbol: 'USDC', decimals: 6 }]);
    const out = visibleText(render(pageOf(batch, { keyIndex: null }), tokens));
    assert.match(out, /Approve a batch of 5 operations/);
    assert.match(out, /Total ETH sent on Base \(chain 8453\) 3\.5 ETH \(3500000000000000000 wei\)/);
    assert.match(out, /Total of a token sent on Base \(chain 8453\) 12,?000\.5 USDC \(12000500000 base units\) of USDC/);
    assert.match(out, /Recipients 4 /);
    for (let n = 1; n <= 5; n++) assert.match(out, new RegExp(`Item ${n} of 5`));
    for (const n of [1, 2, 3, 4]) assert.ok(out.toLowerCase().includes(payee(n)), `recipient ${n} shown`);
    assert.match(out, /Send 1\.5 ETH/);
    assert.match(out, /Token amount 12,?000 USDC \(12000000000 base units\)/);
    assert.match(out, /Token amount 0\.5 USDC \(500000 base units\)/);
    assert.match(out, /Item 5: Delegation: the contract 0x3535353535353535353535353535353535353535 will control this account/);
    assert.ok(!/<dt>Key index<\/dt><dd>null/.test(out), 'no key index of the batch itself');
    assert.match(out, /Approve/);
  });

  it('a summary that does not hold together (an item missing) is not laid out: the page warns and shows the kernel’s text apart', () => {
    const one = transaction({ to: payee(1), value: '1' });
    const batch = summarizeBatch([{ keyIndex: 0, ...one }]);
    const broken = { ...batch, summary: { ...batch.summary, count: 2 } };
    const out = visibleText(render(pageOf(broken, { keyIndex: null })));
    assert.match(out, /Custos cannot lay this operation out in detail/);
  });
});

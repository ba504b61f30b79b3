import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Contract, JsonRpcProvider, parseEther as ethersParseEther } from 'ethers';
import {
  type Address,
  concatHex,
  createPublicClient,
  createWalletClient,
  type Hex,
  http,
  type LocalAccount,
  parseAbi,
  parseEther,
  type PublicClient,
  toHex,
  verifyMessage,
  verifyTypedData,
} from 'viem';
import { foundry } from 'viem/chains';
import { type CustosClient, createCustosClient } from './client.js';
import { CustosApiError } from './errors.js';
import { CustosSigner } from './ethers.js';
import { Accounts } from './fortanix.js';
import type { CodeRequest } from './resolveCode.js';
import { erc20InitCode } from './testing/minimalErc20.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { totpFromUri, UNCOUNTABLE_PRESENT } from './testing/serverTesting.js';
import { type Anvil, startAnvil } from '@custos/server/testing';
import type { SignTransactionResult } from './types.js';
import { CustosViemError, custosAccount } from './viem.js';

/**
 * The SDK against a real kernel and a real Ethereum node (anvil, prague): every transaction is
 * signed by Custos for a wallet with an enrolled TOTP factor (a fresh code per signature: the code
 * callback advances the kernel's clock by one 30 s step and computes the code from the otpauth
 * URI), sent to anvil, mined with status success, and its effect on balances checked.
 */

const RECIPIENT: Address = '0x000000000000000000000000000000000000bEEF';
const SUPPLY = 10n ** 24n;
const ERC20 = parseAbi([
  'function balanceOf(address) view returns (uint256)',
  'function transfer(address to, uint256 amount) returns (bool)',
  'event Transfer(address indexed from, address indexed to, uint256 value)',
]);
const MAIL = {
  domain: { name: 'Ether Mail', version: '1', chainId: 31337, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    Person: [
      { name: 'name', type: 'string' },
      { name: 'wallet', type: 'address' },
    ],
    Mail: [
      { name: 'from', type: 'Person' },
      { name: 'to', type: 'Person' },
      { name: 'contents', type: 'string' },
      { name: 'amount', type: 'uint256' },
    ],
  },
  primaryType: 'Mail',
  message: {
    from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
    to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
    contents: 'Hello, Bob!',
    amount: 12345678901234567890123n,
  },
} as const;

describe('SDK → Custos → anvil (real node)', () => {
  let anvil: Anvil | undefined;
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let client: CustosClient;
  let publicClient: PublicClient;
  /** Every sign-transaction answer, in order (the real client, recorded; nothing is stubbed). */
  const signedTransactions: SignTransactionResult[] = [];
  let recordingClient: CustosClient;

  before(async () => {
    try {
      anvil = await startAnvil();
    } catch (error) {
      if (process.env.CI === 'true') throw error;
      console.error(`\n*** SKIPPED the anvil integration tests: anvil cannot start (${String(error)}). CI fails here. ***\n`);
      return;
    }
    // the subject is the chain round trip, not the policy: a TOTP code signs deployments, typed data and 7702 here
    signer = await listenTestSigner({ policyDefaults: UNCOUNTABLE_PRESENT });
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    recordingClient = {
      ...client,
      async signTransaction(body, options) {
        const signed = await client.signTransaction(body, options);
        signedTransactions.push(signed);
        return signed;
      },
    };
    publicClient = createPublicClient({ chain: foundry, transport: http(anvil.url) });
  });
  after(async () => {
    await anvil?.stop();
    await signer?.close();
  });

  /** The otpauth URIs of the enrolled wallets (what the owner's authenticator app holds). */
  const uris = new Map<string, string>();

  /** What the owner's app shows one 30 s step later (the kernel's clock moves with it). */
  function nextCode(walletName: string): string {
    const uri = uris.get(walletName);
    assert.ok(uri !== undefined, `${walletName} is enrolled`);
    signer.clock.now += 30_000;
    return totpFromUri(uri, signer.clock.now);
  }

  /** Enrols TOTP for the wallet; returns a code callback that asks for a fresh code per signature. */
  async function enrolledCode(walletName: string, asked: CodeRequest[]): Promise<(request: CodeRequest) => Promise<string>> {
    const { otpauthUri } = await client.enrollTotp({ walletName });
    uris.set(walletName, otpauthUri);
    return async (request) => {
      asked.push(request);
      return nextCode(walletName);
    };
  }

  async function fund(address: Address): Promise<void> {
    await anvil?.rpc('anvil_setBalance', [address, toHex(parseEther('100'))]);
  }

  /** Mined, status success; returns the fee paid. */
  async function mined(hash: Hex): Promise<{ fee: bigint; contractAddress: Address | null | undefined; type: string }> {
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 20_000 });
    assert.equal(receipt.status, 'success', `${hash} reverted`);
    return { fee: receipt.gasUsed * receipt.effectiveGasPrice, contractAddress: receipt.contractAddress, type: receipt.type };
  }

  const balance = (address: Address) => publicClient.getBalance({ address });

  /** Sends (value 0), waits until mined with success, and checks that the sender paid exactly the fee. */
  async function minedPayingFee(from: Address, send: () => Promise<Hex>): Promise<Awaited<ReturnType<typeof mined>>> {
    const before = await balance(from);
    const result = await mined(await send());
    assert.equal(await balance(from), before - result.fee);
    return result;
  }

  /** The kernel decoded the ERC-20 call: token, recipient and amount in the summary and its one-line text. */
  function assertTokenSummary(signed: SignTransactionResult | undefined, token: Address, to: Address, amount: bigint): void {
    assert.ok(signed !== undefined);
    const action = signed.summary.action as { kind?: unknown; token?: unknown; recipient?: unknown; amount?: unknown } | undefined;
    assert.equal(action?.kind, 'erc20Transfer', signed.summaryText);
    assert.equal(String(action?.recipient).toLowerCase(), to.toLowerCase());
    assert.equal(String(action?.token).toLowerCase(), token.toLowerCase());
    assert.equal(action?.amount, amount.toString());
    assert.ok(signed.summaryText.toLowerCase().includes(to.toLowerCase()), `the text names the recipient: ${signed.summaryText}`);
    assert.ok(signed.summaryText.includes(amount.toString()), `the text shows the amount: ${signed.summaryText}`);
  }

  describe('viem: custosAccount with a wallet client', () => {
    let account: LocalAccount;
    const asked: CodeRequest[] = [];
    let token: Address;

    before(async () => {
      if (anvil === undefined) return;
      account = await custosAccount(recordingClient, { walletName: 'viem-owner', keyIndex: 0, code: await enrolledCode('viem-owner', asked) });
      assert.equal(account.address, (await client.getKey({ walletName: 'viem-owner', keyIndex: 0 })).address);
      await fund(account.address);
    });
    const wallet = () => createWalletClient({ account, chain: foundry, transport: http(anvil?.url) });

    async function transfer(request: Record<string, unknown>, expectedType: string): Promise<void> {
      const before = { from: await balance(account.address), to: await balance(RECIPIENT) };
      const value = parseEther('1');
      const hash = await wallet().sendTransaction({ to: RECIPIENT, value, ...request } as never);
      const { fee, type } = await mined(hash);
      assert.equal(type, expectedType);
      assert.equal(await balance(RECIPIENT), before.to + value);
      assert.equal(await balance(account.address), before.from - value - fee);
    }

    it('EIP-1559 transfer', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({}, 'eip1559');
      assert.equal(asked.at(-1)?.operation, 'transaction');
    });

    it('legacy EIP-155 transfer (chainId in v)', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({ type: 'legacy' }, 'legacy');
      const tx = await publicClient.getTransaction({ hash: signedTransactions.at(-1)?.transactionHash as Hex });
      assert.equal(tx.chainId, 31337);
      assert.ok(tx.v === 31337n * 2n + 35n || tx.v === 31337n * 2n + 36n, `v = ${tx.v}`);
    });

    it('EIP-2930 transfer with an access list', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({ type: 'eip2930', accessList: [{ address: RECIPIENT, storageKeys: [`0x${'00'.repeat(32)}`] }] }, 'eip2930');
    });

    it('ERC-20: deploy, then transfer; the sign summary shows the token amount and recipient', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const deployed = await minedPayingFee(account.address, () => wallet().sendTransaction({ data: erc20InitCode(SUPPLY) } as never));
      assert.ok(deployed.contractAddress);
      token = deployed.contractAddress;
      assert.equal(await publicClient.readContract({ address: token, abi: ERC20, functionName: 'balanceOf', args: [account.address] }), SUPPLY);
      const amount = 1234567n;
      const ethBefore = await balance(account.address);
      const { fee } = await mined(
        await wallet().writeContract({ address: token, abi: ERC20, functionName: 'transfer', args: [RECIPIENT, amount], chain: foundry }),
      );
      assertTokenSummary(signedTransactions.at(-1), token, RECIPIENT, amount);
      assert.equal(await publicClient.readContract({ address: token, abi: ERC20, functionName: 'balanceOf', args: [RECIPIENT] }), amount);
      assert.equal(await publicClient.readContract({ address: token, abi: ERC20, functionName: 'balanceOf', args: [account.address] }), SUPPLY - amount);
      assert.equal(await balance(account.address), ethBefore - fee);
    });

    it('signMessage and signTypedData verify with viem', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const text = 'Replace a private key with Custos';
      assert.ok(await verifyMessage({ address: account.address, message: text, signature: await wallet().signMessage({ message: text }) }));
      const raw = { raw: '0xdeadbeef' as Hex };
      assert.ok(await verifyMessage({ address: account.address, message: raw, signature: await wallet().signMessage({ message: raw }) }));
      const signature = await wallet().signTypedData(MAIL);
      assert.ok(await verifyTypedData({ address: account.address, ...MAIL, signature }));
      assert.deepEqual(
        asked.slice(-3).map((r) => r.operation),
        ['message', 'message', 'typedData'],
      );
    });

    it('EIP-7702: the authorization is signed by Custos, a type-4 transaction delegates the account', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      assert.ok(token, 'the ERC-20 test deployed the delegate');
      const authorization = await wallet().signAuthorization({ account, contractAddress: token, executor: 'self' });
      assert.equal(asked.at(-1)?.operation, 'authorization');
      const { type } = await minedPayingFee(account.address, () =>
        wallet().sendTransaction({ authorizationList: [authorization], to: RECIPIENT, value: 0n } as never),
      );
      assert.equal(type, 'eip7702');
      assert.equal(await publicClient.getCode({ address: account.address }), concatHex(['0xef0100', token.toLowerCase() as Hex]));
    });

    it('a code is good for one signature: the same code again is code_reused; no code is code_required', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const code = nextCode('viem-owner');
      const fixed = await custosAccount(client, { walletName: 'viem-owner', keyIndex: 0, code });
      const signature = await fixed.signMessage({ message: 'first' });
      assert.ok(await verifyMessage({ address: account.address, message: 'first', signature }));
      await assert.rejects(
        fixed.signMessage({ message: 'second' }),
        (e: unknown) => e instanceof CustosViemError && e.code === 'code_reused' && e.cause instanceof CustosApiError && e.cause.status === 403,
      );
      const none = await custosAccount(client, { walletName: 'viem-owner', keyIndex: 0 });
      await assert.rejects(none.signMessage({ message: 'third' }), (e: unknown) => e instanceof CustosViemError && e.code === 'code_required');
    });
  });

  describe('ethers: CustosSigner with a JsonRpcProvider', () => {
    let provider: JsonRpcProvider;
    let ethersSigner: CustosSigner;
    let address: Address;
    const asked: CodeRequest[] = [];
    let token: Address;

    before(async () => {
      if (anvil === undefined) return;
      provider = new JsonRpcProvider(anvil.url, 31337, { staticNetwork: true, polling: true, pollingInterval: 50, cacheTimeout: -1 });
      ethersSigner = new CustosSigner(recordingClient, { walletName: 'ethers-owner', keyIndex: 2, code: await enrolledCode('ethers-owner', asked) }, provider);
      address = (await ethersSigner.getAddress()) as Address;
      assert.equal(address, (await client.getKey({ walletName: 'ethers-owner', keyIndex: 2 })).address);
      await fund(address);
    });
    after(() => provider?.destroy());

    async function transfer(request: Record<string, unknown>, expectedType: string): Promise<void> {
      const before = { from: await balance(address), to: await balance(RECIPIENT) };
      const value = ethersParseEther('0.5');
      const sent = await ethersSigner.sendTransaction({ to: RECIPIENT, value, ...request });
      const { fee, type } = await mined(sent.hash as Hex);
      assert.equal(type, expectedType);
      assert.equal(await balance(RECIPIENT), before.to + value);
      assert.equal(await balance(address), before.from - value - fee);
    }

    it('EIP-1559 transfer (populated through the provider)', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({}, 'eip1559');
      assert.equal(asked.at(-1)?.operation, 'transaction');
    });

    it('legacy EIP-155 transfer', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({ type: 0, gasPrice: (await provider.getFeeData()).gasPrice }, 'legacy');
      const tx = await publicClient.getTransaction({ hash: signedTransactions.at(-1)?.transactionHash as Hex });
      assert.equal(tx.chainId, 31337);
    });

    it('EIP-2930 transfer with an access list', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      await transfer({ type: 1, accessList: [{ address: RECIPIENT, storageKeys: [`0x${'00'.repeat(32)}`] }] }, 'eip2930');
    });

    it('ERC-20: deploy, then transfer through a Contract; the sign summary shows the token amount and recipient', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const deployed = await minedPayingFee(address, async () => (await ethersSigner.sendTransaction({ data: erc20InitCode(SUPPLY) })).hash as Hex);
      assert.ok(deployed.contractAddress);
      token = deployed.contractAddress;
      const contract = new Contract(
        token,
        ['function balanceOf(address) view returns (uint256)', 'function transfer(address to, uint256 amount) returns (bool)'],
        ethersSigner,
      );
      assert.equal(await contract.getFunction('balanceOf')(address), SUPPLY);
      const amount = 7654321n;
      const ethBefore = await balance(address);
      const sent = await contract.getFunction('transfer')(RECIPIENT, amount);
      const { fee } = await mined(sent.hash as Hex);
      assertTokenSummary(signedTransactions.at(-1), token, RECIPIENT, amount);
      assert.equal(await contract.getFunction('balanceOf')(RECIPIENT), amount);
      assert.equal(await contract.getFunction('balanceOf')(address), SUPPLY - amount);
      assert.equal(await balance(address), ethBefore - fee);
    });

    it('signMessage and signTypedData verify with viem', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const text = 'Replace a private key with Custos';
      assert.ok(await verifyMessage({ address, message: text, signature: (await ethersSigner.signMessage(text)) as Hex }));
      const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
      assert.ok(await verifyMessage({ address, message: { raw: bytes }, signature: (await ethersSigner.signMessage(bytes)) as Hex }));
      const signature = (await ethersSigner.signTypedData(
        { ...MAIL.domain },
        { Person: [...MAIL.types.Person], Mail: [...MAIL.types.Mail] },
        MAIL.message,
      )) as Hex;
      assert.ok(await verifyTypedData({ address, ...MAIL, signature }));
    });

    it('EIP-7702: authorize through Custos, a type-4 transaction delegates the account', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      assert.ok(token, 'the ERC-20 test deployed the delegate');
      const authorization = await ethersSigner.authorize({ address: token, nonce: (await ethersSigner.getNonce()) + 1 });
      assert.equal(asked.at(-1)?.operation, 'authorization');
      const { type } = await minedPayingFee(
        address,
        async () => (await ethersSigner.sendTransaction({ type: 4, to: RECIPIENT, value: 0n, authorizationList: [authorization] })).hash as Hex,
      );
      assert.equal(type, 'eip7702');
      assert.equal(await publicClient.getCode({ address }), concatHex(['0xef0100', token.toLowerCase() as Hex]));
    });
  });

  describe('fortanix Accounts (compatibility API) with a provider', () => {
    it('signTransaction fills chainId, nonce and fees from the node; the transactions are mined and move the balance', async (t) => {
      if (anvil === undefined) return t.skip('no anvil');
      const accounts = new Accounts({ signerUrl: `${signer.url}/sys/`, signerId: signer.signerId, apiKey: signer.apiKey, providerUrl: anvil.url });
      const reg = await accounts.register2fa('compat-owner');
      uris.set('compat-owner', reg.url);
      const from = await accounts.getAddress('compat-owner', 0);
      await fund(from);
      for (const [request, expectedType] of [
        [{}, 'eip1559'],
        [{ gasPrice: (await publicClient.getGasPrice()).toString() }, 'legacy'],
      ] as const) {
        const before = { from: await balance(from), to: await balance(RECIPIENT) };
        const value = parseEther('0.25');
        const signed = await accounts.signTransaction(
          { from, to: RECIPIENT, value: value.toString(), gas: 21000, ...request },
          'compat-owner',
          0,
          nextCode('compat-owner'),
        );
        assert.equal(await accounts.recoverTransaction(signed.rawTransaction), from);
        const hash = (await anvil.rpc<Hex>('eth_sendRawTransaction', [signed.rawTransaction])) as Hex;
        assert.equal(hash, signed.transactionHash);
        const { fee, type } = await mined(hash);
        assert.equal(type, expectedType);
        assert.equal(await balance(RECIPIENT), before.to + value);
        assert.equal(await balance(from), before.from - value - fee);
      }
    });
  });
});

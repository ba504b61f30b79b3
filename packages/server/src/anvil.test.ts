import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createTestSigner, type TestSigner } from './testing/createTestSigner.js';
import { ANVIL_BIN, type Anvil, startAnvil } from './testing/startAnvil.js';

/**
 * A real local Ethereum node (anvil) accepts what Custos signs: legacy (EIP-155), EIP-2930,
 * EIP-1559 transactions, a contract deployment at the address the summary announced, and an
 * EIP-7702 delegation made of a Custos-signed authorization inside a Custos-signed type-4
 * transaction. Without the anvil binary the suite is skipped with a notice, and fails under CI.
 */

type Hex = `0x${string}`;
const CHAIN_ID = 31337;
const GWEI = 1_000_000_000n;
/** Init code of a contract whose runtime code returns 42 for any call (10 bytes of runtime). */
const INIT_CODE = '0x600a600c600039600a6000f3602a60005260206000f3';
const present = existsSync(ANVIL_BIN);
if (!present && process.env.CI === 'true') throw new Error(`anvil is missing at ${ANVIL_BIN}: CI needs it`);
if (!present) console.error(`NOTICE: anvil not found at ${ANVIL_BIN}; the anvil tests are skipped`);

describe('a real node (anvil) accepts the transactions Custos signs', { skip: !present }, () => {
  let signer: TestSigner;
  let anvil: Anvil;
  const rpc = <T = unknown>(method: string, params: unknown[] = []): Promise<T> => anvil.rpc<T>(method, params);

  before(async () => {
    signer = await createTestSigner();
    anvil = await startAnvil({ chainId: CHAIN_ID });
  });

  after(async () => {
    await anvil?.stop();
    await signer?.close();
  });

  const addressOf = async (walletName: string): Promise<Hex> => {
    const res = await signer.app.inject({ method: 'GET', url: `/v1/keys?walletName=${walletName}&keyIndex=0`, headers: signer.auth() });
    return res.json().address;
  };
  const sign = async (walletName: string, path: string, body: Record<string, unknown>) => {
    const res = await signer.app.inject({ method: 'POST', url: `/v1/sign/${path}`, headers: signer.auth(), payload: { walletName, keyIndex: 0, ...body } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** Sends a signed transaction; anvil mines it at once. Returns its receipt, checked successful. */
  const send = async (signed: { serializedTransaction: Hex; transactionHash: Hex }) => {
    const hash = await rpc<Hex>('eth_sendRawTransaction', [signed.serializedTransaction]);
    assert.equal(hash, signed.transactionHash);
    // anvil mines on arrival; the receipt may take a moment to be served
    const deadline = Date.now() + 10_000;
    for (;;) {
      const receipt = await rpc<{ status: Hex; contractAddress: Hex | null; from: Hex } | null>('eth_getTransactionReceipt', [hash]);
      if (receipt !== null) {
        assert.equal(receipt.status, '0x1');
        return receipt;
      }
      assert.ok(Date.now() < deadline, `no receipt for ${hash}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('legacy, EIP-2930 and EIP-1559 transfers and a deployment are mined from the wallet’s address', async () => {
    const from = await addressOf('alice');
    const to = await addressOf('bob');
    await rpc('anvil_setBalance', [from, `0x${(10n ** 20n).toString(16)}`]);
    const common = { chainId: CHAIN_ID, to, value: '1000000000000000', gas: '21000' };
    const txs = [
      { type: 'legacy', nonce: 0, gasPrice: (10n * GWEI).toString(), ...common },
      { type: 'eip2930', nonce: 1, gasPrice: (10n * GWEI).toString(), accessList: [], ...common, gas: '30000' },
      { type: 'eip1559', nonce: 2, maxFeePerGas: (10n * GWEI).toString(), maxPriorityFeePerGas: GWEI.toString(), ...common },
    ];
    for (const transaction of txs) {
      const receipt = await send(await sign('alice', 'transaction', { transaction }));
      assert.equal(receipt.from.toLowerCase(), from.toLowerCase(), transaction.type);
    }
    assert.equal(BigInt(await rpc<Hex>('eth_getBalance', [to, 'latest'])), 3n * 10n ** 15n);

    const deploy = await sign('alice', 'transaction', {
      transaction: {
        type: 'eip1559',
        chainId: CHAIN_ID,
        nonce: 3,
        data: INIT_CODE,
        gas: '100000',
        maxFeePerGas: (10n * GWEI).toString(),
        maxPriorityFeePerGas: GWEI.toString(),
      },
    });
    assert.equal(deploy.summary.action.kind, 'deployment');
    const receipt = await send(deploy);
    assert.equal(receipt.contractAddress?.toLowerCase(), deploy.summary.action.contractAddress.toLowerCase(), 'the summary announced the contract’s address');
    assert.equal(await rpc('eth_call', [{ to: receipt.contractAddress, data: '0x' }, 'latest']), `0x${'2a'.padStart(64, '0')}`);
  });

  it('EIP-7702: a Custos-signed authorization in a Custos-signed type-4 transaction delegates the account', async () => {
    const sponsor = await addressOf('sponsor');
    const authority = await addressOf('delegator');
    await rpc('anvil_setBalance', [sponsor, `0x${(10n ** 20n).toString(16)}`]);
    const delegate = '0x000000000000000000000000000000000000cafe';
    const { authorization, summary } = await sign('delegator', 'authorization', { authorization: { chainId: CHAIN_ID, address: delegate, nonce: 0 } });
    assert.equal(summary.warning, `delegate: 0x000000000000000000000000000000000000cafE — this contract will control the account`);
    const tx = await sign('sponsor', 'transaction', {
      transaction: {
        type: 'eip7702',
        chainId: CHAIN_ID,
        nonce: 0,
        to: authority,
        gas: '100000',
        maxFeePerGas: (10n * GWEI).toString(),
        maxPriorityFeePerGas: GWEI.toString(),
        authorizationList: [authorization],
      },
    });
    assert.equal(tx.summary.authorizations[0].authority, authority);
    await send(tx);
    // EIP-7702: the authority's code is now the delegation designator 0xef0100 ‖ delegate
    assert.equal(await rpc('eth_getCode', [authority, 'latest']), `0xef0100${delegate.slice(2)}`);
  });
});

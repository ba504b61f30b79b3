// Send 0.01 ETH from a Custos-held key with viem. Env: CUSTOS_URL, CUSTOS_API_KEY, RPC_URL.
import { createInterface } from 'node:readline/promises';
import { createCustosClient } from '@custos/sdk';
import { custosAccount } from '@custos/sdk/viem';
import { createWalletClient, http, parseEther, publicActions } from 'viem';
import { foundry } from 'viem/chains'; // your chain: mainnet, base, …

const custos = createCustosClient({ url: process.env.CUSTOS_URL, apiKey: process.env.CUSTOS_API_KEY });

// Was: const account = privateKeyToAccount(process.env.PRIVATE_KEY)
const account = await custosAccount(custos, {
  walletName: 'alice',
  keyIndex: 0,
  // Asked once per signature: the wallet owner reads it from their authenticator app.
  code: async ({ operation }) => {
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return (await prompt.question(`Code from alice's authenticator app to approve this ${operation}: `)).trim();
    } finally {
      prompt.close();
    }
  },
});

const wallet = createWalletClient({ account, chain: foundry, transport: http(process.env.RPC_URL) }).extend(publicActions);
const hash = await wallet.sendTransaction({ to: '0x000000000000000000000000000000000000bEEF', value: parseEther('0.01') });
const receipt = await wallet.waitForTransactionReceipt({ hash });
console.log(`sent ${hash} from ${account.address}: ${receipt.status}`);

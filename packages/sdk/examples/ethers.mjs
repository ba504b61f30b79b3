// Send 0.01 ETH from a Custos-held key with ethers v6. Env: CUSTOS_URL, CUSTOS_API_KEY, RPC_URL.
import { createInterface } from 'node:readline/promises';
import { createCustosClient } from '@custos/sdk';
import { CustosSigner } from '@custos/sdk/ethers';
import { JsonRpcProvider, parseEther } from 'ethers';

const custos = createCustosClient({ url: process.env.CUSTOS_URL, apiKey: process.env.CUSTOS_API_KEY });
const provider = new JsonRpcProvider(process.env.RPC_URL);

// Was: const signer = new Wallet(process.env.PRIVATE_KEY, provider)
const signer = new CustosSigner(
  custos,
  {
    walletName: 'alice',
    keyIndex: 1,
    code: async ({ operation }) => {
      const prompt = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return (await prompt.question(`Code from alice's authenticator app to approve this ${operation}: `)).trim();
      } finally {
        prompt.close();
      }
    },
  },
  provider,
);

const tx = await signer.sendTransaction({ to: '0x000000000000000000000000000000000000bEEF', value: parseEther('0.01') });
const receipt = await tx.wait();
console.log(`sent ${tx.hash} from ${await signer.getAddress()}: ${receipt?.status === 1 ? 'success' : 'reverted'}`);
provider.destroy();

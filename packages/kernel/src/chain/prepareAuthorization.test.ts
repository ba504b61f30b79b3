import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recoverAuthorizationAddress } from 'viem/utils';
import { signDigest } from '../crypto/signDigest.js';
import { CustosError } from '../errors.js';
import { privateKeyToAccount } from 'viem/accounts';
import { prepareAuthorization } from './prepareAuthorization.js';

const KEY = `0x${'11'.repeat(32)}` as const;
const DELEGATE = '0x3535353535353535353535353535353535353535';

test('signs the EIP-7702 tuple exactly as viem, and the result recovers to the signer', async () => {
  const account = privateKeyToAccount(KEY);
  for (const chainId of [0, 1, 8453]) {
    const prepared = prepareAuthorization({ chainId, address: DELEGATE, nonce: 5 });
    const sig = signDigest(Buffer.from(KEY.slice(2), 'hex'), prepared.digest);
    const { authorization } = prepared.finish({ r: sig.r, s: sig.s, yParity: sig.recovery as 0 | 1 });
    const theirs = await account.signAuthorization({ chainId, address: DELEGATE, nonce: 5 });
    assert.deepEqual(authorization, { chainId, address: DELEGATE, nonce: 5, r: theirs.r, s: theirs.s, yParity: theirs.yParity });
    assert.equal(await recoverAuthorizationAddress({ authorization }), account.address);
  }
});

test('the summary says plainly that the delegate will control the account, and flags chain id 0', () => {
  const from = privateKeyToAccount(KEY).address;
  const one = prepareAuthorization({ chainId: 1, address: DELEGATE, nonce: 5 }).summarize(from);
  assert.equal(one.summary.allChains, false);
  assert.equal(one.summary.warning, `delegate: ${DELEGATE} — this contract will control the account`);
  assert.equal(
    one.summaryText,
    `EIP-7702 authorization for account ${from}: delegate: ${DELEGATE} — this contract will control the account, on Ethereum (chain 1), account nonce 5`,
  );
  const every = prepareAuthorization({ chainId: 0, address: DELEGATE, nonce: 5 }).summarize(from);
  assert.equal(every.summary.allChains, true);
  assert.match(every.summaryText, /on EVERY chain \(chainId 0: valid on all chains\)/);
  const clear = prepareAuthorization({ chainId: 1, address: '0x0000000000000000000000000000000000000000', nonce: 5 }).summarize(from);
  assert.equal(clear.summary.revokesDelegation, true);
  assert.match(clear.summaryText, /clear the delegation/);
});

test('refuses malformed authorizations, naming the field', () => {
  for (const [input, field] of [
    [{ chainId: -1, address: DELEGATE, nonce: 0 }, 'authorization.chainId'],
    [{ chainId: '1', address: DELEGATE, nonce: 0 }, 'authorization.chainId'],
    [{ chainId: 1, address: '0x35', nonce: 0 }, 'authorization.address'],
    [{ chainId: 1, address: DELEGATE }, 'authorization.nonce'],
    [{ chainId: 1, address: DELEGATE, nonce: 2 ** 64 }, 'authorization.nonce'],
    [{ chainId: 1, address: DELEGATE, nonce: 0, r: '0x01' }, 'authorization.r'],
  ] as const) {
    assert.throws(
      () => prepareAuthorization(input),
      (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === field,
      field,
    );
  }
});

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { loadVectors } from '@custos/kernel';
import { getAddress, type Hex, parseTransaction, recoverMessageAddress, verifyMessage } from 'viem';
import { privateKeyToAccount, sign } from 'viem/accounts';
import { CustosApiError, CustosInputError, CustosRequestError } from './errors.js';
import { Accounts } from './fortanix.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { recordTestSecret, totpFromUri } from './testing/serverTesting.js';

interface FortanixVector {
  walletName: string;
  keyIndex: string;
  publicKey: string;
  address: string;
}
const vectors = loadVectors<{ fortanixV1: { vectors: FortanixVector[] } }>('secp256k1-ethereum.json').fortanixV1.vectors;

describe('fortanix Accounts on the compatibility API (real kernel, fortanix-v1 derivation)', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let accounts: Accounts;
  before(async () => {
    signer = await listenTestSigner({ derivation: 'fortanix-v1' });
    accounts = new Accounts({ signerUrl: `${signer.url}/sys/`, signerId: signer.signerId, apiKey: signer.apiKey });
  });
  after(async () => {
    await signer.close();
  });

  it('getAddress returns the plugin’s addresses for the same seed, EIP-55 checksummed', async () => {
    for (const v of vectors) {
      const address = await accounts.getAddress(v.walletName, Number(v.keyIndex));
      assert.equal(address, getAddress(v.address));
    }
  });

  it('hashMessage is EIP-191 (the original’s example: "Hello World"), a hex string taken as bytes', () => {
    assert.equal(accounts.hashMessage('Hello World'), '0xa1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2');
    assert.equal(accounts.hashMessage('0x48656c6c6f20576f726c64'), '0xa1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2');
  });

  it('sign (no 2FA) → v, r, s, signature that viem verifies; recover in its three forms gives the address; both v values occur', async () => {
    const v0 = vectors[0];
    assert.ok(v0);
    const address = getAddress(v0.address);
    const vs = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const message = `message ${i}`;
      const signed = await accounts.sign(message, v0.walletName, 0);
      vs.add(signed.v);
      assert.equal(signed.message, message);
      assert.equal(signed.messageHash, accounts.hashMessage(message));
      assert.ok(await verifyMessage({ address, message, signature: signed.signature }), `signature ${i} verifies`);
      assert.equal(await recoverMessageAddress({ message, signature: signed.signature }), address);
      assert.equal(await accounts.recover(signed), address);
      assert.equal(await accounts.recover(message, signed.signature), address);
      assert.equal(await accounts.recover(signed.messageHash, signed.signature, true), address);
      assert.equal(await accounts.recover(message, signed.v, signed.r, signed.s), address);
    }
    // RFC 6979 makes these deterministic: both recovery ids are exercised, every run.
    assert.deepEqual([...vs].sort(), ['0x1b', '0x1c']);
  });

  it('signTransaction: v right whatever the case of `from` (the original compared case-sensitively); recoverTransaction gives the sender', async () => {
    const v1 = vectors[1];
    assert.ok(v1);
    const address = getAddress(v1.address);
    const parities = new Set<number>();
    for (let nonce = 0; nonce < 8; nonce++) {
      for (const from of [address, address.toLowerCase()]) {
        const legacy = await accounts.signTransaction(
          { from, to: '0xF0109fC8DF283027b6285cc889F5aA624EaC1F55', value: '1000000000', gas: 21000, gasPrice: '20000000000', nonce, chainId: 1 },
          v1.walletName,
          1,
        );
        assert.equal(await accounts.recoverTransaction(legacy.rawTransaction), address);
        const parsed = parseTransaction(legacy.rawTransaction);
        assert.equal(parsed.type, 'legacy');
        assert.equal(parsed.chainId, 1);
        assert.equal(BigInt(legacy.v), 37n + BigInt(parsed.yParity ?? Number(parsed.v) - 37));
        parities.add(Number(BigInt(legacy.v) - 37n));
        const eip1559 = await accounts.signTransaction(
          {
            from,
            to: '0xF0109fC8DF283027b6285cc889F5aA624EaC1F55',
            value: 1n,
            gas: 21000n,
            maxFeePerGas: 3_000_000_000n,
            maxPriorityFeePerGas: 1n,
            nonce,
            chainId: 1,
          },
          v1.walletName,
          1,
        );
        assert.equal(parseTransaction(eip1559.rawTransaction).type, 'eip1559');
        assert.equal(await accounts.recoverTransaction(eip1559.rawTransaction), address);
      }
    }
    assert.deepEqual([...parities].sort(), [0, 1]);
  });

  it('signTransaction refuses a `from` that is not the wallet’s key, and a transaction without gas (before any sign)', async () => {
    const v1 = vectors[1];
    assert.ok(v1);
    await assert.rejects(
      accounts.signTransaction({ from: '0x0000000000000000000000000000000000000001', gas: 21000, gasPrice: 1, nonce: 0, chainId: 1 }, v1.walletName, 1),
      (e: unknown) => e instanceof CustosInputError && e.field === 'tx.from',
    );
    await assert.rejects(
      accounts.signTransaction({ gasPrice: 1, nonce: 0, chainId: 1 }, v1.walletName, 1),
      (e: unknown) => e instanceof CustosInputError && e.field === 'tx.gas',
    );
    await assert.rejects(
      accounts.signTransaction({ gas: 21000, gasPrice: 1, nonce: 0 }, v1.walletName, 1),
      (e: unknown) => e instanceof CustosInputError && e.field === 'providerUrl',
    );
  });

  it('register2fa → the otpauth parts; with 2FA a sign needs the code, a wrong or reused code is thrown (never logged and swallowed)', async () => {
    const reg = await accounts.register2fa('erin@acme.com');
    recordTestSecret('otpauth', reg.url);
    assert.equal(reg.walletName, 'erin@acme.com');
    assert.equal(reg.period, '30');
    assert.equal(reg.digits, '6');
    assert.equal(reg.algorithm, 'SHA1');
    assert.match(reg.secret ?? '', /^[A-Z2-7]{32}$/);
    await assert.rejects(accounts.register2fa('erin@acme.com'), { name: 'CustosApiError', code: 'already_enrolled', status: 409 });

    await assert.rejects(accounts.sign('pay', 'erin@acme.com', 0), { name: 'CustosApiError', code: 'code_required' });
    const good = totpFromUri(reg.url, signer.clock.now);
    const wrong = good === '000000' ? '000001' : '000000';
    await assert.rejects(accounts.sign('pay', 'erin@acme.com', 0, wrong), { name: 'CustosApiError', code: 'code_invalid' });
    const signed = await accounts.sign('pay', 'erin@acme.com', 0, Number(good) === 0 ? good : Number(good));
    assert.equal(await accounts.recover(signed), await accounts.getAddress('erin@acme.com', 0));
    await assert.rejects(accounts.sign('pay again', 'erin@acme.com', 0, good), { name: 'CustosApiError', code: 'code_reused' });
  });

  it('the API key and the session token are not in the object’s JSON or inspection', async () => {
    await accounts.getAddress('x', 0);
    assert.ok(!JSON.stringify(accounts).includes(signer.apiKey));
    assert.ok(!inspect(accounts, { depth: 5, showHidden: true }).includes(signer.apiKey));
    assert.ok(!inspect(accounts, { depth: 5, showHidden: true }).includes('access'));
  });

  it('a wrong API key or signerId is thrown as CustosApiError (unauthorized, signer_not_found)', async () => {
    const badKey = new Accounts({ signerUrl: `${signer.url}/sys/`, signerId: signer.signerId, apiKey: `${signer.apiKey.slice(0, -2)}zz` });
    await assert.rejects(badKey.getAddress('x', 0), (e: unknown) => e instanceof CustosApiError && e.code === 'unauthorized' && e.status === 401);
    const badId = new Accounts({ signerUrl: `${signer.url}/sys`, signerId: '00000000-0000-4000-8000-000000000000', apiKey: signer.apiKey });
    await assert.rejects(badId.sign('x', 'x', 0), { name: 'CustosApiError', code: 'signer_not_found', status: 404 });
  });

  it('new Accounts(providerUrl) reads signerUrl, signerId, signerAccessToken from the environment, as the original', async () => {
    const saved = { ...process.env };
    try {
      process.env.signerUrl = `${signer.url}/sys/`;
      process.env.signerId = signer.signerId;
      process.env.signerAccessToken = signer.apiKey;
      const fromEnv = new Accounts('http://127.0.0.1:1');
      const v0 = vectors[0];
      assert.ok(v0);
      assert.equal(await fromEnv.getAddress(v0.walletName, 0), getAddress(v0.address));
      delete process.env.signerAccessToken;
      assert.throws(
        () => new Accounts('http://127.0.0.1:1'),
        (e: unknown) => e instanceof CustosInputError && e.field === 'apiKey',
      );
    } finally {
      for (const k of ['signerUrl', 'signerId', 'signerAccessToken']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

/**
 * A stub of the compatibility API on node:http: the behaviour under test is the SDK's checks of an
 * answer, and a real kernel cannot be made to sign with another wallet's key on demand.
 */
describe('fortanix Accounts against a local stub server: foreign keys and redirects are refused', () => {
  const WALLET_KEY = `0x${'11'.repeat(32)}` as const;
  const FOREIGN_KEY = `0x${'22'.repeat(32)}` as const;
  const compressed = (privateKey: Hex) => {
    const hex = privateKeyToAccount(privateKey).publicKey.slice(2);
    return `${Number.parseInt(hex.slice(-1), 16) % 2 === 0 ? '02' : '03'}${hex.slice(2, 66)}`;
  };
  let server: Server;
  let base: string;
  let signingKey: Hex = WALLET_KEY;
  let redirectSign = false;
  let badAddress = false;
  let pluginAnswer: ((res: ServerResponse) => void) | undefined;
  const hits: string[] = [];
  const codes: unknown[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        text += chunk;
      });
      req.on('end', async () => {
        const reply = (body: unknown) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const path = (req.url ?? '').split('?')[0] ?? '';
        if (path === '/sys/v1/session/auth') return reply({ access_token: 'session', expires_in: 3600 });
        if (path === '/v1/keys') {
          hits.push('keys');
          return reply({ publicKey: compressed(WALLET_KEY), address: badAddress ? '0x1234' : privateKeyToAccount(WALLET_KEY).address.toLowerCase() });
        }
        if (path === '/captured') {
          hits.push('captured');
          return reply({ r: '00', s: '00', xpub: '00' });
        }
        const op = JSON.parse(text) as { operation: string; msgHash: string; code?: unknown };
        if (op.operation === 'sign') codes.push(op.code);
        hits.push(op.operation);
        if (pluginAnswer !== undefined) return pluginAnswer(res);
        if (redirectSign && op.operation === 'sign') {
          res.writeHead(307, { location: '/captured' });
          return res.end();
        }
        if (op.operation === 'getPubKey') return reply({ xpub: compressed(WALLET_KEY) });
        // Signs with whichever key the test chose, and returns that key's xpub with it.
        const { r, s } = await sign({ hash: `0x${op.msgHash}`, privateKey: signingKey });
        return reply({ r: r.slice(2), s: s.slice(2), xpub: compressed(signingKey) });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const refusedAsForeign = (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'xpub';
  const TX = { to: '0xF0109fC8DF283027b6285cc889F5aA624EaC1F55', value: 1n, gas: 21000n, gasPrice: 1n, nonce: 0, chainId: 1 };

  it('the wallet’s own signature passes (the stub is right); its key is fetched once per (walletName, keyIndex)', async () => {
    signingKey = WALLET_KEY;
    hits.length = 0;
    const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
    const wallet = privateKeyToAccount(WALLET_KEY).address;
    const signed = await accounts.sign('hello', 'w', 0);
    assert.equal(await recoverMessageAddress({ message: 'hello', signature: signed.signature }), wallet);
    const tx = await accounts.signTransaction(TX, 'w', 0);
    assert.equal(await accounts.recoverTransaction(tx.rawTransaction), wallet);
    assert.equal(await accounts.getAddress('w', 0), wallet);
    assert.deepEqual(hits.sort(), ['getPubKey', 'keys', 'sign', 'sign']);
  });

  it('sign and signTransaction refuse a valid signature by another key returned with that key’s xpub', async () => {
    signingKey = FOREIGN_KEY;
    const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
    await assert.rejects(accounts.sign('hello', 'w', 0), refusedAsForeign);
    await assert.rejects(accounts.signTransaction(TX, 'w', 0), refusedAsForeign);
  });

  it('a redirect is not followed: the sign (and its code) is not sent on', async () => {
    signingKey = WALLET_KEY;
    redirectSign = true;
    hits.length = 0;
    try {
      const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
      await assert.rejects(accounts.sign('hello', 'w', 0, '123456'), (e: unknown) => e instanceof CustosRequestError && e.mayHaveReachedServer);
      assert.deepEqual(hits.sort(), ['getPubKey', 'keys', 'sign']);
    } finally {
      redirectSign = false;
    }
  });

  it('error answers are mapped as the client maps them: the API’s body → CustosApiError, anything else (even `null`) → bad_response', async () => {
    const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
    try {
      for (const [status, text, expected] of [
        [
          429,
          '{"error":{"code":"factor_throttled","message":"locked","details":{"retryAfterSeconds":7}}}',
          { name: 'CustosApiError', code: 'factor_throttled', retryAfter: 7 },
        ],
        [500, 'null', { name: 'CustosRequestError', reason: 'bad_response', message: '/sys/v1/plugins/sid: HTTP 500 without an API error body' }],
        [502, '<html>Bad Gateway</html>', { name: 'CustosRequestError', reason: 'bad_response' }],
      ] as const) {
        pluginAnswer = (res) => {
          res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '7' });
          res.end(text);
        };
        await assert.rejects(accounts.register2fa('w'), expected, text);
      }
    } finally {
      pluginAnswer = undefined;
    }
  });

  it('a TOTP code given as a number is padded to 6 digits; a string is sent as typed; a number that is not digits is refused before any request', async () => {
    signingKey = WALLET_KEY;
    codes.length = 0;
    const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
    await accounts.sign('a', 'w', 0, 1234);
    await accounts.sign('b', 'w', 0, '12345');
    await accounts.sign('c', 'w', 0, '00123456');
    await accounts.sign('d', 'w', 0);
    assert.deepEqual(codes, ['001234', '12345', '00123456', undefined]);
    for (const bad of [1.5, -1, Number.NaN, 2 ** 60]) {
      await assert.rejects(accounts.sign('e', 'w', 0, bad), (e: unknown) => e instanceof CustosInputError && e.field === 'totpCode', String(bad));
    }
    assert.equal(codes.length, 4);
  });

  it('an address from /v1/keys that is not one is bad_response (not a crash), and is not cached', async () => {
    const accounts = new Accounts({ signerUrl: `${base}/sys/`, signerId: 'sid', apiKey: 'k' });
    badAddress = true;
    try {
      await assert.rejects(
        accounts.getAddress('w', 0),
        (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'address',
      );
    } finally {
      badAddress = false;
    }
    assert.equal(await accounts.getAddress('w', 0), privateKeyToAccount(WALLET_KEY).address);
  });
});

import {
  getAddress,
  type Hex,
  hashMessage as viemHashMessage,
  isAddress,
  isAddressEqual,
  isHex,
  keccak256,
  parseSignature,
  parseTransaction,
  recoverAddress,
  recoverPublicKey,
  recoverTransactionAddress,
  serializeSignature,
  serializeTransaction,
  type TransactionSerializable,
} from 'viem';
import { CustosInputError, CustosRequestError, toApiError, unexpectedAnswer } from './errors.js';
import type { Address } from './types.js';

/** How many wallet keys an Accounts keeps (a backend may serve millions of wallets). */
const WALLET_KEY_CACHE = 10_000;

/** Where the signer is: what the TOTP ETH Signer's SDK read from `.env`. */
export interface AccountsOptions {
  /** The compatibility base URL, ending in `/sys/` (e.g. `http://127.0.0.1:8420/sys/`). */
  signerUrl: string;
  /** The signerId (`GET /v1/sys/status`, printed by `npm start`). */
  signerId: string;
  /** A Custos API key (was `signerAccessToken`, the DSM app API key). */
  apiKey: string;
  /** JSON-RPC URL of an Ethereum node, used only to fill chainId, nonce and fees in signTransaction. */
  providerUrl?: string | undefined;
  timeoutMs?: number | undefined;
}

export interface Register2faResult {
  url: string;
  secret: string | null;
  issuer: string | null;
  period: string | null;
  digits: string | null;
  algorithm: string | null;
  walletName: string;
}

export interface SignResult {
  message: string;
  messageHash: Hex;
  v: Hex;
  r: Hex;
  s: Hex;
  signature: Hex;
}

export interface SignTransactionResult {
  messageHash: Hex;
  v: Hex;
  r: Hex;
  s: Hex;
  rawTransaction: Hex;
  transactionHash: Hex;
}

type Quantity = string | number | bigint;

/** The transaction object of the original `signTransaction` (web3 style; missing values come from the node). */
export interface AccountsTransaction {
  from?: string;
  to?: string | null;
  value?: Quantity;
  data?: string;
  input?: string;
  gas?: Quantity;
  gasLimit?: Quantity;
  gasPrice?: Quantity;
  maxFeePerGas?: Quantity;
  maxPriorityFeePerGas?: Quantity;
  nonce?: Quantity;
  chainId?: Quantity;
  type?: Quantity;
  accessList?: Array<{ address: Address; storageKeys: Hex[] }>;
}

/**
 * The method names and return shapes of the TOTP ETH Signer's Node.js SDK (Fortanix
 * `fortanix-web3-eth-accounts`, class `Accounts`) on top of the Custos compatibility API
 * (`/sys/v1/session/auth`, `/sys/v1/plugins/{signerId}`), without its faults: every failure is
 * thrown (the original logged and returned `undefined` fields), and `v` is found by recovering the
 * public key the signer returned (the original compared `tx.from` with a lower-case address, so a
 * checksummed `from` got the wrong `v` half the time). Differences are listed in the README.
 */
export class Accounts {
  readonly #options: { signerUrl: string; signerId: string; apiKey: string; providerUrl: string | undefined; timeoutMs: number };
  #session: { token: string; expiresAt: number } | undefined;
  /** The wallets' own keys by (walletName, keyIndex): a derivation never changes, so one fetch each. */
  readonly #walletKeys = new Map<string, Promise<{ publicKey: string; address: Address }>>();

  /**
   * `new Accounts({ signerUrl, signerId, apiKey, providerUrl })`, or — as the original —
   * `new Accounts(providerUrl)` with `signerUrl`, `signerId` and `signerAccessToken` read from the
   * environment once, here.
   */
  constructor(options: AccountsOptions | string | undefined) {
    const resolved: AccountsOptions =
      typeof options === 'object'
        ? options
        : {
            signerUrl: process.env.signerUrl ?? '',
            signerId: process.env.signerId ?? '',
            apiKey: process.env.signerAccessToken ?? '',
            providerUrl: options,
          };
    if (!/^https?:\/\//.test(resolved.signerUrl)) throw new CustosInputError('signerUrl', 'expected an http(s) URL ending in /sys/');
    if (resolved.signerId === '') throw new CustosInputError('signerId', 'required');
    if (resolved.apiKey === '') throw new CustosInputError('apiKey', 'required');
    this.#options = {
      signerUrl: resolved.signerUrl.endsWith('/') ? resolved.signerUrl : `${resolved.signerUrl}/`,
      signerId: resolved.signerId,
      apiKey: resolved.apiKey,
      providerUrl: resolved.providerUrl,
      timeoutMs: resolved.timeoutMs ?? 30_000,
    };
  }

  /** Enrols TOTP for the wallet; the otpauth URL and its parts. Show them to the wallet owner only. */
  async register2fa(walletName: string): Promise<Register2faResult> {
    const { url } = await this.#plugin<{ url: string }>({ operation: 'register', walletName });
    const params = new URL(url).searchParams;
    return {
      url,
      secret: params.get('secret'),
      issuer: params.get('issuer'),
      period: params.get('period'),
      digits: params.get('digits'),
      algorithm: params.get('algorithm'),
      walletName,
    };
  }

  /**
   * The EIP-55 checksummed address of (walletName, keyIndex). Read from `GET /v1/keys` next to the
   * compatibility API (same API key, scope derive): the plugin's `getPubKey` returns only the
   * compressed key, and turning it into an address needs curve arithmetic the SDK leaves to the
   * kernel. The plugin's key is checked to be the same. Cached per (walletName, keyIndex).
   */
  async getAddress(walletName: string, keyIndex: number | string): Promise<Address> {
    return (await this.#walletKey(walletName, keyIndex)).address;
  }

  /** EIP-191 personal message signature (a hex string is signed as bytes, as in web3). */
  async sign(data: string, walletName: string, keyIndex: number | string, totpCode?: string | number): Promise<SignResult> {
    const messageHash = this.hashMessage(data);
    const { r, s, yParity } = await this.#signHash(messageHash, walletName, keyIndex, totpCode);
    const v = 27 + yParity;
    return { message: data, messageHash, v: `0x${v.toString(16)}`, r, s, signature: serializeSignature({ r, s, yParity }) };
  }

  /**
   * Signs a transaction (legacy EIP-155, EIP-2930, EIP-1559); chainId, nonce and fees the
   * transaction does not give are read from `providerUrl`.
   */
  async signTransaction(tx: AccountsTransaction, walletName: string, keyIndex: number | string, totpCode?: string | number): Promise<SignTransactionResult> {
    if (typeof tx !== 'object' || tx === null) throw new CustosInputError('tx', 'No transaction object given!');
    const address = await this.getAddress(walletName, keyIndex);
    if (tx.from !== undefined && !isAddressEqual(tx.from as Address, address))
      throw new CustosInputError('tx.from', `is not the address of ${walletName}/${keyIndex} (${address})`);
    const serializable = await this.#complete(tx, address);
    const unsigned = serializeTransaction(serializable);
    const messageHash = keccak256(unsigned);
    const { r, s, yParity } = await this.#signHash(messageHash, walletName, keyIndex, totpCode);
    const rawTransaction = serializeTransaction(serializable, { r, s, yParity, v: 27n + BigInt(yParity) });
    const chainId = serializable.chainId ?? 0;
    const v = serializable.type === 'legacy' ? BigInt(chainId) * 2n + 35n + BigInt(yParity) : BigInt(yParity);
    return { messageHash, v: `0x${v.toString(16)}`, r, s, rawTransaction, transactionHash: keccak256(rawTransaction) };
  }

  /** The sender of a signed, serialized transaction (checksummed). Async, unlike the original. */
  async recoverTransaction(rawTx: string): Promise<Address> {
    if (!isHex(rawTx)) throw new CustosInputError('rawTx', 'expected 0x-hex');
    parseTransaction(rawTx);
    return recoverTransactionAddress({ serializedTransaction: rawTx as never });
  }

  /**
   * The signer of a message: `recover(signatureObject)`, `recover(message, signature, preFixed?)`
   * or `recover(message, v, r, s, preFixed?)`; `preFixed` true means `message` is already the
   * EIP-191 hash. Async, unlike the original.
   */
  async recover(
    message: string | { messageHash: string; v: string; r: string; s: string },
    signatureOrV?: string | boolean,
    rOrPreFixed?: string | boolean,
    s?: string,
    preFixed?: boolean,
  ): Promise<Address> {
    if (typeof message === 'object' && message !== null) {
      const signature = serializeSignature({ r: message.r as Hex, s: message.s as Hex, v: BigInt(message.v) });
      return this.recover(message.messageHash, signature, true);
    }
    if (typeof message !== 'string') throw new CustosInputError('message', 'expected a string or a signature object');
    let signature: Hex;
    let hashed: boolean;
    if (typeof rOrPreFixed === 'string') {
      if (typeof signatureOrV !== 'string' || s === undefined) throw new CustosInputError('signature', 'expected message, v, r, s');
      signature = serializeSignature({ r: rOrPreFixed as Hex, s: s as Hex, v: BigInt(signatureOrV) });
      hashed = preFixed === true;
    } else {
      if (typeof signatureOrV !== 'string' || !isHex(signatureOrV)) throw new CustosInputError('signature', 'expected a 65-byte 0x-hex signature');
      signature = signatureOrV;
      hashed = rOrPreFixed === true;
    }
    const hash = hashed ? (message as Hex) : this.hashMessage(message);
    if (!isHex(hash) || hash.length !== 66) throw new CustosInputError('messageHash', 'expected 32 bytes of 0x-hex');
    parseSignature(signature);
    return recoverAddress({ hash, signature });
  }

  /** EIP-191: keccak256("\x19Ethereum Signed Message:\n" + len + message); a 0x-hex string is taken as bytes. */
  hashMessage(data: string): Hex {
    return viemHashMessage(isHex(data) ? { raw: data } : data);
  }

  /**
   * The wallet's public key (compressed, lower-case hex, no 0x) and address, from the plugin's
   * `getPubKey` and `/v1/keys`, which must agree. Cached (a rejection is not: the next call asks
   * again), at most WALLET_KEY_CACHE entries, the oldest dropped first.
   */
  #walletKey(walletName: string, keyIndex: number | string): Promise<{ publicKey: string; address: Address }> {
    const id = JSON.stringify([walletName, String(keyIndex)]);
    const cached = this.#walletKeys.get(id);
    if (cached !== undefined) return cached;
    const fetched = (async () => {
      const [{ xpub }, key] = await Promise.all([
        this.#plugin<{ xpub: string }>({ operation: 'getPubKey', walletName, keyIndex: String(keyIndex) }),
        this.#native<{ publicKey: string; address: Address }>(`v1/keys?${new URLSearchParams({ walletName, keyIndex: String(keyIndex) }).toString()}`),
      ]);
      if (typeof xpub !== 'string' || typeof key.publicKey !== 'string' || key.publicKey.toLowerCase() !== xpub.toLowerCase())
        throw unexpectedAnswer('xpub', 'getPubKey and /v1/keys disagree on the public key');
      if (typeof key.address !== 'string' || !isAddress(key.address, { strict: false })) throw unexpectedAnswer('address', 'not an Ethereum address');
      return { publicKey: xpub.toLowerCase(), address: getAddress(key.address) };
    })();
    this.#walletKeys.set(id, fetched);
    if (this.#walletKeys.size > WALLET_KEY_CACHE) {
      const oldest = this.#walletKeys.keys().next().value;
      if (oldest !== undefined) this.#walletKeys.delete(oldest);
    }
    fetched.catch(() => {
      if (this.#walletKeys.get(id) === fetched) this.#walletKeys.delete(id);
    });
    return fetched;
  }

  /**
   * One `sign` through the plugin API. The xpub returned must be the wallet's own key (a signature
   * by any other key, however valid, is refused); the recovery id is the one that recovers it.
   */
  async #signHash(
    hash: Hex,
    walletName: string,
    keyIndex: number | string,
    totpCode: string | number | undefined,
  ): Promise<{ r: Hex; s: Hex; yParity: 0 | 1 }> {
    const body: Record<string, unknown> = { operation: 'sign', walletName, keyIndex: String(keyIndex), msgHash: hash.slice(2) };
    if (typeof totpCode === 'number') {
      // A number has lost its leading zeros (the original's callers passed codes as numbers): restore them.
      if (!Number.isSafeInteger(totpCode) || totpCode < 0) throw new CustosInputError('totpCode', `expected the digits of a code, got ${totpCode}`);
      body.code = String(totpCode).padStart(6, '0');
    } else if (totpCode !== undefined) body.code = totpCode; // a string is sent exactly as typed
    // The wallet's key first: a failure here must not follow a sign that spent the code.
    const { publicKey } = await this.#walletKey(walletName, keyIndex);
    const signed = await this.#plugin<{ r: string; s: string; xpub: string }>(body);
    if (typeof signed.xpub !== 'string' || signed.xpub.toLowerCase() !== publicKey)
      throw unexpectedAnswer('xpub', `the signature returned is by another key than ${walletName}/${keyIndex}'s`);
    const r = `0x${signed.r}` as Hex;
    const s = `0x${signed.s}` as Hex;
    for (const yParity of [0, 1] as const) {
      const recovered = await recoverPublicKey({ hash, signature: { r, s, yParity } });
      if (compressPublicKey(recovered) === publicKey) return { r, s, yParity };
    }
    throw unexpectedAnswer('signature', `the signature returned does not verify under ${walletName}/${keyIndex}'s public key`);
  }

  /** Fills what the transaction leaves out from the node, as the original did with web3. */
  async #complete(tx: AccountsTransaction, from: Address): Promise<TransactionSerializable> {
    const gas = tx.gas ?? tx.gasLimit;
    if (gas === undefined) throw new CustosInputError('tx.gas', "'gas' is missing");
    const data = (tx.data ?? tx.input) as Hex | undefined;
    if (data !== undefined && !isHex(data)) throw new CustosInputError('tx.data', 'expected 0x-hex');
    const chainId = tx.chainId === undefined ? Number(BigInt(await this.#rpc<string>('eth_chainId', []))) : Number(BigInt(tx.chainId));
    const nonce = tx.nonce === undefined ? Number(BigInt(await this.#rpc<string>('eth_getTransactionCount', [from, 'pending']))) : Number(BigInt(tx.nonce));
    const typeNumber = tx.type === undefined ? undefined : Number(BigInt(tx.type));
    const base = {
      chainId,
      nonce,
      gas: BigInt(gas),
      ...(tx.to == null ? {} : { to: tx.to as Address }),
      ...(tx.value === undefined ? {} : { value: BigInt(tx.value) }),
      ...(data === undefined ? {} : { data }),
    };
    const wantsLegacyFees = tx.gasPrice !== undefined || typeNumber === 0 || typeNumber === 1;
    if (wantsLegacyFees) {
      const gasPrice = tx.gasPrice === undefined ? BigInt(await this.#rpc<string>('eth_gasPrice', [])) : BigInt(tx.gasPrice);
      if (typeNumber === 1 || (tx.accessList !== undefined && typeNumber !== 0)) return { ...base, type: 'eip2930', gasPrice, accessList: tx.accessList ?? [] };
      return { ...base, type: 'legacy', gasPrice };
    }
    if (typeNumber !== undefined && typeNumber !== 2) throw new CustosInputError('tx.type', `the compatibility SDK signs types 0, 1 and 2, not ${typeNumber}`);
    let maxPriorityFeePerGas = tx.maxPriorityFeePerGas === undefined ? undefined : BigInt(tx.maxPriorityFeePerGas);
    let maxFeePerGas = tx.maxFeePerGas === undefined ? undefined : BigInt(tx.maxFeePerGas);
    if (maxPriorityFeePerGas === undefined) maxPriorityFeePerGas = BigInt(await this.#rpc<string>('eth_maxPriorityFeePerGas', []));
    if (maxFeePerGas === undefined) {
      const block = await this.#rpc<{ baseFeePerGas?: string }>('eth_getBlockByNumber', ['latest', false]);
      if (block.baseFeePerGas === undefined) throw new CustosInputError('tx.gasPrice', 'the node has no base fee (pre-London): give gasPrice');
      maxFeePerGas = BigInt(block.baseFeePerGas) * 2n + maxPriorityFeePerGas;
    }
    return { ...base, type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas, ...(tx.accessList === undefined ? {} : { accessList: tx.accessList }) };
  }

  async #rpc<T>(method: string, params: unknown[]): Promise<T> {
    const url = this.#options.providerUrl;
    if (url === undefined) throw new CustosInputError('providerUrl', `needed to read ${method}: give it, or give the value in the transaction`);
    const response = await this.#fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    });
    let body: { result?: T; error?: { message?: string } };
    try {
      body = (await response.json()) as typeof body;
    } catch {
      throw new Error(`JSON-RPC ${method}: HTTP ${response.status} with a body that is not JSON`);
    }
    if (body.error !== undefined || body.result === undefined) throw new Error(`JSON-RPC ${method}: ${body.error?.message ?? 'no result'}`);
    return body.result;
  }

  async #plugin<T>(body: Record<string, unknown>): Promise<T> {
    const token = await this.#token();
    const response = await this.#fetch(`${this.#options.signerUrl}v1/plugins/${encodeURIComponent(this.#options.signerId)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status === 401) this.#session = undefined;
    return readJson<T>(response);
  }

  /** A GET on the native API at the signer's origin (`signerUrl` without its `sys/`). */
  async #native<T>(path: string): Promise<T> {
    const response = await this.#fetch(new URL(`../${path}`, this.#options.signerUrl).toString(), {
      method: 'GET',
      headers: { authorization: `Bearer ${this.#options.apiKey}` },
    });
    return readJson<T>(response);
  }

  /** A session of the compatibility API (Basic API key → bearer), reused until a minute before it expires. */
  async #token(): Promise<string> {
    if (this.#session !== undefined && Date.now() < this.#session.expiresAt) return this.#session.token;
    const response = await this.#fetch(`${this.#options.signerUrl}v1/session/auth`, {
      method: 'POST',
      headers: { authorization: `Basic ${this.#options.apiKey}` },
    });
    const { access_token, expires_in } = await readJson<{ access_token: string; expires_in: number }>(response);
    this.#session = { token: access_token, expiresAt: Date.now() + Math.max(0, expires_in - 60) * 1000 };
    return access_token;
  }

  async #fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      // redirect 'error': the signer never redirects, and following one would send the body (a code) elsewhere.
      return await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.#options.timeoutMs) });
    } catch (error) {
      const timeout = (error as { name?: unknown }).name === 'TimeoutError';
      throw new CustosRequestError(timeout ? 'timeout' : 'network', `${new URL(url).pathname}: ${timeout ? 'no answer in time' : 'the connection failed'}`, {
        mayHaveReachedServer: true,
        cause: error,
      });
    }
  }
}

/** The JSON of a 2xx answer; any other answer as the API's error (the client's mapping). */
async function readJson<T>(response: Response): Promise<T> {
  const where = response.url === '' ? 'the signer' : new URL(response.url).pathname;
  const text = await response.text();
  if (!response.ok) throw toApiError(response, text, where);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CustosRequestError('bad_response', `${where}: HTTP ${response.status} with a body that is not JSON`, { mayHaveReachedServer: true });
  }
}

/** 0x04‖x‖y → 02/03‖x, lower-case hex without 0x (the form of the plugin's xpub). */
function compressPublicKey(uncompressed: Hex): string {
  const hex = uncompressed.slice(2).toLowerCase();
  const x = hex.slice(2, 66);
  const yLastNibble = Number.parseInt(hex.slice(-1), 16);
  return `${yLastNibble % 2 === 0 ? '02' : '03'}${x}`;
}
